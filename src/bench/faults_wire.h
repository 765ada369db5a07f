/*
 * faults_wire.h — how the fault suite talks to its target: one blocking-
 * style exchange at a time on a non-blocking socket with a deadline (a
 * hanging service shows up as a timeout, never hangs pixbench), the
 * request heads and bodies the cases build on, and the target's health
 * and memory. Internal to the fault suite (faults.c, faults_cases.c).
 */
#ifndef PB_FAULTS_WIRE_H
#define PB_FAULTS_WIRE_H

#include "bench/faults.h"
#include "core/buf.h"

#include <stddef.h>
#include <stdint.h>

/* A reply as far as it came. */
typedef struct pb_freply {
    int status;      /* 0: no reply */
    int closed;      /* the peer closed (before or instead of replying) */
    int timed_out;   /* nothing complete before the deadline */
    px_buf body;     /* owned: px_buf_free after pb_fw_reply_init */
    char ctype[128];
} pb_freply;

/* Sleeps ns nanoseconds (nothing when ns <= 0). */
void pb_fw_nap(int64_t ns);

/* poll()s fd for ev until deadline (px_now_ns time): the revents, 0 when
 * out of time, negative on a poll error. */
int pb_fw_wait(int fd, short ev, int64_t deadline);

/* A connected non-blocking socket to c's target, or -1 with errno
 * (ECONNREFUSED when nothing listens: the service is down). */
int pb_fw_dial(const pb_faults_config *c, int64_t deadline);

/* 0 sent, -1 the peer closed or reset, -2 out of time. */
int pb_fw_send(int fd, const void *p, size_t n, int64_t deadline);

/* An empty reply whose body buffer is capped (64 MiB). */
void pb_fw_reply_init(pb_freply *r);

/* Reads one reply (or the close) into r. Returns 1 when a reply is complete. */
int pb_fw_read_reply(int fd, int64_t deadline, pb_freply *r);

/* A request head with Connection: close; ctype NULL: none; clen < 0 and
 * not chunked: no Content-Length. */
void pb_fw_head(px_buf *b, const pb_faults_config *c, const char *method, const char *path, const char *ctype,
                long long clen, int chunked);

/* The reply's JSON error code and message into r (empty when it has none). */
void pb_fw_error_of(const pb_freply *rp, pb_fault_result *r);

/* One POST to c->path, whole: head + body, then the reply. Fills status,
 * code, message and latency (or detail when it cannot connect); the
 * reply's body stays in *rp (the caller frees it). */
void pb_fw_exchange(const pb_faults_config *c, const char *ctype, const void *body, size_t n, pb_fault_result *r,
                    pb_freply *rp);

/* Appends the JSON body {"image": b64, "mask": b64 (, extra)}. */
void pb_fw_json_body(px_buf *b, const uint8_t *img, size_t in, const uint8_t *mask, size_t mn, const char *extra);

/* Appends a PNG whose header declares w x h (correct CRCs) over a few
 * bytes of data: what a decompression bomb looks like to a server that
 * trusts it. */
void pb_fw_png_header_only(px_buf *b, uint32_t w, uint32_t h);

/* GET c->health_path: 1 healthy (200), 0 answered otherwise, -1 no answer
 * (down or hung). ms: its latency; rss_mb: the reply's rss_bytes in MB,
 * -1 when it has none (either may be NULL). */
int pb_fw_health(const pb_faults_config *c, double *ms, double *rss_mb);

/* 0 when c->pid is known and is gone or a zombie; else 1. */
int pb_fw_alive(const pb_faults_config *c);

/* The target's RSS in MB: from /proc with a pid, else from the health
 * reply; -1 when neither tells. */
double pb_fw_rss_now(const pb_faults_config *c);

#endif
