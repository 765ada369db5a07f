/*
 * metrics.c — atomic counters and fixed-bucket histograms, Prometheus text.
 */
#include "serve/metrics.h"

#include "core/alloc.h"
#include "core/err.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

/* Bucket bounds in seconds: from a cached health check to a slow 4K job. */
static const double k_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                  0.5,   1,      2.5,   5,    10,    30,   60,  120};
#define NBOUNDS ((int)(sizeof k_bounds / sizeof k_bounds[0]))
#define MIN_STATUS 100
#define NSTATUS 500 /* 100..599 */
#define NCODES 16   /* -PX_E* codes 0..15 */

typedef struct hist {
    atomic_ullong bucket[NBOUNDS + 1]; /* last: +Inf */
    atomic_ullong count;
    atomic_ullong sum_us;
} hist;

struct px_metrics {
    atomic_ullong requests[PX_ROUTE_COUNT][NSTATUS];
    hist duration[PX_ROUTE_COUNT];
    hist stage[PX_METRICS_MAX_KINDS][PX_STAGE_COUNT];
    /* Request kinds (index = px_metrics_set_kind's) and their stage labels. */
    const char *kinds[PX_METRICS_MAX_KINDS];
    const char *stage_names[PX_METRICS_MAX_KINDS][PX_STAGE_COUNT];
    int nkinds;
    atomic_ullong errors[NCODES];
    const char *engines[PX_METRICS_MAX_ENGINES];
    int nengines;
    atomic_ullong infer_ok[PX_METRICS_MAX_ENGINES];
    atomic_ullong infer_fail[PX_METRICS_MAX_ENGINES][NCODES];
    atomic_ullong outcomes[PX_METRICS_MAX_KINDS][PX_OUTCOME_COUNT];
    hist gen_stage[PX_GEN_STAGE_COUNT];
    hist gen_step;
};

const char *px_stage_name(enum px_stage s)
{
    static const char *names[PX_STAGE_COUNT] = {"queue", "decode", "infer", "encode"};
    return (unsigned)s < PX_STAGE_COUNT ? names[s] : "unknown";
}

px_metrics *px_metrics_new(void)
{
    /* calloc'd zeroes are valid initial values for these atomics. */
    return px_xcalloc(1, sizeof(px_metrics));
}

void px_metrics_free(px_metrics *m)
{
    free(m);
}

static void hist_record(hist *h, double s)
{
    if (!(s >= 0)) s = 0;
    int i = 0;
    while (i < NBOUNDS && s > k_bounds[i]) i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)(s * 1e6 + 0.5),
                              memory_order_relaxed);
}

void px_metrics_request(px_metrics *m, enum px_route r, int status, double seconds)
{
    if ((unsigned)r >= PX_ROUTE_COUNT) r = PX_ROUTE_OTHER;
    if (status < MIN_STATUS || status >= MIN_STATUS + NSTATUS) status = 500;
    atomic_fetch_add_explicit(&m->requests[r][status - MIN_STATUS], 1, memory_order_relaxed);
    hist_record(&m->duration[r], seconds);
}

void px_metrics_set_kind(px_metrics *m, int kind, const char *name,
                         const char *const stage_names[PX_STAGE_COUNT])
{
    if (kind < 0 || kind >= PX_METRICS_MAX_KINDS) return;
    m->kinds[kind] = name;
    for (int s = 0; s < PX_STAGE_COUNT; s++)
        m->stage_names[kind][s] = stage_names && stage_names[s] ? stage_names[s]
                                                                : px_stage_name((enum px_stage)s);
    if (kind >= m->nkinds) m->nkinds = kind + 1;
}

/* Kinds never named count under slot 0, so nothing is lost. */
static int kind_slot(const px_metrics *m, int kind)
{
    return kind >= 0 && kind < m->nkinds ? kind : 0;
}

void px_metrics_stage(px_metrics *m, int kind, enum px_stage s, double seconds)
{
    if ((unsigned)s < PX_STAGE_COUNT) hist_record(&m->stage[kind_slot(m, kind)][s], seconds);
}

static const char *const k_gen_stages[PX_GEN_STAGE_COUNT] = {"text_encode", "denoise",
                                                               "vae_decode"};

void px_metrics_generate(px_metrics *m, const double *stage_s, const float *step_ms, int nsteps)
{
    for (int i = 0; i < PX_GEN_STAGE_COUNT; i++) hist_record(&m->gen_stage[i], stage_s[i]);
    for (int i = 0; i < nsteps; i++) hist_record(&m->gen_step, step_ms[i] / 1e3);
}

void px_metrics_error(px_metrics *m, int code)
{
    int i = -code;
    if (i <= 0 || i >= NCODES) i = 0; /* slot 0: unknown codes ("internal") */
    atomic_fetch_add_explicit(&m->errors[i], 1, memory_order_relaxed);
}

void px_metrics_outcome(px_metrics *m, int kind, enum px_outcome o)
{
    if ((unsigned)o < PX_OUTCOME_COUNT)
        atomic_fetch_add_explicit(&m->outcomes[kind_slot(m, kind)][o], 1, memory_order_relaxed);
}

void px_metrics_set_engines(px_metrics *m, const char *const *names, int n)
{
    if (n > PX_METRICS_MAX_ENGINES) n = PX_METRICS_MAX_ENGINES;
    for (int i = 0; i < n; i++) m->engines[i] = names[i];
    m->nengines = n;
}

void px_metrics_inference(px_metrics *m, int engine, int code)
{
    if (engine < 0 || engine >= m->nengines) return;
    if (code == 0) {
        atomic_fetch_add_explicit(&m->infer_ok[engine], 1, memory_order_relaxed);
        return;
    }
    int i = -code;
    if (i <= 0 || i >= NCODES) i = 0;
    atomic_fetch_add_explicit(&m->infer_fail[engine][i], 1, memory_order_relaxed);
}

uint64_t px_metrics_request_count(px_metrics *m, enum px_route r, int status)
{
    if ((unsigned)r >= PX_ROUTE_COUNT || status < MIN_STATUS || status >= MIN_STATUS + NSTATUS)
        return 0;
    return atomic_load(&m->requests[r][status - MIN_STATUS]);
}

static int render_outcomes(px_metrics *m, px_buf *b)
{
    static const char *const names[PX_OUTCOME_COUNT] = {"completed", "failed", "timeout",
                                                        "cancelled", "rejected"};
    int rc = px_buf_puts(b, "# HELP pixserve_jobs_total Requests by kind and how they ended.\n"
                            "# TYPE pixserve_jobs_total counter\n");
    for (int k = 0; k < (m->nkinds ? m->nkinds : 1) && !rc; k++)
        for (int o = 0; o < PX_OUTCOME_COUNT && !rc; o++)
            rc = px_buf_printf(b, "pixserve_jobs_total{kind=\"%s\",outcome=\"%s\"} %llu\n",
                               m->kinds[k] ? m->kinds[k] : "inpaint", names[o],
                               (unsigned long long)atomic_load(&m->outcomes[k][o]));
    return rc;
}

/* One histogram; labels is the series' label text without braces. */
static int render_hist(px_buf *b, const char *name, const char *labels, hist *h)
{
    int rc = 0;
    unsigned long long cum = 0;
    for (int i = 0; i <= NBOUNDS && !rc; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < NBOUNDS)
            rc = px_buf_printf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, k_bounds[i],
                               cum);
        else
            rc = px_buf_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, cum);
    }
    if (!rc)
        rc = px_buf_printf(b, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels,
                           (double)atomic_load(&h->sum_us) / 1e6, name, labels,
                           (unsigned long long)atomic_load(&h->count));
    return rc;
}

/* Requests by route and status, and their durations by route. */
static int render_http(px_metrics *m, px_buf *b)
{
    int rc = px_buf_puts(b, "# HELP pixserve_requests_total HTTP requests by route and status.\n"
                            "# TYPE pixserve_requests_total counter\n");
    for (int r = 0; r < PX_ROUTE_COUNT && !rc; r++)
        for (int s = 0; s < NSTATUS && !rc; s++) {
            unsigned long long v = atomic_load_explicit(&m->requests[r][s], memory_order_relaxed);
            if (v)
                rc = px_buf_printf(b, "pixserve_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                                   px_route_label((enum px_route)r), s + MIN_STATUS, v);
        }
    if (!rc)
        rc = px_buf_puts(b, "# HELP pixserve_request_duration_seconds Time from the request's "
                            "arrival to its reply, by route.\n"
                            "# TYPE pixserve_request_duration_seconds histogram\n");
    char lab[160];
    for (int r = 0; r < PX_ROUTE_COUNT && !rc; r++)
        if (atomic_load(&m->duration[r].count)) {
            snprintf(lab, sizeof lab, "route=\"%s\"", px_route_label((enum px_route)r));
            rc = render_hist(b, "pixserve_request_duration_seconds", lab, &m->duration[r]);
        }
    return rc;
}

/* Job stages per request kind, and the text-to-image stages and steps. */
static int render_stages(px_metrics *m, px_buf *b)
{
    char lab[160];
    int rc = px_buf_puts(b, "# HELP pixserve_stage_duration_seconds Time per job stage by "
                            "request kind (queue wait, prepare, inference, finish; the stage "
                            "label is the kind's name for it).\n"
                            "# TYPE pixserve_stage_duration_seconds histogram\n");
    for (int k = 0; k < (m->nkinds ? m->nkinds : 1) && !rc; k++)
        for (int s = 0; s < PX_STAGE_COUNT && !rc; s++) {
            snprintf(lab, sizeof lab, "kind=\"%s\",stage=\"%s\"",
                     m->kinds[k] ? m->kinds[k] : "inpaint",
                     m->stage_names[k][s] ? m->stage_names[k][s] : px_stage_name((enum px_stage)s));
            rc = render_hist(b, "pixserve_stage_duration_seconds", lab, &m->stage[k][s]);
        }
    if (!rc)
        rc = px_buf_puts(b, "# HELP pixserve_generate_stage_seconds Time per text-to-image "
                            "stage of each generated image.\n"
                            "# TYPE pixserve_generate_stage_seconds histogram\n");
    for (int s = 0; s < PX_GEN_STAGE_COUNT && !rc; s++) {
        snprintf(lab, sizeof lab, "stage=\"%s\"", k_gen_stages[s]);
        rc = render_hist(b, "pixserve_generate_stage_seconds", lab, &m->gen_stage[s]);
    }
    if (!rc)
        rc = px_buf_puts(b, "# HELP pixserve_generate_step_seconds Time per denoising step.\n"
                            "# TYPE pixserve_generate_step_seconds histogram\n");
    if (!rc) rc = render_hist(b, "pixserve_generate_step_seconds", "kind=\"generate\"", &m->gen_step);
    return rc;
}

/* Failed requests by code, and inference outcomes per engine. */
static int render_errors(px_metrics *m, px_buf *b)
{
    int rc = px_buf_puts(b, "# HELP pixserve_errors_total Failed requests by error code.\n"
                            "# TYPE pixserve_errors_total counter\n");
    for (int i = 0; i < NCODES && !rc; i++) {
        unsigned long long v = atomic_load(&m->errors[i]);
        if (v)
            rc = px_buf_printf(b, "pixserve_errors_total{code=\"%s\"} %llu\n", i ? px_err_name(-i) : "internal",
                               v);
    }
    /* Triton-style inference outcomes per engine. */
    if (!rc)
        rc = px_buf_puts(b, "# HELP pixserve_inference_request_success_total Inference requests "
                            "answered successfully, by engine.\n"
                            "# TYPE pixserve_inference_request_success_total counter\n");
    for (int e = 0; e < m->nengines && !rc; e++)
        rc = px_buf_printf(b, "pixserve_inference_request_success_total{engine=\"%s\"} %llu\n",
                           m->engines[e], (unsigned long long)atomic_load(&m->infer_ok[e]));
    if (!rc)
        rc = px_buf_puts(b, "# HELP pixserve_inference_request_failure_total Inference requests "
                            "that failed, by engine and reason.\n"
                            "# TYPE pixserve_inference_request_failure_total counter\n");
    for (int e = 0; e < m->nengines && !rc; e++)
        for (int i = 0; i < NCODES && !rc; i++) {
            unsigned long long v = atomic_load(&m->infer_fail[e][i]);
            if (v)
                rc = px_buf_printf(b,
                                   "pixserve_inference_request_failure_total{engine=\"%s\","
                                   "reason=\"%s\"} %llu\n",
                                   m->engines[e], i ? px_err_name(-i) : "internal", v);
        }
    return rc;
}

/* Batch sizes, OOM splits and the admission gauges. */
static int render_batches(const px_metrics_gauges *g, px_buf *b)
{
    int rc = 0;
    /* Batch sizes: the scheduler keeps counts per size class; exposed as a
     * histogram with the class upper bounds as buckets. */
    static const int batch_le[PX_METRICS_BATCH_SLOTS - 1] = {1, 2, 4, 8, 16, 32};
    if (!rc)
        rc = px_buf_puts(b, "# HELP pixserve_batch_size Items per engine call.\n"
                            "# TYPE pixserve_batch_size histogram\n");
    unsigned long long cum = 0;
    for (int i = 0; i < PX_METRICS_BATCH_SLOTS && !rc; i++) {
        cum += g->batch_hist[i];
        if (i < PX_METRICS_BATCH_SLOTS - 1)
            rc = px_buf_printf(b, "pixserve_batch_size_bucket{le=\"%d\"} %llu\n", batch_le[i], cum);
        else
            rc = px_buf_printf(b, "pixserve_batch_size_bucket{le=\"+Inf\"} %llu\n", cum);
    }
    if (!rc)
        rc = px_buf_printf(b,
                           "pixserve_batch_size_sum %llu\npixserve_batch_size_count %llu\n"
                           "# HELP pixserve_batch_oom_splits_total Batches split after the "
                           "engine ran out of memory.\n"
                           "# TYPE pixserve_batch_oom_splits_total counter\n"
                           "pixserve_batch_oom_splits_total %llu\n"
                           "# HELP pixserve_batch_joins_total Items that joined a running "
                           "batch between steps (continuous batching).\n"
                           "# TYPE pixserve_batch_joins_total counter\n"
                           "pixserve_batch_joins_total %llu\n"
                           "# HELP pixserve_pending_requests Admitted requests not yet "
                           "answered, by priority.\n"
                           "# TYPE pixserve_pending_requests gauge\n"
                           "pixserve_pending_requests{priority=\"high\"} %d\n"
                           "pixserve_pending_requests{priority=\"normal\"} %d\n"
                           "pixserve_pending_requests{priority=\"low\"} %d\n"
                           "# HELP pixserve_cpu_queue_depth Requests waiting for the CPU pool "
                           "(parsing, decoding, encoding).\n"
                           "# TYPE pixserve_cpu_queue_depth gauge\npixserve_cpu_queue_depth %d\n"
                           "# HELP pixserve_async_jobs Jobs held by the jobs API.\n"
                           "# TYPE pixserve_async_jobs gauge\npixserve_async_jobs %d\n",
                           (unsigned long long)g->batch_items, (unsigned long long)g->batches,
                           (unsigned long long)g->oom_splits,
                           (unsigned long long)g->batch_joins, g->pending[0], g->pending[1],
                           g->pending[2], g->cpu_queued, g->async_jobs);
    return rc;
}

/* LoRAs (when a registry is configured) and GPUs (when NVML answers). */
static int render_devices(const px_metrics_gauges *g, px_buf *b)
{
    int rc = 0;
    if (g->loras)
        rc = px_buf_printf(b,
                           "# HELP pixserve_loras_registered LoRAs requests may name.\n"
                           "# TYPE pixserve_loras_registered gauge\npixserve_loras_registered %d\n"
                           "# HELP pixserve_loras_loaded LoRAs open on an engine.\n"
                           "# TYPE pixserve_loras_loaded gauge\npixserve_loras_loaded %d\n"
                           "# HELP pixserve_lora_loaded_bytes Memory the loaded LoRAs hold.\n"
                           "# TYPE pixserve_lora_loaded_bytes gauge\npixserve_lora_loaded_bytes %llu\n",
                           g->loras_registered, g->loras_loaded,
                           (unsigned long long)g->lora_loaded_bytes);
    /* GPUs, as NVML reads them at scrape time (absent without a driver). */
    if (!rc && g->ngpus > 0)
        rc = px_buf_puts(b, "# HELP pixserve_gpu_utilization_ratio Fraction of the last sample "
                            "period a kernel ran, per device.\n"
                            "# TYPE pixserve_gpu_utilization_ratio gauge\n"
                            "# HELP pixserve_gpu_memory_used_bytes Device memory in use.\n"
                            "# TYPE pixserve_gpu_memory_used_bytes gauge\n"
                            "# HELP pixserve_gpu_memory_total_bytes Device memory installed.\n"
                            "# TYPE pixserve_gpu_memory_total_bytes gauge\n");
    for (int i = 0; i < g->ngpus && !rc; i++) {
        const px_gpu_info *d = &g->gpus[i];
        if (d->util_gpu >= 0)
            rc = px_buf_printf(b, "pixserve_gpu_utilization_ratio{device=\"%d\"} %.2f\n", d->index,
                               d->util_gpu / 100.0);
        if (!rc)
            rc = px_buf_printf(b,
                               "pixserve_gpu_memory_used_bytes{device=\"%d\"} %llu\n"
                               "pixserve_gpu_memory_total_bytes{device=\"%d\"} %llu\n",
                               d->index, (unsigned long long)d->mem_used, d->index,
                               (unsigned long long)d->mem_total);
    }
    return rc;
}

/* Queue, workers, readiness and the process. */
static int render_service(const px_metrics_gauges *g, px_buf *b)
{
    int rc = px_buf_printf(
        b,
        "# HELP pixserve_queue_depth Engine inputs waiting for a device worker.\n"
        "# TYPE pixserve_queue_depth gauge\npixserve_queue_depth %d\n"
        "# HELP pixserve_queue_capacity Requests admitted per priority before 429.\n"
        "# TYPE pixserve_queue_capacity gauge\npixserve_queue_capacity %d\n"
        "# HELP pixserve_inflight Engine inputs being computed now.\n"
        "# TYPE pixserve_inflight gauge\npixserve_inflight %d\n"
        "# HELP pixserve_workers Device worker threads.\n"
        "# TYPE pixserve_workers gauge\npixserve_workers %d\n"
        "# HELP pixserve_ready Whether the engines are loaded (1) or not (0).\n"
        "# TYPE pixserve_ready gauge\npixserve_ready %d\n"
        "# HELP pixserve_uptime_seconds Seconds since the service started.\n"
        "# TYPE pixserve_uptime_seconds gauge\npixserve_uptime_seconds %.3f\n"
        "# HELP process_resident_memory_bytes Resident memory.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n"
        "# HELP process_open_fds Open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds %d\n",
        g->queue_depth, g->queue_capacity, g->inflight, g->workers, g->ready, g->uptime_s,
        (unsigned long long)g->rss_bytes, g->open_fds);
    return rc;
}

int px_metrics_render(px_metrics *m, const px_metrics_gauges *g, px_buf *b)
{
    int rc = render_http(m, b);
    if (!rc) rc = render_stages(m, b);
    if (!rc) rc = render_errors(m, b);
    if (!rc) rc = render_batches(g, b);
    if (!rc) rc = render_devices(g, b);
    if (!rc) rc = render_service(g, b);
    if (!rc) rc = render_outcomes(m, b);
    return rc;
}
