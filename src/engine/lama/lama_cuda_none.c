/*
 * lama_cuda_none.c — the CUDA backend's stand-in for builds without CUDA
 * (the default; `make CUDA=1` links lama_cuda.c instead).
 */
#include "engine/lama/lama_cuda.h"

#include "core/err.h"

int px_lama_cuda_probe(char *err, size_t errlen)
{
    return px_errf(err, errlen, PX_EUNSUP,
                   "this pixserve was built without CUDA (make CUDA=1)");
}

int px_lama_cuda_create(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen)
{
    (void)cfg;
    *out = NULL;
    return px_errf(err, errlen, PX_EUNSUP,
                   "this pixserve was built without CUDA: rebuild with `make CUDA=1` on a machine "
                   "with the CUDA toolkit, cuDNN and cuFFT");
}

int px_lama_cuda_run_float(px_engine *e, px_engine_item *items, int n, float **pred, int *H,
                           int *W, char *err, size_t errlen)
{
    (void)e, (void)items, (void)n, (void)H, (void)W;
    *pred = NULL;
    return px_errf(err, errlen, PX_EUNSUP, "built without CUDA");
}
