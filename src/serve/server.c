/*
 * server.c — libmicrohttpd glue: routing, body accumulation with a cap, the
 * suspend/resume hand-off to the worker pool, replies, metrics and shutdown.
 *
 * Life of an inpaint request:
 *   1. first callback: route it, refuse a declared body above the cap (413)
 *      before reading it, allocate a `struct request`;
 *   2. upload callbacks: append to a capped buffer (413 if it overflows);
 *   3. final callback: parse and validate (4xx on error), wrap a `struct task`
 *      in a job, submit it (429 when the queue is full), suspend;
 *   4. the job's notify (worker, deadline reaper or cancel) resumes the
 *      connection; the next callback sends what the task prepared, or a 504
 *      if the deadline passed first;
 *   5. the completed callback records metrics and drops the references.
 */
#include "serve/server.h"

#include "core/alloc.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/proc.h"
#include "engine/engine.h"
#include "serve/inpaint.h"
#include "serve/metrics.h"
#include "serve/outputs.h"
#include "serve/request.h"
#include "serve/static.h"
#include "serve/workers.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct px_server {
    const px_serve_config *cfg;
    struct MHD_Daemon *mhd;
    px_workers *workers;
    px_metrics *metrics;
    px_outputs *outputs;
    px_pool *pool;
    px_engine *engines[PX_MAX_ENGINES];
    int nengines;
    px_img_limits limits;
    int64_t t_start;
    int port;
    atomic_int ready;
    atomic_int draining;
    atomic_int open_requests; /* requests received and not yet completed */
};

/* The job context: everything a worker needs and what it produces. */
struct task {
    px_server *srv;
    px_job *job; /* weak: the job owns the task */
    px_inpaint_req req;
    enum px_dialect dialect;
    px_engine *engine;
    /* Produced by the worker. */
    int status;
    const char *content_type;
    px_buf reply;
    int64_t decode_ns, infer_ns, encode_ns, save_ns;
    /* Suspend/resume hand-off, see notify_job(). */
    pthread_mutex_t mu;
    int suspended, finished;
    struct MHD_Connection *conn;
};

/* Per HTTP request state (MHD's con_cls). */
struct request {
    enum px_route route;
    int64_t t_arrival;
    px_buf body;
    int status; /* of the reply queued, for metrics */
    px_job *job;
    struct task *task;
};

/* ---------------------------------------------------------------- replies */

static void free_buffer(void *p)
{
    free(p);
}

/* Queues a response owning `data` (malloc'd; freed by MHD). */
static enum MHD_Result send_owned(struct MHD_Connection *c, struct request *r, int status,
                                  const char *ctype, uint8_t *data, size_t len,
                                  const char *hdr_name, const char *hdr_value)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, data, free_buffer);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (hdr_name) MHD_add_response_header(resp, hdr_name, hdr_value);
    r->status = status;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_buf(struct MHD_Connection *c, struct request *r, int status,
                                const char *ctype, px_buf *b, const char *hdr_name,
                                const char *hdr_value)
{
    size_t len;
    uint8_t *data = px_buf_steal(b, &len);
    if (!data) data = px_xcalloc(1, 1);
    return send_owned(c, r, status, ctype, data, len, hdr_name, hdr_value);
}

/* Builds {"error":{"code":..,"message":..}} into b. */
static void error_json(px_buf *b, int code, const char *msg)
{
    px_buf_init(b, 1 << 16);
    px_buf_puts(b, "{\"error\":{\"code\":");
    px_json_str(b, px_err_name(code));
    px_buf_puts(b, ",\"message\":");
    px_json_str(b, msg);
    px_buf_puts(b, "}}\n");
}

/* Replies with a JSON error for a PX_E* code (status from the code unless
 * status > 0). */
static enum MHD_Result send_error(px_server *s, struct MHD_Connection *c, struct request *r,
                                  int status, int code, const char *msg, const char *hdr_name,
                                  const char *hdr_value)
{
    px_buf b;
    error_json(&b, code, msg);
    if (status <= 0) status = px_err_http_status(code);
    px_metrics_error(s->metrics, code);
    if (status >= 500) PX_WARN("%s -> %d %s", px_route_label(r->route), status, msg);
    else PX_DEBUG("%s -> %d %s", px_route_label(r->route), status, msg);
    return send_buf(c, r, status, "application/json", &b, hdr_name, hdr_value);
}

/* ------------------------------------------------------------ the worker */

static void task_free(void *p)
{
    struct task *t = p;
    px_req_free(&t->req);
    px_buf_free(&t->reply);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Appends the "timings" object (milliseconds per stage). */
static void timings_json(px_buf *b, const struct task *t, int64_t queue_ns)
{
    px_buf_puts(b, "\"timings\":{\"queue_ms\":");
    px_json_num(b, px_ns_to_ms(queue_ns));
    px_buf_puts(b, ",\"decode_ms\":");
    px_json_num(b, px_ns_to_ms(t->decode_ns));
    px_buf_puts(b, ",\"infer_ms\":");
    px_json_num(b, px_ns_to_ms(t->infer_ns));
    px_buf_puts(b, ",\"encode_ms\":");
    px_json_num(b, px_ns_to_ms(t->encode_ns));
    px_buf_puts(b, ",\"save_ms\":");
    px_json_num(b, px_ns_to_ms(t->save_ns));
    px_buf_puts(b, "}");
}

/*
 * Builds the success reply for the request's dialect and return mode:
 * raw image bytes, or JSON carrying base64 or the stored file's URL.
 */
static int build_reply(struct task *t, px_inpaint_result *res, char *err, size_t errlen)
{
    px_server *s = t->srv;
    char name[PX_OUTPUT_NAME_MAX] = "";
    if (t->req.ret == PX_RETURN_IMAGE) {
        t->content_type = px_format_mime(res->fmt);
        t->reply = res->encoded; /* hand over the encoded bytes as they are */
        px_buf_init(&res->encoded, 0);
        return 0;
    }
    if (t->req.ret == PX_RETURN_URL) {
        int64_t t0 = px_now_ns();
        int rc = px_outputs_save(s->outputs, res->encoded.data, res->encoded.len,
                                 px_format_name(res->fmt), name, err, errlen);
        t->save_ns = px_now_ns() - t0;
        if (rc) return rc;
    }
    /* JSON: base64 is 4/3 of the image plus a little. */
    size_t cap = px_b64_encoded_len(res->encoded.len) + 4096;
    px_buf *b = &t->reply;
    px_buf_init(b, cap);
    int rc = px_buf_reserve(b, cap);
    if (rc) return px_errf(err, errlen, rc, "out of memory building the reply");
    px_buf_puts(b, "{");
    if (t->dialect == PX_DIALECT_SEED) px_buf_puts(b, "\"status\":\"ok\",");
    if (t->req.ret == PX_RETURN_URL) {
        px_buf_puts(b, t->dialect == PX_DIALECT_SEED ? "\"image_url\":" : "\"url\":");
        char url[PX_OUTPUT_NAME_MAX + 16];
        snprintf(url, sizeof url, "/outputs/%s", name);
        px_json_str(b, url);
    } else {
        px_buf_puts(b, "\"image\":\"");
        size_t n = px_b64_encode(res->encoded.data, res->encoded.len, (char *)b->data + b->len);
        b->len += n;
        px_buf_puts(b, "\"");
    }
    px_buf_printf(b, ",\"format\":\"%s\",\"width\":%d,\"height\":%d,\"seed\":%llu,",
                  px_format_name(res->fmt), res->width, res->height,
                  (unsigned long long)t->req.seed);
    px_buf_puts(b, "\"engine\":");
    px_json_str(b, px_engine_name(t->engine));
    px_buf_puts(b, ",");
    timings_json(b, t, px_job_queue_ns(t->job));
    rc = px_buf_puts(b, "}\n");
    if (rc) return px_errf(err, errlen, rc, "reply larger than expected");
    t->content_type = "application/json";
    return 0;
}

/* Job function: runs on a worker thread. */
static int run_task(void *ctx, const atomic_int *cancel)
{
    struct task *t = ctx;
    px_server *s = t->srv;
    px_metrics_stage(s->metrics, PX_STAGE_QUEUE, (double)px_job_queue_ns(t->job) / 1e9);
    px_inpaint_params p = {
        .engine = t->engine,
        .method = t->req.method[0] ? t->req.method : NULL,
        .seed = t->req.seed,
        .out_fmt = t->req.out_fmt,
        .quality = t->req.quality,
        .png_level = s->cfg->png_level,
        .limits = &s->limits,
        .max_output = (size_t)1 << 30,
        .cancel = cancel,
    };
    px_inpaint_result res;
    char err[256];
    int rc = px_inpaint_bytes(&p, t->req.image, t->req.image_len, t->req.mask, t->req.mask_len,
                              &res, err, sizeof err);
    /* The inputs are no longer needed; free them now rather than with the job. */
    px_req_free_images(&t->req);
    if (rc == 0) {
        t->decode_ns = res.decode_ns;
        t->infer_ns = res.infer_ns;
        t->encode_ns = res.encode_ns;
        px_metrics_stage(s->metrics, PX_STAGE_DECODE, (double)res.decode_ns / 1e9);
        px_metrics_stage(s->metrics, PX_STAGE_INFER, (double)res.infer_ns / 1e9);
        px_metrics_stage(s->metrics, PX_STAGE_ENCODE, (double)res.encode_ns / 1e9);
        rc = build_reply(t, &res, err, sizeof err);
        px_buf_free(&res.encoded);
    }
    if (rc) {
        px_buf_free(&t->reply);
        error_json(&t->reply, rc, err);
        t->content_type = "application/json";
        t->status = px_err_http_status(rc);
        return rc;
    }
    t->status = 200;
    return 0;
}

/*
 * Final-state callback of a job. The connection may not be suspended yet
 * (the job can finish before the HTTP thread gets to suspend it); `finished`
 * tells that thread not to suspend, and `suspended` tells us to resume.
 */
static void notify_job(px_job *job, void *arg)
{
    (void)job;
    struct task *t = arg;
    pthread_mutex_lock(&t->mu);
    t->finished = 1;
    if (t->suspended) {
        t->suspended = 0;
        MHD_resume_connection(t->conn);
    }
    pthread_mutex_unlock(&t->mu);
}

/* ------------------------------------------------------------- handlers */

static px_engine *find_engine(px_server *s, const char *name)
{
    if (!name[0]) return s->engines[0];
    for (int i = 0; i < s->nengines; i++)
        if (strcmp(px_engine_name(s->engines[i]), name) == 0) return s->engines[i];
    return NULL;
}

static enum MHD_Result reply_job(px_server *s, struct MHD_Connection *c, struct request *r)
{
    struct task *t = r->task;
    enum px_job_state st = px_job_state(r->job);
    int64_t queue_ns = px_job_queue_ns(r->job);
    int64_t total_ns = px_now_ns() - r->t_arrival;
    char timing[320];
    if (st == PX_JOB_TIMEDOUT) {
        /* The worker may still be running and writing the task: read only
         * the job's own clock. */
        char msg[200];
        snprintf(msg, sizeof msg,
                 "the request did not finish within its deadline (%.0f ms queued, %.0f ms "
                 "computing); the work was abandoned",
                 px_ns_to_ms(queue_ns), px_ns_to_ms(px_job_run_ns(r->job)));
        snprintf(timing, sizeof timing, "queue;dur=%.2f, total;dur=%.2f", px_ns_to_ms(queue_ns),
                 px_ns_to_ms(total_ns));
        return send_error(s, c, r, 0, PX_ETIMEDOUT, msg, "Server-Timing", timing);
    }
    if (st == PX_JOB_CANCELLED) return send_error(s, c, r, 0, PX_ECANCELED, "cancelled", NULL, NULL);
    /* DONE: taking the task's lock orders the worker's writes before our reads. */
    pthread_mutex_lock(&t->mu);
    pthread_mutex_unlock(&t->mu);
    snprintf(timing, sizeof timing,
             "queue;dur=%.2f, decode;dur=%.2f, infer;dur=%.2f, encode;dur=%.2f, save;dur=%.2f, "
             "total;dur=%.2f",
             px_ns_to_ms(queue_ns), px_ns_to_ms(t->decode_ns), px_ns_to_ms(t->infer_ns),
             px_ns_to_ms(t->encode_ns), px_ns_to_ms(t->save_ns), px_ns_to_ms(total_ns));
    if (t->status != 200) px_metrics_error(s->metrics, px_job_result(r->job));
    return send_buf(c, r, t->status, t->content_type, &t->reply, "Server-Timing", timing);
}

static int content_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

static enum MHD_Result start_inpaint(px_server *s, struct MHD_Connection *c, struct request *r)
{
    enum px_dialect d = r->route == PX_ROUTE_INPAINT_SEED ? PX_DIALECT_SEED : PX_DIALECT_V1;
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    char err[256];
    px_inpaint_req req;
    int rc;
    if (content_type_is(ct, "application/json")) {
        rc = px_req_parse_json((const char *)r->body.data, r->body.len, d, s->cfg->max_body, &req,
                               err, sizeof err);
    } else if (d == PX_DIALECT_V1 && content_type_is(ct, "multipart/form-data")) {
        rc = px_req_parse_multipart(ct, r->body.data, r->body.len, d, s->cfg->max_body, &req, err,
                                    sizeof err);
    } else {
        snprintf(err, sizeof err, "Content-Type %s%s%s is not supported here; send %s",
                 ct ? "'" : "", ct ? ct : "(none)", ct ? "'" : "",
                 d == PX_DIALECT_V1 ? "application/json or multipart/form-data"
                                    : "application/json");
        rc = PX_EUNSUP;
    }
    px_buf_free(&r->body);
    if (rc) return send_error(s, c, r, 0, rc, err, NULL, NULL);

    px_engine *e = find_engine(s, req.engine);
    if (!e) {
        px_buf names;
        px_buf_init(&names, 1024);
        for (int i = 0; i < s->nengines; i++)
            px_buf_printf(&names, "%s%s", i ? ", " : "", px_engine_name(s->engines[i]));
        snprintf(err, sizeof err, "engine '%s' is not loaded (loaded: %s)", req.engine,
                 names.data ? (char *)names.data : "");
        px_buf_free(&names);
        px_req_free(&req);
        return send_error(s, c, r, 0, PX_EINVAL, err, NULL, NULL);
    }
    if (req.method[0] && (rc = px_engine_check_method(e, req.method, err, sizeof err))) {
        px_req_free(&req);
        return send_error(s, c, r, 0, rc, err, NULL, NULL);
    }

    struct task *t = px_xcalloc(1, sizeof *t);
    t->srv = s;
    t->req = req;
    t->dialect = d;
    t->engine = e;
    t->conn = c;
    pthread_mutex_init(&t->mu, NULL);
    px_buf_init(&t->reply, 0);
    int64_t timeout = req.timeout_ms > 0 ? req.timeout_ms : s->cfg->timeout_ms;
    px_job *job = px_job_new(run_task, t, task_free, r->t_arrival + timeout * 1000000, notify_job, t);
    t->job = job;
    rc = px_workers_submit(s->workers, job);
    if (rc) {
        px_job_unref(job);
        if (rc == PX_EBUSY) {
            char ra[16];
            snprintf(ra, sizeof ra, "%d", px_workers_retry_after_s(s->workers));
            return send_error(s, c, r, 0, PX_EBUSY,
                              "the queue is full; retry after the time in Retry-After", "Retry-After",
                              ra);
        }
        return send_error(s, c, r, 503, PX_ECANCELED, "the service is shutting down",
                          "Retry-After", "5");
    }
    r->job = job;
    r->task = t;
    pthread_mutex_lock(&t->mu);
    int done = t->finished;
    if (!done) {
        MHD_suspend_connection(c);
        t->suspended = 1;
    }
    pthread_mutex_unlock(&t->mu);
    return done ? reply_job(s, c, r) : MHD_YES;
}

static enum MHD_Result serve_output(px_server *s, struct MHD_Connection *c, struct request *r,
                                    const char *name)
{
    uint64_t size = 0;
    int fd = px_outputs_open_file(s->outputs, name, &size);
    if (fd == PX_EINVAL) return send_error(s, c, r, 400, PX_EINVAL, "invalid output name", NULL, NULL);
    if (fd < 0) return send_error(s, c, r, 0, PX_ENOTFOUND, "no such output", NULL, NULL);
    struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    const char *ext = strrchr(name, '.');
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            px_format_mime(px_format_parse(ext ? ext + 1 : "")));
    r->status = 200;
    enum MHD_Result ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result serve_healthz(px_server *s, struct MHD_Connection *c, struct request *r)
{
    px_workers_stats ws;
    px_workers_stats_get(s->workers, &ws);
    px_buf b;
    px_buf_init(&b, 1 << 16);
    int draining = atomic_load(&s->draining);
    px_buf_printf(&b, "{\"status\":\"%s\",\"ready\":%s,\"version\":\"%s\",\"engines\":[",
                  draining ? "draining" : "ok", atomic_load(&s->ready) ? "true" : "false",
                  PX_VERSION);
    for (int i = 0; i < s->nengines; i++) {
        if (i) px_buf_puts(&b, ",");
        px_json_str(&b, px_engine_name(s->engines[i]));
    }
    px_buf_printf(&b,
                  "],\"default_engine\":\"%s\",\"workers\":{\"count\":%d,\"busy\":%d},"
                  "\"queue\":{\"depth\":%d,\"capacity\":%d},\"compute_threads\":%d,"
                  "\"uptime_s\":%.3f,\"rss_bytes\":%llu,\"jobs\":{\"completed\":%llu,"
                  "\"rejected\":%llu,\"timed_out\":%llu},\"gpu\":null}\n",
                  px_engine_name(s->engines[0]), ws.workers, ws.running, ws.queued,
                  ws.queue_capacity, px_pool_threads(s->pool),
                  (double)(px_now_ns() - s->t_start) / 1e9,
                  (unsigned long long)px_proc_rss_bytes(), (unsigned long long)ws.completed,
                  (unsigned long long)ws.rejected, (unsigned long long)ws.timed_out);
    return send_buf(c, r, draining ? 503 : 200, "application/json", &b, NULL, NULL);
}

static enum MHD_Result serve_readyz(px_server *s, struct MHD_Connection *c, struct request *r)
{
    px_buf b;
    px_buf_init(&b, 256);
    int ready = atomic_load(&s->ready) && !atomic_load(&s->draining);
    px_buf_printf(&b, "{\"ready\":%s%s}\n", ready ? "true" : "false",
                  ready ? "" : atomic_load(&s->draining) ? ",\"reason\":\"draining\""
                                                         : ",\"reason\":\"starting\"");
    return send_buf(c, r, ready ? 200 : 503, "application/json", &b, NULL, NULL);
}

static enum MHD_Result serve_metrics(px_server *s, struct MHD_Connection *c, struct request *r)
{
    px_workers_stats ws;
    px_workers_stats_get(s->workers, &ws);
    px_metrics_gauges g = {
        .queue_depth = ws.queued,
        .queue_capacity = ws.queue_capacity,
        .inflight = ws.running,
        .workers = ws.workers,
        .jobs_submitted = ws.submitted,
        .jobs_rejected = ws.rejected,
        .jobs_completed = ws.completed,
        .jobs_timed_out = ws.timed_out,
        .jobs_cancelled = ws.cancelled,
        .uptime_s = (double)(px_now_ns() - s->t_start) / 1e9,
        .rss_bytes = px_proc_rss_bytes(),
        .open_fds = px_proc_open_fds(),
        .ready = atomic_load(&s->ready),
    };
    px_buf b;
    px_buf_init(&b, 4 << 20);
    px_metrics_render(s->metrics, &g, &b);
    return send_buf(c, r, 200, "text/plain; version=0.0.4; charset=utf-8", &b, NULL, NULL);
}

static enum MHD_Result serve_engines(px_server *s, struct MHD_Connection *c, struct request *r)
{
    px_buf b;
    px_buf_init(&b, 1 << 20);
    px_buf_puts(&b, "{\"default\":");
    px_json_str(&b, px_engine_name(s->engines[0]));
    px_buf_puts(&b, ",\"engines\":[");
    for (int i = 0; i < s->nengines; i++) {
        if (i) px_buf_puts(&b, ",");
        px_engine_describe(s->engines[i], &b);
    }
    px_buf_puts(&b, "]}\n");
    return send_buf(c, r, 200, "application/json", &b, NULL, NULL);
}

static enum MHD_Result serve_index(px_server *s, struct MHD_Connection *c, struct request *r)
{
    (void)s;
    px_buf b;
    px_buf_init(&b, 4096);
    px_buf_printf(&b,
                  "{\"service\":\"pixserve\",\"version\":\"%s\",\"routes\":["
                  "\"GET /\",\"GET /dashboard\",\"GET /ui/{file}\",\"GET /api/v1\","
                  "\"POST /api/v1/inpaint\",\"POST /inpaint\",\"GET /api/v1/engines\","
                  "\"GET /outputs/{name}\",\"GET /healthz\",\"GET /readyz\",\"GET /metrics\"]}\n",
                  PX_VERSION);
    return send_buf(c, r, 200, "application/json", &b, NULL, NULL);
}

/* The web UI: an embedded file, or a JSON 404. */
static enum MHD_Result serve_ui(px_server *s, struct MHD_Connection *c, struct request *r,
                                const char *url)
{
    const px_static_file *f = px_static_find(url);
    if (!f) return send_error(s, c, r, 404, PX_ENOTFOUND, "no such file", NULL, NULL);
    return px_static_reply(c, f, &r->status);
}

/* Which route a path is. */
static enum px_route route_of(const char *url)
{
    if (!strcmp(url, "/api/v1/inpaint")) return PX_ROUTE_INPAINT_V1;
    if (!strcmp(url, "/inpaint")) return PX_ROUTE_INPAINT_SEED;
    if (!strcmp(url, "/api/v1/engines")) return PX_ROUTE_ENGINES;
    if (!strncmp(url, "/outputs/", 9)) return PX_ROUTE_OUTPUTS;
    if (!strcmp(url, "/healthz")) return PX_ROUTE_HEALTHZ;
    if (!strcmp(url, "/readyz")) return PX_ROUTE_READYZ;
    if (!strcmp(url, "/metrics")) return PX_ROUTE_METRICS;
    if (px_static_is_ui_path(url)) return PX_ROUTE_UI;
    return PX_ROUTE_OTHER;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    px_server *s = cls;
    struct request *r = *con_cls;

    if (!r) {
        /* First call: headers only. Allocate state; refuse early what we can. */
        r = px_xcalloc(1, sizeof *r);
        r->t_arrival = px_now_ns();
        r->status = 0;
        px_buf_init(&r->body, s->cfg->max_body);
        *con_cls = r;
        atomic_fetch_add(&s->open_requests, 1);
        r->route = route_of(url);
        int post_route = r->route == PX_ROUTE_INPAINT_V1 || r->route == PX_ROUTE_INPAINT_SEED;
        const char *want = post_route ? MHD_HTTP_METHOD_POST : MHD_HTTP_METHOD_GET;
        int is_get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
        if (r->route == PX_ROUTE_OTHER && is_get &&
            (!strcmp(url, "/api/v1") || !strcmp(url, "/api/v1/")))
            return serve_index(s, c, r);
        if (r->route == PX_ROUTE_OTHER) {
            char msg[160];
            snprintf(msg, sizeof msg, "no route for %.100s", url);
            return send_error(s, c, r, 404, PX_ENOTFOUND, msg, NULL, NULL);
        }
        int ok = post_route ? !strcmp(method, MHD_HTTP_METHOD_POST) : is_get;
        if (!ok) {
            char msg[160];
            snprintf(msg, sizeof msg, "%s is not allowed here; use %s", method, want);
            return send_error(s, c, r, 405, PX_EINVAL, msg, "Allow", want);
        }
        if (post_route) {
            if (atomic_load(&s->draining))
                return send_error(s, c, r, 503, PX_ECANCELED, "the service is shutting down",
                                  "Retry-After", "5");
            const char *cl =
                MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoull(cl, NULL, 10) > s->cfg->max_body) {
                char msg[160];
                snprintf(msg, sizeof msg, "request body of %s bytes exceeds the limit of %zu bytes",
                         cl, s->cfg->max_body);
                return send_error(s, c, r, 0, PX_ETOOBIG, msg, NULL, NULL);
            }
        }
        return MHD_YES;
    }

    if (*upload_size) {
        if (r->status) { /* already answered (413); drop the rest */
            *upload_size = 0;
            return MHD_YES;
        }
        int rc = px_buf_append(&r->body, upload, *upload_size);
        *upload_size = 0;
        if (rc) {
            px_buf_free(&r->body);
            char msg[160];
            snprintf(msg, sizeof msg, "request body exceeds the limit of %zu bytes",
                     s->cfg->max_body);
            return send_error(s, c, r, 0, rc == PX_ETOOBIG ? PX_ETOOBIG : PX_ENOMEM, msg, NULL,
                              NULL);
        }
        return MHD_YES;
    }
    if (r->status) return MHD_YES; /* a reply is already queued */
    if (r->job) return reply_job(s, c, r);

    switch (r->route) {
    case PX_ROUTE_INPAINT_V1:
    case PX_ROUTE_INPAINT_SEED: return start_inpaint(s, c, r);
    case PX_ROUTE_OUTPUTS: return serve_output(s, c, r, url + 9);
    case PX_ROUTE_HEALTHZ: return serve_healthz(s, c, r);
    case PX_ROUTE_READYZ: return serve_readyz(s, c, r);
    case PX_ROUTE_METRICS: return serve_metrics(s, c, r);
    case PX_ROUTE_ENGINES: return serve_engines(s, c, r);
    case PX_ROUTE_UI: return serve_ui(s, c, r, url);
    default: return send_error(s, c, r, 404, PX_ENOTFOUND, "no such route", NULL, NULL);
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    px_server *s = cls;
    struct request *r = *con_cls;
    if (!r) return;
    double secs = (double)(px_now_ns() - r->t_arrival) / 1e9;
    /* A request dropped before any reply counts as 499 (client closed). */
    int status = r->status ? r->status : 499;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && status < 400)
        PX_DEBUG("%s: reply %d not fully sent (termination %d)", px_route_label(r->route), status,
                 (int)toe);
    px_metrics_request(s->metrics, r->route, status, secs);
    if (r->job) {
        /* If the connection died while the job still runs, stop the work. */
        px_workers_cancel(s->workers, r->job);
        px_job_unref(r->job);
    }
    px_buf_free(&r->body);
    free(r);
    *con_cls = NULL;
    atomic_fetch_sub(&s->open_requests, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    PX_DEBUG("http: %s", msg);
}

/* ------------------------------------------------------------- lifecycle */

static void free_server(px_server *s)
{
    if (s->workers) px_workers_destroy(s->workers);
    for (int i = 0; i < s->nengines; i++) px_engine_close(s->engines[i]);
    px_outputs_close(s->outputs);
    px_metrics_free(s->metrics);
    px_pool_destroy(s->pool);
    free(s);
}

int px_server_start(const px_serve_config *cfg, px_server **out, char *err, size_t errlen)
{
    *out = NULL;
    px_server *s = px_xcalloc(1, sizeof *s);
    s->cfg = cfg;
    s->t_start = px_now_ns();
    s->limits.max_pixels = cfg->max_pixels;
    s->limits.max_side = cfg->max_side;
    s->metrics = px_metrics_new();
    int rc;
    char inner[256];

    s->pool = px_pool_create(cfg->threads);
    if (!s->pool) {
        rc = px_errf(err, errlen, PX_ENOMEM, "cannot start compute threads");
        goto fail;
    }
    px_engine_config ec = {.weights = cfg->weights, .pool = s->pool};
    for (int i = 0; i < cfg->nengines; i++) {
        if ((rc = px_engine_open(cfg->engines[i], &ec, &s->engines[s->nengines], inner,
                                 sizeof inner))) {
            px_errf(err, errlen, rc, "engine '%s': %s", cfg->engines[i], inner);
            goto fail;
        }
        s->nengines++;
    }
    if ((rc = px_outputs_open(cfg->outputs, &s->outputs, err, errlen))) goto fail;
    s->workers = px_workers_create(cfg->workers, cfg->queue);
    if (!s->workers) {
        rc = px_errf(err, errlen, PX_ENOMEM, "cannot start %d worker threads", cfg->workers);
        goto fail;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai != 0) {
        rc = px_errf(err, errlen, PX_EINVAL, "bad --host '%s': %s (give a numeric address)",
                     cfg->host, gai_strerror(gai));
        goto fail;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->http_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->mhd) {
        rc = px_errf(err, errlen, PX_EIO, "cannot listen on %s:%d (address in use or not local?)",
                     cfg->host, cfg->port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    atomic_store(&s->ready, 1);
    *out = s;
    return 0;
fail:
    free_server(s);
    return rc;
}

int px_server_port(const px_server *s)
{
    return s->port;
}

void px_server_stop(px_server *s, int grace_ms)
{
    if (!s) return;
    atomic_store(&s->draining, 1);
    /* Stop accepting: close the listening socket, keep the connections. */
    MHD_socket lfd = MHD_quiesce_daemon(s->mhd);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    /* Finish every job already accepted; their connections get resumed. */
    px_workers_drain(s->workers);
    /* Let the replies go out before the remaining (idle) connections close. */
    int64_t until = px_now_ns() + (int64_t)grace_ms * 1000000;
    while (atomic_load(&s->open_requests) > 0 && px_now_ns() < until) usleep(10000);
    MHD_stop_daemon(s->mhd);
    free_server(s);
}
