/*
 * server_routes.c — the HTTP service's replies and the routes that answer
 * from the server's state rather than start tasks: the jobs API (status,
 * result, cancel), stored outputs, /healthz, /readyz, /metrics,
 * /api/v1/engines, the API index and the web UI (see server_impl.h).
 */
#include "serve/server_impl.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/proc.h"
#include "image/codec.h"
#include "serve/cors.h"
#include "serve/events.h"
#include "serve/kind.h"
#include "serve/static.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- replies */

static void free_buffer(void *p)
{
    free(p);
}

enum MHD_Result px_server_queue(struct MHD_Connection *c, struct request *r, int status,
                                struct MHD_Response *resp)
{
    px_cors_headers(r->srv->cfg, c, resp);
    r->status = status;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
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
    return px_server_queue(c, r, status, resp);
}

enum MHD_Result px_server_send_buf(struct MHD_Connection *c, struct request *r, int status,
                                   const char *ctype, px_buf *b, const char *hdr_name,
                                   const char *hdr_value)
{
    size_t len;
    uint8_t *data = px_buf_steal(b, &len);
    if (!data) data = px_xcalloc(1, 1);
    return send_owned(c, r, status, ctype, data, len, hdr_name, hdr_value);
}

/* Replies with a JSON error for a PX_E* code (status from the code unless
 * status > 0). */
enum MHD_Result px_server_send_error(px_server *s, struct MHD_Connection *c, struct request *r,
                                     int status, int code, const char *msg, const char *hdr_name,
                                     const char *hdr_value)
{
    px_buf b;
    px_buf_init(&b, 1 << 16);
    const px_kind *k = r->route->kind; /* its dialect's error shape (OpenAI's) */
    if (k && k->error_body) {
        k->error_body(r->route->dialect, code, msg, &b);
    } else {
        px_kind_error_json(code, msg, &b);
    }
    if (status <= 0) status = px_err_http_status(code);
    px_metrics_error(s->metrics, code);
    if (status >= 500)
        PX_WARN("%s -> %d %s", px_route_label(r->route->id), status, msg);
    else
        PX_DEBUG("%s -> %d %s", px_route_label(r->route->id), status, msg);
    return px_server_send_buf(c, r, status, "application/json", &b, hdr_name, hdr_value);
}

static enum MHD_Result send_json(struct MHD_Connection *c, struct request *r, int status, px_buf *b)
{
    return px_server_send_buf(c, r, status, "application/json", b, NULL, NULL);
}

/* Sends what an ended task prepared (copying its body: the task may be kept
 * by the jobs table and serve it again). */
enum MHD_Result px_server_send_task_reply(struct MHD_Connection *c, struct request *r, px_task *t)
{
    px_task_reply rep;
    px_task_reply_get(t, &rep);
    uint8_t *data = px_xmalloc(rep.body->len ? rep.body->len : 1);
    if (rep.body->len) memcpy(data, rep.body->data, rep.body->len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(rep.body->len, data, free_buffer);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rep.content_type ? rep.content_type : "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "Server-Timing", rep.server_timing);
    if (rep.header_name) MHD_add_response_header(resp, rep.header_name, rep.header_value);
    if (rep.http_status >= 500) PX_WARN("%s -> %d", px_route_label(r->route->id), rep.http_status);
    return px_server_queue(c, r, rep.http_status, resp);
}

/* ------------------------------------------------------------ jobs API */

/* GET /api/v1/jobs/{id}/events; takes over the reference to t. */
static enum MHD_Result serve_events(px_server *s, struct MHD_Connection *c, struct request *r,
                                    px_task *t, const char *id)
{
    int busy = 0;
    struct MHD_Response *resp = px_events_response(c, t, id, s->watch, &busy);
    if (!resp)
        return px_server_send_error(s, c, r, 0, busy ? PX_EBUSY : PX_ENOMEM,
                                    busy ? "too many event streams follow this job"
                                         : "out of memory",
                                    busy ? "Retry-After" : NULL, busy ? "5" : NULL);
    return px_server_queue(c, r, 200, resp);
}

/* A done job's result: the reply it prepared, or result k of a kind with
 * several (GET /api/v1/jobs/{id}/result?index=k). */
static enum MHD_Result send_result(px_server *s, struct MHD_Connection *c, struct request *r,
                                   px_task *t)
{
    const char *idx = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "index");
    char *end = NULL;
    long k = idx ? strtol(idx, &end, 10) : 0;
    if (idx && (end == idx || *end || k < 0 || k > 1000))
        return px_server_send_error(s, c, r, 400, PX_EINVAL, "index must be a result number",
                                    NULL, NULL);
    if (k == 0 && !px_task_has_results(t)) return px_server_send_task_reply(c, r, t);
    const uint8_t *data;
    size_t len;
    const char *ct;
    if (px_task_result(t, (int)k, &data, &len, &ct))
        return px_server_send_error(s, c, r, 404, PX_ENOTFOUND, "no such result", NULL, NULL);
    uint8_t *copy = px_xmalloc(len ? len : 1);
    if (len) memcpy(copy, data, len);
    return send_owned(c, r, 200, ct ? ct : "application/octet-stream", copy, len, NULL, NULL);
}

enum MHD_Result px_server_serve_job(px_server *s, struct MHD_Connection *c, struct request *r,
                                    const char *method, const char *rest)
{
    char id[PX_JOB_ID_MAX + 1];
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    int want_result = slash && strcmp(slash, "/result") == 0;
    int want_events = slash && strcmp(slash, "/events") == 0;
    if (idlen == 0 || idlen > PX_JOB_ID_MAX || (slash && !want_result && !want_events))
        return px_server_send_error(s, c, r, 404, PX_ENOTFOUND, "no such job", NULL, NULL);
    memcpy(id, rest, idlen);
    id[idlen] = 0;
    px_task *t = atomic_load(&s->ready) ? px_jobs_get(s->jobs, id) : NULL;
    if (!t)
        return px_server_send_error(s, c, r, 404, PX_ENOTFOUND, "no such job (or it expired)", NULL,
                                    NULL);
    enum MHD_Result ret;
    int ok = 0;
    int is_get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
    if (want_events && is_get) return serve_events(s, c, r, t, id); /* takes our reference */
    if (want_result || want_events) {
        if (!is_get)
            ret = px_server_send_error(s, c, r, 405, PX_EINVAL, "use GET", "Allow", "GET");
        else if (!px_task_ended(t, &ok) || !ok)
            ret = px_server_send_error(s, c, r, 409, PX_EINVAL, "the job has no result (not done)",
                                       NULL, NULL);
        else
            ret = send_result(s, c, r, t);
    } else if (!strcmp(method, MHD_HTTP_METHOD_DELETE)) {
        if (px_task_cancel(t) != 0) {
            ret = px_server_send_error(s, c, r, 409, PX_EINVAL, "the job has already ended", NULL,
                                       NULL);
        } else {
            px_buf b;
            px_buf_init(&b, 1 << 16);
            px_task_status_json(t, id, &b);
            ret = send_json(c, r, 200, &b);
        }
    } else if (!strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD)) {
        px_buf b;
        px_buf_init(&b, 1 << 16);
        px_task_status_json(t, id, &b);
        ret = send_json(c, r, 200, &b);
    } else {
        ret = px_server_send_error(s, c, r, 405, PX_EINVAL, "use GET or DELETE", "Allow",
                                   "GET, DELETE");
    }
    px_task_unref(t);
    return ret;
}

/* ------------------------------------------------------------ info routes */

enum MHD_Result px_server_serve_output(px_server *s, struct MHD_Connection *c, struct request *r,
                                       const char *name)
{
    uint64_t size = 0;
    int fd = px_outputs_open_file(s->outputs, name, &size);
    if (fd == PX_EINVAL)
        return px_server_send_error(s, c, r, 400, PX_EINVAL, "invalid output name", NULL, NULL);
    if (fd < 0) return px_server_send_error(s, c, r, 0, PX_ENOTFOUND, "no such output", NULL, NULL);
    struct MHD_Response *resp = MHD_create_response_from_fd64(size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    const char *ext = strrchr(name, '.');
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            px_format_mime(px_format_parse(ext ? ext + 1 : "")));
    return px_server_queue(c, r, 200, resp);
}

static const char *state_name(px_server *s)
{
    if (atomic_load(&s->draining)) return "draining";
    if (atomic_load(&s->failed)) return "failed";
    return atomic_load(&s->ready) ? "ok" : "starting";
}

enum MHD_Result px_server_serve_healthz(px_server *s, struct MHD_Connection *c, struct request *r)
{
    px_buf b;
    px_buf_init(&b, 1 << 16);
    int ready = atomic_load(&s->ready);
    const char *state = state_name(s);
    px_buf_printf(&b, "{\"status\":\"%s\",\"ready\":%s,\"version\":\"%s\",\"engines\":[", state,
                  ready ? "true" : "false", PX_VERSION);
    for (int i = 0; ready && i < s->nengines; i++) {
        if (i) px_buf_puts(&b, ",");
        px_json_str(&b, px_engine_name(s->engines[i]));
    }
    px_buf_puts(&b, "],\"default_engine\":");
    px_json_str(&b, ready ? px_engine_name(s->engines[0]) : NULL);
    if (ready) {
        px_tasks_stats ps;
        px_tasks_stats_get(s->tasks, &ps);
        int queued = 0, pending = 0;
        for (int p = 0; p < PX_PRIO_COUNT; p++)
            queued += ps.sched.queued[p], pending += ps.pending[p];
        px_buf_printf(&b,
                      ",\"workers\":{\"count\":%d,\"busy\":%d},\"queue\":{\"depth\":%d,"
                      "\"pending\":%d,\"capacity\":%d,\"cpu_queued\":%d},\"compute_threads\":%d,"
                      "\"async_jobs\":%d",
                      ps.workers, ps.sched.running, queued, pending, s->cfg->queue, ps.cpu_queued,
                      px_pool_threads(s->pool), px_jobs_count(s->jobs));
    }
    if (atomic_load(&s->failed)) {
        px_buf_puts(&b, ",\"error\":");
        px_json_str(&b, s->load_error);
    }
    px_buf_printf(&b, ",\"uptime_s\":%.3f,\"rss_bytes\":%llu,\"gpu\":",
                  (double)(px_now_ns() - s->t_start) / 1e9,
                  (unsigned long long)px_proc_rss_bytes());
    /* GPU memory per device (the seed reports' wish); null without a driver. */
    if (!s->nvml) {
        px_buf_puts(&b, "null");
    } else {
        px_buf_puts(&b, "[");
        for (int i = 0; i < px_nvml_count(s->nvml); i++) {
            px_gpu_info g;
            if (px_nvml_query(s->nvml, i, &g)) continue;
            px_buf_printf(&b, "%s{\"index\":%d,\"name\":", i ? "," : "", i);
            px_json_str(&b, g.name);
            px_buf_printf(&b,
                          ",\"memory_used_bytes\":%llu,\"memory_total_bytes\":%llu,"
                          "\"utilization_percent\":%d}",
                          (unsigned long long)g.mem_used, (unsigned long long)g.mem_total,
                          g.util_gpu);
        }
        px_buf_puts(&b, "]");
    }
    px_buf_puts(&b, "}\n");
    int status = strcmp(state, "ok") == 0 || strcmp(state, "starting") == 0 ? 200 : 503;
    return send_json(c, r, status, &b);
}

enum MHD_Result px_server_serve_readyz(px_server *s, struct MHD_Connection *c, struct request *r)
{
    px_buf b;
    px_buf_init(&b, 256);
    int ready = atomic_load(&s->ready) && !atomic_load(&s->draining);
    px_buf_printf(&b, "{\"ready\":%s", ready ? "true" : "false");
    if (!ready) px_buf_printf(&b, ",\"reason\":\"%s\"", state_name(s));
    px_buf_puts(&b, "}\n");
    return send_json(c, r, ready ? 200 : 503, &b);
}

enum MHD_Result px_server_serve_metrics(px_server *s, struct MHD_Connection *c, struct request *r)
{
    px_metrics_gauges g = {
        .queue_capacity = s->cfg->queue,
        .uptime_s = (double)(px_now_ns() - s->t_start) / 1e9,
        .rss_bytes = px_proc_rss_bytes(),
        .open_fds = px_proc_open_fds(),
        .ready = atomic_load(&s->ready),
    };
    if (g.ready) {
        px_tasks_stats ps;
        px_tasks_stats_get(s->tasks, &ps);
        for (int p = 0; p < PX_PRIO_COUNT; p++) {
            g.queue_depth += ps.sched.queued[p];
            g.pending[p] = ps.pending[p];
        }
        g.inflight = ps.sched.running;
        g.workers = ps.workers;
        g.cpu_queued = ps.cpu_queued;
        g.async_jobs = px_jobs_count(s->jobs);
        memcpy(g.batch_hist, ps.sched.batch_hist, sizeof g.batch_hist);
        g.batches = ps.sched.batches;
        g.batch_items = ps.sched.items_run;
        g.oom_splits = ps.sched.oom_splits;
        g.batch_joins = ps.sched.joins;
    }
    if (s->loras) {
        px_loras_stats ls;
        px_loras_stats_get(s->loras, &ls);
        g.loras = 1;
        g.loras_registered = ls.registered;
        g.loras_loaded = ls.loaded;
        g.lora_loaded_bytes = ls.loaded_bytes;
    }
    px_gpu_info gpus[8];
    for (int i = 0; i < px_nvml_count(s->nvml) && g.ngpus < 8; i++)
        if (px_nvml_query(s->nvml, i, &gpus[g.ngpus]) == 0) g.ngpus++;
    g.gpus = gpus;
    px_buf b;
    px_buf_init(&b, 4 << 20);
    px_metrics_render(s->metrics, &g, &b);
    return px_server_send_buf(c, r, 200, "text/plain; version=0.0.4; charset=utf-8", &b, NULL,
                              NULL);
}

enum MHD_Result px_server_serve_engines(px_server *s, struct MHD_Connection *c, struct request *r)
{
    px_buf b;
    px_buf_init(&b, 1 << 20);
    int ready = atomic_load(&s->ready);
    px_buf_puts(&b, "{\"ready\":");
    px_buf_puts(&b, ready ? "true" : "false");
    px_buf_puts(&b, ",\"default\":");
    px_json_str(&b, ready ? px_engine_name(s->engines[0]) : NULL);
    px_buf_puts(&b, ",\"engines\":[");
    for (int i = 0; ready && i < s->nengines; i++) {
        if (i) px_buf_puts(&b, ",");
        px_engine_describe(s->engines[i], &b);
    }
    px_buf_puts(&b, "]}\n");
    return send_json(c, r, 200, &b);
}

enum MHD_Result px_server_serve_index(px_server *s, struct MHD_Connection *c, struct request *r)
{
    (void)s;
    px_buf b;
    px_buf_init(&b, 4096);
    px_buf_printf(&b, "{\"service\":\"pixserve\",\"version\":\"%s\",\"routes\":[", PX_VERSION);
    px_routes_list_json(&b);
    px_buf_puts(&b, "]}\n");
    return send_json(c, r, 200, &b);
}

/* The web UI: an embedded file, or a JSON 404. */
enum MHD_Result px_server_serve_ui(px_server *s, struct MHD_Connection *c, struct request *r,
                                   const char *url)
{
    const px_static_file *f = px_static_find(url);
    if (!f) return px_server_send_error(s, c, r, 404, PX_ENOTFOUND, "no such file", NULL, NULL);
    return px_static_reply(c, f, &r->status);
}
