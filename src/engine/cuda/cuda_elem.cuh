/*
 * cuda_elem.cuh — loading and storing one activation value as fp32 from
 * and to fp32, bf16 or fp16 tensors, for kernels templated over the element
 * type (the LaMa backend's kernels.cu, the Z-Image VAE's zvae_kernels.cu):
 * arithmetic stays fp32, a 16-bit store rounds to nearest even once.
 * Device code only (nvcc).
 */
#ifndef PX_ENGINE_CUDA_CUDA_ELEM_CUH
#define PX_ENGINE_CUDA_CUDA_ELEM_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stddef.h>

namespace pxcu {

typedef __nv_bfloat16 bf16_t;
typedef __half f16_t;

__device__ __forceinline__ float ld(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16_t *p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float *p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(bf16_t *p, size_t i, float v) { p[i] = __float2bfloat16(v); }
__device__ __forceinline__ float ld(const f16_t *p, size_t i)
{
    return __half2float(p[i]);
}
__device__ __forceinline__ void st(f16_t *p, size_t i, float v)
{
    p[i] = __float2half_rn(v);
}

} // namespace pxcu

#endif
