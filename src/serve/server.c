/*
 * server.c — libmicrohttpd glue: routing, request bodies with a cap, the
 * hand-off to tasks with suspend/resume, the jobs API, the info
 * routes, metrics and the graceful stop.
 *
 * HTTP threads only move bytes: a complete body is handed to a task of
 * the route's request kind (routes.h; the CPU pool parses, decodes and
 * encodes) and the connection is
 * suspended until the task ends; the task's done callback resumes it, and
 * the next callback sends the reply the task prepared. While suspended, the
 * socket is watched for the client hanging up, which cancels the task.
 *
 * Engines load on a background thread after the socket is bound, so
 * /healthz and /readyz answer while big weights load and warm up. Replies
 * and the routes that answer from the server's state are server_routes.c.
 */
#include "serve/server_impl.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "serve/cors.h"
#include "serve/engines.h"
#include "serve/iopaint.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------- task hand-off */

/*
 * The task's done callback (any thread). The connection may not be
 * suspended yet (the task can end before the HTTP thread suspends it):
 * `finished` tells that thread not to suspend, `suspended` tells us to
 * resume. The watch is removed before resuming, so the request cannot be
 * completed and freed while the watcher might still use it.
 */
static void on_task_done(px_task *t, void *arg)
{
    (void)t;
    struct request *r = arg;
    pthread_mutex_lock(&r->mu);
    r->finished = 1;
    int resume = r->suspended;
    r->suspended = 0;
    uint64_t wid = r->watch_id;
    r->watch_id = 0;
    pthread_mutex_unlock(&r->mu);
    if (wid) px_watch_remove(r->srv->watch, wid);
    if (resume) MHD_resume_connection(r->conn);
}

/* The client hung up while its request waited: drop the work. */
static void on_hangup(void *arg)
{
    struct request *r = arg;
    PX_DEBUG("%s: client went away; cancelling its job", px_route_label(r->route->id));
    px_task_cancel(r->task);
}

/* A key for the per-client cap: the API key, else the Authorization header,
 * else the peer address. */
static void client_key(struct MHD_Connection *c, char *out, size_t n)
{
    const char *k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    if (!k) k = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (k) {
        snprintf(out, n, "k:%s", k);
        return;
    }
    out[0] = 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    char host[64];
    if (getnameinfo(ci->client_addr,
                    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in),
                    host, sizeof host, NULL, 0, NI_NUMERICHOST) == 0)
        snprintf(out, n, "a:%s", host);
}

static enum MHD_Result not_ready(px_server *s, struct MHD_Connection *c, struct request *r)
{
    if (atomic_load(&s->draining))
        return px_server_send_error(s, c, r, 0, PX_EUNAVAIL, "the service is shutting down", "Retry-After",
                          "5");
    return px_server_send_error(s, c, r, 0, PX_EUNAVAIL, "the engines are still loading", "Retry-After",
                      "1");
}

/* 202 for a new async job: its status with the URL the client polls. */
static enum MHD_Result send_accepted(struct MHD_Connection *c, struct request *r, px_task *t,
                                     const char *id)
{
    px_buf b;
    px_buf_init(&b, 1 << 16);
    px_task_accepted_json(t, id, &b);
    if (b.len > 2) { /* inside the object */
        b.len -= 2;  /* "}\n" */
        px_buf_printf(&b, ",\"status_url\":\"/api/v1/jobs/%s\",\"events_url\":"
                          "\"/api/v1/jobs/%s/events\"}\n", id, id);
    }
    char loc[PX_JOB_ID_MAX + 16];
    snprintf(loc, sizeof loc, "/api/v1/jobs/%s", id);
    return px_server_send_buf(c, r, 202, "application/json", &b, "Location", loc);
}

/* Suspends the connection until task t ends (unless it already has), and
 * watches it for the client hanging up. */
static enum MHD_Result suspend_for(px_server *s, struct MHD_Connection *c, struct request *r,
                                   px_task *t)
{
    r->task = t;
    pthread_mutex_lock(&r->mu);
    int done = r->finished;
    if (!done) {
        MHD_suspend_connection(c);
        r->suspended = 1;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) r->watch_id = px_watch_add(s->watch, ci->connect_fd, on_hangup, r);
    }
    pthread_mutex_unlock(&r->mu);
    return done ? px_server_send_task_reply(c, r, t) : MHD_YES;
}

/* Hands a complete body to a task of the route's kind. */
static enum MHD_Result start_task(px_server *s, struct MHD_Connection *c, struct request *r)
{
    int async = r->route->async;
    if (!atomic_load(&s->ready) || atomic_load(&s->draining)) return not_ready(s, c, r);
    /* The jobs API takes any kind: POST /api/v1/jobs?kind=NAME (default:
     * the route's). */
    const px_kind *kind = r->route->kind;
    const char *kname = async ? MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "kind") : NULL;
    if (kname && !(kind = px_kind_find(kname))) {
        char msg[120];
        snprintf(msg, sizeof msg, "unknown request kind '%.40s'", kname);
        return px_server_send_error(s, c, r, 400, PX_EINVAL, msg, NULL, NULL);
    }
    char client[80];
    client_key(c, client, sizeof client);
    const char *tmo = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Timeout-Ms");
    px_task_spec spec = {
        .kind = kind,
        .dialect = r->route->dialect,
        .async = async,
        .content_type =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .client = client,
        .host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
        .arrival_ns = r->t_arrival,
        .timeout_ms = tmo ? strtoll(tmo, NULL, 10) : 0,
    };
    if (spec.timeout_ms < 0 || spec.timeout_ms > 3600000) spec.timeout_ms = 0;
    int cur = atomic_load(&s->current);
    if (kind->engine_kind == PX_ENGINE_INPAINT && cur >= 0 && cur < s->nengines)
        spec.default_engine = px_engine_name(s->engines[cur]);
    spec.body = px_buf_steal(&r->body, &spec.body_len);
    if (!spec.body) spec.body = px_xcalloc(1, 1);

    char id[PX_JOB_ID_MAX];
    px_jobs_entry *entry = NULL;
    if (async) {
        entry = px_jobs_reserve(s->jobs, id);
        if (!entry) {
            free(spec.body);
            char msg[120];
            snprintf(msg, sizeof msg, "%d jobs are kept already (the limit); retry later",
                     s->cfg->max_jobs);
            return px_server_send_error(s, c, r, 0, PX_EBUSY, msg, "Retry-After", "5");
        }
        spec.done = px_jobs_on_done;
        spec.done_arg = entry;
    } else {
        spec.done = on_task_done;
        spec.done_arg = r;
    }
    px_task *t;
    int retry = 1;
    int rc = px_tasks_submit(s->tasks, &spec, &t, &retry);
    if (rc) {
        if (entry) px_jobs_abandon(s->jobs, entry);
        if (rc == PX_EBUSY) {
            px_metrics_outcome(s->metrics, px_kind_index(kind), PX_OUTCOME_REJECTED);
            char ra[16];
            snprintf(ra, sizeof ra, "%d", retry);
            return px_server_send_error(s, c, r, 0, PX_EBUSY,
                              "the service is at capacity; retry after the time in Retry-After",
                              "Retry-After", ra);
        }
        return not_ready(s, c, r);
    }
    if (async) {
        px_jobs_attach(s->jobs, entry, t); /* the table keeps our reference */
        return send_accepted(c, r, t, id);
    }
    return suspend_for(s, c, r, t);
}

/* ------------------------------------------------------------ dispatch */

/* Whether a request carries a body that starts a task. */
static int is_submit(const px_route_def *route, const char *method)
{
    return route->kind && strcmp(method, MHD_HTTP_METHOD_POST) == 0;
}

/*
 * A body found too long while it streams in (chunked: no Content-Length to
 * refuse it by) can only be answered once it has ended — libmicrohttpd
 * takes no reply in the middle of a body — so the rest is read and dropped
 * within the lingering bounds; a client that goes quiet is cut after at
 * most 2 s (the per-connection timeout), one that sends more than
 * --linger-bytes or for longer than --linger-time is closed.
 */
static enum MHD_Result start_dropping(px_server *s, struct MHD_Connection *c, struct request *r,
                                      int rc)
{
    px_buf_free(&r->body);
    r->drop_code = rc == PX_ETOOBIG ? PX_ETOOBIG : PX_ENOMEM;
    r->drop_left = s->cfg->linger_bytes + 1;
    r->drop_until = px_now_ns() + s->cfg->linger_ms * 1000000;
    int64_t idle_s = s->cfg->linger_ms >= 2000 ? 2 : (s->cfg->linger_ms + 999) / 1000;
    if (idle_s < 1) return MHD_NO; /* lingering is off: close now */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)idle_s);
    return MHD_YES;
}

static enum MHD_Result drop_body(struct request *r, size_t n)
{
    if (n >= r->drop_left || px_now_ns() > r->drop_until) return MHD_NO; /* past the bounds */
    r->drop_left -= n;
    return MHD_YES;
}

/* First callback of a request: headers only. Refuses early what it can. */
static enum MHD_Result on_headers(px_server *s, struct MHD_Connection *c, struct request *r,
                                  const char *url, const char *method)
{
    const px_route_def *route = r->route;
    if (route->id == PX_ROUTE_OTHER) {
        /* The API index answers GET; anything else here is unknown. */
        if (route->path[0] && px_route_allows(route, method)) return MHD_YES;
        char msg[160];
        snprintf(msg, sizeof msg, "no route for %.100s", url);
        return px_server_send_error(s, c, r, 404, PX_ENOTFOUND, msg, NULL, NULL);
    }
    const char *allow = px_route_allows(route, method) ? NULL : route->methods;
    if (allow) {
        char msg[160];
        snprintf(msg, sizeof msg, "%.20s is not allowed here; use %s", method, allow);
        return px_server_send_error(s, c, r, 405, PX_EINVAL, msg, "Allow", allow);
    }
    if (is_submit(route, method) && atomic_load(&s->draining)) return not_ready(s, c, r);
    if (!strcmp(method, MHD_HTTP_METHOD_POST)) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->cfg->max_body) {
            char msg[160];
            snprintf(msg, sizeof msg, "request body of %.20s bytes exceeds the limit of %zu bytes",
                     cl, s->cfg->max_body);
            return px_server_send_error(s, c, r, 0, PX_ETOOBIG, msg, NULL, NULL);
        }
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    px_server *s = cls;
    struct request *r = *con_cls;

    if (!r) {
        r = px_xcalloc(1, sizeof *r);
        r->srv = s;
        r->conn = c;
        r->t_arrival = px_now_ns();
        pthread_mutex_init(&r->mu, NULL);
        px_buf_init(&r->body, s->cfg->max_body);
        r->route = px_route_find(url);
        *con_cls = r;
        atomic_fetch_add(&s->open_requests, 1);
        if (px_cors_is_preflight(s->cfg, c, method)) {
            struct MHD_Response *resp = px_cors_preflight(c);
            return resp ? px_server_queue(c, r, 204, resp) : MHD_NO;
        }
        enum MHD_Result ret = on_headers(s, c, r, url, method);
        r->early = r->status && px_linger_wanted(c); /* answered before its body */
        return ret;
    }

    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->status) return MHD_YES; /* answered from the headers: drop the rest */
        if (r->drop_left) return drop_body(r, n);
        int rc = px_buf_append(&r->body, upload, n);
        if (rc) return start_dropping(s, c, r, rc);
        return MHD_YES;
    }
    if (r->drop_left) { /* the over-long body has ended: now the answer can go */
        char msg[160];
        snprintf(msg, sizeof msg, "request body exceeds the limit of %zu bytes", s->cfg->max_body);
        return px_server_send_error(s, c, r, 0, r->drop_code, msg, NULL, NULL);
    }
    if (r->status) return MHD_YES; /* a reply is already queued */
    if (r->task) return px_server_send_task_reply(c, r, r->task); /* resumed: the task ended */
    if (r->deferred_status) return px_server_send_deferred(c, r); /* resumed: registered */

    if (is_submit(r->route, method)) return start_task(s, c, r);
    size_t at = strlen(r->route->path ? r->route->path : "");
    switch (r->route->id) {
    case PX_ROUTE_JOBS: return px_server_serve_job(s, c, r, method, url + at);
    case PX_ROUTE_OUTPUTS: return px_server_serve_output(s, c, r, url + at);
    case PX_ROUTE_HEALTHZ: return px_server_serve_healthz(s, c, r);
    case PX_ROUTE_READYZ: return px_server_serve_readyz(s, c, r);
    case PX_ROUTE_METRICS: return px_server_serve_metrics(s, c, r);
    case PX_ROUTE_ENGINES: return px_server_serve_engines(s, c, r);
    case PX_ROUTE_LORAS: return px_server_serve_loras(s, c, r, method, url + at);
    case PX_ROUTE_UI: return px_server_serve_ui(s, c, r, url);
    case PX_ROUTE_IOPAINT: return px_iopaint_serve(s, c, r, method, url);
    case PX_ROUTE_SOCKETIO: return px_iopaint_socketio(s, c, r, method);
    default: return px_server_serve_index(s, c, r);
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    px_server *s = cls;
    struct request *r = *con_cls;
    if (!r) return;
    if (r->early && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && s->linger) {
        /* The answer is out and libmicrohttpd closes the socket next with the
         * body still coming: keep it open on a duplicate and drain it. */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) px_linger_add(s->linger, fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0));
    }
    double secs = (double)(px_now_ns() - r->t_arrival) / 1e9;
    /* A request dropped before any reply counts as 499 (client closed). */
    int status = r->status ? r->status : 499;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && status < 400)
        PX_DEBUG("%s: reply %d not fully sent (termination %d)", px_route_label(r->route->id), status,
                 (int)toe);
    px_metrics_request(s->metrics, r->route->id, status, secs);
    if (r->task) {
        /* Normally the task has ended (that is what resumed us). If the
         * connection is torn down while it runs, stop the work and make
         * sure its callback never reaches this request. */
        px_task_detach(r->task);
        px_task_cancel(r->task);
        pthread_mutex_lock(&r->mu);
        uint64_t wid = r->watch_id;
        r->watch_id = 0;
        pthread_mutex_unlock(&r->mu);
        px_watch_remove(s->watch, wid);
        px_task_unref(r->task);
    }
    px_buf_free(&r->body);
    px_buf_free(&r->deferred);
    pthread_mutex_destroy(&r->mu);
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

static void *loader_main(void *arg)
{
    px_server *s = arg;
    const px_serve_config *cfg = s->cfg;
    char inner[256];
    int64_t t0 = px_now_ns();
    if (px_engines_load(cfg, s->pool, s->engines, &s->nengines, s->load_error,
                        sizeof s->load_error))
        goto fail;
    s->tasks = px_tasks_create(cfg, s->engines, s->nengines, s->outputs, s->metrics, inner,
                               sizeof inner);
    if (!s->tasks) {
        snprintf(s->load_error, sizeof s->load_error, "%s", inner);
        goto fail;
    }
    px_tasks_set_loras(s->tasks, s->loras);
    for (int i = s->nengines - 1; i >= 0; i--) /* the first inpaint engine is current */
        if (px_engine_kind_of(s->engines[i]) == PX_ENGINE_INPAINT) atomic_store(&s->current, i);
    PX_INFO("engines loaded and warmed in %.0f ms; ready", px_ns_to_ms(px_now_ns() - t0));
    atomic_store(&s->ready, 1);
    return NULL;
fail:
    PX_ERROR("%s", s->load_error);
    atomic_store(&s->failed, 1);
    return NULL;
}

static void free_server(px_server *s)
{
    if (s->loader_started) pthread_join(s->loader, NULL);
    /* The jobs table lets go of its tasks before the task manager they
     * belong to is freed. */
    px_jobs_destroy(s->jobs);
    px_tasks_destroy(s->tasks);
    px_loras_close(s->loras); /* after the tasks: they hold LoRAs */
    px_watch_destroy(s->watch);
    px_linger_destroy(s->linger);
    px_nvml_close(s->nvml);
    for (int i = 0; i < s->nengines; i++) px_engine_close(s->engines[i]);
    px_outputs_close(s->outputs);
    px_metrics_free(s->metrics);
    px_pool_destroy(s->pool);
    free(s);
}

int px_server_start(const px_serve_config *cfg, px_server **out, char *err, size_t errlen)
{
    *out = NULL;
    /* Engine names are checked now, so a typo fails before anything starts;
     * loading them (weights, warm-up) happens after the socket is bound. */
    int rc = px_engines_check(cfg, err, errlen);
    if (rc) return rc;
    px_server *s = px_xcalloc(1, sizeof *s);
    s->cfg = cfg;
    s->t_start = px_now_ns();
    atomic_init(&s->current, -1);
    s->metrics = px_metrics_new();
    s->jobs = px_jobs_create(cfg->job_ttl_ms, cfg->max_jobs);

    s->pool = px_pool_create(cfg->threads);
    s->watch = px_watch_create();
    s->linger = px_linger_create(cfg);
    char gpu_err[160];
    s->nvml = px_nvml_open(gpu_err, sizeof gpu_err);
    if (s->nvml) PX_INFO("%d GPU(s) visible to NVML", px_nvml_count(s->nvml));
    else PX_INFO("GPU readings off: %s", gpu_err);
    if (!s->pool || !s->watch) {
        rc = px_errf(err, errlen, PX_ENOMEM, "cannot start threads");
        goto fail;
    }
    if ((rc = px_outputs_open(cfg->outputs, &s->outputs, err, errlen))) goto fail;
    if (cfg->lora_dir &&
        (rc = px_loras_open(cfg->lora_dir, cfg->lora_cache_bytes, &s->loras, err, errlen)))
        goto fail;

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
    /* poll, not epoll: with a thread pool, libmicrohttpd 0.9.75's
     * MHD_quiesce_daemon removes the listening socket from each worker's
     * epoll set while the worker may be removing it itself, and panics
     * (abort) when it loses that race ("Failed to remove listen FD from
     * epoll set", seen in a test's SIGTERM). poll mode has no such set. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
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
    if (pthread_create(&s->loader, NULL, loader_main, s) != 0) {
        rc = px_errf(err, errlen, PX_ENOMEM, "cannot start the engine loader");
        MHD_stop_daemon(s->mhd);
        goto fail;
    }
    s->loader_started = 1;
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

const char *px_server_failed(px_server *s)
{
    return atomic_load(&s->failed) ? s->load_error : NULL;
}

void px_server_stop(px_server *s, int grace_ms)
{
    if (!s) return;
    atomic_store(&s->draining, 1);
    /* Stop accepting, keep the connections. The workers may still be in a
     * poll() that holds the listening socket until they see the quiesce,
     * so it is not closed before MHD_stop_daemon (libmicrohttpd's rule);
     * shutdown() stops the kernel listening on it at once, so new clients
     * are refused rather than left in the backlog. */
    MHD_socket lfd = MHD_quiesce_daemon(s->mhd);
    if (lfd != MHD_INVALID_SOCKET) shutdown(lfd, SHUT_RD);
    if (s->loader_started) {
        pthread_join(s->loader, NULL);
        s->loader_started = 0;
    }
    /* Finish every task already accepted (their connections get resumed),
     * async ones included. */
    if (s->tasks) px_tasks_drain(s->tasks);
    /* Let the replies go out before the remaining (idle) connections close. */
    int64_t until = px_now_ns() + (int64_t)grace_ms * 1000000;
    while (atomic_load(&s->open_requests) > 0 && px_now_ns() < until) usleep(10000);
    /* A LoRA registration resumes its connection when its load ends: the
     * daemon must still be there (loads are bounded by the file's size). */
    while (atomic_load(&s->registering) > 0) usleep(10000);
    MHD_stop_daemon(s->mhd);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    free_server(s);
}
