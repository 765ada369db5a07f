/*
 * faults_wire.c — the fault suite's side of the conversation (see
 * faults_wire.h). Every exchange is a plain blocking-style conversation on
 * one non-blocking socket with a deadline, so a case that would hang the
 * service shows up as a timeout here instead of hanging pixbench. The
 * replies go through the load engine's HTTP parser (http.c).
 */
#include "bench/faults_wire.h"

#include "bench/http.h"
#include "bench/procfs.h"
#include "core/base64.h"
#include "core/clock.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define BODY_MAX ((size_t)64 << 20) /* replies kept (an image reply of the largest size fits) */

void pb_fw_nap(int64_t ns)
{
    if (ns <= 0) return;
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    nanosleep(&ts, NULL);
}

int pb_fw_wait(int fd, short ev, int64_t deadline)
{
    int64_t left = deadline - px_now_ns();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = ev};
    int ms = (int)(left / 1000000) + 1;
    int n = poll(&p, 1, ms);
    return n > 0 ? p.revents : n;
}

/* A connected non-blocking socket, or -1 (errno: ECONNREFUSED when nothing
 * listens: the service is down). */
int pb_fw_dial(const pb_faults_config *c, int64_t deadline)
{
    int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&c->addr, c->addrlen) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!(pb_fw_wait(fd, POLLOUT, deadline) & POLLOUT)) {
        close(fd);
        errno = ETIMEDOUT;
        return -1;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr) {
        close(fd);
        errno = soerr;
        return -1;
    }
    return fd;
}

/* 0 sent, -1 the peer closed or reset, -2 out of time. */
int pb_fw_send(int fd, const void *p, size_t n, int64_t deadline)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k > 0) {
            b += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno != EAGAIN && errno != EINTR) return -1;
        if (!(pb_fw_wait(fd, POLLOUT, deadline) & (POLLOUT | POLLERR | POLLHUP))) return -2;
    }
    return 0;
}

void pb_fw_reply_init(pb_freply *r)
{
    memset(r, 0, sizeof *r);
    px_buf_init(&r->body, BODY_MAX);
}

/* Reads one reply (or the close). Returns 1 when a reply is complete. */
int pb_fw_read_reply(int fd, int64_t deadline, pb_freply *r)
{
    pb_http_parser *p = malloc(sizeof *p);
    if (!p) return 0;
    pb_http_init(p, 0, &r->body);
    uint8_t buf[65536];
    char err[160];
    int done = 0;
    for (;;) {
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k > 0) {
            size_t used;
            int rc = pb_http_feed(p, buf, (size_t)k, &used, err, sizeof err);
            if (rc == PB_HTTP_DONE) {
                done = 1;
                break;
            }
            if (rc < 0) break;
            continue;
        }
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
            r->closed = 1;
            if (k == 0 && pb_http_eof(p, err, sizeof err) == PB_HTTP_DONE) done = 1;
            break;
        }
        int ev = pb_fw_wait(fd, POLLIN, deadline);
        if (ev <= 0) {
            r->timed_out = 1;
            break;
        }
    }
    /* a status line is an answer even if the body after it was cut */
    r->status = p->status > 0 ? p->status : 0;
    snprintf(r->ctype, sizeof r->ctype, "%s", p->content_type);
    free(p);
    return done;
}

void pb_fw_head(px_buf *b, const pb_faults_config *c, const char *method, const char *path, const char *ctype,
                long long clen, int chunked)
{
    px_buf_printf(b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: pixbench-faults\r\n", method,
                  path, c->host_header);
    if (ctype) px_buf_printf(b, "Content-Type: %s\r\n", ctype);
    if (chunked) px_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    else if (clen >= 0) px_buf_printf(b, "Content-Length: %lld\r\n", clen);
    px_buf_puts(b, "\r\n");
}

static void printable(char *dst, size_t cap, const char *src)
{
    size_t k = 0;
    for (; src && *src && k + 1 < cap; src++) {
        unsigned char ch = (unsigned char)*src;
        dst[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    dst[k] = 0;
}

/* The JSON error of a reply, if it has one. */
void pb_fw_error_of(const pb_freply *rp, pb_fault_result *r)
{
    r->code[0] = r->message[0] = 0;
    if (!rp->body.len || !strstr(rp->ctype, "json")) return;
    cJSON *j = cJSON_ParseWithLength((const char *)rp->body.data, rp->body.len);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code"),
                *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(code)) printable(r->code, sizeof r->code, code->valuestring);
    if (cJSON_IsString(msg)) printable(r->message, sizeof r->message, msg->valuestring);
    cJSON_Delete(j);
}

void pb_fw_exchange(const pb_faults_config *c, const char *ctype, const void *body, size_t n, pb_fault_result *r,
                    pb_freply *rp)
{
    pb_fw_reply_init(rp);
    int64_t t0 = px_now_ns(), deadline = t0 + c->timeout_ns;
    int fd = pb_fw_dial(c, deadline);
    if (fd < 0) {
        rp->closed = 1;
        snprintf(r->detail, sizeof r->detail, "connect: %s", strerror(errno));
        return;
    }
    px_buf h;
    px_buf_init(&h, 4096);
    pb_fw_head(&h, c, "POST", c->path, ctype, (long long)n, 0);
    int s = pb_fw_send(fd, h.data, h.len, deadline);
    if (s == 0 && n) s = pb_fw_send(fd, body, n, deadline);
    px_buf_free(&h);
    pb_fw_read_reply(fd, deadline, rp); /* also after a failed send: a refusal may be waiting */
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    r->status = rp->status;
    pb_fw_error_of(rp, r);
    close(fd);
}

/* The JSON body {"image": b64, "mask": b64 (, extra)} */
void pb_fw_json_body(px_buf *b, const uint8_t *img, size_t in, const uint8_t *mask, size_t mn, const char *extra)
{
    px_buf_puts(b, "{\"image\":\"");
    px_buf_reserve(b, px_b64_encoded_len(in) + px_b64_encoded_len(mn) + 64);
    b->len += px_b64_encode(img, in, (char *)b->data + b->len);
    px_buf_puts(b, "\",\"mask\":\"");
    b->len += px_b64_encode(mask, mn, (char *)b->data + b->len);
    b->data[b->len] = 0;
    px_buf_puts(b, "\"");
    if (extra) px_buf_puts(b, extra);
    px_buf_puts(b, "}");
}

/* A PNG whose header declares w x h (correct CRCs) over a few bytes of
 * data: what a decompression bomb looks like to a server that trusts it. */
void pb_fw_png_header_only(px_buf *b, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    px_buf_append(b, sig, 8);
    uint8_t ihdr[17] = {'I', 'H', 'D', 'R', (uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h, 8, 2, 0, 0, 0};
    uint8_t zeros[64] = {0}, z[128];
    uLongf zl = sizeof z;
    compress(z, &zl, zeros, sizeof zeros);
    const struct {
        const uint8_t *d;
        size_t n;
        const char *tag;
    } ch[3] = {{ihdr + 4, 13, "IHDR"}, {z, zl, "IDAT"}, {NULL, 0, "IEND"}};
    for (int i = 0; i < 3; i++) {
        uint8_t len[4] = {(uint8_t)(ch[i].n >> 24), (uint8_t)(ch[i].n >> 16), (uint8_t)(ch[i].n >> 8), (uint8_t)ch[i].n};
        px_buf_append(b, len, 4);
        px_buf_append(b, ch[i].tag, 4);
        if (ch[i].n) px_buf_append(b, ch[i].d, ch[i].n);
        uLong crc = crc32(0, (const Bytef *)ch[i].tag, 4);
        if (ch[i].n) crc = crc32(crc, ch[i].d, (uInt)ch[i].n);
        uint8_t cb[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
        px_buf_append(b, cb, 4);
    }
}

/* --- health and memory ------------------------------------------------------------ */

int pb_fw_health(const pb_faults_config *c, double *ms, double *rss_mb)
{
    int64_t t0 = px_now_ns(), deadline = t0 + 5000000000LL;
    if (rss_mb) *rss_mb = -1;
    int fd = pb_fw_dial(c, deadline);
    if (fd < 0) return -1;
    px_buf h;
    px_buf_init(&h, 4096);
    pb_fw_head(&h, c, "GET", c->health_path, NULL, -1, 0);
    pb_freply rp;
    pb_fw_reply_init(&rp);
    int got = pb_fw_send(fd, h.data, h.len, deadline) == 0 && pb_fw_read_reply(fd, deadline, &rp);
    close(fd);
    px_buf_free(&h);
    if (ms) *ms = (double)(px_now_ns() - t0) / 1e6;
    int rc = !got ? -1 : rp.status == 200;
    if (got && rss_mb && rp.body.len) {
        cJSON *j = cJSON_ParseWithLength((const char *)rp.body.data, rp.body.len);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "rss_bytes");
        if (cJSON_IsNumber(v) && v->valuedouble > 0) *rss_mb = v->valuedouble / 1048576.0;
        cJSON_Delete(j);
    }
    px_buf_free(&rp.body);
    return rc;
}

int pb_fw_alive(const pb_faults_config *c)
{
    if (c->pid <= 0) return 1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", c->pid);
    const pb_os *os = pb_os_real();
    long n = os->read_file(os->ctx, path, buf, sizeof buf);
    pb_pstat s;
    return n > 0 && pb_procfs_stat(buf, (size_t)n, &s) == 0 && s.state != 'Z' && s.state != 'X';
}

double pb_fw_rss_now(const pb_faults_config *c)
{
    if (c->pid > 0) {
        int64_t cpu;
        uint64_t rss;
        return pb_procfs_usage(NULL, c->pid, &cpu, &rss) == 0 ? (double)rss / 1048576.0 : -1;
    }
    double v = -1;
    pb_fw_health(c, NULL, &v);
    return v;
}
