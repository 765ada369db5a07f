/*
 * zattn_cudnn.c — zattn_cudnn.h: the DiT's attention as a cuDNN backend
 * operation graph, its execution plans cached per device and shape.
 *
 * The graph (the spelling cuDNN's fused flash-attention engine recognises;
 * every intermediate is a virtual fp32 tensor, so none is ever stored):
 *
 *   S  = matmul(Q [b,h,s_q,d], Kᵀ [b,h,d,s_kv])        Q, K, V as strided
 *   S' = S · scale          (a by-value scalar)        views of the caller's
 *   r  = index of S' along 2, c = index along 3        rows: no copies
 *   m  = (r < seq_q[b]) and (c < seq_kv[b])
 *   S" = m ? S' : -1e30     (binary select)
 *   P  = exp(S" − max S") / Σ exp(S" − max S")       (reductions over keys)
 *   O  = matmul(P, V [b,h,s_kv,d])
 *
 * seq_kv is the caller's kv_len (int32, device); seq_q a per-plan device
 * array of S_q (every query row computed, so padded rows are finite).
 *
 * cuDNN's fused engine takes a graph only in the exact spelling it
 * recognises, which has changed between releases, and that is only known
 * on a GPU: so several spellings (k_spell) are tried in order, the first an
 * engine takes wins. They differ in: the two products' M/N/K overrides
 * (the rows and keys each item really has, from seq_q/seq_kv), the softmax
 * statistics (max + log Σ) as a virtual tensor (the inference form), a
 * stored output (the training form) or absent, P rounded to bf16 before
 * the second product (the fused kernel's tensor cores take bf16) or fp32,
 * and the comparisons' types (boolean, or int32 as older releases had).
 */
#include "engine/zimage/cuda/zattn_cudnn.h"

#include "core/log.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEV   16
#define MAX_PLANS 128 /* per device (batch sizes x token counts); never evicted (captured graphs use them) */
#define MAX_DESC  96 /* descriptors of one graph (~65 used) */
#define MAX_CFGS  8  /* heuristic results tried */
#define CHECK_TOL 2e-2
#define MAX_WS    ((int64_t)256 << 20) /* bytes of workspace a plan may have */

/* The deprecated handle attributes (cuDNN 9.x marks them deprecated; the
 * 9.0-9.x libraries a device may have still want them). By number, so the
 * deprecation warning does not fail the -Werror build. */
#define ATTR_OPGRAPH_HANDLE ((cudnnBackendAttributeName_t)800)
#define ATTR_PLAN_HANDLE    ((cudnnBackendAttributeName_t)400)

/* Unique ids of the tensors the variant pack names; virtual ones count up
 * from U_VIRTUAL. */
enum { U_Q = 1, U_K, U_V, U_O, U_SCALE, U_NEG, U_SEQ_Q, U_SEQ_KV, U_STATS, U_VIRTUAL = 100 };

/* A graph under construction: its descriptors (all destroyed together)
 * and the first failure (every helper does nothing once st is set). */
typedef struct gb {
    cudnnBackendDescriptor_t all[MAX_DESC];
    int n_all;
    cudnnBackendDescriptor_t ops[24];
    int n_ops;
    cudnnStatus_t st;
    const char *what; /* the step that failed */
    int64_t next_uid;
} gb;

typedef struct plan_key {
    int n_items, S_q, S_kv, heads, hd, ldq, ldk, ldv, ldo;
    uint32_t scale_bits;
} plan_key;

typedef struct plan {
    plan_key key;
    gb *g;                        /* the graph's descriptors, kept alive */
    cudnnBackendDescriptor_t exe; /* the execution plan */
    void *ws;                     /* its workspace (device), made at build */
    int *seq_q;                   /* device, n_items x S_q */
    float *scale_dev;             /* device, the scale (spellings with sdev) */
    float *stats;                 /* device, the training form only */
    float scale, neg;             /* by-value operands */
    int with_stats;               /* the graph stores the statistics */
    const struct spell *spell;    /* the spelling an engine took */
} plan;

typedef struct dev_state {
    cudnnHandle_t h;
    int n;
    plan plans[MAX_PLANS];
} dev_state;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static dev_state g_dev[MAX_DEV];
static char g_off[800]; /* non-empty: cuDNN attention is off, and why */

/* ------------------------------------------------------ descriptor helpers */

static cudnnBackendDescriptor_t mk(gb *g, cudnnBackendDescriptorType_t t, const char *what)
{
    cudnnBackendDescriptor_t d = NULL;
    if (g->st) return NULL;
    if (g->n_all == MAX_DESC) {
        g->st = CUDNN_STATUS_INTERNAL_ERROR, g->what = "too many descriptors";
        return NULL;
    }
    if ((g->st = cudnnBackendCreateDescriptor(t, &d))) {
        g->what = what;
        return NULL;
    }
    return g->all[g->n_all++] = d;
}

static void set(gb *g, cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a,
                cudnnBackendAttributeType_t t, int64_t n, const void *v, const char *what)
{
    if (g->st) return;
    if ((g->st = cudnnBackendSetAttribute(d, a, t, n, v))) g->what = what;
}

static void fin(gb *g, cudnnBackendDescriptor_t d, const char *what)
{
    if (g->st) return;
    if ((g->st = cudnnBackendFinalize(d))) g->what = what;
}

static void gb_free(gb *g)
{
    for (int i = g->n_all - 1; i >= 0; i--) cudnnBackendDestroyDescriptor(g->all[i]);
    free(g);
}

/* A 4-D tensor: uid < 0 makes a virtual one (packed strides, a fresh id). */
static cudnnBackendDescriptor_t tensor(gb *g, int64_t uid, cudnnDataType_t dt, const int64_t dim[4],
                                       const int64_t *str, bool by_value)
{
    int64_t packed[4] = {dim[1] * dim[2] * dim[3], dim[2] * dim[3], dim[3], 1};
    bool virt = uid < 0;
    int64_t align = dt == CUDNN_DATA_BFLOAT16 || virt ? 16 : 4;
    if (virt) uid = g->next_uid++;
    cudnnBackendDescriptor_t t = mk(g, CUDNN_BACKEND_TENSOR_DESCRIPTOR, "tensor");
    set(g, t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt, "tensor type");
    set(g, t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dim, "tensor dims");
    set(g, t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, str ? str : packed, "tensor strides");
    set(g, t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor id");
    set(g, t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor align");
    if (virt) set(g, t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &virt, "virtual");
    if (by_value)
        set(g, t, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "by value");
    fin(g, t, "tensor");
    return t;
}

static cudnnBackendDescriptor_t vt(gb *g, cudnnDataType_t dt, const int64_t dim[4])
{
    return tensor(g, -1, dt, dim, NULL, false);
}

/* y = mode(x[, b][, t]) as one pointwise operation (axis >= 0: GEN_INDEX's). */
static void pw(gb *g, cudnnPointwiseMode_t mode, cudnnDataType_t prec, cudnnBackendDescriptor_t x,
               cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t t, cudnnBackendDescriptor_t y,
               int64_t axis)
{
    cudnnBackendDescriptor_t d = mk(g, CUDNN_BACKEND_POINTWISE_DESCRIPTOR, "pointwise");
    set(g, d, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pw mode");
    set(g, d, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec, "pw prec");
    if (axis >= 0) set(g, d, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "pw axis");
    fin(g, d, "pointwise");
    cudnnBackendDescriptor_t op = mk(g, CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, "pw op");
    cudnnBackendAttributeType_t D = CUDNN_TYPE_BACKEND_DESCRIPTOR;
    set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, D, 1, &d, "pw op desc");
    set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, D, 1, &x, "pw op x");
    if (b) set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, D, 1, &b, "pw op b");
    if (t) set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, D, 1, &t, "pw op t");
    set(g, op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, D, 1, &y, "pw op y");
    fin(g, op, "pointwise op");
    if (!g->st) g->ops[g->n_ops++] = op;
}

/* y = reduction of x over the dimensions where y is 1 (here: the keys). */
static void reduce(gb *g, cudnnReduceTensorOp_t rop, cudnnBackendDescriptor_t x,
                   cudnnBackendDescriptor_t y)
{
    cudnnDataType_t f = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t d = mk(g, CUDNN_BACKEND_REDUCTION_DESCRIPTOR, "reduction");
    set(g, d, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &rop, "red op");
    set(g, d, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f, "red type");
    fin(g, d, "reduction");
    cudnnBackendDescriptor_t op = mk(g, CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, "red op");
    cudnnBackendAttributeType_t D = CUDNN_TYPE_BACKEND_DESCRIPTOR;
    set(g, op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, D, 1, &d, "red op desc");
    set(g, op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, D, 1, &x, "red op x");
    set(g, op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, D, 1, &y, "red op y");
    fin(g, op, "reduction op");
    if (!g->st) g->ops[g->n_ops++] = op;
}

/* c = a·b batched over the first two dimensions, fp32 accumulation; ovr
 * (or NULL): the per-item M, N and K (NULL: the full dimension). */
static void matmul(gb *g, cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b,
                   cudnnBackendDescriptor_t c, const cudnnBackendDescriptor_t ovr[3])
{
    cudnnDataType_t f = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t d = mk(g, CUDNN_BACKEND_MATMUL_DESCRIPTOR, "matmul");
    set(g, d, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &f, "matmul type");
    fin(g, d, "matmul");
    cudnnBackendDescriptor_t op = mk(g, CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, "mm op");
    cudnnBackendAttributeType_t D = CUDNN_TYPE_BACKEND_DESCRIPTOR;
    set(g, op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, D, 1, &a, "mm op a");
    set(g, op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, D, 1, &b, "mm op b");
    set(g, op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, D, 1, &c, "mm op c");
    set(g, op, CUDNN_ATTR_OPERATION_MATMUL_DESC, D, 1, &d, "mm op desc");
    static const cudnnBackendAttributeName_t ovr_attr[3] = {
        CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC,
        CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC,
        CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC};
    for (int i = 0; ovr && i < 3; i++)
        if (ovr[i]) set(g, op, ovr_attr[i], D, 1, &ovr[i], "mm op override");
    fin(g, op, "matmul op");
    if (!g->st) g->ops[g->n_ops++] = op;
}

/* ------------------------------------------------------------- the graph */

/* One spelling of the graph (see the top of the file). */
enum { STATS_NONE, STATS_VIRTUAL, STATS_OUTPUT };
typedef struct spell {
    const char *name;
    bool sdpa;   /* cuDNN's one-node SDPA operation (9.15+), not the pattern */
    bool sdev;   /* (sdpa) the scale as a device tensor, not by value */
    bool ovr;    /* M/N/K overrides on both products */
    int stats;   /* STATS_* */
    bool p_bf16; /* P rounded to bf16 before ·V */
    bool cmp_b;  /* comparisons computed as boolean (else int32 in and out) */
} spell;

/* In order of likelihood: the SDPA operation where the library has it
 * (cuDNN 9.15+, with per-item lengths); else the pattern as cuDNN 9's
 * frontend spells inference (statistics virtual) and training (statistics
 * stored); the rest are older or looser spellings. */
static const spell k_spell[] = {
    {"sdpa operation", true, false, false, STATS_NONE, true, true},
    {"sdpa operation, device scale", true, true, false, STATS_NONE, true, true},
    {"inference", false, false, true, STATS_VIRTUAL, true, true},
    {"inference, int32 compares", false, false, true, STATS_VIRTUAL, true, false},
    {"training", false, false, true, STATS_OUTPUT, true, true},
    {"training, int32 compares", false, false, true, STATS_OUTPUT, true, false},
    {"inference, no overrides", false, false, false, STATS_VIRTUAL, true, true},
    {"no statistics", false, false, false, STATS_NONE, true, true},
    {"no statistics, fp32 P", false, false, false, STATS_NONE, false, true},
    {"training, no overrides", false, false, false, STATS_OUTPUT, true, false},
};
#define N_SPELL ((int)(sizeof k_spell / sizeof k_spell[0]))

static const char *g_spelling; /* the spelling the last plan built took */
static uint32_t g_bad;          /* spellings whose plans failed on the GPU */
static char g_bad_why[N_SPELL][224];

/* The two products' operands and the per-item lengths. */
typedef struct operands {
    cudnnBackendDescriptor_t sq, sk; /* seq_q, seq_kv: int32 [b,1,1,1] */
} operands;

/* Q·Kᵀ·scale with the padding mask applied: the masked scores (virtual).
 * K is described transposed ([b,h,d,s_kv], unit stride along d) over the
 * same memory. */
static cudnnBackendDescriptor_t masked_scores(gb *g, const zc_attn *a, const spell *sp,
                                              operands *o)
{
    int64_t B = a->n_items, H = a->n_heads, Sq = a->S_q, Sk = a->S_kv, D = a->head_dim;
    const int64_t qd[4] = {B, H, Sq, D}, qs[4] = {Sq * a->ldq, D, a->ldq, 1};
    const int64_t kd[4] = {B, H, D, Sk}, ks[4] = {Sk * a->ldk, D, 1, a->ldk};
    const int64_t sd[4] = {B, H, Sq, Sk}, one[4] = {1, 1, 1, 1}, seq[4] = {B, 1, 1, 1};
    cudnnDataType_t F = CUDNN_DATA_FLOAT, I = CUDNN_DATA_INT32, L = CUDNN_DATA_BOOLEAN;
    cudnnDataType_t C = sp->cmp_b ? L : I; /* a comparison's type and result */
    cudnnBackendDescriptor_t q = tensor(g, U_Q, CUDNN_DATA_BFLOAT16, qd, qs, false);
    cudnnBackendDescriptor_t k = tensor(g, U_K, CUDNN_DATA_BFLOAT16, kd, ks, false);
    cudnnBackendDescriptor_t scale = tensor(g, U_SCALE, F, one, one, true);
    cudnnBackendDescriptor_t neg = tensor(g, U_NEG, F, one, one, true);
    o->sq = tensor(g, U_SEQ_Q, I, seq, one, false);
    o->sk = tensor(g, U_SEQ_KV, I, seq, one, false);
    cudnnBackendDescriptor_t s = vt(g, F, sd), ss = vt(g, F, sd);
    const cudnnBackendDescriptor_t ovr[3] = {o->sq, o->sk, NULL};
    matmul(g, q, k, s, sp->ovr ? ovr : NULL);
    pw(g, CUDNN_POINTWISE_MUL, F, s, scale, NULL, ss, -1);
    cudnnBackendDescriptor_t ri = vt(g, I, sd), ci = vt(g, I, sd);
    pw(g, CUDNN_POINTWISE_GEN_INDEX, I, ss, NULL, NULL, ri, 2);
    pw(g, CUDNN_POINTWISE_GEN_INDEX, I, ss, NULL, NULL, ci, 3);
    cudnnBackendDescriptor_t rm = vt(g, C, sd), cm = vt(g, C, sd), m = vt(g, L, sd);
    pw(g, CUDNN_POINTWISE_CMP_LT, C, ri, o->sq, NULL, rm, -1);
    pw(g, CUDNN_POINTWISE_CMP_LT, C, ci, o->sk, NULL, cm, -1);
    pw(g, CUDNN_POINTWISE_LOGICAL_AND, L, rm, cm, NULL, m, -1);
    cudnnBackendDescriptor_t out = vt(g, F, sd);
    pw(g, CUDNN_POINTWISE_BINARY_SELECT, F, ss, neg, m, out, -1); /* m ? ss : neg */
    return out;
}

/* softmax over the keys, then ·V into O; the statistics (max + log Σ) as
 * the spelling says (a stored one goes to U_STATS). */
static void softmax_pv(gb *g, const zc_attn *a, cudnnBackendDescriptor_t x, const spell *sp,
                       const operands *o)
{
    int64_t B = a->n_items, H = a->n_heads, Sq = a->S_q, Sk = a->S_kv, D = a->head_dim;
    const int64_t sd[4] = {B, H, Sq, Sk}, rd[4] = {B, H, Sq, 1};
    const int64_t vd[4] = {B, H, Sk, D}, vs[4] = {Sk * a->ldv, D, a->ldv, 1};
    const int64_t od[4] = {B, H, Sq, D}, os[4] = {Sq * a->ldo, D, a->ldo, 1};
    cudnnDataType_t F = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t mx = vt(g, F, rd), d = vt(g, F, sd), e = vt(g, F, sd);
    cudnnBackendDescriptor_t sum = vt(g, F, rd);
    cudnnBackendDescriptor_t p = vt(g, sp->p_bf16 ? CUDNN_DATA_BFLOAT16 : F, sd);
    reduce(g, CUDNN_REDUCE_TENSOR_MAX, x, mx);
    pw(g, CUDNN_POINTWISE_SUB, F, x, mx, NULL, d, -1);
    pw(g, CUDNN_POINTWISE_EXP, F, d, NULL, NULL, e, -1);
    reduce(g, CUDNN_REDUCE_TENSOR_ADD, e, sum);
    if (sp->stats != STATS_NONE) {
        cudnnBackendDescriptor_t lg = vt(g, F, rd);
        cudnnBackendDescriptor_t st = sp->stats == STATS_OUTPUT
                                          ? tensor(g, U_STATS, F, rd, NULL, false)
                                          : vt(g, F, rd);
        pw(g, CUDNN_POINTWISE_LOG, F, sum, NULL, NULL, lg, -1);
        pw(g, CUDNN_POINTWISE_ADD, F, mx, lg, NULL, st, -1);
    }
    pw(g, CUDNN_POINTWISE_DIV, F, e, sum, NULL, p, -1);
    cudnnBackendDescriptor_t v = tensor(g, U_V, CUDNN_DATA_BFLOAT16, vd, vs, false);
    cudnnBackendDescriptor_t out = tensor(g, U_O, CUDNN_DATA_BFLOAT16, od, os, false);
    const cudnnBackendDescriptor_t ovr[3] = {o->sq, NULL, o->sk};
    matmul(g, p, v, out, sp->ovr ? ovr : NULL);
}

/* The whole attention as cuDNN's SDPA operation: Q, K, V, O as [b,h,s,d]
 * views of the caller's rows, the per-item lengths, the scale. */
static void sdpa_op(gb *g, const zc_attn *a, const spell *sp)
{
    int64_t B = a->n_items, H = a->n_heads, Sq = a->S_q, Sk = a->S_kv, D = a->head_dim;
    const int64_t qd[4] = {B, H, Sq, D}, qs[4] = {Sq * a->ldq, D, a->ldq, 1};
    const int64_t kd[4] = {B, H, Sk, D}, ks[4] = {Sk * a->ldk, D, a->ldk, 1};
    const int64_t vs[4] = {Sk * a->ldv, D, a->ldv, 1}, os[4] = {Sq * a->ldo, D, a->ldo, 1};
    const int64_t one[4] = {1, 1, 1, 1}, seq[4] = {B, 1, 1, 1};
    cudnnDataType_t bf = CUDNN_DATA_BFLOAT16, I = CUDNN_DATA_INT32;
    cudnnBackendDescriptor_t t[7] = {
        tensor(g, U_Q, bf, qd, qs, false),
        tensor(g, U_K, bf, kd, ks, false),
        tensor(g, U_V, bf, kd, vs, false),
        tensor(g, U_O, bf, qd, os, false),
        tensor(g, U_SCALE, CUDNN_DATA_FLOAT, one, one, !sp->sdev),
        tensor(g, U_SEQ_Q, I, seq, one, false),
        tensor(g, U_SEQ_KV, I, seq, one, false)};
    static const cudnnBackendAttributeName_t attr[7] = {
        CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC,          CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC,
        CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC,          CUDNN_ATTR_OPERATION_SDPA_FWD_ODESC,
        CUDNN_ATTR_OPERATION_SDPA_FWD_SCALEDESC,      CUDNN_ATTR_OPERATION_SDPA_FWD_SEQ_LEN_QDESC,
        CUDNN_ATTR_OPERATION_SDPA_FWD_SEQ_LEN_KVDESC};
    cudnnBackendDescriptor_t op = mk(g, CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR, "sdpa op");
    for (int i = 0; i < 7; i++)
        set(g, op, attr[i], CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t[i], "sdpa op operand");
    fin(g, op, "sdpa op");
    if (!g->st) g->ops[g->n_ops++] = op;
}

/* The finalized operation graph (NULL with g->st set on failure). */
static cudnnBackendDescriptor_t op_graph(gb *g, cudnnHandle_t h, const zc_attn *a,
                                         const spell *sp)
{
    operands o = {0};
    if (sp->sdpa)
        sdpa_op(g, a, sp);
    else
        softmax_pv(g, a, masked_scores(g, a, sp, &o), sp, &o);
    cudnnBackendDescriptor_t og = mk(g, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "op graph");
    set(g, og, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, g->n_ops, g->ops,
        "graph ops");
    if (!g->st) (void)cudnnBackendSetAttribute(og, ATTR_OPGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    fin(g, og, "op graph (no such fusion)");
    return g->st ? NULL : og;
}

/* The first of heuristics mode A's engine configurations whose execution
 * plan finalizes, and its workspace size. */
static cudnnBackendDescriptor_t exec_plan(gb *g, cudnnHandle_t h, cudnnBackendDescriptor_t og,
                                          int64_t *ws)
{
    cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
    cudnnBackendDescriptor_t heur = mk(g, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "heuristics");
    set(g, heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &og,
        "heur graph");
    set(g, heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heur mode");
    fin(g, heur, "heuristics");
    cudnnBackendDescriptor_t cfg[MAX_CFGS];
    for (int i = 0; i < MAX_CFGS; i++) cfg[i] = mk(g, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "cfg");
    int64_t n = 0;
    if (!g->st &&
        (g->st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, MAX_CFGS, &n, cfg)))
        g->what = "heuristic results";
    if (g->st) return NULL;
    if (n > MAX_CFGS) n = MAX_CFGS;
    bool big = false;
    for (int64_t i = 0; i < n; i++) {
        cudnnBackendDescriptor_t p = mk(g, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, "plan");
        if (!p) return NULL;
        (void)cudnnBackendSetAttribute(p, ATTR_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
        if (cudnnBackendSetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfg[i]) ||
            cudnnBackendFinalize(p))
            continue; /* this engine does not take the graph: the next */
        int64_t got = 0;
        g->st = cudnnBackendGetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                         CUDNN_TYPE_INT64, 1, &got, ws);
        if (g->st) {
            g->what = "plan workspace size";
            return NULL;
        }
        /* A fused engine needs little; one that wants more would store the
         * scores (GBs at 1024²): not this kernel. */
        if (*ws > MAX_WS) {
            big = true;
            continue;
        }
        return p;
    }
    g->st = CUDNN_STATUS_NOT_SUPPORTED;
    g->what = big ? "only engines with a workspace over 256 MiB take it"
              : n ? "no engine finalizes a plan"
                  : "heuristics found no engine";
    return NULL;
}

/* ------------------------------------------------------------ plans */

static plan_key key_of(const zc_attn *a)
{
    plan_key k;
    memset(&k, 0, sizeof k); /* compared with memcmp */
    k.n_items = a->n_items, k.S_q = a->S_q, k.S_kv = a->S_kv, k.heads = a->n_heads;
    k.hd = a->head_dim, k.ldq = a->ldq, k.ldk = a->ldk, k.ldv = a->ldv, k.ldo = a->ldo;
    memcpy(&k.scale_bits, &a->scale, 4);
    return k;
}

/* Turns cuDNN attention off for the process, with one warning. */
static void turn_off(const char *fmt, const char *a, const char *b)
{
    if (g_off[0]) return;
    snprintf(g_off, sizeof g_off, fmt, a, b);
    PX_WARN("zimage cuda: cuDNN attention off, the mma kernel runs instead: %s", g_off);
}

/* The graph in the first spelling an engine takes, and a plan for it, into
 * p->g / p->exe; NULL, or what failed for each spelling (g's last status
 * in *st). Called under g_mu (the failure text is static). */
static const char *build_graph(dev_state *d, const zc_attn *a, plan *p, int64_t *ws,
                               cudnnStatus_t *st)
{
    static char why[640];
    size_t n = 0;
    why[0] = 0;
    for (int i = 0; i < N_SPELL; i++) {
        if (g_bad & (1u << i)) { /* an engine took it, but it failed on the GPU */
            if (n < sizeof why)
                n += (size_t)snprintf(why + n, sizeof why - n, "%s%s: %s", i ? "; " : "",
                                      k_spell[i].name, g_bad_why[i]);
            continue;
        }
        gb *g = calloc(1, sizeof *g);
        if (!g) return *st = CUDNN_STATUS_ALLOC_FAILED, "out of host memory";
        g->next_uid = U_VIRTUAL;
        cudnnBackendDescriptor_t og = op_graph(g, d->h, a, &k_spell[i]);
        cudnnBackendDescriptor_t exe = og ? exec_plan(g, d->h, og, ws) : NULL;
        if (exe) {
            p->g = g, p->exe = exe, p->spell = &k_spell[i];
            p->with_stats = k_spell[i].stats == STATS_OUTPUT;
            return NULL;
        }
        *st = g->st;
        if (n < sizeof why)
            n += (size_t)snprintf(why + n, sizeof why - n, "%s%s: %s (%s)", i ? "; " : "",
                                  k_spell[i].name, g->what ? g->what : "?",
                                  cudnnGetErrorString(g->st));
        gb_free(g);
    }
    return why;
}

/* A new plan for a's shape into p: the graph, its workspace, seq_q (and
 * the statistics buffer). Outside stream capture only. NULL or why not. */
static const char *build(dev_state *d, zc_stream s, const zc_attn *a, plan *p,
                         cudnnStatus_t *st)
{
    memset(p, 0, sizeof *p);
    p->key = key_of(a), p->scale = a->scale, p->neg = -1e30f;
    *st = CUDNN_STATUS_SUCCESS;
    if (!d->h && (*st = cudnnCreate(&d->h))) return "cudnnCreate";
    int64_t ws = 0;
    const char *why = build_graph(d, a, p, &ws, st);
    if (why) return why;
    size_t n = (size_t)a->n_items;
    int *sq = malloc(n * sizeof *sq);
    if (!sq) return "out of host memory";
    for (size_t i = 0; i < n; i++) sq[i] = a->S_q;
    int e = (ws > 0 && cudaMalloc(&p->ws, (size_t)ws)) ||
            cudaMalloc((void **)&p->seq_q, n * sizeof *sq) ||
            /* on the stream the plan runs on: a plain cudaMemcpy goes on the
             * legacy stream, which a non-blocking one is not ordered with,
             * and from pageable memory may return before its DMA lands */
            cudaMemcpyAsync(p->seq_q, sq, n * sizeof *sq, cudaMemcpyHostToDevice,
                            (cudaStream_t)s) ||
            (p->spell->sdev &&
             (cudaMalloc((void **)&p->scale_dev, sizeof(float)) ||
              cudaMemcpyAsync(p->scale_dev, &p->scale, sizeof(float), cudaMemcpyHostToDevice,
                              (cudaStream_t)s))) ||
            (p->with_stats &&
             cudaMalloc((void **)&p->stats, n * (size_t)a->n_heads * (size_t)a->S_q * 4));
    free(sq);
    if (e) {
        (void)cudaGetLastError();
        return "device memory for the plan";
    }
    return NULL;
}

/* Enqueues the plan on s with a's pointers (no allocation, no sync: safe
 * under stream capture). */
static cudnnStatus_t execute(dev_state *d, plan *p, zc_stream s, const zc_attn *a)
{
    int64_t uids[] = {U_Q, U_K, U_V, U_O, U_SCALE, U_SEQ_Q, U_SEQ_KV, U_NEG, U_STATS};
    void *scale = p->scale_dev ? (void *)p->scale_dev : (void *)&p->scale;
    void *ptrs[] = {(void *)a->q, (void *)a->k, (void *)a->v,      a->o,     scale,
                    p->seq_q,     (void *)a->kv_len, &p->neg, p->stats};
    /* The pack names the tensors the graph has: the SDPA operation has no
     * mask value, and only the training form stores the statistics. */
    int64_t n = p->spell->sdpa ? 7 : p->with_stats ? 9 : 8;
    cudnnBackendDescriptor_t vp = NULL;
    cudnnStatus_t st;
    if ((st = cudnnSetStream(d->h, (cudaStream_t)s)) ||
        (st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp)))
        return st;
    if (!(st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n,
                                        uids)) &&
        !(st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                        CUDNN_TYPE_VOID_PTR, n, ptrs)) &&
        !(st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR,
                                        1, &p->ws)) &&
        !(st = cudnnBackendFinalize(vp)))
        st = cudnnBackendExecute(d->h, p->exe, vp);
    cudnnBackendDestroyDescriptor(vp);
    return st;
}

/* A failed build's leftovers (a plan that was cached is never freed). */
static void plan_free(plan *p)
{
    if (p->g) gb_free(p->g);
    cudaFree(p->ws), cudaFree(p->seq_q), cudaFree(p->stats), cudaFree(p->scale_dev);
    (void)cudaGetLastError();
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------- the self-check */

static float bf16_to_f(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* max|x − ref| and max|ref| over the valid rows (row < kv_len of its item)
 * and the heads' columns; a non-finite x counts as an infinite diff. */
static void compare(const zc_attn *a, const uint16_t *x, const uint16_t *ref, const int *len,
                    double *maxdiff, double *maxref)
{
    int cols = a->n_heads * a->head_dim;
    *maxdiff = 0, *maxref = 0;
    for (int b = 0; b < a->n_items; b++) {
        int rows = len[b] < a->S_q ? len[b] : a->S_q;
        for (int r = 0; r < rows; r++) {
            size_t off = ((size_t)b * a->S_q + (size_t)r) * (size_t)a->ldo;
            for (int c = 0; c < cols; c++) {
                double v = bf16_to_f(x[off + c]), w = bf16_to_f(ref[off + c]);
                double dd = isfinite(v) ? fabs(v - w) : INFINITY;
                if (!(dd <= *maxdiff)) *maxdiff = isnan(dd) ? INFINITY : dd;
                if (fabs(w) > *maxref) *maxref = fabs(w);
            }
        }
    }
}

/* a->o (cuDNN's, just enqueued on s) against the mma kernel on the same
 * inputs: NULL when within CHECK_TOL of max|ref|, else why not (in buf).
 * Syncs s: called outside capture only, on a plan's first call. */
static const char *self_check(zc_stream s, const zc_attn *a, char *buf, size_t buflen)
{
    /* Up to the last row's last head column: the buffer may end there. */
    size_t n = ((size_t)a->n_items * (size_t)a->S_q - 1) * (size_t)a->ldo +
               (size_t)a->n_heads * (size_t)a->head_dim;
    uint16_t *x = malloc(n * 2), *ref = malloc(n * 2);
    int *len = malloc((size_t)a->n_items * sizeof *len);
    void *dref = NULL;
    const char *why = NULL;
    zc_attn m = *a;
    if (!x || !ref || !len)
        why = "out of host memory";
    else if (cudaMalloc(&dref, n * 2))
        why = "device memory for the check";
    else if ((m.o = dref, zc_attention_with(s, &m, ZC_ATTN_MMA)) ||
             cudaStreamSynchronize((cudaStream_t)s) ||
             cudaMemcpy(x, a->o, n * 2, cudaMemcpyDeviceToHost) ||
             cudaMemcpy(ref, dref, n * 2, cudaMemcpyDeviceToHost) ||
             cudaMemcpy(len, a->kv_len, (size_t)a->n_items * sizeof *len, cudaMemcpyDeviceToHost))
        why = "a CUDA call of the check failed";
    if (!why) {
        double md, mr;
        compare(a, x, ref, len, &md, &mr);
        if (!(md <= CHECK_TOL * mr)) {
            snprintf(buf, buflen, "differs from the mma kernel: max|diff| %.3g of max|ref| %.3g",
                     md, mr);
            why = buf;
        }
    }
    if (dref) cudaFree(dref);
    (void)cudaGetLastError();
    free(x), free(ref), free(len);
    return why;
}

/* --------------------------------------------------------------- the API */

int zattn_cudnn_supports(const zc_attn *a)
{
    return !a->causal && (a->head_dim == 128 || a->head_dim == 64) && a->n_heads == a->n_kv_heads &&
           a->n_q == a->S_q && a->n_items > 0 && a->S_q > 0 && a->S_kv > 0 && a->ldq % 8 == 0 &&
           a->ldk % 8 == 0 && a->ldv % 8 == 0 && a->ldo % 8 == 0;
}

const char *zattn_cudnn_disabled(void)
{
    pthread_mutex_lock(&g_mu);
    const char *r = g_off[0] ? g_off : NULL;
    pthread_mutex_unlock(&g_mu);
    return r;
}

const char *zattn_cudnn_spelling(void)
{
    pthread_mutex_lock(&g_mu);
    const char *r = g_spelling;
    pthread_mutex_unlock(&g_mu);
    return r;
}

/* The cached plan of a's shape on device d, or a new one (built here when
 * s is not capturing): 0 with *pp set, 1 with *fresh for a new plan,
 * ZATTN_CUDNN_UNSUPPORTED, or ZATTN_CUDNN_FAILED (turned off). */
static int plan_for(dev_state *d, zc_stream s, const zc_attn *a, plan **pp, int *fresh)
{
    plan_key k = key_of(a);
    for (int i = 0; i < d->n; i++)
        if (!memcmp(&d->plans[i].key, &k, sizeof k)) return *pp = &d->plans[i], 0;
    enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing((cudaStream_t)s, &cs) || cs != cudaStreamCaptureStatusNone) {
        (void)cudaGetLastError();
        return ZATTN_CUDNN_UNSUPPORTED; /* building would allocate and sync */
    }
    if (d->n == MAX_PLANS) return ZATTN_CUDNN_UNSUPPORTED;
    plan *p = &d->plans[d->n];
    cudnnStatus_t st;
    const char *why = build(d, s, a, p, &st);
    if (why) {
        plan_free(p);
        turn_off("no plan: %s (%s)", why, st ? cudnnGetErrorString(st) : "-");
        return ZATTN_CUDNN_FAILED;
    }
    d->n++;
    g_spelling = p->spell->name;
    *pp = p, *fresh = 1;
    return 0;
}

/* A fresh plan (the last built on d, on its first call) ran wrong or not
 * at all: its spelling is not tried again, the plan is freed. */
static void drop_spelling(dev_state *d, zc_stream s, plan *p, const char *why)
{
    int i = (int)(p->spell - k_spell);
    g_bad |= 1u << i;
    snprintf(g_bad_why[i], sizeof g_bad_why[i], "built, then %.200s", why);
    PX_WARN("zimage cuda: cuDNN attention in the spelling \"%s\": %s; trying the next",
            p->spell->name, why);
    (void)cudaStreamSynchronize((cudaStream_t)s); /* nothing queued may use it */
    plan_free(p);
    d->n--;
}

int zattn_cudnn(zc_stream s, const zc_attn *a)
{
    if (!zattn_cudnn_supports(a)) return ZATTN_CUDNN_UNSUPPORTED;
    int dev = -1;
    if (cudaGetDevice(&dev) || dev < 0 || dev >= MAX_DEV) {
        (void)cudaGetLastError();
        return ZATTN_CUDNN_UNSUPPORTED;
    }
    pthread_mutex_lock(&g_mu);
    dev_state *d = &g_dev[dev];
    plan *p = NULL;
    int fresh = 0, rc = g_off[0] ? ZATTN_CUDNN_UNSUPPORTED : plan_for(d, s, a, &p, &fresh);
    /* A new plan must run and match mma on its first call; if not, the
     * next spelling is built (plan_for turns cuDNN off when none is left). */
    while (!rc) {
        char buf[200];
        const char *bad = NULL;
        cudnnStatus_t st = execute(d, p, s, a);
        if (st)
            snprintf(buf, sizeof buf, "execute: %s", cudnnGetErrorString(st)), bad = buf;
        else if (fresh)
            bad = self_check(s, a, buf, sizeof buf);
        if (!bad) break;
        if (!fresh) {
            turn_off("%s%s", bad, "");
            rc = ZATTN_CUDNN_FAILED;
            break;
        }
        drop_spelling(d, s, p, bad);
        fresh = 0;
        rc = plan_for(d, s, a, &p, &fresh);
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}
