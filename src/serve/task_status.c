/*
 * task_status.c — what an ended or running task shows: its reply with the
 * Server-Timing header, the stage timings kinds put in their replies, and
 * the jobs-API status object (see task.h).
 */
#include "serve/task_impl.h"

#include "core/clock.h"
#include "core/err.h"
#include "core/jsonw.h"

#include <stdio.h>
#include <string.h>

/* The device's start time is pushed to the task (PX_SCHED_STARTED), so
 * nothing else is asked. */
void px_task_stage_ms(const px_task *t, double *queue, double *infer)
{
    int64_t end = t->t_finished ? t->t_finished : px_now_ns();
    int64_t started = t->t_started;
    *queue = t->t_queued ? px_ns_to_ms((started ? started : end) - t->t_queued) : 0;
    *infer = started ? px_ns_to_ms((t->t_infer_end ? t->t_infer_end : end) - started) : 0;
}

/* With t->mu held. */
static void timings_locked(const px_task *t, px_task_timings *tm)
{
    px_task_stage_ms(t, &tm->queue_ms, &tm->infer_ms);
    tm->decode_ms = px_ns_to_ms(t->decode_ns);
    tm->encode_ms = px_ns_to_ms(t->encode_ns);
    tm->save_ms = px_ns_to_ms(t->save_ns);
    tm->total_ms = px_ns_to_ms((t->t_finished ? t->t_finished : px_now_ns()) - t->arrival_ns);
    tm->batch_size = t->batch_size;
}

void px_task_timings_get(px_task *t, px_task_timings *tm)
{
    pthread_mutex_lock(&t->mu);
    timings_locked(t, tm);
    pthread_mutex_unlock(&t->mu);
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
    px_task_timings tm;
    timings_locked(t, &tm);
    if (t->outcome == OUT_DONE && t->req && t->kind->server_timing)
        t->kind->server_timing(t->req, &tm, r->server_timing, sizeof r->server_timing);
    else
        snprintf(r->server_timing, sizeof r->server_timing,
                 "queue;dur=%.2f, decode;dur=%.2f, infer;dur=%.2f, encode;dur=%.2f, "
                 "save;dur=%.2f, total;dur=%.2f",
                 tm.queue_ms, tm.decode_ms, tm.infer_ms, tm.encode_ms, tm.save_ms, tm.total_ms);
    pthread_mutex_unlock(&t->mu);
}

int px_task_has_results(const px_task *t)
{
    return t->kind->result != NULL;
}

int px_task_result(px_task *t, int index, const uint8_t **data, size_t *len,
                   const char **content_type)
{
    pthread_mutex_lock(&t->mu);
    int done = t->outcome == OUT_DONE;
    pthread_mutex_unlock(&t->mu);
    if (!done) return PX_EINVAL;
    /* A done task's request and reply no longer change. */
    if (t->kind->result) return t->kind->result(t->req, index, data, len, content_type);
    if (index != 0) return PX_ENOTFOUND;
    *data = t->reply.data;
    *len = t->reply.len;
    *content_type = t->content_type_out;
    return 0;
}

int px_task_ended(px_task *t, int *ok)
{
    pthread_mutex_lock(&t->mu);
    int ended = t->outcome != OUT_NONE;
    if (ok) *ok = t->outcome == OUT_DONE;
    pthread_mutex_unlock(&t->mu);
    return ended;
}

/* The "result" and "timings" of a done task, or the error of a failed one. */
static void status_end(px_task *t, const char *id, enum outcome out, px_buf *b)
{
    if (out == OUT_DONE) {
        const uint8_t *data = NULL;
        size_t len = 0;
        const char *ct = NULL;
        px_task_result(t, 0, &data, &len, &ct);
        const char *fmt = "png";
        if (ct && strstr(ct, "jpeg"))
            fmt = "jpeg";
        else if (ct && strstr(ct, "webp"))
            fmt = "webp";
        px_buf_printf(b, ",\"result\":{\"url\":\"/api/v1/jobs/%s/result\",\"format\":\"%s\"", id,
                      fmt);
        if (t->kind->status_result) t->kind->status_result(t->req, b);
        if (px_task_has_results(t)) { /* each result's own URL */
            int n = 0;
            px_buf_puts(b, ",\"urls\":[");
            for (const uint8_t *d; px_task_result(t, n, &d, &len, &ct) == 0; n++)
                px_buf_printf(b, "%s\"/api/v1/jobs/%s/result?index=%d\"", n ? "," : "", id, n);
            px_buf_printf(b, "],\"count\":%d", n);
            px_task_result(t, 0, &data, &len, &ct);
        }
        px_buf_printf(b, ",\"bytes\":%zu}", len);
        px_task_timings tm;
        px_task_timings_get(t, &tm);
        if (t->kind->status_extra)
            t->kind->status_extra(t->req, &tm, b);
        else
            px_buf_printf(b,
                          ",\"timings\":{\"queue_ms\":%.3f,\"decode_ms\":%.3f,\"infer_ms\":%.3f,"
                          "\"encode_ms\":%.3f}",
                          tm.queue_ms, tm.decode_ms, tm.infer_ms, tm.encode_ms);
        return;
    }
    /* The error reply already holds {"error":{...}, ...}: embed its inside
     * (everything between its outer braces). */
    pthread_mutex_lock(&t->mu);
    const char *body = (const char *)t->reply.data;
    size_t len = t->reply.len;
    while (len && body[len - 1] == '\n') len--;
    if (body && len > 2 && body[0] == '{' && body[len - 1] == '}') {
        px_buf_puts(b, ",");
        px_buf_append(b, body + 1, len - 2);
    }
    pthread_mutex_unlock(&t->mu);
}

static void put_ms_or_null(px_buf *b, const char *name, int64_t ms)
{
    if (ms)
        px_buf_printf(b, ",\"%s\":%lld", name, (long long)ms);
    else
        px_buf_printf(b, ",\"%s\":null", name);
}

/* Where the task is, read once under its lock. */
typedef struct snapshot {
    enum outcome out;
    int64_t t_started, t_finished;
    int step, steps, pos; /* pos: 0-based queue position, -1 = none */
    int parsed;           /* t->req is complete (it was, before the stage moved on) */
    int ticks;
    const char *stage, *status;
} snapshot;

static const char *infer_stage(const px_kind *k, int step, int steps)
{
    if (!k->step_stages) return k->infer_stage ? k->infer_stage : "infer";
    return step == 0 ? "text_encode" : step < steps ? "denoise" : "vae_decode";
}

static void take_snapshot(px_task *t, int accepted, snapshot *sn)
{
    static const char *outcomes[] = {NULL, "done", "failed", "cancelled", "expired"};
    pthread_mutex_lock(&t->mu);
    enum stage st = t->stage;
    sn->out = t->outcome;
    sn->t_started = t->t_started;
    sn->t_finished = t->t_finished;
    sn->step = t->step;
    sn->ticks = t->ticks;
    sn->parsed = st >= ST_QUEUED && st != ST_ENDED && t->req;
    sn->steps = t->steps;
    /* Items of one request sit together; the first says how far off it is
     * (1 = next). Asked under the task lock (lock order: task, scheduler). */
    sn->pos = sn->out == OUT_NONE && st == ST_QUEUED && t->items_submitted
                  ? px_sched_position(t->p->sched, &t->items[0])
                  : -1;
    pthread_mutex_unlock(&t->mu);
    sn->stage = sn->out != OUT_NONE || accepted ? NULL
                : st == ST_PREPARE             ? t->kind->prepare_stage
                : st == ST_INFER               ? infer_stage(t->kind, sn->step, sn->steps)
                : st == ST_FINISH              ? t->kind->finish_stage
                                               : NULL;
    sn->status = sn->out != OUT_NONE ? outcomes[sn->out] : sn->stage ? "running" : "queued";
}

void px_task_progress_get(px_task *t, px_task_progress *p)
{
    snapshot sn;
    take_snapshot(t, 0, &sn);
    *p = (px_task_progress){.status = sn.status, .position = sn.pos + 1, .step = sn.step,
                            .steps = sn.steps, .ticks = sn.ticks, .ended = sn.out != OUT_NONE};
}

int px_task_ticks(px_task *t, int from, int *first, int *step, int *steps, int max)
{
    pthread_mutex_lock(&t->mu);
    int oldest = t->ticks > PX_TASK_TICK_LOG ? t->ticks - PX_TASK_TICK_LOG : 0;
    if (from < oldest) from = oldest;
    int n = 0;
    for (int k = from; k < t->ticks && n < max; k++, n++) {
        step[n] = t->tick_log[k % PX_TASK_TICK_LOG].step;
        steps[n] = t->tick_log[k % PX_TASK_TICK_LOG].steps;
    }
    pthread_mutex_unlock(&t->mu);
    *first = from;
    return n;
}

static int status_json(px_task *t, const char *id, int accepted, px_buf *b)
{
    snapshot sn;
    take_snapshot(t, accepted, &sn);
    enum outcome out = sn.out;
    const char *stage = sn.stage, *status = sn.status;
    int pos = sn.pos, step = sn.step, steps = sn.steps;
    int64_t now_ns = px_now_ns(), now_ms = px_wall_ms();
    int64_t started_ms = sn.t_started ? now_ms - (now_ns - sn.t_started) / 1000000 : 0;
    int64_t finished_ms = sn.t_finished ? now_ms - (now_ns - sn.t_finished) / 1000000 : 0;

    int rc = px_buf_puts(b, "{\"id\":");
    px_json_str(b, id);
    px_buf_puts(b, ",\"kind\":");
    px_json_str(b, t->kind->name);
    px_buf_printf(b, ",\"status\":\"%s\",\"stage\":", status);
    if (out == OUT_NONE && stage)
        px_json_str(b, stage);
    else
        px_buf_puts(b, "null");
    px_buf_puts(b, ",\"position\":");
    if (pos >= 0)
        px_buf_printf(b, "%d", pos + 1);
    else
        px_buf_puts(b, "null");
    if (steps > 0) px_buf_printf(b, ",\"progress\":{\"step\":%d,\"steps\":%d}", step, steps);
    px_buf_printf(b, ",\"created_ms\":%lld", (long long)t->created_ms);
    put_ms_or_null(b, "started_ms", started_ms);
    put_ms_or_null(b, "finished_ms", finished_ms);
    if (out == OUT_NONE && sn.parsed && t->kind->status_request)
        t->kind->status_request(t->req, b);
    if (out != OUT_NONE) status_end(t, id, out, b);
    return rc ? rc : px_buf_puts(b, "}\n");
}

int px_task_status_json(px_task *t, const char *id, px_buf *b)
{
    return status_json(t, id, 0, b);
}

int px_task_accepted_json(px_task *t, const char *id, px_buf *b)
{
    return status_json(t, id, 1, b);
}
