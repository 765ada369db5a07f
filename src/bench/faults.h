/*
 * faults.h — pixbench's fault injection: a catalogue of bad and hostile
 * requests sent, one case at a time, to a running image service (the
 * pixserve / IOPaint JSON inpaint API), each judged on
 *
 *   - what came back: status, the JSON error's code and message, latency;
 *   - whether the service stayed healthy: its health route before and
 *     after, the process still alive (when its pid is known);
 *   - whether its memory came back to the baseline within a settle time.
 *
 * The cases: a body above the cap (declared and chunked), declared
 * dimensions far above the pixel cap (a decompression bomb) and just above
 * it, truncated PNG and JPEG, invalid base64, malformed and deeply nested
 * JSON, a mask of the wrong size, an empty mask, an all-hole mask, a wrong
 * content type, slow headers and a slow-loris dribble, a client that hangs
 * up mid-upload and mid-inference, and a burst of concurrent requests of
 * the largest size the service takes (the seed report's concurrent OOM).
 *
 * Verdicts: ok (the documented outcome), warn (a clear but different
 * refusal, memory not back, slow senders kept open), fail (a crash, a
 * hang, the service unhealthy afterwards, a 500, or a refusal accepted).
 */
#ifndef PB_FAULTS_H
#define PB_FAULTS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define PB_FAULTS_MAX 24

typedef struct pb_faults_config {
    struct sockaddr_storage addr; /* the target */
    socklen_t addrlen;
    const char *host_header;      /* "127.0.0.1:7860" */
    const char *path;             /* the inpaint route (default /api/v1/inpaint) */
    const char *health_path;      /* default /healthz */
    int pid;                      /* the target's process (memory, crash detection); 0: none */
    int64_t max_body;             /* the target's body cap in bytes */
    int max_w, max_h;             /* the largest image it takes: the burst's size */
    int64_t idle_timeout_ns;      /* its idle timeout: slow senders should be cut after it */
    int burst;                    /* concurrent largest requests */
    int64_t timeout_ns;           /* a case with no answer by then has hung the service */
    int64_t settle_ns;            /* how long memory may take to come back */
    const char *only;             /* comma-separated case names (NULL: all) */
    uint64_t seed;
    int progress;                 /* a line per case on stderr */
} pb_faults_config;

enum pb_fault_verdict { PB_FAULT_OK, PB_FAULT_WARN, PB_FAULT_FAIL };

typedef struct pb_fault_result {
    const char *name;             /* "decompression-bomb" (static) */
    const char *what;             /* what is sent (static) */
    const char *expect;           /* the documented outcome (static) */
    enum pb_fault_verdict verdict;
    char why[256];                /* why this verdict */
    int status;                   /* HTTP status; 0 none (closed, or no reply expected) */
    char code[32];                /* the JSON error's code ("" when none) */
    char message[200];            /* its message, printable characters only */
    double latency_ms;            /* from the first byte sent to the reply (or the close) */
    int healthy_before, healthy_after;
    double health_ms;             /* the health check after the case */
    double rss_before_mb, rss_peak_mb, rss_after_mb; /* -1 unknown */
    int mem_returned;             /* 1, 0, -1 unknown */
    char detail[256];             /* e.g. the burst's statuses */
} pb_fault_result;

typedef struct pb_faults_run {
    pb_fault_result r[PB_FAULTS_MAX];
    int n;
    int ok, warns, fails;
    double baseline_rss_mb;       /* after the warm-up; -1 unknown */
    double tolerance_mb;          /* memory counts as back within this of the baseline */
    const char *rss_source;       /* "/proc/<pid>", "health route rss_bytes" or "none" */
    double ref_latency_ms;        /* a valid request of the largest size, during the warm-up */
    double duration_s;
    int64_t started_unix_ms;
} pb_faults_run;

/* Runs the catalogue (or config->only). Returns 0 with every verdict in out
 * (failed cases are verdicts, not errors), or PX_EIO with a message when
 * the target is not healthy to begin with or a control request fails. */
int pb_faults_run_all(const pb_faults_config *c, pb_faults_run *out, char *err, size_t errlen);

/* Prints the catalogue: name, what is sent, what is expected. */
void pb_faults_list(FILE *f);

const char *pb_fault_verdict_name(enum pb_fault_verdict v);

#endif
