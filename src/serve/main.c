/*
 * main.c — the pixserve command line: `serve` runs the HTTP service,
 * `inpaint` runs one job from files, `engines` lists what is built in.
 */
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/pool.h"
#include "engine/engine.h"
#include "image/codec.h"
#include "serve/cli_batch.h"
#include "serve/cli_generate.h"
#include "serve/config.h"
#include "serve/cli_tokenize.h"
#include "serve/inpaint.h"
#include "serve/server.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f,
            "pixserve %s — image inpainting service\n"
            "\n"
            "usage:\n"
            "  pixserve serve [flags]        run the HTTP service (pixserve serve --help)\n"
            "  pixserve inpaint IMAGE MASK -o OUT [--engine NAME] [--method M] [--seed N]\n"
            "                   [--quality Q] [--weights FILE] [--threads N]\n"
            "                   [--device cpu|cuda[:N]] [--precision fp16|tf32|fp32]\n"
            "                   [--hd-strategy Original|Resize|Crop]\n"
            "                                inpaint one image; OUT's extension picks the\n"
            "                                format (.png, .jpg, .webp)\n"
            "  pixserve inpaint --image DIR --mask DIR|FILE --output DIR [--engine NAME]\n"
            "                   [--jobs N] [--max-batch N] [...]\n"
            "                                a folder of images, like `iopaint run`\n"
            "  pixserve engines              list the built-in engines and their methods\n"
            "  pixserve generate \"PROMPT\" -o OUT --model DIR [flags]\n"
            "                                text-to-image with Z-Image-Turbo (pixserve generate --help)\n"
            "  pixserve tokenize --model DIR|--tokenizer FILE \"text\" [--raw]\n"
            "                                print the Z-Image prompt's token ids as JSON\n"
            "  pixserve --version\n"
            "\n"
            "Masks: any non-zero pixel is a hole (see docs/api.md for alpha masks).\n",
            PX_VERSION);
}

static int serve(const px_serve_config *cfg);

static int cmd_serve(int argc, char **argv)
{
    px_serve_config cfg;
    px_config_defaults(&cfg);
    char err[512];
    int rc = px_config_parse_args(&cfg, argc, argv, err, sizeof err);
    if (rc) {
        px_config_free(&cfg);
        if (rc == 1) return 0;
        fprintf(stderr, "pixserve serve: %s\n", err);
        return 2;
    }
    rc = serve(&cfg);
    px_config_free(&cfg);
    return rc;
}

/*
 * Per-request buffers of megabytes (a decoded 1024² image, its label map,
 * the crop windows, the PNG being encoded) are, with glibc's defaults,
 * mapped afresh and unmapped again once the heap's trimming returns them,
 * and the first touch of every page then faults: planning a 1024² CROP
 * request took 21-23 ms that way and 2 ms with its buffers kept in the
 * heap (bench/hd_plan_bench, docs/benchmarks/serving.md). With
 * PX_MALLOC_RETAIN=1 the server keeps freed memory below these sizes for
 * reuse. Not the default yet: RSS climbs while the heaps fill (+19 MB in
 * a 2-minute soak, which pixbench's verdict read as a suspected leak;
 * level 30 MB higher after 96 s of a 6-minute one), and the GPU server
 * has not measured it.
 * glibc's own MALLOC_*_ or GLIBC_TUNABLES settings win over it.
 */
static void malloc_retain(void)
{
    const char *v = getenv("PX_MALLOC_RETAIN");
    if (!v || strcmp(v, "1") || getenv("GLIBC_TUNABLES") || getenv("MALLOC_MMAP_THRESHOLD_") ||
        getenv("MALLOC_TRIM_THRESHOLD_"))
        return;
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

static int serve(const px_serve_config *cfg)
{
    char err[512];
    int rc;
    int lvl = px_log_parse_level(cfg->log_level);
    if (lvl < 0) {
        fprintf(stderr, "pixserve serve: unknown --log-level '%s'\n", cfg->log_level);
        return 2;
    }
    px_log_set_level((enum px_log_level)lvl);
    malloc_retain();

    /* Block the stop signals in every thread (threads inherit the mask) and
     * take them synchronously below, so no handler runs in a random thread. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    px_server *srv;
    if ((rc = px_server_start(cfg, &srv, err, sizeof err))) {
        fprintf(stderr, "pixserve serve: %s\n", err);
        return 1;
    }
    /* This exact line is what scripts and tests wait for. */
    printf("pixserve %s listening on http://%s:%d (engines:", PX_VERSION, cfg->host,
           px_server_port(srv));
    for (int i = 0; i < cfg->nengines; i++) printf(" %s", cfg->engines[i].name);
    printf(")\n");
    fflush(stdout);
    PX_INFO("listening on %s:%d, queue %d, timeout %lld ms", cfg->host, px_server_port(srv),
            cfg->queue, (long long)cfg->timeout_ms);

    /* Wait for a stop signal, checking now and then that the engines did
     * not fail to load (then nothing could ever be served: exit 1). */
    int sig = 0;
    const char *failed = NULL;
    struct timespec tick = {0, 200 * 1000000};
    while (!(failed = px_server_failed(srv))) {
        sig = sigtimedwait(&stop, NULL, &tick);
        if (sig > 0) break;
    }
    if (failed) {
        fprintf(stderr, "pixserve serve: %s\n", failed);
        px_server_stop(srv, 0);
        return 1;
    }
    PX_INFO("received %s: finishing requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM");
    px_server_stop(srv, 30000);
    PX_INFO("stopped");
    return 0;
}

static int read_file(const char *path, uint8_t **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return px_errf(err, errlen, PX_EIO, "cannot open %s: %s", path, strerror(errno));
    px_buf b;
    px_buf_init(&b, (size_t)1 << 30);
    uint8_t chunk[1 << 16];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = px_buf_append(&b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (rc || bad) {
        px_buf_free(&b);
        return px_errf(err, errlen, rc ? rc : PX_EIO, "cannot read %s", path);
    }
    *data = px_buf_steal(&b, len);
    return 0;
}

static int write_file(const char *path, const px_buf *b, char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f) return px_errf(err, errlen, PX_EIO, "cannot create %s: %s", path, strerror(errno));
    size_t w = fwrite(b->data, 1, b->len, f);
    if (fclose(f) != 0 || w != b->len)
        return px_errf(err, errlen, PX_EIO, "cannot write %s", path);
    return 0;
}

/* The flags and arguments of `pixserve inpaint IMAGE MASK -o OUT`. */
typedef struct inpaint_args {
    const char *pos[2];
    const char *out, *engine, *method, *weights, *device, *precision;
    unsigned long long seed;
    int quality, threads;
    px_hd_params hd;
    enum px_format fmt;
} inpaint_args;

/* Parses the command line into a; returns -1 to go on, or the exit code
 * (0 after --help, 2 for a bad command line, said on stderr). */
static int parse_inpaint_args(int argc, char **argv, inpaint_args *a)
{
    *a = (inpaint_args){.engine = "classic"};
    int npos = 0;
    px_hd_defaults(&a->hd);
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            usage(stdout);
            return 0;
        }
        if (f[0] != '-') {
            if (npos == 2) {
                fprintf(stderr, "pixserve inpaint: unexpected argument '%s'\n", f);
                return 2;
            }
            a->pos[npos++] = f;
            continue;
        }
        if (!v) {
            fprintf(stderr, "pixserve inpaint: %s needs a value\n", f);
            return 2;
        }
        i++;
        if (!strcmp(f, "-o") || !strcmp(f, "--output")) a->out = v;
        else if (!strcmp(f, "--engine")) a->engine = v;
        else if (!strcmp(f, "--method")) a->method = v;
        else if (!strcmp(f, "--weights")) a->weights = v;
        else if (!strcmp(f, "--device")) a->device = v;
        else if (!strcmp(f, "--precision")) a->precision = v;
        else if (!strcmp(f, "--seed")) a->seed = strtoull(v, NULL, 10);
        else if (!strcmp(f, "--quality")) a->quality = atoi(v);
        else if (!strcmp(f, "--threads")) a->threads = atoi(v);
        else if (!strcmp(f, "--hd-strategy")) {
            int h = px_hd_parse(v);
            if (h < 0) {
                fprintf(stderr, "pixserve inpaint: --hd-strategy must be Original, Resize or Crop\n");
                return 2;
            }
            a->hd.strategy = (enum px_hd_strategy)h;
        } else {
            fprintf(stderr, "pixserve inpaint: unknown flag %s (see pixserve --help)\n", f);
            return 2;
        }
    }
    if (npos != 2 || !a->out) {
        fprintf(stderr, "usage: pixserve inpaint IMAGE MASK -o OUT [--engine NAME] [--seed N]\n");
        return 2;
    }
    const char *ext = strrchr(a->out, '.');
    a->fmt = px_format_parse(ext ? ext + 1 : "");
    if (a->fmt == PX_FMT_UNKNOWN) {
        fprintf(stderr, "pixserve inpaint: output name must end in .png, .jpg, .jpeg or .webp\n");
        return 2;
    }
    return -1;
}

static int cmd_inpaint(int argc, char **argv)
{
    if (px_cli_batch_wanted(argc, argv)) return px_cli_batch(argc, argv);
    inpaint_args a;
    int code = parse_inpaint_args(argc, argv, &a);
    if (code >= 0) return code;

    char err[512];
    uint8_t *img = NULL, *mask = NULL;
    size_t img_len = 0, mask_len = 0;
    px_engine *e = NULL;
    px_pool *pool = px_pool_create(a.threads);
    int rc;
    if ((rc = read_file(a.pos[0], &img, &img_len, err, sizeof err)) ||
        (rc = read_file(a.pos[1], &mask, &mask_len, err, sizeof err)))
        goto fail;
    px_engine_config ec = {
        .weights = a.weights, .device = a.device, .precision = a.precision, .pool = pool};
    if ((rc = px_engine_open(a.engine, &ec, &e, err, sizeof err))) goto fail;
    if (a.method && (rc = px_engine_check_method(e, a.method, err, sizeof err))) goto fail;
    px_inpaint_params p = {.engine = e,
                           .method = a.method,
                           .seed = a.seed,
                           .hd = &a.hd,
                           .out_fmt = a.fmt,
                           .quality = a.quality,
                           .png_level = -1,
                           .max_output = (size_t)1 << 30};
    px_inpaint_result res;
    if ((rc = px_inpaint_bytes(&p, img, img_len, mask, mask_len, &res, err, sizeof err))) goto fail;
    rc = write_file(a.out, &res.encoded, err, sizeof err);
    if (!rc)
        printf("%s: %dx%d, %zu hole pixels, engine %s, %s (%d window%s): decode %.1f ms, "
               "inpaint %.1f ms, encode %.1f ms\n",
               a.out, res.width, res.height, res.hole_pixels, a.engine, px_hd_name(res.hd_used),
               res.windows, res.windows == 1 ? "" : "s", (double)res.decode_ns / 1e6,
               (double)res.infer_ns / 1e6, (double)res.encode_ns / 1e6);
    px_buf_free(&res.encoded);
    if (rc) goto fail;
    free(img);
    free(mask);
    px_engine_close(e);
    px_pool_destroy(pool);
    return 0;
fail:
    fprintf(stderr, "pixserve inpaint: %s\n", err);
    free(img);
    free(mask);
    px_engine_close(e);
    px_pool_destroy(pool);
    return 1;
}

static int cmd_engines(void)
{
    px_buf b;
    px_buf_init(&b, 1 << 20);
    px_buf_puts(&b, "[");
    const char *const *names = px_engine_names();
    px_engine_config ec = {0};
    for (int i = 0; names[i]; i++) {
        px_engine *e;
        char err[256];
        if (i) px_buf_puts(&b, ",");
        if (px_engine_open(names[i], &ec, &e, err, sizeof err) == 0) {
            px_engine_describe(e, &b);
            px_engine_close(e);
        } else {
            px_buf_printf(&b, "{\"name\":\"%s\",\"available\":false}", names[i]);
        }
    }
    px_buf_puts(&b, "]\n");
    fwrite(b.data, 1, b.len, stdout);
    px_buf_free(&b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(cmd, "inpaint")) return cmd_inpaint(argc - 2, argv + 2);
    if (!strcmp(cmd, "engines")) return cmd_engines();
    if (!strcmp(cmd, "generate")) return px_cli_generate(argc - 2, argv + 2);
    if (!strcmp(cmd, "tokenize")) return px_cli_tokenize(argc - 2, argv + 2);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("pixserve %s\n", PX_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "pixserve: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
