/*
 * cli_batch.c — the folder batch (see cli_batch.h).
 *
 * Every image file of --image DIR (PNG, JPEG, WebP by extension) is
 * inpainted with its mask — the file of the same name in --mask DIR (else the
 * same name with .png), or the one --mask FILE for all — and written to
 * --output DIR under its own name and format. Files run on --jobs threads at
 * once (default: one per CPU) over one engine; the engine's own loops share
 * one compute pool, which several callers may use at once, so decoding,
 * encoding and engine work of different files overlap on every core. A file
 * that cannot be read, decoded or inpainted is skipped and listed at the end.
 * On a terminal a progress bar is drawn on stderr.
 */
#include "serve/cli_batch.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/pool.h"
#include "engine/engine.h"
#include "image/codec.h"
#include "serve/inpaint.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct batch_args {
    const char *image_dir, *mask, *output, *engine, *method, *weights, *device, *precision;
    int threads, jobs, mask_is_dir;
    unsigned long long seed;
    px_hd_params hd;
} batch_args;

typedef struct batch {
    const batch_args *a;
    px_engine *engine;
    char **names; /* the images, sorted */
    int n;
    atomic_int next, done, failed;
    char **errors;      /* errors[i]: why file i was skipped, or NULL */
    pthread_mutex_t mu; /* the progress bar's line */
    int tty;
    int64_t t0;
} batch;

int px_cli_batch_wanted(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--image")) return 1;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pixserve inpaint --image DIR --mask DIR|FILE --output DIR [--engine NAME]\n"
            "                        [--method M] [--seed N] [--weights FILE] [--device D]\n"
            "                        [--precision P] [--hd-strategy S] [--threads N] [--jobs N]\n"
            "Inpaints every PNG, JPEG and WebP file of --image DIR with the mask of the same\n"
            "name in --mask DIR (or NAME.png there), or with --mask FILE for all, into\n"
            "--output DIR (same names and formats). --jobs files run at once (default: one\n"
            "per CPU), --threads compute threads are shared (default: one per CPU).\n");
}

static int parse_args(int argc, char **argv, batch_args *a)
{
    memset(a, 0, sizeof *a);
    a->engine = "classic";
    px_hd_defaults(&a->hd);
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "-h") || !strcmp(k, "--help")) return usage(stdout), 1;
        if (!v) return fprintf(stderr, "pixserve inpaint: %s needs a value\n", k), 2;
        i++;
        if (!strcmp(k, "--image"))
            a->image_dir = v;
        else if (!strcmp(k, "--mask"))
            a->mask = v;
        else if (!strcmp(k, "--output") || !strcmp(k, "-o"))
            a->output = v;
        else if (!strcmp(k, "--engine"))
            a->engine = v;
        else if (!strcmp(k, "--method"))
            a->method = v;
        else if (!strcmp(k, "--weights"))
            a->weights = v;
        else if (!strcmp(k, "--device"))
            a->device = v;
        else if (!strcmp(k, "--precision"))
            a->precision = v;
        else if (!strcmp(k, "--seed"))
            a->seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--threads"))
            a->threads = atoi(v);
        else if (!strcmp(k, "--jobs"))
            a->jobs = atoi(v);
        else if (!strcmp(k, "--hd-strategy") && px_hd_parse(v) >= 0)
            a->hd.strategy = (enum px_hd_strategy)px_hd_parse(v);
        else
            return fprintf(stderr, "pixserve inpaint: bad flag or value %s %s\n", k, v), 2;
    }
    struct stat st;
    if (!a->image_dir || !a->mask || !a->output) return usage(stderr), 2;
    if (stat(a->image_dir, &st) || !S_ISDIR(st.st_mode))
        return fprintf(stderr, "pixserve inpaint: --image %s is not a folder\n", a->image_dir), 2;
    if (stat(a->mask, &st)) return fprintf(stderr, "pixserve inpaint: no mask %s\n", a->mask), 2;
    a->mask_is_dir = S_ISDIR(st.st_mode);
    if (mkdir(a->output, 0755) && errno != EEXIST)
        return fprintf(stderr, "pixserve inpaint: cannot create %s: %s\n", a->output,
                       strerror(errno)),
               2;
    return 0;
}

static int is_image_name(const char *name)
{
    const char *ext = strrchr(name, '.');
    return name[0] != '.' && ext && px_format_parse(ext + 1) != PX_FMT_UNKNOWN;
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The image names of dir, sorted; *n of them. NULL with *n = -1 on error. */
static char **list_images(const char *dir, int *n)
{
    DIR *d = opendir(dir);
    *n = -1;
    if (!d) return NULL;
    int cap = 64, k = 0;
    char **names = px_xcalloc((size_t)cap, sizeof *names);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_image_name(e->d_name)) continue;
        if (k == cap) {
            char **more = px_xcalloc((size_t)cap * 2, sizeof *names);
            memcpy(more, names, (size_t)cap * sizeof *names);
            free(names);
            names = more, cap *= 2;
        }
        names[k++] = px_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)k, sizeof *names, cmp_names);
    *n = k;
    return names;
}

/* Reads a whole file (at most 256 MiB). */
static int slurp(const char *path, uint8_t **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return px_errf(err, errlen, PX_EIO, "cannot open %s: %s", path, strerror(errno));
    px_buf b;
    px_buf_init(&b, (size_t)256 << 20);
    uint8_t chunk[1 << 16];
    size_t got;
    int rc = 0;
    while (!rc && (got = fread(chunk, 1, sizeof chunk, f)) > 0) rc = px_buf_append(&b, chunk, got);
    fclose(f);
    if (rc) {
        px_buf_free(&b);
        return px_errf(err, errlen, rc, "cannot read %s", path);
    }
    *data = px_buf_steal(&b, len);
    if (!*data) *data = px_xcalloc(1, 1);
    return 0;
}

/* The mask file of image `name`: --mask FILE, else DIR/name, else
 * DIR/stem.png. */
static void mask_path(const batch_args *a, const char *name, char *out, size_t n)
{
    if (!a->mask_is_dir) {
        snprintf(out, n, "%s", a->mask);
        return;
    }
    snprintf(out, n, "%s/%s", a->mask, name);
    if (access(out, R_OK) == 0) return;
    const char *dot = strrchr(name, '.');
    snprintf(out, n, "%s/%.*s.png", a->mask, (int)(dot - name), name);
}

/* One file through the engine. 0 or an error with a message. */
static int one_file(batch *b, const char *name, char *err, size_t errlen)
{
    const batch_args *a = b->a;
    char ipath[4096], mpath[4096], opath[4096];
    snprintf(ipath, sizeof ipath, "%s/%s", a->image_dir, name);
    mask_path(a, name, mpath, sizeof mpath);
    snprintf(opath, sizeof opath, "%s/%s", a->output, name);
    uint8_t *img = NULL, *mask = NULL;
    size_t ilen = 0, mlen = 0;
    int rc = slurp(ipath, &img, &ilen, err, errlen);
    if (!rc) rc = slurp(mpath, &mask, &mlen, err, errlen);
    if (rc) goto done;
    const char *ext = strrchr(name, '.');
    px_inpaint_params p = {.engine = b->engine,
                           .method = a->method,
                           .seed = a->seed,
                           .hd = &a->hd,
                           .out_fmt = px_format_parse(ext + 1),
                           .png_level = -1,
                           .max_output = (size_t)1 << 30};
    px_inpaint_result res;
    if ((rc = px_inpaint_bytes(&p, img, ilen, mask, mlen, &res, err, errlen))) goto done;
    FILE *f = fopen(opath, "wb");
    size_t w = f ? fwrite(res.encoded.data, 1, res.encoded.len, f) : 0;
    if (!f || fclose(f) != 0 || w != res.encoded.len)
        rc = px_errf(err, errlen, PX_EIO, "cannot write %s", opath);
    px_buf_free(&res.encoded);
done:
    free(img);
    free(mask);
    return rc;
}

static void draw_progress(batch *b, int final)
{
    if (!b->tty) return;
    int done = atomic_load(&b->done), failed = atomic_load(&b->failed);
    double secs = (double)(px_now_ns() - b->t0) / 1e9;
    char bar[31];
    int fill = b->n ? done * 30 / b->n : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    pthread_mutex_lock(&b->mu);
    fprintf(stderr, "\r[%s] %d/%d  %.1f images/s  %d skipped%s", bar, done, b->n,
            secs > 0 ? done / secs : 0.0, failed, final ? "\n" : "");
    fflush(stderr);
    pthread_mutex_unlock(&b->mu);
}

static void *worker(void *arg)
{
    batch *b = arg;
    int i;
    while ((i = atomic_fetch_add(&b->next, 1)) < b->n) {
        char err[512];
        if (one_file(b, b->names[i], err, sizeof err)) {
            b->errors[i] = px_xstrdup(err);
            atomic_fetch_add(&b->failed, 1);
        }
        atomic_fetch_add(&b->done, 1);
        draw_progress(b, 0);
    }
    return NULL;
}

/* Runs the files on `jobs` threads (the caller is one of them). */
static void run_all(batch *b, int jobs)
{
    pthread_t th[256];
    int started = 0;
    for (int j = 1; j < jobs && j < 256; j++)
        if (pthread_create(&th[started], NULL, worker, b) == 0) started++;
    worker(b);
    for (int j = 0; j < started; j++) pthread_join(th[j], NULL);
}

static void summary(const batch *b)
{
    double secs = (double)(px_now_ns() - b->t0) / 1e9;
    int failed = atomic_load(&b->failed);
    printf("inpainted %d of %d images in %.2f s (%.2f images/s) into %s", b->n - failed, b->n, secs,
           secs > 0 ? (b->n - failed) / secs : 0.0, b->a->output);
    printf(failed ? "; %d skipped:\n" : "\n", failed);
    for (int i = 0; i < b->n; i++)
        if (b->errors[i]) printf("  %s: %s\n", b->names[i], b->errors[i]);
}

int px_cli_batch(int argc, char **argv)
{
    batch_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc == 1 ? 0 : rc;
    batch b = {.a = &a, .tty = isatty(2)};
    b.names = list_images(a.image_dir, &b.n);
    if (!b.names) return fprintf(stderr, "pixserve inpaint: cannot list %s\n", a.image_dir), 2;
    px_pool *pool = px_pool_create(a.threads);
    char err[512];
    px_engine_config ec = {
        .weights = a.weights, .device = a.device, .precision = a.precision, .pool = pool};
    rc = px_engine_open(a.engine, &ec, &b.engine, err, sizeof err);
    if (!rc && a.method) rc = px_engine_check_method(b.engine, a.method, err, sizeof err);
    if (!rc) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int jobs = a.jobs > 0 ? a.jobs : ncpu > 0 ? (int)ncpu : 1;
        b.errors = px_xcalloc((size_t)(b.n ? b.n : 1), sizeof *b.errors);
        pthread_mutex_init(&b.mu, NULL);
        b.t0 = px_now_ns();
        run_all(&b, jobs < b.n ? jobs : b.n);
        draw_progress(&b, 1);
        summary(&b);
        pthread_mutex_destroy(&b.mu);
        rc = atomic_load(&b.failed) ? 1 : 0;
    } else {
        fprintf(stderr, "pixserve inpaint: %s\n", err);
        rc = 1;
    }
    for (int i = 0; i < b.n; i++) {
        free(b.names[i]);
        if (b.errors) free(b.errors[i]);
    }
    free(b.names);
    free(b.errors);
    px_engine_close(b.engine);
    px_pool_destroy(pool);
    return rc;
}
