/*
 * child.c — spawning the embedded pixserve and waiting for it (see child.h).
 */
#include "bench/child.h"

#include "bench/http.h"
#include "core/clock.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int pb_child_find_pixserve(char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return PX_ENOTFOUND;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return PX_ENOTFOUND;
    *slash = 0;
    snprintf(out, cap, "%s/pixserve", self);
    return access(out, X_OK) == 0 ? 0 : PX_ENOTFOUND;
}

int pb_child_start(const char *bin, const char *const *args, int nargs, const char *log_path,
                   int timeout_ms, pb_child *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) return px_errf(err, errlen, PX_EIO, "pipe: %s", strerror(errno));
    const char *argv[64];
    int k = 0;
    argv[k++] = bin;
    argv[k++] = "serve";
    argv[k++] = "--host";
    argv[k++] = "127.0.0.1";
    argv[k++] = "--port";
    argv[k++] = "0";
    for (int i = 0; i < nargs && k < 63; i++) argv[k++] = args[i];
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return px_errf(err, errlen, PX_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        int lfd = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (lfd >= 0) dup2(lfd, 2);
        /* the child must not inherit our blocked signals */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(bin, (char *const *)argv);
        fprintf(stderr, "pixbench: cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    out->pid = pid;
    size_t len = 0;
    int64_t deadline = px_now_ns() + (int64_t)timeout_ms * 1000000;
    int rc = 0;
    for (;;) {
        int64_t left = (deadline - px_now_ns()) / 1000000;
        if (left <= 0) {
            rc = px_errf(err, errlen, PX_ETIMEDOUT, "%s did not print its address within %d ms", bin,
                         timeout_ms);
            break;
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0) continue;
        ssize_t r = read(pfd[0], out->banner + len, sizeof out->banner - 1 - len);
        if (r <= 0) {
            rc = px_errf(err, errlen, PX_EIO, "%s exited before listening%s%s", bin,
                         log_path ? " (see " : "", log_path ? log_path : "");
            if (log_path) strncat(err, ")", errlen - strlen(err) - 1);
            break;
        }
        len += (size_t)r;
        out->banner[len] = 0;
        char *nl = strchr(out->banner, '\n');
        if (nl || len == sizeof out->banner - 1) {
            if (nl) *nl = 0;
            const char *m = strstr(out->banner, "http://127.0.0.1:");
            if (!m || (out->port = atoi(m + 17)) <= 0)
                rc = px_errf(err, errlen, PX_EIO, "unexpected first line from %s: '%s'", bin,
                             out->banner);
            break;
        }
    }
    close(pfd[0]); /* later stdout writes of the child get EPIPE/SIGPIPE: it prints one line */
    if (rc) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        out->pid = 0;
    }
    return rc;
}

/* One blocking GET with a 1 s timeout; the status, or -1. */
static int get_status(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int status = -1;
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
                     path, port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && send(fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
        pb_http_parser p;
        pb_http_init(&p, 0, NULL);
        uint8_t buf[4096];
        char err[128];
        for (;;) {
            ssize_t k = recv(fd, buf, sizeof buf, 0);
            size_t used;
            int rc = k > 0 ? pb_http_feed(&p, buf, (size_t)k, &used, err, sizeof err)
                           : (k == 0 ? pb_http_eof(&p, err, sizeof err) : -1);
            if (rc == PB_HTTP_DONE) status = p.status;
            if (rc != PB_HTTP_MORE || k <= 0) break;
        }
    }
    close(fd);
    return status;
}

int pb_child_wait_ready(int port, const char *path, int timeout_ms, char *err, size_t errlen)
{
    int64_t deadline = px_now_ns() + (int64_t)timeout_ms * 1000000;
    int last = -1;
    while (px_now_ns() < deadline) {
        if ((last = get_status(port, path)) == 200) return 0;
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return px_errf(err, errlen, PX_ETIMEDOUT, "GET %s did not answer 200 within %d ms (last: %d)", path,
                   timeout_ms, last);
}

int pb_child_stop(pb_child *c, int timeout_ms)
{
    if (c->pid <= 0) return 0;
    kill(c->pid, SIGTERM);
    int64_t deadline = px_now_ns() + (int64_t)timeout_ms * 1000000;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid) break;
        if (px_now_ns() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            c->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    c->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
