/*
 * report_html.h — report.html of a load run: one self-contained page with
 * the summary table, verdicts, hints and inline SVG charts (load curves,
 * latency histograms, time series, the size matrix, the soak fits and the
 * resources over time). Internal to pixbench's reports (pb_report_write
 * calls it).
 */
#ifndef PB_REPORT_HTML_H
#define PB_REPORT_HTML_H

#include "bench/analyze.h"
#include "bench/report.h"

/* Writes the page at path; 0 or PX_EIO. */
int pb_report_write_html(const char *path, const pb_run_result *r, const pb_analysis *a, const pb_report_meta *m);

#endif
