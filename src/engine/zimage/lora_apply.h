/*
 * lora_apply.h — LoRA deltas (lora.h) applied at run time on the CPU next
 * to a base linear, for the rows of one item: y[:, row0 : row0 + rows] +=
 * m·(α/r)·(x·Aᵀ)·Bᵀ, two thin products per delta on the zops matmul, so
 * items of one batch can carry different LoRAs and scales without touching
 * the shared weights.
 */
#ifndef PX_ENGINE_ZIMAGE_LORA_APPLY_H
#define PX_ENGINE_ZIMAGE_LORA_APPLY_H

#include "engine/zimage/lora.h"
#include "engine/zimage/zconfig.h"
#include "engine/zimage/zops.h"

#include <stddef.h>

/* Checks an item's uses before a forward: 0..ZI_MAX_LORAS of them, none
 * NULL, finite scales, and every delta inside the linears of a DiT of
 * configuration cfg (a LoRA opened for another model would write out of
 * bounds). Returns 0 or PX_EINVAL with the reason in err. */
int zi_lora_check_uses(const zi_lora_use *u, int n, const zi_dit_config *cfg, char *err,
                       size_t errlen);

/* The largest rank among the uses (0 when they touch nothing): the caller's
 * scratch for zi_lora_apply holds rows × this many floats. */
int zi_lora_uses_max_rank(const zi_lora_use *u, int n);

/*
 * Adds the deltas of n uses for linear (block, site) to y [rows, ...] (ldy
 * floats apart), x [rows, in] (ldx apart) being the linear's input. scratch
 * holds rows × zi_lora_uses_max_rank floats. Returns 0 or an op's error
 * (message in err).
 */
int zi_lora_apply(zi_ctx *c, const zi_lora_use *u, int n, int block, zi_lora_site site,
                  const float *x, int rows, int ldx, float *y, int ldy, float *scratch, char *err,
                  size_t errlen);

#endif
