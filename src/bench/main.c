/*
 * main.c — the pixbench command line: picks the subcommand. `run` (the
 * default, cmd_run.c) load-tests an HTTP image service and writes the
 * report; `monitor` (monitor_cmd.c) samples a process, the system and the
 * GPUs on their own (what nvidia-smi dmon and pidstat gave the seed
 * reports' authors); `faults` (cmd_faults.c) sends bad and hostile
 * requests; `echo` runs the delay-injecting test server and `payload`
 * writes the generated images and masks for inspection (both here: each a
 * handful of flags over one library call).
 */
#include "bench/cli.h"
#include "bench/cmd_faults.h"
#include "bench/cmd_run.h"
#include "bench/echo.h"
#include "bench/monitor_cmd.h"
#include "bench/payload.h"
#include "bench/run_args.h"
#include "bench/spec.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmd_echo(int argc, char **argv)
{
    pb_echo_config c = {0};
    char err[256];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: pixbench echo [--host ADDR] [--port N] [--threads N] [--delay SPEC]\n"
                   "                     [--stall AT:DUR] [--body-bytes N] [--seed N]\n\n"
                   "A keep-alive HTTP/1.1 server that answers every request with a small fixed\n"
                   "reply after a delay: SPEC is 0 (default), 10ms, uniform:10ms:50ms, exp:20ms or\n"
                   "bimodal:10ms:200ms:0.05. --stall 5s:1s holds every reply due between 5 s and\n"
                   "6 s after start until 6 s. Prints its address, runs until SIGINT/SIGTERM.\n");
            return 0;
        }
        PB_NEED_VALUE("pixbench");
        int rc = 0;
        if (!strcmp(a, "--host")) c.host = v;
        else if (!strcmp(a, "--port")) c.port = atoi(v);
        else if (!strcmp(a, "--threads")) c.threads = atoi(v);
        else if (!strcmp(a, "--delay")) rc = pb_parse_delay(v, &c.delay, err, sizeof err);
        else if (!strcmp(a, "--body-bytes")) c.body_len = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--seed")) c.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--stall")) {
            char at[64];
            const char *colon = strchr(v, ':');
            if (!colon || (size_t)(colon - v) >= sizeof at) return pb_cli_bad("pixbench", "--stall is AT:DUR, e.g. 5s:1s");
            memcpy(at, v, (size_t)(colon - v));
            at[colon - v] = 0;
            rc = pb_parse_duration(at, &c.stall_at_ns, err, sizeof err);
            if (!rc) rc = pb_parse_duration(colon + 1, &c.stall_ns, err, sizeof err);
        } else {
            fprintf(stderr, "pixbench echo: unknown flag '%s'\n", a);
            return 2;
        }
        if (rc) {
            fprintf(stderr, "pixbench echo: %s: %s\n", a, err);
            return 2;
        }
    }
    sigset_t set;
    pb_cli_block_signals(&set);
    pb_echo *e;
    if (pb_echo_start(&c, &e, err, sizeof err)) {
        fprintf(stderr, "pixbench echo: %s\n", err);
        return 1;
    }
    printf("pixbench echo listening on http://%s:%d\n", c.host ? c.host : "127.0.0.1", pb_echo_port(e));
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    fprintf(stderr, "pixbench echo: %llu requests\n", (unsigned long long)pb_echo_requests(e));
    pb_echo_stop(e);
    return 0;
}

static int cmd_payload(int argc, char **argv)
{
    const char *sizes = "640x480", *out = ".";
    double lo = 0.15, hi = 0.30;
    uint64_t seed = 1;
    int n = 1;
    char err[256];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: pixbench payload [--sizes WxH,...] [--payloads N] [--mask-coverage A-B]\n"
                   "                        [--seed N] [--out DIR]\n\n"
                   "Writes the generated images and masks pixbench would send (image-SIZE-K.png,\n"
                   "mask-SIZE-K.png) and prints each mask's coverage.\n");
            return 0;
        }
        PB_NEED_VALUE("pixbench");
        if (!strcmp(a, "--sizes")) sizes = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--payloads")) n = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--mask-coverage")) {
            if (pb_parse_fraction_range(v, &lo, &hi, err, sizeof err)) return pb_cli_bad("pixbench", err);
        } else {
            fprintf(stderr, "pixbench payload: unknown flag '%s'\n", a);
            return 2;
        }
    }
    char list[1024];
    snprintf(list, sizeof list, "%s", sizes);
    char *save = NULL;
    uint64_t idx = 0;
    for (char *it = strtok_r(list, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        int w, h;
        if (pb_parse_size(it, &w, &h, err, sizeof err)) return pb_cli_bad("pixbench", err);
        for (int k = 0; k < n; k++, idx++) {
            pb_payload p;
            if (pb_payload_generate(w, h, lo, hi, seed, idx, PX_FMT_PNG, &p, err, sizeof err)) {
                fprintf(stderr, "pixbench payload: %s\n", err);
                return 1;
            }
            char path[1200];
            snprintf(path, sizeof path, "%s/image-%s-%d.png", out, it, k);
            FILE *f = fopen(path, "wb");
            int ok = f && fwrite(p.image.data, 1, p.image.len, f) == p.image.len;
            if (f) fclose(f);
            snprintf(path, sizeof path, "%s/mask-%s-%d.png", out, it, k);
            f = fopen(path, "wb");
            ok = ok && f && fwrite(p.mask.data, 1, p.mask.len, f) == p.mask.len;
            if (f) fclose(f);
            if (!ok) {
                fprintf(stderr, "pixbench payload: cannot write into %s\n", out);
                pb_payload_free(&p);
                return 1;
            }
            printf("%s #%d: image %zu bytes, mask %zu bytes, coverage %.2f%%\n", it, k, p.image.len,
                   p.mask.len, 100 * p.coverage);
            pb_payload_free(&p);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    char cmdline[2048] = "pixbench";
    size_t cl = strlen(cmdline);
    for (int i = 1; i < argc && cl + 4 < sizeof cmdline; i++) {
        int quote = strpbrk(argv[i], " '\"<>|&;*") != NULL;
        cl += (size_t)snprintf(cmdline + cl, sizeof cmdline - cl, quote ? " '%s'" : " %s", argv[i]);
    }
    if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
        printf("pixbench %s\n", PB_VERSION);
        return 0;
    }
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))) {
        pb_run_usage(stdout);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "echo")) return cmd_echo(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "payload")) return cmd_payload(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "monitor")) return pb_cmd_monitor(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "faults")) return pb_cmd_faults(argc - 2, argv + 2, cmdline);
    if (argc > 1 && !strcmp(argv[1], "run")) return pb_cmd_run(argc - 2, argv + 2, cmdline);
    return pb_cmd_run(argc - 1, argv + 1, cmdline);
}
