/*
 * iopaint_test.c — the IOPaint dialect's parts that need no HTTP: PNG text
 * chunks (tEXt, zTXt, iTXt, truncated and hostile files), the header probe
 * against the decoder's sizes, gen-info's prompt split, adjust_mask's
 * operations and refusals, and the lingering close's bounds on socket pairs.
 */
#include "harness.h"

#include "core/base64.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "image/codec.h"
#include "image/pngtext.h"
#include "image/probe.h"
#include "serve/config.h"
#include "serve/iopaint.h"
#include "serve/linger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

/* Appends one PNG chunk (CRC included) to b. */
static void chunk(px_buf *b, const char *type, const void *data, size_t n)
{
    uint8_t hdr[8] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    memcpy(hdr + 4, type, 4);
    px_buf_append(b, hdr, 8);
    px_buf_append(b, data, n);
    uLong crc = crc32(crc32(0, (const Bytef *)type, 4), data, (uInt)n);
    uint8_t c[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    px_buf_append(b, c, 4);
}

/* A 2x1 gray PNG with the given extra chunk before IDAT. */
static void png_with(px_buf *b, const char *type, const void *data, size_t n)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t ihdr[13] = {0, 0, 0, 2, 0, 0, 0, 1, 8, 0, 0, 0, 0};
    px_buf_init(b, 1 << 20);
    px_buf_append(b, sig, 8);
    chunk(b, "IHDR", ihdr, 13);
    if (type) chunk(b, type, data, n);
    uint8_t raw[3] = {0, 10, 20}, z[64];
    uLongf zn = sizeof z;
    compress(z, &zn, raw, 3);
    chunk(b, "IDAT", z, zn);
    chunk(b, "IEND", "", 0);
}

TEST(t_png_text_chunks)
{
    px_buf b;
    char *t;
    size_t n;
    static const char text[] = "parameters\0a cat\nNegative prompt: dog\nSteps: 2";
    png_with(&b, "tEXt", text, sizeof text - 1);
    T_EQ_INT(px_pngtext_find(b.data, b.len, "parameters", &t, &n), 0);
    T_EQ_STR(t, "a cat\nNegative prompt: dog\nSteps: 2");
    T_EQ_INT(n, strlen(t));
    free(t);
    T_EQ_INT(px_pngtext_find(b.data, b.len, "param", &t, &n), PX_ENOTFOUND);
    T_EQ_INT(px_pngtext_find(b.data, b.len - 20, "parameters", &t, &n), 0); /* before IDAT */
    free(t);
    T_EQ_INT(px_pngtext_find(b.data, 40, "parameters", &t, &n), PX_ENOTFOUND); /* cut */
    px_buf_free(&b);

    /* zTXt and compressed iTXt inflate; a bad stream is corrupt. */
    uint8_t z[256] = "parameters\0\0";
    uLongf zn = sizeof z - 12;
    compress(z + 12, &zn, (const Bytef *)"hello zlib", 10);
    png_with(&b, "zTXt", z, 12 + zn);
    T_EQ_INT(px_pngtext_find(b.data, b.len, "parameters", &t, &n), 0);
    T_EQ_STR(t, "hello zlib");
    free(t);
    px_buf_free(&b);
    uint8_t it[256] = "parameters\0\1\0en\0Parameter\0";
    size_t h = 11 + 2 + 3 + 10;
    zn = sizeof it - h;
    compress(it + h, &zn, (const Bytef *)"itxt text", 9);
    png_with(&b, "iTXt", it, h + zn);
    T_EQ_INT(px_pngtext_find(b.data, b.len, "parameters", &t, &n), 0);
    T_EQ_STR(t, "itxt text");
    free(t);
    px_buf_free(&b);
    png_with(&b, "zTXt", "parameters\0\0garbage", 19);
    T_EQ_INT(px_pngtext_find(b.data, b.len, "parameters", &t, &n), PX_ECORRUPT);
    px_buf_free(&b);

    /* A zip bomb stops at the cap. */
    size_t big = PX_PNGTEXT_MAX + 100;
    uint8_t *zeros = calloc(1, big);
    uLongf bn = compressBound(big);
    uint8_t *bomb = malloc(12 + bn);
    memcpy(bomb, "parameters\0\0", 12);
    compress(bomb + 12, &bn, zeros, big);
    png_with(&b, "zTXt", bomb, 12 + bn);
    T_EQ_INT(px_pngtext_find(b.data, b.len, "parameters", &t, &n), PX_ETOOBIG);
    px_buf_free(&b);
    free(zeros);
    free(bomb);
}

TEST(t_gen_info_prompt_split)
{
    static const struct {
        const char *params, *prompt, *negative;
    } cases[] = {
        {"parameters\0a cat\nwith a hat\nNegative prompt: dog, blur\nSteps: 20, Seed: 1",
         "a cat\nwith a hat", "dog, blur"},
        {"parameters\0only a prompt\nSteps: 20", "only a prompt", ""},
        {"parameters\0  spaced  ", "spaced", ""},
        {"parameters\0Negative prompt: n1\nn2\nSteps: 3", "", "n1\nn2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        px_buf b;
        png_with(&b, "tEXt", cases[i].params, 11 + strlen(cases[i].params + 11));
        char *p, *ng;
        T_EQ_INT(px_iopaint_gen_info(b.data, b.len, &p, &ng), 0);
        T_EQ_STR(p, cases[i].prompt);
        T_EQ_STR(ng, cases[i].negative);
        free(p);
        free(ng);
        px_buf_free(&b);
    }
    char *p, *ng;
    T_EQ_INT(px_iopaint_gen_info((const uint8_t *)"\xff\xd8\xff", 3, &p, &ng), 0);
    T_EQ_STR(p, "");
    T_EQ_STR(ng, "");
    free(p);
    free(ng);
}

TEST(t_probe_matches_the_decoder)
{
    px_image img = {0};
    T_EQ_INT(px_image_alloc(&img, 37, 21, 3, NULL, NULL, 0), 0);
    const enum px_format fmts[] = {PX_FMT_PNG, PX_FMT_JPEG, PX_FMT_WEBP};
    for (int i = 0; i < 3; i++) {
        for (int q = 0; q < (fmts[i] == PX_FMT_WEBP ? 2 : 1); q++) { /* lossy, lossless */
            px_buf b;
            px_buf_init(&b, 1 << 20);
            px_encode_opts eo = {.fmt = fmts[i], .quality = q ? 100 : 80};
            char err[128];
            T_EQ_INT(px_encode(&img, &eo, &b, err, sizeof err), 0);
            enum px_format f;
            int w, h;
            T_EQ_INT(px_image_probe(b.data, b.len, &f, &w, &h), 0);
            T_EQ_INT(f, fmts[i]);
            T_EQ_INT(w, 37);
            T_EQ_INT(h, 21);
            T_NE_INT(px_image_probe(b.data, 10, &f, &w, &h), 0); /* cut short */
            px_buf_free(&b);
        }
    }
    enum px_format f;
    int w, h;
    T_EQ_INT(px_image_probe((const uint8_t *)"GIF89a", 6, &f, &w, &h), PX_EUNSUP);
    px_image_free(&img);
}

/* adjust_mask on a 10x8 brush mask with a 4x4 hole at (3, 2). */
static int adjust(const char *op, int k, int *holes)
{
    px_image m = {0};
    px_image_alloc(&m, 10, 8, 4, NULL, NULL, 0);
    for (int y = 2; y < 6; y++)
        for (int x = 3; x < 7; x++) memcpy(m.px + (y * 10 + x) * 4, "\xff\xcc\x00\xbb", 4);
    px_buf png, body, out;
    px_buf_init(&png, 1 << 20);
    px_buf_init(&body, 1 << 20);
    px_buf_init(&out, 1 << 20);
    char err[256];
    px_encode(&m, NULL, &png, err, sizeof err);
    px_buf_printf(&body, "{\"mask\":\"data:image/png;base64,");
    px_buf_reserve(&body, px_b64_encoded_len(png.len) + 1);
    body.len += px_b64_encode(png.data, png.len, (char *)body.data + body.len);
    px_buf_printf(&body, "\",\"operate\":\"%s\",\"kernel_size\":%d}", op, k);
    int rc = px_iopaint_adjust_mask(body.data, body.len, NULL, &out, err, sizeof err);
    *holes = -1;
    if (rc == 0) {
        px_image r = {0};
        px_decode(out.data, out.len, NULL, &r, err, sizeof err);
        *holes = 0;
        for (int i = 0; i < r.w * r.h; i++)
            if (r.px[i * 4 + 3]) *holes += !memcmp(r.px + i * 4, "\xff\xcc\x00\xbb", 4) ? 1 : 1000;
        px_image_free(&r);
    }
    px_image_free(&m);
    px_buf_free(&png);
    px_buf_free(&body);
    px_buf_free(&out);
    return rc;
}

TEST(t_adjust_mask)
{
    int holes;
    T_EQ_INT(adjust("reverse", 0, &holes), 0);
    T_EQ_INT(holes, 80 - 16);
    T_EQ_INT(adjust("expand", 1, &holes), 0);
    T_EQ_INT(holes, 6 * 6 - 4); /* a disc of radius 1 leaves the corners */
    T_EQ_INT(adjust("shrink", 1, &holes), 0);
    T_EQ_INT(holes, 2 * 2);
    T_EQ_INT(adjust("expand", 0, &holes), 0);
    T_EQ_INT(holes, 16);
    T_EQ_INT(adjust("melt", 1, &holes), PX_EINVAL);
    T_EQ_INT(adjust("expand", 300, &holes), PX_EINVAL);
    px_buf out;
    px_buf_init(&out, 1 << 20);
    char err[256];
    static const char *bad[] = {"", "[]", "{\"mask\":1}",
                                "{\"mask\":\"AAAA\",\"operate\":\"expand\"}",
                                "{\"mask\":\"x\",\"operate\":\"expand\",\"kernel_size\":1.5}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        T_NE_INT(px_iopaint_adjust_mask((const uint8_t *)bad[i], strlen(bad[i]), NULL, &out, err,
                                        sizeof err),
                 0);
    px_buf_free(&out);
}

/* Whether the lingering end of a socket pair closes within wait_ms: the
 * peer's sends fail then (EPIPE). The answered end is only half-closed
 * while it lingers, so until then they succeed (one byte per probe). */
static int peer_sees_close(int peer, int wait_ms)
{
    int64_t until = px_now_ns() + (int64_t)wait_ms * 1000000;
    do {
        if (send(peer, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) return 1;
        usleep(5000);
    } while (px_now_ns() < until);
    return 0;
}

TEST(t_linger_bounds)
{
    /* Bounds far from what a loaded machine stretches: a 10 s time bound
     * where the socket must stay open or close for its bytes, and a 300 ms
     * one that it must reach before closing. */
    px_serve_config cfg;
    px_config_defaults(&cfg);
    cfg.linger_ms = 10000;
    cfg.linger_bytes = 100000;
    px_linger *l = px_linger_create(&cfg);
    T_TRUE(l != NULL);
    int sv[2];
    char buf[4096] = {0};

    /* The rest of a body is drained while the client sends it. */
    T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    px_linger_add(l, sv[0]);
    for (int i = 0; i < 10; i++) T_EQ_INT(write(sv[1], buf, sizeof buf), (int)sizeof buf);
    T_TRUE(!peer_sees_close(sv[1], 100));
    close(sv[1]);

    /* Past the byte budget it closes without waiting for the time bound. */
    T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    px_linger_add(l, sv[0]);
    int64_t t0 = px_now_ns();
    /* (the lingerer may close while this still writes: an error, no SIGPIPE) */
    for (int i = 0; i < 30; i++)
        if (send(sv[1], buf, sizeof buf, MSG_NOSIGNAL) < 0) break;
    T_TRUE(peer_sees_close(sv[1], 5000));
    T_CMP_DBL((double)(px_now_ns() - t0) / 1e6, <, 5000);
    close(sv[1]);
    px_linger_destroy(l);

    /* A client that goes quiet is closed at the time bound, not before. */
    cfg.linger_ms = 300;
    l = px_linger_create(&cfg);
    T_TRUE(l != NULL);
    T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    t0 = px_now_ns();
    px_linger_add(l, sv[0]);
    T_TRUE(peer_sees_close(sv[1], 10000));
    T_CMP_DBL((double)(px_now_ns() - t0) / 1e6, >=, 300);
    close(sv[1]);

    /* Off: a NULL lingerer closes at once. */
    T_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    px_linger_add(NULL, sv[0]);
    T_TRUE(peer_sees_close(sv[1], 1000));
    close(sv[1]);
    px_linger_destroy(l);
    cfg.linger_ms = 0;
    T_TRUE(px_linger_create(&cfg) == NULL);
}

TEST_MAIN(t_png_text_chunks, t_gen_info_prompt_split, t_probe_matches_the_decoder, t_adjust_mask,
          t_linger_bounds)
