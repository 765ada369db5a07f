/*
 * cuda_graph.h — running a per-shape piece of work (a whole forward pass, a
 * denoising step) as a CUDA graph: launching a captured graph costs one
 * call instead of hundreds of kernel and library launches.
 *
 * The work is an `enqueue` function that puts everything on one stream and
 * can be called again and again with the same buffers. Its first run is
 * direct (libraries initialise lazily there, which a capture would refuse),
 * its second is captured, instantiated and launched, later ones replay the
 * graph. If a capture fails (some call cannot be captured) the work runs
 * directly from then on, with a warning, rather than fail.
 */
#ifndef PX_ENGINE_CUDA_CUDA_GRAPH_H
#define PX_ENGINE_CUDA_CUDA_GRAPH_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>

/* Embedded in the engine's per-shape plan; zero-initialised. */
typedef struct {
    cudaGraphExec_t exec; /* once captured */
    int runs;             /* successful runs so far, direct or replayed */
    bool off;             /* capture failed once: direct runs only */
} px_cuda_graph;

/* Enqueues the work on the stream the graph runs on. Returns 0 or a PX_E*
 * code with a message in err. */
typedef int (*px_cuda_enqueue_fn)(void *arg, char *err, size_t errlen);

/*
 * Runs the work on stream s: direct (always, when `direct`: e.g. a run
 * with extra outputs the graph does not have), captured on the second run,
 * replayed after. Does not wait for the stream. `who` prefixes the warning
 * of a failed capture. Returns 0 or the error of enqueue or of a launch.
 */
int px_cuda_graph_run(px_cuda_graph *g, cudaStream_t s, bool direct, px_cuda_enqueue_fn enqueue,
                      void *arg, const char *who, char *err, size_t errlen);

/* Frees the instantiated graph (the struct can then be reused). */
void px_cuda_graph_free(px_cuda_graph *g);

#endif
