/*
 * task_impl.h — the task and task manager structs, shared by the two files
 * of the lifecycle: task.c (the stages and the end) and task_status.c (the
 * reply, timings and the jobs-API status). Nothing else includes it.
 */
#ifndef PX_SERVE_TASK_IMPL_H
#define PX_SERVE_TASK_IMPL_H

#include "core/timer.h"
#include "serve/admit.h"
#include "serve/task.h"
#include "serve/workers.h"

#include <pthread.h>
#include <stdatomic.h>

/* Where a task is; reported by the jobs API. */
enum stage { ST_PREP, ST_PREPARE, ST_QUEUED, ST_INFER, ST_FINISH, ST_ENDED };

/* How it ended. */
enum outcome { OUT_NONE, OUT_DONE, OUT_FAILED, OUT_CANCELLED, OUT_EXPIRED };

struct px_tasks {
    const px_serve_config *cfg;
    px_engine *const *engines;
    int nengines;
    px_kind_env env;
    px_workers *cpu;
    int workers_per_engine; /* scheduler workers per engine */
    px_sched *sched;
    px_timers *timers;

    px_admit *admit;
    pthread_mutex_t mu; /* the task counts */
    pthread_cond_t idle;
    int tasks;  /* alive (referenced) */
    int active; /* not yet ended */
    int draining;
};

struct px_task {
    atomic_int refs;
    px_tasks *p;
    pthread_mutex_t mu;

    /* What was asked. */
    const px_kind *kind;
    enum px_dialect dialect;
    int async;
    char content_type[256];
    uint8_t *body;
    size_t body_len;
    char client[64];
    char host[128];
    char default_engine[32]; /* the engine when the request names none ("" = the first) */
    int64_t arrival_ns, deadline_ns, created_ms;
    px_task_done_fn done;
    void *done_arg;

    /* Parsed and prepared (by prep; read by others only after it ended or
     * through the lock). */
    void *req;
    int engine_index;
    enum px_priority prio;
    int admitted;
    px_sched_item *items;
    int nitems, items_left, items_submitted;
    int item_rc; /* first item failure */
    char item_err[160];

    /* Progress (under mu). */
    enum stage stage;
    px_work *cpu_work; /* the prep or finish work in the CPU pool, if any */
    uint64_t timer_id;
    int64_t t_queued, t_started, t_infer_end, t_finished;
    int64_t decode_ns, encode_ns, save_ns;
    int batch_size;
    int step, steps; /* the engine's last progress report */
    /* Every change of step, in order across the request's images (a
     * follower that reads late replays them; a batch's items reporting the
     * same step together count once): ticks so far, the last
     * PX_TASK_TICK_LOG of them by tick % PX_TASK_TICK_LOG. */
    int ticks;
    struct {
        short step, steps;
    } tick_log[PX_TASK_TICK_LOG];

    /* The end. */
    enum outcome outcome;
    int http_status, code;
    const char *content_type_out;
    px_buf reply;
    const char *hdr_name;
    char hdr_value[32];

    /* Watchers of changes (px_task_watch), under wmu. */
    pthread_mutex_t wmu;
    struct {
        px_task_watch_fn fn;
        void (*release)(void *arg);
        void *arg;
    } watch[PX_TASK_MAX_WATCHERS];
};

/* Queue wait and compute time so far, in milliseconds; with t->mu held. */
void px_task_stage_ms(const px_task *t, double *queue, double *infer);

#endif
