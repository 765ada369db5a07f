/*
 * linger.h — lingering close. When pixserve answers a request before
 * reading its body (413 for a Content-Length above --max-body, 404, 405,
 * a body cut off at the cap), closing the socket with unread bytes in it
 * makes the kernel send a reset, and clients still writing the body (Python's
 * urllib, Node's fetch) see a broken pipe instead of the answer. So the
 * answer waits while the rest of the body is read and dropped, within
 * bounds like nginx's lingering_time: --linger-bytes and --linger-time
 * (an idle client is cut by --idle-timeout as always). Past a bound the
 * answer goes out at once and the connection closes.
 */
#ifndef PX_SERVE_LINGER_H
#define PX_SERVE_LINGER_H

#include "serve/config.h"

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

typedef struct px_linger {
    int64_t until_ns; /* give up at this time */
    uint64_t left;    /* bytes still allowed */
} px_linger;

/* Whether an early answer to this request should wait for its body: it
 * has one (Content-Length above 0, or chunked) and the client
 * did not send "Expect: 100-continue" (it sends nothing until told, so the
 * answer can go at once), and lingering is on (--linger-time above 0). */
int px_linger_wanted(const px_serve_config *cfg, struct MHD_Connection *c);

/* Starts lingering now (now_ns: px_now_ns()). */
void px_linger_start(px_linger *l, const px_serve_config *cfg, int64_t now_ns);

/* Counts n dropped bytes: 1 while lingering may go on, 0 once a bound is
 * passed (then answer and close). */
int px_linger_drop(px_linger *l, size_t n, int64_t now_ns);

#endif
