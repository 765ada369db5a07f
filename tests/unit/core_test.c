/*
 * core_test.c — buffer caps, the parallel-for pool, the RNG, error names and
 * the environment switches.
 */
#include "core/buf.h"
#include "core/env.h"
#include "core/err.h"
#include "core/pool.h"
#include "core/rng.h"
#include "harness.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

TEST(t_buf_cap)
{
    px_buf b;
    px_buf_init(&b, 10);
    T_EQ_INT(px_buf_append(&b, "0123456789", 10), 0);
    T_EQ_INT(b.len, 10);
    T_EQ_INT(px_buf_append(&b, "x", 1), PX_ETOOBIG);
    T_EQ_INT(b.len, 10);
    T_EQ_STR((char *)b.data, "0123456789");
    px_buf_free(&b);
    T_EQ_INT(px_buf_printf(&b, "%d-%s", 42, "abc"), 0);
    T_EQ_STR((char *)b.data, "42-abc");
    T_EQ_INT(px_buf_printf(&b, "%s", "too long for it"), PX_ETOOBIG);
    T_EQ_STR((char *)b.data, "42-abc");
    size_t n;
    uint8_t *p = px_buf_steal(&b, &n);
    T_EQ_INT(n, 6);
    T_TRUE(b.data == NULL && b.len == 0);
    free(p);
}

TEST(t_buf_huge_request_refused)
{
    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_buf_reserve(&b, SIZE_MAX), PX_ETOOBIG);
    T_EQ_INT(px_buf_append(&b, "a", 1), 0);
    T_EQ_INT(px_buf_reserve(&b, SIZE_MAX - 1), PX_ETOOBIG);
    px_buf_free(&b);
}

struct sum_ctx {
    atomic_long sum;
    atomic_int calls;
    int *seen;
};

static void sum_body(void *ctx, int b, int e)
{
    struct sum_ctx *c = ctx;
    long s = 0;
    for (int i = b; i < e; i++) {
        s += i;
        c->seen[i]++;
    }
    atomic_fetch_add(&c->sum, s);
    atomic_fetch_add(&c->calls, 1);
}

TEST(t_pool_covers_every_item_once)
{
    px_pool *p = px_pool_create(4);
    T_TRUE(p != NULL);
    T_EQ_INT(px_pool_threads(p), 4);
    for (int n = 0; n < 2000; n += 97) {
        struct sum_ctx c = {.seen = calloc((size_t)n + 1, sizeof(int))};
        px_pool_parallel_for(p, n, 0, sum_body, &c);
        T_EQ_INT(atomic_load(&c.sum), (long)n * (n - 1) / 2);
        for (int i = 0; i < n; i++) T_EQ_INT(c.seen[i], 1);
        free(c.seen);
    }
    px_pool_destroy(p);
}

struct nest_ctx {
    px_pool *p;
    atomic_long total;
};

static void inner_body(void *ctx, int b, int e)
{
    struct nest_ctx *c = ctx;
    atomic_fetch_add(&c->total, e - b);
}

static void outer_body(void *ctx, int b, int e)
{
    struct nest_ctx *c = ctx;
    for (int i = b; i < e; i++) px_pool_parallel_for(c->p, 100, 7, inner_body, c);
}

TEST(t_pool_nested_and_null)
{
    px_pool *p = px_pool_create(3);
    struct nest_ctx c = {.p = p};
    px_pool_parallel_for(p, 20, 1, outer_body, &c);
    T_EQ_INT(atomic_load(&c.total), 2000);
    px_pool_destroy(p);
    struct nest_ctx c2 = {.p = NULL};
    px_pool_parallel_for(NULL, 5, 1, outer_body, &c2);
    T_EQ_INT(atomic_load(&c2.total), 500);
}

/* Segments of every size around the 1 MiB chunk (empty ones too) land
 * byte for byte where they belong, and nothing around them is touched. */
TEST(t_pool_copy_segments)
{
    const size_t MB = (size_t)1 << 20;
    size_t sizes[] = {0, 1, MB - 1, MB, MB + 1, 3 * MB + 12345, 0, 777};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    size_t total = 0;
    for (int i = 0; i < NS; i++) total += sizes[i] + 16; /* 16-byte gaps */
    unsigned char *src = malloc(total), *dst = malloc(total);
    for (size_t i = 0; i < total; i++) src[i] = (unsigned char)(i * 131 + 7), dst[i] = 0xA5;
    px_copy_seg seg[NS];
    size_t off = 0;
    for (int i = 0; i < NS; i++) {
        seg[i] = (px_copy_seg){dst + off, src + off, sizes[i]};
        off += sizes[i] + 16;
    }
    for (int pass = 0; pass < 2; pass++) {
        px_pool *p = pass ? px_pool_create(4) : NULL;
        memset(dst, 0xA5, total);
        px_pool_copy(p, seg, NS);
        off = 0;
        for (int i = 0; i < NS; i++) {
            T_TRUE(memcmp(dst + off, src + off, sizes[i]) == 0);
            for (int g = 0; g < 16; g++) T_EQ_INT(dst[off + sizes[i] + g], 0xA5);
            off += sizes[i] + 16;
        }
        px_pool_destroy(p);
    }
    px_pool_copy(NULL, seg, 0); /* nothing */
    free(src), free(dst);
}

TEST(t_rng_deterministic_and_uniform)
{
    px_rng a, b, c;
    px_rng_seed(&a, 42, 7);
    px_rng_seed(&b, 42, 7);
    px_rng_seed(&c, 42, 8);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = px_rng_u32(&a);
        T_EQ_INT(x, px_rng_u32(&b));
        same_c += x == px_rng_u32(&c);
    }
    T_CMP_INT(same_c, <, 3);
    int hist[10] = {0};
    for (int i = 0; i < 100000; i++) {
        uint32_t v = px_rng_below(&a, 10);
        T_CMP_INT(v, <, 10);
        hist[v]++;
        float f = px_rng_float(&a);
        T_TRUE(f >= 0.0f && f < 1.0f);
    }
    for (int i = 0; i < 10; i++) T_NEAR(hist[i], 10000, 500);
}

/* Advancing k draws lands where k draws do, for k across the bits of
 * the jump (0, single bits, mixed, past 2^32). */
TEST(t_rng_advance_matches_draws)
{
    const uint64_t ks[] = {0, 1, 2, 3, 7, 1000, 8192, 123457};
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        px_rng a, b;
        px_rng_seed(&a, 99, 5);
        b = a;
        for (uint64_t i = 0; i < ks[t]; i++) px_rng_u32(&a);
        px_rng_advance(&b, ks[t]);
        T_EQ_INT((long long)b.state, (long long)a.state);
        T_EQ_INT(px_rng_u32(&b), px_rng_u32(&a));
    }
    /* 2^32 + 5 draws as two jumps against one */
    px_rng c, d;
    px_rng_seed(&c, 3, 4);
    d = c;
    px_rng_advance(&c, 1ull << 32);
    px_rng_advance(&c, 5);
    px_rng_advance(&d, (1ull << 32) + 5);
    T_EQ_INT((long long)c.state, (long long)d.state);
}

TEST(t_err_names_and_status)
{
    T_EQ_STR(px_err_name(PX_ETOOBIG), "too_large");
    T_EQ_INT(px_err_http_status(PX_ETOOBIG), 413);
    T_EQ_INT(px_err_http_status(PX_EUNSUP), 415);
    T_EQ_INT(px_err_http_status(PX_EBUSY), 429);
    T_EQ_INT(px_err_http_status(PX_ETIMEDOUT), 504);
    T_EQ_INT(px_err_http_status(PX_EINVAL), 400);
    T_EQ_INT(px_err_http_status(-999), 500);
    T_EQ_STR(px_err_name(-999), "internal");
    char e[8];
    T_EQ_INT(px_errf(e, sizeof e, PX_EINVAL, "%s", "a long message"), PX_EINVAL);
    T_EQ_STR(e, "a long ");
}

TEST(t_env_switches)
{
    const char *n = "PX_CORE_TEST_SWITCH";
    unsetenv(n);
    int unset = -1, off = -1, other = -1;
    T_TRUE(!px_env_is(n, "0"));
    T_EQ_INT(px_env_on_unless_0(n, &unset), 1);
    setenv(n, "0", 1);
    T_TRUE(px_env_is(n, "0") && !px_env_is(n, "00"));
    T_EQ_INT(px_env_on_unless_0(n, &unset), 1); /* read once: cached */
    T_EQ_INT(px_env_on_unless_0(n, &off), 0);
    setenv(n, "1", 1);
    T_EQ_INT(px_env_on_unless_0(n, &other), 1);
    T_EQ_INT(px_env_on_unless_0(n, &off), 0);
    unsetenv(n);
}

TEST_MAIN(t_buf_cap, t_buf_huge_request_refused, t_pool_covers_every_item_once,
          t_pool_nested_and_null, t_pool_copy_segments, t_rng_deterministic_and_uniform,
          t_rng_advance_matches_draws, t_err_names_and_status, t_env_switches)
