/*
 * faults.c — the fault catalogue and its judge (see faults.h).
 *
 * Every exchange is a plain blocking-style conversation on one
 * non-blocking socket with a deadline, so a case that would hang the
 * service shows up as a timeout here instead of hanging pixbench. The
 * replies go through the load engine's HTTP parser (http.c).
 *
 * Memory "back to baseline" is judged per case against the RSS just before
 * it, allowing max(16 MB, a quarter of the warm-up baseline), or, when the
 * case's peak was measured (the burst), a quarter of its rise: glibc keeps
 * freed memory in per-thread arenas and returns only the top of each heap
 * and whole mmap'd blocks to the kernel (after a large free it also raises
 * its mmap threshold, so the next large buffer comes from an arena), so RSS
 * after a big or concurrent request can stay above its level before
 * without any leak. A real leak grows with every repetition; the soak test
 * measures that. Judging against the RSS before each case (not the first
 * baseline) keeps one case's retained arenas from failing every later one.
 */
#include "bench/faults.h"

#include "bench/http.h"
#include "bench/payload.h"
#include "bench/procfs.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define BODY_MAX ((size_t)64 << 20) /* replies kept (an image reply of the largest size fits) */

typedef struct fctx {
    const pb_faults_config *c;
    pb_faults_run *run;
    pb_payload small, small_jpeg, big;
    px_buf small_body, big_body;
} fctx;

/* --- talking ------------------------------------------------------------------- */

static void nap(int64_t ns)
{
    if (ns <= 0) return;
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    nanosleep(&ts, NULL);
}

static int wait_fd(int fd, short ev, int64_t deadline)
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
static int dial(const pb_faults_config *c, int64_t deadline)
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
    if (!(wait_fd(fd, POLLOUT, deadline) & POLLOUT)) {
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
static int send_bytes(int fd, const void *p, size_t n, int64_t deadline)
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
        if (!(wait_fd(fd, POLLOUT, deadline) & (POLLOUT | POLLERR | POLLHUP))) return -2;
    }
    return 0;
}

typedef struct reply {
    int status;      /* 0: no reply */
    int closed;      /* the peer closed (before or instead of replying) */
    int timed_out;   /* nothing complete before the deadline */
    px_buf body;
    char ctype[128];
} reply;

static void reply_init(reply *r)
{
    memset(r, 0, sizeof *r);
    px_buf_init(&r->body, BODY_MAX);
}

/* Reads one reply (or the close). Returns 1 when a reply is complete. */
static int read_reply(int fd, int64_t deadline, reply *r)
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
        int ev = wait_fd(fd, POLLIN, deadline);
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

static void head(px_buf *b, const pb_faults_config *c, const char *method, const char *path, const char *ctype,
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
static void error_of(const reply *rp, pb_fault_result *r)
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

/* One request, whole: head + body, then the reply. Fills status, code,
 * message and latency; the reply's body stays in *rp (caller frees). */
static void exchange(fctx *x, const char *ctype, const void *body, size_t n, pb_fault_result *r, reply *rp)
{
    const pb_faults_config *c = x->c;
    reply_init(rp);
    int64_t t0 = px_now_ns(), deadline = t0 + c->timeout_ns;
    int fd = dial(c, deadline);
    if (fd < 0) {
        rp->closed = 1;
        snprintf(r->detail, sizeof r->detail, "connect: %s", strerror(errno));
        return;
    }
    px_buf h;
    px_buf_init(&h, 4096);
    head(&h, c, "POST", c->path, ctype, (long long)n, 0);
    int s = send_bytes(fd, h.data, h.len, deadline);
    if (s == 0 && n) s = send_bytes(fd, body, n, deadline);
    px_buf_free(&h);
    read_reply(fd, deadline, rp); /* also after a failed send: a refusal may be waiting */
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    r->status = rp->status;
    error_of(rp, r);
    close(fd);
}

/* The JSON body {"image": b64, "mask": b64 (, extra)} */
static void json_body(px_buf *b, const uint8_t *img, size_t in, const uint8_t *mask, size_t mn, const char *extra)
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
static void png_header_only(px_buf *b, uint32_t w, uint32_t h)
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

/* --- judging ---------------------------------------------------------------------- */

static void verdict(pb_fault_result *r, enum pb_fault_verdict v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verdict(pb_fault_result *r, enum pb_fault_verdict v, const char *fmt, ...)
{
    /* a later, worse verdict replaces a better one; never the other way */
    if (r->why[0] && v < r->verdict) return;
    r->verdict = v;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

/* A refusal is expected: `status` with one of the codes ("a|b"). */
static void expect_refusal(pb_fault_result *r, const reply *rp, int status, const char *codes)
{
    if (rp->timed_out && !r->status) {
        verdict(r, PB_FAULT_FAIL, "no answer within the timeout (hang)");
        return;
    }
    if (!r->status) {
        verdict(r, PB_FAULT_WARN, "the connection was closed without an answer");
        return;
    }
    char want[64];
    snprintf(want, sizeof want, "|%s|", codes);
    char got[40];
    snprintf(got, sizeof got, "|%s|", r->code);
    if (r->status == status && r->code[0] && strstr(want, got)) {
        verdict(r, PB_FAULT_OK, "%d %s, as documented", r->status, r->code);
    } else if (r->status >= 200 && r->status < 300) {
        verdict(r, PB_FAULT_FAIL, "accepted (%d) what must be refused", r->status);
    } else if (r->status >= 500 && r->status != 503) {
        verdict(r, PB_FAULT_FAIL, "server error %d %s", r->status, r->code);
    } else if (!r->code[0]) {
        verdict(r, PB_FAULT_WARN, "refused (%d) without a JSON error", r->status);
    } else {
        verdict(r, PB_FAULT_WARN, "a clear refusal (%d %s) but not the documented %d %s", r->status, r->code, status,
                codes);
    }
}

/* 200 with an image of the small payload's size. */
static int image_reply_ok(const fctx *x, const reply *rp, pb_fault_result *r, px_image *out)
{
    px_image img = {0};
    char err[160];
    if (!rp->body.len || px_decode(rp->body.data, rp->body.len, NULL, &img, err, sizeof err)) {
        verdict(r, PB_FAULT_FAIL, "200 but the reply is not an image");
        return 0;
    }
    if (img.w != x->small.w || img.h != x->small.h) {
        verdict(r, PB_FAULT_FAIL, "200 with a %dx%d image for a %dx%d one", img.w, img.h, x->small.w, x->small.h);
        px_image_free(&img);
        return 0;
    }
    if (out) *out = img;
    else px_image_free(&img);
    return 1;
}

/* --- the cases -------------------------------------------------------------------- */

static void c_body_over_cap(fctx *x, pb_fault_result *r, int chunked)
{
    const pb_faults_config *c = x->c;
    reply rp;
    reply_init(&rp);
    int64_t t0 = px_now_ns(), deadline = t0 + c->timeout_ns;
    int fd = dial(c, deadline);
    if (fd < 0) {
        verdict(r, PB_FAULT_FAIL, "cannot connect: %s", strerror(errno));
        px_buf_free(&rp.body);
        return;
    }
    px_buf h;
    px_buf_init(&h, 4096);
    long long total = c->max_body + (chunked ? 65536 : 1);
    head(&h, c, "POST", c->path, "application/json", chunked ? -1 : total, chunked);
    int s = send_bytes(fd, h.data, h.len, deadline);
    px_buf_free(&h);
    /* stream the body; stop as soon as the server answers or closes */
    static uint8_t chunk[65536];
    memset(chunk, 'A', sizeof chunk);
    long long sent = 0;
    while (s == 0 && sent < total) {
        int ev = wait_fd(fd, POLLIN | POLLOUT, deadline);
        if (ev <= 0) break;
        if (ev & (POLLIN | POLLHUP | POLLERR)) break;
        size_t n = total - sent < (long long)sizeof chunk ? (size_t)(total - sent) : sizeof chunk;
        if (chunked) {
            char line[32];
            int ln = snprintf(line, sizeof line, "%zx\r\n", n);
            s = send_bytes(fd, line, (size_t)ln, deadline);
            if (!s) s = send_bytes(fd, chunk, n, deadline);
            if (!s) s = send_bytes(fd, "\r\n", 2, deadline);
            /* pace it, so the server's answer at the cap is read before
             * more bytes pile up behind it (a close with unread data
             * resets the connection and can take the answer with it) */
            if (!s && (wait_fd(fd, POLLIN, px_now_ns() + 2000000) & (POLLIN | POLLHUP | POLLERR))) {
                sent += (long long)n;
                break;
            }
        } else {
            s = send_bytes(fd, chunk, n, deadline);
        }
        sent += (long long)n;
    }
    if (chunked && s == 0 && sent >= total) s = send_bytes(fd, "0\r\n\r\n", 5, deadline);
    read_reply(fd, deadline, &rp);
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    r->status = rp.status;
    error_of(&rp, r);
    close(fd);
    snprintf(r->detail, sizeof r->detail, "%lld of %lld body bytes sent before the answer", sent, total);
    if (chunked && !r->status && rp.closed && !rp.timed_out) {
        /* closing once the cap is passed stops the upload too, if mutely */
        if (sent >= c->max_body)
            verdict(r, PB_FAULT_OK, "closed the connection past the cap, no 413 seen (%lld bytes sent; an answer "
                                    "written just before a close with unread data can be lost to the reset)",
                    sent);
        else verdict(r, PB_FAULT_WARN, "closed the connection before the cap (%lld of %lld bytes)", sent,
                     (long long)c->max_body);
    } else {
        expect_refusal(r, &rp, 413, "too_large");
    }
    px_buf_free(&rp.body);
}

static void c_body_declared(fctx *x, pb_fault_result *r) { c_body_over_cap(x, r, 0); }
static void c_body_chunked(fctx *x, pb_fault_result *r) { c_body_over_cap(x, r, 1); }

static void send_image_case(fctx *x, pb_fault_result *r, const uint8_t *img, size_t in, int status, const char *codes)
{
    px_buf b;
    px_buf_init(&b, (size_t)1 << 30);
    json_body(&b, img, in, x->small.mask.data, x->small.mask.len, NULL);
    reply rp;
    exchange(x, "application/json", b.data, b.len, r, &rp);
    expect_refusal(r, &rp, status, codes);
    px_buf_free(&rp.body);
    px_buf_free(&b);
}

static void c_bomb(fctx *x, pb_fault_result *r)
{
    px_buf png;
    px_buf_init(&png, 4096);
    png_header_only(&png, 60000, 60000);
    snprintf(r->detail, sizeof r->detail, "a %zu-byte PNG declaring 60000x60000 (3.6 Gpx, 10.8 GB decoded)", png.len);
    send_image_case(x, r, png.data, png.len, 413, "too_large");
    px_buf_free(&png);
}

static void c_pixels_over_cap(fctx *x, pb_fault_result *r)
{
    px_buf png;
    px_buf_init(&png, 4096);
    png_header_only(&png, (uint32_t)x->c->max_w + 1, (uint32_t)x->c->max_h);
    snprintf(r->detail, sizeof r->detail, "a PNG declaring %dx%d, one column over the cap", x->c->max_w + 1,
             x->c->max_h);
    send_image_case(x, r, png.data, png.len, 413, "too_large");
    px_buf_free(&png);
}

static void c_trunc_png(fctx *x, pb_fault_result *r)
{
    send_image_case(x, r, x->small.image.data, x->small.image.len / 2, 400, "truncated_data|corrupt_data");
}

static void c_trunc_jpeg(fctx *x, pb_fault_result *r)
{
    send_image_case(x, r, x->small_jpeg.image.data, x->small_jpeg.image.len / 2, 400, "truncated_data|corrupt_data");
}

static void c_bad_base64(fctx *x, pb_fault_result *r)
{
    px_buf b;
    px_buf_init(&b, (size_t)1 << 30);
    px_buf_puts(&b, "{\"image\":\"not*base64!!\",\"mask\":\"");
    px_buf_reserve(&b, px_b64_encoded_len(x->small.mask.len) + 8);
    b.len += px_b64_encode(x->small.mask.data, x->small.mask.len, (char *)b.data + b.len);
    b.data[b.len] = 0;
    px_buf_puts(&b, "\"}");
    reply rp;
    exchange(x, "application/json", b.data, b.len, r, &rp);
    expect_refusal(r, &rp, 400, "invalid_input");
    px_buf_free(&rp.body);
    px_buf_free(&b);
}

static void send_text_case(fctx *x, pb_fault_result *r, const char *ctype, const void *body, size_t n, int status,
                           const char *codes)
{
    reply rp;
    exchange(x, ctype, body, n, r, &rp);
    expect_refusal(r, &rp, status, codes);
    px_buf_free(&rp.body);
}

static void c_malformed_json(fctx *x, pb_fault_result *r)
{
    send_text_case(x, r, "application/json", "{\"image\": ", 10, 400, "invalid_input");
}

static void c_nested_json(fctx *x, pb_fault_result *r)
{
    size_t n = 100000;
    char *b = malloc(n);
    if (!b) return;
    memset(b, '[', n);
    snprintf(r->detail, sizeof r->detail, "%zu nested arrays", n);
    send_text_case(x, r, "application/json", b, n, 400, "invalid_input");
    free(b);
}

static void c_content_type(fctx *x, pb_fault_result *r)
{
    send_text_case(x, r, "application/x-www-form-urlencoded", "image=1&mask=2", 14, 415, "unsupported");
}

static void mask_case(fctx *x, pb_fault_result *r, int mw, int mh, int value, reply *rp)
{
    px_image m = {mw, mh, 1, malloc((size_t)mw * (size_t)mh)};
    px_buf mp, b;
    px_buf_init(&mp, (size_t)1 << 28);
    px_buf_init(&b, (size_t)1 << 30);
    char err[160];
    if (m.px) memset(m.px, value, (size_t)mw * (size_t)mh);
    px_encode_opts eo = {.fmt = PX_FMT_PNG};
    if (!m.px || px_encode(&m, &eo, &mp, err, sizeof err)) {
        verdict(r, PB_FAULT_FAIL, "pixbench could not encode the mask");
        reply_init(rp);
    } else {
        json_body(&b, x->small.image.data, x->small.image.len, mp.data, mp.len, NULL);
        exchange(x, "application/json", b.data, b.len, r, rp);
    }
    free(m.px);
    px_buf_free(&mp);
    px_buf_free(&b);
}

static void c_mask_size(fctx *x, pb_fault_result *r)
{
    reply rp;
    mask_case(x, r, 10, 10, 255, &rp);
    expect_refusal(r, &rp, 400, "invalid_input");
    px_buf_free(&rp.body);
}

static void c_empty_mask(fctx *x, pb_fault_result *r)
{
    reply rp;
    mask_case(x, r, x->small.w, x->small.h, 0, &rp);
    px_image out, in;
    char err[160];
    if (rp.timed_out && !r->status) verdict(r, PB_FAULT_FAIL, "no answer within the timeout (hang)");
    else if (r->status == 200 && image_reply_ok(x, &rp, r, &out)) {
        /* documented: nothing to fill, the image comes back unchanged */
        if (px_decode(x->small.image.data, x->small.image.len, NULL, &in, err, sizeof err) == 0) {
            int same = in.c == out.c && memcmp(in.px, out.px, (size_t)in.w * (size_t)in.h * (size_t)in.c) == 0;
            if (same) verdict(r, PB_FAULT_OK, "200, the image unchanged, as documented");
            else verdict(r, PB_FAULT_WARN, "200 but the image changed where nothing was masked");
            px_image_free(&in);
        }
        px_image_free(&out);
    } else if (r->status >= 400 && r->status < 500 && r->code[0]) {
        verdict(r, PB_FAULT_WARN, "refused (%d %s); the documented answer is the image unchanged", r->status, r->code);
    } else if (!r->why[0]) {
        verdict(r, r->status >= 500 ? PB_FAULT_FAIL : PB_FAULT_WARN, "answered %d", r->status);
    }
    px_buf_free(&rp.body);
}

static void c_full_mask(fctx *x, pb_fault_result *r)
{
    reply rp;
    mask_case(x, r, x->small.w, x->small.h, 255, &rp);
    if (rp.timed_out && !r->status) verdict(r, PB_FAULT_FAIL, "no answer within the timeout (hang)");
    else if (r->status == 200) {
        if (image_reply_ok(x, &rp, r, NULL))
            verdict(r, PB_FAULT_OK, "200 with an image of the right size (nothing known to fill from)");
    } else if (r->status == 400 && r->code[0]) {
        verdict(r, PB_FAULT_OK, "400 %s: a clear refusal", r->code);
    } else {
        expect_refusal(r, &rp, 400, "invalid_input");
    }
    px_buf_free(&rp.body);
}

/* Connections that send part of a request: `drip` sends one more header
 * byte every idle/2 (slow-loris); else they fall silent. Returns how many
 * were still open at the end; *closed_after the latest close seen. */
static int slow_senders(fctx *x, pb_fault_result *r, int n, int drip, double *closed_after)
{
    const pb_faults_config *c = x->c;
    int fds[16];
    n = n > 16 ? 16 : n;
    int64_t t0 = px_now_ns();
    int64_t limit = t0 + 2 * c->idle_timeout_ns + 1000000000LL;
    char start[512];
    int sl = snprintf(start, sizeof start, "POST %s HTTP/1.1\r\nHost: %s\r\nX-Slow: ", c->path, c->host_header);
    int open_n = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = dial(c, t0 + 5000000000LL);
        if (fds[i] >= 0 && send_bytes(fds[i], start, (size_t)sl, t0 + 5000000000LL) == 0) open_n++;
        else if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    *closed_after = 0;
    int64_t next_drip = t0 + c->idle_timeout_ns / 2, health_at = t0 + c->idle_timeout_ns / 2;
    int health_done = 0;
    while (open_n > 0 && px_now_ns() < limit) {
        struct pollfd p[16];
        for (int i = 0; i < n; i++) p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        poll(p, (nfds_t)n, 50);
        int64_t now = px_now_ns();
        for (int i = 0; i < n; i++) {
            if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char b[512];
            ssize_t k = recv(fds[i], b, sizeof b, 0);
            if (k > 0 && !r->status && k >= 12 && !memcmp(b, "HTTP/1.", 7)) r->status = atoi(b + 9);
            /* a reply (408) or the close: either way the server dealt with it */
            close(fds[i]);
            fds[i] = -1;
            open_n--;
            *closed_after = (double)(now - t0) / 1e9;
        }
        if (drip && now >= next_drip) {
            for (int i = 0; i < n; i++)
                if (fds[i] >= 0 && send(fds[i], "a", 1, MSG_NOSIGNAL) != 1) {
                    close(fds[i]);
                    fds[i] = -1;
                    open_n--;
                    *closed_after = (double)(now - t0) / 1e9;
                }
            next_drip = now + c->idle_timeout_ns / 2;
        }
        if (!health_done && now >= health_at) {
            /* while they hang on, others must still be served */
            health_done = 1;
            int64_t h0 = px_now_ns();
            reply rp;
            reply_init(&rp);
            int fd = dial(c, h0 + 5000000000LL);
            px_buf h;
            px_buf_init(&h, 4096);
            head(&h, c, "GET", c->health_path, NULL, -1, 0);
            int ok = fd >= 0 && send_bytes(fd, h.data, h.len, h0 + 5000000000LL) == 0 &&
                     read_reply(fd, h0 + 5000000000LL, &rp) && rp.status == 200;
            double ms = (double)(px_now_ns() - h0) / 1e6;
            if (fd >= 0) close(fd);
            px_buf_free(&h);
            px_buf_free(&rp.body);
            snprintf(r->detail, sizeof r->detail, "health answered in %.0f ms while %d slow connection%s were open",
                     ms, open_n, open_n == 1 ? "" : "s");
            if (!ok) verdict(r, PB_FAULT_FAIL, "the service stopped answering others while slow senders hung on");
            else if (ms > 2000) verdict(r, PB_FAULT_FAIL, "others waited %.1f s behind slow senders", ms / 1000);
        }
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    return open_n;
}

static void c_slow_headers(fctx *x, pb_fault_result *r)
{
    double after;
    int left = slow_senders(x, r, 1, 0, &after);
    double idle = (double)x->c->idle_timeout_ns / 1e9;
    if (left) verdict(r, PB_FAULT_WARN, "a silent half-sent request was still open after %.1f s (idle timeout %.1f s)",
                      r->latency_ms / 1000, idle);
    else if (after <= idle + 2) verdict(r, PB_FAULT_OK, "closed after %.1f s (idle timeout %.1f s)", after, idle);
    else verdict(r, PB_FAULT_WARN, "closed only after %.1f s (idle timeout %.1f s)", after, idle);
}

static void c_slow_loris(fctx *x, pb_fault_result *r)
{
    double after;
    int n = 8;
    int left = slow_senders(x, r, n, 1, &after);
    double idle = (double)x->c->idle_timeout_ns / 1e9;
    if (left)
        verdict(r, PB_FAULT_WARN,
                "%d of %d connections sending a header byte every %.1f s were still open after %.1f s: an idle "
                "timeout alone does not bound how long a request may take to arrive",
                left, n, idle / 2, r->latency_ms / 1000);
    else verdict(r, PB_FAULT_OK, "all %d slow senders cut off, the last after %.1f s", n, after);
}

static void c_disconnect_upload(fctx *x, pb_fault_result *r)
{
    const pb_faults_config *c = x->c;
    int64_t t0 = px_now_ns(), deadline = t0 + c->timeout_ns;
    int fd = dial(c, deadline);
    if (fd < 0) {
        verdict(r, PB_FAULT_FAIL, "cannot connect: %s", strerror(errno));
        return;
    }
    long long declared = x->big_body.len;
    px_buf h;
    px_buf_init(&h, 4096);
    head(&h, c, "POST", c->path, "application/json", declared, 0);
    size_t part = x->big_body.len / 3;
    int s = send_bytes(fd, h.data, h.len, deadline);
    if (!s) s = send_bytes(fd, x->big_body.data, part, deadline);
    px_buf_free(&h);
    nap(100000000);
    close(fd);
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    snprintf(r->detail, sizeof r->detail, "%zu of %lld declared bytes sent, then the connection closed", part, declared);
    verdict(r, PB_FAULT_OK, "no reply expected; judged on health and memory");
}

static void c_disconnect_infer(fctx *x, pb_fault_result *r)
{
    const pb_faults_config *c = x->c;
    int64_t t0 = px_now_ns(), deadline = t0 + c->timeout_ns;
    int fd = dial(c, deadline);
    if (fd < 0) {
        verdict(r, PB_FAULT_FAIL, "cannot connect: %s", strerror(errno));
        return;
    }
    px_buf h;
    px_buf_init(&h, 4096);
    head(&h, c, "POST", c->path, "application/json", (long long)x->big_body.len, 0);
    int s = send_bytes(fd, h.data, h.len, deadline);
    if (!s) s = send_bytes(fd, x->big_body.data, x->big_body.len, deadline);
    px_buf_free(&h);
    int64_t sent = px_now_ns();
    double ref = x->run->ref_latency_ms;
    int64_t wait = (int64_t)(ref / 2 * 1e6);
    if (wait < 50000000) wait = 50000000;
    nap(wait);
    close(fd);
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    /* was the work dropped? Only tellable when the request takes long
     * enough for its own end not to look like a cancellation */
    if (c->pid > 0 && ref >= 1000) {
        int64_t cpu0, cpu1;
        uint64_t rss;
        nap(200000000);
        int64_t m0 = px_now_ns();
        if (pb_procfs_usage(NULL, c->pid, &cpu0, &rss) == 0) {
            nap((int64_t)(ref / 2 * 1e6) < 1000000000LL ? (int64_t)(ref / 2 * 1e6) : 1000000000LL);
            if (pb_procfs_usage(NULL, c->pid, &cpu1, &rss) == 0) {
                double pct = 100.0 * (double)(cpu1 - cpu0) / (double)(px_now_ns() - m0);
                snprintf(r->detail, sizeof r->detail,
                         "closed %.0f ms after sending (the request takes %.0f ms); the service used %.0f%% CPU "
                         "right after",
                         (double)(px_now_ns() - sent) / 1e6 - 200, ref, pct);
                if (pct > 80) {
                    verdict(r, PB_FAULT_WARN, "still computing (%.0f%% CPU) after the client left", pct);
                    return;
                }
            }
        }
    } else {
        snprintf(r->detail, sizeof r->detail,
                 "closed %.0f ms after sending (the request takes %.0f ms: too short to tell whether the work "
                 "was dropped)",
                 (double)wait / 1e6, ref);
    }
    verdict(r, PB_FAULT_OK, "no reply expected; judged on health and memory");
}

typedef struct burst_arg {
    fctx *x;
    pthread_barrier_t *go;
    atomic_int *finished;     /* counted up by each request's thread when it is done */
    int status;
    int timed_out, closed;
    char code[32];
    double ms;
} burst_arg;

static void *burst_one(void *p)
{
    burst_arg *b = p;
    pb_fault_result r;
    memset(&r, 0, sizeof r);
    reply rp;
    pthread_barrier_wait(b->go);
    exchange(b->x, "application/json", b->x->big_body.data, b->x->big_body.len, &r, &rp);
    b->status = r.status;
    b->timed_out = rp.timed_out;
    b->closed = rp.closed && !r.status;
    snprintf(b->code, sizeof b->code, "%s", r.code);
    b->ms = r.latency_ms;
    if (r.status == 200) {
        px_image img;
        char err[160];
        if (px_decode(rp.body.data, rp.body.len, NULL, &img, err, sizeof err) == 0) {
            if (img.w != b->x->big.w || img.h != b->x->big.h) b->status = -2; /* wrong image */
            px_image_free(&img);
        } else {
            b->status = -2;
        }
    }
    px_buf_free(&rp.body);
    atomic_fetch_add(b->finished, 1);
    return NULL;
}

static double rss_now(fctx *x);

static void c_burst(fctx *x, pb_fault_result *r)
{
    int n = x->c->burst > 0 ? x->c->burst : 1;
    if (n > 64) n = 64;
    burst_arg a[64];
    pthread_t th[64];
    pthread_barrier_t go;
    atomic_int finished = 0;
    pthread_barrier_init(&go, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        a[i] = (burst_arg){.x = x, .go = &go, .finished = &finished};
        pthread_create(&th[i], NULL, burst_one, &a[i]);
    }
    int64_t t0 = px_now_ns();
    pthread_barrier_wait(&go);
    /* watch the memory while they run */
    double peak = -1;
    for (;;) {
        int running = n - atomic_load(&finished);
        double v = rss_now(x);
        if (v > peak) peak = v;
        if (!running || px_now_ns() - t0 > x->c->timeout_ns + 5000000000LL) break;
        nap(50000000);
    }
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    r->rss_peak_mb = peak;
    int c200 = 0, c429 = 0, c503 = 0, c504 = 0, other4 = 0, bad = 0, hung = 0, dropped = 0;
    double slowest = 0;
    for (int i = 0; i < n; i++) {
        if (a[i].ms > slowest) slowest = a[i].ms;
        switch (a[i].status) {
        case 200: c200++; break;
        case 429: c429++; break;
        case 503: c503++; break;
        case 504: c504++; break;
        case 0: a[i].timed_out ? hung++ : dropped++; break;
        default:
            if (a[i].status >= 400 && a[i].status < 500) other4++;
            else bad++;
        }
    }
    snprintf(r->detail, sizeof r->detail,
             "%d x %dx%d at once: %d x 200, %d x 429, %d x 503, %d x 504, %d other 4xx, %d failed, %d no answer; "
             "slowest %.0f ms; peak RSS %.0f MB",
             n, x->big.w, x->big.h, c200, c429, c503, c504, other4, bad, hung + dropped, slowest, peak);
    r->status = c200 ? 200 : c503 ? 503 : c429 ? 429 : c504 ? 504 : 0;
    if (hung) verdict(r, PB_FAULT_FAIL, "%d request%s got no answer within the timeout (hang)", hung, hung > 1 ? "s" : "");
    else if (bad) verdict(r, PB_FAULT_FAIL, "%d request%s failed (500, a reset or a wrong image)", bad, bad > 1 ? "s" : "");
    else if (dropped) verdict(r, PB_FAULT_FAIL, "%d connection%s dropped without an answer", dropped, dropped > 1 ? "s" : "");
    else if (other4) verdict(r, PB_FAULT_WARN, "%d refused with an undocumented 4xx", other4);
    else
        verdict(r, PB_FAULT_OK, "every request answered: done, or refused with a documented 429/503/504");
}

static void c_still_serving(fctx *x, pb_fault_result *r)
{
    reply rp;
    exchange(x, "application/json", x->small_body.data, x->small_body.len, r, &rp);
    if (rp.timed_out && !r->status) verdict(r, PB_FAULT_FAIL, "no answer within the timeout (hang)");
    else if (r->status == 200) {
        if (image_reply_ok(x, &rp, r, NULL)) verdict(r, PB_FAULT_OK, "200 with the inpainted image");
    } else verdict(r, PB_FAULT_FAIL, "a valid request after the faults got %d %s", r->status, r->code);
    px_buf_free(&rp.body);
}

typedef struct fault_case {
    const char *name, *what, *expect;
    void (*run)(fctx *x, pb_fault_result *r);
} fault_case;

static const fault_case k_cases[] = {
    {"body-over-cap", "a body one byte over the cap, announced by Content-Length", "413 too_large before the body is read",
     c_body_declared},
    {"body-over-cap-chunked", "a chunked body that runs past the cap", "413 too_large (or the connection closed at the cap)",
     c_body_chunked},
    {"decompression-bomb", "a tiny PNG whose header declares 60000x60000", "413 too_large from the header, nothing decoded",
     c_bomb},
    {"pixels-over-cap", "a PNG header one column wider than the pixel cap", "413 too_large", c_pixels_over_cap},
    {"truncated-png", "the first half of a valid PNG", "400 truncated_data (or corrupt_data)", c_trunc_png},
    {"truncated-jpeg", "the first half of a valid JPEG", "400 truncated_data (or corrupt_data)", c_trunc_jpeg},
    {"invalid-base64", "an image field that is not base64", "400 invalid_input", c_bad_base64},
    {"malformed-json", "a JSON body cut short", "400 invalid_input", c_malformed_json},
    {"deeply-nested-json", "100000 nested JSON arrays", "400 invalid_input (nesting capped)", c_nested_json},
    {"wrong-mask-size", "a 10x10 mask for a larger image", "400 invalid_input", c_mask_size},
    {"empty-mask", "a mask with no hole", "200, the image unchanged", c_empty_mask},
    {"all-hole-mask", "a mask that is all hole", "200 with an image (nothing known to fill from) or a 400",
     c_full_mask},
    {"wrong-content-type", "a form-encoded body", "415 unsupported", c_content_type},
    {"slow-headers", "half a request line and headers, then silence", "closed after the idle timeout; others served",
     c_slow_headers},
    {"slow-loris", "8 connections sending a header byte every half idle timeout",
     "others served; slow senders cut off", c_slow_loris},
    {"disconnect-mid-upload", "a third of a large body, then the connection closed", "the service healthy, memory back",
     c_disconnect_upload},
    {"disconnect-mid-inference", "a full largest-size request, closed half way through its usual latency",
     "the work dropped, the service healthy, memory back", c_disconnect_infer},
    {"burst-largest", "the largest image the service takes, from many clients at once (the seed's concurrent OOM)",
     "each done, or refused with 429/503 out_of_memory/504; none lost", c_burst},
    {"still-serving", "a valid request after all of the above", "200 with the inpainted image", c_still_serving},
};
#define NCASES ((int)(sizeof k_cases / sizeof k_cases[0]))

void pb_faults_list(FILE *f)
{
    for (int i = 0; i < NCASES; i++) fprintf(f, "%-26s %s\n%-26s expected: %s\n", k_cases[i].name, k_cases[i].what, "",
                                             k_cases[i].expect);
}

const char *pb_fault_verdict_name(enum pb_fault_verdict v)
{
    return v == PB_FAULT_OK ? "ok" : v == PB_FAULT_WARN ? "warn" : "fail";
}

/* --- health and memory -------------------------------------------------------------- */

/* 1 healthy (200), 0 answered otherwise, -1 no answer (down or hung). */
static int health(fctx *x, double *ms, double *rss_mb)
{
    const pb_faults_config *c = x->c;
    int64_t t0 = px_now_ns(), deadline = t0 + 5000000000LL;
    if (rss_mb) *rss_mb = -1;
    int fd = dial(c, deadline);
    if (fd < 0) return -1;
    px_buf h;
    px_buf_init(&h, 4096);
    head(&h, c, "GET", c->health_path, NULL, -1, 0);
    reply rp;
    reply_init(&rp);
    int got = send_bytes(fd, h.data, h.len, deadline) == 0 && read_reply(fd, deadline, &rp);
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

static int alive(const pb_faults_config *c)
{
    if (c->pid <= 0) return 1;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", c->pid);
    const pb_os *os = pb_os_real();
    long n = os->read_file(os->ctx, path, buf, sizeof buf);
    pb_pstat s;
    return n > 0 && pb_procfs_stat(buf, (size_t)n, &s) == 0 && s.state != 'Z' && s.state != 'X';
}

static double rss_now(fctx *x)
{
    if (x->c->pid > 0) {
        int64_t cpu;
        uint64_t rss;
        return pb_procfs_usage(NULL, x->c->pid, &cpu, &rss) == 0 ? (double)rss / 1048576.0 : -1;
    }
    double v = -1;
    health(x, NULL, &v);
    return v;
}

/* --- the run ------------------------------------------------------------------------ */

static int wanted(const char *only, const char *name)
{
    if (!only) return 1;
    size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
    return 0;
}

static void free_ctx(fctx *x)
{
    pb_payload_free(&x->small);
    pb_payload_free(&x->small_jpeg);
    pb_payload_free(&x->big);
    px_buf_free(&x->small_body);
    px_buf_free(&x->big_body);
}

int pb_faults_run_all(const pb_faults_config *c, pb_faults_run *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->started_unix_ms = px_wall_ms();
    int64_t t_start = px_now_ns();
    fctx x = {.c = c, .run = out};
    px_buf_init(&x.small_body, (size_t)1 << 30);
    px_buf_init(&x.big_body, (size_t)1 << 30);
    char e2[256];
    int rc = 0;
    /* the payloads: a small valid pair (PNG and JPEG) and the largest size */
    if (pb_payload_generate(96, 64, 0.15, 0.30, c->seed, 0, PX_FMT_PNG, &x.small, e2, sizeof e2) ||
        pb_payload_generate(96, 64, 0.15, 0.30, c->seed, 1, PX_FMT_JPEG, &x.small_jpeg, e2, sizeof e2) ||
        pb_payload_generate(c->max_w, c->max_h, 0.15, 0.30, c->seed, 2, PX_FMT_PNG, &x.big, e2, sizeof e2)) {
        rc = px_errf(err, errlen, PX_EIO, "payloads: %s", e2);
        goto done;
    }
    json_body(&x.small_body, x.small.image.data, x.small.image.len, x.small.mask.data, x.small.mask.len, NULL);
    json_body(&x.big_body, x.big.image.data, x.big.image.len, x.big.mask.data, x.big.mask.len, NULL);
    /* warm-up: the service works, and the largest request's latency */
    if (health(&x, NULL, NULL) != 1) {
        rc = px_errf(err, errlen, PX_EIO, "the target is not healthy (GET %s) before any fault", c->health_path);
        goto done;
    }
    pb_fault_result w;
    reply rp;
    memset(&w, 0, sizeof w);
    exchange(&x, "application/json", x.small_body.data, x.small_body.len, &w, &rp);
    px_buf_free(&rp.body);
    if (w.status != 200) {
        rc = px_errf(err, errlen, PX_EIO, "a valid %dx%d request got %d %s before any fault", x.small.w, x.small.h,
                     w.status, w.code);
        goto done;
    }
    memset(&w, 0, sizeof w);
    exchange(&x, "application/json", x.big_body.data, x.big_body.len, &w, &rp);
    px_buf_free(&rp.body);
    if (w.status != 200) {
        rc = px_errf(err, errlen, PX_EIO,
                     "a valid request of the largest size (%dx%d) got %d %s: give the target's real limits "
                     "(--max-pixels, --max-body)",
                     c->max_w, c->max_h, w.status, w.code);
        goto done;
    }
    out->ref_latency_ms = w.latency_ms;
    nap(300000000);
    out->baseline_rss_mb = rss_now(&x);
    out->rss_source = c->pid > 0 ? "/proc/<pid>/stat" : out->baseline_rss_mb >= 0 ? "health route rss_bytes" : "none";
    out->tolerance_mb = out->baseline_rss_mb > 64 ? out->baseline_rss_mb / 4 : 16;
    for (int i = 0; i < NCASES && out->n < PB_FAULTS_MAX; i++) {
        if (!wanted(c->only, k_cases[i].name)) continue;
        pb_fault_result *r = &out->r[out->n++];
        memset(r, 0, sizeof *r);
        r->name = k_cases[i].name;
        r->what = k_cases[i].what;
        r->expect = k_cases[i].expect;
        r->rss_before_mb = rss_now(&x);
        r->rss_peak_mb = r->rss_after_mb = -1;
        r->mem_returned = -1;
        r->healthy_before = health(&x, NULL, NULL) == 1;
        k_cases[i].run(&x, r);
        /* the service afterwards: alive, answering, memory back */
        int h = health(&x, &r->health_ms, NULL);
        r->healthy_after = h == 1;
        if (!alive(c)) verdict(r, PB_FAULT_FAIL, "the service process died");
        else if (h < 0) verdict(r, PB_FAULT_FAIL, "the service did not answer %s afterwards", c->health_path);
        else if (!h) verdict(r, PB_FAULT_FAIL, "%s was not healthy afterwards", c->health_path);
        if (out->baseline_rss_mb >= 0 && r->rss_before_mb >= 0 && alive(c)) {
            double rise = r->rss_peak_mb > r->rss_before_mb ? r->rss_peak_mb - r->rss_before_mb : 0;
            double allowed = out->tolerance_mb > rise / 4 ? out->tolerance_mb : rise / 4;
            int64_t until = px_now_ns() + c->settle_ns;
            double v;
            for (;;) {
                v = rss_now(&x);
                if (v < 0 || v <= r->rss_before_mb + allowed || px_now_ns() >= until) break;
                nap(100000000);
            }
            r->rss_after_mb = v;
            r->mem_returned = v < 0 ? -1 : v <= r->rss_before_mb + allowed;
            if (r->mem_returned == 0)
                verdict(r, PB_FAULT_WARN, "memory did not come back: %.1f MB after, %.1f MB before (+%.0f MB allowed)",
                        v, r->rss_before_mb, allowed);
        }
        if (r->verdict == PB_FAULT_OK) out->ok++;
        else if (r->verdict == PB_FAULT_WARN) out->warns++;
        else out->fails++;
        if (c->progress)
            fprintf(stderr, "  %-4s %-26s %3d %-15s %8.1f ms  %s\n", pb_fault_verdict_name(r->verdict), r->name,
                    r->status, r->code[0] ? r->code : "-", r->latency_ms, r->why);
        if (!alive(c) || h < 0) {
            /* nothing after a dead service would mean anything */
            for (int k = i + 1; k < NCASES && out->n < PB_FAULTS_MAX; k++) {
                if (!wanted(c->only, k_cases[k].name)) continue;
                pb_fault_result *s = &out->r[out->n++];
                memset(s, 0, sizeof *s);
                s->name = k_cases[k].name;
                s->what = k_cases[k].what;
                s->expect = k_cases[k].expect;
                s->rss_before_mb = s->rss_peak_mb = s->rss_after_mb = -1;
                s->mem_returned = -1;
                verdict(s, PB_FAULT_FAIL, "not run: the service was down after %s", r->name);
                out->fails++;
            }
            break;
        }
    }
done:
    out->duration_s = (double)(px_now_ns() - t_start) / 1e9;
    free_ctx(&x);
    return rc;
}
