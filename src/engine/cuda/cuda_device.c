/*
 * cuda_device.c — device lists, device memory and the context pool (see
 * cuda_device.h).
 */
#include "engine/cuda/cuda_device.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "engine/cuda/cuda_check.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int px_cuda_probe(char *err, size_t errlen)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess && count > 0) return 0;
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    /* The variable is the usual reason a GPU machine shows none: say so. */
    if (vis && px_cuda_visible_parse(vis, NULL, PX_CUDA_MAX_DEVICES) == 0)
        return px_errf(err, errlen, PX_EUNSUP,
                       "no CUDA device is visible (%s; CUDA_VISIBLE_DEVICES=\"%s\" names none)",
                       e != cudaSuccess ? cudaGetErrorString(e) : "0 devices", vis);
    return px_errf(err, errlen, PX_EUNSUP, "no CUDA device is visible (%s)",
                   e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
}

int px_cuda_devices(const char *spec, int *devs, int *n, const char *who, char *err, size_t errlen)
{
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) count = 0;
    return px_cuda_devspec_parse(spec, count, devs, n, who, err, errlen);
}

int px_cuda_mem_info(int dev, size_t *free_bytes, size_t *total_bytes)
{
    *free_bytes = *total_bytes = 0;
    if (cudaSetDevice(dev) != cudaSuccess ||
        cudaMemGetInfo(free_bytes, total_bytes) != cudaSuccess) {
        *free_bytes = *total_bytes = 0;
        return PX_EIO;
    }
    return 0;
}

uint64_t px_cuda_mem_used(int dev)
{
    size_t fr, tot;
    return px_cuda_mem_info(dev, &fr, &tot) ? 0 : (uint64_t)(tot - fr);
}

void px_cuda_device_name(int dev, char *name, size_t len)
{
    struct cudaDeviceProp pr;
    if (cudaGetDeviceProperties(&pr, dev) != cudaSuccess) pr.name[0] = 0;
    snprintf(name, len, "%.*s", (int)sizeof pr.name, pr.name);
}

void px_cuda_device_host_id(int dev, char *id, size_t len)
{
    px_cuda_visible_id ids[PX_CUDA_MAX_DEVICES];
    int n = px_cuda_visible_parse(getenv("CUDA_VISIBLE_DEVICES"), ids, PX_CUDA_MAX_DEVICES);
    if (dev >= 0 && dev < n)
        snprintf(id, len, "%s", ids[dev].id);
    else
        snprintf(id, len, "%d", dev);
}

/* ------------------------------------------------------------ the pool */

struct px_cuda_pool {
    int n;
    px_cuda_ctx ctx[PX_CUDA_MAX_DEVICES];
    bool busy[PX_CUDA_MAX_DEVICES];
    pthread_mutex_t mu;
    pthread_cond_t freed;
};

/*
 * How a host thread waits for the GPU (cudaStreamSynchronize and friends).
 * CUDA's default spins while a process has fewer contexts than cores: the
 * worker that waits on a 100 ms+ batch or diffusion step burns a whole
 * core doing nothing, which the CPU-side work (decoding, encoding) wants,
 * and which makes a monitor's CPU figure say the server is busy. Blocking
 * costs a wake-up (tens of microseconds) per wait, and the engines wait a
 * few times per batch or step. PX_CUDA_SCHEDULE=spin|yield|auto gives
 * CUDA's other behaviours back (for measuring them); a failure to set it
 * only warns: the engine works either way.
 */
static void set_schedule(int dev)
{
    static const struct {
        const char *name;
        unsigned flag;
    } k[] = {{"block", cudaDeviceScheduleBlockingSync},
             {"spin", cudaDeviceScheduleSpin},
             {"yield", cudaDeviceScheduleYield},
             {"auto", cudaDeviceScheduleAuto}};
    const char *v = getenv("PX_CUDA_SCHEDULE");
    unsigned flag = cudaDeviceScheduleBlockingSync;
    bool known = !v || !*v;
    for (size_t i = 0; !known && i < sizeof k / sizeof k[0]; i++)
        if (!strcmp(v, k[i].name)) flag = k[i].flag, known = true;
    if (!known) PX_WARN("PX_CUDA_SCHEDULE=%s: not block, spin, yield or auto; using block", v);
    cudaError_t e = cudaSetDeviceFlags(flag);
    if (e != cudaSuccess) {
        PX_WARN("cuda: device %d: cannot set how threads wait (%s); CUDA's default stays",
                dev, cudaGetErrorString(e));
        (void)cudaGetLastError();
    }
}

static int ctx_init(px_cuda_ctx *c, unsigned flags, char *err, size_t errlen)
{
    int rc = 0;
    PX_CUDA_CHECK(cudaSetDevice(c->dev));
    set_schedule(c->dev);
    PX_CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    if (flags & PX_CUDA_CTX_CUDNN) {
        PX_CUDNN_CHECK(cudnnCreate(&c->dnn));
        PX_CUDNN_CHECK(cudnnSetStream(c->dnn, c->stream));
    }
fail:
    return rc;
}

int px_cuda_pool_create(const int *devs, int n, unsigned flags, px_cuda_pool **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    if (n < 1 || n > PX_CUDA_MAX_DEVICES)
        return px_errf(err, errlen, PX_EINVAL, "cuda: %d devices (1 to %d)", n,
                       PX_CUDA_MAX_DEVICES);
    px_cuda_pool *p = px_xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->freed, NULL);
    for (int i = 0; i < n; i++) {
        px_cuda_ctx *c = &p->ctx[i];
        c->dev = devs[i];
        c->index = i;
        p->n = i + 1;
        int rc = ctx_init(c, flags, err, errlen);
        if (rc) {
            px_cuda_pool_destroy(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

int px_cuda_pool_size(const px_cuda_pool *p)
{
    return p->n;
}

px_cuda_ctx *px_cuda_pool_ctx(px_cuda_pool *p, int i)
{
    return &p->ctx[i];
}

/* Context `want` (any free one when < 0), once free. */
static px_cuda_ctx *take(px_cuda_pool *p, int want)
{
    pthread_mutex_lock(&p->mu);
    int k = -1;
    for (;;) {
        for (int i = 0; i < p->n && k < 0; i++)
            if (!p->busy[i] && (want < 0 || i == want)) k = i;
        if (k >= 0) break;
        pthread_cond_wait(&p->freed, &p->mu);
    }
    p->busy[k] = true;
    pthread_mutex_unlock(&p->mu);
    return &p->ctx[k];
}

px_cuda_ctx *px_cuda_pool_take(px_cuda_pool *p)
{
    return take(p, -1);
}

px_cuda_ctx *px_cuda_pool_take_at(px_cuda_pool *p, int i)
{
    return take(p, i < 0 || i >= p->n ? 0 : i);
}

void px_cuda_pool_give(px_cuda_pool *p, px_cuda_ctx *c)
{
    pthread_mutex_lock(&p->mu);
    p->busy[c->index] = false;
    /* Everyone: a waiter for one particular context may be among them. */
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->mu);
}

size_t px_cuda_pool_min_free(const px_cuda_pool *p)
{
    size_t least = SIZE_MAX;
    for (int i = 0; i < p->n; i++) {
        size_t fr, total;
        if (px_cuda_mem_info(p->ctx[i].dev, &fr, &total)) return 0;
        if (fr < least) least = fr;
    }
    return least == SIZE_MAX ? 0 : least;
}

void px_cuda_pool_destroy(px_cuda_pool *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        px_cuda_ctx *c = &p->ctx[i];
        cudaSetDevice(c->dev);
        if (c->dnn) cudnnDestroy(c->dnn);
        if (c->stream) cudaStreamDestroy(c->stream);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->freed);
    free(p);
}

int px_cuda_pool_describe(px_cuda_pool *p, int n, size_t (*weight_bytes)(const void *arg, int i),
                          const void *arg, px_buf *out)
{
    int rc = px_buf_puts(out, "[");
    for (int i = 0; !rc && i < n; i++) {
        char name[320]; /* cudaDeviceProp.name is 256 bytes, maybe unterminated */
        int dev = px_cuda_pool_ctx(p, i)->dev;
        px_cuda_device_name(dev, name, sizeof name);
        rc = px_buf_printf(out, "%s{\"index\":%d,\"name\":", i ? "," : "", dev);
        if (!rc) rc = px_json_str(out, name);
        if (!rc) rc = px_buf_printf(out, ",\"weight_bytes\":%zu}", weight_bytes(arg, i));
    }
    if (!rc) rc = px_buf_puts(out, "]");
    return rc;
}
