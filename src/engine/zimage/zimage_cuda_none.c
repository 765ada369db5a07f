/*
 * zimage_cuda_none.c — the zimage CUDA backend's stand-in for builds
 * without CUDA (the default; `make CUDA=1` links src/engine/zimage/cuda/
 * instead).
 */
#include "engine/zimage/zimage_cuda.h"

#include "core/err.h"

static const char k_why[] = "this pixserve was built without the CUDA Z-Image backend: rebuild "
                            "with `make CUDA=1` on a machine with the CUDA toolkit and cuBLASLt "
                            "(zimage runs on device=cpu)";

int zi_cuda_probe(char *err, size_t errlen)
{
    return px_errf(err, errlen, PX_EUNSUP, "%s", k_why);
}

int zi_cuda_engine_create(const px_engine_config *cfg, px_engine **out, char *err, size_t errlen)
{
    (void)cfg;
    *out = NULL;
    return px_errf(err, errlen, PX_EUNSUP, "device %s: %s", cfg->device ? cfg->device : "cuda",
                   k_why);
}

int zi_cuda_encode(px_engine *e, const int32_t *ids, int n, float *feat, char *err, size_t errlen)
{
    (void)e, (void)ids, (void)n, (void)feat;
    return px_errf(err, errlen, PX_EUNSUP, "%s", k_why);
}

int zi_cuda_dit_forward(px_engine *e, const float *const *lat, const float *const *text,
                        const int *text_len, const zi_lora_use *const *loras, const int *nloras,
                        int n, int lat_h, int lat_w, float sigma, float *const *out, char *err,
                        size_t errlen)
{
    (void)e, (void)lat, (void)text, (void)text_len, (void)n, (void)lat_h, (void)lat_w;
    (void)loras, (void)nloras;
    (void)sigma, (void)out;
    return px_errf(err, errlen, PX_EUNSUP, "%s", k_why);
}

int zi_cuda_run_latents(px_engine *e, px_engine_item *items, int n, float *lat_out, char *err,
                        size_t errlen)
{
    (void)e, (void)items, (void)n, (void)lat_out;
    return px_errf(err, errlen, PX_EUNSUP, "%s", k_why);
}

int zi_cuda_vae_decode(px_engine *e, const float *latent, int lat_h, int lat_w, uint8_t *rgb,
                       char *err, size_t errlen)
{
    (void)e, (void)latent, (void)lat_h, (void)lat_w, (void)rgb;
    return px_errf(err, errlen, PX_EUNSUP, "%s", k_why);
}

int zi_cuda_fp8_gemm_check(zi_cuda_fp8_case *c, char *err, size_t errlen)
{
    (void)c;
    return px_errf(err, errlen, PX_EUNSUP, "%s", k_why);
}

int zi_cuda_kernels_check(zi_cuda_kernels_case *c, char *err, size_t errlen)
{
    (void)c;
    return px_errf(err, errlen, PX_EUNSUP, "%s", k_why);
}

void zi_cuda_lora_forget(const zi_lora *l)
{
    (void)l; /* nothing is cached without the backend */
}
