/*
 * watch.h — notices clients that hang up while their request waits.
 *
 * libmicrohttpd does not watch suspended connections, so a client that
 * closes its socket while its job is queued or running would otherwise keep
 * that work going (the seed reports' "GPU stuck after a page refresh"). This
 * module watches the sockets of suspended connections with epoll for the
 * peer's FIN (EPOLLRDHUP) and calls back, so the job can be cancelled.
 *
 * A half-closed socket (a client that shut down only its sending side and
 * still reads) looks the same as a closed one; HTTP/1.1 clients do not do
 * that, and such a request is answered as cancelled.
 */
#ifndef PX_SERVE_WATCH_H
#define PX_SERVE_WATCH_H

#include <stdint.h>

typedef struct px_watch px_watch;
typedef void (*px_watch_fn)(void *arg);

/* Starts the watcher thread; NULL on failure. */
px_watch *px_watch_create(void);
void px_watch_destroy(px_watch *w);

/* Watches fd; fn(arg) runs once, on the watcher thread, if the peer hangs
 * up. Returns an id > 0, or 0 if the fd cannot be watched (then nothing is
 * called). */
uint64_t px_watch_add(px_watch *w, int fd, px_watch_fn fn, void *arg);

/* Stops watching. After it returns fn will not run (if it is running on
 * another thread, this waits for it; from inside fn itself it returns at
 * once). Unknown ids are ignored. */
void px_watch_remove(px_watch *w, uint64_t id);

#endif
