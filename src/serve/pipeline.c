/*
 * pipeline.c — tasks through prep (CPU pool) → device (scheduler) → finish
 * (CPU pool), with one deadline timer per task (see pipeline.h).
 *
 * Ending exactly once: end_task() decides under the task's mutex; the first
 * caller wins, records the reply, and then (without the lock) releases the
 * admission slot, cancels whatever work is still in flight and calls the
 * owner. Every holder of in-flight work (the CPU job, the scheduler items,
 * the timer) holds its own reference, so a task lives until the last of
 * them lets go, whatever order they finish in.
 */
#include "serve/pipeline.h"

#include "core/alloc.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/timer.h"
#include "serve/hd.h"
#include "serve/inpaint.h"
#include "serve/workers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where a task is; reported by the jobs API. */
enum stage { ST_PREP, ST_DECODE, ST_QUEUED, ST_INFER, ST_ENCODE, ST_ENDED };

/* How it ended. */
enum outcome { OUT_NONE, OUT_DONE, OUT_FAILED, OUT_CANCELLED, OUT_EXPIRED };

#define MAX_CLIENTS 1024

struct client_count {
    char key[64];
    int n;
};

struct px_pipeline {
    const px_serve_config *cfg;
    px_engine *const *engines;
    int nengines;
    px_outputs *outputs;
    px_metrics *metrics;
    px_img_limits limits;
    px_workers *cpu;
    int workers_per_engine; /* scheduler workers per engine */
    px_sched *sched;
    px_timers *timers;

    pthread_mutex_t mu; /* admission counters and the task count */
    pthread_cond_t idle;
    int pending[PX_PRIO_COUNT];
    struct client_count clients[MAX_CLIENTS];
    int tasks;  /* alive (referenced) */
    int active; /* not yet ended */
    int draining;
};

struct px_task {
    atomic_int refs;
    px_pipeline *p;
    pthread_mutex_t mu;

    /* What was asked. */
    enum px_dialect dialect;
    int async;
    char content_type[256];
    uint8_t *body;
    size_t body_len;
    char client[64];
    int64_t arrival_ns, deadline_ns, created_ms;
    px_task_done_fn done;
    void *done_arg;

    /* Parsed and planned (by prep). */
    px_inpaint_req req;
    int engine_index;
    enum px_priority prio;
    int admitted;
    px_inpaint_input in;
    px_hd_plan plan;
    px_sched_item *items;
    int nitems, items_left, items_submitted;
    int item_rc; /* first item failure */
    char item_err[160];

    /* Progress (under mu). */
    enum stage stage;
    px_work *cpu_work;  /* the prep or finish job in the CPU pool, if any */
    uint64_t timer_id;
    int64_t t_queued, t_started, t_infer_end, t_finished;
    int64_t decode_ns, encode_ns, save_ns;
    int batch_size;

    /* The end. */
    enum outcome outcome;
    int http_status, code;
    const char *content_type_out;
    px_buf reply;
    const char *hdr_name;
    char hdr_value[32];
};

/* ------------------------------------------------------------ references */

void px_task_ref(px_task *t)
{
    atomic_fetch_add(&t->refs, 1);
}

void px_task_unref(px_task *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1) return;
    px_pipeline *p = t->p;
    px_req_free(&t->req);
    px_inpaint_input_free(&t->in);
    px_hd_free(&t->plan);
    free(t->items);
    free(t->body);
    px_buf_free(&t->reply);
    pthread_mutex_destroy(&t->mu);
    free(t);
    pthread_mutex_lock(&p->mu);
    p->tasks--;
    pthread_mutex_unlock(&p->mu);
}

/* px_work context hooks: a CPU job holds a task reference. */
static void work_ctx_free(void *ctx)
{
    px_task_unref(ctx);
}

/* ------------------------------------------------------------ admission */

static struct client_count *client_slot(px_pipeline *p, const char *key, int create)
{
    struct client_count *free_slot = NULL;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        if (p->clients[i].n > 0 && strcmp(p->clients[i].key, key) == 0) return &p->clients[i];
        if (!free_slot && p->clients[i].n == 0) free_slot = &p->clients[i];
    }
    if (!create || !free_slot) return NULL;
    snprintf(free_slot->key, sizeof free_slot->key, "%s", key);
    return free_slot;
}

/* Seconds a refused client should wait: the work ahead at the measured
 * engine time per item, spread over the device workers; at least 1. */
static int retry_after(px_pipeline *p)
{
    px_sched_stats st;
    px_sched_stats_get(p->sched, &st);
    double per = st.mean_item_ms > 0 ? st.mean_item_ms : 1000.0;
    int ahead = st.running;
    for (int i = 0; i < PX_PRIO_COUNT; i++) ahead += st.queued[i];
    int workers = p->nengines * p->workers_per_engine;
    int s = (int)(per * (ahead + 1) / workers / 1000.0 + 0.999);
    return s < 1 ? 1 : s;
}

/* Takes an admission slot for the task, or explains why not. Called with
 * the task's lock held, so that end_task sees either no slot or a slot it
 * must release (never a slot being taken). */
static int admit(px_pipeline *p, px_task *t, char *err, size_t errlen)
{
    if (t->outcome != OUT_NONE) return px_errf(err, errlen, PX_ECANCELED, "ended");
    pthread_mutex_lock(&p->mu);
    if (p->pending[t->prio] >= p->cfg->queue) {
        pthread_mutex_unlock(&p->mu);
        return px_errf(err, errlen, PX_EBUSY,
                       "the %s-priority queue is full (%d requests); retry after the time in "
                       "Retry-After",
                       px_priority_name(t->prio), p->cfg->queue);
    }
    if (p->cfg->max_per_client > 0 && t->client[0]) {
        struct client_count *c = client_slot(p, t->client, 1);
        if (!c || c->n >= p->cfg->max_per_client) {
            pthread_mutex_unlock(&p->mu);
            return px_errf(err, errlen, PX_EBUSY,
                           "this client already has %d requests in flight (the limit)",
                           p->cfg->max_per_client);
        }
        c->n++;
    }
    p->pending[t->prio]++;
    t->admitted = 1;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

static void release_admission(px_pipeline *p, px_task *t)
{
    pthread_mutex_lock(&p->mu);
    p->pending[t->prio]--;
    if (p->cfg->max_per_client > 0 && t->client[0]) {
        struct client_count *c = client_slot(p, t->client, 0);
        if (c) c->n--;
    }
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------------ ending */

static void error_body(px_buf *b, int code, const char *msg)
{
    px_buf_free(b);
    px_buf_init(b, 1 << 16);
    px_buf_puts(b, "{\"error\":{\"code\":");
    px_json_str(b, px_err_name(code));
    px_buf_puts(b, ",\"message\":");
    px_json_str(b, msg);
    px_buf_puts(b, "}}\n");
}

/* Timings of the stages the task went through, in milliseconds. Called
 * with the task's lock held; while the device runs the task its start is
 * only known to the scheduler, which is asked (lock order: task, then
 * scheduler, as when items are submitted). */
static void stage_ms(const px_task *t, double *queue, double *infer)
{
    int64_t end = t->t_finished ? t->t_finished : px_now_ns();
    int64_t started = t->t_started;
    if (!started && t->items_submitted && t->nitems > 0)
        px_sched_position(t->p->sched, &t->items[0], &started);
    *queue = t->t_queued ? px_ns_to_ms((started ? started : end) - t->t_queued) : 0;
    *infer = started ? px_ns_to_ms((t->t_infer_end ? t->t_infer_end : end) - started) : 0;
}

/*
 * Ends the task once. reply (may be NULL) is moved in. from_timer says the
 * caller is the task's own deadline callback (which must not disarm
 * itself). Returns 1 if this call ended it.
 */
static int end_task(px_task *t, enum outcome out, int code, const char *msg, int http_status,
                    const char *ctype, px_buf *reply, int from_timer)
{
    px_pipeline *p = t->p;
    pthread_mutex_lock(&t->mu);
    if (t->outcome != OUT_NONE) {
        pthread_mutex_unlock(&t->mu);
        if (reply) px_buf_free(reply);
        return 0;
    }
    t->outcome = out;
    t->stage = ST_ENDED;
    t->t_finished = px_now_ns();
    t->code = code;
    t->http_status = http_status ? http_status : px_err_http_status(code);
    if (out == OUT_CANCELLED) t->http_status = 499;
    if (reply) {
        px_buf_free(&t->reply);
        t->reply = *reply;
        px_buf_init(reply, 0);
        t->content_type_out = ctype;
    } else {
        error_body(&t->reply, code, msg);
        t->content_type_out = "application/json";
    }
    px_work *job = t->cpu_work;
    t->cpu_work = NULL;
    int submitted = t->items_submitted;
    uint64_t timer = t->timer_id;
    px_task_done_fn done = t->done;
    void *done_arg = t->done_arg;
    int admitted = t->admitted, engine_index = t->engine_index;
    pthread_mutex_unlock(&t->mu);

    if (admitted) release_admission(p, t);
    pthread_mutex_lock(&p->mu);
    if (--p->active == 0) pthread_cond_broadcast(&p->idle);
    pthread_mutex_unlock(&p->mu);
    if (engine_index >= 0) px_metrics_inference(p->metrics, engine_index, code);
    px_metrics_outcome(p->metrics, out == OUT_DONE        ? PX_OUTCOME_COMPLETED
                                   : out == OUT_EXPIRED   ? PX_OUTCOME_TIMEOUT
                                   : out == OUT_CANCELLED ? PX_OUTCOME_CANCELLED
                                   : code == PX_EBUSY     ? PX_OUTCOME_REJECTED
                                                          : PX_OUTCOME_FAILED);
    if (code) px_metrics_error(p->metrics, code);
    /* Stop the work still in flight; its results are dropped. */
    if (job) {
        px_workers_cancel(p->cpu, job);
        px_work_unref(job);
    }
    if (submitted)
        for (int i = 0; i < t->nitems; i++) px_sched_cancel(p->sched, &t->items[i]);
    if (!from_timer && timer && px_timer_disarm(p->timers, timer)) px_task_unref(t);
    if (done) done(t, done_arg);
    return 1;
}

static void fail_task(px_task *t, int code, const char *msg)
{
    end_task(t, OUT_FAILED, code, msg, 0, NULL, NULL, 0);
}

static void on_deadline(void *arg)
{
    px_task *t = arg;
    pthread_mutex_lock(&t->mu);
    double q, inf;
    stage_ms(t, &q, &inf);
    int64_t waited = px_now_ns() - t->arrival_ns;
    pthread_mutex_unlock(&t->mu);
    char msg[200];
    snprintf(msg, sizeof msg,
             "the request did not finish within its deadline (%.0f ms: %.0f ms queued, %.0f ms "
             "computing); the work was abandoned",
             px_ns_to_ms(waited), q, inf);
    end_task(t, OUT_EXPIRED, PX_ETIMEDOUT, msg, 0, NULL, NULL, 1);
    px_task_unref(t); /* the timer's reference */
}

int px_task_cancel(px_task *t)
{
    return end_task(t, OUT_CANCELLED, PX_ECANCELED, "cancelled", 0, NULL, NULL, 0) ? 0
                                                                                  : PX_EINVAL;
}

void px_task_detach(px_task *t)
{
    pthread_mutex_lock(&t->mu);
    t->done = NULL;
    t->done_arg = NULL;
    pthread_mutex_unlock(&t->mu);
}

/* The running CPU job no longer needs to be cancellable: drop the task's
 * handle on it (the pool keeps its own reference while it runs). */
static void release_cpu_job(px_task *t)
{
    pthread_mutex_lock(&t->mu);
    px_work *job = t->cpu_work;
    t->cpu_work = NULL;
    pthread_mutex_unlock(&t->mu);
    if (job) px_work_unref(job);
}

/* ------------------------------------------------------------ finish */

/* Builds the success reply of the task's dialect and return mode. */
static int build_reply(px_task *t, px_buf *enc, enum px_format fmt, px_buf *reply,
                       const char **ctype, char *err, size_t errlen)
{
    px_pipeline *p = t->p;
    char name[PX_OUTPUT_NAME_MAX] = "";
    if (t->async || t->req.ret == PX_RETURN_IMAGE) {
        *ctype = px_format_mime(fmt);
        *reply = *enc;
        px_buf_init(enc, 0);
        return 0;
    }
    if (t->req.ret == PX_RETURN_URL) {
        int64_t t0 = px_now_ns();
        int rc = px_outputs_save(p->outputs, enc->data, enc->len, px_format_name(fmt), name, err,
                                 errlen);
        pthread_mutex_lock(&t->mu);
        t->save_ns = px_now_ns() - t0;
        pthread_mutex_unlock(&t->mu);
        if (rc) return rc;
    }
    size_t cap = px_b64_encoded_len(enc->len) + 4096;
    px_buf_init(reply, cap);
    int rc = px_buf_reserve(reply, cap);
    if (rc) return px_errf(err, errlen, rc, "out of memory building the reply");
    px_buf_puts(reply, "{");
    if (t->dialect == PX_DIALECT_SEED) px_buf_puts(reply, "\"status\":\"ok\",");
    if (t->req.ret == PX_RETURN_URL) {
        px_buf_puts(reply, t->dialect == PX_DIALECT_SEED ? "\"image_url\":" : "\"url\":");
        char url[PX_OUTPUT_NAME_MAX + 16];
        snprintf(url, sizeof url, "/outputs/%s", name);
        px_json_str(reply, url);
    } else {
        px_buf_puts(reply, "\"image\":\"");
        reply->len += px_b64_encode(enc->data, enc->len, (char *)reply->data + reply->len);
        px_buf_puts(reply, "\"");
    }
    /* A snapshot of the timings: a deadline may end the task meanwhile. */
    double q, inf;
    pthread_mutex_lock(&t->mu);
    stage_ms(t, &q, &inf);
    int64_t dec = t->decode_ns, enc_ns = t->encode_ns, save = t->save_ns;
    int batch = t->batch_size, ei = t->engine_index;
    pthread_mutex_unlock(&t->mu);
    px_buf_printf(reply, ",\"format\":\"%s\",\"width\":%d,\"height\":%d,\"seed\":%llu,\"engine\":",
                  px_format_name(fmt), t->in.rgb.w, t->in.rgb.h, (unsigned long long)t->req.seed);
    px_json_str(reply, px_engine_name(p->engines[ei]));
    px_buf_printf(reply, ",\"hd_strategy\":\"%s\",\"windows\":%d,\"batch_size\":%d,",
                  px_hd_name(t->plan.used), t->plan.nwin, batch);
    px_buf_puts(reply, "\"timings\":{\"queue_ms\":");
    px_json_num(reply, q);
    px_buf_puts(reply, ",\"decode_ms\":");
    px_json_num(reply, px_ns_to_ms(dec));
    px_buf_puts(reply, ",\"infer_ms\":");
    px_json_num(reply, inf);
    px_buf_puts(reply, ",\"encode_ms\":");
    px_json_num(reply, px_ns_to_ms(enc_ns));
    px_buf_puts(reply, ",\"save_ms\":");
    px_json_num(reply, px_ns_to_ms(save));
    rc = px_buf_puts(reply, "}}\n");
    if (rc) return px_errf(err, errlen, rc, "reply larger than expected");
    *ctype = "application/json";
    return 0;
}

static int finish_job(void *ctx, const atomic_int *cancel)
{
    px_task *t = ctx;
    px_pipeline *p = t->p;
    (void)cancel;
    char err[256];
    px_image out = {0};
    px_buf enc, reply;
    px_buf_init(&enc, (size_t)1 << 30);
    px_buf_init(&reply, 0);
    const char *ctype = NULL;
    int rc;
    release_cpu_job(t);
    pthread_mutex_lock(&t->mu);
    int ended = t->outcome != OUT_NONE;
    if (!ended) t->stage = ST_ENCODE;
    pthread_mutex_unlock(&t->mu);
    if (ended) return 0;

    int64_t t0 = px_now_ns();
    if ((rc = px_image_alloc(&out, t->in.rgb.w, t->in.rgb.h, 3, NULL, NULL, 0)) ||
        (rc = px_hd_assemble(&t->plan, &t->in.rgb, &t->in.mask, &out))) {
        snprintf(err, sizeof err, "out of memory assembling a %dx%d result", t->in.rgb.w,
                 t->in.rgb.h);
        goto fail;
    }
    px_encode_opts eo = {.fmt = t->req.out_fmt ? t->req.out_fmt : PX_FMT_PNG,
                         .quality = t->req.quality, .png_level = p->cfg->png_level};
    if ((rc = px_inpaint_encode(&out, &t->in.alpha, &eo, &enc, err, sizeof err))) goto fail;
    int64_t encode_ns = px_now_ns() - t0;
    pthread_mutex_lock(&t->mu);
    t->encode_ns = encode_ns;
    pthread_mutex_unlock(&t->mu);
    px_image_free(&out);
    px_metrics_stage(p->metrics, PX_STAGE_ENCODE, (double)encode_ns / 1e9);
    if ((rc = build_reply(t, &enc, eo.fmt, &reply, &ctype, err, sizeof err))) goto fail;
    px_buf_free(&enc);
    end_task(t, OUT_DONE, 0, NULL, 200, ctype, &reply, 0);
    return 0;
fail:
    px_image_free(&out);
    px_buf_free(&enc);
    px_buf_free(&reply);
    fail_task(t, rc, err);
    return rc;
}

/* Queues the task's finish job; on a failure to queue, ends the task. */
static void start_finish(px_task *t)
{
    px_pipeline *p = t->p;
    px_task_ref(t);
    px_work *job = px_work_new(finish_job, t, work_ctx_free, 0, NULL, NULL);
    pthread_mutex_lock(&t->mu);
    if (t->outcome != OUT_NONE) {
        pthread_mutex_unlock(&t->mu);
        px_work_unref(job); /* drops the reference just taken */
        return;
    }
    t->cpu_work = job;
    px_work_ref(job);
    pthread_mutex_unlock(&t->mu);
    if (px_workers_submit_urgent(p->cpu, job) != 0) fail_task(t, PX_ECANCELED, "shutting down");
    px_work_unref(job);
}

/* ------------------------------------------------------------ device */

static void on_item_done(px_sched_item *it, void *arg)
{
    px_task *t = arg;
    px_pipeline *p = t->p;
    pthread_mutex_lock(&t->mu);
    if (it->status && !t->item_rc) {
        t->item_rc = it->status;
        snprintf(t->item_err, sizeof t->item_err, "%s", it->err);
    }
    if (it->t_started && (!t->t_started || it->t_started < t->t_started))
        t->t_started = it->t_started;
    if (it->batch_size > t->batch_size) t->batch_size = it->batch_size;
    if (t->stage == ST_QUEUED && it->t_started) t->stage = ST_INFER;
    int last = --t->items_left == 0;
    if (last) t->t_infer_end = px_now_ns();
    int rc = t->item_rc;
    char msg[160];
    snprintf(msg, sizeof msg, "%s", t->item_err);
    pthread_mutex_unlock(&t->mu);
    if (!last) return;
    if (t->t_started) {
        px_metrics_stage(p->metrics, PX_STAGE_QUEUE, (double)(t->t_started - t->t_queued) / 1e9);
        px_metrics_stage(p->metrics, PX_STAGE_INFER,
                         (double)(t->t_infer_end - t->t_started) / 1e9);
    }
    if (rc) fail_task(t, rc, msg);
    else start_finish(t);
    px_task_unref(t); /* the items' reference */
}

/* ------------------------------------------------------------ prep */

static int prep_job(void *ctx, const atomic_int *cancel)
{
    px_task *t = ctx;
    px_pipeline *p = t->p;
    char err[320];
    int rc;
    (void)cancel;

    /* Parse (the body is freed as soon as it is parsed). */
    if (strncasecmp(t->content_type, "application/json", 16) == 0 &&
        (t->content_type[16] == 0 || t->content_type[16] == ';' || t->content_type[16] == ' ')) {
        rc = px_req_parse_json((const char *)t->body, t->body_len, t->dialect, p->cfg->max_body,
                               &t->req, err, sizeof err);
    } else if (t->dialect == PX_DIALECT_V1 &&
               strncasecmp(t->content_type, "multipart/form-data", 19) == 0) {
        rc = px_req_parse_multipart(t->content_type, t->body, t->body_len, t->dialect,
                                    p->cfg->max_body, &t->req, err, sizeof err);
    } else {
        snprintf(err, sizeof err, "Content-Type %s%.120s%s is not supported here; send %s",
                 t->content_type[0] ? "'" : "", t->content_type[0] ? t->content_type : "(none)",
                 t->content_type[0] ? "'" : "",
                 t->dialect == PX_DIALECT_V1 ? "application/json or multipart/form-data"
                                             : "application/json");
        rc = PX_EUNSUP;
    }
    free(t->body);
    t->body = NULL;
    if (rc) goto fail;

    /* Engine, method, options. Fields end_task reads are set under the lock. */
    int ei = -1;
    for (int i = 0; i < p->nengines; i++)
        if (!t->req.engine[0] ? i == 0 : strcmp(px_engine_name(p->engines[i]), t->req.engine) == 0)
            ei = i;
    if (ei < 0) {
        char names[200] = "";
        for (int i = 0; i < p->nengines; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     px_engine_name(p->engines[i]));
        rc = px_errf(err, sizeof err, PX_EINVAL, "engine '%s' is not loaded (loaded: %s)",
                     t->req.engine, names);
        goto fail;
    }
    px_engine *e = p->engines[ei];
    pthread_mutex_lock(&t->mu);
    t->engine_index = ei;
    t->prio = t->req.priority >= 0 ? (enum px_priority)t->req.priority : PX_PRIO_NORMAL;
    pthread_mutex_unlock(&t->mu);
    if (t->req.method[0] && (rc = px_engine_check_method(e, t->req.method, err, sizeof err)))
        goto fail;
    t->plan.used = PX_HD_ORIGINAL;
    px_hd_params hd = p->cfg->hd;
    if (t->req.hd_strategy >= 0) hd.strategy = (enum px_hd_strategy)t->req.hd_strategy;
    if (t->req.hd_crop_trigger > 0) hd.crop_trigger = t->req.hd_crop_trigger;
    if (t->req.hd_crop_margin >= 0) hd.crop_margin = t->req.hd_crop_margin;
    if (t->req.hd_resize_limit > 0) hd.resize_limit = t->req.hd_resize_limit;
    if (t->req.timeout_ms > 0) {
        /* The body asked for its own deadline: move the timer (its
         * reference passes to the new one). */
        int64_t dl = t->arrival_ns + t->req.timeout_ms * 1000000;
        pthread_mutex_lock(&t->mu);
        uint64_t old = t->outcome == OUT_NONE ? t->timer_id : 0;
        pthread_mutex_unlock(&t->mu);
        if (old && px_timer_disarm(p->timers, old)) {
            pthread_mutex_lock(&t->mu);
            t->deadline_ns = dl;
            int keep = t->outcome == OUT_NONE && t->timer_id == old;
            t->timer_id = keep ? px_timer_arm(p->timers, dl, on_deadline, t) : 0;
            pthread_mutex_unlock(&t->mu);
            if (!keep) px_task_unref(t);
        }
    }

    /* Admission: the request holds a slot of its priority until it ends. */
    pthread_mutex_lock(&t->mu);
    rc = admit(p, t, err, sizeof err);
    pthread_mutex_unlock(&t->mu);
    if (rc) {
        snprintf(t->hdr_value, sizeof t->hdr_value, "%d", retry_after(p));
        t->hdr_name = "Retry-After";
        goto fail;
    }

    /* Decode and plan. */
    pthread_mutex_lock(&t->mu);
    if (t->outcome == OUT_NONE) t->stage = ST_DECODE;
    pthread_mutex_unlock(&t->mu);
    int64_t t0 = px_now_ns();
    if ((rc = px_inpaint_decode(t->req.image, t->req.image_len, t->req.mask, t->req.mask_len,
                                &p->limits, &t->in, err, sizeof err)))
        goto fail;
    px_req_free_images(&t->req);
    if ((rc = px_hd_plan_make(&t->in.rgb, &t->in.mask, &hd, &t->plan, err, sizeof err))) goto fail;
    int64_t decode_ns = px_now_ns() - t0;
    pthread_mutex_lock(&t->mu);
    t->decode_ns = decode_ns;
    pthread_mutex_unlock(&t->mu);
    px_metrics_stage(p->metrics, PX_STAGE_DECODE, (double)decode_ns / 1e9);
    release_cpu_job(t); /* from here on the work is handed on, not cancelled */

    if (t->plan.nwin == 0) { /* empty mask: the image is the answer */
        start_finish(t);
        return 0;
    }
    t->items = px_xcalloc((size_t)t->plan.nwin, sizeof *t->items);
    t->nitems = t->items_left = t->plan.nwin;
    px_sched_item *ptrs[64];
    px_sched_item **list = t->nitems <= 64 ? ptrs : px_xmalloc((size_t)t->nitems * sizeof *list);
    for (int i = 0; i < t->nitems; i++) {
        px_sched_item *it = &t->items[i];
        px_hd_window *w = &t->plan.win[i];
        it->engine = e;
        it->image = &w->image;
        it->mask = &w->mask;
        it->out = &w->out;
        it->seed = t->req.seed;
        it->method = t->req.method[0] ? t->req.method : NULL;
        it->prio = t->prio;
        it->deadline_ns = t->deadline_ns;
        it->arrival_ns = t->arrival_ns;
        it->done = on_item_done;
        it->done_arg = t;
        list[i] = it;
    }
    /* The items hold one reference between them, dropped by the last. */
    px_task_ref(t);
    pthread_mutex_lock(&t->mu);
    if (t->outcome != OUT_NONE) {
        pthread_mutex_unlock(&t->mu);
        if (list != ptrs) free(list);
        px_task_unref(t);
        return 0;
    }
    t->stage = ST_QUEUED;
    t->t_queued = px_now_ns();
    t->items_submitted = 1;
    /* Submitting under the task lock: an end_task racing with us either
     * happened before (we saw it above) or waits and then cancels the items. */
    rc = px_sched_submit(p->sched, list, t->nitems);
    if (rc) t->items_submitted = 0;
    pthread_mutex_unlock(&t->mu);
    if (list != ptrs) free(list);
    if (rc) {
        px_task_unref(t);
        snprintf(err, sizeof err, "the service is shutting down");
        goto fail;
    }
    return 0;
fail:
    fail_task(t, rc, err);
    return rc;
}

/* ------------------------------------------------------------ public */

px_pipeline *px_pipeline_create(const px_serve_config *cfg, px_engine *const *engines,
                                int nengines, px_outputs *outputs, px_metrics *metrics,
                                char *err, size_t errlen)
{
    px_pipeline *p = px_xcalloc(1, sizeof *p);
    p->cfg = cfg;
    p->engines = engines;
    p->nengines = nengines;
    p->outputs = outputs;
    p->metrics = metrics;
    p->limits.max_pixels = cfg->max_pixels;
    p->limits.max_side = cfg->max_side;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->idle, NULL);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int cpu = cfg->cpu_workers > 0 ? cfg->cpu_workers : (ncpu > 0 ? (int)ncpu : 2);
    px_sched_config sc;
    px_sched_defaults(&sc);
    sc.max_batch = cfg->max_batch;
    sc.max_delay_ns = (int64_t)cfg->max_queue_delay_ms * 1000000;
    sc.bucket_step = cfg->bucket_step;
    /* --workers, else one per device of the engine that has the most. */
    p->workers_per_engine = cfg->workers;
    for (int i = 0; cfg->workers <= 0 && i < nengines; i++) {
        int n = px_engine_parallelism(engines[i]);
        if (n > p->workers_per_engine) p->workers_per_engine = n;
    }
    sc.workers_per_engine = p->workers_per_engine;
    sc.mem_limit = cfg->memory_limit;
    sc.mem_reserve = cfg->memory_reserve;
    p->cpu = px_workers_create(cpu, cfg->cpu_queue);
    p->sched = px_sched_create(&sc, engines, nengines);
    p->timers = px_timers_create();
    if (!p->cpu || !p->sched || !p->timers) {
        px_errf(err, errlen, PX_ENOMEM, "cannot start the pipeline's threads");
        px_workers_destroy(p->cpu);
        px_sched_destroy(p->sched);
        px_timers_destroy(p->timers);
        free(p);
        return NULL;
    }
    const char *names[PX_METRICS_MAX_ENGINES];
    for (int i = 0; i < nengines && i < PX_METRICS_MAX_ENGINES; i++)
        names[i] = px_engine_name(engines[i]);
    px_metrics_set_engines(metrics, names, nengines);
    return p;
}

int px_pipeline_submit(px_pipeline *p, px_task_spec *spec, px_task **out, int *retry_after_s)
{
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->draining) {
        pthread_mutex_unlock(&p->mu);
        free(spec->body);
        return PX_ECANCELED;
    }
    p->tasks++;
    p->active++;
    pthread_mutex_unlock(&p->mu);

    px_task *t = px_xcalloc(1, sizeof *t);
    atomic_init(&t->refs, 1); /* the caller's */
    t->p = p;
    pthread_mutex_init(&t->mu, NULL);
    t->dialect = spec->dialect;
    t->async = spec->async;
    snprintf(t->content_type, sizeof t->content_type, "%s",
             spec->content_type ? spec->content_type : "");
    t->body = spec->body;
    t->body_len = spec->body_len;
    spec->body = NULL;
    snprintf(t->client, sizeof t->client, "%s", spec->client ? spec->client : "");
    t->arrival_ns = spec->arrival_ns ? spec->arrival_ns : px_now_ns();
    t->created_ms = px_wall_ms();
    int64_t timeout = spec->timeout_ms > 0 ? spec->timeout_ms : p->cfg->timeout_ms;
    t->deadline_ns = t->arrival_ns + timeout * 1000000;
    t->done = spec->done;
    t->done_arg = spec->done_arg;
    t->engine_index = -1;
    t->stage = ST_PREP;
    px_buf_init(&t->reply, 0);

    /* The deadline holds whatever stage the task is in; armed before the
     * prep job can run (prep may move it to the body's timeout_ms). */
    px_task_ref(t);
    t->timer_id = px_timer_arm(p->timers, t->deadline_ns, on_deadline, t);

    px_task_ref(t); /* the prep job's */
    px_work *job = px_work_new(prep_job, t, work_ctx_free, 0, NULL, NULL);
    pthread_mutex_lock(&t->mu);
    t->cpu_work = job;
    px_work_ref(job);
    pthread_mutex_unlock(&t->mu);
    int rc = px_workers_submit(p->cpu, job);
    if (rc) {
        /* Nobody else has seen the task: take it apart quietly; the caller
         * answers this request itself (and counts it). */
        *retry_after_s = px_workers_retry_after_s(p->cpu);
        pthread_mutex_lock(&t->mu);
        t->outcome = OUT_FAILED;
        t->cpu_work = NULL;
        uint64_t timer = t->timer_id;
        pthread_mutex_unlock(&t->mu);
        if (px_timer_disarm(p->timers, timer)) px_task_unref(t);
        px_work_unref(job); /* t->cpu_work's */
        px_work_unref(job); /* ours: frees the job, dropping the prep reference */
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0) pthread_cond_broadcast(&p->idle);
        pthread_mutex_unlock(&p->mu);
        px_task_unref(t);
        return rc;
    }
    px_work_unref(job);
    *out = t;
    return 0;
}

void px_task_reply_get(px_task *t, px_task_reply *r)
{
    pthread_mutex_lock(&t->mu);
    r->http_status = t->http_status;
    r->code = t->code;
    r->content_type = t->content_type_out;
    r->body = &t->reply;
    r->header_name = t->hdr_name;
    snprintf(r->header_value, sizeof r->header_value, "%s", t->hdr_value);
    double q, inf;
    stage_ms(t, &q, &inf);
    snprintf(r->server_timing, sizeof r->server_timing,
             "queue;dur=%.2f, decode;dur=%.2f, infer;dur=%.2f, encode;dur=%.2f, save;dur=%.2f, "
             "total;dur=%.2f",
             q, px_ns_to_ms(t->decode_ns), inf, px_ns_to_ms(t->encode_ns),
             px_ns_to_ms(t->save_ns),
             px_ns_to_ms((t->t_finished ? t->t_finished : px_now_ns()) - t->arrival_ns));
    pthread_mutex_unlock(&t->mu);
}

int px_task_ended(px_task *t, int *ok)
{
    pthread_mutex_lock(&t->mu);
    int ended = t->outcome != OUT_NONE;
    if (ok) *ok = t->outcome == OUT_DONE;
    pthread_mutex_unlock(&t->mu);
    return ended;
}

int px_task_status_json(px_task *t, const char *id, px_buf *b)
{
    static const char *stages[] = {"prep", "decode", "queued", "infer", "encode", "ended"};
    static const char *outcomes[] = {NULL, "done", "failed", "cancelled", "expired"};
    pthread_mutex_lock(&t->mu);
    enum outcome out = t->outcome;
    enum stage st = t->stage;
    int64_t t_started = t->t_started, t_finished = t->t_finished;
    int on_device = st == ST_QUEUED && t->nitems > 0;
    pthread_mutex_unlock(&t->mu);
    int pos = -1;
    if (out == OUT_NONE && on_device) {
        /* Items of one request sit together; the first says how far off it
         * is (1 = next), or when the device started on it. */
        int64_t started = 0;
        pos = px_sched_position(t->p->sched, &t->items[0], &started);
        if (pos < 0 && started) {
            st = ST_INFER;
            t_started = started;
        }
    }
    int64_t now_ns = px_now_ns(), now_ms = px_wall_ms();
    int64_t started_ms = t_started ? now_ms - (now_ns - t_started) / 1000000 : 0;
    int64_t finished_ms = t_finished ? now_ms - (now_ns - t_finished) / 1000000 : 0;

    const char *status = out != OUT_NONE ? outcomes[out]
                         : (st == ST_PREP || st == ST_QUEUED) ? "queued" : "running";
    int rc = px_buf_puts(b, "{\"id\":");
    px_json_str(b, id);
    px_buf_printf(b, ",\"status\":\"%s\",\"stage\":", status);
    if (out == OUT_NONE && st != ST_PREP && st != ST_QUEUED) px_buf_printf(b, "\"%s\"", stages[st]);
    else px_buf_puts(b, "null");
    px_buf_puts(b, ",\"position\":");
    if (pos >= 0) px_buf_printf(b, "%d", pos + 1);
    else px_buf_puts(b, "null");
    px_buf_printf(b, ",\"created_ms\":%lld,\"started_ms\":", (long long)t->created_ms);
    if (started_ms) px_buf_printf(b, "%lld", (long long)started_ms);
    else px_buf_puts(b, "null");
    px_buf_puts(b, ",\"finished_ms\":");
    if (finished_ms) px_buf_printf(b, "%lld", (long long)finished_ms);
    else px_buf_puts(b, "null");
    if (out == OUT_DONE) {
        px_task_reply r;
        px_task_reply_get(t, &r);
        const char *fmt = "png";
        if (r.content_type && strstr(r.content_type, "jpeg")) fmt = "jpeg";
        else if (r.content_type && strstr(r.content_type, "webp")) fmt = "webp";
        px_buf_printf(b,
                      ",\"result\":{\"url\":\"/api/v1/jobs/%s/result\",\"format\":\"%s\","
                      "\"width\":%d,\"height\":%d,\"bytes\":%zu}",
                      id, fmt, t->in.rgb.w, t->in.rgb.h, r.body->len);
        double q, inf;
        pthread_mutex_lock(&t->mu);
        stage_ms(t, &q, &inf);
        px_buf_printf(b,
                      ",\"timings\":{\"queue_ms\":%.3f,\"decode_ms\":%.3f,\"infer_ms\":%.3f,"
                      "\"encode_ms\":%.3f}",
                      q, px_ns_to_ms(t->decode_ns), inf, px_ns_to_ms(t->encode_ns));
        pthread_mutex_unlock(&t->mu);
    } else if (out != OUT_NONE) {
        /* The error reply already holds {"error":{...}}: embed its inside. */
        pthread_mutex_lock(&t->mu);
        const char *body = (const char *)t->reply.data;
        size_t len = t->reply.len;
        if (body && len > 2 && body[0] == '{') {
            px_buf_puts(b, ",");
            while (len && (body[len - 1] == '\n' || body[len - 1] == '}')) len--;
            px_buf_append(b, body + 1, len - 1);
            px_buf_puts(b, "}");
        }
        pthread_mutex_unlock(&t->mu);
    }
    return rc ? rc : px_buf_puts(b, "}\n");
}

void px_pipeline_stats_get(px_pipeline *p, px_pipeline_stats *s)
{
    memset(s, 0, sizeof *s);
    px_sched_stats_get(p->sched, &s->sched);
    px_workers_stats ws;
    px_workers_stats_get(p->cpu, &ws);
    s->cpu_queued = ws.queued;
    s->cpu_running = ws.running;
    s->workers = p->nengines * p->workers_per_engine;
    pthread_mutex_lock(&p->mu);
    memcpy(s->pending, p->pending, sizeof s->pending);
    s->tasks = p->tasks;
    pthread_mutex_unlock(&p->mu);
}

void px_pipeline_drain(px_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    p->draining = 1;
    while (p->active > 0) pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
    /* Every task has ended; let the work still running for ended tasks
     * (cancelled, timed out) return before anything is torn down. */
    px_sched_drain(p->sched);
    px_workers_drain(p->cpu);
}

void px_pipeline_destroy(px_pipeline *p)
{
    if (!p) return;
    px_pipeline_drain(p);
    px_timers_destroy(p->timers);
    px_sched_destroy(p->sched);
    px_workers_destroy(p->cpu);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
