/*
 * config.c — defaults and flag parsing for `pixserve serve`.
 */
#include "serve/config.h"

#include "core/err.h"
#include "image/image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The default safety bound on queued requests (--queue per priority,
 * --cpu-queue): not the admission policy (the deadline test is, admit.h)
 * but a cap on what waiting requests hold in memory. A waiting request
 * holds its body and, once decoded, its image and mask: about 4 MiB for a
 * 1024x1024 inpainting. An eighth of the machine's memory at 4 MiB each,
 * within [256, 4096]: 768 on 24 GiB, 4096 from 128 GiB up.
 */
int px_config_queue_bound(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return 256;
    double n = (double)pages * (double)page / 8.0 / (4.0 * 1024 * 1024);
    return n < 256 ? 256 : n > 4096 ? 4096 : (int)n;
}

void px_config_defaults(px_serve_config *c)
{
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 7860;
    c->workers = 0;
    c->queue = px_config_queue_bound();
    c->http_threads = 2;
    c->threads = 0;
    c->max_body = 64u << 20;
    c->max_pixels = PX_IMG_DEFAULT_MAX_PIXELS;
    c->max_side = PX_IMG_DEFAULT_MAX_SIDE;
    c->outputs = "outputs";
    c->timeout_ms = 60000;
    c->idle_timeout_s = 30;
    c->max_connections = 1024;
    c->png_level = 1;
    c->log_level = "info";
    c->cpu_workers = 0;
    c->cpu_queue = px_config_queue_bound();
    c->max_batch = 8;
    c->max_queue_delay_ms = 5;
    c->continuous_batching = 1;
    c->bucket_step = 64;
    px_hd_defaults(&c->hd);
    c->hd.crop_bucket = -1; /* per engine: px_kind_inpaint_crop_bucket */
    c->max_per_client = 0;
    c->job_ttl_ms = 600000;
    c->max_jobs = 10000;
    c->memory_limit = 0;
    c->memory_reserve = (size_t)256 << 20;
    c->max_gen_pixels = 2048 * 2048;
    c->lora_cache_bytes = (uint64_t)1 << 30;
    c->linger_ms = 5000;
    /* Time is the real bound (as nginx, which has no byte bound); bytes
     * only cap a fast client: 1 GiB drains in about a second on loopback. */
    c->linger_bytes = (uint64_t)1 << 30;
}

void px_config_usage(void)
{
    printf(
        "usage: pixserve serve [flags]\n"
        "\n"
        "Runs the inpainting and text-to-image HTTP service (POST /api/v1/inpaint,\n"
        "POST /inpaint, POST /api/v1/generate, POST /api/v1/generate_async, POST\n"
        "/v1/images/generations, the async jobs API /api/v1/jobs with its event stream\n"
        "/api/v1/jobs/{id}/events, GET /outputs/<name>, /healthz, /readyz, /metrics,\n"
        "/api/v1/engines, GET|POST /api/v1/loras, DELETE /api/v1/loras/{name}, the web\n"
        "UI at / and /generate). Flags may also come from a file: --config FILE.\n"
        "\n"
        "Network and limits\n"
        "  --host ADDR            bind address (default 127.0.0.1)\n"
        "  --port N               TCP port, 0 for any free one (default 7860)\n"
        "  --max-body SIZE        largest request body, else 413 (default 64M)\n"
        "  --max-pixels N         largest image, e.g. 16.8M or 4096x4096 (default 16.8M)\n"
        "  --max-side N           largest image side in pixels (default 8192)\n"
        "  --max-gen-pixels N     largest text-to-image output, e.g. 4M or 2048x2048\n"
        "                         (default 2048x2048)\n"
        "  --http-threads N       threads doing HTTP I/O (default 2)\n"
        "  --max-connections N    simultaneous connections (default 1024)\n"
        "  --idle-timeout DUR     close connections idle or sending this slowly (default 30s)\n"
        "Engines\n"
        "  --engine NAME[:K=V,...] load this engine (classic, lama, zimage); repeat for several,\n"
        "                         the first of each kind (inpaint, generate) is that kind's\n"
        "                         default (default: classic). Its own settings: weights=FILE\n"
        "                         (or model=DIR), device=D, precision=P, e.g.\n"
        "                         --engine lama:weights=big-lama.safetensors,device=cuda:1\n"
        "                         Text to image: --engine zimage:model=DIR (a Hugging Face\n"
        "                         Z-Image-Turbo directory; device=cpu, or cuda[:N] in a\n"
        "                         `make CUDA=1` build)\n"
        "  --weights FILE         weights file for engines that need one and name none\n"
        "                         (lama: a .safetensors made by tools/lama_convert.py)\n"
        "  --device D             where engines that can choose run (unless they name\n"
        "                         their own): cpu, cuda (every GPU), cuda:N or cuda:N,M\n"
        "                         (default: cpu)\n"
        "  --precision P          GPU arithmetic: fp16, tf32 or fp32 (lama on cuda;\n"
        "                         default fp16, see docs/benchmarks/lama-cuda.md),\n"
        "                         bf16 or fp8 (zimage on cuda; default bf16)\n"
        "  --warm-sizes WxH,...   before /readyz, GPU engines build their plans for\n"
        "                         these sizes at every batch size up to --max-batch\n"
        "                         (at most 8 sizes; default none: the first requests\n"
        "                         of a size wait for it)\n"
        "  --threads N            compute threads shared by CPU engines (default: CPUs)\n"
        "Scheduling\n"
        "  --workers N            batches run at once per engine (default: one per GPU\n"
        "                         the engine drives, 1 on the CPU)\n"
        "  --max-batch N          engine inputs per batch, for engines that batch (default 8)\n"
        "  --max-queue-delay DUR  how long a batch may wait to fill up (default 5ms)\n"
        "  --continuous-batching on|off\n"
        "                         requests join a running batch between denoising steps\n"
        "                         and leave it when their own steps are done, on engines\n"
        "                         that can (zimage on cuda; default on)\n"
        "  --bucket-step N        pad sizes up to multiples of N to batch them; 0 = only\n"
        "                         equal sizes batch (default 64)\n"
        "  --queue N              safety bound: requests in flight per priority (default\n"
        "                         from memory: RAM/8 at 4 MiB each, 256..4096); requests\n"
        "                         are admitted while their predicted wait fits their\n"
        "                         deadline, else 429 with Retry-After\n"
        "  --max-per-client N     requests in flight per API key or address, 0 = no cap\n"
        "  --timeout DUR          per-request deadline, answered with 504 (default 60s);\n"
        "                         a request may ask for another (timeout_ms, X-Timeout-Ms)\n"
        "  --cpu-workers N        threads parsing, decoding and encoding (default: CPUs)\n"
        "  --cpu-queue N          safety bound: requests waiting for those threads before\n"
        "                         429 (default as --queue)\n"
        "  --memory-limit SIZE    memory batches may use (default: what the device has free)\n"
        "  --memory-reserve SIZE  memory always left free (default 256M)\n"
        "Large images (IOPaint's strategies; requests may choose with hd_strategy)\n"
        "  --hd-strategy S        Original, Resize or Crop (default Crop)\n"
        "  --hd-crop-trigger N    Crop when the longest side exceeds N (default 800)\n"
        "  --hd-crop-margin N     context around each mask blob (default 128)\n"
        "  --hd-resize-limit N    Resize when the longest side exceeds N (default 1280)\n"
        "  --hd-crop-bucket N     Crop windows become squares of a multiple of N (GPU plans\n"
        "                         are reused and built at start-up for --warm-sizes);\n"
        "                         0 = exact windows (default: 256 on a GPU, 0 on the CPU)\n"
        "  --hd-crop-merge on|off one window for mask blobs whose windows cost no more\n"
        "                         pixels together than apart (default on; off: one per\n"
        "                         blob, as IOPaint)\n"
        "LoRAs for text to image (docs/api.md, LoRAs)\n"
        "  --lora-dir DIR         the LoRAs requests may name (\"loras\": [{\"name\", \"scale\"}]):\n"
        "                         every DIR/NAME.safetensors, plus those registered with\n"
        "                         POST /api/v1/loras (default: none, LoRA requests get 400)\n"
        "  --lora-cache-mb N      LoRAs stay loaded after use up to N MiB; beyond it the\n"
        "                         least recently used that no request holds are unloaded\n"
        "                         (default 1024; 0 = no bound)\n"
        "HTTP manners and IOPaint's web frontend (docs/api.md, IOPaint compatibility)\n"
        "  --cors-origin O        answer cross-origin requests from origin O (or *): preflight\n"
        "                         OPTIONS and Access-Control-* headers (default: off)\n"
        "  --linger-time DUR      after answering a request before its body (413, 404, ...),\n"
        "                         read and drop the rest of the body for at most DUR so the\n"
        "                         client sees the answer (default 5s; 0 = off)\n"
        "  --linger-bytes SIZE    ... and at most SIZE bytes of it (default 1G)\n"
        "  --input FILE|DIR       IOPaint's input image (GET /api/v1/inputimage), or the\n"
        "                         folder its file manager browses (tab input)\n"
        "  --output-dir DIR       where IOPaint's save_image writes (file manager tab output)\n"
        "  --mask-dir DIR         the file manager's mask tab\n"
        "Results\n"
        "  --outputs DIR          where results asked for as URLs are stored (default outputs)\n"
        "  --png-level N          zlib level 0-9 for PNG results (default 1: fast)\n"
        "  --job-ttl DUR          async results are kept this long (default 10m)\n"
        "  --max-jobs N           async jobs kept at once (default 10000)\n"
        "Other\n"
        "  --config FILE          read settings from FILE (\"key = value\" lines, keys are\n"
        "                         these flag names); later flags override it\n"
        "  --log-level LEVEL      debug, info, warn or error (default info)\n"
        "  -h, --help             this text\n"
        "\n"
        "SIZE takes K, M or G suffixes; DUR takes ms, s, m or h (plain numbers are seconds).\n"
        "SIGINT or SIGTERM stops accepting, finishes the requests in flight and exits 0.\n");
}

int px_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) return PX_EINVAL;
    double mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1024.0, end++;
    else if (*end == 'M' || *end == 'm') mul = 1024.0 * 1024, end++;
    else if (*end == 'G' || *end == 'g') mul = 1024.0 * 1024 * 1024, end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end || v * mul > 1e18) return PX_EINVAL;
    *out = (uint64_t)(v * mul);
    return 0;
}

int px_parse_duration_ms(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0)) return PX_EINVAL;
    double mul = 1000;
    if (strcmp(end, "ms") == 0) mul = 1;
    else if (strcmp(end, "s") == 0 || *end == 0) mul = 1000;
    else if (strcmp(end, "m") == 0) mul = 60000;
    else if (strcmp(end, "h") == 0) mul = 3600000;
    else return PX_EINVAL;
    if (v * mul > 1e15) return PX_EINVAL;
    *out = (int64_t)llround(v * mul);
    return 0;
}

int px_parse_pixels(const char *s, uint64_t *out)
{
    unsigned long long w, h;
    char tail;
    if (sscanf(s, "%llux%llu%c", &w, &h, &tail) == 2) {
        if (!w || !h || w > (1ull << 31) || h > (1ull << 31)) return PX_EINVAL;
        *out = w * h;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return PX_EINVAL;
    if (*end == 'M' || *end == 'm') v *= 1e6, end++;
    else if (*end == 'K' || *end == 'k') v *= 1e3, end++;
    if (*end || v > 1e15) return PX_EINVAL;
    *out = (uint64_t)llround(v);
    return 0;
}

int px_config_warm_sizes(const char *s, int *w, int *h, int max)
{
    int n = 0;
    while (*s) {
        int a, b, used = 0;
        if (n >= max || sscanf(s, "%dx%d%n", &a, &b, &used) != 2 || a < 8 || b < 8 ||
            a > 16384 || b > 16384)
            return -1;
        w[n] = a, h[n++] = b;
        s += used;
        if (*s == ',' && s[1]) s++;
        else if (*s) return -1;
    }
    return n;
}

/* Whether the text from s up to the next ',' (or the end) holds a '='. */
static int segment_has_eq(const char *s)
{
    for (; *s && *s != ','; s++)
        if (*s == '=') return 1;
    return 0;
}

int px_engine_spec_parse(char *text, px_engine_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof *spec);
    spec->name = text;
    char *p = strchr(text, ':');
    if (p) *p++ = 0;
    if (!text[0]) return px_errf(err, errlen, PX_EINVAL, "--engine needs a name before ':'");
    while (p && *p) {
        /* One key=value; its value runs to the next ',' that starts
         * another key=value (a device list keeps its commas). */
        char *key = p, *eq = strchr(p, '=');
        if (!eq || (strchr(p, ',') && strchr(p, ',') < eq))
            return px_errf(err, errlen, PX_EINVAL, "--engine %s: '%s' is not key=value", text, p);
        *eq = 0;
        char *val = eq + 1, *end = val;
        for (;;) {
            end += strcspn(end, ",");
            if (!*end || segment_has_eq(end + 1)) break;
            end++;
        }
        p = *end ? end + 1 : NULL;
        *end = 0;
        if (!val[0])
            return px_errf(err, errlen, PX_EINVAL, "--engine %s: %s has no value", text, key);
        if (!strcmp(key, "weights") || !strcmp(key, "model")) spec->weights = val;
        else if (!strcmp(key, "device")) spec->device = val;
        else if (!strcmp(key, "precision")) spec->precision = val;
        else
            return px_errf(err, errlen, PX_EINVAL,
                           "--engine %s: unknown key '%s' (weights, model, device, precision)",
                           text, key);
    }
    return 0;
}

/* Keeps a copy of s in the configuration (freed by px_config_free). */
static char *own(px_serve_config *c, const char *s)
{
    if (c->nowned == (int)(sizeof c->owned / sizeof c->owned[0])) return NULL;
    char *copy = strdup(s);
    if (copy) c->owned[c->nowned++] = copy;
    return copy;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return PX_EINVAL;
    *out = (int)v;
    return 0;
}

/* The HTTP-manner, IOPaint and LoRA flags: 1 if n is one of them (*bad set), else 0. */
static int apply_http_flag(px_serve_config *c, const char *n, const char *val, int *bad)
{
    uint64_t u;
    int64_t ms;
    if (!strcmp(n, "cors-origin")) c->cors_origin = val;
    else if (!strcmp(n, "input")) c->input = val;
    else if (!strcmp(n, "output-dir")) c->output_dir = val;
    else if (!strcmp(n, "mask-dir")) c->mask_dir = val;
    else if (!strcmp(n, "linger-time")) {
        *bad = px_parse_duration_ms(val, &ms) || ms > 600000;
        if (!*bad) c->linger_ms = ms;
    } else if (!strcmp(n, "linger-bytes")) {
        *bad = px_parse_size(val, &u) || u > (64ull << 30);
        if (!*bad) c->linger_bytes = u;
    } else if (!strcmp(n, "lora-dir")) {
        c->lora_dir = val;
    } else if (!strcmp(n, "lora-cache-mb")) {
        int mb;
        *bad = parse_int(val, 0, 1 << 24, &mb);
        if (!*bad) c->lora_cache_bytes = (uint64_t)mb << 20;
    } else {
        return 0;
    }
    return 1;
}

/* Sets one setting from its flag name (without "--") and text value; val
 * must outlive the configuration. Returns 0 or PX_EINVAL with a message. */
static int apply_flag(px_serve_config *c, const char *n, const char *val, int depth, char *err,
                      size_t errlen)
{
    uint64_t u;
    int64_t ms;
    int v, bad = 0;
    if (!strcmp(n, "host")) c->host = val;
    else if (!strcmp(n, "port")) bad = parse_int(val, 0, 65535, &c->port);
    else if (!strcmp(n, "workers")) bad = parse_int(val, 1, 256, &c->workers);
    else if (!strcmp(n, "queue")) bad = parse_int(val, 1, 100000, &c->queue);
    else if (!strcmp(n, "http-threads")) bad = parse_int(val, 1, 64, &c->http_threads);
    else if (!strcmp(n, "threads")) bad = parse_int(val, 1, 1024, &c->threads);
    else if (!strcmp(n, "cpu-workers")) bad = parse_int(val, 1, 1024, &c->cpu_workers);
    else if (!strcmp(n, "cpu-queue")) bad = parse_int(val, 0, 100000, &c->cpu_queue);
    else if (!strcmp(n, "max-batch")) bad = parse_int(val, 1, 64, &c->max_batch);
    else if (!strcmp(n, "bucket-step")) bad = parse_int(val, 0, 4096, &c->bucket_step);
    else if (!strcmp(n, "max-per-client")) bad = parse_int(val, 0, 100000, &c->max_per_client);
    else if (!strcmp(n, "max-jobs")) bad = parse_int(val, 1, 1000000, &c->max_jobs);
    else if (!strcmp(n, "max-connections")) bad = parse_int(val, 1, 100000, &c->max_connections);
    else if (!strcmp(n, "png-level")) bad = parse_int(val, 0, 9, &c->png_level);
    else if (!strcmp(n, "max-side")) bad = parse_int(val, 1, 1 << 20, &c->max_side);
    else if (!strcmp(n, "hd-crop-trigger")) bad = parse_int(val, 1, 1 << 20, &c->hd.crop_trigger);
    else if (!strcmp(n, "hd-crop-margin")) bad = parse_int(val, 0, 1 << 16, &c->hd.crop_margin);
    else if (!strcmp(n, "hd-crop-bucket")) bad = parse_int(val, 0, 1 << 16, &c->hd.crop_bucket);
    else if (!strcmp(n, "hd-resize-limit")) bad = parse_int(val, 8, 1 << 20, &c->hd.resize_limit);
    else if (!strcmp(n, "outputs")) c->outputs = val;
    else if (!strcmp(n, "weights")) c->weights = val;
    else if (!strcmp(n, "device")) c->device = val;
    else if (!strcmp(n, "precision")) c->precision = val;
    else if (!strcmp(n, "warm-sizes")) {
        int w[8], h[8];
        bad = px_config_warm_sizes(val, w, h, 8) < 1;
        if (!bad) c->warm_sizes = val;
    }
    else if (!strcmp(n, "log-level")) c->log_level = val;
    else if (!strcmp(n, "hd-strategy")) {
        bad = (v = px_hd_parse(val)) < 0;
        if (!bad) c->hd.strategy = (enum px_hd_strategy)v;
    } else if (!strcmp(n, "max-body")) {
        bad = px_parse_size(val, &u) || u < 1024 || u > (4ull << 30);
        if (!bad) c->max_body = (size_t)u;
    } else if (!strcmp(n, "memory-limit") || !strcmp(n, "memory-reserve")) {
        bad = px_parse_size(val, &u) || u > (1ull << 50);
        if (!bad) *(n[7] == 'l' ? &c->memory_limit : &c->memory_reserve) = (size_t)u;
    } else if (!strcmp(n, "max-pixels")) {
        bad = px_parse_pixels(val, &c->max_pixels);
    } else if (!strcmp(n, "max-gen-pixels")) {
        bad = px_parse_pixels(val, &c->max_gen_pixels) || c->max_gen_pixels < 256;
    } else if (!strcmp(n, "timeout")) {
        bad = px_parse_duration_ms(val, &ms) || ms < 1;
        if (!bad) c->timeout_ms = ms;
    } else if (!strcmp(n, "job-ttl")) {
        bad = px_parse_duration_ms(val, &ms) || ms < 1;
        if (!bad) c->job_ttl_ms = ms;
    } else if (!strcmp(n, "hd-crop-merge")) {
        bad = strcmp(val, "on") && strcmp(val, "off");
        if (!bad) c->hd.crop_merge = !strcmp(val, "on");
    } else if (!strcmp(n, "continuous-batching")) {
        bad = strcmp(val, "on") && strcmp(val, "off");
        if (!bad) c->continuous_batching = !strcmp(val, "on");
    } else if (!strcmp(n, "max-queue-delay")) {
        bad = px_parse_duration_ms(val, &ms) || ms > 10000;
        if (!bad) c->max_queue_delay_ms = (int)ms;
    } else if (!strcmp(n, "idle-timeout")) {
        bad = px_parse_duration_ms(val, &ms) || ms < 1000;
        if (!bad) c->idle_timeout_s = (ms + 999) / 1000;
    } else if (!strcmp(n, "engine")) {
        if (c->nengines >= PX_MAX_ENGINES)
            return px_errf(err, errlen, PX_EINVAL, "at most %d engines", PX_MAX_ENGINES);
        char *copy = own(c, val);
        if (!copy) return px_errf(err, errlen, PX_ENOMEM, "too many settings");
        int rc = px_engine_spec_parse(copy, &c->engines[c->nengines], err, errlen);
        if (rc) return rc;
        c->nengines++;
    } else if (!strcmp(n, "config")) {
        if (depth > 4)
            return px_errf(err, errlen, PX_EINVAL, "config files include each other too deeply");
        return px_config_load_file(c, val, depth + 1, err, errlen);
    } else if (!apply_http_flag(c, n, val, &bad)) {
        return px_errf(err, errlen, PX_EINVAL, "unknown setting '%s' (see pixserve serve --help)",
                       n);
    }
    if (bad) return px_errf(err, errlen, PX_EINVAL, "bad value '%s' for %s", val, n);
    return 0;
}

int px_config_load_file(px_serve_config *c, const char *path, int depth, char *err,
                        size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) return px_errf(err, errlen, PX_EINVAL, "cannot read config file %s: %s", path,
                           strerror(errno));
    char line[1024];
    int lineno = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line, *hash = strchr(line, '#');
        if (hash) *hash = 0;
        while (*p == ' ' || *p == '\t') p++;
        char *end = p + strlen(p);
        while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
            *--end = 0;
        if (!*p) continue;
        /* "key = value" or "key value"; keys are the flag names. */
        char *k = p;
        while (*p && *p != '=' && *p != ' ' && *p != '\t') p++;
        char *kend = p;
        while (*p == ' ' || *p == '\t' || *p == '=') p++;
        *kend = 0;
        if (!strncmp(k, "--", 2)) k += 2;
        if (!*p) {
            rc = px_errf(err, errlen, PX_EINVAL, "%s:%d: '%s' has no value", path, lineno, k);
            break;
        }
        /* The configuration keeps pointers to its values: it owns them. */
        if (c->nowned == (int)(sizeof c->owned / sizeof c->owned[0])) {
            rc = px_errf(err, errlen, PX_EINVAL, "%s: too many settings", path);
            break;
        }
        char *val = strdup(p);
        char inner[256];
        if (val) c->owned[c->nowned++] = val;
        if (!val) rc = px_errf(err, errlen, PX_ENOMEM, "out of memory reading %s", path);
        else if ((rc = apply_flag(c, k, val, depth, inner, sizeof inner)))
            px_errf(err, errlen, rc, "%s:%d: %s", path, lineno, inner);
    }
    fclose(f);
    return rc;
}

void px_config_free(px_serve_config *c)
{
    for (int i = 0; i < c->nowned; i++) free(c->owned[i]);
    c->nowned = 0;
}

int px_config_parse_args(px_serve_config *c, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            px_config_usage();
            return 1;
        }
        /* Accept both "--flag value" and "--flag=value". */
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(f, '=');
        if (eq && (size_t)(eq - f) < sizeof name) {
            memcpy(name, f, (size_t)(eq - f));
            name[eq - f] = 0;
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", f);
            if (i + 1 < argc) val = argv[i + 1], i++;
        }
        if (strncmp(name, "--", 2) != 0)
            return px_errf(err, errlen, PX_EINVAL, "unexpected argument '%s'", f);
        if (!val) return px_errf(err, errlen, PX_EINVAL, "flag %s needs a value", name);
        char inner[480];
        int rc = apply_flag(c, name + 2, val, 0, inner, sizeof inner);
        if (rc) {
            /* Name flags the way they were typed. */
            if (strstr(inner, "unknown setting"))
                return px_errf(err, errlen, rc, "unknown flag %s (see pixserve serve --help)", name);
            if (!strncmp(inner, "bad value", 9))
                return px_errf(err, errlen, rc, "bad value '%s' for %s", val, name);
            return px_errf(err, errlen, rc, "%s", inner);
        }
    }
    if (c->nengines == 0) c->engines[c->nengines++] = (px_engine_spec){.name = "classic"};
    return 0;
}
