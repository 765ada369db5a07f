/*
 * lora_apply.c — run-time LoRA application on the CPU (lora_apply.h).
 * The down product x·Aᵀ is [rows, r] with r small, so the cost per delta
 * is about 2·rows·r·(in + out) flops against the base linear's
 * 2·rows·in·out: a few percent at the ranks in use.
 */
#include "engine/zimage/lora_apply.h"

#include "core/err.h"

#include <math.h>

/* Input features and output rows of a site's base linear. */
static void site_shape(const zi_dit_config *c, zi_lora_site s, int *in, int *out)
{
    int D = c->dim, F = c->ffn_hidden;
    *in = s == ZI_LORA_W2 ? F : s == ZI_LORA_ADA ? c->t_dim : D;
    *out = s == ZI_LORA_QKV ? 3 * D : s == ZI_LORA_W1 || s == ZI_LORA_W3 ? F
                                    : s == ZI_LORA_ADA                  ? 4 * D
                                                                        : D;
}

int zi_lora_check_uses(const zi_lora_use *u, int n, const zi_dit_config *cfg, char *err,
                       size_t errlen)
{
    if (n < 0 || n > ZI_MAX_LORAS || (n > 0 && !u))
        return px_errf(err, errlen, PX_EINVAL, "%d LoRAs (at most %d)", n, ZI_MAX_LORAS);
    int nblocks = 2 * cfg->n_refiner_layers + cfg->n_layers;
    for (int k = 0; k < n; k++) {
        if (!u[k].lora || !isfinite(u[k].scale))
            return px_errf(err, errlen, PX_EINVAL, "LoRA %d: %s", k,
                           u[k].lora ? "scale is not a number" : "none given");
        for (int i = 0; i < zi_lora_count(u[k].lora); i++) {
            const zi_lora_delta *d = zi_lora_at(u[k].lora, i);
            int in, out;
            site_shape(cfg, d->site, &in, &out);
            if (d->block >= nblocks || d->in != in || d->row0 + d->rows > out ||
                (d->site == ZI_LORA_ADA && d->block >= cfg->n_refiner_layers &&
                 d->block < 2 * cfg->n_refiner_layers))
                return px_errf(err, errlen, PX_EINVAL,
                               "LoRA %d was opened for another model (block %d, in %d)", k,
                               d->block, d->in);
        }
    }
    return 0;
}

int zi_lora_uses_max_rank(const zi_lora_use *u, int n)
{
    int r = 0;
    for (int k = 0; k < n; k++)
        if (zi_lora_max_rank(u[k].lora) > r) r = zi_lora_max_rank(u[k].lora);
    return r;
}

int zi_lora_apply(zi_ctx *c, const zi_lora_use *u, int n, int block, zi_lora_site site,
                  const float *x, int rows, int ldx, float *y, int ldy, float *scratch, char *err,
                  size_t errlen)
{
    for (int k = 0; k < n; k++) {
        int nd;
        const zi_lora_delta *d = zi_lora_find(u[k].lora, block, site, &nd);
        for (int j = 0; j < nd; j++) {
            int r = d[j].rank, rc;
            float s = u[k].scale * d[j].alpha_over_rank;
            if (s == 0.0f) continue;
            if ((rc = zi_op_matmul(c, x, rows, d[j].in, ldx, d[j].A, d[j].dtype, r, NULL, scratch, r,
                                   0, err, errlen)))
                return rc;
            for (size_t i = 0; i < (size_t)rows * r; i++) scratch[i] *= s;
            if ((rc = zi_op_matmul(c, scratch, rows, r, r, d[j].B, d[j].dtype, d[j].rows, NULL,
                                   y + d[j].row0, ldy, ZI_LIN_ACCUM, err, errlen)))
                return rc;
        }
    }
    return 0;
}
