/*
 * fuzz_zconfig.c — libFuzzer target for the four Z-Image config parsers
 * (config.json texts are untrusted input): any bytes must parse or fail
 * with PX_EINVAL and a message, and a parsed config must satisfy the
 * invariants the engine relies on (heads divide the width, RoPE axes sum to
 * the head size, groups divide the VAE channels). Seeds in
 * fuzz/corpus/zconfig/ (written by fuzz/make_corpus_zimage.py).
 */
#include "core/err.h"
#include "engine/zimage/zconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, const char *err)
{
    if (rc && (rc != PX_EINVAL || !err[0])) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy without a terminator: the parsers take a length. */
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    char err[256];
    zi_dit_config d;
    zi_dit_config_default(&d);
    err[0] = 0;
    int rc = zi_dit_config_parse(buf, size, &d, err, sizeof err);
    check(rc, err);
    if (!rc && (d.dim % d.n_heads ||
                d.axes_dims[0] + d.axes_dims[1] + d.axes_dims[2] != d.dim / d.n_heads))
        __builtin_trap();
    zi_qwen3_config q;
    zi_qwen3_config_default(&q);
    err[0] = 0;
    rc = zi_qwen3_config_parse(buf, size, &q, err, sizeof err);
    check(rc, err);
    if (!rc && (q.n_heads % q.n_kv_heads || q.head_dim % 2)) __builtin_trap();
    zi_vae_config v;
    zi_vae_config_default(&v);
    err[0] = 0;
    rc = zi_vae_config_parse(buf, size, &v, err, sizeof err);
    check(rc, err);
    if (!rc) {
        if (v.nlevels < 1 || v.nlevels > 8) __builtin_trap();
        for (int i = 0; i < v.nlevels; i++)
            if (v.block_out[i] < 1 || v.block_out[i] % v.groups) __builtin_trap();
    }
    zi_sampler_config s;
    zi_sampler_config_default(&s);
    err[0] = 0;
    rc = zi_sampler_config_parse(buf, size, &s, err, sizeof err);
    check(rc, err);
    if (!rc && !(s.shift > 0 && s.num_train_timesteps >= 1)) __builtin_trap();
    free(buf);
    return 0;
}
