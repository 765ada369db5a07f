/*
 * zc_attn8.c — the fp8 attention's policy (zc_attn8.h). Split from
 * zc_dit.c, which runs it.
 */
#include "engine/zimage/cuda/zc_attn8.h"

#include "core/env.h"
#include "engine/zimage/cuda/zattn.h"
#include "engine/zimage/cuda/zattn_cudnn.h"

#include <stdio.h>
#include <string.h>

/* PX_ZIMAGE_CUDA_ATTN8=0: the bf16 attention under fp8 linears (to compare). */
static int attn8_env(void)
{
    static int on = -1;
    return px_env_on_unless_0("PX_ZIMAGE_CUDA_ATTN8", &on);
}

/* The model's part: heads cuDNN's fp8 SDPA takes, rows of 16 bytes, FF
 * holding Q, K and V in e4m3. */
static int attn8_fits(const zc_dev *d)
{
    const zi_dit_config *c = &d->dc;
    return (d->hd == 64 || d->hd == 128) && c->dim % 16 == 0 &&
           4 * (size_t)c->ffn_hidden >= 3 * (size_t)c->dim;
}

/* Shorter items run the bf16 attention under fp8 linears: at 512² batch 4
 * (1,024-token items) cuDNN 9.14's fp8 SDPA wrote varying output on the
 * same inputs and saved nothing; at 1024² it never failed a check and is
 * 9 % faster (zimage-cuda.md, eighteenth session). */
#define ATTN8_MIN_TOKENS 4096

int zc_attn8_allowed(const zc_dev *d, int S)
{
    return d->fp8 && S >= ATTN8_MIN_TOKENS && attn8_env() && attn8_fits(d) &&
           !strcmp(zc_attn_name(), "cudnn") && !zattn_cudnn_fp8_disabled();
}

const char *zc_attn8_state(const zc_dev *d, char *buf, size_t n)
{
    const char *off = zattn_cudnn_fp8_disabled();
    if (!d->fp8)
        snprintf(buf, n, "off: precision bf16");
    else if (!attn8_env())
        snprintf(buf, n, "off: PX_ZIMAGE_CUDA_ATTN8=0");
    else if (strcmp(zc_attn_name(), "cudnn"))
        snprintf(buf, n, "off: PX_ZIMAGE_CUDA_ATTN=%s", zc_attn_name());
    else if (!attn8_fits(d))
        snprintf(buf, n, "off: head size %d (cuDNN's fp8 attention takes 64 or 128)", d->hd);
    else if (off)
        snprintf(buf, n, "off: %s", off);
    else
        snprintf(buf, n, "enabled for items of %d tokens or more", ATTN8_MIN_TOKENS);
    return buf;
}
