/*
 * http_test.c — the pixbench response parser: every framing, split reads at
 * every offset, interim responses, bodiless statuses, caps and garbage.
 */
#include "bench/http.h"
#include "core/err.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    int rc;
    size_t used; /* bytes of the input the response took */
    pb_http_parser p;
    px_buf body;
    char err[256];
} result;

/* Feeds s in pieces of `step` bytes (0: all at once), then EOF if eof. */
static void parse(result *r, const char *s, size_t n, size_t step, int head, int eof)
{
    px_buf_init(&r->body, 1 << 20);
    pb_http_init(&r->p, head, &r->body);
    r->used = 0;
    r->err[0] = 0;
    r->rc = PB_HTTP_MORE;
    size_t off = 0;
    while (off < n) {
        size_t k = step ? step : n;
        if (k > n - off) k = n - off;
        size_t used = 0;
        r->rc = pb_http_feed(&r->p, (const uint8_t *)s + off, k, &used, r->err, sizeof r->err);
        off += used;
        r->used = off;
        if (r->rc != PB_HTTP_MORE) return;
        T_EQ_INT(used, k);
    }
    if (eof) r->rc = pb_http_eof(&r->p, r->err, sizeof r->err);
}

static void done(result *r)
{
    px_buf_free(&r->body);
}

/* Same response parsed whole and split at every offset must agree. */
static void check_all_splits(const char *s, int head, int eof, int want_status,
                             const char *want_body, size_t want_used)
{
    size_t n = strlen(s);
    for (size_t step = 0; step <= 7; step++) {
        result r;
        parse(&r, s, n, step, head, eof);
        if (r.rc != PB_HTTP_DONE)
            px_tfail(__FILE__, __LINE__, "step %zu: rc %d (%s)", step, r.rc, r.err);
        T_EQ_INT(r.p.status, want_status);
        T_EQ_INT(r.body.len, strlen(want_body));
        if (r.body.len) T_EQ_MEM(r.body.data, want_body, r.body.len);
        T_EQ_INT(r.p.body_bytes, strlen(want_body));
        if (!eof) T_EQ_INT(r.used, want_used);
        done(&r);
    }
    /* and split into two pieces at every position */
    for (size_t cut = 1; cut < n; cut++) {
        px_buf body;
        px_buf_init(&body, 1 << 20);
        pb_http_parser p;
        pb_http_init(&p, head, &body);
        char err[128];
        size_t u1 = 0, u2 = 0;
        int rc = pb_http_feed(&p, (const uint8_t *)s, cut, &u1, err, sizeof err);
        if (rc == PB_HTTP_MORE) {
            rc = pb_http_feed(&p, (const uint8_t *)s + cut, n - cut, &u2, err, sizeof err);
            if (rc == PB_HTTP_MORE && eof) rc = pb_http_eof(&p, err, sizeof err);
        }
        if (rc != PB_HTTP_DONE) px_tfail(__FILE__, __LINE__, "cut %zu: rc %d (%s)", cut, rc, err);
        T_EQ_INT(body.len, strlen(want_body));
        px_buf_free(&body);
    }
}

TEST(t_content_length)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 5\r\n"
                    "Server-Timing: queue;dur=0.1, infer;dur=12.5\r\n\r\nhello";
    check_all_splits(s, 0, 0, 200, "hello", strlen(s));
    result r;
    parse(&r, s, strlen(s), 0, 0, 0);
    T_EQ_STR(r.p.content_type, "image/png");
    T_EQ_STR(r.p.server_timing, "queue;dur=0.1, infer;dur=12.5");
    T_EQ_INT(r.p.keep_alive, 1);
    T_EQ_INT(r.p.content_length, 5);
    T_EQ_INT(r.p.wire_bytes, strlen(s));
    done(&r);
}

TEST(t_chunked_extensions_trailers)
{
    const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                    "5;name=value;x=\"q\"\r\nhello\r\n"
                    "1 ; ext\r\n \r\n"
                    "A\r\n0123456789\r\n"
                    "0;last\r\nX-Trailer: 1\r\nServer-Timing: late;dur=1\r\n\r\n";
    check_all_splits(s, 0, 0, 200, "hello 0123456789", strlen(s));
    /* bare LF line ends are accepted too */
    const char *lf = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n";
    check_all_splits(lf, 0, 0, 200, "abc", strlen(lf));
}

TEST(t_pipelined_bytes_left_over)
{
    /* A complete response followed by bytes no request asked for: the
     * parser stops at the end of the response and says where. */
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE HTTP/1.1 200";
    result r;
    parse(&r, s, strlen(s), 0, 0, 0);
    T_EQ_INT(r.rc, PB_HTTP_DONE);
    T_EQ_INT(r.used, strlen(s) - strlen("GARBAGE HTTP/1.1 200"));
    done(&r);
}

TEST(t_close_delimited)
{
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
    check_all_splits(s, 0, 1, 200, "until the end", 0);
    result r;
    parse(&r, s, strlen(s), 0, 0, 1);
    T_EQ_INT(r.p.keep_alive, 0);
    done(&r);
    /* HTTP/1.0 without keep-alive closes; with it, stays open */
    parse(&r, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 38, 0, 0, 0);
    T_EQ_INT(r.rc, PB_HTTP_DONE);
    T_EQ_INT(r.p.keep_alive, 0);
    done(&r);
    const char *ka = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
    parse(&r, ka, strlen(ka), 0, 0, 0);
    T_EQ_INT(r.p.keep_alive, 1);
    done(&r);
    const char *cl = "HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 1\r\n\r\nx";
    parse(&r, cl, strlen(cl), 0, 0, 0);
    T_EQ_INT(r.rc, PB_HTTP_DONE);
    T_EQ_INT(r.p.keep_alive, 0);
    done(&r);
}

TEST(t_bodiless)
{
    check_all_splits("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 0, 0, 204, "",
                     strlen("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"));
    check_all_splits("HTTP/1.1 304 Not Modified\r\n\r\n", 0, 0, 304, "", 29);
    const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    check_all_splits(h, 1, 0, 200, "", strlen(h)); /* HEAD */
    check_all_splits("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, 200, "", 38);
}

TEST(t_interim_responses)
{
    const char *s = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                    "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc";
    check_all_splits(s, 0, 0, 201, "abc", strlen(s));
    result r;
    parse(&r, "HTTP/1.1 101 Switching Protocols\r\n\r\n", 36, 0, 0, 0);
    T_EQ_INT(r.rc, PX_ECORRUPT);
    done(&r);
}

TEST(t_malformed)
{
    static const char *bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 x\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        result r;
        parse(&r, bad[i], strlen(bad[i]), 0, 0, 0);
        if (r.rc >= 0) px_tfail(__FILE__, __LINE__, "accepted: %s", bad[i]);
        T_TRUE(r.err[0] != 0);
        done(&r);
    }
}

TEST(t_caps)
{
    /* one header line above the cap */
    size_t n = PB_HTTP_MAX_LINE + 100;
    char *s = malloc(n + 64);
    int k = sprintf(s, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(s + k, 'a', n - (size_t)k);
    strcpy(s + n, "\r\n\r\n");
    result r;
    parse(&r, s, strlen(s), 1000, 0, 0);
    T_EQ_INT(r.rc, PX_ETOOBIG);
    done(&r);
    /* many small headers */
    px_buf b;
    px_buf_init(&b, 1 << 20);
    px_buf_puts(&b, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < PB_HTTP_MAX_HEADERS + 1; i++) px_buf_printf(&b, "X-%d: y\r\n", i);
    px_buf_puts(&b, "\r\n");
    parse(&r, (char *)b.data, b.len, 0, 0, 0);
    T_EQ_INT(r.rc, PX_ETOOBIG);
    done(&r);
    /* headers in total above the cap (lines each below the line cap) */
    px_buf_free(&b);
    px_buf_puts(&b, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 20; i++) {
        px_buf_printf(&b, "X-%d: ", i);
        for (int j = 0; j < 4000; j++) px_buf_puts(&b, "z");
        px_buf_puts(&b, "\r\n");
    }
    px_buf_puts(&b, "\r\n");
    parse(&r, (char *)b.data, b.len, 0, 0, 0);
    T_EQ_INT(r.rc, PX_ETOOBIG);
    done(&r);
    px_buf_free(&b);
    free(s);
}

TEST(t_sink_cap_and_eof)
{
    px_buf small;
    px_buf_init(&small, 4);
    pb_http_parser p;
    pb_http_init(&p, 0, &small);
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    size_t used;
    char err[128];
    T_EQ_INT(pb_http_feed(&p, (const uint8_t *)s, strlen(s), &used, err, sizeof err), PB_HTTP_DONE);
    T_EQ_INT(p.body_truncated, 1);
    T_EQ_INT(p.body_bytes, 10);
    px_buf_free(&small);
    /* EOF before anything; EOF in the middle of a sized body */
    pb_http_init(&p, 0, NULL);
    T_EQ_INT(pb_http_eof(&p, err, sizeof err), PX_EIO);
    T_EQ_INT(pb_http_started(&p), 0);
    const char *part = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n012";
    T_EQ_INT(pb_http_feed(&p, (const uint8_t *)part, strlen(part), &used, err, sizeof err),
             PB_HTTP_MORE);
    T_EQ_INT(pb_http_eof(&p, err, sizeof err), PX_ETRUNC);
    T_CONTAINS(err, "middle");
}

TEST_MAIN(t_content_length, t_chunked_extensions_trailers, t_pipelined_bytes_left_over,
          t_close_delimited, t_bodiless, t_interim_responses, t_malformed, t_caps,
          t_sink_cap_and_eof)
