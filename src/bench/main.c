/*
 * main.c — the pixbench command line: `run` (the default) load-tests an HTTP
 * image service and writes the report; `monitor` samples a process, the
 * system and the GPUs on their own (what nvidia-smi dmon and pidstat gave
 * the seed reports' authors); `echo` runs the delay-injecting test server;
 * `payload` writes the generated images and masks for inspection.
 */
#include "bench/analyze.h"
#include "bench/asyncgen.h"
#include "bench/child.h"
#include "bench/echo.h"
#include "bench/faults.h"
#include "bench/genrun.h"
#include "bench/loop.h"
#include "bench/monitor.h"
#include "bench/monitor_cmd.h"
#include "bench/payload.h"
#include "bench/profile.h"
#include "bench/report.h"
#include "bench/report_gen.h"
#include "bench/scenario.h"
#include "bench/slo.h"
#include "bench/spec.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    stop_flag = 1;
    signal(sig, SIG_DFL); /* a second Ctrl-C ends it at once */
}

static void usage(FILE *f)
{
    fprintf(f,
"pixbench %s — load tester and stress-test report for HTTP image services\n"
"\n"
"usage:\n"
"  pixbench [run] [flags]     load-test a target (default: an embedded pixserve)\n"
"  pixbench monitor [flags]   sample a process, the system and the GPUs (pixbench monitor --help)\n"
"  pixbench faults [flags]    send bad and hostile requests, judge each (pixbench faults --help)\n"
"  pixbench echo [flags]      a keep-alive test server with injected delays (pixbench echo --help)\n"
"  pixbench payload [flags]   write the generated images and masks (pixbench payload --help)\n"
"  pixbench --version\n"
"\n"
"target:\n"
"  --target URL            http://host:port[/prefix]; loopback only unless --allow-remote. With\n"
"                          --profile raw the URL's path is the request path (no --path needed)\n"
"                          Without it pixbench starts `pixserve serve --port 0` (classic engine)\n"
"  --allow-remote          allow a target that is not this machine\n"
"  --pixserve PATH         the pixserve binary for the embedded target (default: next to pixbench)\n"
"  --server-arg ARG        extra argument for the embedded pixserve (repeatable)\n"
"\n"
"what to send:\n"
"  --profile NAME          pixserve (POST /api/v1/inpaint, default), seed-inpaint (POST /inpaint,\n"
"                          return_type), iopaint, generate (POST /api/v1/generate), openai-images\n"
"                          (POST /v1/images/generations), raw\n"
"  --path PATH             override the profile's path\n"
"  --method M, --body FILE raw profile: method (default GET, POST with a body) and body file\n"
"  -H, --header 'K: V'     extra request header (repeatable)\n"
"  --images F1,F2,...      your images (sent as they are) instead of generated ones\n"
"  --sizes WxH,...         generated photo-like images (default 640x480), mixed in every stage;\n"
"                          small, medium, large (the seed's 640x480, 1280x960, 2560x1920) make a\n"
"                          size matrix: one stage per size at one load (--users, default 1)\n"
"  --size-matrix           one stage per --sizes entry (or --images file) rather than mixing them\n"
"  --payloads N            distinct image+mask pairs per size or file (default 2)\n"
"  --mask-coverage A-B     hole fraction of each mask, e.g. 0.15-0.30 or 15-30%% (default 0.15-0.30)\n"
"  --image-format png|jpeg encoding of generated images (default png)\n"
"  --seed N                payload and pacing seed (default 1): same seed, same bytes\n"
"  --return-type T         seed-inpaint: image_url (default) or base64\n"
"  --engine NAME           pixserve: the request's engine field\n"
"  --prompt S, --negative-prompt S, --width N, --height N, --steps N, --cfg-scale X, --gen-seed N\n"
"                          generate profile fields (defaults: the seed report's locustfile)\n"
"\n"
"text to image (generate, openai-images):\n"
"  --prompts FILE          prompt set mixed in every stage: one per line ('# category: NAME' files\n"
"                          the lines after it), or JSON: [\"p\", ...], {\"simple\": [...], ...} or\n"
"                          [{\"prompt\": p, \"category\": c}, ...]; default the seed's locustfile prompt\n"
"  --matrix SPEC           steps=10,25,50 cfg=1,7,12 size=768x768,1024x1024: one stage per cell at\n"
"                          one load (--users N or --rate R); the product of the axes, or with\n"
"  --matrix-one-at-a-time  one axis at a time around the baseline (--steps, --cfg-scale, --width,\n"
"                          --height): the seed 003 tables, changes against the baseline\n"
"  --async                 submit to /api/v1/generate_async and follow /api/v1/jobs/{id}/events:\n"
"                          queue wait, run time and end to end apart (--users or --sweep)\n"
"  --poll DUR              with --async: poll GET /api/v1/jobs/{id} every DUR instead\n"
"\n"
"load model (closed loop unless --rate):\n"
"  --users N               concurrent users (default 1)\n"
"  --sweep L1,L2,...       one stage per value: users (closed) or requests/s (open)\n"
"  --think A-B             closed loop think time between requests, e.g. 1s-3s (Locust's\n"
"                          between(1, 3)); default 0\n"
"  --spawn-rate R          users started per second (default: all at once)\n"
"  --rate R                open loop: R requests/s, latency from the intended send time\n"
"  --poisson               open loop: Poisson arrivals (default: constant spacing)\n"
"  --ramp DUR              open loop: ramp the rate linearly at each stage start\n"
"  --connections N         open loop connection pool (default 64); busy pool: requests wait\n"
"  --max-wait DUR          open loop: a request waiting longer for a connection is dropped\n"
"                          (default: the timeout)\n"
"  --late DUR              open loop: a send later than this after its time is 'late' (1ms)\n"
"  --duration DUR          measured time per stage (alias --stage-duration; default 10s)\n"
"  --warmup DUR            before each stage's measurement (default 0; waits for the spawn ramp too)\n"
"  --requests N            end a stage after N measured requests\n"
"  --threads N             event-loop threads (default: CPUs, at most the users/connections)\n"
"  --timeout DUR           per request (default 30s)\n"
"  --soak DUR              one long stage (--users N or --rate R) and a leak verdict: RSS, GPU\n"
"                          memory and descriptors fitted on window minima, latency drift; exit 3\n"
"                          on a suspected leak. Warm-up default: a tenth, at most 5 minutes\n"
"  --leak-window DUR       soak: window whose minimum is fitted (default: a 20th of the run)\n"
"\n"
"resources (sampled beside the load; a target on this machine):\n"
"  --pid N                 the target's process (the embedded pixserve's is known)\n"
"  --monitor-interval DUR  sampling interval, 100ms or more (default 1s)\n"
"  --disk DEV              block device to watch (default: the one holding the outputs:\n"
"                          the embedded pixserve's, else --disk-path, else the target's cwd)\n"
"  --disk-path PATH        watch the device holding PATH\n"
"  --no-gpu                do not read GPUs (NVML)\n"
"  --no-monitor            no resource sampling at all\n"
"\n"
"checks, verdicts, output:\n"
"  --check LEVEL           none | basic (status, type, PNG size) | full (decode, size); default full\n"
"  --expect-status A[-B]   statuses that count as success (default 200-299)\n"
"  --slo SPEC              e.g. 'p95<500ms,errors<1%%': exit 3 if any stage breaks it\n"
"  --error-threshold P     sweet spot: error rate under this (default 1%%)\n"
"  --stability             per stage, check the last 3 windows agree within 10%%\n"
"  --out DIR               write report.md, report.json, report.html and CSV files\n"
"  --title TEXT            report title\n"
"  --no-progress           no live line on a terminal\n"
"  -q, --quiet             print only the table\n"
"\n"
"Exit status: 0 done, 1 could not run, 2 bad usage, 3 SLO broken or (--soak) a leak suspected.\n",
            PB_VERSION);
}

typedef struct opts {
    const char *target, *pixserve, *out, *title, *slo_text, *images, *sizes;
    const char *server_args[32];
    int nserver_args;
    int allow_remote, quiet, progress, stability, poisson, open_loop, have_users;
    double loads[PB_MAX_STAGES];
    int nloads;
    int payloads;
    double cov_lo, cov_hi;
    enum px_format img_fmt;
    uint64_t seed;
    int64_t think_lo, think_hi, ramp, max_wait, late, duration, warmup, timeout;
    double spawn_rate, err_threshold;
    int connections, threads, status_lo, status_hi;
    uint64_t requests;
    pb_profile_opts prof;
    int pid, no_monitor, no_gpu, have_warmup, size_matrix;
    int64_t mon_interval, soak, leak_window;
    const char *disk, *disk_path;
    pb_gen_opts gen;
} opts;

#define NEED_VALUE()                                                              \
    do {                                                                          \
        if (!v) {                                                                 \
            fprintf(stderr, "pixbench: %s needs a value\n", a);                   \
            return 2;                                                             \
        }                                                                         \
        i++;                                                                      \
    } while (0)

static int bad(const char *what)
{
    fprintf(stderr, "pixbench: %s\n", what);
    return 2;
}

static int parse_args(opts *o, int argc, char **argv)
{
    char err[256];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--allow-remote")) { o->allow_remote = 1; continue; }
        if (!strcmp(a, "--poisson")) { o->poisson = 1; continue; }
        if (!strcmp(a, "--stability")) { o->stability = 1; continue; }
        if (!strcmp(a, "--no-progress")) { o->progress = 0; continue; }
        if (!strcmp(a, "--no-monitor")) { o->no_monitor = 1; continue; }
        if (!strcmp(a, "--no-gpu")) { o->no_gpu = 1; continue; }
        if (!strcmp(a, "--size-matrix")) { o->size_matrix = 1; continue; }
        if (!strcmp(a, "--matrix-one-at-a-time")) { o->gen.one_at_a_time = 1; continue; }
        if (!strcmp(a, "--async")) { o->gen.async = o->gen.async ? o->gen.async : 1; continue; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { o->quiet = 1; o->progress = 0; continue; }
        if (a[0] != '-') {
            fprintf(stderr, "pixbench: unexpected argument '%s' (try --help)\n", a);
            return 2;
        }
        NEED_VALUE();
        int rc = 0;
        if (!strcmp(a, "--target")) o->target = v;
        else if (!strcmp(a, "--pixserve")) o->pixserve = v;
        else if (!strcmp(a, "--server-arg")) {
            if (o->nserver_args == 32) return bad("too many --server-arg");
            o->server_args[o->nserver_args++] = v;
        } else if (!strcmp(a, "--profile")) {
            int k = pb_profile_parse(v);
            if (k < 0) return bad("unknown --profile (pixserve, seed-inpaint, iopaint, generate, raw)");
            o->prof.kind = (enum pb_profile_kind)k;
        } else if (!strcmp(a, "--path")) o->prof.path = v;
        else if (!strcmp(a, "--method")) o->prof.method = v;
        else if (!strcmp(a, "--body")) o->prof.body_file = v;
        else if (!strcmp(a, "-H") || !strcmp(a, "--header")) {
            if (o->prof.nheaders == PB_MAX_HEADERS || !strchr(v, ':')) return bad("bad or too many --header");
            o->prof.headers[o->prof.nheaders++] = v;
        } else if (!strcmp(a, "--images")) o->images = v;
        else if (!strcmp(a, "--sizes")) o->sizes = v;
        else if (!strcmp(a, "--payloads")) o->payloads = atoi(v);
        else if (!strcmp(a, "--mask-coverage")) rc = pb_parse_fraction_range(v, &o->cov_lo, &o->cov_hi, err, sizeof err);
        else if (!strcmp(a, "--image-format")) {
            o->img_fmt = px_format_parse(v);
            if (o->img_fmt != PX_FMT_PNG && o->img_fmt != PX_FMT_JPEG) return bad("--image-format is png or jpeg");
        } else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--return-type")) o->prof.return_type = v;
        else if (!strcmp(a, "--engine")) o->prof.engine = v;
        else if (!strcmp(a, "--prompt")) o->prof.prompt = v;
        else if (!strcmp(a, "--negative-prompt")) o->prof.negative_prompt = v;
        else if (!strcmp(a, "--width")) o->prof.width = atoi(v);
        else if (!strcmp(a, "--height")) o->prof.height = atoi(v);
        else if (!strcmp(a, "--steps")) o->prof.steps = atoi(v);
        else if (!strcmp(a, "--cfg-scale")) o->prof.cfg_scale = atof(v), o->prof.cfg_set = 1;
        else if (!strcmp(a, "--gen-seed")) o->prof.gen_seed = atoll(v);
        else if (!strcmp(a, "--prompts")) o->gen.prompts_file = v;
        else if (!strcmp(a, "--matrix")) { /* "steps=10,25 cfg=1,7" as one argument or several */
            size_t l = strlen(o->gen.matrix);
            snprintf(o->gen.matrix + l, sizeof o->gen.matrix - l, "%s%s", l ? " " : "", v);
            while (i + 1 < argc && (!strncmp(argv[i + 1], "steps=", 6) || !strncmp(argv[i + 1], "cfg=", 4) ||
                                    !strncmp(argv[i + 1], "size=", 5))) {
                l = strlen(o->gen.matrix);
                snprintf(o->gen.matrix + l, sizeof o->gen.matrix - l, " %s", argv[++i]);
            }
        } else if (!strcmp(a, "--poll")) {
            rc = pb_parse_duration(v, &o->gen.poll_ns, err, sizeof err);
            o->gen.async = 2;
        }
        else if (!strcmp(a, "--users")) {
            o->loads[0] = atoi(v);
            o->nloads = 1;
            o->have_users = 1;
            if (o->loads[0] < 1) return bad("--users must be at least 1");
        } else if (!strcmp(a, "--sweep")) rc = pb_parse_list(v, o->loads, PB_MAX_STAGES, &o->nloads, err, sizeof err);
        else if (!strcmp(a, "--think")) rc = pb_parse_duration_range(v, &o->think_lo, &o->think_hi, err, sizeof err);
        else if (!strcmp(a, "--spawn-rate")) o->spawn_rate = atof(v);
        else if (!strcmp(a, "--rate")) {
            o->open_loop = 1;
            o->loads[0] = atof(v);
            if (o->nloads == 0) o->nloads = 1;
            if (!(o->loads[0] > 0)) return bad("--rate must be positive");
        } else if (!strcmp(a, "--ramp")) rc = pb_parse_duration(v, &o->ramp, err, sizeof err);
        else if (!strcmp(a, "--connections")) o->connections = atoi(v);
        else if (!strcmp(a, "--max-wait")) rc = pb_parse_duration(v, &o->max_wait, err, sizeof err);
        else if (!strcmp(a, "--late")) rc = pb_parse_duration(v, &o->late, err, sizeof err);
        else if (!strcmp(a, "--duration") || !strcmp(a, "--stage-duration")) rc = pb_parse_duration(v, &o->duration, err, sizeof err);
        else if (!strcmp(a, "--warmup")) {
            rc = pb_parse_duration(v, &o->warmup, err, sizeof err);
            o->have_warmup = 1;
        } else if (!strcmp(a, "--soak")) {
            rc = pb_parse_duration(v, &o->soak, err, sizeof err);
            if (!rc && o->soak <= 0) return bad("--soak needs a duration");
        } else if (!strcmp(a, "--leak-window")) rc = pb_parse_duration(v, &o->leak_window, err, sizeof err);
        else if (!strcmp(a, "--requests")) o->requests = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--timeout")) rc = pb_parse_duration(v, &o->timeout, err, sizeof err);
        else if (!strcmp(a, "--check")) {
            if (!strcmp(v, "none")) o->prof.check = PB_CHECK_NONE;
            else if (!strcmp(v, "basic")) o->prof.check = PB_CHECK_BASIC;
            else if (!strcmp(v, "full")) o->prof.check = PB_CHECK_FULL;
            else return bad("--check is none, basic or full");
        } else if (!strcmp(a, "--expect-status")) {
            int lo = 0, hi = 0;
            int n = sscanf(v, "%d-%d", &lo, &hi);
            if (n < 1 || lo < 100 || lo > 999) return bad("bad --expect-status (e.g. 200 or 200-299)");
            o->status_lo = lo;
            o->status_hi = n == 2 ? hi : lo;
        } else if (!strcmp(a, "--slo")) o->slo_text = v;
        else if (!strcmp(a, "--error-threshold")) rc = pb_parse_fraction(v, &o->err_threshold, err, sizeof err);
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--pid")) {
            o->pid = atoi(v);
            if (o->pid <= 0) return bad("--pid must be a process id");
        } else if (!strcmp(a, "--monitor-interval")) {
            rc = pb_parse_duration(v, &o->mon_interval, err, sizeof err);
            if (!rc && o->mon_interval < PB_MON_MIN_INTERVAL_NS) return bad("--monitor-interval is 100ms or more");
        } else if (!strcmp(a, "--disk")) o->disk = v;
        else if (!strcmp(a, "--disk-path")) o->disk_path = v;
        else if (!strcmp(a, "--title")) o->title = v;
        else {
            fprintf(stderr, "pixbench: unknown flag '%s' (try --help)\n", a);
            return 2;
        }
        if (rc) {
            fprintf(stderr, "pixbench: %s: %s\n", a, err);
            return 2;
        }
    }
    return 0;
}

/* http://host:port[/prefix] → address; loopback unless allowed. */
static int resolve_target(const char *url, int allow_remote, struct sockaddr_storage *ss,
                          socklen_t *sl, char *hostport, size_t hpcap, char *prefix, size_t pcap,
                          int *loopback)
{
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "pixbench: --target must start with http:// (https is not supported)\n");
        return 2;
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    snprintf(prefix, pcap, "%s", slash ? slash : "");
    size_t plen = strlen(prefix);
    if (plen && prefix[plen - 1] == '/') prefix[plen - 1] = 0;
    char host[256], port[16] = "80";
    if (hl >= sizeof host) return bad("--target host too long");
    memcpy(host, h, hl);
    host[hl] = 0;
    snprintf(hostport, hpcap, "%s", host);
    char *colon = strrchr(host, ':');
    if (host[0] == '[') {
        char *rb = strchr(host, ']');
        if (!rb) return bad("bad IPv6 --target");
        if (rb[1] == ':') snprintf(port, sizeof port, "%s", rb + 2);
        *rb = 0;
        memmove(host, host + 1, strlen(host));
    } else if (colon) {
        snprintf(port, sizeof port, "%s", colon + 1);
        *colon = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g || !res) {
        fprintf(stderr, "pixbench: cannot resolve %s: %s\n", host, gai_strerror(g));
        return 1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    int loop = 0;
    if (ss->ss_family == AF_INET) {
        loop = (ntohl(((struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    } else if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((struct sockaddr_in6 *)ss)->sin6_addr;
        loop = IN6_IS_ADDR_LOOPBACK(a6) ||
               (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
    }
    *loopback = loop;
    if (!loop && !allow_remote) {
        fprintf(stderr, "pixbench: %s is not this machine; load-testing other hosts needs "
                        "--allow-remote (make sure you may)\n", host);
        return 2;
    }
    return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

/* --async: the job API's own driver and table (asyncgen.h). */
static int run_async(const opts *o, const struct sockaddr_storage *ss, socklen_t sl, const char *hostport,
                     const char *prefix, const pb_workload *wl, const char *url, const char *path,
                     const char *cmdline)
{
    pb_async_config ac = {.addr = *ss, .addrlen = sl, .host_header = hostport, .prefix = prefix,
                          .reqs = wl->reqs, .nreqs = wl->nreqs, .nstages = o->nloads, .warmup_ns = o->warmup,
                          .stage_ns = o->duration, .timeout_ns = o->timeout, .poll_ns = o->gen.async == 2 ? o->gen.poll_ns : 0,
                          .interrupted = &stop_flag, .progress = !o->quiet};
    if (o->gen.async == 2 && ac.poll_ns <= 0) ac.poll_ns = 200000000;
    memcpy(ac.loads, o->loads, sizeof o->loads);
    pb_async_stage *st = px_xcalloc(PB_MAX_STAGES, sizeof *st);
    char err[256], target[1024];
    snprintf(target, sizeof target, "http://%s%s", hostport, path);
    (void)url;
    if (!o->quiet) fprintf(stderr, "pixbench: async jobs at %s, %d stage%s (users)\n", target, o->nloads, o->nloads > 1 ? "s" : "");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int n = 0, rc = pb_async_run(&ac, st, &n, err, sizeof err);
    if (rc) fprintf(stderr, "pixbench: %s\n", err);
    pb_async_print(stdout, st, n, ac.poll_ns > 0);
    if (!rc && o->out) {
        if (pb_async_write(o->out, o->title ? o->title : "pixbench async text-to-image report", cmdline, target, st, n,
                           ac.poll_ns > 0, err, sizeof err)) {
            fprintf(stderr, "pixbench: %s\n", err);
            rc = 1;
        } else {
            printf("\nReport: %s/report.md, %s/async.json\n", o->out, o->out);
        }
    }
    free(st);
    return rc ? 1 : 0;
}

static int cmd_run(int argc, char **argv, const char *cmdline)
{
    opts o = {0};
    o.progress = isatty(2);
    o.payloads = 2;
    o.cov_lo = 0.15;
    o.cov_hi = 0.30;
    o.img_fmt = PX_FMT_PNG;
    o.seed = 1;
    o.connections = 64;
    o.status_lo = 200;
    o.status_hi = 299;
    o.timeout = 30000000000LL;
    o.duration = 10000000000LL;
    o.err_threshold = 0.01;
    o.prof.check = PB_CHECK_FULL;
    int rc = parse_args(&o, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if (o.nloads == 0) {
        o.loads[0] = 1;
        o.nloads = 1;
    }
    if (o.open_loop && o.have_users) return bad("--users is closed loop; --rate is open loop: pick one");
    if (o.soak) {
        if (o.nloads > 1) return bad("--soak is one long stage: give --users N or --rate R, not --sweep");
        o.duration = o.soak;
        if (!o.have_warmup) o.warmup = o.soak / 10 < 300000000000LL ? o.soak / 10 : 300000000000LL;
    }
    pb_slo slo;
    char err[512];
    if (o.slo_text && pb_slo_parse(o.slo_text, &slo, err, sizeof err)) {
        fprintf(stderr, "pixbench: --slo: %s\n", err);
        return 2;
    }
    int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    double maxload = 0;
    for (int i = 0; i < o.nloads; i++)
        if (o.loads[i] > maxload) maxload = o.loads[i];
    if (!o.open_loop)
        for (int i = 0; i < o.nloads; i++)
            if (o.loads[i] != (int)o.loads[i]) return bad("users must be whole numbers");

    /* target: the user's, or an embedded pixserve */
    pb_child child = {0};
    pb_monitor *mon = NULL;
    pb_gen_plan gplan = {0}; /* text to image: prompts, matrix cells, what the replies said */
    int gen = PB_PROF_IS_GEN(o.prof.kind);
    if (!gen && (o.gen.matrix[0] || o.gen.prompts_file || o.gen.async))
        return bad("--matrix, --prompts and --async are for the generate and openai-images profiles");
    if (o.gen.async && (o.prof.kind != PB_PROF_GENERATE || o.gen.matrix[0] || o.open_loop || o.soak))
        return bad("--async is for --profile generate with --users or --sweep (no --matrix, --rate or --soak)");
    /* a size matrix has a workload per size; otherwise wls[0] holds every payload */
    pb_workload wls[PB_MAX_STAGES];
    int nwl = 0;
    char outputs_dir[] = "/tmp/pixbench-outputs-XXXXXX";
    int have_outputs = 0;
    char url[512], hostport[300], prefix[256];
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if (!o.target) {
        char bin[4096];
        if (o.pixserve) snprintf(bin, sizeof bin, "%s", o.pixserve);
        else if (pb_child_find_pixserve(bin, sizeof bin)) {
            fprintf(stderr, "pixbench: no --target and no pixserve next to pixbench (%s); build it "
                            "or give --pixserve PATH\n", bin);
            return 1;
        }
        if (!mkdtemp(outputs_dir)) return bad("cannot make a temporary directory");
        have_outputs = 1;
        const char *args[40];
        int na = 0;
        args[na++] = "--outputs";
        args[na++] = outputs_dir;
        args[na++] = "--log-level";
        args[na++] = "warn";
        for (int i = 0; i < o.nserver_args; i++) args[na++] = o.server_args[i];
        char logp[1200];
        snprintf(logp, sizeof logp, "%s/pixserve.log", outputs_dir);
        if (pb_child_start(bin, args, na, logp, 60000, &child, err, sizeof err)) {
            fprintf(stderr, "pixbench: %s\n", err);
            return 1;
        }
        /* it listens before its engines are loaded and warmed: wait for /readyz */
        if (pb_child_wait_ready(child.port, "/readyz", 300000, err, sizeof err)) {
            fprintf(stderr, "pixbench: pixserve not ready: %s\n", err);
            rc = 1;
            goto out_child;
        }
        snprintf(url, sizeof url, "http://127.0.0.1:%d", child.port);
        if (!o.quiet) fprintf(stderr, "pixbench: started %s (pid %d)\n", child.banner, (int)child.pid);
    } else {
        snprintf(url, sizeof url, "%s", o.target);
    }
    int loopback = 0;
    rc = resolve_target(url, o.allow_remote, &ss, &sl, hostport, sizeof hostport, prefix, sizeof prefix,
                        &loopback);
    if (rc) goto out_child;

    /* the resource monitor: this machine's view, so only for a local target
     * (or a process named with --pid, which is local by definition) */
    int target_pid = child.pid ? (int)child.pid : o.pid;
    if (!o.no_monitor && (loopback || o.pid)) {
        char cwd_path[PATH_MAX];
        const char *dpath = o.disk_path;
        if (!dpath && child.pid) dpath = outputs_dir;
        if (!dpath) dpath = pb_target_cwd(target_pid, cwd_path, sizeof cwd_path);
        pb_monitor_config mc = {.pid = target_pid, .interval_ns = o.mon_interval, .disk_path = dpath,
                                .disk_dev = o.disk, .no_gpu = o.no_gpu};
        if (pb_monitor_open(&mc, &mon, err, sizeof err)) {
            fprintf(stderr, "pixbench: monitor: %s\n", err);
            rc = 1;
            goto out_child;
        }
        if (!o.quiet)
            fprintf(stderr, "pixbench: monitoring %s%.0d every %g s; GPU: %s; disk: %s\n",
                    target_pid ? "pid " : "the system (no --pid)", target_pid,
                    (double)pb_monitor_interval_ns(mon) / 1e9, pb_monitor_gpu_status(mon),
                    pb_monitor_disk_status(mon));
    }

    /* payloads, built once */
    int images_needed = o.prof.kind == PB_PROF_PIXSERVE || o.prof.kind == PB_PROF_SEED ||
                        o.prof.kind == PB_PROF_IOPAINT;
    pb_payload *pl = NULL;
    int npl = 0;
    char desc[512] = "none";
    int grp_start[PB_MAX_STAGES + 1] = {0}, ngroups = 0, matrix = o.size_matrix;
    char grp_label[PB_MAX_STAGES][48];
    if (images_needed) {
        char list[2048];
        snprintf(list, sizeof list, "%s", o.images ? o.images : (o.sizes ? o.sizes : "640x480"));
        int nitems = 1;
        for (char *c = list; *c; c++) nitems += *c == ',';
        pl = px_xcalloc((size_t)nitems * (size_t)(o.payloads > 0 ? o.payloads : 1), sizeof *pl);
        char *save = NULL;
        size_t dl = 0;
        double covs = 0;
        desc[0] = 0;
        for (char *it = strtok_r(list, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
            int w = 0, h = 0;
            if (ngroups == PB_MAX_STAGES) {
                rc = bad("at most 64 sizes or images");
                goto out_payloads;
            }
            int named = !o.images && pb_size_preset(it, &w, &h) == 0;
            matrix |= named;
            if (!o.images && !named && pb_parse_size(it, &w, &h, err, sizeof err)) {
                fprintf(stderr, "pixbench: --sizes: %s (or small, medium, large)\n", err);
                rc = 2;
                goto out_payloads;
            }
            if (named) snprintf(grp_label[ngroups], sizeof grp_label[0], "%s %dx%d", it, w, h);
            else snprintf(grp_label[ngroups], sizeof grp_label[0], "%s", it);
            grp_start[ngroups] = npl;
            for (int k = 0; k < (o.payloads > 0 ? o.payloads : 1); k++) {
                int prc = o.images ? pb_payload_from_file(it, o.cov_lo, o.cov_hi, o.seed, (uint64_t)npl, &pl[npl], err, sizeof err)
                                   : pb_payload_generate(w, h, o.cov_lo, o.cov_hi, o.seed, (uint64_t)npl, o.img_fmt, &pl[npl], err, sizeof err);
                if (prc) {
                    fprintf(stderr, "pixbench: payload %s: %s\n", it, err);
                    rc = 1;
                    goto out_payloads;
                }
                covs += pl[npl].coverage;
                npl++;
            }
            dl += (size_t)snprintf(desc + dl, sizeof desc - dl, "%s%s", dl ? ", " : "", grp_label[ngroups]);
            ngroups++;
            grp_start[ngroups] = npl;
        }
        size_t bytes = 0;
        for (int i = 0; i < npl; i++) bytes += pl[i].image.len + pl[i].mask.len;
        snprintf(desc + dl, sizeof desc - dl, " (%s; %d image+mask pairs, %.0f KiB; masks %.0f-%.0f%%, mean %.1f%%; seed %llu)",
                 o.images ? "your images" : (o.img_fmt == PX_FMT_JPEG ? "generated, JPEG" : "generated, PNG"),
                 npl, (double)bytes / 1024, 100 * o.cov_lo, 100 * o.cov_hi, 100 * covs / npl,
                 (unsigned long long)o.seed);
    }
    char path[512];
    if (o.prof.kind == PB_PROF_RAW && !o.prof.path) /* raw: the URL's path is the request path */
        snprintf(path, sizeof path, "%s", prefix[0] ? prefix : "/");
    else
        snprintf(path, sizeof path, "%s%s", prefix,
                 o.prof.path ? o.prof.path : o.gen.async ? "/api/v1/generate_async" : pb_profile_path(o.prof.kind));
    o.prof.path = path;
    o.prof.host_header = hostport;
    if (gen) {
        int grc = pb_gen_plan_build(&o.gen, &o.prof, &gplan, wls, &nwl, err, sizeof err);
        if (grc) {
            fprintf(stderr, "pixbench: %s\n", err);
            rc = grc == PX_EIO ? 1 : 2;
            goto out_wl;
        }
        matrix = gplan.matrix;
        ngroups = nwl;
        for (int g = 0; g < nwl; g++) snprintf(grp_label[g], sizeof grp_label[0], "%.47s", gplan.cells[g].label);
        snprintf(desc, sizeof desc, "%d prompt%s in %d categor%s (%.200s)%s%.250s", gplan.prompts.n,
                 gplan.prompts.n > 1 ? "s" : "", gplan.prompts.ncats, gplan.prompts.ncats > 1 ? "ies" : "y",
                 o.gen.prompts_file ? o.gen.prompts_file : o.prof.prompt ? "--prompt" : "the seed's locustfile prompt",
                 matrix ? "; matrix " : "", matrix ? o.gen.matrix : "");
    }
    if (matrix) {
        if (!images_needed && !gen) {
            rc = bad("a size matrix needs an image profile (pixserve, seed-inpaint, iopaint)");
            goto out_payloads;
        }
        if (o.nloads > 1 || o.soak) {
            rc = bad("a matrix runs every cell at one load: give --users N or --rate R, not --sweep or --soak");
            goto out_payloads;
        }
    }
    double grp_pixels[PB_MAX_STAGES] = {0};
    for (int g = 0; !gen && g < (matrix ? ngroups : 1); g++) {
        int first = matrix ? grp_start[g] : 0, count = matrix ? grp_start[g + 1] - grp_start[g] : npl;
        if (pb_workload_build(&o.prof, pl ? pl + first : NULL, count, &wls[g], err, sizeof err)) {
            fprintf(stderr, "pixbench: %s\n", err);
            rc = 1;
            goto out_wl;
        }
        nwl++;
        grp_pixels[g] = pl ? (double)pl[first].w * pl[first].h : 0;
    }
    pb_workload wl = wls[0];
    if (matrix) {
        for (int g = 0; g < ngroups; g++) o.loads[g] = o.loads[0];
        o.nloads = ngroups;
    }
    for (int i = 0; i < npl; i++) pb_payload_free(&pl[i]);
    free(pl);
    pl = NULL;
    npl = 0;

    if (o.gen.async) {
        rc = run_async(&o, &ss, sl, hostport, prefix, &wls[0], url, path, cmdline);
        goto out_wl;
    }
    pb_loop_config lc = {0};
    lc.addr = ss;
    lc.addrlen = sl;
    lc.open_loop = o.open_loop;
    lc.max_users = o.open_loop ? 0 : (int)maxload;
    lc.think_lo = o.think_lo;
    lc.think_hi = o.think_hi;
    lc.spawn_rate = o.spawn_rate;
    lc.connections = o.connections;
    lc.poisson = o.poisson;
    lc.max_wait_ns = o.max_wait;
    lc.late_ns = o.late;
    lc.timeout_ns = o.timeout;
    lc.reqs = wl.reqs;
    lc.nreqs = wl.nreqs;
    lc.status_lo = o.status_lo;
    lc.status_hi = o.status_hi;
    lc.check = wl.check;
    lc.check_ctx = wl.check_ctx;
    lc.body_max = wl.body_max;
    if (gen) { /* every reply goes through the reader of the server's figures */
        lc.check = pb_gen_check;
        lc.check_ctx = gplan.stats;
        lc.on_bad_status = pb_gen_bad_status;
    }
    lc.seed = o.seed;
    int units = o.open_loop ? o.connections : (int)maxload;
    lc.threads = o.threads > 0 ? o.threads : (cpus < units ? cpus : units);
    if (lc.threads < 1) lc.threads = 1;
    pb_loop *loop;
    if (pb_loop_start(&lc, &loop, err, sizeof err)) {
        fprintf(stderr, "pixbench: %s\n", err);
        rc = 1;
        goto out_wl;
    }
    pb_run_config rcfg = {0};
    rcfg.open_loop = o.open_loop;
    memcpy(rcfg.loads, o.loads, sizeof o.loads);
    rcfg.nstages = o.nloads;
    rcfg.warmup_ns = o.warmup;
    rcfg.stage_ns = o.requests && o.duration == 10000000000LL ? 0 : o.duration;
    rcfg.stage_requests = o.requests;
    rcfg.spawn_rate = o.spawn_rate;
    rcfg.ramp_ns = o.ramp;
    rcfg.progress = o.progress;
    rcfg.monitor = mon;
    for (int g = 0; matrix && g < ngroups; g++) {
        rcfg.stage_reqs[g] = wls[g].reqs;
        rcfg.stage_nreqs[g] = wls[g].nreqs;
    }
    rcfg.reset_peak = child.pid != 0; /* ours: resetting its peak RSS disturbs nobody */
    rcfg.interrupted = &stop_flag;
    if (gen) {
        rcfg.on_window = pb_gen_window;
        rcfg.on_window_ctx = gplan.stats;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (!o.quiet)
        fprintf(stderr, "pixbench: %s http://%s%s, %s loop, %d stage%s (%s), %d thread%s\n", pb_profile_name(o.prof.kind),
                hostport, path, o.open_loop ? "open" : "closed", o.nloads, o.nloads > 1 ? "s" : "",
                o.open_loop ? "requests/s" : "users", lc.threads, lc.threads > 1 ? "s" : "");
    pb_run_result *res = px_xcalloc(1, sizeof *res);
    pb_analysis *an = px_xcalloc(1, sizeof *an);
    int runrc = pb_run(loop, &rcfg, res);
    pb_loop_stop(loop);
    if (runrc) {
        fprintf(stderr, "pixbench: out of memory while running\n");
        rc = 1;
        goto out_res;
    }
    for (int k = 0; matrix && k < res->nstages; k++) {
        snprintf(res->stages[k].label, sizeof res->stages[k].label, "%s", grp_label[k]);
        res->stages[k].pixels = grp_pixels[k];
    }
    pb_analysis_opts ao = {0};
    ao.matrix = matrix;
    ao.open_loop = o.open_loop;
    ao.err_threshold = o.err_threshold;
    ao.think_mean_s = (double)(o.think_lo + o.think_hi) / 2e9;
    ao.stability = o.stability;
    ao.loopback = !o.allow_remote || !o.target;
    ao.cpus = cpus;
    ao.threads = lc.threads;
    ao.slo = o.slo_text ? &slo : NULL;
    ao.peak_reset = rcfg.reset_peak && mon;
    ao.soak = o.soak > 0;
    ao.leak_window_s = (double)o.leak_window / 1e9;
    ao.watched_pid = mon && target_pid;
    ao.path = path;
    pb_analyze(res, &ao, an);
    struct utsname un;
    uname(&un);
    pb_report_meta m = {0};
    m.title = o.title ? o.title : "pixbench stress-test report";
    m.cmdline = cmdline;
    char full_url[1024];
    snprintf(full_url, sizeof full_url, "%s%s", url, path + strlen(prefix));
    m.target = full_url;
    m.profile = pb_profile_name(o.prof.kind);
    m.payloads = desc;
    m.server = child.pid ? child.banner : NULL;
    m.open_loop = o.open_loop;
    m.poisson = o.poisson;
    m.think_lo_s = (double)o.think_lo / 1e9;
    m.think_hi_s = (double)o.think_hi / 1e9;
    m.spawn_rate = o.spawn_rate;
    m.threads = lc.threads;
    m.connections = o.open_loop ? o.connections : (int)maxload;
    m.warmup_s = (double)o.warmup / 1e9;
    m.stage_s = (double)rcfg.stage_ns / 1e9;
    m.timeout_s = (double)o.timeout / 1e9;
    m.max_wait_s = (double)(o.max_wait ? o.max_wait : o.timeout) / 1e9;
    m.check = o.prof.check == PB_CHECK_FULL ? "full" : o.prof.check == PB_CHECK_BASIC ? "basic" : "none";
    m.slo = o.slo_text;
    m.cpus = cpus;
    m.host = un.nodename;
    m.kernel = un.release;
    m.seed = o.seed;
    m.monitored = mon != NULL;
    m.mon_interval_s = mon ? (double)pb_monitor_interval_ns(mon) / 1e9 : 0;
    m.mon_pid = mon ? target_pid : 0;
    m.gpu_status = mon ? pb_monitor_gpu_status(mon) : NULL;
    m.disk_status = mon ? pb_monitor_disk_status(mon) : NULL;
    m.peak_reset = ao.peak_reset;
    if (res->interrupted) fprintf(stderr, "pixbench: interrupted; reporting what was measured\n");
    pb_report_table(stdout, an, &m);
    if (!o.quiet)
        for (int i = 0; i < an->nhints; i++) printf("- %s\n", an->hints[i]);
    if (an->soak.on) {
        printf("\nSoak: %s\n  RSS: %s\n", an->soak.leak ? "LEAK SUSPECTED" : "no leak detected",
               mon ? an->soak.rss.text : "not monitored");
        if (an->soak.have_gpu) printf("  GPU memory: %s\n", an->soak.gpu.text);
        else printf("  GPU memory: not observed (%s)\n", mon ? pb_monitor_gpu_status(mon) : "not monitored");
        printf("  descriptors: %s\n  %s\n", mon ? an->soak.fds.text : "not monitored", an->soak.drift.text);
    }
    if (gen) pb_gen_report_print(stdout, &gplan, an, &m);
    if (o.out) {
        if (pb_report_write(o.out, res, an, &m, err, sizeof err) ||
            (gen && pb_gen_report_write(o.out, &gplan, an, &m, err, sizeof err))) {
            fprintf(stderr, "pixbench: %s\n", err);
            rc = 1;
        } else {
            printf("\nReport: %s/report.md, %s/report.html, %s/report.json (+ CSV files)\n", o.out, o.out, o.out);
        }
    }
    fflush(stdout);
    if (!rc && o.slo_text && an->slo_broken_stages) {
        fprintf(stderr, "pixbench: SLO broken in %d stage%s\n", an->slo_broken_stages,
                an->slo_broken_stages > 1 ? "s" : "");
        rc = 3;
    }
    if (!rc && an->soak.leak) {
        fprintf(stderr, "pixbench: a leak is suspected (see the soak verdict)\n");
        rc = 3;
    }
out_res:
    pb_run_result_free(res);
    free(res);
    free(an);
out_wl:
    for (int i = 0; i < nwl; i++) pb_workload_free(&wls[i]);
    pb_gen_plan_free(&gplan);
out_payloads:
    for (int i = 0; i < npl; i++) pb_payload_free(&pl[i]);
    free(pl);
out_child:
    pb_monitor_close(mon);
    if (child.pid) {
        int st = pb_child_stop(&child, 30000);
        if (st != 0 && !o.quiet) fprintf(stderr, "pixbench: pixserve exited with status %d\n", st);
    }
    if (have_outputs) nftw(outputs_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

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
        NEED_VALUE();
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
            if (!colon || (size_t)(colon - v) >= sizeof at) return bad("--stall is AT:DUR, e.g. 5s:1s");
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
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
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

/* --- pixbench faults ------------------------------------------------------- */

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

static int cmd_faults(int argc, char **argv, const char *cmdline)
{
    pb_faults_config fc = {0};
    const char *target = NULL, *bin_arg = NULL, *out = NULL, *title = NULL;
    const char *max_body_s = "16M", *max_pixels_s = "1280x960", *idle_s = "5s";
    const char *server_args[32];
    int nserver = 0, allow_remote = 0, quiet = 0, strict = 0, have_body = 0, have_pixels = 0, have_idle = 0;
    char err[512];
    fc.path = "/api/v1/inpaint";
    fc.health_path = "/healthz";
    fc.burst = 5;
    fc.timeout_ns = 60000000000LL;
    fc.settle_ns = 3000000000LL;
    fc.seed = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            faults_usage();
            return 0;
        }
        if (!strcmp(a, "--list")) {
            pb_faults_list(stdout);
            return 0;
        }
        if (!strcmp(a, "--allow-remote")) { allow_remote = 1; continue; }
        if (!strcmp(a, "--strict")) { strict = 1; continue; }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { quiet = 1; continue; }
        NEED_VALUE();
        int rc = 0;
        if (!strcmp(a, "--target")) target = v;
        else if (!strcmp(a, "--pid")) {
            fc.pid = atoi(v);
            if (fc.pid <= 0) return bad("--pid must be a process id");
        } else if (!strcmp(a, "--path")) fc.path = v;
        else if (!strcmp(a, "--health")) fc.health_path = v;
        else if (!strcmp(a, "--max-body")) max_body_s = v, have_body = 1;
        else if (!strcmp(a, "--max-pixels")) max_pixels_s = v, have_pixels = 1;
        else if (!strcmp(a, "--idle-timeout")) idle_s = v, have_idle = 1;
        else if (!strcmp(a, "--burst")) {
            fc.burst = atoi(v);
            if (fc.burst < 1 || fc.burst > 64) return bad("--burst is 1 to 64");
        } else if (!strcmp(a, "--timeout")) rc = pb_parse_duration(v, &fc.timeout_ns, err, sizeof err);
        else if (!strcmp(a, "--settle")) rc = pb_parse_duration(v, &fc.settle_ns, err, sizeof err);
        else if (!strcmp(a, "--only")) fc.only = v;
        else if (!strcmp(a, "--seed")) fc.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--pixserve")) bin_arg = v;
        else if (!strcmp(a, "--server-arg")) {
            if (nserver == 32) return bad("too many --server-arg");
            server_args[nserver++] = v;
        } else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--title")) title = v;
        else {
            fprintf(stderr, "pixbench faults: unknown flag '%s' (try --help)\n", a);
            return 2;
        }
        if (rc) {
            fprintf(stderr, "pixbench faults: %s: %s\n", a, err);
            return 2;
        }
    }
    if (target && (!have_body || !have_pixels || !have_idle)) {
        /* a target of unknown limits: assume pixserve's defaults */
        if (!have_body) max_body_s = "64M";
        if (!have_pixels) max_pixels_s = "4096x4096";
        if (!have_idle) idle_s = "30s";
    }
    if (pb_parse_bytes(max_body_s, &fc.max_body, err, sizeof err) ||
        pb_parse_size(max_pixels_s, &fc.max_w, &fc.max_h, err, sizeof err) ||
        pb_parse_duration(idle_s, &fc.idle_timeout_ns, err, sizeof err)) {
        fprintf(stderr, "pixbench faults: %s\n", err);
        return 2;
    }
    if (fc.idle_timeout_ns < 100000000) return bad("--idle-timeout below 100ms");
    if (fc.only) {
        /* every name must exist: a typo must not silently run nothing */
        char list[1024];
        snprintf(list, sizeof list, "%s", fc.only);
        char *save = NULL;
        for (char *it = strtok_r(list, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
            char *buf = NULL;
            size_t len = 0;
            FILE *mf = open_memstream(&buf, &len);
            pb_faults_list(mf);
            fclose(mf);
            char needle[96];
            snprintf(needle, sizeof needle, "%s ", it);
            int found = 0;
            for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (!strncmp(line, needle, strlen(needle))) found = 1;
            free(buf);
            if (!found) {
                fprintf(stderr, "pixbench faults: no case '%s' (pixbench faults --list)\n", it);
                return 2;
            }
        }
    }
    pb_child child = {0};
    char outputs_dir[] = "/tmp/pixbench-outputs-XXXXXX";
    int have_outputs = 0, rc = 0;
    char url[512], hostport[300], prefix[256];
    if (!target) {
        char bin[4096];
        if (bin_arg) snprintf(bin, sizeof bin, "%s", bin_arg);
        else if (pb_child_find_pixserve(bin, sizeof bin)) {
            fprintf(stderr, "pixbench faults: no --target and no pixserve next to pixbench; give --pixserve PATH\n");
            return 1;
        }
        if (!mkdtemp(outputs_dir)) return bad("cannot make a temporary directory");
        have_outputs = 1;
        const char *args[48];
        int na = 0;
        args[na++] = "--outputs";
        args[na++] = outputs_dir;
        args[na++] = "--log-level";
        args[na++] = "error";
        args[na++] = "--max-body";
        args[na++] = max_body_s;
        args[na++] = "--max-pixels";
        args[na++] = max_pixels_s;
        args[na++] = "--idle-timeout";
        args[na++] = idle_s;
        for (int i = 0; i < nserver; i++) args[na++] = server_args[i];
        char logp[1200];
        snprintf(logp, sizeof logp, "%s/pixserve.log", outputs_dir);
        if (pb_child_start(bin, args, na, logp, 60000, &child, err, sizeof err)) {
            fprintf(stderr, "pixbench faults: %s\n", err);
            rc = 1;
            goto out;
        }
        if (pb_child_wait_ready(child.port, "/readyz", 300000, err, sizeof err)) {
            fprintf(stderr, "pixbench faults: pixserve not ready: %s\n", err);
            rc = 1;
            goto out;
        }
        fc.pid = child.pid;
        snprintf(url, sizeof url, "http://127.0.0.1:%d", child.port);
        if (!quiet) fprintf(stderr, "pixbench faults: started %s (pid %d)\n", child.banner, (int)child.pid);
    } else {
        snprintf(url, sizeof url, "%s", target);
    }
    int loopback;
    if ((rc = resolve_target(url, allow_remote, &fc.addr, &fc.addrlen, hostport, sizeof hostport, prefix,
                             sizeof prefix, &loopback)))
        goto out;
    char path[512], hpath[512];
    snprintf(path, sizeof path, "%s%s", prefix, fc.path);
    snprintf(hpath, sizeof hpath, "%s%s", prefix, fc.health_path);
    fc.path = path;
    fc.health_path = hpath;
    fc.host_header = hostport;
    fc.progress = !quiet;
    if (!quiet)
        fprintf(stderr, "pixbench faults: %s%s; body cap %s, images up to %s, idle timeout %s, burst %d\n", url, path,
                max_body_s, max_pixels_s, idle_s, fc.burst);
    pb_faults_run *fr = px_xcalloc(1, sizeof *fr);
    if (pb_faults_run_all(&fc, fr, err, sizeof err)) {
        fprintf(stderr, "pixbench faults: %s\n", err);
        free(fr);
        rc = 1;
        goto out;
    }
    pb_report_faults_table(stdout, fr);
    if (out) {
        struct utsname un;
        uname(&un);
        pb_report_meta m = {0};
        m.title = title ? title : "pixbench fault injection";
        m.cmdline = cmdline;
        char full[1024];
        snprintf(full, sizeof full, "%s%s", url, path + strlen(prefix));
        m.target = full;
        m.server = child.pid ? child.banner : NULL;
        m.cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
        m.host = un.nodename;
        m.kernel = un.release;
        if (pb_report_write_faults(out, fr, &fc, &m, err, sizeof err)) {
            fprintf(stderr, "pixbench faults: %s\n", err);
            rc = 1;
        } else {
            printf("Report: %s/report.md, %s/report.html, %s/report.json, %s/faults.csv\n", out, out, out, out);
        }
    }
    fflush(stdout);
    if (!rc && (fr->fails || (strict && fr->warns))) rc = 3;
    free(fr);
out:
    if (child.pid) {
        int st = pb_child_stop(&child, 30000);
        if (st != 0 && !quiet) fprintf(stderr, "pixbench faults: pixserve exited with status %d\n", st);
        if (st != 0 && !rc) rc = 3; /* a service that cannot stop cleanly after the faults failed them */
    }
    if (have_outputs) nftw(outputs_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
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
        NEED_VALUE();
        if (!strcmp(a, "--sizes")) sizes = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--payloads")) n = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--mask-coverage")) {
            if (pb_parse_fraction_range(v, &lo, &hi, err, sizeof err)) return bad(err);
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
        if (pb_parse_size(it, &w, &h, err, sizeof err)) return bad(err);
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
        usage(stdout);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "echo")) return cmd_echo(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "payload")) return cmd_payload(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "monitor")) return pb_cmd_monitor(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "faults")) return cmd_faults(argc - 2, argv + 2, cmdline);
    if (argc > 1 && !strcmp(argv[1], "run")) return cmd_run(argc - 2, argv + 2, cmdline);
    return cmd_run(argc - 1, argv + 1, cmdline);
}
