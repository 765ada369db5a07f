/*
 * zimage_lora_engine.h — the Z-Image engines' px_engine_lora (engine.h):
 * a zi_lora (lora.h) behind the engine-neutral handle, shared by the CPU
 * engine (zimage_engine.c) and the CUDA one, with its JSON description and
 * the conversion of a generate item's LoRA uses.
 */
#ifndef PX_ENGINE_ZIMAGE_ZIMAGE_LORA_ENGINE_H
#define PX_ENGINE_ZIMAGE_ZIMAGE_LORA_ENGINE_H

#include "core/buf.h"
#include "engine/engine.h"
#include "engine/zimage/lora.h"

/* Opens a LoRA file for a DiT of configuration cfg (zi_lora_open's errors).
 * Caller closes *out with zi_engine_lora_close. */
int zi_engine_lora_open(const zi_dit_config *cfg, const char *path, px_engine_lora **out,
                        char *err, size_t errlen);
void zi_engine_lora_close(px_engine_lora *l);

/* "rank", "alpha" (null when the deltas differ), "deltas", "sites"
 * (["attention", "ffn", "adaLN"]), "spelling", "bytes". Returns 0 or the
 * buffer's error. */
int zi_engine_lora_describe(const px_engine_lora *l, px_buf *out);

const zi_lora *zi_engine_lora_of(const px_engine_lora *l);

/* An item's uses as zi_lora_use (out holds PX_ENGINE_MAX_LORAS). Returns
 * the count, or PX_EINVAL (too many, or a NULL LoRA) with err. */
int zi_engine_lora_uses(const px_engine_gen *g, zi_lora_use *out, char *err, size_t errlen);

#endif
