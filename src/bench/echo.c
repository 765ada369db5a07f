/*
 * echo.c — the delay-injecting keep-alive test server (see echo.h).
 */
#include "bench/echo.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_MAX (1 << 20) /* one request's headers must fit */

typedef struct conn {
    struct conn *prev, *next; /* the worker's list of open connections */
    int fd;
    int dead;      /* closed by the peer while a reply was pending */
    int delayed;   /* in the timer heap */
    int close_after;
    uint8_t *rbuf;
    size_t rlen, rcap;
    size_t body_left; /* request body bytes still to discard */
    const char *out;  /* reply being written */
    size_t out_len, out_off;
    int64_t wait_ns;  /* injected delay of the pending reply */
} conn;

typedef struct timer {
    int64_t due;
    conn *c;
} timer;

typedef struct worker {
    struct pb_echo *srv;
    pthread_t tid;
    int ep, efd;
    px_rng rng;
    timer *heap;
    size_t nheap, capheap;
    conn *conns; /* open connections, so stop can free them */
    _Atomic uint64_t requests;
} worker;

struct pb_echo {
    pb_echo_config cfg;
    int lfd, port;
    int64_t t0;
    int nworkers;
    worker *w;
    char *reply;       /* fixed reply without Server-Timing */
    size_t reply_len;
};

static void heap_push(worker *w, int64_t due, conn *c)
{
    if (w->nheap == w->capheap) {
        w->capheap = w->capheap ? w->capheap * 2 : 64;
        timer *h = realloc(w->heap, w->capheap * sizeof *h);
        if (!h) abort();
        w->heap = h;
    }
    size_t i = w->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (w->heap[p].due <= due) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = (timer){due, c};
}

static timer heap_pop(worker *w)
{
    timer top = w->heap[0], last = w->heap[--w->nheap];
    size_t i = 0, n = w->nheap;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l >= n) break;
        m = (l + 1 < n && w->heap[l + 1].due < w->heap[l].due) ? l + 1 : l;
        if (last.due <= w->heap[m].due) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n) w->heap[i] = last;
    return top;
}

static void conn_free(conn *c)
{
    if (c->out && c->wait_ns) free((void *)c->out);
    free(c->rbuf);
    free(c);
}

static void conn_close(worker *w, conn *c)
{
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev) c->prev->next = c->next;
    else w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (c->delayed) { /* the heap still points at it: free when it fires */
        c->dead = 1;
        c->fd = -1;
        return;
    }
    conn_free(c);
}

/* Finds a complete request head in c->rbuf; returns its length or 0. */
static size_t request_head(conn *c, size_t *body, int *close_after)
{
    uint8_t *end = NULL;
    for (size_t i = 3; i < c->rlen; i++)
        if (c->rbuf[i] == '\n' && c->rbuf[i - 1] == '\r' && c->rbuf[i - 2] == '\n' &&
            c->rbuf[i - 3] == '\r') {
            end = c->rbuf + i + 1;
            break;
        }
    if (!end) return 0;
    size_t n = (size_t)(end - c->rbuf);
    *body = 0;
    *close_after = 0;
    /* HTTP/1.0 closes unless it asks for keep-alive */
    const char *p = (const char *)c->rbuf;
    const char *eol = memchr(p, '\n', n);
    int http10 = eol && eol - p >= 9 && !memcmp(eol - 9, "HTTP/1.0", 8);
    *close_after = http10;
    while ((p = memchr(p, '\n', n - (size_t)(p - (const char *)c->rbuf))) && p + 1 < (const char *)end) {
        p++;
        if (!strncasecmp(p, "content-length:", 15)) *body = strtoull(p + 15, NULL, 10);
        else if (!strncasecmp(p, "connection:", 11)) {
            const char *v = p + 11;
            while (*v == ' ') v++;
            if (!strncasecmp(v, "close", 5)) *close_after = 1;
            else if (!strncasecmp(v, "keep-alive", 10)) *close_after = 0;
        }
    }
    return n;
}

static int write_out(worker *w, conn *c);

/* Parses and answers what is buffered; returns -1 if c was closed. */
static int serve_buffered(worker *w, conn *c)
{
    pb_echo *s = w->srv;
    while (!c->out && !c->delayed) {
        if (c->body_left) {
            size_t k = c->rlen < c->body_left ? c->rlen : c->body_left;
            memmove(c->rbuf, c->rbuf + k, c->rlen - k);
            c->rlen -= k;
            c->body_left -= k;
            if (c->body_left) return 0;
        }
        size_t body = 0;
        int close_after = 0;
        size_t hl = request_head(c, &body, &close_after);
        if (!hl) return 0;
        memmove(c->rbuf, c->rbuf + hl, c->rlen - hl);
        c->rlen -= hl;
        c->body_left = body;
        c->close_after = close_after;
        atomic_fetch_add_explicit(&w->requests, 1, memory_order_relaxed);
        int64_t now = px_now_ns();
        int64_t d = pb_delay_draw(&s->cfg.delay, &w->rng);
        int64_t due = now + d;
        if (s->cfg.stall_ns > 0) {
            int64_t a = s->t0 + s->cfg.stall_at_ns, b = a + s->cfg.stall_ns;
            if (due >= a && due < b) due = b;
        }
        c->wait_ns = due - now;
        if (c->wait_ns > 0 || s->cfg.delay.a > 0) {
            if (c->wait_ns <= 0) c->wait_ns = 1;
            c->delayed = 1;
            heap_push(w, due, c);
            return 0;
        }
        c->wait_ns = 0;
        c->out = s->reply;
        c->out_len = s->reply_len;
        c->out_off = 0;
        if (write_out(w, c) < 0) return -1;
    }
    return 0;
}

static int write_out(worker *w, conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t k = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EAGAIN) return 0; /* EPOLLOUT resumes */
            if (errno == EINTR) continue;
            conn_close(w, c);
            return -1;
        }
        c->out_off += (size_t)k;
    }
    if (c->wait_ns) free((void *)c->out);
    c->out = NULL;
    c->wait_ns = 0;
    if (c->close_after) {
        conn_close(w, c);
        return -1;
    }
    return serve_buffered(w, c);
}

static void on_readable(worker *w, conn *c)
{
    for (;;) {
        if (c->rlen == c->rcap) {
            if (c->rcap >= RBUF_MAX) { /* a request head that large is an attack */
                conn_close(w, c);
                return;
            }
            c->rcap = c->rcap ? c->rcap * 2 : 4096;
            c->rbuf = realloc(c->rbuf, c->rcap);
            if (!c->rbuf) abort();
        }
        ssize_t k = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(w, c);
            return;
        }
        if (k < 0) {
            if (errno == EINTR) continue;
            break;
        }
        c->rlen += (size_t)k;
        /* Discard body bytes as they come so big uploads do not accumulate. */
        if (!c->out && !c->delayed && serve_buffered(w, c) < 0) return;
    }
}

static void accept_all(worker *w)
{
    for (;;) {
        int fd = accept4(w->srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = px_xcalloc(1, sizeof *c);
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->next = w->conns;
        if (w->conns) w->conns->prev = c;
        w->conns = c;
    }
}

static void fire_timers(worker *w)
{
    int64_t now = px_now_ns();
    while (w->nheap && w->heap[0].due <= now) {
        conn *c = heap_pop(w).c;
        c->delayed = 0;
        if (c->dead) {
            conn_free(c);
            continue;
        }
        pb_echo *s = w->srv;
        char *r = px_xmalloc(s->reply_len + 64);
        /* Same reply with the injected wait as a Server-Timing entry. */
        const char *split = strstr(s->reply, "\r\n\r\n");
        size_t head = (size_t)(split - s->reply);
        int k = snprintf(r, 64 + head, "%.*s\r\nServer-Timing: wait;dur=%.3f", (int)head, s->reply,
                         (double)c->wait_ns / 1e6);
        memcpy(r + k, split, s->reply_len - head);
        c->out = r;
        c->out_len = (size_t)k + s->reply_len - head;
        c->out_off = 0;
        if (write_out(w, c) == 0 && !c->out && !c->delayed) on_readable(w, c);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    struct epoll_event evs[256];
    for (;;) {
        struct timespec ts, *tsp = NULL;
        if (w->nheap) {
            int64_t d = w->heap[0].due - px_now_ns();
            if (d < 0) d = 0;
            ts.tv_sec = d / 1000000000;
            ts.tv_nsec = d % 1000000000;
            tsp = &ts;
        }
        int n = epoll_pwait2(w->ep, evs, 256, tsp, NULL);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &w->srv->lfd) {
                accept_all(w);
            } else if (p == &w->efd) {
                goto out;
            } else {
                conn *c = p;
                if (c->delayed) {
                    /* no reading while a reply is pending; notice a hang-up */
                    if (evs[i].events & (EPOLLERR | EPOLLHUP)) conn_close(w, c);
                    continue;
                }
                if (evs[i].events & EPOLLOUT && c->out) {
                    if (write_out(w, c) < 0) continue;
                }
                if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) on_readable(w, c);
            }
        }
        fire_timers(w);
    }
out:
    return NULL;
}

int pb_echo_start(const pb_echo_config *cfg, pb_echo **out, char *err, size_t errlen)
{
    pb_echo *s = px_xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    if (s->cfg.threads <= 0) s->cfg.threads = 1;
    if (!s->cfg.host) s->cfg.host = "127.0.0.1";
    size_t bl = cfg->body_len ? cfg->body_len : 13;
    s->reply = px_xmalloc(bl + 128);
    int k = snprintf(s->reply, 128, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n", bl);
    for (size_t i = 0; i < bl; i++) s->reply[k + (int)i] = "hello, world\n"[i % 13];
    s->reply_len = (size_t)k + bl;
    s->reply[s->reply_len] = 0;

    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, s->cfg.host, &a.sin_addr) != 1) {
        int rc = px_errf(err, errlen, PX_EINVAL, "echo: host '%s' is not an IPv4 address",
                         s->cfg.host);
        free(s->reply);
        free(s);
        return rc;
    }
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 4096) != 0) {
        int e = errno;
        if (s->lfd >= 0) close(s->lfd);
        free(s->reply);
        free(s);
        return px_errf(err, errlen, PX_EIO, "echo: cannot listen on %s:%d: %s", cfg->host ? cfg->host : "127.0.0.1",
                       cfg->port, strerror(e));
    }
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    s->t0 = px_now_ns();
    s->nworkers = s->cfg.threads;
    s->w = px_xcalloc((size_t)s->nworkers, sizeof *s->w);
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = &s->w[i];
        w->srv = s;
        px_rng_seed(&w->rng, cfg->seed, (uint64_t)i + 1);
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &s->lfd};
        epoll_ctl(w->ep, EPOLL_CTL_ADD, s->lfd, &ev);
        struct epoll_event ev2 = {.events = EPOLLIN, .data.ptr = &w->efd};
        epoll_ctl(w->ep, EPOLL_CTL_ADD, w->efd, &ev2);
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) abort();
    }
    *out = s;
    return 0;
}

int pb_echo_port(const pb_echo *e)
{
    return e->port;
}

uint64_t pb_echo_requests(const pb_echo *e)
{
    uint64_t n = 0;
    for (int i = 0; i < e->nworkers; i++)
        n += atomic_load_explicit(&e->w[i].requests, memory_order_relaxed);
    return n;
}

void pb_echo_stop(pb_echo *s)
{
    if (!s) return;
    for (int i = 0; i < s->nworkers; i++) {
        uint64_t one = 1;
        if (write(s->w[i].efd, &one, sizeof one) < 0) { /* cannot happen with an eventfd */
        }
    }
    for (int i = 0; i < s->nworkers; i++) pthread_join(s->w[i].tid, NULL);
    /* Open connections are on each worker's list; closed ones still in a
     * timer heap are only there. */
    for (int i = 0; i < s->nworkers; i++) {
        worker *w = &s->w[i];
        for (size_t j = 0; j < w->nheap; j++)
            if (w->heap[j].c->dead) conn_free(w->heap[j].c);
        while (w->conns) {
            conn *c = w->conns;
            w->conns = c->next;
            close(c->fd);
            conn_free(c);
        }
        free(w->heap);
        close(w->ep);
        close(w->efd);
    }
    close(s->lfd);
    free(s->w);
    free(s->reply);
    free(s);
}
