/*
 * report_cols.h — the pieces every view of a load run shares (report.c's
 * terminal, Markdown and CSV, report_json.c, report_html.c): stage names,
 * the resource column sets (a header for people, a key for CSV and JSON,
 * the figure's getter and its rounding) and the verdict lines. Internal to
 * pixbench's reports.
 */
#ifndef PB_REPORT_COLS_H
#define PB_REPORT_COLS_H

#include "bench/analyze.h"
#include "bench/report.h"

#include <stddef.h>
#include <stdio.h>

/* One column: a stage's figure (negative: unknown). */
typedef struct pb_rcol {
    const char *head, *csv;
    double (*get)(const pb_stage_summary *s);
    int decimals;
} pb_rcol;

typedef struct pb_rcols {
    const pb_rcol *c;
    int n;
} pb_rcols;

/* The target process, the GPUs, the system, and the seed's size table
 * (latency, GPU memory and util, CPU, RSS per image size). */
extern const pb_rcols pb_rep_proc_cols, pb_rep_gpu_cols, pb_rep_sys_cols, pb_rep_size_cols;

/* The matrix table's columns and title: a size matrix's (with megapixels)
 * or a parameter matrix's (without). */
const pb_rcols *pb_rep_matrix_cols(const pb_analysis *a, const char **title);

/* What the stages vary: "users", "rate", "size" or "cell" (a parameter matrix). */
const char *pb_rep_load_name(const pb_analysis *a);

/* Stage k's name in tables: its label (a matrix cell or size), else its
 * load; written into buf, which is returned. */
const char *pb_rep_stage_name(const pb_analysis *a, int k, char *buf, size_t cap);

/* v with decimals, or "-" when unknown (negative or not finite). */
void pb_rep_fmt_val(double v, int decimals, char *out, size_t cap);

/* The mean latency of successes (-1: none), and the target's peak GPU
 * memory, else the devices' (-1: not seen). */
double pb_rep_mean_ms(const pb_stage_summary *s);
double pb_rep_gpu_mem_any(const pb_stage_summary *s);

/* How the monitor sampled (interval, target, GPU, disk, peak RSS source). */
void pb_rep_monitor_line(FILE *f, const pb_report_meta *m);

/* The saturation, sweet spot, size fit and SLO lines; md: Markdown bold
 * and paragraph breaks. */
void pb_rep_verdicts(FILE *f, const pb_analysis *a, int md);

#endif
