/*
 * kind_inpaint.h — the inpaint request kind (kind.h): an image and a mask
 * in (JSON with base64 images, or multipart), decoded and planned with the
 * large-image strategy (hd.h) into one engine item per window, batched by
 * shape bucket, assembled and encoded into the reply of the route's
 * dialect (request.h describes both).
 */
#ifndef PX_SERVE_KIND_INPAINT_H
#define PX_SERVE_KIND_INPAINT_H

#include "serve/kind.h"

extern const px_kind px_kind_inpaint;

/*
 * The inpaint run adapter (px_kind_inpaint.run), for tests of the
 * scheduler: each item's payload is a px_engine_item (image, mask, out,
 * seed, method) and its shape the bucket size (bw, bh); items of other
 * sizes are padded to it by mirroring (the mask with zeros) and their
 * outputs cropped back. A lone item runs at its own size.
 */
void px_kind_inpaint_run(px_engine *e, px_sched_item *const *items, int n);

/* Fills a scheduler item's payload (eit, which must outlive the item),
 * shape and batch key for an inpaint engine input: sizes are rounded up to
 * multiples of bucket_step (0 = exact sizes) when the engine's lane batches. */
void px_kind_inpaint_item(px_sched_item *it, px_engine_item *eit, int batching, int bucket_step);

/* The CROP window bucket (hd.h) for engine e: configured when >= 0, else
 * (auto) PX_KIND_INPAINT_GPU_BUCKET on an engine running on a GPU, whose
 * plans are built per input shape, and 0 (exact windows: least work) on the
 * CPU. */
#define PX_KIND_INPAINT_GPU_BUCKET 256
int px_kind_inpaint_crop_bucket(const px_engine *e, int configured);

#endif
