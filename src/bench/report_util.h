/*
 * report_util.h — the writers' shared pieces (report.c, report_json.c,
 * report_html.c, report_faults.c): saving a buffer, JSON members, the HTML
 * page head, HTML escaping and SVG charts. Internal to pixbench's reports.
 */
#ifndef PB_REPORT_UTIL_H
#define PB_REPORT_UTIL_H

#include "bench/report.h"
#include "core/buf.h"

#include <stddef.h>
#include <stdio.h>

/* One line (or bar set) of a chart. */
typedef struct series {
    const char *name;
    const double *x, *y;
    int n;
    int bars; /* draw as bars (histograms) */
} series;

/* Writes b to path and frees it; 0 or PX_EIO. */
int pb_rep_save_buf(const char *path, px_buf *b);

/* Creates dir unless it exists; 0 or PX_EIO with a message. */
int pb_rep_mkdir(const char *dir, char *err, size_t errlen);

/* "k": (a member's key and its colon). */
void pb_rep_jkey(px_buf *b, const char *k);

/* "k":v members (v < 0 or NaN: null for jopt; jstr NULL: null), a comma after when comma. */
void pb_rep_jnum(px_buf *b, const char *k, double v, int comma);
void pb_rep_jstr(px_buf *b, const char *k, const char *v, int comma);
void pb_rep_jopt(px_buf *b, const char *k, double v, int comma);

/* A report.json's opening: "{" and its schema, kind, generator, title,
 * start and duration members, a comma after the last. */
void pb_rep_json_head(px_buf *b, const char *kind, const pb_report_meta *m, double started_unix_ms, double duration_s);

/* The page up to the intro's target: doctype, title, the shared styles
 * followed by css (the page's own rules, or NULL), the <h1> and
 * "<p>pixbench V, host, N CPUs. Target <code>URL</code>" (the paragraph
 * left open for the page to go on). */
void pb_rep_html_head(px_buf *b, const pb_report_meta *m, const char *css);

/* s with &, <, >, ' escaped for HTML. */
void pb_rep_html_escape(px_buf *b, const char *s);

/* What print writes to a FILE, escaped for HTML; lines: each non-empty
 * line followed by <br>. Nothing when memory runs out. */
void pb_rep_html_printed(px_buf *b, void (*print)(FILE *f, const void *ctx), const void *ctx, int lines);

/* An inline SVG line (or bar) chart of ns series; xlog: log x axis; vlines:
 * x positions of dashed vertical markers. */
void pb_rep_svg_chart(px_buf *b, const char *title, const char *xl, const char *yl, const series *s, int ns,
                      int xlog, const double *vlines, int nv);

#endif
