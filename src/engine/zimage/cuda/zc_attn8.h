/*
 * zc_attn8.h — when the DiT's attention runs in fp8 (cuDNN's fp8 SDPA on
 * e4m3 Q, K, V) under fp8 linears: the device-level policy (precision,
 * switches, the model's head size, cuDNN's own refusals, the items'
 * length) and its description. zc_dit.c adds what depends on the block
 * (an fp8 copy for the out projection, no LoRA bound).
 */
#ifndef PX_ENGINE_ZIMAGE_CUDA_ZC_ATTN8_H
#define PX_ENGINE_ZIMAGE_CUDA_ZC_ATTN8_H

#include "engine/zimage/cuda/zc_net.h"

#include <stddef.h>

/* 1 when d may run the fp8 attention for items of S tokens: an fp8
 * device, PX_ZIMAGE_CUDA_ATTN8 not 0, cuDNN attention, a model that suits
 * it, cuDNN's fp8 graph not turned off, and S long enough. */
int zc_attn8_allowed(const zc_dev *d, int S);

/* The state of d's fp8 attention, for the engine's description: "enabled
 * for items of N tokens or more" (it runs for items that long wherever
 * cuDNN's fp8 plans build and pass their checks, and LoRAs are not
 * bound), or "off: " and why (bf16, a switch, the head size, or why cuDNN
 * turned it off). Into buf (n bytes). */
const char *zc_attn8_state(const zc_dev *d, char *buf, size_t n);

#endif
