/*
 * zattn_q8.cu — zattn_q8.h: V's per-item scale and its e4m3 codes for the
 * fp8 attention. A block a row, eight columns (16 bytes) a thread; the
 * largest magnitude of a row is reduced over the block and folded into its
 * item's slot with an integer atomic maximum (non-negative floats order as
 * their bits do).
 */
#include "engine/zimage/cuda/zattn_q8.h"

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

namespace {

typedef __nv_bfloat16 bf16;

const int VT = 128; /* threads per row */

__global__ void k_v_amax(const bf16 *x, int ld, int col0, int n8, int rpi, float *amax)
{
    __shared__ float sh[VT / 32];
    int r = blockIdx.x;
    const uint4 *row = (const uint4 *)(x + (size_t)r * ld + col0);
    float m = 0.0f;
    for (int c = threadIdx.x; c < n8; c += VT) {
        uint4 v = row[c];
        const bf16 *e = (const bf16 *)&v;
        for (int k = 0; k < 8; k++) m = fmaxf(m, fabsf(__bfloat162float(e[k])));
    }
    m = zc_fp8_block_max(m, sh, VT);
    if (threadIdx.x == 0) atomicMax((int *)&amax[r / rpi], __float_as_int(m));
}

__global__ void k_v_quant(const bf16 *x, int ld, int col0, int n8, int rpi, const float *amax,
                          uint8_t *q, int ldq, float *row_scale)
{
    int r = blockIdx.x;
    float sb = zattn_q8_pow2_scale(amax[r / rpi]);
    if (threadIdx.x == 0) row_scale[r] = 1.0f / sb;
    const uint4 *row = (const uint4 *)(x + (size_t)r * ld + col0);
    uint2 *qr = (uint2 *)(q + (size_t)r * ldq + col0);
    for (int c = threadIdx.x; c < n8; c += VT) qr[c] = zc_fp8_codes8_bf16(row[c], sb);
}

bool fits(const void *x, int ld, int col0, int n, int rows_per_item)
{
    return n > 0 && n % 8 == 0 && ld % 8 == 0 && col0 % 8 == 0 && (uintptr_t)x % 16 == 0 &&
           rows_per_item > 0;
}

} // namespace

extern "C" int zattn_q8_v_amax(zc_stream s, const void *x, int ld, int col0, int rows, int n,
                               int rows_per_item, float *amax)
{
    if (!fits(x, ld, col0, n, rows_per_item)) return (int)cudaErrorInvalidValue;
    if (rows <= 0) return 0;
    k_v_amax<<<rows, VT, 0, s>>>((const bf16 *)x, ld, col0, n / 8, rows_per_item, amax);
    return (int)cudaGetLastError();
}

extern "C" int zattn_q8_v_quant(zc_stream s, const void *x, int ld, int col0, int rows, int n,
                                int rows_per_item, const float *amax, uint8_t *q, int ldq,
                                float *row_scale)
{
    if (!fits(x, ld, col0, n, rows_per_item) || ldq % 8 || (uintptr_t)q % 8)
        return (int)cudaErrorInvalidValue;
    if (rows <= 0) return 0;
    k_v_quant<<<rows, VT, 0, s>>>((const bf16 *)x, ld, col0, n / 8, rows_per_item, amax, q, ldq,
                                  row_scale);
    return (int)cudaGetLastError();
}
