/*
 * faults.c — the fault suite's run (see faults.h): the payloads, the
 * warm-up, each case of the catalogue (faults_cases.c) in turn, and after
 * each the service's health and memory; the wire is faults_wire.c.
 *
 * Memory "back to baseline" is judged per case against the RSS just before
 * it, allowing max(16 MB, a quarter of the warm-up baseline), or, when the
 * case's peak was measured (the burst), a quarter of its rise: glibc keeps
 * freed memory in per-thread arenas and returns only the top of each heap
 * and whole mmap'd blocks to the kernel (after a large free it also raises
 * its mmap threshold, so the next large buffer comes from an arena), so RSS
 * after a big or concurrent request can stay above its level before
 * without any leak. A real leak grows with every repetition; the soak test
 * measures that. Judging against the RSS before each case (not the first
 * baseline) keeps one case's retained arenas from failing every later one.
 */
#include "bench/faults.h"

#include "bench/faults_cases.h"
#include "bench/faults_wire.h"
#include "core/clock.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

void pb_faults_list(FILE *f)
{
    for (int i = 0; i < pb_fault_ncases; i++)
        fprintf(f, "%-26s %s\n%-26s expected: %s\n", pb_fault_cases[i].name, pb_fault_cases[i].what, "",
                pb_fault_cases[i].expect);
}

const char *pb_fault_verdict_name(enum pb_fault_verdict v)
{
    return v == PB_FAULT_OK ? "ok" : v == PB_FAULT_WARN ? "warn" : "fail";
}

static int wanted(const char *only, const char *name)
{
    if (!only) return 1;
    size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

static void free_ctx(pb_fault_ctx *x)
{
    pb_payload_free(&x->small);
    pb_payload_free(&x->small_jpeg);
    pb_payload_free(&x->big);
    px_buf_free(&x->small_body);
    px_buf_free(&x->big_body);
}

/* The payloads: a small valid pair (PNG and JPEG) and the largest size. */
static int make_payloads(pb_fault_ctx *x, char *err, size_t errlen)
{
    const pb_faults_config *c = x->c;
    char e2[256];
    if (pb_payload_generate(96, 64, 0.15, 0.30, c->seed, 0, PX_FMT_PNG, &x->small, e2, sizeof e2) ||
        pb_payload_generate(96, 64, 0.15, 0.30, c->seed, 1, PX_FMT_JPEG, &x->small_jpeg, e2, sizeof e2) ||
        pb_payload_generate(c->max_w, c->max_h, 0.15, 0.30, c->seed, 2, PX_FMT_PNG, &x->big, e2, sizeof e2))
        return px_errf(err, errlen, PX_EIO, "payloads: %s", e2);
    pb_fw_json_body(&x->small_body, x->small.image.data, x->small.image.len, x->small.mask.data, x->small.mask.len,
                    NULL);
    pb_fw_json_body(&x->big_body, x->big.image.data, x->big.image.len, x->big.mask.data, x->big.mask.len, NULL);
    return 0;
}

/* The warm-up: the service works, the largest request's latency (the
 * reference for the disconnect case) and the memory baseline. */
static int warm_up(pb_fault_ctx *x, pb_faults_run *out, char *err, size_t errlen)
{
    const pb_faults_config *c = x->c;
    if (pb_fw_health(c, NULL, NULL) != 1)
        return px_errf(err, errlen, PX_EIO, "the target is not healthy (GET %s) before any fault", c->health_path);
    pb_fault_result w;
    pb_freply rp;
    memset(&w, 0, sizeof w);
    pb_fw_exchange(c, "application/json", x->small_body.data, x->small_body.len, &w, &rp);
    px_buf_free(&rp.body);
    if (w.status != 200)
        return px_errf(err, errlen, PX_EIO, "a valid %dx%d request got %d %s before any fault", x->small.w, x->small.h,
                       w.status, w.code);
    memset(&w, 0, sizeof w);
    pb_fw_exchange(c, "application/json", x->big_body.data, x->big_body.len, &w, &rp);
    px_buf_free(&rp.body);
    if (w.status != 200)
        return px_errf(err, errlen, PX_EIO,
                       "a valid request of the largest size (%dx%d) got %d %s: give the target's real limits "
                       "(--max-pixels, --max-body)",
                       c->max_w, c->max_h, w.status, w.code);
    out->ref_latency_ms = w.latency_ms;
    pb_fw_nap(300000000);
    out->baseline_rss_mb = pb_fw_rss_now(c);
    out->rss_source = c->pid > 0 ? "/proc/<pid>/stat" : out->baseline_rss_mb >= 0 ? "health route rss_bytes" : "none";
    out->tolerance_mb = out->baseline_rss_mb > 64 ? out->baseline_rss_mb / 4 : 16;
    return 0;
}

/* The next result slot, named for case k, its figures unknown. */
static pb_fault_result *new_result(pb_faults_run *out, int k)
{
    pb_fault_result *r = &out->r[out->n++];
    memset(r, 0, sizeof *r);
    r->name = pb_fault_cases[k].name;
    r->what = pb_fault_cases[k].what;
    r->expect = pb_fault_cases[k].expect;
    r->rss_before_mb = r->rss_peak_mb = r->rss_after_mb = -1;
    r->mem_returned = -1;
    return r;
}

/* Memory back: the RSS may take up to settle_ns to fall within the
 * allowance of its level before the case (see the top of this file). */
static void judge_memory(const pb_faults_config *c, const pb_faults_run *out, pb_fault_result *r)
{
    double rise = r->rss_peak_mb > r->rss_before_mb ? r->rss_peak_mb - r->rss_before_mb : 0;
    double allowed = out->tolerance_mb > rise / 4 ? out->tolerance_mb : rise / 4;
    int64_t until = px_now_ns() + c->settle_ns;
    double v;
    for (;;) {
        v = pb_fw_rss_now(c);
        if (v < 0 || v <= r->rss_before_mb + allowed || px_now_ns() >= until) break;
        pb_fw_nap(100000000);
    }
    r->rss_after_mb = v;
    r->mem_returned = v < 0 ? -1 : v <= r->rss_before_mb + allowed;
    if (r->mem_returned == 0)
        pb_fault_verdict(r, PB_FAULT_WARN, "memory did not come back: %.1f MB after, %.1f MB before (+%.0f MB allowed)",
                         v, r->rss_before_mb, allowed);
}

/* Runs case k and judges the service after it. Returns 0, or -1 when the
 * service is down (dead, or not answering its health route). */
static int run_case(pb_fault_ctx *x, pb_faults_run *out, int k)
{
    const pb_faults_config *c = x->c;
    pb_fault_result *r = new_result(out, k);
    r->rss_before_mb = pb_fw_rss_now(c);
    r->healthy_before = pb_fw_health(c, NULL, NULL) == 1;
    pb_fault_cases[k].run(x, r);
    /* the service afterwards: alive, answering, memory back */
    int h = pb_fw_health(c, &r->health_ms, NULL);
    r->healthy_after = h == 1;
    if (!pb_fw_alive(c)) pb_fault_verdict(r, PB_FAULT_FAIL, "the service process died");
    else if (h < 0) pb_fault_verdict(r, PB_FAULT_FAIL, "the service did not answer %s afterwards", c->health_path);
    else if (!h) pb_fault_verdict(r, PB_FAULT_FAIL, "%s was not healthy afterwards", c->health_path);
    if (out->baseline_rss_mb >= 0 && r->rss_before_mb >= 0 && pb_fw_alive(c)) judge_memory(c, out, r);
    if (r->verdict == PB_FAULT_OK) out->ok++;
    else if (r->verdict == PB_FAULT_WARN) out->warns++;
    else out->fails++;
    if (c->progress)
        fprintf(stderr, "  %-4s %-26s %3d %-15s %8.1f ms  %s\n", pb_fault_verdict_name(r->verdict), r->name,
                r->status, r->code[0] ? r->code : "-", r->latency_ms, r->why);
    return !pb_fw_alive(c) || h < 0 ? -1 : 0;
}

int pb_faults_run_all(const pb_faults_config *c, pb_faults_run *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->started_unix_ms = px_wall_ms();
    int64_t t_start = px_now_ns();
    pb_fault_ctx x = {.c = c, .run = out};
    px_buf_init(&x.small_body, (size_t)1 << 30);
    px_buf_init(&x.big_body, (size_t)1 << 30);
    int rc = make_payloads(&x, err, errlen);
    if (!rc) rc = warm_up(&x, out, err, errlen);
    for (int i = 0; !rc && i < pb_fault_ncases && out->n < PB_FAULTS_MAX; i++) {
        if (!wanted(c->only, pb_fault_cases[i].name)) continue;
        if (run_case(&x, out, i) == 0) continue;
        /* nothing after a dead service would mean anything */
        const char *after = out->r[out->n - 1].name;
        for (int k = i + 1; k < pb_fault_ncases && out->n < PB_FAULTS_MAX; k++) {
            if (!wanted(c->only, pb_fault_cases[k].name)) continue;
            pb_fault_verdict(new_result(out, k), PB_FAULT_FAIL, "not run: the service was down after %s", after);
            out->fails++;
        }
        break;
    }
    out->duration_s = (double)(px_now_ns() - t_start) / 1e9;
    free_ctx(&x);
    return rc;
}
