/*
 * zimage_lora_engine.c — px_engine_lora for the Z-Image engines
 * (zimage_lora_engine.h).
 */
#include "engine/zimage/zimage_lora_engine.h"

#include "core/err.h"
#include "engine/engine_impl.h"
#include "engine/zimage/zimage_cuda.h"

#include <math.h>
#include <stdlib.h>

struct px_engine_lora {
    struct px_engine_lora_head head; /* first: engine.c reads it */
    zi_lora *lora;
};

int zi_engine_lora_open(const zi_dit_config *cfg, const char *path, px_engine_lora **out,
                        char *err, size_t errlen)
{
    *out = NULL;
    px_engine_lora *l = calloc(1, sizeof *l);
    if (!l) return px_errf(err, errlen, PX_ENOMEM, "out of memory");
    int rc = zi_lora_open(path, cfg, &l->lora, err, errlen);
    if (rc) {
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void zi_engine_lora_close(px_engine_lora *l)
{
    if (!l) return;
    /* The GPUs' copies first: the freed address may be reused as a key by
     * the next LoRA (a no-op without the CUDA build). */
    zi_cuda_lora_forget(l->lora);
    zi_lora_free(l->lora);
    free(l);
}

const zi_lora *zi_engine_lora_of(const px_engine_lora *l)
{
    return l ? l->lora : NULL;
}

int zi_engine_lora_describe(const px_engine_lora *el, px_buf *out)
{
    const zi_lora *l = el->lora;
    double alpha = -1;
    unsigned dts = 0; /* bit per dtype held: BF16 files stay BF16 */
    for (int i = 0; i < zi_lora_count(l); i++) {
        const zi_lora_delta *d = zi_lora_at(l, i);
        dts |= 1u << d->dtype;
        double a = (double)d->alpha_over_rank * d->rank;
        if (i == 0) alpha = a;
        else if (fabs(a - alpha) > 1e-6 * fabs(alpha)) alpha = NAN;
    }
    unsigned m = zi_lora_site_mask(l);
    int rc = px_buf_printf(out, "\"rank\":%d,\"alpha\":", zi_lora_max_rank(l));
    if (!rc) rc = isfinite(alpha) ? px_buf_printf(out, "%.9g", alpha) : px_buf_puts(out, "null");
    if (!rc) rc = px_buf_printf(out, ",\"deltas\":%d,\"sites\":[", zi_lora_count(l));
    const char *sep = "";
    if (!rc && (m & (1u << ZI_LORA_QKV | 1u << ZI_LORA_OUT)))
        rc = px_buf_puts(out, "\"attention\""), sep = ",";
    if (!rc && (m & (1u << ZI_LORA_W1 | 1u << ZI_LORA_W2 | 1u << ZI_LORA_W3)))
        rc = px_buf_printf(out, "%s\"ffn\"", sep), sep = ",";
    if (!rc && (m & 1u << ZI_LORA_ADA)) rc = px_buf_printf(out, "%s\"adaLN\"", sep);
    if (!rc)
        rc = px_buf_printf(out, "],\"spelling\":\"%s\",\"dtype\":\"%s\",\"bytes\":%zu",
                           zi_lora_spelling_name(zi_lora_spelling_of(l)),
                           dts == 1u << ZI_BF16 ? "bf16" : dts == 1u << ZI_F32 ? "f32" : "mixed",
                           zi_lora_bytes(l));
    return rc;
}

int zi_engine_lora_uses(const px_engine_gen *g, zi_lora_use *out, char *err, size_t errlen)
{
    if (g->nloras < 0 || g->nloras > PX_ENGINE_MAX_LORAS || g->nloras > ZI_MAX_LORAS)
        return px_errf(err, errlen, PX_EINVAL, "%d LoRAs (at most %d)", g->nloras, ZI_MAX_LORAS);
    for (int i = 0; i < g->nloras; i++) {
        out[i] = (zi_lora_use){zi_engine_lora_of(g->loras[i].lora), g->loras[i].scale};
        if (!out[i].lora) return px_errf(err, errlen, PX_EINVAL, "LoRA %d: none given", i);
    }
    return g->nloras;
}
