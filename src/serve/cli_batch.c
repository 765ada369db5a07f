/*
 * cli_batch.c — the folder batch (see cli_batch.h).
 *
 * Every image file of --image DIR (PNG, JPEG, WebP by extension) is
 * inpainted with its mask — the file of the same name in --mask DIR (else the
 * same name with .png), or the one --mask FILE for all — and written to
 * --output DIR under its own name and format. The files go through the
 * server's own pipeline without HTTP (task.h): each becomes an inpaint task
 * of the multipart form, so decoding and encoding run on the CPU pool (every
 * core), and the device scheduler batches windows of different files that
 * share a shape bucket into one engine call (GPU batching; --max-batch). On
 * the CPU, where engines do not batch, --jobs engine calls run at once over
 * the shared compute threads. A file that cannot be read, decoded or
 * inpainted is skipped and listed at the end. On a terminal a progress bar
 * is drawn on stderr.
 */
#include "serve/cli_batch.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/pool.h"
#include "engine/engine.h"
#include "image/codec.h"
#include "core/jsonr.h"
#include "serve/config.h"
#include "serve/kind_inpaint.h"
#include "serve/metrics.h"
#include "serve/task.h"

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
    int threads, jobs, max_batch, mask_is_dir;
    unsigned long long seed;
    px_hd_params hd;
} batch_args;

typedef struct batch {
    const batch_args *a;
    px_engine *engine;
    char **names; /* the images, sorted */
    int n;
    atomic_int done, failed;
    char **errors;   /* errors[i]: why file i was skipped, or NULL */
    px_task **tasks; /* tasks[i] while file i is in flight */
    int *ended;      /* indices of ended tasks, in order (nended of them) */
    int nended;
    pthread_mutex_t mu; /* ended[] */
    pthread_cond_t cv;
    int tty;
    int64_t t0;
} batch;

/* The argument of a task's done callback. */
typedef struct batch_ref {
    batch *b;
    int index;
} batch_ref;

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
        else if (!strcmp(k, "--max-batch"))
            a->max_batch = atoi(v);
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

/* The multipart form of one file: its image and mask parts and the
 * options (what a client of POST /api/v1/inpaint would send). */
static int file_body(const batch_args *a, const char *name, px_buf *body, char *err, size_t errlen)
{
    static const char bd[] = "pixserve-batch-4f1c9a7e2b6d0c83a5";
    char ipath[4096], mpath[4096];
    snprintf(ipath, sizeof ipath, "%s/%s", a->image_dir, name);
    mask_path(a, name, mpath, sizeof mpath);
    const char *paths[2] = {ipath, mpath}, *parts[2] = {"image", "mask"};
    px_buf_init(body, (size_t)1 << 30);
    for (int k = 0; k < 2; k++) {
        uint8_t *data = NULL;
        size_t len = 0;
        int rc = slurp(paths[k], &data, &len, err, errlen);
        if (rc) return rc;
        px_buf_printf(body,
                      "--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"f\"\r\n\r\n",
                      bd, parts[k]);
        rc = px_buf_append(body, data, len);
        free(data);
        if (rc) return px_errf(err, errlen, rc, "%s is too large", paths[k]);
        px_buf_puts(body, "\r\n");
    }
    if (a->method)
        px_buf_printf(body, "--%s\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\n%s\r\n",
                      bd, a->method);
    px_buf_printf(body,
                  "--%s\r\nContent-Disposition: form-data; name=\"seed\"\r\n\r\n%llu\r\n--%s--\r\n",
                  bd, a->seed, bd);
    return 0;
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
    fprintf(stderr, "\r[%s] %d/%d  %.1f images/s  %d skipped%s", bar, done, b->n,
            secs > 0 ? done / secs : 0.0, failed, final ? "\n" : "");
    fflush(stderr);
}

static void on_task_done(px_task *t, void *arg)
{
    (void)t;
    batch_ref *ref = arg;
    batch *b = ref->b;
    pthread_mutex_lock(&b->mu);
    b->ended[b->nended++] = ref->index;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Writes an ended task's image, or records why it failed (the error body's
 * message). */
static void finish_file(batch *b, int i)
{
    px_task_reply rep;
    px_task_reply_get(b->tasks[i], &rep);
    char err[512] = "";
    if (rep.http_status == 200) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", b->a->output, b->names[i]);
        FILE *f = fopen(path, "wb");
        size_t w = f ? fwrite(rep.body->data, 1, rep.body->len, f) : 0;
        if (!f || fclose(f) != 0 || w != rep.body->len)
            snprintf(err, sizeof err, "cannot write %.400s", path);
    } else {
        char inner[64];
        cJSON *j = px_json_parse((const char *)rep.body->data, rep.body->len, 8, 64, "reply", NULL,
                                 inner, sizeof inner);
        const cJSON *m = j ? cJSON_GetObjectItemCaseSensitive(j, "errors") : NULL;
        snprintf(err, sizeof err, "%s", cJSON_IsString(m) ? m->valuestring : "failed");
        cJSON_Delete(j);
    }
    if (err[0]) {
        b->errors[i] = px_xstrdup(err);
        atomic_fetch_add(&b->failed, 1);
    }
    px_task_unref(b->tasks[i]);
    b->tasks[i] = NULL;
    atomic_fetch_add(&b->done, 1);
    draw_progress(b, 0);
}

/* Submits file i (retrying while the CPU queue is full); a file that cannot
 * be read is recorded at once. */
static void submit_file(batch *b, px_tasks *tasks, batch_ref *ref, int i)
{
    px_buf body;
    char err[512];
    if (file_body(b->a, b->names[i], &body, err, sizeof err)) {
        px_buf_free(&body);
        b->errors[i] = px_xstrdup(err);
        atomic_fetch_add(&b->failed, 1);
        atomic_fetch_add(&b->done, 1);
        return;
    }
    px_task_spec spec = {.kind = &px_kind_inpaint,
                         .dialect = PX_DIALECT_V1,
                         .content_type =
                             "multipart/form-data; boundary=pixserve-batch-4f1c9a7e2b6d0c83a5",
                         .arrival_ns = px_now_ns(),
                         .done = on_task_done,
                         .done_arg = ref};
    ref->b = b, ref->index = i;
    int retry = 1, rc;
    do { /* the task takes the bytes: a copy each try */
        spec.body = px_xmalloc(body.len ? body.len : 1);
        memcpy(spec.body, body.data, body.len);
        spec.body_len = body.len;
        rc = px_tasks_submit(tasks, &spec, &b->tasks[i], &retry);
        if (rc == PX_EBUSY) usleep(20000); /* the CPU queue is full: let some finish */
    } while (rc == PX_EBUSY);
    px_buf_free(&body);
    if (rc) { /* not started: its done callback never runs */
        b->errors[i] = px_xstrdup("the pipeline is stopping");
        atomic_fetch_add(&b->failed, 1);
        atomic_fetch_add(&b->done, 1);
    }
}

/* Runs every file through the task pipeline, at most `inflight` at once. */
static void run_all(batch *b, px_tasks *tasks, int inflight)
{
    batch_ref *refs = px_xcalloc((size_t)(b->n ? b->n : 1), sizeof *refs);
    int next = 0, seen = 0;
    while (atomic_load(&b->done) < b->n) {
        while (next < b->n && next - atomic_load(&b->done) < inflight)
            submit_file(b, tasks, &refs[next], next), next++;
        pthread_mutex_lock(&b->mu);
        while (seen == b->nended && atomic_load(&b->done) < b->n &&
               !(next < b->n && next - atomic_load(&b->done) < inflight))
            pthread_cond_wait(&b->cv, &b->mu);
        int upto = b->nended;
        pthread_mutex_unlock(&b->mu);
        for (; seen < upto; seen++) finish_file(b, b->ended[seen]);
    }
    free(refs);
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

/* The files through a task manager over the one engine. 0, or 1 with a
 * message when its threads cannot start. */
static int run_pipeline(batch *b, int jobs)
{
    const batch_args *a = b->a;
    px_serve_config cfg;
    px_config_defaults(&cfg);
    cfg.timeout_ms = 3600000; /* a deadline per file, not per batch */
    cfg.max_body = (size_t)1 << 30;
    cfg.hd = a->hd;
    cfg.max_batch = a->max_batch > 0 ? a->max_batch : 8;
    /* GPU engines: one worker per device, batches form; CPU engines do not
     * batch, so --jobs calls share the compute threads. */
    cfg.workers = strncmp(px_engine_device(b->engine), "cuda", 4) ? jobs : 0;
    int inflight = 2 * (jobs > cfg.max_batch ? jobs : cfg.max_batch);
    cfg.queue = inflight;
    cfg.cpu_queue = inflight;
    px_metrics *m = px_metrics_new();
    char err[320];
    px_tasks *tasks = px_tasks_create(&cfg, &b->engine, 1, NULL, m, err, sizeof err);
    if (!tasks) {
        fprintf(stderr, "pixserve inpaint: %s\n", err);
        px_metrics_free(m);
        return 1;
    }
    b->errors = px_xcalloc((size_t)(b->n ? b->n : 1), sizeof *b->errors);
    b->tasks = px_xcalloc((size_t)(b->n ? b->n : 1), sizeof *b->tasks);
    b->ended = px_xcalloc((size_t)(b->n ? b->n : 1), sizeof *b->ended);
    b->t0 = px_now_ns();
    run_all(b, tasks, inflight);
    px_tasks_stats st;
    px_tasks_stats_get(tasks, &st);
    px_tasks_destroy(tasks);
    px_metrics_free(m);
    draw_progress(b, 1);
    summary(b);
    printf("engine calls: %llu for %llu windows (mean batch %.2f)\n",
           (unsigned long long)st.sched.batches, (unsigned long long)st.sched.items_run,
           st.sched.batches ? (double)st.sched.items_run / (double)st.sched.batches : 0.0);
    return atomic_load(&b->failed) ? 1 : 0;
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
        pthread_mutex_init(&b.mu, NULL);
        pthread_cond_init(&b.cv, NULL);
        rc = run_pipeline(&b, jobs);
        pthread_cond_destroy(&b.cv);
        pthread_mutex_destroy(&b.mu);
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
    free(b.tasks);
    free(b.ended);
    px_engine_close(b.engine);
    px_pool_destroy(pool);
    return rc;
}
