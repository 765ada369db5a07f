/*
 * faults_cases.c — the fault catalogue (see faults_cases.h): each case
 * sends one kind of bad or hostile request and judges the answer against
 * what pixserve documents (docs/api.md's error codes). A case judges only
 * its own exchange; health and memory afterwards are the run's (faults.c).
 */
#include "bench/faults_cases.h"

#include "bench/faults_wire.h"
#include "bench/procfs.h"
#include "core/base64.h"
#include "core/clock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- judging ---------------------------------------------------------------------- */

void pb_fault_verdict(pb_fault_result *r, enum pb_fault_verdict v, const char *fmt, ...)
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
static void expect_refusal(pb_fault_result *r, const pb_freply *rp, int status, const char *codes)
{
    if (rp->timed_out && !r->status) {
        pb_fault_verdict(r, PB_FAULT_FAIL, "no answer within the timeout (hang)");
        return;
    }
    if (!r->status) {
        pb_fault_verdict(r, PB_FAULT_WARN, "the connection was closed without an answer");
        return;
    }
    char want[64];
    snprintf(want, sizeof want, "|%s|", codes);
    char got[40];
    snprintf(got, sizeof got, "|%s|", r->code);
    if (r->status == status && r->code[0] && strstr(want, got)) {
        pb_fault_verdict(r, PB_FAULT_OK, "%d %s, as documented", r->status, r->code);
    } else if (r->status >= 200 && r->status < 300) {
        pb_fault_verdict(r, PB_FAULT_FAIL, "accepted (%d) what must be refused", r->status);
    } else if (r->status >= 500 && r->status != 503) {
        pb_fault_verdict(r, PB_FAULT_FAIL, "server error %d %s", r->status, r->code);
    } else if (!r->code[0]) {
        pb_fault_verdict(r, PB_FAULT_WARN, "refused (%d) without a JSON error", r->status);
    } else {
        pb_fault_verdict(r, PB_FAULT_WARN, "a clear refusal (%d %s) but not the documented %d %s", r->status, r->code, status,
                codes);
    }
}

/* 200 with an image of the small payload's size. */
static int image_reply_ok(const pb_fault_ctx *x, const pb_freply *rp, pb_fault_result *r, px_image *out)
{
    px_image img = {0};
    char err[160];
    if (!rp->body.len || px_decode(rp->body.data, rp->body.len, NULL, &img, err, sizeof err)) {
        pb_fault_verdict(r, PB_FAULT_FAIL, "200 but the reply is not an image");
        return 0;
    }
    if (img.w != x->small.w || img.h != x->small.h) {
        pb_fault_verdict(r, PB_FAULT_FAIL, "200 with a %dx%d image for a %dx%d one", img.w, img.h, x->small.w, x->small.h);
        px_image_free(&img);
        return 0;
    }
    if (out) *out = img;
    else px_image_free(&img);
    return 1;
}

/* A connection for a case's hand-made exchange, its deadline the case
 * timeout from now (*t0); -1, the case failed, when none can be had. */
static int dial_case(const pb_faults_config *c, pb_fault_result *r, int64_t *t0, int64_t *deadline)
{
    *t0 = px_now_ns();
    *deadline = *t0 + c->timeout_ns;
    int fd = pb_fw_dial(c, *deadline);
    if (fd < 0) pb_fault_verdict(r, PB_FAULT_FAIL, "cannot connect: %s", strerror(errno));
    return fd;
}

/* --- the cases -------------------------------------------------------------------- */

static void c_body_over_cap(pb_fault_ctx *x, pb_fault_result *r, int chunked)
{
    const pb_faults_config *c = x->c;
    int64_t t0, deadline;
    int fd = dial_case(c, r, &t0, &deadline);
    if (fd < 0) return;
    pb_freply rp;
    pb_fw_reply_init(&rp);
    px_buf h;
    px_buf_init(&h, 4096);
    long long total = c->max_body + (chunked ? 65536 : 1);
    pb_fw_head(&h, c, "POST", c->path, "application/json", chunked ? -1 : total, chunked);
    int s = pb_fw_send(fd, h.data, h.len, deadline);
    px_buf_free(&h);
    /* stream the body; stop as soon as the server answers or closes */
    static uint8_t chunk[65536];
    memset(chunk, 'A', sizeof chunk);
    long long sent = 0;
    while (s == 0 && sent < total) {
        int ev = pb_fw_wait(fd, POLLIN | POLLOUT, deadline);
        if (ev <= 0) break;
        if (ev & (POLLIN | POLLHUP | POLLERR)) break;
        size_t n = total - sent < (long long)sizeof chunk ? (size_t)(total - sent) : sizeof chunk;
        if (chunked) {
            char line[32];
            int ln = snprintf(line, sizeof line, "%zx\r\n", n);
            s = pb_fw_send(fd, line, (size_t)ln, deadline);
            if (!s) s = pb_fw_send(fd, chunk, n, deadline);
            if (!s) s = pb_fw_send(fd, "\r\n", 2, deadline);
            /* pace it, so the server's answer at the cap is read before
             * more bytes pile up behind it (a close with unread data
             * resets the connection and can take the answer with it) */
            if (!s && (pb_fw_wait(fd, POLLIN, px_now_ns() + 2000000) & (POLLIN | POLLHUP | POLLERR))) {
                sent += (long long)n;
                break;
            }
        } else {
            s = pb_fw_send(fd, chunk, n, deadline);
        }
        sent += (long long)n;
    }
    if (chunked && s == 0 && sent >= total) s = pb_fw_send(fd, "0\r\n\r\n", 5, deadline);
    pb_fw_read_reply(fd, deadline, &rp);
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    r->status = rp.status;
    pb_fw_error_of(&rp, r);
    close(fd);
    snprintf(r->detail, sizeof r->detail, "%lld of %lld body bytes sent before the answer", sent, total);
    if (chunked && !r->status && rp.closed && !rp.timed_out) {
        /* closing once the cap is passed stops the upload too, if mutely */
        if (sent >= c->max_body)
            pb_fault_verdict(r, PB_FAULT_OK, "closed the connection past the cap, no 413 seen (%lld bytes sent; an answer "
                                    "written just before a close with unread data can be lost to the reset)",
                    sent);
        else pb_fault_verdict(r, PB_FAULT_WARN, "closed the connection before the cap (%lld of %lld bytes)", sent,
                     (long long)c->max_body);
    } else {
        expect_refusal(r, &rp, 413, "too_large");
    }
    px_buf_free(&rp.body);
}

static void c_body_declared(pb_fault_ctx *x, pb_fault_result *r) { c_body_over_cap(x, r, 0); }
static void c_body_chunked(pb_fault_ctx *x, pb_fault_result *r) { c_body_over_cap(x, r, 1); }

static void send_image_case(pb_fault_ctx *x, pb_fault_result *r, const uint8_t *img, size_t in, int status, const char *codes)
{
    px_buf b;
    px_buf_init(&b, (size_t)1 << 30);
    pb_fw_json_body(&b, img, in, x->small.mask.data, x->small.mask.len, NULL);
    pb_freply rp;
    pb_fw_exchange(x->c, "application/json", b.data, b.len, r, &rp);
    expect_refusal(r, &rp, status, codes);
    px_buf_free(&rp.body);
    px_buf_free(&b);
}

static void c_bomb(pb_fault_ctx *x, pb_fault_result *r)
{
    px_buf png;
    px_buf_init(&png, 4096);
    pb_fw_png_header_only(&png, 60000, 60000);
    snprintf(r->detail, sizeof r->detail, "a %zu-byte PNG declaring 60000x60000 (3.6 Gpx, 10.8 GB decoded)", png.len);
    send_image_case(x, r, png.data, png.len, 413, "too_large");
    px_buf_free(&png);
}

static void c_pixels_over_cap(pb_fault_ctx *x, pb_fault_result *r)
{
    px_buf png;
    px_buf_init(&png, 4096);
    pb_fw_png_header_only(&png, (uint32_t)x->c->max_w + 1, (uint32_t)x->c->max_h);
    snprintf(r->detail, sizeof r->detail, "a PNG declaring %dx%d, one column over the cap", x->c->max_w + 1,
             x->c->max_h);
    send_image_case(x, r, png.data, png.len, 413, "too_large");
    px_buf_free(&png);
}

static void c_trunc_png(pb_fault_ctx *x, pb_fault_result *r)
{
    send_image_case(x, r, x->small.image.data, x->small.image.len / 2, 400, "truncated_data|corrupt_data");
}

static void c_trunc_jpeg(pb_fault_ctx *x, pb_fault_result *r)
{
    send_image_case(x, r, x->small_jpeg.image.data, x->small_jpeg.image.len / 2, 400, "truncated_data|corrupt_data");
}

static void c_bad_base64(pb_fault_ctx *x, pb_fault_result *r)
{
    px_buf b;
    px_buf_init(&b, (size_t)1 << 30);
    px_buf_puts(&b, "{\"image\":\"not*base64!!\",\"mask\":\"");
    px_buf_reserve(&b, px_b64_encoded_len(x->small.mask.len) + 8);
    b.len += px_b64_encode(x->small.mask.data, x->small.mask.len, (char *)b.data + b.len);
    b.data[b.len] = 0;
    px_buf_puts(&b, "\"}");
    pb_freply rp;
    pb_fw_exchange(x->c, "application/json", b.data, b.len, r, &rp);
    expect_refusal(r, &rp, 400, "invalid_input");
    px_buf_free(&rp.body);
    px_buf_free(&b);
}

static void send_text_case(pb_fault_ctx *x, pb_fault_result *r, const char *ctype, const void *body, size_t n, int status,
                           const char *codes)
{
    pb_freply rp;
    pb_fw_exchange(x->c, ctype, body, n, r, &rp);
    expect_refusal(r, &rp, status, codes);
    px_buf_free(&rp.body);
}

static void c_malformed_json(pb_fault_ctx *x, pb_fault_result *r)
{
    send_text_case(x, r, "application/json", "{\"image\": ", 10, 400, "invalid_input");
}

static void c_nested_json(pb_fault_ctx *x, pb_fault_result *r)
{
    size_t n = 100000;
    char *b = malloc(n);
    if (!b) return;
    memset(b, '[', n);
    snprintf(r->detail, sizeof r->detail, "%zu nested arrays", n);
    send_text_case(x, r, "application/json", b, n, 400, "invalid_input");
    free(b);
}

static void c_content_type(pb_fault_ctx *x, pb_fault_result *r)
{
    send_text_case(x, r, "application/x-www-form-urlencoded", "image=1&mask=2", 14, 415, "unsupported");
}

static void mask_case(pb_fault_ctx *x, pb_fault_result *r, int mw, int mh, int value, pb_freply *rp)
{
    px_image m = {mw, mh, 1, malloc((size_t)mw * (size_t)mh)};
    px_buf mp, b;
    px_buf_init(&mp, (size_t)1 << 28);
    px_buf_init(&b, (size_t)1 << 30);
    char err[160];
    if (m.px) memset(m.px, value, (size_t)mw * (size_t)mh);
    px_encode_opts eo = {.fmt = PX_FMT_PNG};
    if (!m.px || px_encode(&m, &eo, &mp, err, sizeof err)) {
        pb_fault_verdict(r, PB_FAULT_FAIL, "pixbench could not encode the mask");
        pb_fw_reply_init(rp);
    } else {
        pb_fw_json_body(&b, x->small.image.data, x->small.image.len, mp.data, mp.len, NULL);
        pb_fw_exchange(x->c, "application/json", b.data, b.len, r, rp);
    }
    free(m.px);
    px_buf_free(&mp);
    px_buf_free(&b);
}

static void c_mask_size(pb_fault_ctx *x, pb_fault_result *r)
{
    pb_freply rp;
    mask_case(x, r, 10, 10, 255, &rp);
    expect_refusal(r, &rp, 400, "invalid_input");
    px_buf_free(&rp.body);
}

static void c_empty_mask(pb_fault_ctx *x, pb_fault_result *r)
{
    pb_freply rp;
    mask_case(x, r, x->small.w, x->small.h, 0, &rp);
    px_image out, in;
    char err[160];
    if (rp.timed_out && !r->status) pb_fault_verdict(r, PB_FAULT_FAIL, "no answer within the timeout (hang)");
    else if (r->status == 200 && image_reply_ok(x, &rp, r, &out)) {
        /* documented: nothing to fill, the image comes back unchanged */
        if (px_decode(x->small.image.data, x->small.image.len, NULL, &in, err, sizeof err) == 0) {
            int same = in.c == out.c && memcmp(in.px, out.px, (size_t)in.w * (size_t)in.h * (size_t)in.c) == 0;
            if (same) pb_fault_verdict(r, PB_FAULT_OK, "200, the image unchanged, as documented");
            else pb_fault_verdict(r, PB_FAULT_WARN, "200 but the image changed where nothing was masked");
            px_image_free(&in);
        }
        px_image_free(&out);
    } else if (r->status >= 400 && r->status < 500 && r->code[0]) {
        pb_fault_verdict(r, PB_FAULT_WARN, "refused (%d %s); the documented answer is the image unchanged", r->status, r->code);
    } else if (!r->why[0]) {
        pb_fault_verdict(r, r->status >= 500 ? PB_FAULT_FAIL : PB_FAULT_WARN, "answered %d", r->status);
    }
    px_buf_free(&rp.body);
}

static void c_full_mask(pb_fault_ctx *x, pb_fault_result *r)
{
    pb_freply rp;
    mask_case(x, r, x->small.w, x->small.h, 255, &rp);
    if (rp.timed_out && !r->status) pb_fault_verdict(r, PB_FAULT_FAIL, "no answer within the timeout (hang)");
    else if (r->status == 200) {
        if (image_reply_ok(x, &rp, r, NULL))
            pb_fault_verdict(r, PB_FAULT_OK, "200 with an image of the right size (nothing known to fill from)");
    } else if (r->status == 400 && r->code[0]) {
        pb_fault_verdict(r, PB_FAULT_OK, "400 %s: a clear refusal", r->code);
    } else {
        expect_refusal(r, &rp, 400, "invalid_input");
    }
    px_buf_free(&rp.body);
}

/* Connections that send part of a request: `drip` sends one more header
 * byte every idle/2 (slow-loris); else they fall silent. Returns how many
 * were still open at the end; *closed_after the latest close seen. */
static int slow_senders(pb_fault_ctx *x, pb_fault_result *r, int n, int drip, double *closed_after)
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
        fds[i] = pb_fw_dial(c, t0 + 5000000000LL);
        if (fds[i] >= 0 && pb_fw_send(fds[i], start, (size_t)sl, t0 + 5000000000LL) == 0) open_n++;
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
            pb_freply rp;
            pb_fw_reply_init(&rp);
            int fd = pb_fw_dial(c, h0 + 5000000000LL);
            px_buf h;
            px_buf_init(&h, 4096);
            pb_fw_head(&h, c, "GET", c->health_path, NULL, -1, 0);
            int ok = fd >= 0 && pb_fw_send(fd, h.data, h.len, h0 + 5000000000LL) == 0 &&
                     pb_fw_read_reply(fd, h0 + 5000000000LL, &rp) && rp.status == 200;
            double ms = (double)(px_now_ns() - h0) / 1e6;
            if (fd >= 0) close(fd);
            px_buf_free(&h);
            px_buf_free(&rp.body);
            snprintf(r->detail, sizeof r->detail, "health answered in %.0f ms while %d slow connection%s were open",
                     ms, open_n, open_n == 1 ? "" : "s");
            if (!ok) pb_fault_verdict(r, PB_FAULT_FAIL, "the service stopped answering others while slow senders hung on");
            else if (ms > 2000) pb_fault_verdict(r, PB_FAULT_FAIL, "others waited %.1f s behind slow senders", ms / 1000);
        }
    }
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    return open_n;
}

static void c_slow_headers(pb_fault_ctx *x, pb_fault_result *r)
{
    double after;
    int left = slow_senders(x, r, 1, 0, &after);
    double idle = (double)x->c->idle_timeout_ns / 1e9;
    if (left) pb_fault_verdict(r, PB_FAULT_WARN, "a silent half-sent request was still open after %.1f s (idle timeout %.1f s)",
                      r->latency_ms / 1000, idle);
    else if (after <= idle + 2) pb_fault_verdict(r, PB_FAULT_OK, "closed after %.1f s (idle timeout %.1f s)", after, idle);
    else pb_fault_verdict(r, PB_FAULT_WARN, "closed only after %.1f s (idle timeout %.1f s)", after, idle);
}

static void c_slow_loris(pb_fault_ctx *x, pb_fault_result *r)
{
    double after;
    int n = 8;
    int left = slow_senders(x, r, n, 1, &after);
    double idle = (double)x->c->idle_timeout_ns / 1e9;
    if (left)
        pb_fault_verdict(r, PB_FAULT_WARN,
                "%d of %d connections sending a header byte every %.1f s were still open after %.1f s: an idle "
                "timeout alone does not bound how long a request may take to arrive",
                left, n, idle / 2, r->latency_ms / 1000);
    else pb_fault_verdict(r, PB_FAULT_OK, "all %d slow senders cut off, the last after %.1f s", n, after);
}

static void c_disconnect_upload(pb_fault_ctx *x, pb_fault_result *r)
{
    const pb_faults_config *c = x->c;
    int64_t t0, deadline;
    int fd = dial_case(c, r, &t0, &deadline);
    if (fd < 0) return;
    long long declared = x->big_body.len;
    px_buf h;
    px_buf_init(&h, 4096);
    pb_fw_head(&h, c, "POST", c->path, "application/json", declared, 0);
    size_t part = x->big_body.len / 3;
    int s = pb_fw_send(fd, h.data, h.len, deadline);
    if (!s) s = pb_fw_send(fd, x->big_body.data, part, deadline);
    px_buf_free(&h);
    pb_fw_nap(100000000);
    close(fd);
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    snprintf(r->detail, sizeof r->detail, "%zu of %lld declared bytes sent, then the connection closed", part, declared);
    pb_fault_verdict(r, PB_FAULT_OK, "no reply expected; judged on health and memory");
}

static void c_disconnect_infer(pb_fault_ctx *x, pb_fault_result *r)
{
    const pb_faults_config *c = x->c;
    int64_t t0, deadline;
    int fd = dial_case(c, r, &t0, &deadline);
    if (fd < 0) return;
    px_buf h;
    px_buf_init(&h, 4096);
    pb_fw_head(&h, c, "POST", c->path, "application/json", (long long)x->big_body.len, 0);
    int s = pb_fw_send(fd, h.data, h.len, deadline);
    if (!s) s = pb_fw_send(fd, x->big_body.data, x->big_body.len, deadline);
    px_buf_free(&h);
    int64_t sent = px_now_ns();
    double ref = x->run->ref_latency_ms;
    int64_t wait = (int64_t)(ref / 2 * 1e6);
    if (wait < 50000000) wait = 50000000;
    pb_fw_nap(wait);
    close(fd);
    r->latency_ms = (double)(px_now_ns() - t0) / 1e6;
    /* was the work dropped? Only tellable when the request takes long
     * enough for its own end not to look like a cancellation */
    if (c->pid > 0 && ref >= 1000) {
        int64_t cpu0, cpu1;
        uint64_t rss;
        pb_fw_nap(200000000);
        int64_t m0 = px_now_ns();
        if (pb_procfs_usage(NULL, c->pid, &cpu0, &rss) == 0) {
            pb_fw_nap((int64_t)(ref / 2 * 1e6) < 1000000000LL ? (int64_t)(ref / 2 * 1e6) : 1000000000LL);
            if (pb_procfs_usage(NULL, c->pid, &cpu1, &rss) == 0) {
                double pct = 100.0 * (double)(cpu1 - cpu0) / (double)(px_now_ns() - m0);
                snprintf(r->detail, sizeof r->detail,
                         "closed %.0f ms after sending (the request takes %.0f ms); the service used %.0f%% CPU "
                         "right after",
                         (double)(px_now_ns() - sent) / 1e6 - 200, ref, pct);
                if (pct > 80) {
                    pb_fault_verdict(r, PB_FAULT_WARN, "still computing (%.0f%% CPU) after the client left", pct);
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
    pb_fault_verdict(r, PB_FAULT_OK, "no reply expected; judged on health and memory");
}

typedef struct burst_arg {
    pb_fault_ctx *x;
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
    pb_freply rp;
    pthread_barrier_wait(b->go);
    pb_fw_exchange(b->x->c, "application/json", b->x->big_body.data, b->x->big_body.len, &r, &rp);
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

static void c_burst(pb_fault_ctx *x, pb_fault_result *r)
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
        double v = pb_fw_rss_now(x->c);
        if (v > peak) peak = v;
        if (!running || px_now_ns() - t0 > x->c->timeout_ns + 5000000000LL) break;
        pb_fw_nap(50000000);
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
    if (hung) pb_fault_verdict(r, PB_FAULT_FAIL, "%d request%s got no answer within the timeout (hang)", hung, hung > 1 ? "s" : "");
    else if (bad) pb_fault_verdict(r, PB_FAULT_FAIL, "%d request%s failed (500, a reset or a wrong image)", bad, bad > 1 ? "s" : "");
    else if (dropped) pb_fault_verdict(r, PB_FAULT_FAIL, "%d connection%s dropped without an answer", dropped, dropped > 1 ? "s" : "");
    else if (other4) pb_fault_verdict(r, PB_FAULT_WARN, "%d refused with an undocumented 4xx", other4);
    else
        pb_fault_verdict(r, PB_FAULT_OK, "every request answered: done, or refused with a documented 429/503/504");
}

static void c_still_serving(pb_fault_ctx *x, pb_fault_result *r)
{
    pb_freply rp;
    pb_fw_exchange(x->c, "application/json", x->small_body.data, x->small_body.len, r, &rp);
    if (rp.timed_out && !r->status) pb_fault_verdict(r, PB_FAULT_FAIL, "no answer within the timeout (hang)");
    else if (r->status == 200) {
        if (image_reply_ok(x, &rp, r, NULL)) pb_fault_verdict(r, PB_FAULT_OK, "200 with the inpainted image");
    } else pb_fault_verdict(r, PB_FAULT_FAIL, "a valid request after the faults got %d %s", r->status, r->code);
    px_buf_free(&rp.body);
}

const pb_fault_case pb_fault_cases[] = {
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
const int pb_fault_ncases = (int)(sizeof pb_fault_cases / sizeof pb_fault_cases[0]);
