/*
 * loop.c — the load loop (pb_loop): per-thread epoll loops, connection state
 * machines, closed- and open-loop pacing (see loop.h for the semantics).
 */
#include "bench/loop.h"

#include "bench/timers.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/rng.h"

#include <errno.h>
#include <math.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF 65536
#define QCAP 65536                    /* open loop: arrivals waiting for a connection */
#define CONNECT_BACKOFF_NS 10000000LL /* after a connect error, before the next try */
#define CTL_TAG UINT64_MAX

enum { U_OFF, U_SPAWN, U_THINK, U_IDLE, U_CONNECTING, U_SENDING, U_RECEIVING };

typedef struct user {
    int fd;
    int state;
    uint32_t gen;     /* bumped per socket, so stale events are ignored */
    int64_t t_ref;    /* latency starts here (intended time in the open loop) */
    int64_t t_sent;   /* timeout runs from here */
    const pb_request *req;
    size_t off;       /* request bytes sent */
    int served;       /* requests completed on this connection */
    int retried;
    int stopping;     /* closed loop: stop after this request */
    pb_http_parser hp;
    px_buf body;
    px_rng rng;
} user;

typedef struct thread {
    struct pb_loop *loop;
    int id;
    pthread_t tid;
    int ep, efd;
    user *u;
    int nu;           /* users (closed) or connections (open) */
    pb_timers timers; /* spawn and think wake-ups, by user id */
    px_rng rng;
    uint8_t *rbuf;
    /* closed loop */
    int target_users, spawned_gen;
    /* open loop */
    double rate_from, rate_to;
    int64_t ramp_start, ramp_ns;
    int64_t next_arrival; /* INT64_MAX: none */
    int *idle;        /* stack of idle connection ids */
    int nidle;
    int64_t *q;       /* FIFO of intended times */
    int qhead, qlen;
    int inflight;
    int64_t next_scan;
    int64_t scan_every;
    /* shared with the controlling thread */
    pthread_mutex_t mu;
    uint64_t ctl_gen, seen_gen;
    const pb_request *c_reqs; /* requests to choose from (the config's, or a stage's) */
    int c_nreqs;
    const pb_request *reqs;   /* this thread's copy, taken with the load */
    int nreqs;
    double c_target;
    int64_t c_ramp_ns;
    int c_stop;
    int64_t win_start, win_end;
    pb_acc win, ivl;
    _Atomic int active;
} thread;

struct pb_loop {
    pb_loop_config cfg;
    int nthreads;
    thread *t;
};

/* --- recording ------------------------------------------------------------ */

static void record(thread *t, int64_t done, int cls, int64_t lat, const user *u)
{
    pthread_mutex_lock(&t->mu);
    int in_win = done >= t->win_start && done < t->win_end;
    pb_acc *accs[2] = {&t->ivl, in_win ? &t->win : NULL};
    for (int k = 0; k < 2; k++) {
        pb_acc *a = accs[k];
        if (!a) continue;
        if (cls < 0) {
            a->ok++;
            px_hist_record(&a->lat, (uint64_t)(lat > 0 ? lat : 0));
        } else {
            a->err[cls]++;
            if (cls == PB_ERR_STATUS && u) pb_acc_note_status(a, u->hp.status);
        }
        if (u) {
            a->bytes_in += u->hp.wire_bytes;
            a->bytes_out += u->off;
        }
    }
    if (in_win && cls < 0 && u) {
        if (u->hp.server_timing[0]) pb_acc_server_timing(&t->win, u->hp.server_timing);
        else t->win.st_missing++;
    }
    pthread_mutex_unlock(&t->mu);
}

static void record_late(thread *t, int64_t now)
{
    pthread_mutex_lock(&t->mu);
    t->ivl.late++;
    if (now >= t->win_start && now < t->win_end) t->win.late++;
    pthread_mutex_unlock(&t->mu);
}

/* --- connections ---------------------------------------------------------- */

static void close_conn(thread *t, user *u)
{
    (void)t;
    if (u->fd >= 0) {
        close(u->fd); /* also removes it from the epoll set */
        u->fd = -1;
    }
    u->served = 0;
}

static int open_conn(thread *t, int id)
{
    user *u = &t->u[id];
    const pb_loop_config *c = &t->loop->cfg;
    int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    u->gen++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP,
                             .data.u64 = ((uint64_t)u->gen << 32) | (uint32_t)id};
    if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    u->fd = fd;
    u->served = 0;
    if (connect(fd, (const struct sockaddr *)&c->addr, c->addrlen) != 0 && errno != EINPROGRESS) {
        close_conn(t, u);
        return -1;
    }
    return 0; /* writable when connected: EPOLLOUT then decides */
}

static void start_request(thread *t, int id, int64_t t_ref);
static void on_writable(thread *t, int id);

/* What a user or connection does after a request ended (ok or not). */
static void after_request(thread *t, int id, int64_t now, int cls)
{
    user *u = &t->u[id];
    const pb_loop_config *c = &t->loop->cfg;
    t->inflight--;
    if (c->open_loop) {
        u->state = U_IDLE;
        t->idle[t->nidle++] = id; /* the dispatcher sends queued arrivals */
        return;
    }
    if (u->stopping || id >= t->target_users) {
        close_conn(t, u);
        u->state = U_OFF;
        u->stopping = 0;
        atomic_fetch_sub_explicit(&t->active, 1, memory_order_relaxed);
        return;
    }
    int64_t think = c->think_lo;
    if (c->think_hi > c->think_lo)
        think += (int64_t)((double)(c->think_hi - c->think_lo) * ((double)px_rng_u32(&u->rng) / 4294967296.0));
    if (cls == PB_ERR_CONNECT && think < CONNECT_BACKOFF_NS) think = CONNECT_BACKOFF_NS;
    if (think > 0 || cls >= 0) { /* errors go through the timer: no recursion */
        u->state = U_THINK;
        pb_timers_set(&t->timers, id, now + think);
    } else {
        start_request(t, id, now);
    }
}

static void fail(thread *t, int id, int cls, int64_t now)
{
    user *u = &t->u[id];
    close_conn(t, u);
    record(t, now, cls, 0, u);
    after_request(t, id, now, cls);
}

static int check_reply(thread *t, user *u, char *why, size_t wl)
{
    const pb_loop_config *c = &t->loop->cfg;
    if (u->hp.status < c->status_lo || u->hp.status > c->status_hi) {
        snprintf(why, wl, "status %d", u->hp.status);
        if (c->on_bad_status) c->on_bad_status(c->check_ctx, u->req, &u->hp, c->body_max ? &u->body : NULL);
        return PB_ERR_STATUS;
    }
    if (c->check) {
        if (u->hp.body_truncated) {
            snprintf(why, wl, "body above the check's cap");
            return PB_ERR_CHECK;
        }
        if (c->check(c->check_ctx, u->req, &u->hp, c->body_max ? &u->body : NULL, why, wl))
            return PB_ERR_CHECK;
    }
    return -1;
}

static void complete(thread *t, int id, int64_t now, int reusable)
{
    user *u = &t->u[id];
    char why[256];
    int cls = check_reply(t, u, why, sizeof why);
    record(t, now, cls, now - u->t_ref, u);
    u->served++;
    if (!reusable || !u->hp.keep_alive || u->state == U_SENDING) close_conn(t, u);
    after_request(t, id, now, cls);
}

static void send_prepare(thread *t, user *u)
{
    u->off = 0;
    if (u->body.data) u->body.len = 0;
    pb_http_init(&u->hp, u->req->is_head, t->loop->cfg.body_max ? &u->body : NULL);
}

static void start_request(thread *t, int id, int64_t t_ref)
{
    user *u = &t->u[id];
    int64_t now = px_now_ns();
    u->req = &t->reqs[t->nreqs > 1 ? px_rng_below(&u->rng, (uint32_t)t->nreqs) : 0];
    u->t_ref = t_ref;
    u->t_sent = now;
    u->retried = 0;
    t->inflight++;
    send_prepare(t, u);
    if (u->fd < 0) {
        if (open_conn(t, id) != 0) {
            fail(t, id, PB_ERR_CONNECT, now);
            return;
        }
        u->state = U_CONNECTING;
        return; /* EPOLLOUT continues */
    }
    u->state = U_SENDING;
    on_writable(t, id);
}

/* The reused connection was closed by the server before replying: try once
 * more on a new one, as HTTP clients do for this race. */
static int retry_fresh(thread *t, int id)
{
    user *u = &t->u[id];
    if (u->served == 0 || u->retried || pb_http_started(&u->hp)) return 0;
    close_conn(t, u);
    u->retried = 1;
    send_prepare(t, u);
    if (open_conn(t, id) != 0) return 0;
    u->state = U_CONNECTING;
    return 1;
}

static void on_writable(thread *t, int id)
{
    user *u = &t->u[id];
    if (u->state == U_CONNECTING) {
        int e = 0;
        socklen_t el = sizeof e;
        if (getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) {
            if (e == EINPROGRESS || e == EALREADY) return;
            fail(t, id, PB_ERR_CONNECT, px_now_ns());
            return;
        }
        u->state = U_SENDING;
    }
    if (u->state != U_SENDING) return;
    const pb_request *r = u->req;
    size_t total = r->head_len + r->body_len;
    while (u->off < total) {
        struct iovec iov[2];
        int n = 0;
        if (u->off < r->head_len) {
            iov[n].iov_base = (void *)(r->head + u->off);
            iov[n++].iov_len = r->head_len - u->off;
            if (r->body_len) {
                iov[n].iov_base = (void *)r->body;
                iov[n++].iov_len = r->body_len;
            }
        } else {
            size_t b = u->off - r->head_len;
            iov[n].iov_base = (void *)(r->body + b);
            iov[n++].iov_len = r->body_len - b;
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t k = sendmsg(u->fd, &m, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            if (retry_fresh(t, id)) return;
            fail(t, id, PB_ERR_WRITE, px_now_ns());
            return;
        }
        u->off += (size_t)k;
    }
    u->state = U_RECEIVING;
}

static void on_readable(thread *t, int id)
{
    user *u = &t->u[id];
    for (;;) {
        ssize_t k = recv(u->fd, t->rbuf, RBUF, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return;
            if (retry_fresh(t, id)) return;
            fail(t, id, PB_ERR_READ, px_now_ns());
            return;
        }
        int64_t now = px_now_ns();
        char err[160];
        if (k == 0) {
            int rc = pb_http_eof(&u->hp, err, sizeof err);
            if (rc == PB_HTTP_DONE) {
                complete(t, id, now, 0);
            } else if (!retry_fresh(t, id)) {
                fail(t, id, PB_ERR_READ, now);
            }
            return;
        }
        size_t used = 0;
        int rc = pb_http_feed(&u->hp, t->rbuf, (size_t)k, &used, err, sizeof err);
        if (rc < 0) {
            fail(t, id, PB_ERR_READ, now);
            return;
        }
        if (rc == PB_HTTP_DONE) {
            /* Bytes after the reply belong to no request: the connection is
             * out of step with us and cannot be reused. */
            if (used < (size_t)k) {
                fail(t, id, PB_ERR_READ, now);
                return;
            }
            complete(t, id, now, 1);
            return;
        }
    }
}

/* --- load control --------------------------------------------------------- */

static double rate_at(const thread *t, int64_t now)
{
    if (t->ramp_ns <= 0 || now >= t->ramp_start + t->ramp_ns) return t->rate_to;
    double f = (double)(now - t->ramp_start) / (double)t->ramp_ns;
    if (f < 0) f = 0;
    return t->rate_from + (t->rate_to - t->rate_from) * f;
}

static int64_t next_gap(thread *t, double rate)
{
    double g = 1e9 / rate;
    if (t->loop->cfg.poisson) g *= -log(((double)px_rng_u32(&t->rng) + 0.5) / 4294967296.0);
    return (int64_t)g;
}

static void apply_control(thread *t, int64_t now)
{
    pthread_mutex_lock(&t->mu);
    double target = t->c_target;
    int64_t ramp = t->c_ramp_ns;
    uint64_t gen = t->ctl_gen;
    t->reqs = t->c_reqs;
    t->nreqs = t->c_nreqs;
    pthread_mutex_unlock(&t->mu);
    if (gen == t->seen_gen) return;
    t->seen_gen = gen;
    const pb_loop_config *c = &t->loop->cfg;
    if (c->open_loop) {
        double cur = rate_at(t, now);
        t->rate_from = cur;
        t->rate_to = target;
        t->ramp_start = now;
        t->ramp_ns = ramp;
        if (t->next_arrival == INT64_MAX && (target > 0 || cur > 0)) {
            /* spread threads' constant-rate streams evenly */
            double r = target > 0 ? target : cur;
            t->next_arrival = now + (c->poisson ? next_gap(t, r)
                                                : (int64_t)(1e9 / r * t->id / t->loop->nthreads));
        }
        return;
    }
    int n = (int)target;
    if (n > t->nu) n = t->nu;
    t->target_users = n;
    double per = c->spawn_rate > 0 ? 1e9 * t->loop->nthreads / c->spawn_rate : 0;
    double offset = c->spawn_rate > 0 ? 1e9 * t->id / c->spawn_rate : 0;
    int k = 0;
    for (int i = 0; i < t->nu; i++) {
        user *u = &t->u[i];
        if (i < n) {
            if (u->stopping) u->stopping = 0;
            else if (u->state == U_OFF) {
                u->state = U_SPAWN;
                atomic_fetch_add_explicit(&t->active, 1, memory_order_relaxed);
                pb_timers_set(&t->timers, i, now + (int64_t)(offset + per * k++));
            }
        } else if (u->state == U_SPAWN || u->state == U_THINK) {
            pb_timers_del(&t->timers, i);
            close_conn(t, u);
            u->state = U_OFF;
            atomic_fetch_sub_explicit(&t->active, 1, memory_order_relaxed);
        } else if (u->state != U_OFF) {
            u->stopping = 1;
        }
    }
}

/* Open loop: send queued arrivals on idle connections; drop stale ones. */
static void dispatch(thread *t, int64_t now)
{
    const pb_loop_config *c = &t->loop->cfg;
    while (t->qlen) {
        int64_t intended = t->q[t->qhead];
        if (now - intended > c->max_wait_ns) {
            t->qhead = (t->qhead + 1) % QCAP;
            t->qlen--;
            record(t, now, PB_ERR_DROPPED, 0, NULL);
            continue;
        }
        if (!t->nidle) break;
        t->qhead = (t->qhead + 1) % QCAP;
        t->qlen--;
        int id = t->idle[--t->nidle];
        if (now - intended > c->late_ns) record_late(t, now);
        start_request(t, id, intended);
    }
}

static void arrivals(thread *t, int64_t now)
{
    while (t->next_arrival <= now) {
        int64_t at = t->next_arrival;
        double r = rate_at(t, at);
        if (r <= 0) {
            /* nothing to send at this rate: look again a little later */
            t->next_arrival = t->rate_to > 0 || now < t->ramp_start + t->ramp_ns ? now + 1000000
                                                                                : INT64_MAX;
            return;
        }
        if (t->qlen == QCAP) {
            record(t, now, PB_ERR_DROPPED, 0, NULL);
        } else {
            t->q[(t->qhead + t->qlen) % QCAP] = at;
            t->qlen++;
        }
        t->next_arrival = at + next_gap(t, r);
        dispatch(t, now);
    }
}

static void scan_timeouts(thread *t, int64_t now)
{
    const pb_loop_config *c = &t->loop->cfg;
    for (int i = 0; i < t->nu; i++) {
        user *u = &t->u[i];
        if ((u->state == U_CONNECTING || u->state == U_SENDING || u->state == U_RECEIVING) &&
            now - u->t_sent > c->timeout_ns) {
            /* a connect that never completes is a connect error */
            fail(t, i, u->state == U_CONNECTING ? PB_ERR_CONNECT : PB_ERR_TIMEOUT, now);
        }
    }
    if (c->open_loop) dispatch(t, now); /* also drops arrivals past max_wait */
}

static void *thread_main(void *arg)
{
    thread *t = arg;
    const pb_loop_config *c = &t->loop->cfg;
    struct epoll_event evs[512];
    for (;;) {
        int64_t now = px_now_ns();
        int64_t next = t->next_scan;
        int first = pb_timers_first(&t->timers);
        if (first >= 0 && t->timers.wake[first] < next) next = t->timers.wake[first];
        if (c->open_loop && t->next_arrival < next) next = t->next_arrival;
        int64_t d = next - now;
        if (d < 0) d = 0;
        struct timespec ts = {.tv_sec = d / 1000000000, .tv_nsec = d % 1000000000};
        int n = epoll_pwait2(t->ep, evs, 512, &ts, NULL);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == CTL_TAG) {
                uint64_t v;
                if (read(t->efd, &v, sizeof v) < 0) { /* spurious: the eventfd is non-blocking */
                }
                pthread_mutex_lock(&t->mu);
                int stop = t->c_stop;
                pthread_mutex_unlock(&t->mu);
                if (stop) return NULL;
                apply_control(t, px_now_ns());
                continue;
            }
            int id = (int)(uint32_t)tag;
            user *u = &t->u[id];
            if ((uint32_t)(tag >> 32) != u->gen || u->fd < 0) continue; /* stale */
            uint32_t e = evs[i].events;
            if (u->state == U_CONNECTING) {
                if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(t, id);
                continue;
            }
            if ((e & EPOLLOUT) && u->state == U_SENDING) on_writable(t, id);
            if ((uint32_t)(tag >> 32) != u->gen || u->fd < 0) continue;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
                if (u->state == U_SENDING || u->state == U_RECEIVING) {
                    on_readable(t, id);
                } else {
                    /* idle keep-alive connection closed (or talked) by the
                     * server: drop it; the next request reconnects */
                    close_conn(t, u);
                }
            }
        }
        now = px_now_ns();
        int id;
        while ((id = pb_timers_first(&t->timers)) >= 0 && t->timers.wake[id] <= now) {
            pb_timers_del(&t->timers, id);
            if (t->u[id].state == U_SPAWN || t->u[id].state == U_THINK) start_request(t, id, now);
        }
        if (c->open_loop) {
            dispatch(t, now);
            arrivals(t, now);
        }
        if (now >= t->next_scan) {
            scan_timeouts(t, now);
            t->next_scan = now + t->scan_every;
        }
        if (c->open_loop)
            atomic_store_explicit(&t->active, t->inflight + t->qlen, memory_order_relaxed);
    }
    return NULL;
}

/* --- control API ---------------------------------------------------------- */

static void wake(thread *t)
{
    uint64_t one = 1;
    if (write(t->efd, &one, sizeof one) < 0) { /* a full eventfd still wakes the loop */
    }
}

int pb_loop_start(const pb_loop_config *cfg, pb_loop **out, char *err, size_t errlen)
{
    if (cfg->nreqs < 1 || cfg->threads < 1)
        return px_errf(err, errlen, PX_EINVAL, "loop: no requests or no threads");
    pb_loop *e = px_xcalloc(1, sizeof *e);
    e->cfg = *cfg;
    if (e->cfg.timeout_ns <= 0) e->cfg.timeout_ns = 30000000000LL;
    if (e->cfg.max_wait_ns <= 0) e->cfg.max_wait_ns = e->cfg.timeout_ns;
    if (e->cfg.late_ns <= 0) e->cfg.late_ns = 1000000;
    int total = cfg->open_loop ? cfg->connections : cfg->max_users;
    if (total < 1) total = 1;
    e->nthreads = cfg->threads < total ? cfg->threads : total;
    e->t = px_xcalloc((size_t)e->nthreads, sizeof *e->t);
    for (int k = 0; k < e->nthreads; k++) {
        thread *t = &e->t[k];
        t->loop = e;
        t->id = k;
        t->nu = total / e->nthreads + (k < total % e->nthreads);
        t->u = px_xcalloc((size_t)t->nu, sizeof *t->u);
        pb_timers_init(&t->timers, t->nu);
        t->rbuf = px_xmalloc(RBUF);
        px_rng_seed(&t->rng, cfg->seed, 1000003u * (uint64_t)k + 17);
        for (int i = 0; i < t->nu; i++) {
            user *u = &t->u[i];
            u->fd = -1;
            u->state = cfg->open_loop ? U_IDLE : U_OFF;
            px_rng_seed(&u->rng, cfg->seed, ((uint64_t)k << 32) | (uint64_t)i);
            if (cfg->body_max) px_buf_init(&u->body, cfg->body_max);
        }
        if (cfg->open_loop) {
            t->idle = px_xcalloc((size_t)t->nu, sizeof *t->idle);
            for (int i = 0; i < t->nu; i++) t->idle[t->nidle++] = t->nu - 1 - i;
            t->q = px_xcalloc(QCAP, sizeof *t->q);
        }
        t->next_arrival = INT64_MAX;
        int64_t se = e->cfg.timeout_ns / 8;
        t->scan_every = se < 1000000 ? 1000000 : se > 100000000 ? 100000000 : se;
        t->next_scan = px_now_ns() + t->scan_every;
        pthread_mutex_init(&t->mu, NULL);
        t->reqs = t->c_reqs = cfg->reqs;
        t->nreqs = t->c_nreqs = cfg->nreqs;
        t->win_start = t->win_end = INT64_MAX;
        pb_acc_init(&t->win);
        pb_acc_init(&t->ivl);
        t->ep = epoll_create1(EPOLL_CLOEXEC);
        t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = CTL_TAG};
        if (t->ep < 0 || t->efd < 0 || epoll_ctl(t->ep, EPOLL_CTL_ADD, t->efd, &ev) != 0) {
            e->nthreads = k + 1;
            pb_loop_stop(e);
            return px_errf(err, errlen, PX_EIO, "loop: epoll: %s", strerror(errno));
        }
    }
    for (int k = 0; k < e->nthreads; k++)
        if (pthread_create(&e->t[k].tid, NULL, thread_main, &e->t[k]) != 0) abort();
    *out = e;
    return 0;
}

void pb_loop_set_load(pb_loop *e, double target, int64_t ramp_ns)
{
    int T = e->nthreads;
    for (int k = 0; k < T; k++) {
        thread *t = &e->t[k];
        double share;
        if (e->cfg.open_loop) {
            share = target / T;
        } else {
            int n = (int)target;
            if (n > e->cfg.max_users) n = e->cfg.max_users;
            share = n / T + (k < n % T);
        }
        pthread_mutex_lock(&t->mu);
        t->c_target = share;
        t->c_ramp_ns = ramp_ns;
        t->ctl_gen++;
        pthread_mutex_unlock(&t->mu);
        wake(t);
    }
}

void pb_loop_set_requests(pb_loop *e, const pb_request *reqs, int nreqs)
{
    if (!reqs || nreqs < 1) return;
    for (int k = 0; k < e->nthreads; k++) {
        thread *t = &e->t[k];
        pthread_mutex_lock(&t->mu);
        t->c_reqs = reqs;
        t->c_nreqs = nreqs;
        pthread_mutex_unlock(&t->mu);
    }
}

void pb_loop_open_window(pb_loop *e, int64_t start_ns)
{
    for (int k = 0; k < e->nthreads; k++) {
        thread *t = &e->t[k];
        pthread_mutex_lock(&t->mu);
        pb_acc_reset(&t->win);
        t->win_start = start_ns;
        t->win_end = INT64_MAX;
        pthread_mutex_unlock(&t->mu);
    }
}

void pb_loop_close_window(pb_loop *e, pb_acc *out)
{
    int64_t now = px_now_ns();
    for (int k = 0; k < e->nthreads; k++) {
        thread *t = &e->t[k];
        pthread_mutex_lock(&t->mu);
        t->win_end = now;
        pb_acc_merge(out, &t->win);
        pb_acc_reset(&t->win);
        t->win_start = t->win_end = INT64_MAX;
        pthread_mutex_unlock(&t->mu);
    }
}

uint64_t pb_loop_window_requests(pb_loop *e)
{
    uint64_t n = 0;
    for (int k = 0; k < e->nthreads; k++) {
        thread *t = &e->t[k];
        pthread_mutex_lock(&t->mu);
        n += pb_acc_requests(&t->win);
        pthread_mutex_unlock(&t->mu);
    }
    return n;
}

void pb_loop_take_interval(pb_loop *e, pb_acc *out)
{
    for (int k = 0; k < e->nthreads; k++) {
        thread *t = &e->t[k];
        pthread_mutex_lock(&t->mu);
        pb_acc_merge(out, &t->ivl);
        pb_acc_reset(&t->ivl);
        pthread_mutex_unlock(&t->mu);
    }
}

int pb_loop_active(pb_loop *e)
{
    int n = 0;
    for (int k = 0; k < e->nthreads; k++)
        n += atomic_load_explicit(&e->t[k].active, memory_order_relaxed);
    return n;
}

void pb_loop_stop(pb_loop *e)
{
    if (!e) return;
    for (int k = 0; k < e->nthreads; k++) {
        thread *t = &e->t[k];
        if (!t->tid) continue;
        pthread_mutex_lock(&t->mu);
        t->c_stop = 1;
        pthread_mutex_unlock(&t->mu);
        wake(t);
        pthread_join(t->tid, NULL);
    }
    for (int k = 0; k < e->nthreads; k++) {
        thread *t = &e->t[k];
        for (int i = 0; i < t->nu; i++) {
            if (t->u[i].fd >= 0) close(t->u[i].fd);
            px_buf_free(&t->u[i].body);
        }
        if (t->ep >= 0) close(t->ep);
        if (t->efd >= 0) close(t->efd);
        pb_acc_free(&t->win);
        pb_acc_free(&t->ivl);
        pthread_mutex_destroy(&t->mu);
        free(t->u);
        pb_timers_free(&t->timers);
        free(t->rbuf);
        free(t->idle);
        free(t->q);
    }
    free(e->t);
    free(e);
}
