/*
 * lama_dev.cuh — device helpers shared by the LaMa CUDA backend's kernel
 * files (kernels.cu: element-wise and layout; conv7.cu: the 7x7 stem and
 * head): eight channels moved as one vector, torch's and numpy's border
 * rules, and the launchers' dispatch on the activation type. Device code
 * only (nvcc).
 */
#ifndef PX_ENGINE_LAMA_CUDA_LAMA_DEV_CUH
#define PX_ENGINE_LAMA_CUDA_LAMA_DEV_CUH

#include "engine/cuda/cuda_elem.cuh"
#include "engine/lama/cuda/kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace pxlama {

using namespace pxcu; /* bf16_t, f16_t, ld, st */

/* Eight consecutive elements, moved as 16 (bf16, half) or 32 (float) bytes: the
 * memory-bound kernels below work in these units when channel counts are
 * multiples of 8 (they are in every LaMa configuration). */
struct v8 {
    float v[8];
};

__device__ __forceinline__ v8 ld8(const float *p, size_t i)
{
    float4 a = *reinterpret_cast<const float4 *>(p + i), b = *reinterpret_cast<const float4 *>(p + i + 4);
    return v8{{a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w}};
}

/* A pair of 16-bit values as floats. */
__device__ __forceinline__ float2 pair_f2(__nv_bfloat162 h)
{
    return __bfloat1622float2(h);
}
__device__ __forceinline__ float2 pair_f2(__half2 h)
{
    return __half22float2(h);
}

/* Eight 16-bit values (16 bytes, read at once) as floats; P their pair type. */
template <typename P, typename T> __device__ __forceinline__ v8 ld8_16(const T *p, size_t i)
{
    uint4 u = *reinterpret_cast<const uint4 *>(p + i);
    const P *h = reinterpret_cast<const P *>(&u);
    v8 r;
    for (int k = 0; k < 4; k++) {
        float2 f = pair_f2(h[k]);
        r.v[2 * k] = f.x;
        r.v[2 * k + 1] = f.y;
    }
    return r;
}

__device__ __forceinline__ v8 ld8(const bf16_t *p, size_t i)
{
    return ld8_16<__nv_bfloat162>(p, i);
}

__device__ __forceinline__ v8 ld8(const f16_t *p, size_t i)
{
    return ld8_16<__half2>(p, i);
}

__device__ __forceinline__ void st8(float *p, size_t i, const v8 &r)
{
    *reinterpret_cast<float4 *>(p + i) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
    *reinterpret_cast<float4 *>(p + i + 4) = make_float4(r.v[4], r.v[5], r.v[6], r.v[7]);
}

__device__ __forceinline__ void st8(bf16_t *p, size_t i, const v8 &r)
{
    uint4 u;
    __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
    for (int k = 0; k < 4; k++) h[k] = __floats2bfloat162_rn(r.v[2 * k], r.v[2 * k + 1]);
    *reinterpret_cast<uint4 *>(p + i) = u;
}

__device__ __forceinline__ void st8(f16_t *p, size_t i, const v8 &r)
{
    uint4 u;
    __half2 *h = reinterpret_cast<__half2 *>(&u);
    for (int k = 0; k < 4; k++) h[k] = __floats2half2_rn(r.v[2 * k], r.v[2 * k + 1]);
    *reinterpret_cast<uint4 *>(p + i) = u;
}

/* torch "reflect": ... 2 1 | 0 1 ... n-1 | n-2 ...; valid for |overshoot| < n. */
__device__ __forceinline__ int reflect(int i, int n)
{
    if (i < 0) return -i;
    if (i >= n) return 2 * n - 2 - i;
    return i;
}

/* numpy "symmetric" (edge repeated), periodic for any distance. */
__device__ __forceinline__ int symmetric(int i, int n)
{
    int m = i % (2 * n);
    if (m < 0) m += 2 * n;
    return m < n ? m : 2 * n - 1 - m;
}

/* Group g of eight of the bias channel (lama_cuda_weights.h, ext): 1 then
 * 0s in the first, 0s in the rest (32 wide by default: 4 groups). */
__device__ __forceinline__ v8 bias_channel(int g)
{
    return v8{{g ? 0.0f : 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}};
}

/* A launcher's result: 0 or the launch's CUDA error. */
static inline int launched(void)
{
    return (int)cudaGetLastError();
}

} // namespace pxlama

/* Runs the statement with the type Tn the element type et names; an et
 * that names none returns cudaErrorInvalidValue from the launcher. */
#define WITH_TYPE(Tn, et, ...)                                                                     \
    do {                                                                                           \
        if ((et) == PX_CU_BF16) {                                                                  \
            typedef bf16_t Tn;                                                                     \
            __VA_ARGS__;                                                                           \
        } else if ((et) == PX_CU_F16) {                                                            \
            typedef f16_t Tn;                                                                      \
            __VA_ARGS__;                                                                           \
        } else if ((et) == PX_CU_F32) {                                                            \
            typedef float Tn;                                                                      \
            __VA_ARGS__;                                                                           \
        } else {                                                                                   \
            return (int)cudaErrorInvalidValue;                                                     \
        }                                                                                          \
    } while (0)
#define WITH_ELEM(et, ...) WITH_TYPE(T, et, __VA_ARGS__)
/* Two types: Tx (etx: the residual stream, the FU's addend) and T (et). */
#define WITH_ELEM2(etx, et, ...) WITH_TYPE(Tx, etx, WITH_TYPE(T, et, __VA_ARGS__))


#endif
