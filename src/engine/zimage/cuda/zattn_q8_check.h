/*
 * zattn_q8_check.h — the fp8 attention's output (zattn.h's contract with
 * fp8 set) against a host reference on a sample of its rows: what a new
 * cuDNN fp8 plan checks itself with on its first call (zattn_cudnn.c), as
 * the bf16 plans check themselves against the mma kernel (which has no
 * fp8 form), and what zattn_cuda_bench check asks of the fp8 path.
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZATTN_Q8_CHECK_H
#define PX_ENGINE_ZIMAGE_CUDA_ZATTN_Q8_CHECK_H

#include "engine/zimage/cuda/zattn.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bound on max|o − ref| / max|ref| over the sampled rows. The reference
 * takes the same e4m3 Q, K, V, so what differs is P's rounding to e4m3
 * before P·V and o's own (3 fraction bits: up to 2^-4 of each value),
 * measured against max|ref|, which is small where the attention averages
 * many values of both signs. On the random full-size DiT (H100,
 * 2026-12-06) two plans were 11 and 16 % off at 512² batch 4, more than
 * the 1-4 % that tools/zattn_fp8_emulate.py's emulation of these two
 * roundings gives on uniform random data (the DiT's activations are less
 * kind), while the fp8 gate's images stayed at 38+ dB. A wrong graph
 * (mask, strides, a scale) is off by ~100 %. */
#define ZATTN_Q8_TOL 0.25

/* a->o (just enqueued on s) decoded, against softmax(scale · dq · dk ·
 * q·kᵀ)·v in double from a's own e4m3 operands, at 8 query rows (the
 * first, the last with keys, spread between) of every head of the first
 * and the last item. Syncs s (outside capture only). NULL when within ZATTN_Q8_TOL, else why not
 * (in buf). *err_out (or NULL): the relative error found. */
const char *zattn_q8_check_err(zc_stream s, const zc_attn *a, char *buf, size_t buflen,
                               double *err_out);

/* zattn_q8_check_err without the error value. */
const char *zattn_q8_check(zc_stream s, const zc_attn *a, char *buf, size_t buflen);

#ifdef __cplusplus
}
#endif

#endif
