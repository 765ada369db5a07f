/*
 * graph.h — the LaMa generator (FFC ResNet) as a network of loaded weights
 * and, per input shape, a plan that runs it.
 *
 * A px_lama_net is immutable after loading and shared by every thread. A
 * px_lama_plan belongs to one padded input shape H x W: its activation memory
 * is laid out once (one arena, buffers placed by lifetime so that dead ones
 * are reused), every convolution is bound to its buffers and the FFTs are
 * planned, so running it allocates nothing. A plan is used by one thread at
 * a time; the engine (lama.c) keeps a cache of them.
 *
 * Layout is NHWC float32 throughout; the trunk keeps its local and global
 * channel groups in separate tensors.
 */
#ifndef PX_ENGINE_LAMA_GRAPH_H
#define PX_ENGINE_LAMA_GRAPH_H

#include "core/pool.h"
#include "engine/lama/weights.h"
#include "image/image.h"

#include <stdatomic.h>
#include <stddef.h>

typedef struct px_lama_net px_lama_net;
typedef struct px_lama_plan px_lama_plan;

/* Loads a converted safetensors file (tools/lama_convert.py). Returns 0, the
 * loader's errors (PX_EIO, PX_ECORRUPT, PX_EUNSUP, ...; err names the file
 * and the problem) or PX_ENOMEM. Caller frees *out with px_lama_net_free. */
int px_lama_net_load(const char *path, px_lama_net **out, char *err, size_t errlen);
void px_lama_net_free(px_lama_net *n);

const px_lama_arch *px_lama_net_arch(const px_lama_net *n);
size_t px_lama_net_params(const px_lama_net *n);      /* elements in the file */
size_t px_lama_net_weight_bytes(const px_lama_net *n); /* held now */

/* The padded side for an input side: symmetric padding to a multiple of
 * 2^n_down (8 for big-lama), and at least twice that, so the trunk is 2 px
 * or more (reflection padding needs it). */
int px_lama_padded_side(const px_lama_arch *a, int side);

/* Bytes of the activation arena of a plan for a padded H x W input (no
 * allocation; used for memory estimates). 0 if H, W are not valid padded
 * sides or the size overflows. */
size_t px_lama_plan_arena_bytes(const px_lama_arch *a, int H, int W);

/* Builds a plan for a padded H x W input with up to nthreads threads for the
 * FFTs. Returns 0, PX_EINVAL (H, W not valid padded sides), PX_ETOOBIG (size
 * overflow), PX_ENOMEM or a backend error. Caller destroys *out. */
int px_lama_plan_create(px_lama_net *n, int H, int W, int nthreads, px_lama_plan **out, char *err,
                        size_t errlen);
void px_lama_plan_destroy(px_lama_plan *p);

int px_lama_plan_h(const px_lama_plan *p);
int px_lama_plan_w(const px_lama_plan *p);

/* Bytes the plan holds: arena plus the backend's scratch area. */
size_t px_lama_plan_bytes(const px_lama_plan *p);

/* Called with each layer's output (NHWC, h x w x c) under the reference's
 * names ("act.model.N", "act.model.N.l"/".g" for the trunk's two groups);
 * for per-layer comparison in tests. */
typedef void (*px_lama_dump_fn)(void *ctx, const char *name, const float *t, int h, int w, int c);

/*
 * Inpaints one image through a plan whose size is the padded size of img:
 * mask binarised (non-zero = hole), image scaled to [0,1] and masked, both
 * padded symmetrically (bottom/right), the generator run, and
 *   result = mask * pred + (1 - mask) * image
 * written to `result` (img->h x img->w x 3 floats) before quantisation;
 * result may be NULL, and px_lama_plan_pred() then gives the prediction.
 * cancel (may be NULL) is polled between layers. Returns 0, PX_EINVAL
 * (shape mismatch), PX_ECANCELED or a backend error (message in err).
 */
int px_lama_plan_run(px_lama_plan *p, px_pool *pool, const px_image *img, const px_image *mask,
                     float *result, const atomic_int *cancel, px_lama_dump_fn dump, void *dump_ctx,
                     char *err, size_t errlen);

/* The generator's output after the last run: H x W x 3 in [0, 1] (padded
 * size, row stride W * 3). Owned by the plan, valid until its next run. */
const float *px_lama_plan_pred(const px_lama_plan *p);

#endif
