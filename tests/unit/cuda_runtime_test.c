/*
 * cuda_runtime_test.c — the shared CUDA runtime's parts that need no GPU
 * (src/engine/cuda/cuda_plan.c, cuda_devspec.c; plain C, so this runs in
 * every build): the caches' key hash, LRU eviction, the out-of-memory
 * retry and the hash table under long random use against a simple model;
 * plans built in the background (cuda_plan_async.c) while the device's
 * holder keeps getting the plans it has, handed over once, failures
 * reported by the holder's own build;
 * CUDA_VISIBLE_DEVICES and --device parsing.
 */
#include "core/err.h"
#include "core/rng.h"
#include "engine/cuda/cuda_devspec.h"
#include "core/clock.h"
#include "engine/cuda/cuda_plan.h"
#include "engine/cuda/cuda_plan_async.h"
#include "harness.h"

#include <stdatomic.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ key hash */

TEST(t_key_hash_fnv1a)
{
    /* The FNV-1a 64 test vectors of the algorithm's description. */
    T_TRUE(px_cuda_key_hash("", 0) == 0xcbf29ce484222325ull);
    T_TRUE(px_cuda_key_hash("a", 1) == 0xaf63dc4c8601ec8cull);
    T_TRUE(px_cuda_key_hash("foobar", 6) == 0x85944171f73967e8ull);
}

TEST(t_key_hash_sees_every_byte)
{
    int key[4] = {1, 512, 512, 3}, other[4];
    uint64_t h = px_cuda_key_hash(key, sizeof key);
    T_TRUE(h == px_cuda_key_hash(key, sizeof key));
    for (size_t byte = 0; byte < sizeof key; byte++) {
        memcpy(other, key, sizeof key);
        ((unsigned char *)other)[byte] ^= 1;
        T_TRUE(px_cuda_key_hash(other, sizeof other) != h);
    }
    /* (B, H, W) = (1, 512, 768) and (1, 768, 512) are different plans. */
    int a[3] = {1, 512, 768}, b[3] = {1, 768, 512};
    T_TRUE(px_cuda_key_hash(a, sizeof a) != px_cuda_key_hash(b, sizeof b));
}

/* --------------------------------------------------------------- plans */

typedef struct {
    int B, H, W;
} key3;

/* A fake engine: plans are malloc'd copies of their key; building fails
 * with PX_ENOMEM while `budget` plans are alive, or with fail_rc. */
typedef struct {
    int attempts, built, destroyed, live, budget, fail_rc;
    int live_at_build; /* plans alive when the last build started */
} fake;

static int fake_build(void *arg, const void *key, void **plan, char *err, size_t errlen)
{
    fake *f = arg;
    f->live_at_build = f->live;
    f->attempts++;
    if (f->fail_rc) return px_errf(err, errlen, f->fail_rc, "fake build failed");
    if (f->budget && f->live >= f->budget) return px_errf(err, errlen, PX_ENOMEM, "fake: full");
    key3 *p = malloc(sizeof *p);
    memcpy(p, key, sizeof *p);
    *plan = p;
    f->built++;
    f->live++;
    return 0;
}

static void fake_destroy(void *arg, void *plan)
{
    fake *f = arg;
    f->destroyed++;
    f->live--;
    free(plan);
}

/* A plan "holds" B*H*W bytes of device memory. */
static size_t fake_bytes(void *arg, const void *plan)
{
    (void)arg;
    const key3 *k = plan;
    return (size_t)k->B * k->H * k->W;
}

static px_cuda_plans *mk_plans(fake *f, int cap)
{
    px_cuda_plan_ops ops = {
        .build = fake_build, .destroy = fake_destroy, .bytes = fake_bytes, .arg = f};
    return px_cuda_plans_create(sizeof(key3), cap, &ops);
}

static key3 *get(px_cuda_plans *c, int B, int H, int W)
{
    key3 k = {B, H, W};
    void *p = NULL;
    char err[128];
    T_EQ_INT(px_cuda_plans_get(c, &k, &p, err, sizeof err), 0);
    T_TRUE(p != NULL);
    key3 *got = p;
    T_EQ_INT(got->B, B);
    T_EQ_INT(got->H, H);
    T_EQ_INT(got->W, W);
    return got;
}

TEST(t_plans_hit_and_lru_eviction)
{
    fake f = {0};
    px_cuda_plans *c = mk_plans(&f, 3);
    key3 *p1 = get(c, 1, 64, 64);
    get(c, 2, 64, 64);
    get(c, 1, 64, 96);
    T_EQ_INT(f.built, 3);
    T_TRUE(get(c, 1, 64, 64) == p1); /* a hit builds nothing and makes it recent */
    T_EQ_INT(f.built, 3);
    get(c, 4, 64, 64); /* full: the least recent, (2, 64, 64), goes */
    T_EQ_INT(f.destroyed, 1);
    T_EQ_INT(f.live_at_build, 2); /* freed before the build, not after */
    key3 k = {2, 64, 64};
    T_TRUE(px_cuda_plans_find(c, &k) == NULL);
    T_TRUE(get(c, 1, 64, 64) == p1);
    get(c, 2, 64, 64); /* now (1, 64, 96) is the least recent */
    k = (key3){1, 64, 96};
    T_TRUE(px_cuda_plans_find(c, &k) == NULL);
    T_EQ_INT(px_cuda_plans_count(c), 3);
    /* Every build counted, the rebuild of an evicted key too; hits not. */
    T_EQ_INT(f.built, 5);
    T_EQ_INT(px_cuda_plans_builds(c), 5);
    T_EQ_INT(f.live, 3);
    px_cuda_plans_destroy(c);
    T_EQ_INT(f.live, 0);
    T_EQ_INT(f.destroyed, f.built);
}

/* What the cache holds is what the scheduler weighs before asking for a
 * release (px_engine_cached_bytes): it follows builds, evictions, the
 * out-of-memory drop and clear. */
TEST(t_plans_count_held_bytes)
{
    fake f = {0};
    px_cuda_plans *c = mk_plans(&f, 2);
    T_EQ_INT((int)px_cuda_plans_bytes(c), 0);
    get(c, 1, 64, 64);
    get(c, 2, 64, 64);
    T_EQ_INT((int)px_cuda_plans_bytes(c), 4096 + 8192);
    get(c, 2, 64, 64); /* a hit adds nothing */
    get(c, 1, 32, 32); /* evicts (1, 64, 64) */
    T_EQ_INT((int)px_cuda_plans_bytes(c), 8192 + 1024);
    f.budget = 1; /* the next build fails until every plan is gone */
    get(c, 1, 16, 16);
    T_EQ_INT((int)px_cuda_plans_bytes(c), 256);
    px_cuda_plans_clear(c);
    T_EQ_INT((int)px_cuda_plans_bytes(c), 0);
    px_cuda_plans_destroy(c);
}

TEST(t_plans_out_of_memory_drops_all_and_retries)
{
    fake f = {.budget = 2};
    px_cuda_plans *c = mk_plans(&f, 8);
    get(c, 1, 64, 64);
    get(c, 1, 128, 128);
    /* A third does not fit beside the two: both go, the build succeeds. */
    get(c, 1, 256, 256);
    T_EQ_INT(px_cuda_plans_count(c), 1);
    T_EQ_INT(f.destroyed, 2);
    T_EQ_INT(f.live, 1);
    /* Still out of memory after dropping everything: that is the answer,
     * after exactly one retry. */
    f.fail_rc = PX_ENOMEM;
    int before = f.attempts;
    key3 k = {8, 64, 64};
    void *p = (void *)1;
    char err[128];
    long builds = px_cuda_plans_builds(c);
    T_EQ_INT(px_cuda_plans_get(c, &k, &p, err, sizeof err), PX_ENOMEM);
    T_EQ_INT(f.attempts - before, 2);
    T_EQ_INT(px_cuda_plans_builds(c), builds); /* a failed build is none */
    T_TRUE(p == NULL);
    T_EQ_INT(px_cuda_plans_count(c), 0);
    px_cuda_plans_destroy(c);
    T_EQ_INT(f.live, 0);
}

TEST(t_plans_other_errors_keep_the_cache)
{
    fake f = {0};
    px_cuda_plans *c = mk_plans(&f, 4);
    get(c, 1, 64, 64);
    f.fail_rc = PX_EIO;
    key3 k = {2, 64, 64};
    void *p = NULL;
    char err[128];
    T_EQ_INT(px_cuda_plans_get(c, &k, &p, err, sizeof err), PX_EIO);
    T_EQ_STR(err, "fake build failed");
    T_TRUE(p == NULL);
    T_EQ_INT(px_cuda_plans_count(c), 1);
    T_EQ_INT(f.destroyed, 0);
    f.fail_rc = 0;
    get(c, 1, 64, 64);
    T_EQ_INT(f.built, 1);
    px_cuda_plans_clear(c);
    T_EQ_INT(px_cuda_plans_count(c), 0);
    T_EQ_INT(f.live, 0);
    px_cuda_plans_destroy(c);
}

/* ------------------------------------------------- background builds */

/* A build that takes build_ms (the background thread and the test's
 * thread both build: counters are atomic). */
typedef struct {
    atomic_int built, live, attempts, fail_rc, build_ms;
} afake;

static int afake_build(void *arg, const void *key, void **plan, char *err, size_t errlen)
{
    afake *f = arg;
    atomic_fetch_add(&f->attempts, 1);
    usleep((useconds_t)atomic_load(&f->build_ms) * 1000);
    int rc = atomic_load(&f->fail_rc);
    if (rc) return px_errf(err, errlen, rc, "fake build failed");
    key3 *p = malloc(sizeof *p);
    memcpy(p, key, sizeof *p);
    *plan = p;
    atomic_fetch_add(&f->built, 1);
    atomic_fetch_add(&f->live, 1);
    return 0;
}

static void afake_destroy(void *arg, void *plan)
{
    afake *f = arg;
    atomic_fetch_sub(&f->live, 1);
    free(plan);
}

static px_cuda_aplans *mk_aplans(afake *f, int cap)
{
    px_cuda_plan_ops ops = {.build = afake_build, .destroy = afake_destroy, .arg = f};
    return px_cuda_aplans_create(sizeof(key3), cap, &ops, "test");
}

/* Polls ready(key) for up to 5 s; its last answer. */
static int wait_ready(px_cuda_aplans *c, const key3 *k)
{
    for (int i = 0; i < 500; i++) {
        if (px_cuda_aplans_ready(c, k, 0)) return 1;
        usleep(10000);
    }
    return 0;
}

TEST(t_aplans_build_in_background_while_the_holder_runs)
{
    afake f = {0};
    atomic_store(&f.build_ms, 300);
    px_cuda_aplans *c = mk_aplans(&f, 4);
    key3 k0 = {1, 64, 64}, k1 = {1, 96, 64};
    void *p0 = NULL, *p = NULL;
    char err[128];
    T_EQ_INT(px_cuda_aplans_get(c, &k0, &p0, err, sizeof err), 0); /* built here */
    T_EQ_INT(atomic_load(&f.built), 1);
    T_EQ_INT(px_cuda_aplans_ready(c, &k0, 1), 1);
    /* Asking without want queues nothing. */
    T_EQ_INT(px_cuda_aplans_ready(c, &k1, 0), 0);
    usleep(50000);
    T_EQ_INT(atomic_load(&f.attempts), 1);
    T_EQ_INT(px_cuda_aplans_ready(c, &k1, 1), 0); /* queued */
    T_EQ_INT(px_cuda_aplans_ready(c, &k1, 1), 0); /* once */
    usleep(20000);
    /* While k1 builds, the holder gets k0 at once, and k1 is not ready. */
    int64_t t0 = px_now_ns();
    T_EQ_INT(px_cuda_aplans_get(c, &k0, &p, err, sizeof err), 0);
    T_TRUE(p == p0);
    T_TRUE(px_now_ns() - t0 < 100 * 1000000LL);
    T_EQ_INT(px_cuda_aplans_ready(c, &k1, 0), 0);
    T_EQ_INT(wait_ready(c, &k1), 1);
    T_EQ_INT(px_cuda_aplans_background_builds(c), 1);
    /* Handed over: the holder's get builds nothing more. */
    T_EQ_INT(px_cuda_aplans_get(c, &k1, &p, err, sizeof err), 0);
    T_EQ_INT(((key3 *)p)->H, 96);
    T_EQ_INT(atomic_load(&f.attempts), 2);
    T_EQ_INT(atomic_load(&f.built), 2);
    px_cuda_aplans_destroy(c);
    T_EQ_INT(atomic_load(&f.live), 0);
}

TEST(t_aplans_get_waits_for_the_build_in_progress)
{
    afake f = {0};
    atomic_store(&f.build_ms, 200);
    px_cuda_aplans *c = mk_aplans(&f, 4);
    key3 k = {2, 64, 64};
    void *p = NULL;
    char err[128];
    T_EQ_INT(px_cuda_aplans_ready(c, &k, 1), 0);
    usleep(30000); /* the background thread has started on it */
    T_EQ_INT(px_cuda_aplans_get(c, &k, &p, err, sizeof err), 0);
    T_TRUE(p != NULL);
    T_EQ_INT(atomic_load(&f.attempts), 1); /* one build, not two */
    px_cuda_aplans_destroy(c);
    T_EQ_INT(atomic_load(&f.live), 0);
}

TEST(t_aplans_background_failure_is_the_holders_to_report)
{
    afake f = {0};
    atomic_store(&f.fail_rc, PX_EIO);
    px_cuda_aplans *c = mk_aplans(&f, 4);
    key3 k = {1, 64, 64};
    void *p = (void *)1;
    char err[128];
    T_EQ_INT(px_cuda_aplans_ready(c, &k, 1), 0);
    /* Failed: "ready", so that a batch runs and its own build says why. */
    T_EQ_INT(wait_ready(c, &k), 1);
    T_EQ_INT(px_cuda_aplans_background_builds(c), 0);
    T_EQ_INT(px_cuda_aplans_get(c, &k, &p, err, sizeof err), PX_EIO);
    T_EQ_STR(err, "fake build failed");
    T_TRUE(p == NULL);
    T_EQ_INT(atomic_load(&f.attempts), 2);
    /* The failure is forgotten once reported: the next ask queues again. */
    atomic_store(&f.fail_rc, 0);
    T_EQ_INT(px_cuda_aplans_ready(c, &k, 1), 0);
    T_EQ_INT(wait_ready(c, &k), 1);
    T_EQ_INT(px_cuda_aplans_get(c, &k, &p, err, sizeof err), 0);
    T_EQ_INT(atomic_load(&f.attempts), 3);
    px_cuda_aplans_destroy(c);
    T_EQ_INT(atomic_load(&f.live), 0);
}

TEST(t_aplans_destroy_stops_the_builder)
{
    afake f = {0};
    atomic_store(&f.build_ms, 100);
    px_cuda_aplans *c = mk_aplans(&f, 2);
    for (int i = 0; i < 5; i++) {
        key3 k = {1, 64 * (i + 1), 64};
        T_EQ_INT(px_cuda_aplans_ready(c, &k, 1), 0);
    }
    usleep(150000); /* one finished (handed over, never cached), one building */
    px_cuda_aplans_destroy(c);
    T_TRUE(atomic_load(&f.attempts) < 5); /* the queue was not worked off */
    T_EQ_INT(atomic_load(&f.live), 0);
}

/* ---------------------------------------------------------- algorithms */

typedef struct {
    int tr, n, c, h, w; /* a convolution shape, as engines key them */
} shape;

typedef struct {
    int algo;
    size_t ws;
} choice;

TEST(t_algos_get_put_replace)
{
    px_cuda_algos *a = px_cuda_algos_create(sizeof(shape), sizeof(choice), 4);
    shape s = {0, 1, 64, 32, 32};
    choice v = {0};
    T_EQ_INT(px_cuda_algos_get(a, &s, &v), 0);
    px_cuda_algos_put(a, &s, &(choice){7, 1 << 20});
    T_EQ_INT(px_cuda_algos_get(a, &s, &v), 1);
    T_EQ_INT(v.algo, 7);
    T_EQ_INT(v.ws, 1 << 20);
    px_cuda_algos_put(a, &s, &(choice){3, 0}); /* replaces, does not add */
    T_EQ_INT(px_cuda_algos_count(a), 1);
    T_EQ_INT(px_cuda_algos_get(a, &s, &v), 1);
    T_EQ_INT(v.algo, 3);
    px_cuda_algos_destroy(a);
}

/* The model: keys 0..U-1 with the time of last use, value = key * 10 + t. */
#define U 40

/*
 * Long random use of a small cache (cap 5, 16 slots, keys colliding
 * often): every answer must match a plain array that tracks recency. This
 * is what exercises deletion from the open-addressing table.
 */
TEST(t_algos_match_an_lru_model)
{
    for (int cap = 1; cap <= 9; cap += 4) {
        px_cuda_algos *a = px_cuda_algos_create(sizeof(int), sizeof(int), cap);
        int in[U], val[U];
        long used[U];
        memset(in, 0, sizeof in);
        px_rng r;
        px_rng_seed(&r, 42, (uint64_t)cap);
        for (long t = 1; t <= 20000; t++) {
            int k = (int)px_rng_below(&r, U), v = 0;
            if (px_rng_u32(&r) & 1) {
                int got = px_cuda_algos_get(a, &k, &v);
                T_EQ_INT(got, in[k]);
                if (got) {
                    T_EQ_INT(v, val[k]);
                    used[k] = t;
                }
            } else {
                int nv = k * 100000 + (int)(t % 1000);
                px_cuda_algos_put(a, &k, &nv);
                if (!in[k]) {
                    int n = 0, old = -1;
                    for (int i = 0; i < U; i++)
                        if (in[i]) {
                            n++;
                            if (old < 0 || used[i] < used[old]) old = i;
                        }
                    if (n == cap) in[old] = 0;
                }
                in[k] = 1;
                val[k] = nv;
                used[k] = t;
            }
            int n = 0;
            for (int i = 0; i < U; i++) n += in[i];
            T_EQ_INT(px_cuda_algos_count(a), n);
        }
        px_cuda_algos_destroy(a);
    }
}

/* ------------------------------------------------ CUDA_VISIBLE_DEVICES */

TEST(t_visible_unset_empty_and_hidden)
{
    T_EQ_INT(px_cuda_visible_parse(NULL, NULL, 16), -1);
    T_EQ_INT(px_cuda_visible_parse("", NULL, 16), 0);
    T_EQ_INT(px_cuda_visible_parse("-1", NULL, 16), 0);
    T_EQ_INT(px_cuda_visible_parse("none", NULL, 16), 0);
}

TEST(t_visible_indices_and_uuids)
{
    px_cuda_visible_id ids[16];
    T_EQ_INT(px_cuda_visible_parse("2,0", ids, 16), 2);
    T_EQ_STR(ids[0].id, "2");
    T_EQ_STR(ids[1].id, "0");
    T_EQ_INT(px_cuda_visible_parse(" 1 , 3 ", ids, 16), 2);
    T_EQ_STR(ids[0].id, "1");
    T_EQ_STR(ids[1].id, "3");
    T_EQ_INT(px_cuda_visible_parse("GPU-8e6a1b2c-33f4-45d1-9c2e-0a1b2c3d4e5f,MIG-ab12", ids, 16),
             2);
    T_EQ_STR(ids[0].id, "GPU-8e6a1b2c-33f4-45d1-9c2e-0a1b2c3d4e5f");
    T_EQ_STR(ids[1].id, "MIG-ab12");
    T_EQ_INT(px_cuda_visible_parse("007", ids, 16), 1);
    T_EQ_STR(ids[0].id, "7");
}

TEST(t_visible_stops_at_the_first_invalid_entry)
{
    px_cuda_visible_id ids[16];
    T_EQ_INT(px_cuda_visible_parse("1,x,2", ids, 16), 1);
    T_EQ_STR(ids[0].id, "1");
    T_EQ_INT(px_cuda_visible_parse("0,-1,1", ids, 16), 1);
    T_EQ_INT(px_cuda_visible_parse("0,,1", ids, 16), 1);
    T_EQ_INT(px_cuda_visible_parse("1,", ids, 16), 1);
    T_EQ_INT(px_cuda_visible_parse("GPU-,0", ids, 16), 0);
    T_EQ_INT(px_cuda_visible_parse("GPU-12zz", ids, 16), 0);
    T_EQ_INT(px_cuda_visible_parse("99999999999999999999999", ids, 16), 0);
    /* One GPU is never two devices: a repeat ends the list. */
    T_EQ_INT(px_cuda_visible_parse("0,1,01,2", ids, 16), 2);
}

TEST(t_visible_bounds)
{
    px_cuda_visible_id ids[16];
    T_EQ_INT(px_cuda_visible_parse("0,1,2,3", ids, 2), 2);
    char many[200] = "";
    for (int i = 0; i < 20; i++) snprintf(many + strlen(many), 8, "%s%d", i ? "," : "", i);
    T_EQ_INT(px_cuda_visible_parse(many, ids, 16), PX_CUDA_MAX_DEVICES);
    char big[300] = "GPU-";
    memset(big + 4, 'a', 250);
    big[254] = 0;
    T_EQ_INT(px_cuda_visible_parse(big, ids, 16), 1);
    T_EQ_INT(strlen(ids[0].id), PX_CUDA_ID_LEN - 1);
}

/* ------------------------------------------------------------ --device */

TEST(t_devspec_all_and_lists)
{
    int devs[PX_CUDA_MAX_DEVICES], n = -1;
    char err[160];
    T_EQ_INT(px_cuda_devspec_parse("cuda", 3, devs, &n, "t", err, sizeof err), 0);
    T_EQ_INT(n, 3);
    T_EQ_INT(devs[2], 2);
    T_EQ_INT(px_cuda_devspec_parse("cuda", 40, devs, &n, "t", err, sizeof err), 0);
    T_EQ_INT(n, PX_CUDA_MAX_DEVICES);
    T_EQ_INT(px_cuda_devspec_parse("cuda:2", 3, devs, &n, "t", err, sizeof err), 0);
    T_EQ_INT(n, 1);
    T_EQ_INT(devs[0], 2);
    T_EQ_INT(px_cuda_devspec_parse("cuda:1,0", 3, devs, &n, "t", err, sizeof err), 0);
    T_EQ_INT(n, 2);
    T_EQ_INT(devs[0], 1);
    T_EQ_INT(devs[1], 0);
}

TEST(t_devspec_refusals)
{
    int devs[PX_CUDA_MAX_DEVICES], n;
    char err[160];
    T_EQ_INT(px_cuda_devspec_parse("cuda", 0, devs, &n, "eng", err, sizeof err), PX_EUNSUP);
    T_EQ_STR(err, "eng: no CUDA device is visible");
    T_EQ_INT(px_cuda_devspec_parse("cuda:3", 3, devs, &n, "eng", err, sizeof err), PX_EUNSUP);
    T_EQ_STR(err, "eng: bad device \"cuda:3\" (3 device(s) visible)");
    const char *bad[] = {"cuda:", "cuda:1x", "cuda:-1", "gpu", "cuda0", "cuda:a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        T_EQ_INT(px_cuda_devspec_parse(bad[i], 3, devs, &n, "eng", err, sizeof err), PX_EUNSUP);
        T_TRUE(strstr(err, "eng: bad device") == err);
    }
}

TEST_MAIN(t_key_hash_fnv1a, t_key_hash_sees_every_byte, t_plans_hit_and_lru_eviction,
          t_plans_count_held_bytes, t_plans_out_of_memory_drops_all_and_retries,
          t_plans_other_errors_keep_the_cache, t_aplans_build_in_background_while_the_holder_runs,
          t_aplans_get_waits_for_the_build_in_progress,
          t_aplans_background_failure_is_the_holders_to_report, t_aplans_destroy_stops_the_builder,
          t_algos_get_put_replace, t_algos_match_an_lru_model, t_visible_unset_empty_and_hidden,
          t_visible_indices_and_uuids, t_visible_stops_at_the_first_invalid_entry, t_visible_bounds,
          t_devspec_all_and_lists, t_devspec_refusals)
