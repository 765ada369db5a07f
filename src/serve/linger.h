/*
 * linger.h — lingering close, as nginx does it. When pixserve answers a
 * request before reading its body (413 for a Content-Length above
 * --max-body, 404, 405, a body cut off at the cap), libmicrohttpd sends the
 * answer and closes the socket with the unread body still arriving; the
 * kernel then resets the connection, and clients that write the whole body
 * before reading (Python's urllib, Node's fetch) see a broken pipe instead
 * of the answer.
 *
 * So the answer goes out at once (a client waiting for it before sending
 * gets it), and when the request completes the HTTP layer hands a dup() of
 * its socket here: the socket stays open after libmicrohttpd closes its
 * descriptor, and one thread reads and drops what the client still sends
 * until it closes, --linger-bytes have come, or --linger-time has passed
 * (nginx's lingering_time), then closes it. Sockets beyond the table's
 * size are closed at once.
 */
#ifndef PX_SERVE_LINGER_H
#define PX_SERVE_LINGER_H

#include "serve/config.h"

#include <microhttpd.h>
#include <stdint.h>

typedef struct px_linger px_linger;

/* Starts the lingering thread with the bounds of cfg (--linger-time,
 * --linger-bytes). NULL when lingering is off (a bound of 0) or the thread
 * cannot start (then sockets close at once, as before). */
px_linger *px_linger_create(const px_serve_config *cfg);

/* Stops the thread and closes every socket still lingering. NULL is fine. */
void px_linger_destroy(px_linger *l);

/* Takes over fd, the duplicate of an answered connection's socket, and
 * closes it within the bounds. With l NULL it closes fd. */
void px_linger_add(px_linger *l, int fd);

/* Whether a request answered before its body was read may still be sending
 * one: it announced one (Content-Length above 0, or chunked) and did not
 * ask "Expect: 100-continue" (such a client sends nothing once answered). */
int px_linger_wanted(struct MHD_Connection *c);

#endif
