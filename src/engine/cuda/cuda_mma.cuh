/*
 * cuda_mma.cuh — the two tensor-core instructions our own kernels use, as
 * inline PTX (sm_80 and later): ldmatrix (four 8x8 16-bit tiles from
 * shared memory into one warp's fragments) and mma.sync m16n8k16 with fp32
 * accumulation, for bf16 and fp16 operands. The Z-Image attention
 * (zattn.cu) and LaMa's 7x7 stem and head (conv7.cu) build on them.
 *
 * Fragment layouts (PTX ISA, "mma.m16n8k16"), lane = 4 g + t:
 *   A (16x16, row-major): a[0] (row g, cols 2t, 2t+1), a[1] (row g+8, same
 *     cols), a[2] (row g, cols 2t+8, 2t+9), a[3] (row g+8, cols 2t+8, 2t+9);
 *   B (16x8, "col": stored n-major, k contiguous): b0 (k 2t, 2t+1 of column
 *     g), b1 (k 2t+8, 2t+9 of column g);
 *   C (16x8 fp32): c[0], c[1] (row g, cols 2t, 2t+1), c[2], c[3] (row g+8).
 * ldmatrix .x4: lanes 8i..8i+7 give the row addresses of tile i (16 bytes
 * each, 16-byte aligned), and register i receives tile i in the A layout
 * above (row lane/4, elements 2(lane%4), +1): for an A operand, tile i is
 * rows +8(i%2), columns +8(i/2). Device code only (nvcc).
 */
#ifndef PX_ENGINE_CUDA_CUDA_MMA_CUH
#define PX_ENGINE_CUDA_CUDA_MMA_CUH

#include <stdint.h>

namespace pxcu {

__device__ __forceinline__ void ldsm4(uint32_t r[4], const void *p)
{
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* The same, each tile transposed. */
__device__ __forceinline__ void ldsm4_t(uint32_t r[4], const void *p)
{
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* c += a (16x16, row) · b (16x8, col), bf16 operands. */
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* The same with fp16 operands. */
__device__ __forceinline__ void mma16816_f16(float c[4], const uint32_t a[4], uint32_t b0,
                                             uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

} // namespace pxcu

#endif
