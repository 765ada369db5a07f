/*
 * child.h — the embedded target: a pixserve child on an ephemeral loopback
 * port (bench talks to serve only over HTTP; it spawns the binary). Its
 * resources are sampled by the monitor (monitor.h).
 */
#ifndef PB_CHILD_H
#define PB_CHILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pb_child {
    pid_t pid;
    int port;
    char banner[256]; /* pixserve's first stdout line */
} pb_child;

/* Runs `bin serve --port 0 --host 127.0.0.1 [args...]` with stderr to
 * log_path (NULL: /dev/null), waits up to timeout_ms for the "listening on"
 * line and parses the port. Returns 0, or PX_EIO/PX_ETIMEDOUT with a message
 * (the child is killed then). */
int pb_child_start(const char *bin, const char *const *args, int nargs, const char *log_path,
                   int timeout_ms, pb_child *out, char *err, size_t errlen);

/* Polls GET path (e.g. "/readyz") on 127.0.0.1:port until it answers 200:
 * pixserve listens before its engines are loaded and warmed, and answers
 * 503 until then. Returns 0, or PX_ETIMEDOUT with a message. */
int pb_child_wait_ready(int port, const char *path, int timeout_ms, char *err, size_t errlen);

/* SIGTERM, wait up to timeout_ms, then SIGKILL. Returns the exit status
 * (0 for a clean stop) or -1 if it had to be killed. */
int pb_child_stop(pb_child *c, int timeout_ms);

/* The pixserve next to this executable ("<dir of /proc/self/exe>/pixserve")
 * into out; 0 if it exists and is executable, else PX_ENOTFOUND. */
int pb_child_find_pixserve(char *out, size_t cap);

#endif
