/*
 * zattn_cudnn_host_check.c — zattn_cudnn.c's bookkeeping on the host with
 * a fake cuDNN (descriptors that accept everything, an "engine" that
 * writes a known value) and a fake mma kernel: plans built once per
 * (device, shape) and reused, none built while the stream is capturing,
 * out-of-scope calls refused before any cuDNN call, the cache's bound,
 * a spelling whose plan fails its self-check replaced by the next, and
 * self-checks failing in every spelling turning cuDNN off for good. For
 * fp8 (the host reference of zattn_q8_check.c on zero Q, K, V): a new plan
 * checked on two runs, a shape where every fp8 spelling fails refused
 * alone (the bf16 attention runs for it) while other shapes keep fp8. The
 * graph itself (which engine takes it) can only be checked on a GPU.
 */
#include "engine/zimage/cuda/zattn_cudnn.h"

#include <cudnn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_dev, g_capturing, g_plans, g_execs, g_wrong, g_wrong_once;
static int g_wrong_S;   /* fp8: every run at this token count is wrong */
static int g_wrong_2nd; /* fp8: each plan's second run is wrong */

typedef struct fdesc {
    cudnnBackendDescriptorType_t type;
    void *o; /* a variant pack's output pointer */
} fdesc;

cudaError_t cudaGetDevice(int *d)
{
    *d = g_dev;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *cs)
{
    (void)s;
    *cs = g_capturing ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *h)
{
    *h = (cudnnHandle_t)malloc(1);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s)
{
    (void)h, (void)s;
    return CUDNN_STATUS_SUCCESS;
}

const char *cudnnGetErrorString(cudnnStatus_t st)
{
    (void)st;
    return "fake cudnn error";
}

cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t t,
                                           cudnnBackendDescriptor_t *d)
{
    fdesc *f = calloc(1, sizeof *f);
    f->type = t;
    *d = f;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t d)
{
    free(d);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a,
                                       cudnnBackendAttributeType_t t, int64_t n, const void *v)
{
    (void)t, (void)n;
    if (a == CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS) ((fdesc *)d)->o = ((void *const *)v)[3];
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t d)
{
    g_plans += ((fdesc *)d)->type == CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t const d,
                                       cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t,
                                       int64_t req, int64_t *n, void *v)
{
    (void)d, (void)t, (void)req;
    if (a == CUDNN_ATTR_ENGINEHEUR_RESULTS) *n = 1;
    if (a == CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE) *n = 1, *(int64_t *)v = 4096;
    return CUDNN_STATUS_SUCCESS;
}

/* Both "kernels" fill o's rows with one bf16 value: 1.0, or 2.0 for a
 * cuDNN that computes wrongly. */
static void fill(const zc_attn *a, uint16_t v)
{
    size_t n = ((size_t)a->n_items * (size_t)a->S_q - 1) * (size_t)a->ldo +
               (size_t)a->n_heads * (size_t)a->head_dim;
    for (size_t i = 0; i < n; i++) ((uint16_t *)a->o)[i] = v;
}

static zc_attn g_cur; /* the call under way, for the fake engine */

cudnnStatus_t cudnnBackendExecute(cudnnHandle_t h, cudnnBackendDescriptor_t plan,
                                  cudnnBackendDescriptor_t vp)
{
    (void)h, (void)plan;
    if (((fdesc *)vp)->o != g_cur.o) return CUDNN_STATUS_BAD_PARAM;
    if (g_cur.fp8) { /* e4m3 codes: 0 (right: Q, K, V are zero) or 2.0 */
        static int plans_seen, runs;
        runs = g_plans == plans_seen ? runs + 1 : 1, plans_seen = g_plans;
        int wrong = g_cur.S_q == g_wrong_S || (g_wrong_2nd && runs == 2);
        memset(g_cur.o, wrong ? 0x40 : 0,
               ((size_t)g_cur.n_items * (size_t)g_cur.S_q - 1) * (size_t)g_cur.ldo +
                   (size_t)g_cur.n_heads * (size_t)g_cur.head_dim);
        g_execs++;
        return CUDNN_STATUS_SUCCESS;
    }
    int wrong = g_wrong || g_wrong_once;
    g_wrong_once = 0;
    fill(&g_cur, wrong ? 0x4000 : 0x3f80);
    g_execs++;
    return CUDNN_STATUS_SUCCESS;
}

int zc_attention_with(zc_stream s, const zc_attn *a, int impl)
{
    (void)s;
    if (impl != ZC_ATTN_MMA) return 1;
    fill(a, 0x3f80);
    return 0;
}

static int g_fails;
#define EXPECT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) printf("FAIL line %d: %s\n", __LINE__, #c), g_fails++;                           \
    } while (0)

/* A call of items x S rows, 4 heads of hd, rows ld elements apart. */
static zc_attn attn_of(int items, int S, int hd, int ld, const int *len)
{
    zc_attn a = {.ldq = ld,
                 .ldk = ld,
                 .ldv = ld,
                 .ldo = ld,
                 .n_items = items,
                 .S_q = S,
                 .S_kv = S,
                 .n_q = S,
                 .kv_len = len,
                 .n_heads = 4,
                 .n_kv_heads = 4,
                 .head_dim = hd,
                 .scale = 0.125f};
    return a;
}

static int run(zc_attn a)
{
    g_cur = a;
    return zattn_cudnn(NULL, &a);
}

static int call(int items, int S, int hd)
{
    static int len[8] = {8, 8, 8, 8, 8, 8, 8, 8};
    static uint16_t o[8 * 64 * 4 * 128];
    zc_attn a = attn_of(items, S, hd, 4 * hd, len);
    a.q = a.k = a.v = a.o = o;
    return run(a);
}

/* An fp8 call (the DiT's layout: Q, K, V views of one fused e4m3 buffer),
 * items <= 2, S <= 64. */
static int call8(int items, int S)
{
    static int len[2] = {64, 40};
    static uint8_t qkv[2 * 64 * 3 * 256], o[2 * 64 * 256];
    static float dqk[2] = {1.0f, 1.0f};
    zc_attn a = attn_of(items, S, 64, 768, len);
    a.q = qkv, a.k = qkv + 256, a.v = qkv + 512, a.o = o, a.ldo = 256;
    a.fp8 = 1, a.descale_qk = dqk;
    return run(a);
}

/* fp8: two checked runs for a new plan; a shape where they fail in every
 * spelling is refused alone and stays refused; the rest keep fp8. */
static void fp8_shapes(void)
{
    g_dev = 4;
    int plans = g_plans, execs = g_execs;
    EXPECT(call8(1, 32) == 0 && g_plans == plans + 1 && g_execs == execs + 2);
    EXPECT(call8(1, 32) == 0 && g_plans == plans + 1 && g_execs == execs + 3); /* cached */
    g_wrong_S = 48;
    EXPECT(call8(2, 48) == ZATTN_CUDNN_UNSUPPORTED); /* both spellings fail here */
    EXPECT(zattn_cudnn_fp8_disabled() == NULL);
    plans = g_plans, execs = g_execs;
    EXPECT(call8(2, 48) == ZATTN_CUDNN_UNSUPPORTED && g_plans == plans && g_execs == execs);
    g_capturing = 1; /* refused under capture too: a graph takes the bf16 path */
    EXPECT(call8(2, 48) == ZATTN_CUDNN_UNSUPPORTED && g_execs == execs);
    EXPECT(call8(1, 32) == 0 && g_execs == execs + 1);
    g_capturing = 0, g_wrong_S = 0;
    EXPECT(call8(2, 40) == 0 && g_plans == plans + 1); /* a new shape: the first spelling again */
    g_wrong_2nd = 1; /* right once, then wrong: caught by the second run */
    EXPECT(call8(1, 56) == ZATTN_CUDNN_UNSUPPORTED && zattn_cudnn_fp8_disabled() == NULL);
    g_wrong_2nd = 0;
    EXPECT(call8(1, 32) == 0 && call8(2, 40) == 0);
}

int main(void)
{
    zc_attn bad = {.n_items = 1,
                   .S_q = 8,
                   .S_kv = 8,
                   .n_q = 8,
                   .n_heads = 4,
                   .n_kv_heads = 2,
                   .head_dim = 128,
                   .ldq = 512,
                   .ldk = 512,
                   .ldv = 512,
                   .ldo = 512};
    EXPECT(zattn_cudnn(NULL, &bad) == ZATTN_CUDNN_UNSUPPORTED); /* GQA */
    bad.n_kv_heads = 4, bad.causal = 1;
    EXPECT(zattn_cudnn(NULL, &bad) == ZATTN_CUDNN_UNSUPPORTED);
    bad.causal = 0, bad.n_q = 5;
    EXPECT(zattn_cudnn(NULL, &bad) == ZATTN_CUDNN_UNSUPPORTED);
    bad.n_q = 8, bad.head_dim = 32;
    EXPECT(zattn_cudnn(NULL, &bad) == ZATTN_CUDNN_UNSUPPORTED);
    EXPECT(g_plans == 0 && g_execs == 0);
    EXPECT(call(2, 64, 128) == 0 && g_plans == 1 && g_execs == 1); /* built, self-checked */
    EXPECT(call(2, 64, 128) == 0 && g_plans == 1 && g_execs == 2); /* cached */
    g_capturing = 1;
    EXPECT(call(2, 64, 128) == 0 && g_execs == 3);                       /* cached: runs captured */
    EXPECT(call(1, 64, 128) == ZATTN_CUDNN_UNSUPPORTED && g_plans == 1); /* not built */
    g_capturing = 0, g_dev = 1;
    EXPECT(call(2, 64, 128) == 0 && g_plans == 2); /* per device */
    g_dev = 0;
    for (int S = 1; S <= 127; S++) EXPECT(call(1, S, 64) == 0); /* device 0: 128 plans */
    EXPECT(g_plans == 129);
    EXPECT(call(1, 140, 64) == ZATTN_CUDNN_UNSUPPORTED && g_plans == 129); /* full */
    EXPECT(zattn_cudnn_disabled() == NULL);
    /* The first spelling's plan computes wrongly: the next one is built,
     * checked and kept; cuDNN stays on. */
    const char *first = zattn_cudnn_spelling();
    g_dev = 3, g_wrong_once = 1;
    int before = g_plans;
    EXPECT(call(1, 16, 128) == 0 && g_plans == before + 2);
    EXPECT(zattn_cudnn_disabled() == NULL);
    EXPECT(zattn_cudnn_spelling() && first && strcmp(zattn_cudnn_spelling(), first) != 0);
    EXPECT(call(1, 16, 128) == 0 && g_plans == before + 2); /* cached */
    fp8_shapes();
    g_dev = 2, g_wrong = 1;
    EXPECT(call(1, 8, 128) == ZATTN_CUDNN_FAILED); /* the self-check catches it */
    EXPECT(zattn_cudnn_disabled() != NULL);
    g_wrong = 0, g_dev = 0;
    EXPECT(call(2, 64, 128) == ZATTN_CUDNN_UNSUPPORTED); /* off for good */
    printf("zattn_cudnn host check: %s (%d failed)\n", g_fails ? "FAIL" : "PASS", g_fails);
    return g_fails ? 1 : 0;
}
