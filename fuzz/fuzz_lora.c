/*
 * fuzz_lora.c — libFuzzer target for the Z-Image LoRA loader (lora.c; LoRA
 * files are user uploads): any bytes must load or be refused with a
 * message, never crash or read outside the buffer; a loaded LoRA's deltas
 * must fit the model (rows inside the linear, the input width of its site,
 * ranks in range, finite values), be sorted and reachable through the
 * index, and merge into weights of the linear's size. The model is a fixed
 * small one: dim 16, FFN 42, t_dim 16, one refiner block of each kind and
 * one joint layer (fuzz/make_corpus_zimage.py writes the seeds for it).
 */
#include "core/err.h"
#include "engine/zimage/lora.h"
#include "engine/zimage/lora_apply.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const zi_lora *l, const zi_dit_config *c)
{
    int D = c->dim, F = c->ffn_hidden, T = c->t_dim, nb = 2 * c->n_refiner_layers + c->n_layers;
    const int rows[ZI_LORA_NSITES] = {3 * D, D, F, D, F, 4 * D};
    const int in[ZI_LORA_NSITES] = {D, D, D, F, D, T};
    if (zi_lora_count(l) < 1) __builtin_trap();
    zi_lora_use u = {l, 0.5f};
    char err[256];
    if (zi_lora_check_uses(&u, 1, c, err, sizeof err)) __builtin_trap();
    int seen = 0;
    for (int b = 0; b < nb; b++)
        for (int s = 0; s < ZI_LORA_NSITES; s++) {
            int n;
            const zi_lora_delta *d = zi_lora_find(l, b, s, &n);
            if (n && d != zi_lora_at(l, seen)) __builtin_trap(); /* sorted by (block, site) */
            for (int i = 0; i < n; i++) {
                if (d[i].block != b || (int)d[i].site != s || d[i].in != in[s] || d[i].rank < 1 ||
                    d[i].rank > d[i].in || d[i].row0 < 0 || d[i].row0 + d[i].rows > rows[s] ||
                    !isfinite(d[i].alpha_over_rank))
                    __builtin_trap();
                if (d[i].dtype != ZI_F32 && d[i].dtype != ZI_BF16) __builtin_trap();
                for (size_t k = 0; k < (size_t)d[i].rank * d[i].in; k++)
                    if (!isfinite(zi_lora_value(d[i].dtype, d[i].A, k))) __builtin_trap();
                for (size_t k = 0; k < (size_t)d[i].rows * d[i].rank; k++)
                    if (!isfinite(zi_lora_value(d[i].dtype, d[i].B, k))) __builtin_trap();
            }
            seen += n;
            if (n) {
                float *w = calloc((size_t)rows[s] * in[s], sizeof *w);
                if (zi_lora_merge(&u, 1, b, s, w, rows[s], in[s])) __builtin_trap();
                free(w);
            }
        }
    if (seen != zi_lora_count(l)) __builtin_trap(); /* the index covers every delta */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zi_dit_config c;
    zi_dit_config_default(&c);
    c.dim = 16, c.n_heads = 2, c.ffn_hidden = 42, c.t_dim = 16, c.n_layers = 1;
    c.n_refiner_layers = 1;
    /* A private copy so that ASan sees reads past the end of the input. */
    uint8_t *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    char err[1024];
    err[0] = 0;
    zi_lora *l = NULL;
    int rc = zi_lora_open_mem(buf, size, "fuzz", &c, &l, err, sizeof err);
    if (rc) {
        if (!err[0] || l) __builtin_trap(); /* every refusal says why */
    } else {
        check(l, &c);
        zi_lora_free(l);
    }
    free(buf);
    return 0;
}
