/*
 * zattn_cudnn_graph.c — zattn_cudnn_graph.h: the DiT's attention as a cuDNN
 * backend operation graph, in the spelling asked for, and a plan for it.
 *
 * The decomposed pattern (every intermediate a virtual fp32 tensor, so
 * none is ever stored):
 *
 *   S  = matmul(Q [b,h,s_q,d], Kᵀ [b,h,d,s_kv])        Q, K, V as strided
 *   S' = S · scale          (a by-value scalar)        views of the caller's
 *   r  = index of S' along 2, c = index along 3        rows: no copies
 *   m  = (r < seq_q[b]) and (c < seq_kv[b])
 *   S" = m ? S' : -1e30     (binary select)
 *   P  = exp(S" − max S") / Σ exp(S" − max S")       (reductions over keys)
 *   O  = matmul(P, V [b,h,s_kv,d])
 *
 * or cuDNN 9.15+'s one-node SDPA operation over the same operands.
 * cuDNN's fused engine takes a graph only in the exact spelling it
 * recognises, which has changed between releases, and that is only known
 * for a GPU: so zcg_spells lists several, in order of likelihood. They
 * differ in: the softmax statistics (max + log Σ) as a virtual tensor (the
 * inference form) or a stored output (the training form), and the
 * comparisons' types (boolean, or int32 as older releases had). The two
 * products always carry the M/N/K overrides (the rows and keys each item
 * really has, from seq_q/seq_kv): the engines ignored the mask without
 * them. P is rounded to bf16 before the second product (the fused
 * kernel's tensor cores take bf16), to e4m3 in the fp8 pattern.
 */
#include "engine/zimage/cuda/zattn_cudnn_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DESC 160 /* descriptors of one graph (~65 used, ~90 fp8, +18 for heuristics/plans) */
#define MAX_CFGS 8  /* heuristic results tried */
#define MAX_WS   ((int64_t)256 << 20) /* bytes of workspace a plan may have */

/* The deprecated handle attributes (cuDNN 9.x marks them deprecated; the
 * 9.0-9.x libraries a device may have still want them). By number, so the
 * deprecation warning does not fail the -Werror build. */
#define ATTR_OPGRAPH_HANDLE ((cudnnBackendAttributeName_t)800)
#define ATTR_PLAN_HANDLE    ((cudnnBackendAttributeName_t)400)

enum { U_VIRTUAL = 100 }; /* virtual tensors' ids count up from here */

/* A graph under construction: its descriptors (all destroyed together)
 * and the first failure (every helper does nothing once st is set). */
typedef struct gb {
    cudnnBackendDescriptor_t all[MAX_DESC];
    int n_all;
    cudnnBackendDescriptor_t ops[32];
    int n_ops;
    cudnnStatus_t st;
    const char *what; /* the step that failed */
    int64_t next_uid;
} gb;

struct zcg {
    gb g;
    const zcg_spell *sp;
    cudnnBackendDescriptor_t exe;
    int64_t ws;
    zcg_cfg cfg; /* the plan's configuration (engine -1: not read) */
};

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

/* A 4-D tensor: uid < 0 makes a virtual one (packed strides, a fresh id). */
static cudnnBackendDescriptor_t tensor(gb *g, int64_t uid, cudnnDataType_t dt, const int64_t dim[4],
                                       const int64_t *str, bool by_value)
{
    int64_t packed[4] = {dim[1] * dim[2] * dim[3], dim[2] * dim[3], dim[3], 1};
    bool virt = uid < 0;
    int64_t align = dt == CUDNN_DATA_BFLOAT16 || dt == CUDNN_DATA_FP8_E4M3 || virt ? 16 : 4;
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

/* c = a·b batched over the first two dimensions, fp32 accumulation; ovr:
 * the per-item M, N and K (a NULL one: the full dimension). */
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
    for (int i = 0; i < 3; i++)
        if (ovr[i]) set(g, op, ovr_attr[i], D, 1, &ovr[i], "mm op override");
    fin(g, op, "matmul op");
    if (!g->st) g->ops[g->n_ops++] = op;
}

/* ------------------------------------------------------------- the graph */

/* In order of likelihood: the SDPA operation where the library has it
 * (cuDNN 9.15+, with per-item lengths); else the pattern as cuDNN 9's
 * frontend spells inference (statistics virtual) and training (statistics
 * stored), with comparisons as booleans or int32. Every pattern spelling
 * carries the M/N/K overrides (each item's row and key counts): without
 * them cuDNN 9.14's engines on an H100 ignored the padding mask, bf16 and
 * fp8 alike (wrong for an item with fewer keys; the kernels' check,
 * 2026-12-06, zimage-cuda.md seventeenth session), so the spellings
 * without them ("inference, no overrides", "no statistics" and its fp32-P
 * form, "training, no overrides") are gone. */
const zcg_spell zcg_spells[] = {
    {"sdpa operation", true, false, ZCG_STATS_NONE, true, false},
    {"sdpa operation, device scale", true, true, ZCG_STATS_NONE, true, false},
    {"inference", false, false, ZCG_STATS_VIRTUAL, true, false},
    {"inference, int32 compares", false, false, ZCG_STATS_VIRTUAL, false, false},
    {"training", false, false, ZCG_STATS_OUTPUT, true, false},
    {"training, int32 compares", false, false, ZCG_STATS_OUTPUT, false, false},
    /* fp8 (tried only for fp8 operands): the frontend's SDPA fp8 pattern,
     * the training form first: cuDNN 9.14's plan for the inference form
     * (statistics virtual) gave varying output at 512² batch 4 on H100s
     * (failing its first or second checked run in 8 of 8 processes), the
     * training form's passed every check at every shape, as fast
     * (zimage-cuda.md, seventeenth session) */
    {"fp8 training", false, false, ZCG_STATS_OUTPUT, true, true},
    {"fp8 inference", false, false, ZCG_STATS_VIRTUAL, true, true},
};
const int zcg_n_spells = (int)(sizeof zcg_spells / sizeof zcg_spells[0]);


/* The two products' operands and the per-item lengths. */
typedef struct operands {
    cudnnBackendDescriptor_t sq, sk; /* seq_q, seq_kv: int32 [b,1,1,1] */
} operands;

/* x · (the device scalar of id uid), a virtual fp32 tensor of x's dims;
 * the fp8 pattern's descales and scales. */
static cudnnBackendDescriptor_t mul_scalar(gb *g, cudnnBackendDescriptor_t x, int64_t uid,
                                           const int64_t dim[4])
{
    const int64_t one[4] = {1, 1, 1, 1};
    cudnnBackendDescriptor_t c = tensor(g, uid, CUDNN_DATA_FLOAT, one, one, false);
    cudnnBackendDescriptor_t y = vt(g, CUDNN_DATA_FLOAT, dim);
    pw(g, CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, x, c, NULL, y, -1);
    return y;
}

/* Q·Kᵀ·scale with the padding mask applied: the masked scores (virtual).
 * K is described transposed ([b,h,d,s_kv], unit stride along d) over the
 * same memory. */
static cudnnBackendDescriptor_t masked_scores(gb *g, const zc_attn *a, const zcg_spell *sp,
                                              operands *o)
{
    int64_t B = a->n_items, H = a->n_heads, Sq = a->S_q, Sk = a->S_kv, D = a->head_dim;
    const int64_t qd[4] = {B, H, Sq, D}, qs[4] = {Sq * a->ldq, D, a->ldq, 1};
    const int64_t kd[4] = {B, H, D, Sk}, ks[4] = {Sk * a->ldk, D, 1, a->ldk};
    const int64_t sd[4] = {B, H, Sq, Sk}, one[4] = {1, 1, 1, 1}, seq[4] = {B, 1, 1, 1};
    cudnnDataType_t F = CUDNN_DATA_FLOAT, I = CUDNN_DATA_INT32, L = CUDNN_DATA_BOOLEAN;
    cudnnDataType_t C = sp->cmp_b ? L : I; /* a comparison's type and result */
    cudnnDataType_t in = sp->fp8 ? CUDNN_DATA_FP8_E4M3 : CUDNN_DATA_BFLOAT16;
    cudnnBackendDescriptor_t q = tensor(g, ZCG_U_Q, in, qd, qs, false);
    cudnnBackendDescriptor_t k = tensor(g, ZCG_U_K, in, kd, ks, false);
    cudnnBackendDescriptor_t scale = tensor(g, ZCG_U_SCALE, F, one, one, true);
    cudnnBackendDescriptor_t neg = tensor(g, ZCG_U_NEG, F, one, one, true);
    o->sq = tensor(g, ZCG_U_SEQ_Q, I, seq, one, false);
    o->sk = tensor(g, ZCG_U_SEQ_KV, I, seq, one, false);
    cudnnBackendDescriptor_t s = vt(g, F, sd), ss = vt(g, F, sd);
    const cudnnBackendDescriptor_t ovr[3] = {o->sq, o->sk, NULL};
    matmul(g, q, k, s, ovr);
    pw(g, CUDNN_POINTWISE_MUL, F, s, scale, NULL, ss, -1);
    if (sp->fp8) /* the scores of the e4m3 codes, descaled: ·descale_q ·descale_k */
        ss = mul_scalar(g, mul_scalar(g, ss, ZCG_U_DESCALE_Q, sd), ZCG_U_DESCALE_K, sd);
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

/* The fp8 pattern's tail, as cuDNN's frontend spells it: amax_s = max|P|,
 * P8 = e4m3(P · scale_s), O' = P8·V8 · descale_s · descale_v, amax_o =
 * max|O'|, O = e4m3(O' · scale_o). O in e4m3: with a bf16 O cuDNN 9.19's
 * heuristics find no engine for an H100 (deviceless, 2026-12-06). */
static void fp8_pv(gb *g, const zc_attn *a, cudnnBackendDescriptor_t p,
                   const cudnnBackendDescriptor_t *ovr)
{
    int64_t B = a->n_items, H = a->n_heads, Sq = a->S_q, Sk = a->S_kv, D = a->head_dim;
    const int64_t sd[4] = {B, H, Sq, Sk}, one[4] = {1, 1, 1, 1};
    const int64_t vd[4] = {B, H, Sk, D}, vs[4] = {Sk * a->ldv, D, a->ldv, 1};
    const int64_t od[4] = {B, H, Sq, D}, os[4] = {Sq * a->ldo, D, a->ldo, 1};
    cudnnDataType_t F = CUDNN_DATA_FLOAT, E = CUDNN_DATA_FP8_E4M3;
    reduce(g, CUDNN_REDUCE_TENSOR_AMAX, p, tensor(g, ZCG_U_AMAX_S, F, one, one, false));
    cudnnBackendDescriptor_t ss = tensor(g, ZCG_U_SCALE_S, F, one, one, false);
    cudnnBackendDescriptor_t p8 = vt(g, E, sd);
    pw(g, CUDNN_POINTWISE_MUL, F, p, ss, NULL, p8, -1);
    cudnnBackendDescriptor_t v = tensor(g, ZCG_U_V, E, vd, vs, false), pv = vt(g, F, od);
    matmul(g, p8, v, pv, ovr);
    pv = mul_scalar(g, mul_scalar(g, pv, ZCG_U_DESCALE_S, od), ZCG_U_DESCALE_V, od);
    cudnnBackendDescriptor_t so = tensor(g, ZCG_U_SCALE_O, F, one, one, false);
    cudnnBackendDescriptor_t out = tensor(g, ZCG_U_O, E, od, os, false);
    pw(g, CUDNN_POINTWISE_MUL, F, pv, so, NULL, out, -1);
    reduce(g, CUDNN_REDUCE_TENSOR_AMAX, pv, tensor(g, ZCG_U_AMAX_O, F, one, one, false));
}

/* softmax over the keys, then ·V into O; the statistics (max + log Σ) as
 * the spelling says (a stored one goes to ZCG_U_STATS). */
static void softmax_pv(gb *g, const zc_attn *a, cudnnBackendDescriptor_t x, const zcg_spell *sp,
                       const operands *o)
{
    int64_t B = a->n_items, H = a->n_heads, Sq = a->S_q, Sk = a->S_kv, D = a->head_dim;
    const int64_t sd[4] = {B, H, Sq, Sk}, rd[4] = {B, H, Sq, 1};
    const int64_t vd[4] = {B, H, Sk, D}, vs[4] = {Sk * a->ldv, D, a->ldv, 1};
    const int64_t od[4] = {B, H, Sq, D}, os[4] = {Sq * a->ldo, D, a->ldo, 1};
    cudnnDataType_t F = CUDNN_DATA_FLOAT;
    cudnnBackendDescriptor_t mx = vt(g, F, rd), d = vt(g, F, sd), e = vt(g, F, sd);
    cudnnBackendDescriptor_t sum = vt(g, F, rd);
    /* P in bf16 for the fused kernel's tensor cores; fp32 where fp8_pv scales it to e4m3 */
    cudnnBackendDescriptor_t p = vt(g, sp->fp8 ? F : CUDNN_DATA_BFLOAT16, sd);
    reduce(g, CUDNN_REDUCE_TENSOR_MAX, x, mx);
    pw(g, CUDNN_POINTWISE_SUB, F, x, mx, NULL, d, -1);
    pw(g, CUDNN_POINTWISE_EXP, F, d, NULL, NULL, e, -1);
    reduce(g, CUDNN_REDUCE_TENSOR_ADD, e, sum);
    /* the statistics (max + log Σ): every pattern spelling has them */
    cudnnBackendDescriptor_t lg = vt(g, F, rd);
    cudnnBackendDescriptor_t st =
        sp->stats == ZCG_STATS_OUTPUT ? tensor(g, ZCG_U_STATS, F, rd, NULL, false) : vt(g, F, rd);
    pw(g, CUDNN_POINTWISE_LOG, F, sum, NULL, NULL, lg, -1);
    pw(g, CUDNN_POINTWISE_ADD, F, mx, lg, NULL, st, -1);
    pw(g, CUDNN_POINTWISE_DIV, F, e, sum, NULL, p, -1);
    const cudnnBackendDescriptor_t ovr[3] = {o->sq, NULL, o->sk};
    if (sp->fp8) {
        fp8_pv(g, a, p, ovr);
        return;
    }
    cudnnBackendDescriptor_t v = tensor(g, ZCG_U_V, CUDNN_DATA_BFLOAT16, vd, vs, false);
    cudnnBackendDescriptor_t out = tensor(g, ZCG_U_O, CUDNN_DATA_BFLOAT16, od, os, false);
    matmul(g, p, v, out, ovr);
}

/* The whole attention as cuDNN's SDPA operation: Q, K, V, O as [b,h,s,d]
 * views of the caller's rows, the per-item lengths, the scale. */
static void sdpa_op(gb *g, const zc_attn *a, const zcg_spell *sp)
{
    int64_t B = a->n_items, H = a->n_heads, Sq = a->S_q, Sk = a->S_kv, D = a->head_dim;
    const int64_t qd[4] = {B, H, Sq, D}, qs[4] = {Sq * a->ldq, D, a->ldq, 1};
    const int64_t kd[4] = {B, H, Sk, D}, ks[4] = {Sk * a->ldk, D, a->ldk, 1};
    const int64_t vs[4] = {Sk * a->ldv, D, a->ldv, 1}, os[4] = {Sq * a->ldo, D, a->ldo, 1};
    const int64_t one[4] = {1, 1, 1, 1}, seq[4] = {B, 1, 1, 1};
    cudnnDataType_t bf = CUDNN_DATA_BFLOAT16, I = CUDNN_DATA_INT32;
    cudnnBackendDescriptor_t t[7] = {
        tensor(g, ZCG_U_Q, bf, qd, qs, false),
        tensor(g, ZCG_U_K, bf, kd, ks, false),
        tensor(g, ZCG_U_V, bf, kd, vs, false),
        tensor(g, ZCG_U_O, bf, qd, os, false),
        tensor(g, ZCG_U_SCALE, CUDNN_DATA_FLOAT, one, one, !sp->sdev),
        tensor(g, ZCG_U_SEQ_Q, I, seq, one, false),
        tensor(g, ZCG_U_SEQ_KV, I, seq, one, false)};
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
                                         const zcg_spell *sp)
{
    operands o = {0};
    if (sp->sdpa)
        sdpa_op(g, a, sp);
    else
        softmax_pv(g, a, masked_scores(g, a, sp, &o), sp, &o);
    cudnnBackendDescriptor_t og = mk(g, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, "op graph");
    set(g, og, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, g->n_ops, g->ops,
        "graph ops");
    if (!g->st && h)
        (void)cudnnBackendSetAttribute(og, ATTR_OPGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    fin(g, og, "op graph (no such fusion)");
    return g->st ? NULL : og;
}

/* A finalized plan for engine configuration cfg, or NULL (the engine does
 * not take the graph: not an error, g->st untouched). */
static cudnnBackendDescriptor_t plan_of(gb *g, cudnnHandle_t h, cudnnBackendDescriptor_t dp,
                                        cudnnBackendDescriptor_t cfg)
{
    cudnnBackendAttributeType_t D = CUDNN_TYPE_BACKEND_DESCRIPTOR;
    cudnnBackendDescriptor_t p = mk(g, CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, "plan");
    if (!p) return NULL;
    if (h)
        (void)cudnnBackendSetAttribute(p, ATTR_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    else
        (void)cudnnBackendSetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_DEVICEPROP, D, 1, &dp);
    if (cudnnBackendSetAttribute(p, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, D, 1, &cfg) ||
        cudnnBackendFinalize(p))
        return NULL;
    return p;
}

/* Heuristics mode `mode`'s engine configurations for og, up to MAX_CFGS
 * into cfg; their count (0 with g->st set on failure). */
static int64_t heur_cfgs(gb *g, cudnnBackendDescriptor_t dp, cudnnBackendDescriptor_t og,
                         cudnnBackendHeurMode_t mode, cudnnBackendDescriptor_t cfg[MAX_CFGS])
{
    cudnnBackendAttributeType_t D = CUDNN_TYPE_BACKEND_DESCRIPTOR;
    cudnnBackendDescriptor_t heur = mk(g, CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, "heuristics");
    set(g, heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, D, 1, &og, "heur graph");
    set(g, heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heur mode");
    if (dp) set(g, heur, CUDNN_ATTR_ENGINEHEUR_DEVICEPROP, D, 1, &dp, "heur device properties");
    fin(g, heur, "heuristics");
    for (int i = 0; i < MAX_CFGS; i++) cfg[i] = mk(g, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "cfg");
    int64_t n = 0;
    if (!g->st && (g->st = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, D,
                                                    MAX_CFGS, &n, cfg)))
        g->what = "heuristic results";
    return g->st ? 0 : n > MAX_CFGS ? MAX_CFGS : n;
}

/* The engine configuration c names (its engine, by global index, with
 * c's knob choices), finalized for og; NULL with g->st set on failure. */
static cudnnBackendDescriptor_t cfg_of(gb *g, cudnnBackendDescriptor_t dp,
                                       cudnnBackendDescriptor_t og, const zcg_cfg *c)
{
    cudnnBackendAttributeType_t D = CUDNN_TYPE_BACKEND_DESCRIPTOR;
    cudnnBackendDescriptor_t e = mk(g, CUDNN_BACKEND_ENGINE_DESCRIPTOR, "engine");
    set(g, e, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, D, 1, &og, "engine graph");
    set(g, e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &c->engine, "engine index");
    if (dp) set(g, e, CUDNN_ATTR_ENGINE_DEVICEPROP, D, 1, &dp, "engine device properties");
    fin(g, e, "engine (no such engine for this graph)");
    cudnnBackendDescriptor_t k[ZCG_MAX_KNOBS];
    int n = c->n_knobs < ZCG_MAX_KNOBS ? c->n_knobs : ZCG_MAX_KNOBS;
    for (int i = 0; i < n; i++) {
        cudnnBackendKnobType_t t = (cudnnBackendKnobType_t)c->knob[i].type;
        k[i] = mk(g, CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, "knob choice");
        set(g, k[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &t, "knob type");
        set(g, k[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &c->knob[i].value,
            "knob value");
        fin(g, k[i], "knob choice");
    }
    cudnnBackendDescriptor_t cfg = mk(g, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "cfg");
    set(g, cfg, CUDNN_ATTR_ENGINECFG_ENGINE, D, 1, &e, "cfg engine");
    if (n) set(g, cfg, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, D, n, k, "cfg knobs");
    fin(g, cfg, "engine configuration (knob values refused)");
    return g->st ? NULL : cfg;
}

/* The plan for og: of configuration want when given, else the first of
 * heuristics mode A's configurations whose plan finalizes with at most
 * MAX_WS of workspace; its workspace size into *ws. For the GPU of handle
 * h, or of the device properties dp (then h is NULL: no GPU is needed). */
static cudnnBackendDescriptor_t exec_plan(gb *g, cudnnHandle_t h, cudnnBackendDescriptor_t dp,
                                          cudnnBackendDescriptor_t og, const zcg_cfg *want,
                                          int64_t *ws)
{
    cudnnBackendDescriptor_t cfg[MAX_CFGS];
    int64_t n = 0;
    if (want)
        n = (cfg[0] = cfg_of(g, dp, og, want)) != NULL;
    else
        n = heur_cfgs(g, dp, og, CUDNN_HEUR_MODE_A, cfg);
    if (g->st) return NULL;
    bool big = false;
    for (int64_t i = 0; i < n; i++) {
        cudnnBackendDescriptor_t p = plan_of(g, h, dp, cfg[i]);
        if (g->st) return NULL;
        if (!p) continue; /* this engine does not take the graph: the next */
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
    g->what = big    ? "only engines with a workspace over 256 MiB take it"
              : want ? "the engine does not finalize a plan with these knobs"
              : n    ? "no engine finalizes a plan"
                     : "heuristics found no engine";
    return NULL;
}

/* cfg's engine index and knob choices into c, and (ranges) the engine's
 * knobs with their ranges; false when the engine could not be read. */
static bool read_cfg(gb *g, cudnnBackendDescriptor_t cfg, zcg_cfg *c, bool ranges)
{
    cudnnBackendAttributeType_t D = CUDNN_TYPE_BACKEND_DESCRIPTOR;
    cudnnBackendDescriptor_t e = mk(g, CUDNN_BACKEND_ENGINE_DESCRIPTOR, "engine");
    cudnnBackendDescriptor_t k[ZCG_MAX_KNOBS];
    for (int i = 0; i < ZCG_MAX_KNOBS; i++)
        k[i] = mk(g, CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, "knob choice");
    int64_t n = 0, got = 0;
    memset(c, 0, sizeof *c);
    if (g->st || cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, D, 1, &got, &e) ||
        cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &got,
                                 &c->engine) ||
        cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, D, ZCG_MAX_KNOBS, &n, k))
        return false;
    for (int64_t i = 0; i < n && i < ZCG_MAX_KNOBS; i++) {
        cudnnBackendKnobType_t t;
        if (cudnnBackendGetAttribute(k[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE,
                                     1, &got, &t) ||
            cudnnBackendGetAttribute(k[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1,
                                     &got, &c->knob[c->n_knobs].value))
            continue;
        c->knob[c->n_knobs++].type = t;
    }
    if (!ranges) return true;
    cudnnBackendDescriptor_t info[ZCG_MAX_KNOBS];
    for (int i = 0; i < ZCG_MAX_KNOBS; i++)
        info[i] = mk(g, CUDNN_BACKEND_KNOB_INFO_DESCRIPTOR, "knob info");
    if (g->st ||
        cudnnBackendGetAttribute(e, CUDNN_ATTR_ENGINE_KNOB_INFO, D, ZCG_MAX_KNOBS, &n, info))
        return true; /* the choices without the ranges */
    for (int64_t i = 0; i < n && i < ZCG_MAX_KNOBS; i++) {
        zcg_knob_range *r = &c->range[c->n_ranges];
        cudnnBackendKnobType_t t;
        if (cudnnBackendGetAttribute(info[i], CUDNN_ATTR_KNOB_INFO_TYPE, CUDNN_TYPE_KNOB_TYPE, 1,
                                     &got, &t) ||
            cudnnBackendGetAttribute(info[i], CUDNN_ATTR_KNOB_INFO_MINIMUM_VALUE, CUDNN_TYPE_INT64,
                                     1, &got, &r->min) ||
            cudnnBackendGetAttribute(info[i], CUDNN_ATTR_KNOB_INFO_MAXIMUM_VALUE, CUDNN_TYPE_INT64,
                                     1, &got, &r->max) ||
            cudnnBackendGetAttribute(info[i], CUDNN_ATTR_KNOB_INFO_STRIDE, CUDNN_TYPE_INT64, 1,
                                     &got, &r->stride))
            continue;
        r->type = t, c->n_ranges++;
    }
    return true;
}

/* ------------------------------------------------------------ the API */

static void gb_free(gb *g)
{
    for (int i = g->n_all - 1; i >= 0; i--) cudnnBackendDestroyDescriptor(g->all[i]);
    g->n_all = 0;
}

zcg *zcg_build_cfg(cudnnHandle_t h, cudnnBackendDescriptor_t devprop, const zc_attn *a,
                   const zcg_spell *sp, const zcg_cfg *cfg, cudnnStatus_t *st, const char **what)
{
    zcg *z = calloc(1, sizeof *z);
    if (!z) return *st = CUDNN_STATUS_ALLOC_FAILED, *what = "out of host memory", NULL;
    gb *g = &z->g;
    g->next_uid = U_VIRTUAL;
    z->sp = sp;
    cudnnBackendDescriptor_t og = op_graph(g, h, a, sp);
    z->exe = og ? exec_plan(g, h, devprop, og, cfg, &z->ws) : NULL;
    if (z->exe) {
        /* which configuration it is, for the log when its plan fails */
        gb t = {0};
        cudnnBackendDescriptor_t c = mk(&t, CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, "cfg");
        int64_t got = 0;
        if (t.st ||
            cudnnBackendGetAttribute(z->exe, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &got, &c) ||
            !read_cfg(&t, c, &z->cfg, false))
            z->cfg.engine = -1;
        gb_free(&t);
        return *st = CUDNN_STATUS_SUCCESS, *what = NULL, z;
    }
    *st = g->st, *what = g->what ? g->what : "?";
    zcg_free(z);
    return NULL;
}

zcg *zcg_build(cudnnHandle_t h, cudnnBackendDescriptor_t devprop, const zc_attn *a,
               const zcg_spell *sp, cudnnStatus_t *st, const char **what)
{
    return zcg_build_cfg(h, devprop, a, sp, NULL, st, what);
}

int zcg_configs(cudnnHandle_t h, cudnnBackendDescriptor_t devprop, const zc_attn *a,
                const zcg_spell *sp, int mode, zcg_cfg *out, int max, cudnnStatus_t *st,
                const char **what)
{
    gb g = {.next_uid = U_VIRTUAL};
    cudnnBackendDescriptor_t cfg[MAX_CFGS];
    cudnnBackendDescriptor_t og = op_graph(&g, h, a, sp);
    int64_t n = og ? heur_cfgs(&g, devprop, og, (cudnnBackendHeurMode_t)mode, cfg) : 0;
    int k = 0;
    for (int64_t i = 0; !g.st && i < n && k < max; i++) {
        gb t = {0}; /* the read's descriptors, apart: a graph's budget is MAX_DESC */
        if (read_cfg(&t, cfg[i], &out[k], true) && !t.st) k++;
        gb_free(&t);
    }
    *st = g.st, *what = g.st ? (g.what ? g.what : "?") : NULL;
    gb_free(&g);
    return g.st ? -1 : k;
}

cudnnStatus_t zcg_execute(cudnnHandle_t h, const zcg *z, const zcg_io *io)
{
    int64_t uids[17] = {ZCG_U_Q,     ZCG_U_K,      ZCG_U_V,   ZCG_U_O,    ZCG_U_SCALE,
                        ZCG_U_SEQ_Q, ZCG_U_SEQ_KV, ZCG_U_NEG, ZCG_U_STATS};
    void *ptrs[17] = {(void *)io->q,     (void *)io->k,     (void *)io->v,      io->o,
                      (void *)io->scale, (void *)io->seq_q, (void *)io->seq_kv, (void *)io->neg,
                      io->stats};
    /* The pack names the tensors the graph has: the SDPA operation has no
     * mask value, and only the training form stores the statistics. */
    int64_t n = z->sp->sdpa ? 7 : z->sp->stats == ZCG_STATS_OUTPUT ? 9 : 8;
    if (z->sp->fp8) /* the fp8 pattern's scalars: Q's and K's from the call */
        for (int i = 0; i < ZCG_FP8_N_SCALARS; i++, n++) {
            uids[n] = ZCG_U_DESCALE_Q + i;
            ptrs[n] = i < 2 ? (void *)(io->descale_qk + i) : (void *)(io->f8 + i);
        }
    cudnnBackendDescriptor_t vp = NULL;
    cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
    if (st) return st;
    void *ws = io->ws;
    if (!(st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n,
                                        uids)) &&
        !(st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS,
                                        CUDNN_TYPE_VOID_PTR, n, ptrs)) &&
        !(st = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR,
                                        1, &ws)) &&
        !(st = cudnnBackendFinalize(vp)))
        st = cudnnBackendExecute(h, z->exe, vp);
    cudnnBackendDestroyDescriptor(vp);
    return st;
}

cudnnBackendDescriptor_t zcg_plan(const zcg *z) { return z->exe; }

int64_t zcg_workspace(const zcg *z) { return z->ws; }

const zcg_cfg *zcg_config(const zcg *z) { return z->cfg.engine >= 0 ? &z->cfg : NULL; }

void zcg_free(zcg *z)
{
    if (!z) return;
    gb_free(&z->g);
    free(z);
}

static const char *const knob_names[] = {
    "split_k", "swizzle", "tile_size", "use_tex", "edge", "kblock", "ldga", "ldgb", "chunk_k",
    "split_h", "wino_tile", "multiply", "split_k_buf", "tilek", "stages", "reduction_mode",
    "cta_split_k_mode", "split_k_slc", "idx_mode", "sliced", "split_rs", "singlebuffer", "ldgc",
    "specfilt", "kernel_cfg", "workspace", "tile_cga", "tile_cga_m", "tile_cga_n", "block_size",
    "occupancy", "array_size_per_thread", "num_c_per_block", "split_cols", "tile_rows",
    "tile_cols", "load_size", "cta_count", "stream_k", "split_p_slc", "tile_m", "tile_n",
    "warp_spec_cfg", "swap_ab"};
enum { N_KNOB_NAMES = (int)(sizeof knob_names / sizeof knob_names[0]) };

const char *zcg_knob_name(int64_t type)
{
    return type >= 0 && type < N_KNOB_NAMES ? knob_names[type] : "?";
}

void zcg_cfg_str(const zcg_cfg *c, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "%lld", (long long)c->engine);
    for (int i = 0; i < c->n_knobs && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s=%lld", i ? "," : ":",
                              zcg_knob_name(c->knob[i].type), (long long)c->knob[i].value);
}

int zcg_cfg_parse(const char *s, zcg_cfg *c)
{
    char *end;
    memset(c, 0, sizeof *c);
    c->engine = strtoll(s, &end, 10);
    if (end == s || c->engine < 0 || (*end && *end != ':')) return -1;
    for (s = end; *s; s = end) {
        s++; /* ':' or ',' */
        const char *eq = strchr(s, '=');
        int t = 0;
        if (!eq || c->n_knobs == ZCG_MAX_KNOBS) return -1;
        while (t < N_KNOB_NAMES &&
               (strlen(knob_names[t]) != (size_t)(eq - s) || strncmp(knob_names[t], s, eq - s)))
            t++;
        if (t == N_KNOB_NAMES) return -1;
        c->knob[c->n_knobs].type = t;
        c->knob[c->n_knobs].value = strtoll(eq + 1, &end, 10);
        if (end == eq + 1 || (*end && *end != ',')) return -1;
        c->n_knobs++;
    }
    return 0;
}

cudnnStatus_t zcg_deviceprop(const char *json, size_t len, cudnnBackendDescriptor_t *out)
{
    cudnnBackendDescriptor_t d = NULL;
    cudnnStatus_t st = cudnnBackendCreateDescriptor(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR, &d);
    if (!st)
        st = cudnnBackendSetAttribute(d, CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION,
                                      CUDNN_TYPE_CHAR, (int64_t)len, json);
    if (!st) st = cudnnBackendFinalize(d);
    if (st && d) cudnnBackendDestroyDescriptor(d), d = NULL;
    *out = d;
    return st;
}
