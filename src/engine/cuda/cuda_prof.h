/*
 * cuda_prof.h — where the time of one run goes, step by step: an event is
 * recorded on the stream after each labelled step, and the time between
 * consecutive events is summed per label. For diagnosis runs (an engine
 * switches it on with an environment variable), never inside a captured
 * graph.
 */
#ifndef PX_ENGINE_CUDA_CUDA_PROF_H
#define PX_ENGINE_CUDA_CUDA_PROF_H

#include <cuda_runtime_api.h>
#include <stdio.h>

typedef struct px_cuda_prof px_cuda_prof;

/* Starts timing on stream s (records the first event). Caller frees with
 * px_cuda_prof_free; aborts if host memory is missing (px_xcalloc). */
px_cuda_prof *px_cuda_prof_start(cudaStream_t s);

/* Marks the end of a step named label (a string that outlives the
 * profile); NULL pf is a no-op, and so are marks past the 1024th. */
void px_cuda_prof_mark(px_cuda_prof *pf, const char *label);

/* After the stream finished: "<title>: <total> ms", then milliseconds and
 * share per label, largest first, onto f. */
void px_cuda_prof_report(px_cuda_prof *pf, FILE *f, const char *title);

/* NULL is a no-op. */
void px_cuda_prof_free(px_cuda_prof *pf);

#endif
