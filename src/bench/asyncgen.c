/*
 * asyncgen.c — submit, follow, measure: the async text-to-image mode (see
 * asyncgen.h).
 */
#include "bench/asyncgen.h"

#include "bench/report_util.h"

#include "bench/genreply.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonw.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct shared {
    const pb_async_config *c;
    pb_async_stage *st;
    pthread_mutex_t mu;
    int64_t mstart, mend;  /* the measured window */
    int64_t stop_at;       /* users start no job after this */
} shared;

/* One exchange on a fresh connection: sends head (+ body), reads the reply
 * into sink; with sse, the body's bytes go through the event parser as they
 * come and the exchange ends early when the callback says so. Returns 0, or
 * PX_EIO / PX_ETIMEDOUT / PX_ECORRUPT with a message. */
static int exchange(const pb_async_config *c, const void *head, size_t hl, const void *body, size_t bl,
                    int64_t deadline, pb_http_parser *hp, px_buf *sink, pb_sse *sse, pb_sse_fn fn, void *ctx,
                    char *err, size_t errlen)
{
    int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return px_errf(err, errlen, PX_EIO, "socket: %s", strerror(errno));
    int one = 1, rc = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&c->addr, c->addrlen) != 0) {
        rc = px_errf(err, errlen, PX_EIO, "connect: %s", strerror(errno));
        goto out;
    }
    const struct { const void *p; size_t n; } parts[2] = {{head, hl}, {body, bl}};
    for (int i = 0; i < 2 && !rc; i++)
        for (size_t off = 0; off < parts[i].n;) {
            ssize_t k = send(fd, (const char *)parts[i].p + off, parts[i].n - off, MSG_NOSIGNAL);
            if (k <= 0) {
                rc = px_errf(err, errlen, PX_EIO, "send: %s", strerror(errno));
                break;
            }
            off += (size_t)k;
        }
    sink->len = 0;
    pb_http_init(hp, 0, sink);
    size_t fed = 0; /* sink bytes the event parser has seen */
    uint8_t buf[16384];
    while (!rc) {
        int64_t left = deadline - px_now_ns();
        struct pollfd pf = {fd, POLLIN, 0};
        if (left <= 0 || poll(&pf, 1, (int)(left / 1000000 + 1)) == 0) {
            rc = px_errf(err, errlen, PX_ETIMEDOUT, "no complete reply in time");
            break;
        }
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k < 0 && errno == EINTR) continue;
        size_t used = 0;
        int st = k > 0 ? pb_http_feed(hp, buf, (size_t)k, &used, err, errlen)
               : k == 0 ? pb_http_eof(hp, err, errlen)
                        : px_errf(err, errlen, PX_EIO, "recv: %s", strerror(errno));
        if (st < 0) {
            rc = st;
            break;
        }
        if (sse && hp->status >= 200 && hp->status < 300 && sink->len > fed) {
            int r = pb_sse_feed(sse, (const char *)sink->data + fed, sink->len - fed, fn, ctx, err, errlen);
            fed = sink->len;
            if (r < 0) rc = r;
            if (r) break; /* the ending event: no need to wait for the stream's end */
        }
        if (st == PB_HTTP_DONE) break;
    }
out:
    close(fd);
    return rc;
}

typedef struct job {
    int64_t t0, t_running, t_end;
    int ended, ok;
    pb_gen_reply fin;         /* the ending status object */
    char why[200];
} job;

static void note_status(job *j, const pb_gen_reply *r)
{
    if (!j->t_running && !strcmp(r->status, "running")) j->t_running = px_now_ns();
    int done = !strcmp(r->status, "done");
    if (done || !strcmp(r->status, "failed") || !strcmp(r->status, "cancelled") || !strcmp(r->status, "expired")) {
        j->t_end = px_now_ns();
        j->ended = 1;
        j->ok = done;
        j->fin = *r;
        if (!done)
            snprintf(j->why, sizeof j->why, "job %s%s%.150s", r->status, r->err_msg[0] ? ": " : "", r->err_msg);
    }
}

static int on_event(void *ctx, const char *ev, const char *data, size_t n)
{
    job *j = ctx;
    pb_gen_reply r;
    char err[64];
    if (!strcmp(ev, "end")) return 1;
    if (pb_gen_reply_parse(data, n, &r, err, sizeof err)) return 0;
    if (!strcmp(ev, "failed") && !r.status[0]) snprintf(r.status, sizeof r.status, "failed");
    if (!strcmp(ev, "cancelled") && !r.status[0]) snprintf(r.status, sizeof r.status, "cancelled");
    /* a status event may say "done" before the done event that carries the
     * job's times: only the ending events end it */
    if (!strcmp(ev, "status")) {
        if (!strcmp(r.status, "running") && !j->t_running) j->t_running = px_now_ns();
    } else if (!strcmp(ev, "done") || !strcmp(ev, "failed") || !strcmp(ev, "cancelled")) {
        note_status(j, &r);
    }
    return j->ended;
}

/* Follows one job to its end, by events or by polling. Returns 0 when it ended. */
static int follow(const pb_async_config *c, const pb_gen_reply *sub, job *j, int64_t deadline, px_buf *sink,
                  pb_sse *sse, char *err, size_t errlen)
{
    char path[512], head[1024];
    const char *given = c->poll_ns ? sub->status_url : sub->events_url;
    if (given[0] == '/') snprintf(path, sizeof path, "%s%s", c->prefix, given);
    else snprintf(path, sizeof path, "%s/api/v1/jobs/%s%s", c->prefix, sub->id, c->poll_ns ? "" : "/events");
    int hl = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pixbench\r\nAccept: %s\r\n\r\n",
                      path, c->host_header, c->poll_ns ? "application/json" : "text/event-stream");
    pb_http_parser hp;
    while (!j->ended) {
        int rc;
        if (!c->poll_ns) {
            pb_sse_free(sse);
            pb_sse_init(sse);
            rc = exchange(c, head, (size_t)hl, NULL, 0, deadline, &hp, sink, sse, on_event, j, err, errlen);
            if (!rc && !j->ended) rc = px_errf(err, errlen, PX_EIO, "the event stream ended before the job (status %d)", hp.status);
            return j->ended ? 0 : rc;
        }
        rc = exchange(c, head, (size_t)hl, NULL, 0, deadline, &hp, sink, NULL, NULL, NULL, err, errlen);
        if (rc) return rc;
        pb_gen_reply r;
        if (hp.status != 200 || pb_gen_reply_parse((const char *)sink->data, sink->len, &r, err, errlen))
            return px_errf(err, errlen, PX_EIO, "job status: HTTP %d", hp.status);
        note_status(j, &r);
        if (!j->ended) {
            int64_t wake = px_now_ns() + c->poll_ns;
            if (wake > deadline) return px_errf(err, errlen, PX_ETIMEDOUT, "the job did not end in time");
            struct timespec ts = {(time_t)(c->poll_ns / 1000000000), (long)(c->poll_ns % 1000000000)};
            nanosleep(&ts, NULL);
        }
    }
    return 0;
}

static void record(shared *s, const job *j, int submit_rc, int follow_rc, int64_t submit_ns, const char *why)
{
    int64_t end = j->t_end ? j->t_end : px_now_ns();
    pthread_mutex_lock(&s->mu);
    pb_async_stage *st = s->st;
    if (end >= s->mstart && end < s->mend) {
        if (submit_rc) st->submit_failed++;
        else if (follow_rc == PX_ETIMEDOUT) st->timed_out++;
        else if (follow_rc) st->lost++;
        else if (!j->ok) st->failed++;
        else {
            st->done++;
            px_hist_record(&st->submit, (uint64_t)submit_ns);
            px_hist_record(&st->e2e, (uint64_t)(j->t_end - j->t0));
            const pb_gen_reply *f = &j->fin;
            if (f->created_ms >= 0 && f->started_ms >= f->created_ms && f->finished_ms >= f->started_ms) {
                st->server_clock++;
                px_hist_record(&st->queue, (uint64_t)((f->started_ms - f->created_ms) * 1e6));
                px_hist_record(&st->run, (uint64_t)((f->finished_ms - f->started_ms) * 1e6));
            } else if (j->t_running) {
                px_hist_record(&st->queue, (uint64_t)(j->t_running - j->t0));
                px_hist_record(&st->run, (uint64_t)(j->t_end - j->t_running));
            }
        }
        if ((submit_rc || follow_rc || !j->ok) && why[0]) snprintf(st->last_error, sizeof st->last_error, "%s", why);
    }
    pthread_mutex_unlock(&s->mu);
}

static void *user(void *arg)
{
    shared *s = arg;
    const pb_async_config *c = s->c;
    px_buf sink;
    px_buf_init(&sink, PB_GEN_MAX_REPLY);
    pb_sse sse;
    pb_sse_init(&sse);
    unsigned seed = (unsigned)(uintptr_t)&sink;
    while (px_now_ns() < s->stop_at && !(c->interrupted && *c->interrupted)) {
        const pb_request *rq = &c->reqs[c->nreqs > 1 ? rand_r(&seed) % c->nreqs : 0];
        job j;
        memset(&j, 0, sizeof j);
        char why[200] = "";
        j.t0 = px_now_ns();
        int64_t deadline = j.t0 + c->timeout_ns;
        pb_http_parser hp;
        pb_gen_reply sub;
        int frc = 0, src = exchange(c, rq->head, rq->head_len, rq->body, rq->body_len, deadline, &hp, &sink, NULL,
                                    NULL, NULL, why, sizeof why);
        int64_t submit_ns = px_now_ns() - j.t0;
        if (!src && (hp.status < 200 || hp.status > 299)) {
            pb_gen_reply e;
            char e2[64];
            int parsed = !pb_gen_reply_parse((const char *)sink.data, sink.len, &e, e2, sizeof e2);
            src = px_errf(why, sizeof why, PX_EIO, "submission: HTTP %d%s%s", hp.status,
                          parsed && e.err_code[0] ? " " : "", parsed ? e.err_code : "");
        } else if (!src && (pb_gen_reply_parse((const char *)sink.data, sink.len, &sub, why, sizeof why) || !sub.id[0])) {
            src = px_errf(why, sizeof why, PX_ECORRUPT, "the submission's reply has no job id");
        }
        if (!src) frc = follow(c, &sub, &j, deadline, &sink, &sse, why, sizeof why);
        if (!src && !frc && !j.ok) snprintf(why, sizeof why, "%s", j.why);
        record(s, &j, src, frc, submit_ns, why);
        if (src || frc) usleep(10000); /* a broken target is not hammered */
    }
    pb_sse_free(&sse);
    px_buf_free(&sink);
    return NULL;
}

int pb_async_run(const pb_async_config *c, pb_async_stage *out, int *nout, char *err, size_t errlen)
{
    *nout = 0;
    for (int k = 0; k < c->nstages && !(c->interrupted && *c->interrupted); k++) {
        pb_async_stage *st = &out[k];
        memset(st, 0, sizeof *st);
        px_hist_init(&st->submit);
        px_hist_init(&st->queue);
        px_hist_init(&st->run);
        px_hist_init(&st->e2e);
        st->users = c->loads[k];
        shared s = {.c = c, .st = st};
        pthread_mutex_init(&s.mu, NULL);
        int64_t t = px_now_ns();
        s.mstart = t + c->warmup_ns;
        s.mend = s.mstart + c->stage_ns;
        s.stop_at = s.mend;
        int n = (int)c->loads[k], started = 0;
        pthread_t *th = px_xcalloc((size_t)n, sizeof *th);
        for (int i = 0; i < n; i++)
            if (pthread_create(&th[i], NULL, user, &s) == 0) started++;
            else break;
        /* jobs that end after the window are not counted; wait for them anyway
         * so the next stage starts on an idle server */
        for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
        free(th);
        int64_t end = px_now_ns() < s.mend ? px_now_ns() : s.mend;
        st->measured_s = end > s.mstart ? (double)(end - s.mstart) / 1e9 : 0;
        pthread_mutex_destroy(&s.mu);
        (*nout)++;
        if (!started) return px_errf(err, errlen, PX_EIO, "cannot start user threads");
        if (c->progress)
            fprintf(stderr, "pixbench: async stage %d users: %llu jobs done, %llu failed\n", n,
                    (unsigned long long)st->done,
                    (unsigned long long)(st->failed + st->submit_failed + st->timed_out + st->lost));
    }
    return 0;
}

static void ms2(char *b, size_t cap, const px_hist *h)
{
    if (!h->count) snprintf(b, cap, "-");
    else snprintf(b, cap, "%.1f / %.1f", px_hist_mean(h) / 1e6, (double)px_hist_quantile(h, 0.95) / 1e6);
}

void pb_async_print(FILE *f, const pb_async_stage *s, int n, int poll_mode)
{
    fprintf(f, "\n## Async jobs (%s)\n\n| users | jobs/s | done | failed | submission ms mean / P95 | queue wait ms "
               "mean / P95 | run ms mean / P95 | end to end ms mean / P95 | queue and run from |\n"
               "|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
            poll_mode ? "polling GET /api/v1/jobs/{id}" : "following /api/v1/jobs/{id}/events");
    for (int k = 0; k < n; k++) {
        const pb_async_stage *st = &s[k];
        char a[4][48];
        ms2(a[0], 48, &st->submit);
        ms2(a[1], 48, &st->queue);
        ms2(a[2], 48, &st->run);
        ms2(a[3], 48, &st->e2e);
        uint64_t bad = st->failed + st->submit_failed + st->timed_out + st->lost;
        fprintf(f, "| %g | %.2f | %llu | %llu | %s | %s | %s | %s | %s |\n", st->users,
                st->measured_s > 0 ? (double)st->done / st->measured_s : 0, (unsigned long long)st->done,
                (unsigned long long)bad, a[0], a[1], a[2], a[3],
                !st->done                          ? "-"
                : st->server_clock == st->done     ? "the server's job times"
                : st->server_clock == 0            ? "the client's view of the status"
                                                   : "both (server where given)");
    }
    fprintf(f, "\nEnd to end: submission sent to the ending event (or status) seen, the image not fetched. "
               "Jobs count in the stage whose measured window they end in.\n");
    for (int k = 0; k < n; k++)
        if (s[k].last_error[0])
            fprintf(f, "\n%g users: %llu submissions refused, %llu failed, %llu timed out, %llu streams lost; "
                       "last: %s\n",
                    s[k].users, (unsigned long long)s[k].submit_failed, (unsigned long long)s[k].failed,
                    (unsigned long long)s[k].timed_out, (unsigned long long)s[k].lost, s[k].last_error);
}

static void jh(px_buf *b, const char *name, const px_hist *h)
{
    if (!h->count) px_buf_printf(b, "\"%s\":null,", name);
    else
        px_buf_printf(b, "\"%s\":{\"mean\":%.3f,\"p50\":%.3f,\"p95\":%.3f,\"max\":%.3f},", name, px_hist_mean(h) / 1e6,
                      (double)px_hist_quantile(h, 0.5) / 1e6, (double)px_hist_quantile(h, 0.95) / 1e6,
                      (double)h->max / 1e6);
}

int pb_async_write(const char *dir, const char *title, const char *cmdline, const char *target,
                   const pb_async_stage *s, int n, int poll_mode, char *err, size_t errlen)
{
    mkdir(dir, 0777);
    char path[1200];
    snprintf(path, sizeof path, "%s/report.md", dir);
    FILE *f = fopen(path, "w");
    if (!f) return px_errf(err, errlen, PX_EIO, "cannot write %s", path);
    fprintf(f, "# %s\n\n- command: `%s`\n- target: %s\n", title, cmdline, target);
    pb_async_print(f, s, n, poll_mode);
    int bad = fclose(f) != 0;
    px_buf b;
    px_buf_init(&b, (size_t)16 << 20);
    px_buf_printf(&b, "{\"schema\":\"pixbench-async/1\",\"mode\":\"%s\",\"target\":", poll_mode ? "poll" : "events");
    px_json_str(&b, target);
    px_buf_puts(&b, ",\"stages\":[");
    for (int k = 0; k < n; k++) {
        const pb_async_stage *st = &s[k];
        px_buf_printf(&b, "%s{\"users\":%g,\"measured_s\":%.3f,\"done\":%llu,\"failed\":%llu,\"submit_failed\":%llu,"
                          "\"timed_out\":%llu,\"lost\":%llu,\"server_clock\":%llu,",
                      k ? "," : "", st->users, st->measured_s, (unsigned long long)st->done,
                      (unsigned long long)st->failed, (unsigned long long)st->submit_failed,
                      (unsigned long long)st->timed_out, (unsigned long long)st->lost,
                      (unsigned long long)st->server_clock);
        jh(&b, "submit_ms", &st->submit);
        jh(&b, "queue_ms", &st->queue);
        jh(&b, "run_ms", &st->run);
        jh(&b, "end_to_end_ms", &st->e2e);
        px_buf_puts(&b, "\"last_error\":");
        px_json_str(&b, st->last_error[0] ? st->last_error : NULL);
        px_buf_puts(&b, "}");
    }
    px_buf_puts(&b, "]}\n");
    snprintf(path, sizeof path, "%s/async.json", dir);
    bad |= pb_rep_save_buf(path, &b) != 0;
    return bad ? px_errf(err, errlen, PX_EIO, "cannot write the async report into %s", dir) : 0;
}
