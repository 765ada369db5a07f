/*
 * echo.h — a small keep-alive HTTP/1.1 server with injected delays, for
 * pixbench's own tests and benchmarks (`pixbench echo`).
 *
 * Each thread runs an epoll loop over a shared listening socket and answers
 * every request (any method and path; bodies are read and discarded) with a
 * fixed small reply after a delay drawn from a known distribution, without
 * blocking: delayed replies wait in a timer heap. An optional stall makes
 * every reply due inside a window wait until the window ends, which is the
 * server hiccup that closed-loop testers hide (coordinated omission). When
 * delays are injected the reply carries `Server-Timing: wait;dur=<ms>`.
 */
#ifndef PB_ECHO_H
#define PB_ECHO_H

#include "bench/spec.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pb_echo_config {
    const char *host; /* default 127.0.0.1 */
    int port;         /* 0: ephemeral */
    int threads;      /* <= 0: 1 */
    pb_delay delay;   /* per request */
    int64_t stall_at_ns, stall_ns; /* window [at, at+len) after start; len 0: none */
    size_t body_len;  /* reply body bytes (default 13: "hello, world\n") */
    uint64_t seed;
} pb_echo_config;

typedef struct pb_echo pb_echo;

/* Binds, listens and starts the threads. Returns 0 and *out (stop it with
 * pb_echo_stop, which frees it), or PX_EIO/PX_ENOMEM/PX_EINVAL with a message. */
int pb_echo_start(const pb_echo_config *cfg, pb_echo **out, char *err, size_t errlen);

/* The bound port. */
int pb_echo_port(const pb_echo *e);

/* Requests answered so far (safe from any thread). */
uint64_t pb_echo_requests(const pb_echo *e);

/* Stops the threads, closes every connection and frees e. */
void pb_echo_stop(pb_echo *e);

#endif
