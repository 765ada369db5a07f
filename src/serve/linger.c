/*
 * linger.c — the lingering thread (see linger.h): an epoll set of answered
 * sockets, each with a deadline and a byte budget; an eventfd wakes the
 * thread for a new socket or to stop.
 */
#include "serve/linger.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_LINGER 256

typedef struct slot {
    int fd; /* -1 = free */
    int64_t until_ns;
    uint64_t left;
} slot;

struct px_linger {
    int64_t ms;
    uint64_t bytes;
    int ep, wake;
    pthread_t thread;
    pthread_mutex_t mu;
    int stop;
    slot s[MAX_LINGER];
};

static void drop(px_linger *l, int i)
{
    epoll_ctl(l->ep, EPOLL_CTL_DEL, l->s[i].fd, NULL);
    close(l->s[i].fd);
    l->s[i].fd = -1;
}

/* Reads what slot i has; closes it at EOF, an error or past its budget. */
static void drain(px_linger *l, int i)
{
    static __thread char scratch[65536];
    for (;;) {
        ssize_t n = read(l->s[i].fd, scratch, sizeof scratch);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0 || (uint64_t)n > l->s[i].left) {
            drop(l, i);
            return;
        }
        l->s[i].left -= (uint64_t)n;
    }
}

static void *linger_main(void *arg)
{
    px_linger *l = arg;
    struct epoll_event ev[32];
    for (;;) {
        int64_t now = px_now_ns(), next = now + 1000000000;
        pthread_mutex_lock(&l->mu);
        int stop = l->stop;
        for (int i = 0; i < MAX_LINGER; i++) {
            if (l->s[i].fd < 0) continue;
            if (l->s[i].until_ns <= now)
                drop(l, i); /* lingering_time passed */
            else if (l->s[i].until_ns < next)
                next = l->s[i].until_ns;
        }
        pthread_mutex_unlock(&l->mu);
        if (stop) return NULL;
        int n = epoll_wait(l->ep, ev, 32, (int)((next - now) / 1000000) + 1);
        pthread_mutex_lock(&l->mu);
        for (int k = 0; k < n; k++) {
            if (ev[k].data.u32 == MAX_LINGER) { /* woken: new socket or stop */
                uint64_t v;
                if (read(l->wake, &v, sizeof v) < 0) v = 0;
                continue;
            }
            int i = (int)ev[k].data.u32;
            if (l->s[i].fd >= 0) drain(l, i);
        }
        pthread_mutex_unlock(&l->mu);
    }
}

px_linger *px_linger_create(const px_serve_config *cfg)
{
    if (cfg->linger_ms <= 0 || cfg->linger_bytes == 0) return NULL;
    px_linger *l = px_xcalloc(1, sizeof *l);
    l->ms = cfg->linger_ms;
    l->bytes = cfg->linger_bytes;
    for (int i = 0; i < MAX_LINGER; i++) l->s[i].fd = -1;
    pthread_mutex_init(&l->mu, NULL);
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = MAX_LINGER};
    if (l->ep < 0 || l->wake < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->wake, &e) ||
        pthread_create(&l->thread, NULL, linger_main, l)) {
        PX_WARN("lingering close is off: cannot start its thread");
        if (l->ep >= 0) close(l->ep);
        if (l->wake >= 0) close(l->wake);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    return l;
}

static void wake(px_linger *l)
{
    uint64_t one = 1;
    if (write(l->wake, &one, sizeof one) < 0) { /* already pending: the thread wakes */
    }
}

void px_linger_destroy(px_linger *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_mutex_unlock(&l->mu);
    wake(l);
    pthread_join(l->thread, NULL);
    for (int i = 0; i < MAX_LINGER; i++)
        if (l->s[i].fd >= 0) drop(l, i);
    close(l->ep);
    close(l->wake);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

void px_linger_add(px_linger *l, int fd)
{
    if (fd < 0) return;
    int i = -1;
    if (l) {
        pthread_mutex_lock(&l->mu);
        for (int k = 0; k < MAX_LINGER && i < 0; k++)
            if (l->s[k].fd < 0) i = k;
        struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)i};
        if (i >= 0 && !l->stop) {
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            shutdown(fd, SHUT_WR); /* the answer is out: say so */
            l->s[i] = (slot){fd, px_now_ns() + l->ms * 1000000, l->bytes};
            if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e)) l->s[i].fd = -1, i = -1;
        } else {
            i = -1;
        }
        pthread_mutex_unlock(&l->mu);
        if (i >= 0) wake(l); /* its deadline may be the nearest */
    }
    if (i < 0) close(fd);
}

int px_linger_wanted(struct MHD_Connection *c)
{
    const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    if (expect && !strcasecmp(expect, "100-continue")) return 0;
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) return strtoull(cl, NULL, 10) > 0;
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return te && strcasestr(te, "chunked") != NULL;
}
