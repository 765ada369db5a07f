/*
 * report_gen.h — the text-to-image tables of the seed reports, from a
 * pixbench run with a generate or openai-images profile: seed 002's
 * concurrency table (users, QPS, P95, success rate, GPU utilisation peak,
 * steady GPU memory), and seed 003's engine profile (memory by stage,
 * the steps / CFG / resolution sensitivity against a baseline cell with
 * OOMs reported as such, the latency breakdown with per-step time, and
 * prompt complexity). Every figure names its source: the server's reply
 * (timings{}, memory{}), its Server-Timing header, or the resource
 * monitor's samples; what none of them gave is "-".
 */
#ifndef PB_REPORT_GEN_H
#define PB_REPORT_GEN_H

#include "bench/analyze.h"
#include "bench/genrun.h"
#include "bench/report.h"

#include <stdio.h>

/* The tables as Markdown (for the terminal as for report.md). */
void pb_gen_report_print(FILE *f, const pb_gen_plan *p, const pb_analysis *a, const pb_report_meta *m);

/* Appends the tables to dir/report.md and writes dir/generate.json
 * (schema "pixbench-generate/1"). Returns 0 or PX_EIO with a message. */
int pb_gen_report_write(const char *dir, const pb_gen_plan *p, const pb_analysis *a, const pb_report_meta *m,
                        char *err, size_t errlen);

#endif
