/*
 * report_json.h — report.json of a load run (schema PB_SCHEMA, "kind":
 * "load"): the settings, every stage's figures and histogram, the
 * per-second series, the verdicts, the soak and size fits. Internal to
 * pixbench's reports (pb_report_write calls it).
 */
#ifndef PB_REPORT_JSON_H
#define PB_REPORT_JSON_H

#include "bench/analyze.h"
#include "bench/report.h"

/* Writes the file at path; 0 or PX_EIO. */
int pb_report_write_json(const char *path, const pb_run_result *r, const pb_analysis *a, const pb_report_meta *m);

#endif
