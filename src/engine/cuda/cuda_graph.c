/*
 * cuda_graph.c — capture once, replay after (see cuda_graph.h).
 */
#include "engine/cuda/cuda_graph.h"

#include "core/err.h"
#include "core/log.h"
#include "engine/cuda/cuda_check.h"

/* The second run: capture (thread-local mode: other threads' CUDA calls
 * stay legal meanwhile), instantiate, launch. */
static int capture(px_cuda_graph *g, cudaStream_t s, px_cuda_enqueue_fn enqueue, void *arg,
                   const char *who, char *err, size_t errlen)
{
    int rc = 0;
    cudaGraph_t graph = NULL;
    PX_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    rc = enqueue(arg, err, errlen);
    cudaError_t ce = cudaStreamEndCapture(s, &graph);
    if (!rc && ce == cudaSuccess) ce = cudaGraphInstantiate(&g->exec, graph, 0);
    if (graph) cudaGraphDestroy(graph);
    if (rc || ce != cudaSuccess) {
        PX_WARN("%s: CUDA graph capture failed (%s); running without graphs", who,
                rc ? err : cudaGetErrorString(ce));
        (void)cudaGetLastError();
        g->off = true;
        g->exec = NULL;
        if ((rc = enqueue(arg, err, errlen))) goto fail;
    } else {
        PX_CUDA_CHECK(cudaGraphLaunch(g->exec, s));
    }
fail:
    return rc;
}

int px_cuda_graph_run(px_cuda_graph *g, cudaStream_t s, bool direct, px_cuda_enqueue_fn enqueue,
                      void *arg, const char *who, char *err, size_t errlen)
{
    int rc = 0;
    if (!direct && g->exec) {
        PX_CUDA_CHECK(cudaGraphLaunch(g->exec, s));
    } else if (!direct && g->runs == 1 && !g->off) {
        if ((rc = capture(g, s, enqueue, arg, who, err, errlen))) goto fail;
    } else {
        if ((rc = enqueue(arg, err, errlen))) goto fail;
    }
    g->runs++;
fail:
    return rc;
}

void px_cuda_graph_free(px_cuda_graph *g)
{
    if (g->exec) cudaGraphExecDestroy(g->exec);
    g->exec = NULL;
}
