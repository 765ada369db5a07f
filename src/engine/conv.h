/*
 * conv.h — the CPU convolution backend shared by engines: the one interface
 * the LaMa graph uses for every convolution (it expresses each transposed
 * one as four small convolutions) and the Z-Image VAE decoder uses for its
 * 3x3 and 1x1 convolutions (banded, in oneDNN's blocked layout). The CPU
 * backend is
 * conv_dnnl.c (oneDNN's C API; docs/benchmarks/lama-cpu.md says why oneDNN
 * and not OpenBLAS), chosen by the Makefile.
 *
 * Tensors are NHWC float32, batch 1. Convolutions pad only with zeros at the
 * bottom and right (what the graph's sub-pixel form of the transposed
 * convolutions needs); the reflection padding of LaMa is done by the graph,
 * since oneDNN has none.
 *
 * Objects and threads: a px_conv_weights holds one layer's weights for the
 * whole engine (any format conversion the backend wants is made once and
 * shared; safe to use from several threads). A px_conv is that layer bound
 * to one plan's buffers (fixed src/dst pointers) and is used by one thread
 * at a time, as is a px_conv_stream.
 */
#ifndef PX_ENGINE_CONV_H
#define PX_ENGINE_CONV_H

#include "core/pool.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct px_conv_weights px_conv_weights;
typedef struct px_conv px_conv;
typedef struct px_conv_stream px_conv_stream;

/* One layer: weights (cout, cin, kh, kw) as PyTorch's Conv2d, bias NULL or cout. */
typedef struct px_conv_spec {
    int cout, cin, kh, kw, stride;
    float *w;
    float *b;
} px_conv_spec;

/* Takes ownership of s->w and s->b (set to NULL in s). Returns 0, PX_ENOMEM
 * or PX_EUNSUP (backend unavailable). Caller destroys *out. */
int px_conv_weights_create(px_conv_spec *s, px_conv_weights **out, char *err, size_t errlen);
void px_conv_weights_destroy(px_conv_weights *w);

/* Bytes the backend holds for these weights now (plain and converted). */
size_t px_conv_weights_bytes(const px_conv_weights *w);

typedef struct px_conv_args {
    int h, w;         /* input spatial size */
    const float *src; /* h x w x cin */
    float *dst;       /* oh x ow x cout (px_conv_out_size) */
    bool accumulate;  /* dst = conv(src) + dst, then the activation */
    bool relu;
    int pad_b, pad_r; /* zero rows below, columns to the right */
    /* Let the backend convolve in its preferred (blocked) layout, with src
     * reordered into it and the result back to NHWC through the scratch
     * area (px_conv_scratch_bytes counts both copies). Worth it for wide
     * layers: on AVX2, oneDNN's direct convolution on nChw8c took ~0.63x the
     * CPU time of the one on NHWC for 256 channels at 128x128. Ignored when
     * relu and accumulate are both set. */
    bool blocked;
} px_conv_args;

/* Binds weights to buffers. Returns 0 or PX_EUNSUP/PX_ENOMEM with the
 * backend's reason. Caller destroys *out (before the weights). */
int px_conv_create(px_conv_weights *w, const px_conv_args *a, px_conv **out, char *err,
                   size_t errlen);
void px_conv_destroy(px_conv *c);

/* Scratch memory the convolution needs while it runs (may be 0), and where
 * it is: one plan shares one scratch area (the max) among its convolutions. */
size_t px_conv_scratch_bytes(const px_conv *c);
int px_conv_bind_scratch(px_conv *c, void *scratch, char *err, size_t errlen);

/* An execution context (a oneDNN stream), one per plan. NULL on failure. */
px_conv_stream *px_conv_stream_create(void);
void px_conv_stream_destroy(px_conv_stream *s);

/* Threads for the backend's own kernels run through the stream (NULL: the
 * calling thread alone). */
void px_conv_stream_set_pool(px_conv_stream *s, px_pool *pool);

/* Threads the backend uses for calls from this thread (<= 0: all CPUs). */
void px_conv_set_threads(int n);

/* Runs the convolution synchronously. Returns 0 or PX_EUNSUP on a backend
 * failure (with no message: these do not fail once created). */
int px_conv_run(px_conv *c, px_conv_stream *s);

/* Output size of a layer for its arguments' input size and padding. */
void px_conv_out_size(const px_conv_weights *c, const px_conv_args *a, int *oh, int *ow);

/* Name of the implementation the backend picked (for describe/benchmarks). */
const char *px_conv_impl(const px_conv *c);

#endif
