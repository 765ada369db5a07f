/*
 * report_util.h — the writers' shared pieces (report.c, report_faults.c):
 * saving a buffer, JSON members, SVG charts and HTML escaping. Internal to
 * pixbench's reports.
 */
#ifndef PB_REPORT_UTIL_H
#define PB_REPORT_UTIL_H

#include "core/buf.h"

/* One line (or bar set) of a chart. */
typedef struct series {
    const char *name;
    const double *x, *y;
    int n;
    int bars; /* draw as bars (histograms) */
} series;

/* Writes b to path and frees it; 0 or PX_EIO. */
int pb_rep_save_buf(const char *path, px_buf *b);

/* "k":v members (v < 0 or NaN: null for jopt; jstr NULL: null), a comma after when comma. */
void pb_rep_jnum(px_buf *b, const char *k, double v, int comma);
void pb_rep_jstr(px_buf *b, const char *k, const char *v, int comma);
void pb_rep_jopt(px_buf *b, const char *k, double v, int comma);

/* An inline SVG line (or bar) chart of ns series; xlog: log x axis; vlines:
 * x positions of dashed vertical markers. */
void pb_rep_svg_chart(px_buf *b, const char *title, const char *xl, const char *yl, const series *s, int ns,
                      int xlog, const double *vlines, int nv);

/* s with &, <, >, " escaped for HTML. */
void pb_rep_html_escape(px_buf *b, const char *s);

#endif
