/*
 * fft.c — FFTW plans for LaMa's Fourier units (see fft.h for the layout and
 * the inverse's semantics). Plans use the guru interface, whose strides let
 * the transforms read and write NHWC tensors in place of a transpose, and
 * are executed with FFTW's new-array functions on each plan's own buffers.
 * FFTW's planner is not thread-safe, so planning and destroying plans take
 * one process-wide lock; executing needs none.
 */
#include "engine/lama/fft.h"

#include "core/err.h"

#include <fftw3.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct px_fft {
    int h, w, c, wf;
    fftwf_plan fwd;  /* r2c over (h, w) */
    fftwf_plan invh; /* c2c backward along h, in place */
    fftwf_plan invw; /* c2r along w */
};

static pthread_mutex_t g_planner = PTHREAD_MUTEX_INITIALIZER;
static int g_threads_ok = -1;

int px_fft_create(int h, int w, int c, int nthreads, px_fft **out, char *err, size_t errlen)
{
    *out = NULL;
    if (h < 1 || w < 1 || c < 1) return px_errf(err, errlen, PX_EINVAL, "fft: bad shape %dx%dx%d", h, w, c);
    px_fft *f = calloc(1, sizeof *f);
    if (!f) return px_errf(err, errlen, PX_ENOMEM, "fft: out of memory");
    f->h = h;
    f->w = w;
    f->c = c;
    f->wf = w / 2 + 1;
    size_t nreal = (size_t)h * w * c, ncplx = (size_t)h * f->wf * c;
    /* Planning arrays: FFTW_ESTIMATE does not touch them, but their
     * alignment and in-place-ness must match the arrays used later
     * (fftwf_malloc and the plan's 64-byte aligned arena both suit). */
    float *x = fftwf_malloc(nreal * sizeof *x);
    fftwf_complex *s = fftwf_malloc(ncplx * sizeof *s);
    if (!x || !s) {
        fftwf_free(x);
        fftwf_free(s);
        free(f);
        return px_errf(err, errlen, PX_ENOMEM, "fft: out of memory");
    }
    int wf = f->wf;
    pthread_mutex_lock(&g_planner);
    if (g_threads_ok < 0) g_threads_ok = fftwf_init_threads() != 0;
    if (g_threads_ok) fftwf_plan_with_nthreads(nthreads > 0 ? nthreads : 1);
    fftwf_iodim fd[2] = {{h, w * c, wf * c}, {w, c, c}};
    fftwf_iodim fm[1] = {{c, 1, 1}};
    f->fwd = fftwf_plan_guru_dft_r2c(2, fd, 1, fm, x, s, FFTW_ESTIMATE | FFTW_PRESERVE_INPUT);
    fftwf_iodim hd[1] = {{h, wf * c, wf * c}};
    fftwf_iodim hm[1] = {{wf * c, 1, 1}};
    f->invh = fftwf_plan_guru_dft(1, hd, 1, hm, s, s, FFTW_BACKWARD, FFTW_ESTIMATE);
    fftwf_iodim wd[1] = {{w, c, c}};
    fftwf_iodim wm[2] = {{h, wf * c, w * c}, {c, 1, 1}};
    f->invw = fftwf_plan_guru_dft_c2r(1, wd, 2, wm, s, x, FFTW_ESTIMATE | FFTW_DESTROY_INPUT);
    pthread_mutex_unlock(&g_planner);
    fftwf_free(x);
    fftwf_free(s);
    if (!f->fwd || !f->invh || !f->invw) {
        px_fft_destroy(f);
        return px_errf(err, errlen, PX_ENOMEM, "fft: FFTW could not plan %dx%dx%d", h, w, c);
    }
    *out = f;
    return 0;
}

void px_fft_destroy(px_fft *f)
{
    if (!f) return;
    pthread_mutex_lock(&g_planner);
    if (f->fwd) fftwf_destroy_plan(f->fwd);
    if (f->invh) fftwf_destroy_plan(f->invh);
    if (f->invw) fftwf_destroy_plan(f->invw);
    pthread_mutex_unlock(&g_planner);
    free(f);
}

void px_fft_forward(const px_fft *f, float *x, float *spec)
{
    fftwf_execute_dft_r2c(f->fwd, x, (fftwf_complex *)spec);
}

void px_fft_inverse(const px_fft *f, float *spec, float *y)
{
    fftwf_complex *s = (fftwf_complex *)spec;
    fftwf_execute_dft(f->invh, s, s);
    /* The real-output transform along w sees bins 0..w/2 of each row; a real
     * signal's bin 0 (and bin w/2 for even w) is real, and only the real
     * part counts. Zeroing the imaginary parts says so explicitly rather
     * than relying on what a c2r kernel happens to read. */
    size_t c = (size_t)f->c, row = (size_t)f->wf * c;
    for (int y0 = 0; y0 < f->h; y0++) {
        fftwf_complex *r = s + (size_t)y0 * row;
        for (size_t k = 0; k < c; k++) r[k][1] = 0;
        if (f->w % 2 == 0)
            for (size_t k = 0; k < c; k++) r[(size_t)(f->w / 2) * c + k][1] = 0;
    }
    fftwf_execute_dft_c2r(f->invw, s, y);
}
