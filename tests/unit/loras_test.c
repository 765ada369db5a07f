/*
 * loras_test.c — the LoRA registry (serve/loras.c) over a fake engine whose
 * "LoRA files" are text: the directory scan and name rules, lazy loading
 * once per engine, holds that outlive a removal or a replacement, the LRU
 * bound that never closes a held LoRA, registration by file (no path
 * escapes) and by upload (a bad file leaves nothing behind), and many
 * threads acquiring and releasing at once.
 *
 * A fake LoRA file is "OK <bytes>" (it then holds <bytes> bytes), "SLOW
 * <bytes>" (the same, once the test opens the gate) or anything else,
 * which the fake engine refuses as not matching its model.
 */
#include "core/err.h"
#include "core/log.h"
#include "engine/engine_impl.h"
#include "harness.h"
#include "serve/kind_generate.h"
#include "serve/loras.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ fake engine */

static atomic_int g_opens, g_closes;
static atomic_int g_in_slow_open, g_gate; /* "SLOW <bytes>" files wait for g_gate */

struct fake_lora {
    struct px_engine_lora_head head;
    unsigned long long bytes;
};

static int fake_lora_open(px_engine *e, const char *path, px_engine_lora **out, char *err,
                          size_t errlen)
{
    (void)e;
    FILE *f = fopen(path, "r");
    if (!f) return px_errf(err, errlen, PX_ENOTFOUND, "cannot open %s", path);
    unsigned long long bytes = 0;
    char word[8] = "";
    int ok = fscanf(f, "%7s %llu", word, &bytes) == 2 && (!strcmp(word, "OK") ||
                                                           !strcmp(word, "SLOW"));
    fclose(f);
    if (ok && !strcmp(word, "SLOW")) {
        atomic_store(&g_in_slow_open, 1);
        while (!atomic_load(&g_gate)) usleep(1000);
    }
    if (!ok)
        return px_errf(err, errlen, PX_ECORRUPT, "fake: %s: keys did not match: bogus.weight",
                       path);
    struct fake_lora *l = calloc(1, sizeof *l);
    l->bytes = bytes;
    *out = (px_engine_lora *)l;
    atomic_fetch_add(&g_opens, 1);
    return 0;
}

static void fake_lora_close(px_engine_lora *p)
{
    atomic_fetch_add(&g_closes, 1);
    free(p);
}

static int fake_lora_describe(const px_engine_lora *p, px_buf *out)
{
    const struct fake_lora *l = (const struct fake_lora *)p;
    return px_buf_printf(out, "\"rank\":4,\"alpha\":4,\"spelling\":\"peft\",\"bytes\":%llu",
                         l->bytes);
}

static int fake_run(px_engine *e, px_engine_item *items, int n)
{
    (void)e, (void)items, (void)n;
    return PX_EINVAL;
}

static const px_engine_ops fake_ops = {
    .name = "fakegen",
    .kind = PX_ENGINE_GENERATE,
    .run = fake_run,
    .lora_open = fake_lora_open,
    .lora_close = fake_lora_close,
    .lora_describe = fake_lora_describe,
};
static const px_engine_ops plain_ops = {.name = "plain", .kind = PX_ENGINE_GENERATE,
                                        .run = fake_run};

static px_engine g_e1 = {.ops = &fake_ops, .device = "cpu"};
static px_engine g_e2 = {.ops = &fake_ops, .device = "cpu"};
static px_engine g_plain = {.ops = &plain_ops, .device = "cpu"};

/* ------------------------------------------------------------ helpers */

static void put_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) px_tfail(__FILE__, __LINE__, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static int file_exists(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

/* A registry over a fresh directory with a.safetensors, b.safetensors and
 * c.safetensors of 100 bytes each. */
static px_loras *three(uint64_t cache)
{
    const char *dir = px_test_tmpdir();
    put_file(dir, "a.safetensors", "OK 100");
    put_file(dir, "b.safetensors", "OK 100");
    put_file(dir, "c.safetensors", "OK 100");
    px_loras *r;
    char err[256];
    int rc = px_loras_open(dir, cache, &r, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "open: %s", err);
    return r;
}

static px_lora_hold *get(px_loras *r, px_engine *e, const char *name)
{
    px_lora_hold *h = NULL;
    char err[256];
    int rc = px_loras_acquire(r, e, name, &h, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "acquire %s: %s", name, err);
    return h;
}

/* ------------------------------------------------------------ tests */

TEST(t_names)
{
    T_TRUE(px_lora_name_ok("style"));
    T_TRUE(px_lora_name_ok("Z-Image_v1.2"));
    T_TRUE(px_lora_name_ok("_x"));
    T_TRUE(!px_lora_name_ok(""));
    T_TRUE(!px_lora_name_ok(NULL));
    T_TRUE(!px_lora_name_ok(".hidden"));
    T_TRUE(!px_lora_name_ok("-dash"));
    T_TRUE(!px_lora_name_ok("a/b"));
    T_TRUE(!px_lora_name_ok(".."));
    T_TRUE(!px_lora_name_ok("sp ace"));
    T_TRUE(!px_lora_name_ok("quo\"te"));
    char longname[PX_LORA_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[PX_LORA_NAME_MAX + 1] = 0;
    T_TRUE(!px_lora_name_ok(longname));
    longname[PX_LORA_NAME_MAX] = 0;
    T_TRUE(px_lora_name_ok(longname));
}

TEST(t_scan_lists_safetensors_files)
{
    const char *dir = px_test_tmpdir();
    put_file(dir, "style.safetensors", "OK 10");
    put_file(dir, "B2.SafeTensors", "OK 10");
    put_file(dir, ".hidden.safetensors", "OK 10");
    put_file(dir, "sp ace.safetensors", "OK 10");
    put_file(dir, "notes.txt", "OK 10");
    char sub[512];
    snprintf(sub, sizeof sub, "%s/dir.safetensors", dir);
    T_EQ_INT(mkdir(sub, 0755), 0);
    px_loras *r;
    char err[256], names[256];
    T_EQ_INT(px_loras_open(dir, 0, &r, err, sizeof err), 0);
    px_loras_names(r, names, sizeof names);
    T_EQ_STR(names, "B2, style");
    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_loras_json(r, NULL, &b), 0);
    T_TRUE(strstr((char *)b.data, "\"name\":\"style\",\"file\":\"style.safetensors\","
                                  "\"size_bytes\":5,\"loaded\":false") != NULL);
    px_buf_free(&b);
    px_loras_close(r);

    char missing[512];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    T_EQ_INT(px_loras_open(missing, 0, &r, err, sizeof err), PX_ENOTFOUND);
    T_CONTAINS(err, "nope");
}

TEST(t_lazy_load_once_per_engine)
{
    atomic_store(&g_opens, 0);
    atomic_store(&g_closes, 0);
    px_loras *r = three(0);
    T_EQ_INT(atomic_load(&g_opens), 0); /* nothing loads before it is used */
    px_lora_hold *h1 = get(r, &g_e1, "a"), *h2 = get(r, &g_e1, "a");
    T_TRUE(h1 == h2);
    T_EQ_INT(atomic_load(&g_opens), 1);
    px_lora_hold *h3 = get(r, &g_e2, "a"); /* another engine: its own copy */
    T_TRUE(h3 != h1);
    T_TRUE(px_lora_hold_lora(h3) != px_lora_hold_lora(h1));
    T_EQ_INT(atomic_load(&g_opens), 2);
    px_loras_stats st;
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.registered, 3);
    T_EQ_INT(st.loaded, 2);
    T_EQ_INT(st.held, 3);
    T_EQ_INT(st.loaded_bytes, 200);

    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_loras_json(r, "a", &b), 0);
    T_TRUE(strstr((char *)b.data, "\"loaded\":true") != NULL);
    T_TRUE(strstr((char *)b.data, "\"engine\":\"fakegen\",\"rank\":4,\"alpha\":4,"
                                  "\"spelling\":\"peft\",\"bytes\":100,\"load_ms\":") != NULL);
    T_TRUE(strstr((char *)b.data, "\"in_use\":2") != NULL);
    px_buf_free(&b);

    px_loras_release(r, h1);
    px_loras_release(r, h2);
    px_loras_release(r, h3);
    T_EQ_INT(atomic_load(&g_closes), 0); /* kept loaded: no bound */
    T_TRUE(get(r, &g_e1, "a") == h1);    /* and reused */
    px_loras_release(r, h1);
    T_EQ_INT(atomic_load(&g_opens), 2);
    px_loras_close(r);
    T_EQ_INT(atomic_load(&g_closes), 2);
}

TEST(t_unknown_name_lists_available)
{
    px_loras *r = three(0);
    px_lora_hold *h = (px_lora_hold *)1;
    char err[256];
    T_EQ_INT(px_loras_acquire(r, &g_e1, "zzz", &h, err, sizeof err), PX_ENOTFOUND);
    T_TRUE(h == NULL);
    T_CONTAINS(err, "'zzz'");
    T_CONTAINS(err, "a, b, c");
    T_EQ_INT(px_loras_remove(r, "zzz", err, sizeof err), PX_ENOTFOUND);
    px_loras_close(r);
}

TEST(t_engine_without_loras)
{
    px_loras *r = three(0);
    px_lora_hold *h;
    char err[256];
    T_EQ_INT(px_loras_acquire(r, &g_plain, "a", &h, err, sizeof err), PX_EUNSUP);
    T_CONTAINS(err, "plain");
    px_loras_stats st;
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.loaded, 0);
    px_loras_close(r);
}

TEST(t_remove_while_held)
{
    atomic_store(&g_opens, 0);
    atomic_store(&g_closes, 0);
    px_loras *r = three(0);
    px_lora_hold *h = get(r, &g_e1, "b");
    char err[256], names[64];
    T_EQ_INT(px_loras_remove(r, "b", err, sizeof err), 0);
    px_loras_names(r, names, sizeof names);
    T_EQ_STR(names, "a, c");
    T_EQ_INT(atomic_load(&g_closes), 0); /* the request still runs with it */
    T_TRUE(px_lora_hold_lora(h) != NULL);
    px_lora_hold *h2;
    T_EQ_INT(px_loras_acquire(r, &g_e1, "b", &h2, err, sizeof err), PX_ENOTFOUND);
    px_loras_stats st;
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.loaded, 1);
    T_EQ_INT(st.held, 1);
    px_loras_release(r, h); /* the last holder closes it */
    T_EQ_INT(atomic_load(&g_closes), 1);
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.loaded, 0);
    T_EQ_INT(st.loaded_bytes, 0);
    T_TRUE(file_exists(px_test_tmpdir(), "b.safetensors")); /* the file stays */

    /* Removing an unheld loaded one closes it at once. */
    px_loras_release(r, get(r, &g_e1, "a"));
    T_EQ_INT(px_loras_remove(r, "a", err, sizeof err), 0);
    T_EQ_INT(atomic_load(&g_closes), 2);
    px_loras_close(r);
}

TEST(t_lru_bound_spares_held)
{
    atomic_store(&g_opens, 0);
    atomic_store(&g_closes, 0);
    px_loras *r = three(250); /* two of the three fit */
    px_lora_hold *a = get(r, &g_e1, "a"), *b = get(r, &g_e1, "b");
    px_loras_release(r, a);
    px_loras_release(r, b);
    px_loras_release(r, get(r, &g_e1, "a")); /* a is now the most recent: b goes first */
    px_lora_hold *c = get(r, &g_e1, "c");
    T_EQ_INT(atomic_load(&g_closes), 1);
    px_buf buf;
    px_buf_init(&buf, 1 << 20);
    T_EQ_INT(px_loras_json(r, "b", &buf), 0);
    T_TRUE(strstr((char *)buf.data, "\"loaded\":false") != NULL);
    px_buf_free(&buf);
    px_loras_stats st;
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.loaded_bytes, 200);

    /* Held LoRAs are never closed for the bound: all three held = 300. */
    a = get(r, &g_e1, "a");
    b = get(r, &g_e1, "b"); /* loads again; a and c are held: nothing to evict */
    T_EQ_INT(atomic_load(&g_opens), 4);
    T_EQ_INT(atomic_load(&g_closes), 1);
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.loaded_bytes, 300);
    px_loras_release(r, a); /* a is unheld and the least recent: out */
    T_EQ_INT(atomic_load(&g_closes), 2);
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.loaded_bytes, 200);
    px_loras_release(r, b);
    px_loras_release(r, c);
    T_EQ_INT(atomic_load(&g_closes), 2); /* 200 fits */
    px_loras_close(r);
    T_EQ_INT(atomic_load(&g_closes), 4);
}

TEST(t_add_file_refuses_paths)
{
    px_loras *r = three(0);
    char err[256];
    const char *bad[] = {"../a.safetensors", "/etc/passwd", "sub/a.safetensors",
                         ".hidden.safetensors", "a.txt", "..", "a\\b.safetensors",
                         ".safetensors"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        T_EQ_INT(px_loras_add_file(r, &g_e1, "x", bad[i], NULL, err, sizeof err), PX_EINVAL);
        T_TRUE(err[0] != 0);
    }
    T_EQ_INT(px_loras_add_file(r, &g_e1, "../x", "a.safetensors", NULL, err, sizeof err),
             PX_EINVAL);
    T_EQ_INT(px_loras_add_file(r, &g_e1, "x", "none.safetensors", NULL, err, sizeof err),
             PX_ENOTFOUND);
    char names[64];
    px_loras_names(r, names, sizeof names);
    T_EQ_STR(names, "a, b, c");
    px_loras_close(r);
}

TEST(t_add_file_checks_and_replaces)
{
    atomic_store(&g_opens, 0);
    atomic_store(&g_closes, 0);
    px_loras *r = three(0);
    const char *dir = px_test_tmpdir();
    put_file(dir, "broken.safetensors", "not a lora");
    put_file(dir, "v2.safetensors", "OK 50");
    char err[256];
    int replaced = -1;
    T_EQ_INT(px_loras_add_file(r, &g_e1, "x", "broken.safetensors", &replaced, err, sizeof err),
             PX_ECORRUPT);
    T_CONTAINS(err, "bogus.weight"); /* the engine's message, naming the file only */
    T_CONTAINS(err, "fake: broken.safetensors: keys");
    px_lora_hold *h;
    T_EQ_INT(px_loras_acquire(r, &g_e1, "x", &h, err, sizeof err), PX_ENOTFOUND);

    px_lora_hold *old = get(r, &g_e1, "a");
    T_EQ_INT(px_loras_add_file(r, &g_e1, "a", "v2.safetensors", &replaced, err, sizeof err), 0);
    T_EQ_INT(replaced, 1);
    T_EQ_INT(atomic_load(&g_opens), 2); /* opened to check it, kept loaded */
    px_lora_hold *now = get(r, &g_e1, "a");
    T_TRUE(now != old);
    T_EQ_INT(atomic_load(&g_opens), 2);
    T_EQ_INT(atomic_load(&g_closes), 0); /* the old one is still held */
    px_loras_release(r, old);
    T_EQ_INT(atomic_load(&g_closes), 1);
    px_loras_release(r, now);
    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_loras_json(r, "a", &b), 0);
    T_TRUE(strstr((char *)b.data, "\"file\":\"v2.safetensors\",\"size_bytes\":5,"
                                  "\"loaded\":true") != NULL);
    px_buf_free(&b);
    T_EQ_INT(px_loras_add_file(r, &g_e1, "new", "b.safetensors", &replaced, err, sizeof err), 0);
    T_EQ_INT(replaced, 0);
    px_loras_close(r);
}

TEST(t_upload)
{
    atomic_store(&g_opens, 0);
    px_loras *r = three(0);
    const char *dir = px_test_tmpdir();
    char err[256];
    int replaced = -1, files = count_files(dir);
    const char good[] = "OK 77";
    T_EQ_INT(px_loras_add_upload(r, &g_e1, "up", good, strlen(good), &replaced, err, sizeof err),
             0);
    T_EQ_INT(replaced, 0);
    T_TRUE(file_exists(dir, "up.safetensors"));
    T_EQ_INT(count_files(dir), files + 1);
    px_lora_hold *h = get(r, &g_e1, "up");
    T_EQ_INT(atomic_load(&g_opens), 1);
    px_loras_release(r, h);

    /* A bad upload is refused with the engine's message and leaves nothing. */
    const char bad[] = "garbage";
    T_EQ_INT(px_loras_add_upload(r, &g_e1, "worse", bad, strlen(bad), NULL, err, sizeof err),
             PX_ECORRUPT);
    T_CONTAINS(err, "fake: the uploaded file: keys");
    T_CONTAINS(err, "bogus.weight");
    T_EQ_INT(count_files(dir), files + 1);
    T_TRUE(!file_exists(dir, "worse.safetensors"));
    /* ... and a bad replacement keeps the old file and registration. */
    T_EQ_INT(px_loras_add_upload(r, &g_e1, "up", bad, strlen(bad), NULL, err, sizeof err),
             PX_ECORRUPT);
    px_loras_release(r, get(r, &g_e1, "up"));
    T_EQ_INT(count_files(dir), files + 1);

    /* Another name's file cannot be overwritten by an upload. */
    T_EQ_INT(px_loras_add_file(r, &g_e1, "alias", "up.safetensors", NULL, err, sizeof err), 0);
    T_EQ_INT(px_loras_add_upload(r, &g_e1, "up", good, strlen(good), NULL, err, sizeof err),
             PX_EINVAL);
    T_EQ_INT(px_loras_add_upload(r, &g_e1, "x/../../y", good, strlen(good), NULL, err,
                                 sizeof err), PX_EINVAL);
    T_EQ_INT(px_loras_add_upload(r, &g_plain, "p", good, strlen(good), NULL, err, sizeof err),
             PX_EUNSUP);
    T_EQ_INT(count_files(dir), files + 1);
    px_loras_close(r);
}

struct slow_acquire {
    px_loras *r;
    int rc;
    px_lora_hold *h;
    char err[256];
};

static void *slow_main(void *arg)
{
    struct slow_acquire *a = arg;
    a->rc = px_loras_acquire(a->r, &g_e1, "slow", &a->h, a->err, sizeof a->err);
    return NULL;
}

TEST(t_remove_does_not_wait_for_a_load)
{
    atomic_store(&g_opens, 0);
    atomic_store(&g_closes, 0);
    const char *dir = px_test_tmpdir();
    put_file(dir, "a.safetensors", "OK 10");
    put_file(dir, "slow.safetensors", "SLOW 10");
    px_loras *r;
    char err[256];
    T_EQ_INT(px_loras_open(dir, 0, &r, err, sizeof err), 0);
    px_loras_release(r, get(r, &g_e1, "a"));
    struct slow_acquire a = {.r = r};
    pthread_t th;
    T_EQ_INT(pthread_create(&th, NULL, slow_main, &a), 0);
    while (!atomic_load(&g_in_slow_open)) usleep(1000);
    /* While it reads the file (loads run one at a time): loaded LoRAs are
     * still served, the list answers, and the name can be removed. */
    px_loras_release(r, get(r, &g_e1, "a"));
    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_loras_json(r, NULL, &b), 0);
    px_buf_free(&b);
    T_EQ_INT(px_loras_remove(r, "slow", err, sizeof err), 0);
    atomic_store(&g_gate, 1);
    pthread_join(th, NULL);
    T_EQ_INT(a.rc, PX_ENOTFOUND); /* what it read is not kept */
    T_TRUE(a.h == NULL);
    T_EQ_INT(atomic_load(&g_opens), 2);
    T_EQ_INT(atomic_load(&g_closes), 1);
    px_loras_stats st;
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.loaded, 1);
    px_loras_close(r);
}

/* Threads acquire and release random names on two engines with a cache
 * that holds about one LoRA, while another removes and re-registers one. */
struct churn {
    px_loras *r;
    int seed;
    atomic_int *failures;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    const char *names[] = {"a", "b", "c"};
    px_engine *engines[] = {&g_e1, &g_e2};
    unsigned s = (unsigned)c->seed;
    char err[256];
    for (int i = 0; i < 2000; i++) {
        s = s * 1103515245u + 12345u;
        px_lora_hold *h[2] = {NULL, NULL};
        for (int k = 0; k < 2; k++) {
            int rc = px_loras_acquire(c->r, engines[(s >> 8) & 1], names[(s >> (10 + k)) % 3],
                                      &h[k], err, sizeof err);
            if (rc && rc != PX_ENOTFOUND) atomic_fetch_add(c->failures, 1);
            if (!rc && !px_lora_hold_lora(h[k])) atomic_fetch_add(c->failures, 1);
        }
        px_loras_release(c->r, h[1]);
        px_loras_release(c->r, h[0]);
    }
    return NULL;
}

static void *remover_main(void *arg)
{
    struct churn *c = arg;
    char err[256];
    for (int i = 0; i < 300; i++) {
        px_loras_remove(c->r, "b", err, sizeof err);
        if (px_loras_add_file(c->r, &g_e1, "b", "b.safetensors", NULL, err, sizeof err))
            atomic_fetch_add(c->failures, 1);
    }
    return NULL;
}

TEST(t_threads)
{
    atomic_store(&g_opens, 0);
    atomic_store(&g_closes, 0);
    px_log_set_level(PX_LOG_WARN); /* thousands of loads */
    px_loras *r = three(150);
    atomic_int failures = 0;
    struct churn c[5];
    pthread_t th[5];
    for (int i = 0; i < 5; i++) {
        c[i] = (struct churn){r, i + 1, &failures};
        pthread_create(&th[i], NULL, i == 4 ? remover_main : churn_main, &c[i]);
    }
    for (int i = 0; i < 5; i++) pthread_join(th[i], NULL);
    T_EQ_INT(atomic_load(&failures), 0);
    px_loras_stats st;
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.held, 0);
    T_EQ_INT(st.registered, 3);
    T_TRUE(st.loaded_bytes <= 150); /* nothing held: back within the bound */
    T_EQ_INT(atomic_load(&g_opens) - atomic_load(&g_closes), st.loaded);
    px_loras_close(r);
    T_EQ_INT(atomic_load(&g_opens), atomic_load(&g_closes));
}

/* ------------------------------------------------------------ generate kind */

struct gen {
    px_serve_config cfg;
    px_kind_env env;
    px_kind_ctx ctx;
};

static void gen_env(struct gen *g, px_loras *r)
{
    px_config_defaults(&g->cfg);
    g->env = (px_kind_env){.cfg = &g->cfg, .loras = r};
    g->ctx = (px_kind_ctx){.env = &g->env, .engine = &g_e1, .dialect = PX_DIALECT_SEED,
                           .content_type = "application/json", .host = ""};
}

/* parse + check of a generate body; *req is set either way. */
static int gen_check(struct gen *g, const char *body, void **req, char *err, size_t errlen)
{
    px_kind_opts o = {.priority = -1};
    err[0] = 0;
    int rc = px_kind_generate.parse(&g->ctx, (const uint8_t *)body, strlen(body), req, &o, err,
                                    errlen);
    if (!rc) rc = px_kind_generate.check(&g->ctx, *req, err, errlen);
    return rc;
}

TEST(t_generate_items_carry_loras)
{
    px_loras *r = three(0);
    struct gen g;
    gen_env(&g, r);
    void *q1 = NULL, *q2 = NULL, *q3 = NULL;
    char err[320];
    T_EQ_INT(gen_check(&g, "{\"prompt\":\"x\",\"width\":64,\"height\":64,\"num_inference_steps\":2,"
                           "\"loras\":[{\"name\":\"a\",\"scale\":0.5},{\"name\":\"b\"}]}",
                       &q1, err, sizeof err), 0);
    T_EQ_INT(gen_check(&g, "{\"prompt\":\"y\",\"width\":64,\"height\":64,\"num_inference_steps\":2,"
                           "\"loras\":[{\"name\":\"c\",\"scale\":-2}]}", &q2, err, sizeof err), 0);
    T_EQ_INT(gen_check(&g, "{\"prompt\":\"z\",\"width\":64,\"height\":64,\"num_inference_steps\":2}",
                       &q3, err, sizeof err), 0);
    px_loras_stats st;
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.held, 3); /* held from check on */
    int n = 0;
    px_sched_item it1[1] = {{0}}, it2[1] = {{0}}, it3[1] = {{0}};
    T_EQ_INT(px_kind_generate.prepare(&g.ctx, q1, &n, err, sizeof err), 0);
    T_EQ_INT(n, 1);
    px_kind_generate.prepare(&g.ctx, q2, &n, err, sizeof err);
    px_kind_generate.prepare(&g.ctx, q3, &n, err, sizeof err);
    px_kind_generate.make_items(&g.ctx, q1, it1, 1);
    px_kind_generate.make_items(&g.ctx, q2, it2, 1);
    px_kind_generate.make_items(&g.ctx, q3, it3, 1);
    const px_engine_item *e1 = it1[0].payload, *e2 = it2[0].payload, *e3 = it3[0].payload;
    T_EQ_INT(e1->gen.nloras, 2);
    px_lora_hold *ha = get(r, &g_e1, "a"), *hc = get(r, &g_e1, "c");
    T_TRUE(e1->gen.loras[0].lora == px_lora_hold_lora(ha));
    T_NEAR(e1->gen.loras[0].scale, 0.5, 0);
    T_NEAR(e1->gen.loras[1].scale, 1.0, 0); /* the default */
    T_EQ_INT(e2->gen.nloras, 1);
    T_TRUE(e2->gen.loras[0].lora == px_lora_hold_lora(hc));
    T_NEAR(e2->gen.loras[0].scale, -2.0, 0);
    T_EQ_INT(e3->gen.nloras, 0);
    px_loras_release(r, ha);
    px_loras_release(r, hc);
    /* Different LoRAs (or none) share a batch: the engine applies them per item. */
    T_EQ_INT(it1[0].key, it2[0].key);
    T_EQ_INT(it1[0].key, it3[0].key);

    /* Released when the engine is done (again is harmless), not at free. */
    px_kind_generate.release(q1);
    px_kind_generate.release(q1);
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.held, 1);
    px_kind_generate.free(q1);
    px_kind_generate.free(q2); /* free lets go of what release did not */
    px_kind_generate.free(q3);
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.held, 0);
    px_loras_close(r);
}

TEST(t_generate_refuses_bad_loras)
{
    px_loras *r = three(0);
    const char *dir = px_test_tmpdir();
    put_file(dir, "broken.safetensors", "nonsense");
    px_loras_close(r);
    char err[320];
    T_EQ_INT(px_loras_open(dir, 0, &r, err, sizeof err), 0);
    struct gen g;
    gen_env(&g, r);
    static const struct {
        const char *loras, *want;
        int code;
    } cases[] = {
        {"[{\"name\":\"zzz\"}]", "no LoRA named 'zzz' (available: a, b, broken, c)", PX_EINVAL},
        {"[{\"name\":\"broken\"}]", "bogus.weight", PX_ECORRUPT},
        {"[{\"name\":\"a\",\"scale\":4.5}]", "from -4 to 4", PX_EINVAL},
        {"[{\"name\":\"a\",\"scale\":\"1\"}]", "\"scale\": a number", PX_EINVAL},
        {"[{\"name\":\"a\"},{\"name\":\"a\",\"scale\":2}]", "named twice", PX_EINVAL},
        {"[{\"name\":\"../a\"}]", "not a LoRA name", PX_EINVAL},
        {"[{\"scale\":1}]", "no \"name\"", PX_EINVAL},
        {"[{\"name\":\"a\",\"weight\":1}]", "got 'weight'", PX_EINVAL},
        {"[\"a\"]", "must be an object", PX_EINVAL},
        {"{\"name\":\"a\"}", "must be an array", PX_EINVAL},
        {"[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"},{\"name\":\"d\"},{\"name\":\"e\"},"
         "{\"name\":\"f\"},{\"name\":\"g\"},{\"name\":\"h\"},{\"name\":\"i\"}]", "at most 8", PX_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[512];
        snprintf(body, sizeof body, "{\"prompt\":\"x\",\"width\":64,\"height\":64,\"loras\":%s}",
                 cases[i].loras);
        void *q = NULL;
        T_EQ_INT(gen_check(&g, body, &q, err, sizeof err), cases[i].code);
        T_CONTAINS(err, cases[i].want);
        T_CONTAINS(err, "field 'loras'");
        px_kind_generate.free(q);
    }
    px_loras_stats st;
    px_loras_stats_get(r, &st);
    T_EQ_INT(st.held, 0);
    /* An engine without LoRAs, and a server without a registry: 400s. */
    void *q = NULL;
    g.ctx.engine = &g_plain;
    T_EQ_INT(gen_check(&g, "{\"prompt\":\"x\",\"loras\":[{\"name\":\"a\"}]}", &q, err, sizeof err),
             PX_EINVAL);
    T_CONTAINS(err, "takes no LoRAs");
    px_kind_generate.free(q);
    gen_env(&g, NULL);
    T_EQ_INT(gen_check(&g, "{\"prompt\":\"x\",\"loras\":[{\"name\":\"a\"}]}", &q, err, sizeof err),
             PX_EINVAL);
    T_CONTAINS(err, "--lora-dir");
    px_kind_generate.free(q);
    T_EQ_INT(gen_check(&g, "{\"prompt\":\"x\",\"loras\":[]}", &q, err, sizeof err), 0);
    px_kind_generate.free(q);
    px_loras_close(r);
}

TEST_MAIN(t_names, t_scan_lists_safetensors_files, t_lazy_load_once_per_engine,
          t_unknown_name_lists_available, t_engine_without_loras, t_remove_while_held,
          t_lru_bound_spares_held, t_add_file_refuses_paths, t_add_file_checks_and_replaces,
          t_upload, t_remove_does_not_wait_for_a_load, t_threads, t_generate_items_carry_loras, t_generate_refuses_bad_loras)
