/*
 * cmd_faults.c — `pixbench faults` (see cmd_faults.h): its flags, the
 * target (the user's, whose limits default to pixserve's own, or an
 * embedded pixserve started with the limits given), the run and the
 * report.
 */
#include "bench/cmd_faults.h"

#include "bench/cli.h"
#include "bench/faults.h"
#include "bench/report.h"
#include "bench/spec.h"
#include "bench/target.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define PROG "pixbench faults" /* in messages */

static void faults_usage(void)
{
    printf("usage: pixbench faults [--target URL [--pid N]] [--max-body SIZE] [--max-pixels WxH]\n"
           "                       [--idle-timeout DUR] [--burst N] [--only CASE,...] [--out DIR] [flags]\n\n"
           "Sends a catalogue of bad and hostile requests to the service one at a time and judges\n"
           "each: status, JSON error code and message, latency, health before and after, memory back\n"
           "to its baseline. Without --target it starts pixserve itself with the limits given here.\n\n"
           "  --target URL          http://host:port (loopback unless --allow-remote)\n"
           "  --pid N               the target's process: memory from /proc, a crash seen at once\n"
           "                        (else memory from the health reply's rss_bytes, if any)\n"
           "  --path P, --health P  the inpaint route (/api/v1/inpaint) and health route (/healthz)\n"
           "  --max-body SIZE       the target's body cap (embedded default 16M; pixserve's own: 64M)\n"
           "  --max-pixels WxH      the largest image it takes, the burst's size (embedded 1280x960)\n"
           "  --idle-timeout DUR    its idle timeout, for the slow senders (embedded 5s; pixserve's: 30s)\n"
           "  --burst N             concurrent largest-size requests (default 5, as in the seed report)\n"
           "  --timeout DUR         no answer by then is a hang (default 60s)\n"
           "  --settle DUR          time memory may take to come back (default 3s)\n"
           "  --only CASE,...       run these cases only; --list prints them\n"
           "  --strict              warnings fail too (exit 3)\n"
           "  --pixserve PATH, --server-arg ARG, --allow-remote, --seed N, --title T, --out DIR, -q\n\n"
           "Exit status: 0 no case failed, 1 could not run, 2 bad usage, 3 a case failed (a crash, a\n"
           "hang, unhealthy afterwards, a 500, or a refusal accepted).\n");
}

typedef struct faults_opts {
    pb_faults_config fc;
    const char *target, *bin, *out, *title;
    const char *max_body, *max_pixels, *idle; /* the target's limits, as typed */
    const char *server_args[32];
    int nserver, allow_remote, quiet, strict, have_body, have_pixels, have_idle;
} faults_opts;

/* 1 when every name of --only is a case: a typo must not silently run nothing. */
static int only_known(const char *only)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    if (!mf) return 1; /* out of memory: the run itself will say so */
    pb_faults_list(mf);
    fclose(mf);
    char list[1024];
    snprintf(list, sizeof list, "%s", only);
    char *save = NULL;
    int ok = 1;
    for (char *it = strtok_r(list, ",", &save); ok && it; it = strtok_r(NULL, ",", &save)) {
        char needle[96];
        snprintf(needle, sizeof needle, "%s ", it);
        int found = 0;
        for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
            if (!strncmp(line, needle, strlen(needle))) found = 1;
        if (!found) {
            fprintf(stderr, "pixbench faults: no case '%s' (pixbench faults --list)\n", it);
            ok = 0;
        }
    }
    free(buf);
    return ok;
}

/* One flag with its value; NOT_MINE when it is none of ours. */
enum { NOT_MINE = -1 };
static int parse_flag(faults_opts *o, const char *a, const char *v, char *err, size_t errlen)
{
    pb_faults_config *fc = &o->fc;
    int rc = 0;
    if (!strcmp(a, "--target")) o->target = v;
    else if (!strcmp(a, "--pid")) {
        fc->pid = atoi(v);
        if (fc->pid <= 0) return pb_cli_bad("pixbench", "--pid must be a process id");
    } else if (!strcmp(a, "--path")) fc->path = v;
    else if (!strcmp(a, "--health")) fc->health_path = v;
    else if (!strcmp(a, "--max-body")) o->max_body = v, o->have_body = 1;
    else if (!strcmp(a, "--max-pixels")) o->max_pixels = v, o->have_pixels = 1;
    else if (!strcmp(a, "--idle-timeout")) o->idle = v, o->have_idle = 1;
    else if (!strcmp(a, "--burst")) {
        fc->burst = atoi(v);
        if (fc->burst < 1 || fc->burst > 64) return pb_cli_bad("pixbench", "--burst is 1 to 64");
    } else if (!strcmp(a, "--timeout")) rc = pb_parse_duration(v, &fc->timeout_ns, err, errlen);
    else if (!strcmp(a, "--settle")) rc = pb_parse_duration(v, &fc->settle_ns, err, errlen);
    else if (!strcmp(a, "--only")) fc->only = v;
    else if (!strcmp(a, "--seed")) fc->seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--pixserve")) o->bin = v;
    else if (!strcmp(a, "--server-arg")) {
        if (o->nserver == 32) return pb_cli_bad("pixbench", "too many --server-arg");
        o->server_args[o->nserver++] = v;
    } else if (!strcmp(a, "--out")) o->out = v;
    else if (!strcmp(a, "--title")) o->title = v;
    else return NOT_MINE;
    if (rc) {
        fprintf(stderr, "pixbench faults: %s: %s\n", a, err);
        return 2;
    }
    return 0;
}

/* Returns 0, 1 when --help or --list was printed (exit 0), or 2. */
static int parse_args(faults_opts *o, int argc, char **argv)
{
    char err[512];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            faults_usage();
            return 1;
        }
        if (!strcmp(a, "--list")) {
            pb_faults_list(stdout);
            return 1;
        }
        if (!strcmp(a, "--allow-remote")) { o->allow_remote = 1; continue; }
        if (!strcmp(a, "--strict")) { o->strict = 1; continue; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        PB_NEED_VALUE("pixbench");
        int rc = parse_flag(o, a, v, err, sizeof err);
        if (rc == NOT_MINE) {
            fprintf(stderr, "pixbench faults: unknown flag '%s' (try --help)\n", a);
            return 2;
        }
        if (rc) return rc;
    }
    if (o->target && (!o->have_body || !o->have_pixels || !o->have_idle)) {
        /* a target of unknown limits: assume pixserve's defaults */
        if (!o->have_body) o->max_body = "64M";
        if (!o->have_pixels) o->max_pixels = "4096x4096";
        if (!o->have_idle) o->idle = "30s";
    }
    pb_faults_config *fc = &o->fc;
    if (pb_parse_bytes(o->max_body, &fc->max_body, err, sizeof err) ||
        pb_parse_size(o->max_pixels, &fc->max_w, &fc->max_h, err, sizeof err) ||
        pb_parse_duration(o->idle, &fc->idle_timeout_ns, err, sizeof err)) {
        fprintf(stderr, "pixbench faults: %s\n", err);
        return 2;
    }
    if (fc->idle_timeout_ns < 100000000) return pb_cli_bad("pixbench", "--idle-timeout below 100ms");
    if (fc->only && !only_known(fc->only)) return 2;
    return 0;
}

/* The verdict table, the report files; returns the exit status. */
static int report(const faults_opts *o, const pb_faults_run *fr, const pb_embedded *emb, const char *full,
                  const char *cmdline)
{
    char err[512];
    pb_report_faults_table(stdout, fr);
    int rc = 0;
    if (o->out) {
        struct utsname un;
        uname(&un);
        pb_report_meta m = {0};
        m.title = o->title ? o->title : "pixbench fault injection";
        m.cmdline = cmdline;
        m.target = full;
        m.server = emb->child.pid ? emb->child.banner : NULL;
        m.cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
        m.host = un.nodename;
        m.kernel = un.release;
        if (pb_report_write_faults(o->out, fr, &o->fc, &m, err, sizeof err)) {
            fprintf(stderr, "pixbench faults: %s\n", err);
            rc = 1;
        } else {
            printf("Report: %s/report.md, %s/report.html, %s/report.json, %s/faults.csv\n", o->out, o->out, o->out,
                   o->out);
        }
    }
    fflush(stdout);
    if (!rc && (fr->fails || (o->strict && fr->warns))) rc = 3;
    return rc;
}

/* The target, then every case; returns the exit status. */
static int run(faults_opts *o, pb_embedded *emb, const char *cmdline)
{
    pb_faults_config *fc = &o->fc;
    char url[512], hostport[300], prefix[256], path[512], hpath[512], err[512];
    int rc;
    if (!o->target) {
        const char *args[6 + 32] = {"--max-body", o->max_body, "--max-pixels", o->max_pixels, "--idle-timeout",
                                    o->idle};
        for (int i = 0; i < o->nserver; i++) args[6 + i] = o->server_args[i];
        if ((rc = pb_target_embed(emb, o->bin, "error", args, 6 + o->nserver, PROG, o->quiet, url, sizeof url)))
            return rc;
        fc->pid = emb->child.pid;
    } else {
        snprintf(url, sizeof url, "%s", o->target);
    }
    int loopback;
    if ((rc = pb_target_resolve(url, o->allow_remote, &fc->addr, &fc->addrlen, hostport, sizeof hostport, prefix,
                                sizeof prefix, &loopback)))
        return rc;
    snprintf(path, sizeof path, "%s%s", prefix, fc->path);
    snprintf(hpath, sizeof hpath, "%s%s", prefix, fc->health_path);
    fc->path = path;
    fc->health_path = hpath;
    fc->host_header = hostport;
    fc->progress = !o->quiet;
    if (!o->quiet)
        fprintf(stderr, "pixbench faults: %s%s; body cap %s, images up to %s, idle timeout %s, burst %d\n", url, path,
                o->max_body, o->max_pixels, o->idle, fc->burst);
    pb_faults_run *fr = px_xcalloc(1, sizeof *fr);
    if (pb_faults_run_all(fc, fr, err, sizeof err)) {
        fprintf(stderr, "pixbench faults: %s\n", err);
        free(fr);
        return 1;
    }
    char full[1024];
    snprintf(full, sizeof full, "%s%s", url, path + strlen(prefix));
    rc = report(o, fr, emb, full, cmdline);
    free(fr);
    return rc;
}

int pb_cmd_faults(int argc, char **argv, const char *cmdline)
{
    faults_opts o = {0};
    o.max_body = "16M";
    o.max_pixels = "1280x960";
    o.idle = "5s";
    o.fc.path = "/api/v1/inpaint";
    o.fc.health_path = "/healthz";
    o.fc.burst = 5;
    o.fc.timeout_ns = 60000000000LL;
    o.fc.settle_ns = 3000000000LL;
    o.fc.seed = 1;
    int rc = parse_args(&o, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    pb_embedded emb = {0};
    rc = run(&o, &emb, cmdline);
    int st = pb_target_unembed(&emb, PROG, o.quiet);
    if (st != 0 && !rc) rc = 3; /* a service that cannot stop cleanly after the faults failed them */
    return rc;
}
