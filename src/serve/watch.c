/*
 * watch.c — epoll watcher for hung-up clients (see watch.h).
 */
#include "serve/watch.h"

#include "core/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct watched {
    uint64_t id;
    int fd;
    px_watch_fn fn;
    void *arg;
};

struct px_watch {
    int ep;
    int wake[2]; /* self-pipe to stop the thread */
    pthread_mutex_t mu;
    pthread_cond_t done;
    struct watched *w;
    int n, cap;
    uint64_t next_id, firing;
    pthread_t firing_thread;
    pthread_t thread;
};

static int find(px_watch *w, uint64_t id)
{
    for (int i = 0; i < w->n; i++)
        if (w->w[i].id == id) return i;
    return -1;
}

static void drop(px_watch *w, int i)
{
    epoll_ctl(w->ep, EPOLL_CTL_DEL, w->w[i].fd, NULL);
    w->w[i] = w->w[--w->n];
}

static void *watch_main(void *arg)
{
    px_watch *w = arg;
    struct epoll_event ev[32];
    for (;;) {
        int n = epoll_wait(w->ep, ev, 32, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        for (int k = 0; k < n; k++) {
            uint64_t id = ev[k].data.u64;
            if (id == 0) return NULL; /* the stop pipe */
            pthread_mutex_lock(&w->mu);
            int i = find(w, id);
            if (i < 0) {
                pthread_mutex_unlock(&w->mu);
                continue;
            }
            struct watched it = w->w[i];
            drop(w, i);
            w->firing = id;
            w->firing_thread = pthread_self();
            pthread_mutex_unlock(&w->mu);
            it.fn(it.arg);
            pthread_mutex_lock(&w->mu);
            w->firing = 0;
            pthread_cond_broadcast(&w->done);
            pthread_mutex_unlock(&w->mu);
        }
    }
    return NULL;
}

px_watch *px_watch_create(void)
{
    px_watch *w = px_xcalloc(1, sizeof *w);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0 || pipe2(w->wake, O_CLOEXEC) != 0) goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake[0], &ev) != 0) goto fail;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->done, NULL);
    w->next_id = 1;
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->done);
        goto fail;
    }
    return w;
fail:
    if (w->ep >= 0) close(w->ep);
    if (w->wake[0] > 0) close(w->wake[0]), close(w->wake[1]);
    free(w);
    return NULL;
}

void px_watch_destroy(px_watch *w)
{
    if (!w) return;
    ssize_t r = write(w->wake[1], "x", 1);
    (void)r;
    pthread_join(w->thread, NULL);
    close(w->ep);
    close(w->wake[0]);
    close(w->wake[1]);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->done);
    free(w->w);
    free(w);
}

uint64_t px_watch_add(px_watch *w, int fd, px_watch_fn fn, void *arg)
{
    pthread_mutex_lock(&w->mu);
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 64;
        struct watched *nw = realloc(w->w, (size_t)cap * sizeof *nw);
        if (!nw) {
            pthread_mutex_unlock(&w->mu);
            return 0;
        }
        w->w = nw;
        w->cap = cap;
    }
    uint64_t id = w->next_id++;
    /* Only the peer's FIN (and errors, always reported): readable data, such
     * as a pipelined next request, is not a hang-up. One-shot: it fires once. */
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.u64 = id};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        pthread_mutex_unlock(&w->mu);
        return 0;
    }
    w->w[w->n++] = (struct watched){id, fd, fn, arg};
    pthread_mutex_unlock(&w->mu);
    return id;
}

void px_watch_remove(px_watch *w, uint64_t id)
{
    if (!id) return;
    pthread_mutex_lock(&w->mu);
    int i = find(w, id);
    if (i >= 0) {
        drop(w, i);
    } else if (!pthread_equal(w->firing_thread, pthread_self())) {
        while (w->firing == id) pthread_cond_wait(&w->done, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
}
