/*
 * lama.h — the "lama" engine: LaMa (big-lama, FFC ResNet) inpainting on the
 * CPU from converted weights (tools/lama_convert.py). The engine's vtable is
 * px_engine_lama_ops (engine_impl.h); this header holds what callers outside
 * the engine interface may want to know.
 */
#ifndef PX_ENGINE_LAMA_LAMA_H
#define PX_ENGINE_LAMA_LAMA_H

/* Idle plans (one per input shape) the engine keeps for reuse, at most this
 * many bytes of them and this many plans; busy plans are not counted. */
#define PX_LAMA_IDLE_PLAN_BYTES ((size_t)1 << 30)
#define PX_LAMA_MAX_PLANS 8

/* The backend's scratch area is only known once a plan exists, and depends
 * on the kernels oneDNN picks for the CPU; memory estimates add this margin
 * for it (measured: 12 KiB for big-lama at 64..1024 px on AVX-512, where the
 * brgemm kernels need almost none; im2col-style kernels on other CPUs need
 * more). */
#define PX_LAMA_SCRATCH_ESTIMATE ((size_t)16 << 20)

#endif
