/*
 * server_impl.h — what the two files of the HTTP service share: the server
 * and per-request structs and the reply helpers and route handlers of
 * server_routes.c, used by server.c's dispatch. Nothing else includes it.
 */
#ifndef PX_SERVE_SERVER_IMPL_H
#define PX_SERVE_SERVER_IMPL_H

#include "core/buf.h"
#include "core/nvml.h"
#include "core/pool.h"
#include "engine/engine.h"
#include "serve/config.h"
#include "serve/jobs.h"
#include "serve/linger.h"
#include "serve/loras.h"
#include "serve/metrics.h"
#include "serve/outputs.h"
#include "serve/routes.h"
#include "serve/server.h"
#include "serve/task.h"
#include "serve/watch.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct px_server {
    const px_serve_config *cfg;
    struct MHD_Daemon *mhd;
    px_metrics *metrics;
    px_outputs *outputs;
    px_pool *pool;
    px_engine *engines[PX_MAX_ENGINES];
    int nengines;
    px_tasks *tasks;
    px_jobs *jobs;
    px_watch *watch;
    px_nvml *nvml; /* NULL without a GPU driver */
    px_linger *linger; /* NULL when lingering is off */
    px_loras *loras;   /* --lora-dir's registry; NULL without one */
    atomic_int registering; /* LoRA registrations running (server_loras.c) */
    int64_t t_start;
    int port;
    pthread_t loader;
    int loader_started;
    char load_error[256];
    atomic_int ready;  /* engines loaded and warmed, tasks running */
    atomic_int failed; /* loading failed: load_error says why */
    atomic_int draining;
    atomic_int open_requests; /* requests received and not yet completed */
    atomic_int current;       /* the current inpaint engine (index into engines): the
                                 default of inpaint requests that name none, switched
                                 with IOPaint's POST /api/v1/model; -1 until loaded */
};

/* Per HTTP request state (MHD's con_cls). */
struct request {
    px_server *srv;
    struct MHD_Connection *conn;
    const px_route_def *route;
    int64_t t_arrival;
    px_buf body;
    int status; /* of the reply queued; 0 until then */
    px_task *task;
    /* Suspend/resume hand-off with the task's done callback. */
    pthread_mutex_t mu;
    int suspended, finished;
    uint64_t watch_id;
    int early; /* answered before its body was read: linger at the close (linger.h) */
    /* A body found too long while streaming: dropped until it ends, then
     * answered (server.c, start_dropping). */
    uint64_t drop_left; /* bytes it may still send + 1; 0 = not dropping */
    int64_t drop_until;
    int drop_code;
    /* A reply made on another thread (a LoRA registration): sent when the
     * connection is resumed; 0 until then. */
    int deferred_status;
    px_buf deferred;
};

/* ---- replies (server_routes.c) */

/* Queues resp (destroyed here) as the reply, with the CORS headers. */
enum MHD_Result px_server_queue(struct MHD_Connection *c, struct request *r, int status,
                                struct MHD_Response *resp);

/* Queues b's bytes (taken over) as the reply, with an optional extra header. */
enum MHD_Result px_server_send_buf(struct MHD_Connection *c, struct request *r, int status,
                                   const char *ctype, px_buf *b, const char *hdr_name,
                                   const char *hdr_value);

/* Replies with a JSON error for a PX_E* code (status from the code unless
 * status > 0), counted in the metrics. */
enum MHD_Result px_server_send_error(px_server *s, struct MHD_Connection *c, struct request *r,
                                     int status, int code, const char *msg, const char *hdr_name,
                                     const char *hdr_value);

/* Sends what an ended task prepared (a copy: the jobs table may serve it again). */
enum MHD_Result px_server_send_task_reply(struct MHD_Connection *c, struct request *r, px_task *t);

/* ---- route handlers (server_routes.c); rest is the path after the route's prefix */

enum MHD_Result px_server_serve_job(px_server *s, struct MHD_Connection *c, struct request *r,
                                    const char *method, const char *rest);
enum MHD_Result px_server_serve_output(px_server *s, struct MHD_Connection *c, struct request *r,
                                       const char *name);
enum MHD_Result px_server_serve_healthz(px_server *s, struct MHD_Connection *c, struct request *r);
enum MHD_Result px_server_serve_readyz(px_server *s, struct MHD_Connection *c, struct request *r);
enum MHD_Result px_server_serve_metrics(px_server *s, struct MHD_Connection *c, struct request *r);
enum MHD_Result px_server_serve_engines(px_server *s, struct MHD_Connection *c, struct request *r);
enum MHD_Result px_server_serve_index(px_server *s, struct MHD_Connection *c, struct request *r);
/* server_loras.c: /api/v1/loras and /api/v1/loras/{name} (rest: "" or the name);
 * a registration suspends the connection and is answered by
 * px_server_send_deferred once resumed. */
enum MHD_Result px_server_serve_loras(px_server *s, struct MHD_Connection *c, struct request *r,
                                      const char *method, const char *rest);
enum MHD_Result px_server_send_deferred(struct MHD_Connection *c, struct request *r);
enum MHD_Result px_server_serve_ui(px_server *s, struct MHD_Connection *c, struct request *r,
                                   const char *url);

#endif
