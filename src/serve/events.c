/*
 * events.c — a job's server-sent event stream (see events.h).
 *
 * libmicrohttpd pulls the body through a content-reader callback. When it
 * has nothing new to say the callback suspends the connection (allowed
 * from inside the reader) and returns 0; the task's change notice, or the
 * hang-up watcher, resumes it. A suspended connection is never completed
 * by libmicrohttpd, so whoever flips `suspended` off may still use the
 * connection for the resume.
 *
 * The stream struct is shared by the response (freed by libmicrohttpd's
 * free callback) and the task's watcher slot (released by the task), so it
 * is reference-counted; the task reference it holds is dropped by the
 * response side only (the task may release its watchers while freeing
 * itself).
 */
#include "serve/events.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct stream {
    atomic_int refs; /* the response's and the watcher slot's */
    pthread_mutex_t mu;
    struct MHD_Connection *conn;
    px_task *task;
    char id[32];
    px_watch *watch;
    uint64_t watch_id;
    int fd;
    int suspended, closed, finished;
    /* What was last sent. */
    char status[16];
    int position, ticks;
    px_buf out; /* bytes not yet handed to libmicrohttpd */
    size_t sent;
} stream;

static void stream_unref(void *arg)
{
    stream *s = arg;
    if (atomic_fetch_sub(&s->refs, 1) != 1) return;
    px_buf_free(&s->out);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Takes the suspended connection out of suspension (with s->mu held on
 * entry, released here). */
static void wake(stream *s)
{
    int resume = s->suspended;
    s->suspended = 0;
    uint64_t wid = s->watch_id;
    s->watch_id = 0;
    pthread_mutex_unlock(&s->mu);
    if (wid) px_watch_remove(s->watch, wid);
    if (resume) MHD_resume_connection(s->conn);
}

/* The task changed (any thread). Non-zero once the stream is gone. */
static int on_change(void *arg)
{
    stream *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->closed) {
        pthread_mutex_unlock(&s->mu);
        return 1;
    }
    wake(s);
    return 0;
}

/* The client hung up while the stream waited. */
static void on_hangup(void *arg)
{
    stream *s = arg;
    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    wake(s);
}

/* Appends the events for what changed since the last call. */
static void compose(stream *s)
{
    px_task_progress p;
    px_task_progress_get(s->task, &p);
    px_buf *b = &s->out;
    if (strcmp(p.status, s->status) || p.position != s->position) {
        snprintf(s->status, sizeof s->status, "%s", p.status);
        s->position = p.position;
        px_buf_printf(b, "event: status\ndata: {\"status\":\"%s\",\"position\":", p.status);
        if (p.position > 0) px_buf_printf(b, "%d}\n\n", p.position);
        else px_buf_puts(b, "null}\n\n");
    }
    /* Every step report since the last call, from the task's log: steps
     * reported faster than the client reads (the next image's too), and
     * for a client that connected late, those before it came. */
    while (s->ticks < p.ticks) {
        int step[32], steps[32], first;
        int n = px_task_ticks(s->task, s->ticks, &first, step, steps, 32);
        if (n <= 0) break;
        for (int i = 0; i < n; i++)
            px_buf_printf(b, "event: progress\ndata: {\"step\":%d,\"steps\":%d}\n\n", step[i],
                          steps[i]);
        s->ticks = first + n;
    }
    if (p.ended) {
        const char *ev = !strcmp(p.status, "done") || !strcmp(p.status, "cancelled") ? p.status
                                                                                      : "failed";
        px_buf_printf(b, "event: %s\ndata: ", ev);
        size_t at = b->len;
        px_task_status_json(s->task, s->id, b);
        while (b->len > at && b->data[b->len - 1] == '\n') b->len--; /* one line of data */
        px_buf_puts(b, "\n\nevent: end\ndata: {}\n\n");
        s->finished = 1;
    }
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *s = cls;
    pthread_mutex_lock(&s->mu);
    if (s->sent == s->out.len) {
        s->out.len = s->sent = 0;
        if (s->finished || s->closed) {
            pthread_mutex_unlock(&s->mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        compose(s);
    }
    if (s->sent == s->out.len) {
        /* Nothing new: wait for the task's next change notice. */
        MHD_suspend_connection(s->conn);
        s->suspended = 1;
        if (s->fd >= 0) s->watch_id = px_watch_add(s->watch, s->fd, on_hangup, s);
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    size_t n = s->out.len - s->sent;
    if (n > max) n = max;
    memcpy(buf, s->out.data + s->sent, n);
    s->sent += n;
    pthread_mutex_unlock(&s->mu);
    return (ssize_t)n;
}

/* libmicrohttpd is done with the response (sent, or the connection closed). */
static void reader_free(void *cls)
{
    stream *s = cls;
    pthread_mutex_lock(&s->mu);
    s->closed = 1;
    uint64_t wid = s->watch_id;
    s->watch_id = 0;
    pthread_mutex_unlock(&s->mu);
    if (wid) px_watch_remove(s->watch, wid);
    px_task_unref(s->task);
    stream_unref(s);
}

struct MHD_Response *px_events_response(struct MHD_Connection *c, px_task *t, const char *id,
                                        px_watch *watch, int *busy)
{
    *busy = 0;
    stream *s = px_xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->mu, NULL);
    s->conn = c;
    s->task = t;
    snprintf(s->id, sizeof s->id, "%s", id);
    s->watch = watch;
    s->position = -1;
    px_buf_init(&s->out, 1 << 20);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->fd = ci ? ci->connect_fd : -1;
    atomic_fetch_add(&s->refs, 1); /* the watcher slot's */
    int rc = px_task_watch(t, on_change, stream_unref, s);
    if (rc) stream_unref(s); /* ended already (then nothing changes) or too many followers */
    if (rc == PX_EBUSY) {
        *busy = 1;
        px_task_unref(t);
        stream_unref(s);
        return NULL;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, s, reader_free);
    if (!resp) {
        /* The watcher slot (if any) lets go when the task ends. */
        pthread_mutex_lock(&s->mu);
        s->closed = 1;
        pthread_mutex_unlock(&s->mu);
        px_task_unref(t);
        stream_unref(s);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return resp;
}
