/*
 * report_gen.c — the seed 002 and 003 tables (see report_gen.h).
 */
#include "bench/report_gen.h"

#include "bench/report_util.h"

#include "core/buf.h"
#include "core/err.h"
#include "core/jsonw.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MB (1024.0 * 1024.0)

/* "-" for an unknown (negative) figure. */
static const char *fmt(char *b, size_t cap, double v, int dec, const char *unit)
{
    if (!(v >= 0)) snprintf(b, cap, "-");
    else snprintf(b, cap, "%.*f%s", dec, v, unit);
    return b;
}

static const char *pct_change(char *b, size_t cap, double v, double base)
{
    if (!(v >= 0) || !(base > 0)) snprintf(b, cap, "-");
    else snprintf(b, cap, "%+.1f%%", 100.0 * (v - base) / base);
    return b;
}

/* The GPU memory the monitor saw: the target's own when NVML listed it, else
 * the devices'; mean (steady) or max. -1 without GPU samples. */
static double gpu_mem(const pb_stage_summary *s, int peak, const char **src)
{
    const pb_agg *own = &s->res.gpu_proc_mem_mb, *dev = &s->res.gpu_mem_mb;
    const pb_agg *g = own->n ? own : dev;
    if (src) *src = own->n ? "the target's GPU memory (NVML)" : "the devices' used GPU memory (NVML)";
    return g->n ? (peak ? pb_agg_max(g) : pb_agg_mean(g)) : -1;
}

/* A cell's client-side figures: its own stage in a matrix, the request-weighted
 * mean over every stage otherwise. */
static double client_mean_ms(const pb_gen_plan *p, const pb_analysis *a, int c)
{
    if (p->matrix) return c < a->n && a->s[c].ok ? a->s[c].mean_ms : -1;
    double sum = 0;
    uint64_t n = 0;
    for (int k = 0; k < a->n; k++) {
        sum += a->s[k].mean_ms * (double)a->s[k].ok;
        n += a->s[k].ok;
    }
    return n ? sum / (double)n : -1;
}

/* A server stage's mean from Server-Timing in the cell's stage(s). */
static double st_mean(const pb_gen_plan *p, const pb_analysis *a, int c, const char *name)
{
    double sum = 0;
    uint64_t n = 0;
    for (int k = p->matrix ? c : 0; k < (p->matrix ? c + 1 : a->n) && k < a->n; k++)
        for (int i = 0; i < a->s[k].nst; i++)
            if (!strcmp(a->s[k].st[i].name, name)) {
                sum += a->s[k].st[i].mean_ms * (double)a->s[k].st[i].count;
                n += a->s[k].st[i].count;
            }
    return n ? sum / (double)n : -1;
}

static void seed002(FILE *f, const pb_analysis *a, const pb_report_meta *m)
{
    const char *src = NULL;
    fprintf(f, "\n### Concurrency (seed 002's table)\n\n| %s | QPS | P95 (s) | success rate | GPU utilisation (peak) "
               "| GPU memory (steady) | server RSS (steady) |\n|---:|---:|---:|---:|---:|---:|---:|\n",
            a->open_loop ? "req/s" : "users");
    int any_gpu = 0;
    for (int k = 0; k < a->n; k++) {
        const pb_stage_summary *s = &a->s[k];
        char q[32], p95[32], sr[32], gu[32], gm[32], rss[32];
        double g = gpu_mem(s, 0, &src);
        any_gpu |= g >= 0;
        fprintf(f, "| %g | %s | %s | %s | %s | %s | %s |\n", s->load, fmt(q, sizeof q, s->qps, 2, ""),
                fmt(p95, sizeof p95, s->ok ? s->p95_ms / 1e3 : -1, 2, ""),
                fmt(sr, sizeof sr, s->requests ? 100.0 * (double)s->ok / (double)s->requests : -1, 1, "%"),
                fmt(gu, sizeof gu, pb_agg_max(&s->res.gpu_util_peak), 0, "%"),
                fmt(gm, sizeof gm, g >= 0 ? g / 1024 : -1, 1, " GB"), fmt(rss, sizeof rss, pb_agg_mean(&s->res.rss_mb), 0, " MB"));
    }
    fprintf(f, "\nQPS: successes per second over each stage's measured window; P95 of successful requests; "
               "success rate: successes / finished requests. GPU columns: %s; steady = the mean over the "
               "measured seconds. RSS: %s.\n",
            !m->monitored ? "not monitored (a remote target, or --no-monitor)"
            : any_gpu     ? src
                          : m->gpu_status ? m->gpu_status : "no GPU samples",
            m->monitored && m->mon_pid ? "the target process's resident memory, sampled" : "not known (no process watched; give --pid)");
}

static void breakdown(FILE *f, const pb_gen_plan *p, const pb_analysis *a)
{
    fprintf(f, "\n### Latency breakdown\n\n| cell | client mean | queue | prompt encoding | denoise loop | per step "
               "(first) | VAE decode | image encoding | other | source |\n"
               "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (int c = 0; c < p->ncells; c++) {
        const pb_gen_cellstats *cs = &p->stats->cell[c];
        double cli = client_mean_ms(p, a, c);
        double q = pb_gen_mean_of(&cs->queue), te = pb_gen_mean_of(&cs->text_encode), dn = pb_gen_mean_of(&cs->denoise);
        double vae = pb_gen_mean_of(&cs->vae_decode), enc = pb_gen_mean_of(&cs->encode), tot = pb_gen_mean_of(&cs->total);
        const char *src = "the replies' timings{}";
        if (tot < 0 && dn < 0) { /* another server: its Server-Timing header, if any */
            q = st_mean(p, a, c, "queue");
            te = st_mean(p, a, c, "text_encode");
            dn = st_mean(p, a, c, "denoise");
            vae = st_mean(p, a, c, "vae_decode");
            enc = st_mean(p, a, c, "encode");
            tot = st_mean(p, a, c, "total");
            src = tot >= 0 || dn >= 0 ? "Server-Timing" : "none: the server reported no stages";
        }
        char b[9][48], sh[6][16];
        double parts[5] = {q, te, dn, vae, enc};
        for (int i = 0; i < 5; i++) {
            if (parts[i] >= 0 && cli > 0) snprintf(sh[i], sizeof sh[i], " (%.0f%%)", 100 * parts[i] / cli);
            else sh[i][0] = 0;
        }
        double other = cli >= 0 && tot >= 0 ? cli - tot : -1;
        fprintf(f, "| %s | %s | %s%s | %s%s | %s%s | %s (%s) | %s%s | %s%s | %s | %s |\n", p->cells[c].label,
                fmt(b[0], 48, cli, 1, " ms"), fmt(b[1], 48, q, 1, " ms"), sh[0], fmt(b[2], 48, te, 1, " ms"), sh[1],
                fmt(b[3], 48, dn, 1, " ms"), sh[2], fmt(b[4], 48, pb_gen_mean_of(&cs->step), 2, " ms"),
                fmt(b[8], 48, pb_gen_mean_of(&cs->step_first), 2, " ms"), fmt(b[5], 48, vae, 1, " ms"), sh[3],
                fmt(b[6], 48, enc, 1, " ms"), sh[4], fmt(b[7], 48, other, 1, " ms"), src);
    }
    fprintf(f, "\nServer figures are means over the successful replies of the cell's measured window, as "
               "the client mean is. other = client mean − the server's total: HTTP, "
               "transfer of the image, the client.\n");
}

static double server_peak(const pb_gen_cellstats *cs)
{
    double v = -1;
    if (cs->te_peak.n && cs->te_peak.max > v) v = cs->te_peak.max;
    if (cs->dn_peak.n && cs->dn_peak.max > v) v = cs->dn_peak.max;
    if (cs->vae_peak.n && cs->vae_peak.max > v) v = cs->vae_peak.max;
    return v >= 0 ? v / MB : -1;
}

/* The monitor's peak for a stage: GPU memory when there was a GPU, else RSS. */
static double sampled_peak(const pb_stage_summary *s, const char **what)
{
    double g = gpu_mem(s, 1, NULL);
    *what = g >= 0 ? "GPU" : "RSS";
    return g >= 0 ? g : s->peak_rss_mb;
}

static void memory_by_stage(FILE *f, const pb_gen_plan *p, const pb_analysis *a)
{
    int b = p->baseline;
    const pb_gen_cellstats *cs = &p->stats->cell[b];
    char v[5][32];
    const char *what = "RSS";
    const pb_stage_summary *s = b < a->n ? &a->s[b] : NULL;
    double sp = s ? sampled_peak(s, &what) : -1;
    double lo = s ? (!strcmp(what, "GPU") ? pb_agg_min(s->res.gpu_proc_mem_mb.n ? &s->res.gpu_proc_mem_mb : &s->res.gpu_mem_mb)
                                          : pb_agg_min(&s->res.rss_mb))
                  : -1;
    fprintf(f, "\n### Memory by stage (%s)\n\n| stage | peak memory | source |\n|---|---:|---|\n", p->cells[b].label);
    fprintf(f, "| lowest sampled in the stage (model loaded, between requests) | %s | monitor, %s |\n",
            fmt(v[0], 32, lo, 0, " MB"), what);
    const char *src = !strcmp(cs->mem_source, "gpu")        ? ", GPU"
                      : !strcmp(cs->mem_source, "host_rss") ? ", RSS"
                                                            : "";
    const pb_gen_mean *pk[3] = {&cs->te_peak, &cs->dn_peak, &cs->vae_peak};
    static const char *const names[3][2] = {{"prompt encoding", "text_encode"}, {"denoise loop", "denoise"},
                                            {"VAE decode", "vae_decode"}};
    for (int i = 0; i < 3; i++) {
        if (pk[i]->n) fmt(v[1], 32, pk[i]->max / MB, 0, " MB");
        else snprintf(v[1], 32, "not reported");
        fprintf(f, "| %s | %s | reply memory.%s_peak_bytes%s |\n", names[i][0], v[1], names[i][1], src);
    }
    fprintf(f, "| peak over the stage | %s | monitor, %s |\n", fmt(v[4], 32, sp, 0, " MB"), what);
    fprintf(f, "\nThe reply's memory{} is what the server says of each stage's peak (pixserve: the process's "
               "resident memory on the CPU engine, the GPU's memory in use at the end of each stage on the CUDA "
               "engine: memory.source); the monitor's figures are sampled every interval, so a peak between two "
               "samples can be missed.\n");
}

static void sensitivity(FILE *f, const pb_gen_plan *p, const pb_analysis *a)
{
    int b = p->baseline;
    const char *what = "RSS";
    double base_lat = b < a->n && a->s[b].ok ? a->s[b].mean_ms : -1;
    double base_mem = server_peak(&p->stats->cell[b]);
    double base_sp = b < a->n ? sampled_peak(&a->s[b], &what) : -1;
    fprintf(f, "\n### Parameters against memory and latency (seed 003's table; baseline %s)\n\n"
               "| variable | setting | peak memory (server) | change | sampled peak (%s) | change | mean latency "
               "| change | QPS | errors | out of memory |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
            p->cells[b].label, what);
    for (int c = 0; c < p->ncells && c < a->n; c++) {
        const pb_gen_cell *cell = &p->cells[c];
        const pb_gen_cellstats *cs = &p->stats->cell[c];
        const pb_stage_summary *s = &a->s[c];
        char v[10][40];
        double mem = server_peak(cs), sp = sampled_peak(s, &what), lat = s->ok ? s->mean_ms : -1;
        const char *var = cell->axis >= 0 ? pb_axis_name(cell->axis) : c == b ? "baseline" : "cell";
        char oom[96];
        if (cs->oom && !s->ok) snprintf(oom, sizeof oom, "**OOM**: every request (%llu)", (unsigned long long)cs->oom);
        else if (cs->oom) snprintf(oom, sizeof oom, "%llu replies", (unsigned long long)cs->oom);
        else snprintf(oom, sizeof oom, "none seen");
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %llu | %s |\n", var, cell->label,
                fmt(v[0], 40, mem, 0, " MB"), c == b ? "—" : pct_change(v[1], 40, mem, base_mem),
                fmt(v[2], 40, sp, 0, " MB"), c == b ? "—" : pct_change(v[3], 40, sp, base_sp),
                fmt(v[4], 40, lat, 1, " ms"), c == b ? "—" : pct_change(v[5], 40, lat, base_lat),
                fmt(v[6], 40, s->qps, 2, ""), (unsigned long long)s->errors, oom);
    }
    for (int c = 0; c < p->ncells; c++) {
        const pb_gen_cellstats *cs = &p->stats->cell[c];
        if (cs->failed && cs->fail_code[0])
            fprintf(f, "\n%s: %llu replies failed; the last with status %d, %s: %s\n", p->cells[c].label,
                    (unsigned long long)cs->failed, cs->fail_status, cs->fail_code, cs->fail_msg);
    }
    fprintf(f, "\nOut of memory is counted only when the error reply says so (code out_of_memory, or a "
               "message naming out of memory).\n");
}

static void prompts_table(FILE *f, const pb_gen_plan *p)
{
    int b = p->baseline;
    const pb_gen_cellstats *cs = &p->stats->cell[b];
    fprintf(f, "\n### Prompt complexity (%s)\n\n| category | prompts | replies | prompt tokens | denoise loop "
               "| server time (queue excluded) | change |\n|---|---:|---:|---:|---:|---:|---:|\n",
            p->cells[b].label);
    double first = -1;
    for (int k = 0; k < p->prompts.ncats; k++) {
        int np = 0;
        for (int i = 0; i < p->prompts.n; i++) np += p->prompts.p[i].cat == k;
        char v[5][32];
        double tot = pb_gen_mean_of(&cs->cat_total[k]);
        if (first < 0) first = tot;
        fprintf(f, "| %s | %d | %llu | %s | %s | %s | %s |\n", p->prompts.cats[k], np,
                (unsigned long long)cs->cat_total[k].n, fmt(v[0], 32, pb_gen_mean_of(&cs->cat_tokens[k]), 1, ""),
                fmt(v[1], 32, pb_gen_mean_of(&cs->cat_denoise[k]), 1, " ms"), fmt(v[2], 32, tot, 1, " ms"),
                k == 0 ? "—" : pct_change(v[3], 32, tot, first));
    }
}

void pb_gen_report_print(FILE *f, const pb_gen_plan *p, const pb_analysis *a, const pb_report_meta *m)
{
    fprintf(f, "\n## Text to image\n");
    if (!p->matrix) seed002(f, a, m);
    if (p->matrix) {
        memory_by_stage(f, p, a);
        sensitivity(f, p, a);
    }
    breakdown(f, p, a);
    prompts_table(f, p);
}

static void jmean(px_buf *b, const char *name, const pb_gen_mean *mm, double scale)
{
    double v = pb_gen_mean_of(mm);
    px_buf_printf(b, "\"%s\":", name);
    if (v < 0) px_buf_puts(b, "null,");
    else px_buf_printf(b, "%.4g,", v * scale);
}

static void json_cell(px_buf *b, const pb_gen_plan *p, const pb_analysis *a, int c)
{
    const pb_gen_cell *cell = &p->cells[c];
    const pb_gen_cellstats *cs = &p->stats->cell[c];
    px_buf_puts(b, "{\"label\":");
    px_json_str(b, cell->label);
    px_buf_printf(b, ",\"steps\":%d,\"cfg_scale\":%g,\"width\":%d,\"height\":%d,\"axis\":", cell->steps, cell->cfg,
                  cell->w, cell->h);
    px_json_str(b, cell->axis >= 0 ? pb_axis_name(cell->axis) : NULL);
    double cli = client_mean_ms(p, a, c);
    px_buf_printf(b, ",\"client_mean_ms\":");
    if (cli < 0) px_buf_puts(b, "null");
    else px_buf_printf(b, "%.3f", cli);
    px_buf_printf(b, ",\"server\":{\"replies\":%llu,\"parsed\":%llu,", (unsigned long long)cs->replies,
                  (unsigned long long)cs->parsed);
    jmean(b, "queue_ms", &cs->queue, 1);
    jmean(b, "text_encode_ms", &cs->text_encode, 1);
    jmean(b, "denoise_ms", &cs->denoise, 1);
    jmean(b, "step_ms", &cs->step, 1);
    jmean(b, "first_step_ms", &cs->step_first, 1);
    jmean(b, "vae_decode_ms", &cs->vae_decode, 1);
    jmean(b, "encode_ms", &cs->encode, 1);
    jmean(b, "total_ms", &cs->total, 1);
    jmean(b, "prompt_tokens", &cs->tokens, 1);
    double pk[3] = {cs->te_peak.n ? cs->te_peak.max / MB : -1, cs->dn_peak.n ? cs->dn_peak.max / MB : -1,
                    cs->vae_peak.n ? cs->vae_peak.max / MB : -1};
    const char *pn[3] = {"text_encode", "denoise", "vae_decode"};
    px_buf_puts(b, "\"peak_memory_mb\":{");
    for (int i = 0; i < 3; i++) {
        px_buf_printf(b, "%s\"%s\":", i ? "," : "", pn[i]);
        if (pk[i] < 0) px_buf_puts(b, "null");
        else px_buf_printf(b, "%.1f", pk[i]);
    }
    px_buf_puts(b, "},\"memory_source\":");
    if (cs->mem_source[0]) px_json_str(b, cs->mem_source);
    else px_buf_puts(b, "null");
    px_buf_printf(b, "},\"failed\":%llu,\"out_of_memory\":%llu,\"last_error\":", (unsigned long long)cs->failed,
                  (unsigned long long)cs->oom);
    if (!cs->fail_code[0]) px_buf_puts(b, "null");
    else {
        px_buf_printf(b, "{\"status\":%d,\"code\":", cs->fail_status);
        px_json_str(b, cs->fail_code);
        px_buf_puts(b, ",\"message\":");
        px_json_str(b, cs->fail_msg);
        px_buf_puts(b, "}");
    }
    px_buf_puts(b, ",\"categories\":[");
    for (int k = 0; k < p->prompts.ncats; k++) {
        px_buf_puts(b, k ? ",{\"name\":" : "{\"name\":");
        px_json_str(b, p->prompts.cats[k]);
        px_buf_printf(b, ",\"replies\":%llu,", (unsigned long long)cs->cat_total[k].n);
        jmean(b, "prompt_tokens", &cs->cat_tokens[k], 1);
        jmean(b, "denoise_ms", &cs->cat_denoise[k], 1);
        jmean(b, "server_ms_without_queue", &cs->cat_total[k], 1);
        b->len--; /* the last comma */
        px_buf_puts(b, "}");
    }
    px_buf_puts(b, "]}");
}

int pb_gen_report_write(const char *dir, const pb_gen_plan *p, const pb_analysis *a, const pb_report_meta *m,
                        char *err, size_t errlen)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/report.md", dir);
    FILE *f = fopen(path, "a");
    if (!f) return px_errf(err, errlen, PX_EIO, "cannot write %s", path);
    pb_gen_report_print(f, p, a, m);
    int bad = fclose(f) != 0;
    px_buf b;
    px_buf_init(&b, (size_t)64 << 20);
    px_buf_printf(&b, "{\"schema\":\"pixbench-generate/1\",\"profile\":");
    px_json_str(&b, m->profile);
    px_buf_printf(&b, ",\"matrix\":%s,\"baseline\":%d,\"prompts\":%d,\"cells\":[", p->matrix ? "true" : "false",
                  p->baseline, p->prompts.n);
    for (int c = 0; c < p->ncells; c++) {
        if (c) px_buf_puts(&b, ",");
        json_cell(&b, p, a, c);
    }
    px_buf_puts(&b, "]}\n");
    snprintf(path, sizeof path, "%s/generate.json", dir);
    bad |= pb_rep_save_buf(path, &b) != 0;
    return bad ? px_errf(err, errlen, PX_EIO, "cannot write the text-to-image report into %s", dir) : 0;
}
