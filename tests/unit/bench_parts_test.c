/*
 * bench_parts_test.c — pixbench's smaller parts: command-line value parsers,
 * SLOs, payload reproducibility and mask coverage, request building per
 * profile, Server-Timing parsing and the saturation/sweet-spot verdicts.
 */
#include "bench/analyze.h"
#include "bench/payload.h"
#include "bench/profile.h"
#include "bench/slo.h"
#include "bench/spec.h"
#include "bench/stats.h"
#include "core/err.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>

TEST(t_durations_and_ranges)
{
    char err[256];
    int64_t ns, lo, hi;
    T_EQ_INT(pb_parse_duration("250ms", &ns, err, sizeof err), 0);
    T_EQ_INT(ns, 250000000);
    T_EQ_INT(pb_parse_duration("5m", &ns, err, sizeof err), 0);
    T_EQ_INT(ns, 300000000000LL);
    T_EQ_INT(pb_parse_duration("1h30m", &ns, err, sizeof err), 0);
    T_EQ_INT(ns, 5400000000000LL);
    T_EQ_INT(pb_parse_duration("2", &ns, err, sizeof err), 0);
    T_EQ_INT(ns, 2000000000);
    T_EQ_INT(pb_parse_duration("20us", &ns, err, sizeof err), 0);
    T_EQ_INT(ns, 20000);
    T_EQ_INT(pb_parse_duration("fast", &ns, err, sizeof err), PX_EINVAL);
    T_EQ_INT(pb_parse_duration("-1s", &ns, err, sizeof err), PX_EINVAL);
    T_EQ_INT(pb_parse_duration_range("1s-3s", &lo, &hi, err, sizeof err), 0);
    T_EQ_INT(lo, 1000000000);
    T_EQ_INT(hi, 3000000000LL);
    T_EQ_INT(pb_parse_duration_range("3s-1s", &lo, &hi, err, sizeof err), PX_EINVAL);
    double a, b;
    T_EQ_INT(pb_parse_fraction_range("0.15-0.30", &a, &b, err, sizeof err), 0);
    T_NEAR(a, 0.15, 1e-12);
    T_NEAR(b, 0.30, 1e-12);
    T_EQ_INT(pb_parse_fraction_range("15-30%", &a, &b, err, sizeof err), 0);
    T_NEAR(a, 0.15, 1e-12);
    T_NEAR(b, 0.30, 1e-12);
    T_EQ_INT(pb_parse_fraction_range("0.5-0.2", &a, &b, err, sizeof err), PX_EINVAL);
    T_EQ_INT(pb_parse_fraction_range("120%", &a, &b, err, sizeof err), PX_EINVAL);
    double l[8];
    int n;
    T_EQ_INT(pb_parse_list("1,5,10,20,50,100", l, 8, &n, err, sizeof err), 0);
    T_EQ_INT(n, 6);
    T_NEAR(l[5], 100, 0);
    T_EQ_INT(pb_parse_list("1,,2", l, 8, &n, err, sizeof err), PX_EINVAL);
    int w, h;
    T_EQ_INT(pb_parse_size("2560x1920", &w, &h, err, sizeof err), 0);
    T_EQ_INT(w * 10000 + h, 25601920);
    T_EQ_INT(pb_parse_size("0x5", &w, &h, err, sizeof err), PX_EINVAL);
    T_EQ_INT(pb_size_preset("medium", &w, &h), 0); /* the seed report's classes */
    T_EQ_INT(w * 10000 + h, 12800960);
    T_EQ_INT(pb_size_preset("large", &w, &h), 0);
    T_EQ_INT(w * 10000 + h, 25601920);
    T_EQ_INT(pb_size_preset("small", &w, &h), 0);
    T_EQ_INT(w * 10000 + h, 6400480);
    T_EQ_INT(pb_size_preset("huge", &w, &h), -1);
    pb_delay d;
    T_EQ_INT(pb_parse_delay("bimodal:10ms:200ms:0.05", &d, err, sizeof err), 0);
    T_EQ_INT(d.kind, PB_DELAY_BIMODAL);
    T_EQ_INT(pb_parse_delay("gauss:1ms", &d, err, sizeof err), PX_EINVAL);
}

TEST(t_slo)
{
    pb_slo s;
    char err[256], why[256];
    T_EQ_INT(pb_slo_parse("p95<500ms,errors<1%,qps>=10", &s, err, sizeof err), 0);
    T_EQ_INT(s.n, 3);
    pb_slo_values v = {.p95 = 499, .errors = 0.005, .qps = 10};
    T_EQ_INT(pb_slo_check(&s, &v, why, sizeof why), 0);
    v.p95 = 612;
    v.errors = 0.02;
    T_EQ_INT(pb_slo_check(&s, &v, why, sizeof why), 2);
    T_CONTAINS(why, "p95 was 612.0ms");
    T_CONTAINS(why, "errors was 2.00%");
    T_EQ_INT(pb_slo_parse("p42<1s", &s, err, sizeof err), PX_EINVAL);
    T_EQ_INT(pb_slo_parse("p95", &s, err, sizeof err), PX_EINVAL);
}

TEST(t_payload_reproducible_and_covered)
{
    char err[256];
    pb_payload a, b, c;
    T_EQ_INT(pb_payload_generate(160, 120, 0.15, 0.30, 7, 3, PX_FMT_PNG, &a, err, sizeof err), 0);
    T_EQ_INT(pb_payload_generate(160, 120, 0.15, 0.30, 7, 3, PX_FMT_PNG, &b, err, sizeof err), 0);
    T_EQ_INT(pb_payload_generate(160, 120, 0.15, 0.30, 7, 4, PX_FMT_PNG, &c, err, sizeof err), 0);
    T_EQ_INT(a.image.len, b.image.len);
    T_EQ_MEM(a.image.data, b.image.data, a.image.len);
    T_EQ_MEM(a.mask.data, b.mask.data, a.mask.len);
    T_TRUE(a.mask.len != c.mask.len || memcmp(a.mask.data, c.mask.data, a.mask.len) != 0);
    /* the encoded mask decodes to the size and coverage reported */
    px_image m;
    T_EQ_INT(px_decode(a.mask.data, a.mask.len, NULL, &m, err, sizeof err), 0);
    T_EQ_INT(m.w, 160);
    T_EQ_INT(m.h, 120);
    size_t holes = 0;
    for (size_t i = 0; i < (size_t)m.w * m.h; i++) holes += m.px[i] != 0;
    T_NEAR((double)holes / (160.0 * 120.0), a.coverage, 1e-12);
    px_image_free(&m);
    /* photo-like: noisy enough that PNG cannot squeeze it to nothing */
    T_CMP_INT(a.image.len, >, 160 * 120);
    pb_payload_free(&a);
    pb_payload_free(&b);
    pb_payload_free(&c);
    /* coverage lands inside the range for many seeds, sizes and ranges */
    static const double ranges[][2] = {{0.15, 0.30}, {0.05, 0.05}, {0.5, 0.6}, {0, 0.01}};
    for (int r = 0; r < 4; r++)
        for (uint64_t k = 0; k < 12; k++) {
            px_image mk;
            double cov;
            int w = 50 + (int)k * 37, h = 40 + (int)k * 23;
            T_EQ_INT(pb_mask_generate(w, h, ranges[r][0], ranges[r][1], 1, k, &mk, &cov), 0);
            T_CMP_DBL(cov, >=, ranges[r][0] - 1.0 / (w * h));
            T_CMP_DBL(cov, <=, ranges[r][1] + 1e-12);
            px_image_free(&mk);
        }
}

TEST(t_requests_per_profile)
{
    char err[256];
    pb_payload p;
    T_EQ_INT(pb_payload_generate(32, 24, 0.2, 0.3, 1, 0, PX_FMT_PNG, &p, err, sizeof err), 0);
    static const int kinds[] = {PB_PROF_PIXSERVE, PB_PROF_SEED, PB_PROF_IOPAINT, PB_PROF_GENERATE};
    static const char *want[] = {"\"mask\":\"", "\"return_type\":\"image_url\"",
                                 "data:image/png;base64,", "\"num_inference_steps\":40"};
    for (int i = 0; i < 4; i++) {
        pb_profile_opts o = {.kind = kinds[i], .check = PB_CHECK_FULL, .host_header = "h:1"};
        pb_workload w;
        T_EQ_INT(pb_workload_build(&o, &p, 1, &w, err, sizeof err), 0);
        T_EQ_INT(w.nreqs, 1);
        char *head = strndup((const char *)w.reqs[0].head, w.reqs[0].head_len);
        char *body = strndup((const char *)w.reqs[0].body, w.reqs[0].body_len);
        T_CONTAINS(head, "POST ");
        T_CONTAINS(head, pb_profile_path(kinds[i]));
        T_CONTAINS(head, "Content-Type: application/json");
        char cl[64];
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", w.reqs[0].body_len);
        T_CONTAINS(head, cl);
        T_CONTAINS(body, want[i]);
        T_TRUE(strcmp(head + w.reqs[0].head_len - 4, "\r\n\r\n") == 0);
        free(head);
        free(body);
        pb_workload_free(&w);
    }
    pb_profile_opts raw = {.kind = PB_PROF_RAW, .method = "HEAD", .path = "/x",
                           .headers = {"X-A: 1"}, .nheaders = 1};
    pb_workload w;
    T_EQ_INT(pb_workload_build(&raw, NULL, 0, &w, err, sizeof err), 0);
    T_EQ_INT(w.reqs[0].is_head, 1);
    T_EQ_INT(w.body_max, 0);
    pb_workload_free(&w);
    pb_profile_opts needs = {.kind = PB_PROF_PIXSERVE};
    T_EQ_INT(pb_workload_build(&needs, NULL, 0, &w, err, sizeof err), PX_EINVAL);
    pb_payload_free(&p);
}

TEST(t_server_timing)
{
    pb_acc a;
    pb_acc_init(&a);
    T_EQ_INT(pb_acc_server_timing(&a, "queue;dur=0.5, decode;desc=\"png\";dur=6.25,infer;dur=410, "
                                      "cache;desc=hit, total;dur=417"),
             4);
    T_EQ_INT(a.nst, 4);
    T_EQ_STR(a.st_name[2], "infer");
    T_EQ_INT(a.st[2]->max, 410000000);
    T_EQ_INT(a.st[1]->max, 6250000);
    pb_acc b;
    pb_acc_init(&b);
    pb_acc_server_timing(&b, "infer;dur=100, other;dur=1");
    pb_acc_merge(&a, &b);
    T_EQ_INT(a.nst, 5);
    T_EQ_INT(a.st[2]->count, 2);
    pb_acc_free(&a);
    pb_acc_free(&b);
}

TEST(t_verdicts)
{
    /* a seed-report-like sweep: QPS flattens from 50 users, errors at 100 */
    static const double users[] = {1, 5, 10, 20, 50, 100};
    static const double qps[] = {6.8, 32.1, 58.3, 89.7, 102.4, 98.6};
    static const double ms[] = {147, 156, 172, 224, 487, 1011};
    pb_run_result *r = calloc(1, sizeof *r);
    for (int k = 0; k < 6; k++) {
        pb_stage_result *s = &r->stages[k];
        pb_acc_init(&s->acc);
        s->load = users[k];
        s->measured_s = 100;
        s->complete = 1;
        s->acc.ok = (uint64_t)(qps[k] * 100);
        px_hist_record_n(&s->acc.lat, (uint64_t)(ms[k] * 1e6), s->acc.ok);
        if (k == 5) s->acc.err[PB_ERR_TIMEOUT] = s->acc.ok / 10;
    }
    r->nstages = 6;
    pb_analysis *a = calloc(1, sizeof *a);
    pb_analysis_opts o = {.err_threshold = 0.01, .cpus = 2, .threads = 2};
    pb_analyze(r, &o, a);
    T_EQ_INT(a->saturation, 4);
    T_EQ_INT(a->sweet, 4);
    T_NEAR(a->peak_qps, 102.4, 1e-9);
    int queue_hint = 0, err_hint = 0;
    for (int i = 0; i < a->nhints; i++) {
        queue_hint |= strstr(a->hints[i], "queue in front of a fixed capacity") != NULL;
        err_hint |= strstr(a->hints[i], "mostly timeout") != NULL;
    }
    T_TRUE(err_hint);
    /* 50 -> 100 users: 2x the users, 2.1x the latency, same QPS: queueing */
    T_TRUE(queue_hint);
    /* no CPU data, no Server-Timing: no hint may claim them */
    for (int i = 0; i < a->nhints; i++) {
        T_TRUE(strstr(a->hints[i], "CPU-bound") == NULL);
        T_TRUE(strstr(a->hints[i], "Server-Timing") == NULL);
    }
    /* still growing at the top: no saturation */
    r->nstages = 4;
    pb_analyze(r, &o, a);
    T_EQ_INT(a->saturation, -1);
    T_EQ_INT(a->sweet, 3);
    r->nstages = 6;
    pb_run_result_free(r);
    free(r);
    free(a);
}

/* One sample per second of each stage: CPU %, the busiest thread %, GPU %. */
static void add_samples(pb_run_result *r, int k, double cpu, double thr, double gpu)
{
    for (int i = 0; i < 10; i++) {
        if (r->npoints == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 64;
            r->series = realloc(r->series, (size_t)r->cap * sizeof *r->series);
        }
        pb_point *p = &r->series[r->npoints++];
        memset(p, 0, sizeof *p);
        p->stage = k, p->measuring = 1, p->cli_cpu = -1;
        pb_res_init(&p->res);
        p->res.n = 1;
        pb_agg_add(&p->res.cpu, cpu);
        pb_agg_add(&p->res.thread_cpu, thr);
        pb_agg_add(&p->res.gpu_util, gpu);
        pb_agg_add(&p->res.gpu_util_peak, gpu);
    }
}

TEST(t_gpu_bound_hints)
{
    /* The H200 sweep of 2026-12-05: saturated at 4 users with the GPU 95 %
     * busy and one thread of the server at 100 % of a core (waiting on the
     * GPU); the H100 sweep of the same day: the GPU 89 % busy (the gaps
     * between a closed-loop client's requests). The GPU is the limit; no
     * hint may blame one thread or send the reader to queue limits and
     * locks. */
    static const double users[] = {1, 4, 8};
    static const double qps[] = {0.8, 1.07, 1.07};
    static const double ms[] = {1197, 4523, 8845};
    static const double busy_pct[] = {40, 95, 89};
    for (int case_ = 0; case_ < 3; case_++) {
        int gpu_busy = case_ > 0;
        pb_run_result *r = calloc(1, sizeof *r);
        for (int k = 0; k < 3; k++) {
            pb_stage_result *s = &r->stages[k];
            pb_acc_init(&s->acc);
            s->load = users[k], s->measured_s = 15, s->complete = 1;
            s->acc.ok = (uint64_t)(qps[k] * 15);
            px_hist_record_n(&s->acc.lat, (uint64_t)(ms[k] * 1e6), s->acc.ok);
            add_samples(r, k, 105, 100, busy_pct[case_]);
        }
        r->nstages = 3;
        pb_analysis *a = calloc(1, sizeof *a);
        pb_analysis_opts o = {.err_threshold = 0.01, .cpus = 16, .threads = 16};
        pb_analyze(r, &o, a);
        T_EQ_INT(a->saturation, 1);
        int thread_hint = 0, gpu_hint = 0, not_cpu = 0;
        for (int i = 0; i < a->nhints; i++) {
            thread_hint |= strstr(a->hints[i], "one thread is the bottleneck") != NULL;
            gpu_hint |= strstr(a->hints[i], "GPU-bound") != NULL;
            not_cpu |= strstr(a->hints[i], "look at worker/queue limits") != NULL;
        }
        /* the same CPU figures: blamed on a thread only when the GPU idles */
        T_EQ_INT(thread_hint, !gpu_busy);
        T_EQ_INT(not_cpu, !gpu_busy);
        T_EQ_INT(gpu_hint, gpu_busy);
        /* a stage refused by admission: the errors' one status is named */
        pb_stage_result *s8 = &r->stages[2];
        s8->acc.err[PB_ERR_STATUS] = 118036;
        pb_acc_note_status(&s8->acc, 429);
        pb_analyze(r, &o, a);
        int named = 0;
        for (int i = 0; i < a->nhints; i++)
            named |= strstr(a->hints[i], "mostly status: 118036 of 118036; all HTTP 429: probably "
                                         "the target is rate-limiting") != NULL;
        T_TRUE(named);
        pb_run_result_free(r);
        free(r);
        free(a);
    }
}

TEST_MAIN(t_durations_and_ranges, t_slo, t_payload_reproducible_and_covered, t_requests_per_profile,
          t_server_timing, t_verdicts, t_gpu_bound_hints)
