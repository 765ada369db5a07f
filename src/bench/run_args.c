/*
 * run_args.c — `pixbench run`'s flags (see run_args.h). A flag belongs to
 * one group (what to send, the load, resources and output); each group's
 * parser says whether the flag was its own, so the loop stays flat.
 */
#include "bench/run_args.h"

#include "bench/cli.h"
#include "bench/monitor.h"
#include "bench/spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG "pixbench" /* in messages */

/* A group parser's answers besides 0 (done) and 2 (bad usage, printed). */
enum { NOT_MINE = -1, BAD_VALUE = 1 /* err says why; the caller prints it with the flag */ };

/* --- usage ----------------------------------------------------------------- */

static void usage_target(FILE *f)
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
"\n",
            PB_VERSION);
}

static void usage_send(FILE *f)
{
    fprintf(f,
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
"  --lora NAME[:SCALE]     every request names this LoRA (\"loras\": [{name, scale}], scale 1 if\n"
"                          absent; repeat for up to 8); with --lora-mix request k names only LoRA\n"
"                          k mod N, so a batching server sees different LoRAs side by side\n"
"\n");
}

static void usage_load(FILE *f)
{
    fprintf(f,
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
"\n");
}

static void usage_output(FILE *f)
{
    fprintf(f,
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
"Exit status: 0 done, 1 could not run, 2 bad usage, 3 SLO broken or (--soak) a leak suspected.\n");
}

void pb_run_usage(FILE *f)
{
    usage_target(f);
    usage_send(f);
    usage_load(f);
    usage_output(f);
}

/* --- parsing ---------------------------------------------------------------- */

void pb_run_opts_init(pb_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->progress = isatty(2);
    o->payloads = 2;
    o->cov_lo = 0.15;
    o->cov_hi = 0.30;
    o->img_fmt = PX_FMT_PNG;
    o->seed = 1;
    o->connections = 64;
    o->status_lo = 200;
    o->status_hi = 299;
    o->timeout = 30000000000LL;
    o->duration = PB_RUN_DEFAULT_DURATION_NS;
    o->err_threshold = 0.01;
    o->prof.check = PB_CHECK_FULL;
}

/* The flags without a value; 1 when a is one of them. */
static int parse_switch(pb_run_opts *o, const char *a)
{
    if (!strcmp(a, "--allow-remote")) o->allow_remote = 1;
    else if (!strcmp(a, "--poisson")) o->poisson = 1;
    else if (!strcmp(a, "--stability")) o->stability = 1;
    else if (!strcmp(a, "--no-progress")) o->progress = 0;
    else if (!strcmp(a, "--no-monitor")) o->no_monitor = 1;
    else if (!strcmp(a, "--no-gpu")) o->no_gpu = 1;
    else if (!strcmp(a, "--size-matrix")) o->size_matrix = 1;
    else if (!strcmp(a, "--matrix-one-at-a-time")) o->gen.one_at_a_time = 1;
    else if (!strcmp(a, "--async")) o->gen.async = o->gen.async ? o->gen.async : 1;
    else if (!strcmp(a, "--lora-mix")) o->prof.lora_mix = 1;
    else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = 1, o->progress = 0;
    else return 0;
    return 1;
}

/* The target and what to send. */
static int parse_send(pb_run_opts *o, const char *a, const char *v, char *err, size_t errlen)
{
    int rc = 0;
    if (!strcmp(a, "--target")) o->target = v;
    else if (!strcmp(a, "--pixserve")) o->pixserve = v;
    else if (!strcmp(a, "--server-arg")) {
        if (o->nserver_args == PB_RUN_MAX_SERVER_ARGS) return pb_cli_bad(PROG, "too many --server-arg");
        o->server_args[o->nserver_args++] = v;
    } else if (!strcmp(a, "--profile")) {
        int k = pb_profile_parse(v);
        if (k < 0) return pb_cli_bad(PROG, "unknown --profile (pixserve, seed-inpaint, iopaint, generate, raw)");
        o->prof.kind = (enum pb_profile_kind)k;
    } else if (!strcmp(a, "--path")) o->prof.path = v;
    else if (!strcmp(a, "--method")) o->prof.method = v;
    else if (!strcmp(a, "--body")) o->prof.body_file = v;
    else if (!strcmp(a, "-H") || !strcmp(a, "--header")) {
        if (o->prof.nheaders == PB_MAX_HEADERS || !strchr(v, ':')) return pb_cli_bad(PROG, "bad or too many --header");
        o->prof.headers[o->prof.nheaders++] = v;
    } else if (!strcmp(a, "--images")) o->images = v;
    else if (!strcmp(a, "--sizes")) o->sizes = v;
    else if (!strcmp(a, "--payloads")) o->payloads = atoi(v);
    else if (!strcmp(a, "--mask-coverage")) rc = pb_parse_fraction_range(v, &o->cov_lo, &o->cov_hi, err, errlen);
    else if (!strcmp(a, "--image-format")) {
        o->img_fmt = px_format_parse(v);
        if (o->img_fmt != PX_FMT_PNG && o->img_fmt != PX_FMT_JPEG) return pb_cli_bad(PROG, "--image-format is png or jpeg");
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
    else if (!strcmp(a, "--lora")) rc = pb_profile_add_lora(&o->prof, v, err, errlen);
    else if (!strcmp(a, "--prompts")) o->gen.prompts_file = v;
    else if (!strcmp(a, "--poll")) {
        rc = pb_parse_duration(v, &o->gen.poll_ns, err, errlen);
        o->gen.async = 2;
    } else return NOT_MINE;
    return rc ? BAD_VALUE : 0;
}

/* The load model and its stages. */
static int parse_load(pb_run_opts *o, const char *a, const char *v, char *err, size_t errlen)
{
    int rc = 0;
    if (!strcmp(a, "--users")) {
        o->loads[0] = atoi(v);
        o->nloads = 1;
        o->have_users = 1;
        if (o->loads[0] < 1) return pb_cli_bad(PROG, "--users must be at least 1");
    } else if (!strcmp(a, "--sweep")) rc = pb_parse_list(v, o->loads, PB_MAX_STAGES, &o->nloads, err, errlen);
    else if (!strcmp(a, "--think")) rc = pb_parse_duration_range(v, &o->think_lo, &o->think_hi, err, errlen);
    else if (!strcmp(a, "--spawn-rate")) o->spawn_rate = atof(v);
    else if (!strcmp(a, "--rate")) {
        o->open_loop = 1;
        o->loads[0] = atof(v);
        if (o->nloads == 0) o->nloads = 1;
        if (!(o->loads[0] > 0)) return pb_cli_bad(PROG, "--rate must be positive");
    } else if (!strcmp(a, "--ramp")) rc = pb_parse_duration(v, &o->ramp, err, errlen);
    else if (!strcmp(a, "--connections")) o->connections = atoi(v);
    else if (!strcmp(a, "--max-wait")) rc = pb_parse_duration(v, &o->max_wait, err, errlen);
    else if (!strcmp(a, "--late")) rc = pb_parse_duration(v, &o->late, err, errlen);
    else if (!strcmp(a, "--duration") || !strcmp(a, "--stage-duration")) rc = pb_parse_duration(v, &o->duration, err, errlen);
    else if (!strcmp(a, "--warmup")) {
        rc = pb_parse_duration(v, &o->warmup, err, errlen);
        o->have_warmup = 1;
    } else if (!strcmp(a, "--soak")) {
        rc = pb_parse_duration(v, &o->soak, err, errlen);
        if (!rc && o->soak <= 0) return pb_cli_bad(PROG, "--soak needs a duration");
    } else if (!strcmp(a, "--leak-window")) rc = pb_parse_duration(v, &o->leak_window, err, errlen);
    else if (!strcmp(a, "--requests")) o->requests = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--threads")) o->threads = atoi(v);
    else if (!strcmp(a, "--timeout")) rc = pb_parse_duration(v, &o->timeout, err, errlen);
    else return NOT_MINE;
    return rc ? BAD_VALUE : 0;
}

/* Checks, verdicts, the resource monitor and the output. */
static int parse_output(pb_run_opts *o, const char *a, const char *v, char *err, size_t errlen)
{
    int rc = 0;
    if (!strcmp(a, "--check")) {
        if (!strcmp(v, "none")) o->prof.check = PB_CHECK_NONE;
        else if (!strcmp(v, "basic")) o->prof.check = PB_CHECK_BASIC;
        else if (!strcmp(v, "full")) o->prof.check = PB_CHECK_FULL;
        else return pb_cli_bad(PROG, "--check is none, basic or full");
    } else if (!strcmp(a, "--expect-status")) {
        int lo = 0, hi = 0;
        int n = sscanf(v, "%d-%d", &lo, &hi);
        if (n < 1 || lo < 100 || lo > 999) return pb_cli_bad(PROG, "bad --expect-status (e.g. 200 or 200-299)");
        o->status_lo = lo;
        o->status_hi = n == 2 ? hi : lo;
    } else if (!strcmp(a, "--slo")) o->slo_text = v;
    else if (!strcmp(a, "--error-threshold")) rc = pb_parse_fraction(v, &o->err_threshold, err, errlen);
    else if (!strcmp(a, "--out")) o->out = v;
    else if (!strcmp(a, "--pid")) {
        o->pid = atoi(v);
        if (o->pid <= 0) return pb_cli_bad(PROG, "--pid must be a process id");
    } else if (!strcmp(a, "--monitor-interval")) {
        rc = pb_parse_duration(v, &o->mon_interval, err, errlen);
        if (!rc && o->mon_interval < PB_MON_MIN_INTERVAL_NS) return pb_cli_bad(PROG, "--monitor-interval is 100ms or more");
    } else if (!strcmp(a, "--disk")) o->disk = v;
    else if (!strcmp(a, "--disk-path")) o->disk_path = v;
    else if (!strcmp(a, "--title")) o->title = v;
    else return NOT_MINE;
    return rc ? BAD_VALUE : 0;
}

/* --matrix "steps=10,25 cfg=1,7", as one argument or several: the axes
 * that follow it are taken too (i steps past them). */
static void parse_matrix(pb_run_opts *o, const char *v, int argc, char **argv, int *i)
{
    size_t l = strlen(o->gen.matrix);
    snprintf(o->gen.matrix + l, sizeof o->gen.matrix - l, "%s%s", l ? " " : "", v);
    while (*i + 1 < argc && (!strncmp(argv[*i + 1], "steps=", 6) || !strncmp(argv[*i + 1], "cfg=", 4) ||
                             !strncmp(argv[*i + 1], "size=", 5))) {
        l = strlen(o->gen.matrix);
        snprintf(o->gen.matrix + l, sizeof o->gen.matrix - l, " %s", argv[++*i]);
    }
}

int pb_run_opts_parse(pb_run_opts *o, int argc, char **argv)
{
    char err[256];
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            pb_run_usage(stdout);
            return 1;
        }
        if (parse_switch(o, a)) continue;
        if (a[0] != '-') {
            fprintf(stderr, "pixbench: unexpected argument '%s' (try --help)\n", a);
            return 2;
        }
        PB_NEED_VALUE(PROG);
        if (!strcmp(a, "--matrix")) {
            parse_matrix(o, v, argc, argv, &i);
            continue;
        }
        int rc = parse_send(o, a, v, err, sizeof err);
        if (rc == NOT_MINE) rc = parse_load(o, a, v, err, sizeof err);
        if (rc == NOT_MINE) rc = parse_output(o, a, v, err, sizeof err);
        if (rc == NOT_MINE) {
            fprintf(stderr, "pixbench: unknown flag '%s' (try --help)\n", a);
            return 2;
        }
        if (rc == BAD_VALUE) fprintf(stderr, "pixbench: %s: %s\n", a, err);
        if (rc) return 2;
    }
    return 0;
}

int pb_run_opts_check(pb_run_opts *o)
{
    if (o->nloads == 0) {
        o->loads[0] = 1;
        o->nloads = 1;
    }
    if (o->open_loop && o->have_users) return pb_cli_bad(PROG, "--users is closed loop; --rate is open loop: pick one");
    if (o->soak) {
        if (o->nloads > 1) return pb_cli_bad(PROG, "--soak is one long stage: give --users N or --rate R, not --sweep");
        o->duration = o->soak;
        if (!o->have_warmup) o->warmup = o->soak / 10 < 300000000000LL ? o->soak / 10 : 300000000000LL;
    }
    char err[512];
    if (o->slo_text && pb_slo_parse(o->slo_text, &o->slo, err, sizeof err)) {
        fprintf(stderr, "pixbench: --slo: %s\n", err);
        return 2;
    }
    o->maxload = 0;
    for (int i = 0; i < o->nloads; i++)
        if (o->loads[i] > o->maxload) o->maxload = o->loads[i];
    if (!o->open_loop)
        for (int i = 0; i < o->nloads; i++)
            if (o->loads[i] != (int)o->loads[i]) return pb_cli_bad(PROG, "users must be whole numbers");
    int gen = PB_PROF_IS_GEN(o->prof.kind);
    if (!gen && (o->gen.matrix[0] || o->gen.prompts_file || o->gen.async))
        return pb_cli_bad(PROG, "--matrix, --prompts and --async are for the generate and openai-images profiles");
    if (!gen && o->prof.nloras) return pb_cli_bad(PROG, "--lora is for the generate and openai-images profiles");
    if (o->prof.lora_mix && o->prof.nloras < 2) return pb_cli_bad(PROG, "--lora-mix needs two or more --lora");
    if (o->gen.async && (o->prof.kind != PB_PROF_GENERATE || o->gen.matrix[0] || o->open_loop || o->soak))
        return pb_cli_bad(PROG, "--async is for --profile generate with --users or --sweep (no --matrix, --rate or --soak)");
    return 0;
}
