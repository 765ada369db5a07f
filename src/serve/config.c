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

void px_config_defaults(px_serve_config *c)
{
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 7860;
    c->workers = 2;
    c->queue = 16;
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
}

void px_config_usage(void)
{
    printf(
        "usage: pixserve serve [flags]\n"
        "\n"
        "Runs the inpainting HTTP service (POST /api/v1/inpaint, POST /inpaint,\n"
        "GET /outputs/<name>, /healthz, /readyz, /metrics, /api/v1/engines).\n"
        "\n"
        "  --host ADDR            bind address (default 127.0.0.1)\n"
        "  --port N               TCP port, 0 for any free one (default 7860)\n"
        "  --engine NAME          load this engine; repeat for several, the first is\n"
        "                         the default for requests (default: classic)\n"
        "  --weights FILE         weights file for engines that need one\n"
        "  --workers N            jobs computed at the same time (default 2)\n"
        "  --queue N              jobs that may wait for a worker; beyond that\n"
        "                         requests get 429 with Retry-After (default 16)\n"
        "  --threads N            compute threads shared by the workers (default: CPUs)\n"
        "  --http-threads N       threads doing HTTP I/O and request parsing (default 2)\n"
        "  --timeout DUR          per-request deadline, answered with 504 (default 60s);\n"
        "                         a request may ask for another with timeout_ms\n"
        "  --max-body SIZE        largest request body, else 413 (default 64M)\n"
        "  --max-pixels N         largest image, e.g. 16.8M or 4096x4096 (default 16.8M)\n"
        "  --max-side N           largest image side in pixels (default 8192)\n"
        "  --outputs DIR          where results asked for as URLs are stored (default outputs)\n"
        "  --png-level N          zlib level 0-9 for PNG results (default 1: fast)\n"
        "  --idle-timeout DUR     close connections idle or sending this slowly (default 30s)\n"
        "  --max-connections N    simultaneous connections (default 1024)\n"
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

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return PX_EINVAL;
    *out = (int)v;
    return 0;
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
        const char *n = name + 2;
        uint64_t u;
        int64_t ms;
        int bad = 0;
        if (!strcmp(n, "host")) c->host = val;
        else if (!strcmp(n, "port")) bad = parse_int(val, 0, 65535, &c->port);
        else if (!strcmp(n, "workers")) bad = parse_int(val, 1, 256, &c->workers);
        else if (!strcmp(n, "queue")) bad = parse_int(val, 0, 100000, &c->queue);
        else if (!strcmp(n, "http-threads")) bad = parse_int(val, 1, 64, &c->http_threads);
        else if (!strcmp(n, "threads")) bad = parse_int(val, 1, 1024, &c->threads);
        else if (!strcmp(n, "max-connections")) bad = parse_int(val, 1, 100000, &c->max_connections);
        else if (!strcmp(n, "png-level")) bad = parse_int(val, 0, 9, &c->png_level);
        else if (!strcmp(n, "max-side")) bad = parse_int(val, 1, 1 << 20, &c->max_side);
        else if (!strcmp(n, "outputs")) c->outputs = val;
        else if (!strcmp(n, "weights")) c->weights = val;
        else if (!strcmp(n, "log-level")) c->log_level = val;
        else if (!strcmp(n, "max-body")) {
            bad = px_parse_size(val, &u) || u < 1024 || u > (4ull << 30);
            if (!bad) c->max_body = (size_t)u;
        } else if (!strcmp(n, "max-pixels")) {
            bad = px_parse_pixels(val, &c->max_pixels);
        } else if (!strcmp(n, "timeout")) {
            bad = px_parse_duration_ms(val, &ms) || ms < 1;
            if (!bad) c->timeout_ms = ms;
        } else if (!strcmp(n, "idle-timeout")) {
            bad = px_parse_duration_ms(val, &ms) || ms < 1000;
            if (!bad) c->idle_timeout_s = (ms + 999) / 1000;
        } else if (!strcmp(n, "engine")) {
            if (c->nengines >= PX_MAX_ENGINES)
                return px_errf(err, errlen, PX_EINVAL, "at most %d --engine flags", PX_MAX_ENGINES);
            c->engines[c->nengines++] = val;
        } else {
            return px_errf(err, errlen, PX_EINVAL, "unknown flag --%s (see pixserve serve --help)", n);
        }
        if (bad) return px_errf(err, errlen, PX_EINVAL, "bad value '%s' for --%s", val, n);
    }
    if (c->nengines == 0) c->engines[c->nengines++] = "classic";
    return 0;
}
