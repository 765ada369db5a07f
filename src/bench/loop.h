/*
 * loop.h — pixbench's load loop (pb_loop): one epoll event loop per thread driving
 * keep-alive HTTP/1.1 connections, in one of two load models.
 *
 * Closed loop: each thread runs its share of N users; a user sends, waits
 * for the reply, thinks for a uniform random time in [think_lo, think_hi]
 * (Locust's `between(a, b)`), and sends again. Users are spawned at
 * spawn_rate per second (0: all at once) and stopped, after their request
 * in flight, when the target shrinks.
 *
 * Open loop: requests arrive at rate R per second (constant spacing or
 * Poisson), optionally ramped. Latency runs from the *intended* send time,
 * so a server stall shows up in every request that should have been sent
 * during it (coordinated omission corrected, as in wrk2). Each thread has a
 * pool of connections; when all are busy an arrival waits in a FIFO (its
 * latency includes the wait) and is dropped, counted as `dropped`, if it
 * waited longer than max_wait. A send more than late_ns after its intended
 * time counts as `late`.
 *
 * Requests are prepared once (pb_request) and shared read-only: bodies are
 * sent straight from the shared buffer with writev, never copied. Results go
 * into per-thread accumulators behind one uncontended mutex each: a
 * per-second interval (time series, live progress) and a measured window
 * (the stage). Every failure is classed (stats.h), the connection is closed
 * and the next request reconnects; a request whose reused keep-alive
 * connection turns out closed before any reply byte is retried once on a
 * fresh connection (the usual idle-close race).
 */
#ifndef PB_LOOP_H
#define PB_LOOP_H

#include "bench/http.h"
#include "bench/stats.h"
#include "core/buf.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct pb_request {
    const uint8_t *head; /* request line + headers + empty line (shared) */
    size_t head_len;
    const uint8_t *body; /* shared body, may be NULL */
    size_t body_len;
    int is_head;         /* HEAD: the reply has no body */
    int expect_w, expect_h; /* image size a check expects (0: any) */
} pb_request;

/* Checks a reply whose status was in the expected range. Returns 0 when it
 * is right, else non-zero with a reason in err (counted as `check`). body
 * holds the decoded body when the loop keeps bodies (else NULL). */
typedef int (*pb_check_fn)(void *ctx, const pb_request *req, const pb_http_parser *resp,
                           const px_buf *body, char *err, size_t errlen);

/* Sees a reply whose status was outside the expected range (counted as
 * `status` whatever it returns), e.g. to read its error object. */
typedef void (*pb_bad_status_fn)(void *ctx, const pb_request *req, const pb_http_parser *resp,
                                 const px_buf *body);

typedef struct pb_loop_config {
    struct sockaddr_storage addr; /* the target */
    socklen_t addrlen;
    int threads;
    int open_loop;
    /* closed loop */
    int max_users;             /* most users any stage will ask for */
    int64_t think_lo, think_hi;
    double spawn_rate;         /* users per second, 0: at once */
    /* open loop */
    int connections;           /* pool size over all threads */
    int poisson;
    int64_t max_wait_ns;       /* queued longer than this: dropped */
    int64_t late_ns;           /* sent later than intended + this: late */
    /* both */
    int64_t timeout_ns;        /* per request, from the first byte sent */
    const pb_request *reqs;    /* chosen at random per request; not owned */
    int nreqs;
    int status_lo, status_hi;  /* expected status range */
    pb_check_fn check;         /* may be NULL */
    pb_bad_status_fn on_bad_status; /* may be NULL; called with check_ctx */
    void *check_ctx;
    size_t body_max;           /* > 0: keep reply bodies up to this for check */
    uint64_t seed;
} pb_loop_config;

typedef struct pb_loop pb_loop;

/* Starts the threads with no load. Returns 0 and *out, or PX_ENOMEM/PX_EIO
 * with a message. Stop with pb_loop_stop (which frees it). */
int pb_loop_start(const pb_loop_config *cfg, pb_loop **out, char *err, size_t errlen);

/* New target: users (closed loop; capped at max_users) or requests per second
 * (open loop; ramped linearly from the current rate over ramp_ns). */
void pb_loop_set_load(pb_loop *e, double target, int64_t ramp_ns);

/* New requests to choose from (not owned; they must outlive the loop):
 * each thread takes them up with the next pb_loop_set_load. */
void pb_loop_set_requests(pb_loop *e, const pb_request *reqs, int nreqs);

/* Begins a measured window: completions at or after start_ns count (earlier
 * ones are warm-up). The window's accumulator is emptied. */
void pb_loop_open_window(pb_loop *e, int64_t start_ns);

/* Ends the window now and adds every thread's window into out. */
void pb_loop_close_window(pb_loop *e, pb_acc *out);

/* Requests finished inside the open window so far (all threads). */
uint64_t pb_loop_window_requests(pb_loop *e);

/* Adds every thread's interval accumulator into out and empties them. */
void pb_loop_take_interval(pb_loop *e, pb_acc *out);

/* Users alive (closed) or requests in flight plus queued (open). */
int pb_loop_active(pb_loop *e);

/* Stops the threads, closes every connection, frees e. */
void pb_loop_stop(pb_loop *e);

#endif
