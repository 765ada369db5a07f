/*
 * qwen3.h — the Z-Image text encoder: Qwen3 (decoder-only, causal, GQA,
 * per-head q/k RMSNorm, half-split RoPE, SwiGLU) run over a prompt's token
 * ids to produce the DiT's caption features = hidden_states[-2], the output
 * of the next-to-last layer before the final norm. The last layer, the final
 * norm and the LM head are never run (nor need to be present).
 *
 * A zi_qwen3 binds a weight store (borrowed: it must outlive the model) and
 * is immutable, so any number of threads may encode at once, each with its
 * own zi_ctx.
 */
#ifndef PX_ENGINE_ZIMAGE_QWEN3_H
#define PX_ENGINE_ZIMAGE_QWEN3_H

#include "engine/zimage/zconfig.h"
#include "engine/zimage/zops.h"
#include "engine/zimage/zweights.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zi_qwen3 zi_qwen3; /* opaque */

/*
 * Binds the tensors of layers 0..n_layers-2 and the token embedding by their
 * canonical names (zweights.h), checking each shape against cfg. Returns 0,
 * PX_EINVAL (a config that cannot be run: heads not dividing, n_layers < 1),
 * PX_ENOTFOUND / PX_ECORRUPT (missing tensor or wrong shape; err names the
 * file and the tensor) or PX_ENOMEM. Caller frees *out; w must outlive it.
 */
int zi_qwen3_bind(const zi_weights *w, const zi_qwen3_config *cfg, zi_qwen3 **out, char *err,
                  size_t errlen);
void zi_qwen3_free(zi_qwen3 *m);

const zi_qwen3_config *zi_qwen3_config_of(const zi_qwen3 *m);

/*
 * Encodes n token ids (the templated prompt, real tokens only) into
 * out[n, hidden] (caller-allocated, n·hidden floats). cancel (may be NULL)
 * is polled between layers. Returns 0, PX_EINVAL (n < 1, n above
 * max_positions, an id outside the vocabulary), PX_ECANCELED, PX_ENOMEM or
 * an op's error (message in err).
 */
int zi_qwen3_encode(const zi_qwen3 *m, zi_ctx *c, const int32_t *ids, int n, float *out,
                    const atomic_int *cancel, char *err, size_t errlen);

/* Floating-point operations of one encode of n tokens (for benchmarks). */
double zi_qwen3_flops(const zi_qwen3_config *cfg, int n);

#endif
