/*
 * report_util.c — the pieces every pixbench report writer shares (see
 * report_util.h): saving a buffer, JSON members, the HTML page head and
 * styles, HTML escaping and the inline SVG charts. Kept apart so the load
 * report (report*.c) and the fault report (report_faults.c) draw the same
 * page with the same code.
 */
#include "bench/report_util.h"

#include "bench/spec.h"
#include "core/err.h"
#include "core/jsonw.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int pb_rep_save_buf(const char *path, px_buf *b)
{
    FILE *f = fopen(path, "w");
    int ok = f && fwrite(b->data, 1, b->len, f) == b->len;
    if (f && fclose(f) != 0) ok = 0;
    px_buf_free(b);
    return ok ? 0 : PX_EIO;
}

int pb_rep_mkdir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return px_errf(err, errlen, PX_EIO, "cannot create %s: %s", dir, strerror(errno));
    return 0;
}

void pb_rep_jkey(px_buf *b, const char *k)
{
    px_json_str(b, k);
    px_buf_puts(b, ":");
}

void pb_rep_jnum(px_buf *b, const char *k, double v, int comma)
{
    pb_rep_jkey(b, k);
    px_json_num(b, v);
    if (comma) px_buf_puts(b, ",");
}

void pb_rep_jstr(px_buf *b, const char *k, const char *v, int comma)
{
    pb_rep_jkey(b, k);
    px_json_str(b, v);
    if (comma) px_buf_puts(b, ",");
}

/* A number, or null when unknown (negative). */
void pb_rep_jopt(px_buf *b, const char *k, double v, int comma)
{
    pb_rep_jkey(b, k);
    if (v < 0 || !isfinite(v)) px_buf_puts(b, "null");
    else px_json_num(b, v);
    if (comma) px_buf_puts(b, ",");
}

void pb_rep_json_head(px_buf *b, const char *kind, const pb_report_meta *m, double started_unix_ms, double duration_s)
{
    px_buf_puts(b, "{");
    pb_rep_jstr(b, "schema", PB_SCHEMA, 1);
    pb_rep_jstr(b, "kind", kind, 1);
    pb_rep_jstr(b, "generator", "pixbench " PB_VERSION, 1);
    pb_rep_jstr(b, "title", m->title, 1);
    pb_rep_jnum(b, "started_unix_ms", started_unix_ms, 1);
    pb_rep_jnum(b, "duration_s", duration_s, 1);
}

/* --- HTML ------------------------------------------------------------------ */

/* The rules every report page uses; each page adds its own after them (a
 * later rule of the same weight wins, so a page may override these). */
static const char base_css[] =
    "body{font:14px sans-serif;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}"
    "th{background:#f3f3f3}svg text{font:11px sans-serif}"
    ".t{text-anchor:middle;font-weight:bold!important;font-size:13px!important}"
    ".yl{text-anchor:end}.xl{text-anchor:middle}.xt{text-anchor:middle}.yt{text-anchor:middle}"
    ".g{stroke:#eee}.a{stroke:#888}.v{stroke:#bbb;stroke-dasharray:4 3}.lg{fill:#333}"
    "code{background:#f6f6f6;padding:1px 3px}";

void pb_rep_html_head(px_buf *b, const pb_report_meta *m, const char *css)
{
    px_buf_puts(b, "<!doctype html><html><head><meta charset='utf-8'><title>");
    pb_rep_html_escape(b, m->title);
    px_buf_printf(b, "</title><style>%s%s</style></head><body><h1>", base_css, css ? css : "");
    pb_rep_html_escape(b, m->title);
    px_buf_printf(b, "</h1><p>pixbench %s, %s, %d CPUs. Target <code>", PB_VERSION, m->host, m->cpus);
    pb_rep_html_escape(b, m->target);
    px_buf_puts(b, "</code>");
}

void pb_rep_html_escape(px_buf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '<') px_buf_puts(b, "&lt;");
        else if (*s == '>') px_buf_puts(b, "&gt;");
        else if (*s == '&') px_buf_puts(b, "&amp;");
        else if (*s == '\'') px_buf_puts(b, "&#39;");
        else px_buf_append(b, s, 1);
    }
}

void pb_rep_html_printed(px_buf *b, void (*print)(FILE *f, const void *ctx), const void *ctx, int lines)
{
    char *txt = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&txt, &len);
    if (!mf) return; /* out of memory: the page goes without this text */
    print(mf, ctx);
    fclose(mf);
    if (!lines) {
        pb_rep_html_escape(b, txt);
    } else {
        for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
            pb_rep_html_escape(b, line);
            px_buf_puts(b, "<br>");
        }
    }
    free(txt);
}

/* --- SVG charts ------------------------------------------------------------ */


static const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                               "#e377c2", "#17becf"};


static double nice_step(double range, int ticks)
{
    double raw = range / ticks, mag = pow(10, floor(log10(raw))), r = raw / mag;
    return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

void pb_rep_svg_chart(px_buf *b, const char *title, const char *xl, const char *yl, const series *s,
                      int ns, int xlog, const double *vlines, int nv)
{
    const double W = 640, H = 300, L = 64, R = 16, T = 28, B = 44;
    double x0 = INFINITY, x1 = -INFINITY, y1 = 0;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            double x = xlog ? log10(s[i].x[j] > 0 ? s[i].x[j] : 1e-3) : s[i].x[j];
            if (x < x0) x0 = x;
            if (x > x1) x1 = x;
            if (s[i].y[j] > y1) y1 = s[i].y[j];
        }
    if (!isfinite(x0)) x0 = 0, x1 = 1;
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= 0) y1 = 1;
    double ystep = nice_step(y1, 5);
    y1 = ceil(y1 / ystep) * ystep;
    px_buf_printf(b, "<figure><svg viewBox='0 0 %.0f %.0f' width='%.0f' height='%.0f' role='img'>"
                     "<text x='%.0f' y='18' class='t'>%s</text>", W, H, W, H, W / 2, title);
#define PX(x) (L + ((xlog ? log10((x) > 0 ? (x) : 1e-3) : (x)) - x0) / (x1 - x0) * (W - L - R))
#define PY(y) (H - B - (y) / y1 * (H - T - B))
    for (double y = 0; y <= y1 + 1e-9; y += ystep)
        px_buf_printf(b, "<line x1='%.0f' x2='%.0f' y1='%.1f' y2='%.1f' class='g'/><text x='%.0f' y='%.1f' class='yl'>%g</text>",
                      L, W - R, PY(y), PY(y), L - 6, PY(y) + 4, y);
    if (xlog) {
        for (double e = floor(x0); e <= ceil(x1); e++)
            for (int m = 1; m < 10; m += (m == 1 ? 1 : 3)) {
                double v = pow(10, e) * m, lx = log10(v);
                if (lx < x0 - 1e-9 || lx > x1 + 1e-9) continue;
                px_buf_printf(b, "<text x='%.1f' y='%.0f' class='xl'>%g</text>", PX(v), H - B + 16, v);
            }
    } else {
        double xs = nice_step(x1 - x0, 6);
        for (double x = ceil(x0 / xs) * xs; x <= x1 + 1e-9; x += xs)
            px_buf_printf(b, "<text x='%.1f' y='%.0f' class='xl'>%g</text>", PX(x), H - B + 16, x);
    }
    for (int i = 0; i < nv; i++)
        px_buf_printf(b, "<line x1='%.1f' x2='%.1f' y1='%.0f' y2='%.0f' class='v'/>", PX(vlines[i]),
                      PX(vlines[i]), (double)T, H - B);
    px_buf_printf(b, "<line x1='%.0f' x2='%.0f' y1='%.0f' y2='%.0f' class='a'/>", L, W - R, H - B, H - B);
    px_buf_printf(b, "<text x='%.0f' y='%.0f' class='xt'>%s</text><text x='14' y='%.0f' class='yt' transform='rotate(-90 14 %.0f)'>%s</text>",
                  (L + W - R) / 2, H - 6, xl, (T + H - B) / 2, (T + H - B) / 2, yl);
    for (int i = 0; i < ns; i++) {
        const char *c = colors[i % 8];
        if (s[i].bars) {
            double bw = s[i].n > 1 ? (PX(s[i].x[1]) - PX(s[i].x[0])) * 0.9 : 10;
            for (int j = 0; j < s[i].n; j++)
                if (s[i].y[j] > 0)
                    px_buf_printf(b, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s' opacity='0.6'/>",
                                  PX(s[i].x[j]), PY(s[i].y[j]), bw > 1 ? bw : 1, H - B - PY(s[i].y[j]), c);
        } else {
            px_buf_printf(b, "<polyline fill='none' stroke='%s' stroke-width='2' points='", c);
            for (int j = 0; j < s[i].n; j++) px_buf_printf(b, "%.1f,%.1f ", PX(s[i].x[j]), PY(s[i].y[j]));
            px_buf_puts(b, "'/>");
            if (s[i].n <= 40)
                for (int j = 0; j < s[i].n; j++)
                    px_buf_printf(b, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'><title>%s: %g, %.4g</title></circle>",
                                  PX(s[i].x[j]), PY(s[i].y[j]), c, s[i].name, s[i].x[j], s[i].y[j]);
        }
        px_buf_printf(b, "<rect x='%.0f' y='%.0f' width='10' height='10' fill='%s'/><text x='%.0f' y='%.0f' class='lg'>%s</text>",
                      W - R - 110, T + 4 + 14 * i, c, W - R - 96, T + 13 + 14 * i, s[i].name);
    }
#undef PX
#undef PY
    px_buf_puts(b, "</svg></figure>\n");
}
