/*
 * cuda_prof.c — per-step timing with CUDA events (see cuda_prof.h).
 */
#include "engine/cuda/cuda_prof.h"

#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

#define PROF_MAX    1024
#define PROF_LABELS 64

struct px_cuda_prof {
    cudaStream_t stream;
    cudaEvent_t ev[PROF_MAX + 1];
    const char *label[PROF_MAX];
    int n;
};

px_cuda_prof *px_cuda_prof_start(cudaStream_t s)
{
    px_cuda_prof *pf = px_xcalloc(1, sizeof *pf);
    pf->stream = s;
    for (int i = 0; i <= PROF_MAX; i++) cudaEventCreate(&pf->ev[i]);
    cudaEventRecord(pf->ev[0], s);
    return pf;
}

void px_cuda_prof_mark(px_cuda_prof *pf, const char *label)
{
    if (!pf || pf->n >= PROF_MAX) return;
    pf->label[pf->n] = label;
    cudaEventRecord(pf->ev[++pf->n], pf->stream);
}

void px_cuda_prof_report(px_cuda_prof *pf, FILE *f, const char *title)
{
    const char *names[PROF_LABELS];
    float ms[PROF_LABELS];
    int nn = 0;
    float total = 0;
    for (int i = 0; i < pf->n; i++) {
        float t = 0;
        cudaEventElapsedTime(&t, pf->ev[i], pf->ev[i + 1]);
        total += t;
        int k = 0;
        while (k < nn && strcmp(names[k], pf->label[i])) k++;
        if (k == nn && nn < PROF_LABELS) names[nn] = pf->label[i], ms[nn++] = 0;
        if (k < PROF_LABELS) ms[k] += t;
    }
    fprintf(f, "%s: %.2f ms\n", title, total);
    for (int a = 0; a < nn; a++) {
        int best = a;
        for (int b = a + 1; b < nn; b++)
            if (ms[b] > ms[best]) best = b;
        float tm = ms[a];
        const char *tn = names[a];
        ms[a] = ms[best], names[a] = names[best];
        ms[best] = tm, names[best] = tn;
        fprintf(f, "  %-28s %9.3f ms %5.1f%%\n", names[a], ms[a], 100.0 * ms[a] / total);
    }
}

void px_cuda_prof_free(px_cuda_prof *pf)
{
    if (!pf) return;
    for (int i = 0; i <= PROF_MAX; i++) cudaEventDestroy(pf->ev[i]);
    free(pf);
}
