/*
 * cmd_run.c — `pixbench run` (see cmd_run.h): target, monitor, payloads,
 * workloads, the load, the analysis and the report, one step a function
 * over one run_state, so that every exit path frees the same things.
 */
#include "bench/cmd_run.h"

#include "bench/analyze.h"
#include "bench/asyncgen.h"
#include "bench/cli.h"
#include "bench/monitor.h"
#include "bench/monitor_cmd.h"
#include "bench/payload.h"
#include "bench/report.h"
#include "bench/report_gen.h"
#include "bench/run_args.h"
#include "bench/target.h"
#include "core/alloc.h"
#include "core/err.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#define PROG "pixbench" /* in messages */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    stop_flag = 1;
    signal(sig, SIG_DFL); /* a second Ctrl-C ends it at once */
}

typedef struct run_state {
    pb_run_opts o;
    const char *cmdline;
    int cpus;
    /* the target */
    pb_embedded emb;
    char url[512], hostport[300], prefix[256], path[512];
    struct sockaddr_storage ss;
    socklen_t sl;
    int loopback;
    pb_monitor *mon;
    int target_pid;
    /* what is sent: payloads in groups (one per size or file), then one
     * workload per group of a matrix (else wls[0] holds every payload) */
    int gen, images_needed, matrix;
    pb_payload *pl;
    int npl;
    char desc[512];
    int grp_start[PB_MAX_STAGES + 1], ngroups;
    char grp_label[PB_MAX_STAGES][48];
    double grp_pixels[PB_MAX_STAGES];
    pb_gen_plan gplan; /* text to image: prompts, matrix cells, what the replies said */
    pb_workload wls[PB_MAX_STAGES];
    int nwl;
    /* the load */
    int threads, reset_peak;
    int64_t stage_ns;
} run_state;

/* The user's target, or an embedded pixserve; resolved into st->ss. */
static int start_target(run_state *st)
{
    const pb_run_opts *o = &st->o;
    if (!o->target) {
        int rc = pb_target_embed(&st->emb, o->pixserve, "warn", o->server_args, o->nserver_args, PROG, o->quiet,
                                 st->url, sizeof st->url);
        if (rc) return rc;
    } else {
        snprintf(st->url, sizeof st->url, "%s", o->target);
    }
    return pb_target_resolve(st->url, o->allow_remote, &st->ss, &st->sl, st->hostport, sizeof st->hostport,
                             st->prefix, sizeof st->prefix, &st->loopback);
}

/* The resource monitor: this machine's view, so only for a local target
 * (or a process named with --pid, which is local by definition). */
static int start_monitor(run_state *st)
{
    const pb_run_opts *o = &st->o;
    st->target_pid = st->emb.child.pid ? (int)st->emb.child.pid : o->pid;
    if (o->no_monitor || !(st->loopback || o->pid)) return 0;
    char cwd_path[PATH_MAX], err[512];
    const char *dpath = o->disk_path;
    if (!dpath && st->emb.child.pid) dpath = st->emb.outputs_dir;
    if (!dpath) dpath = pb_target_cwd(st->target_pid, cwd_path, sizeof cwd_path);
    pb_monitor_config mc = {.pid = st->target_pid, .interval_ns = o->mon_interval, .disk_path = dpath,
                            .disk_dev = o->disk, .no_gpu = o->no_gpu};
    if (pb_monitor_open(&mc, &st->mon, err, sizeof err)) {
        fprintf(stderr, "pixbench: monitor: %s\n", err);
        return 1;
    }
    if (!o->quiet)
        fprintf(stderr, "pixbench: monitoring %s%.0d every %g s; GPU: %s; disk: %s\n",
                st->target_pid ? "pid " : "the system (no --pid)", st->target_pid,
                (double)pb_monitor_interval_ns(st->mon) / 1e9, pb_monitor_gpu_status(st->mon),
                pb_monitor_disk_status(st->mon));
    return 0;
}

/* One group of payloads: --payloads pairs of one size (or of one of
 * --images' files), labelled for the size matrix. */
static int add_group(run_state *st, char *it, double *covs, size_t *dl)
{
    const pb_run_opts *o = &st->o;
    char err[512];
    int w = 0, h = 0;
    if (st->ngroups == PB_MAX_STAGES) return pb_cli_bad(PROG, "at most 64 sizes or images");
    int named = !o->images && pb_size_preset(it, &w, &h) == 0;
    st->matrix |= named;
    if (!o->images && !named && pb_parse_size(it, &w, &h, err, sizeof err)) {
        fprintf(stderr, "pixbench: --sizes: %s (or small, medium, large)\n", err);
        return 2;
    }
    char *label = st->grp_label[st->ngroups];
    if (named) snprintf(label, sizeof st->grp_label[0], "%s %dx%d", it, w, h);
    else snprintf(label, sizeof st->grp_label[0], "%s", it);
    st->grp_start[st->ngroups] = st->npl;
    for (int k = 0; k < (o->payloads > 0 ? o->payloads : 1); k++) {
        pb_payload *p = &st->pl[st->npl];
        int prc = o->images ? pb_payload_from_file(it, o->cov_lo, o->cov_hi, o->seed, (uint64_t)st->npl, p, err,
                                                   sizeof err)
                            : pb_payload_generate(w, h, o->cov_lo, o->cov_hi, o->seed, (uint64_t)st->npl, o->img_fmt,
                                                  p, err, sizeof err);
        if (prc) {
            fprintf(stderr, "pixbench: payload %s: %s\n", it, err);
            return 1;
        }
        *covs += p->coverage;
        st->npl++;
    }
    *dl += (size_t)snprintf(st->desc + *dl, sizeof st->desc - *dl, "%s%s", *dl ? ", " : "", label);
    st->ngroups++;
    st->grp_start[st->ngroups] = st->npl;
    return 0;
}

/* The image profiles' payloads, built once; st->desc says what they are. */
static int build_payloads(run_state *st)
{
    const pb_run_opts *o = &st->o;
    snprintf(st->desc, sizeof st->desc, "none");
    if (!st->images_needed) return 0;
    char list[2048];
    snprintf(list, sizeof list, "%s", o->images ? o->images : (o->sizes ? o->sizes : "640x480"));
    int nitems = 1;
    for (char *c = list; *c; c++) nitems += *c == ',';
    st->pl = px_xcalloc((size_t)nitems * (size_t)(o->payloads > 0 ? o->payloads : 1), sizeof *st->pl);
    char *save = NULL;
    size_t dl = 0;
    double covs = 0;
    st->desc[0] = 0;
    for (char *it = strtok_r(list, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        int rc = add_group(st, it, &covs, &dl);
        if (rc) return rc;
    }
    size_t bytes = 0;
    for (int i = 0; i < st->npl; i++) bytes += st->pl[i].image.len + st->pl[i].mask.len;
    snprintf(st->desc + dl, sizeof st->desc - dl,
             " (%s; %d image+mask pairs, %.0f KiB; masks %.0f-%.0f%%, mean %.1f%%; seed %llu)",
             o->images ? "your images" : (o->img_fmt == PX_FMT_JPEG ? "generated, JPEG" : "generated, PNG"), st->npl,
             (double)bytes / 1024, 100 * o->cov_lo, 100 * o->cov_hi, 100 * covs / st->npl,
             (unsigned long long)o->seed);
    return 0;
}

/* Text to image: the prompts and the matrix's cells as workloads. */
static int build_gen_plan(run_state *st)
{
    pb_run_opts *o = &st->o;
    char err[512];
    int grc = pb_gen_plan_build(&o->gen, &o->prof, &st->gplan, st->wls, &st->nwl, err, sizeof err);
    if (grc) {
        fprintf(stderr, "pixbench: %s\n", err);
        return grc == PX_EIO ? 1 : 2;
    }
    st->matrix = st->gplan.matrix;
    st->ngroups = st->nwl;
    for (int g = 0; g < st->nwl; g++) { /* through a local: both sides are in *st (-Wrestrict) */
        char label[sizeof st->grp_label[0]];
        snprintf(label, sizeof label, "%.47s", st->gplan.cells[g].label);
        memcpy(st->grp_label[g], label, sizeof label);
    }
    const pb_prompts *ps = &st->gplan.prompts;
    snprintf(st->desc, sizeof st->desc, "%d prompt%s in %d categor%s (%.200s)%s%.250s", ps->n, ps->n > 1 ? "s" : "",
             ps->ncats, ps->ncats > 1 ? "ies" : "y",
             o->gen.prompts_file ? o->gen.prompts_file : o->prof.prompt ? "--prompt" : "the seed's locustfile prompt",
             st->matrix ? "; matrix " : "", st->matrix ? o->gen.matrix : "");
    return 0;
}

/* The request path, the workloads (one per matrix cell or size, else one
 * of every payload) and, for a matrix, one stage per cell at one load. */
static int build_workloads(run_state *st)
{
    pb_run_opts *o = &st->o;
    char err[512];
    if (o->prof.kind == PB_PROF_RAW && !o->prof.path) /* raw: the URL's path is the request path */
        snprintf(st->path, sizeof st->path, "%s", st->prefix[0] ? st->prefix : "/");
    else
        snprintf(st->path, sizeof st->path, "%s%s", st->prefix,
                 o->prof.path ? o->prof.path : o->gen.async ? "/api/v1/generate_async" : pb_profile_path(o->prof.kind));
    o->prof.path = st->path;
    o->prof.host_header = st->hostport;
    if (st->gen) {
        int rc = build_gen_plan(st);
        if (rc) return rc;
    }
    if (st->matrix && !st->images_needed && !st->gen)
        return pb_cli_bad(PROG, "a size matrix needs an image profile (pixserve, seed-inpaint, iopaint)");
    if (st->matrix && (o->nloads > 1 || o->soak))
        return pb_cli_bad(PROG, "a matrix runs every cell at one load: give --users N or --rate R, not --sweep or --soak");
    for (int g = 0; !st->gen && g < (st->matrix ? st->ngroups : 1); g++) {
        int first = st->matrix ? st->grp_start[g] : 0;
        int count = st->matrix ? st->grp_start[g + 1] - st->grp_start[g] : st->npl;
        if (pb_workload_build(&o->prof, st->pl ? st->pl + first : NULL, count, &st->wls[g], err, sizeof err)) {
            fprintf(stderr, "pixbench: %s\n", err);
            return 1;
        }
        st->nwl++;
        st->grp_pixels[g] = st->pl ? (double)st->pl[first].w * st->pl[first].h : 0;
    }
    if (st->matrix) {
        for (int g = 0; g < st->ngroups; g++) o->loads[g] = o->loads[0];
        o->nloads = st->ngroups;
    }
    /* the workloads hold their own copies: the payloads' memory goes back now */
    for (int i = 0; i < st->npl; i++) pb_payload_free(&st->pl[i]);
    free(st->pl);
    st->pl = NULL;
    st->npl = 0;
    return 0;
}

/* --async: the job API's own driver and table (asyncgen.h). */
static int run_async(run_state *st)
{
    const pb_run_opts *o = &st->o;
    pb_async_config ac = {.addr = st->ss, .addrlen = st->sl, .host_header = st->hostport, .prefix = st->prefix,
                          .reqs = st->wls[0].reqs, .nreqs = st->wls[0].nreqs, .nstages = o->nloads,
                          .warmup_ns = o->warmup, .stage_ns = o->duration, .timeout_ns = o->timeout,
                          .poll_ns = o->gen.async == 2 ? o->gen.poll_ns : 0, .interrupted = &stop_flag,
                          .progress = !o->quiet};
    if (o->gen.async == 2 && ac.poll_ns <= 0) ac.poll_ns = 200000000;
    memcpy(ac.loads, o->loads, sizeof o->loads);
    pb_async_stage *stages = px_xcalloc(PB_MAX_STAGES, sizeof *stages);
    char err[256], target[1024];
    snprintf(target, sizeof target, "http://%s%s", st->hostport, st->path);
    if (!o->quiet)
        fprintf(stderr, "pixbench: async jobs at %s, %d stage%s (users)\n", target, o->nloads, o->nloads > 1 ? "s" : "");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int n = 0, rc = pb_async_run(&ac, stages, &n, err, sizeof err);
    if (rc) fprintf(stderr, "pixbench: %s\n", err);
    pb_async_print(stdout, stages, n, ac.poll_ns > 0);
    if (!rc && o->out) {
        if (pb_async_write(o->out, o->title ? o->title : "pixbench async text-to-image report", st->cmdline, target,
                           stages, n, ac.poll_ns > 0, err, sizeof err)) {
            fprintf(stderr, "pixbench: %s\n", err);
            rc = 1;
        } else {
            printf("\nReport: %s/report.md, %s/async.json\n", o->out, o->out);
        }
    }
    free(stages);
    return rc ? 1 : 0;
}

static void loop_config(const run_state *st, pb_loop_config *lc)
{
    const pb_run_opts *o = &st->o;
    const pb_workload *wl = &st->wls[0];
    memset(lc, 0, sizeof *lc);
    lc->addr = st->ss;
    lc->addrlen = st->sl;
    lc->open_loop = o->open_loop;
    lc->max_users = o->open_loop ? 0 : (int)o->maxload;
    lc->think_lo = o->think_lo;
    lc->think_hi = o->think_hi;
    lc->spawn_rate = o->spawn_rate;
    lc->connections = o->connections;
    lc->poisson = o->poisson;
    lc->max_wait_ns = o->max_wait;
    lc->late_ns = o->late;
    lc->timeout_ns = o->timeout;
    lc->reqs = wl->reqs;
    lc->nreqs = wl->nreqs;
    lc->status_lo = o->status_lo;
    lc->status_hi = o->status_hi;
    lc->check = wl->check;
    lc->check_ctx = wl->check_ctx;
    lc->body_max = wl->body_max;
    if (st->gen) { /* every reply goes through the reader of the server's figures */
        lc->check = pb_gen_check;
        lc->check_ctx = st->gplan.stats;
        lc->on_bad_status = pb_gen_bad_status;
    }
    lc->seed = o->seed;
    int units = o->open_loop ? o->connections : (int)o->maxload;
    lc->threads = o->threads > 0 ? o->threads : (st->cpus < units ? st->cpus : units);
    if (lc->threads < 1) lc->threads = 1;
}

static void stages_config(const run_state *st, pb_run_config *rcfg)
{
    const pb_run_opts *o = &st->o;
    memset(rcfg, 0, sizeof *rcfg);
    rcfg->open_loop = o->open_loop;
    memcpy(rcfg->loads, o->loads, sizeof o->loads);
    rcfg->nstages = o->nloads;
    rcfg->warmup_ns = o->warmup;
    /* --requests alone ends a stage by count, not by the default time */
    rcfg->stage_ns = o->requests && o->duration == PB_RUN_DEFAULT_DURATION_NS ? 0 : o->duration;
    rcfg->stage_requests = o->requests;
    rcfg->spawn_rate = o->spawn_rate;
    rcfg->ramp_ns = o->ramp;
    rcfg->progress = o->progress;
    rcfg->monitor = st->mon;
    for (int g = 0; st->matrix && g < st->ngroups; g++) {
        rcfg->stage_reqs[g] = st->wls[g].reqs;
        rcfg->stage_nreqs[g] = st->wls[g].nreqs;
    }
    rcfg->reset_peak = st->emb.child.pid != 0; /* ours: resetting its peak RSS disturbs nobody */
    rcfg->interrupted = &stop_flag;
    if (st->gen) {
        rcfg->on_window = pb_gen_window;
        rcfg->on_window_ctx = st->gplan.stats;
    }
}

/* Starts the load loop and runs every stage into res. */
static int run_load(run_state *st, pb_run_result *res)
{
    const pb_run_opts *o = &st->o;
    char err[512];
    pb_loop_config lc;
    loop_config(st, &lc);
    st->threads = lc.threads;
    pb_loop *loop;
    if (pb_loop_start(&lc, &loop, err, sizeof err)) {
        fprintf(stderr, "pixbench: %s\n", err);
        return 1;
    }
    pb_run_config rcfg;
    stages_config(st, &rcfg);
    st->reset_peak = rcfg.reset_peak;
    st->stage_ns = rcfg.stage_ns;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (!o->quiet)
        fprintf(stderr, "pixbench: %s http://%s%s, %s loop, %d stage%s (%s), %d thread%s\n",
                pb_profile_name(o->prof.kind), st->hostport, st->path, o->open_loop ? "open" : "closed", o->nloads,
                o->nloads > 1 ? "s" : "", o->open_loop ? "requests/s" : "users", lc.threads,
                lc.threads > 1 ? "s" : "");
    int runrc = pb_run(loop, &rcfg, res);
    pb_loop_stop(loop);
    if (runrc) {
        fprintf(stderr, "pixbench: out of memory while running\n");
        return 1;
    }
    for (int k = 0; st->matrix && k < res->nstages; k++) {
        snprintf(res->stages[k].label, sizeof res->stages[k].label, "%s", st->grp_label[k]);
        res->stages[k].pixels = st->grp_pixels[k];
    }
    return 0;
}

static void analyze(const run_state *st, const pb_run_result *res, pb_analysis *an)
{
    const pb_run_opts *o = &st->o;
    pb_analysis_opts ao = {0};
    ao.matrix = st->matrix;
    ao.open_loop = o->open_loop;
    ao.err_threshold = o->err_threshold;
    ao.think_mean_s = (double)(o->think_lo + o->think_hi) / 2e9;
    ao.stability = o->stability;
    ao.loopback = !o->allow_remote || !o->target;
    ao.cpus = st->cpus;
    ao.threads = st->threads;
    ao.slo = o->slo_text ? &o->slo : NULL;
    ao.peak_reset = st->reset_peak && st->mon;
    ao.soak = o->soak > 0;
    ao.leak_window_s = (double)o->leak_window / 1e9;
    ao.watched_pid = st->mon && st->target_pid;
    ao.path = st->path;
    pb_analyze(res, &ao, an);
}

/* What the report says of the setup; strings point into st, un and full_url. */
static void report_meta(const run_state *st, const struct utsname *un, const char *full_url, pb_report_meta *m)
{
    const pb_run_opts *o = &st->o;
    pb_monitor *mon = st->mon;
    memset(m, 0, sizeof *m);
    m->title = o->title ? o->title : "pixbench stress-test report";
    m->cmdline = st->cmdline;
    m->target = full_url;
    m->profile = pb_profile_name(o->prof.kind);
    m->payloads = st->desc;
    m->server = st->emb.child.pid ? st->emb.child.banner : NULL;
    m->open_loop = o->open_loop;
    m->poisson = o->poisson;
    m->think_lo_s = (double)o->think_lo / 1e9;
    m->think_hi_s = (double)o->think_hi / 1e9;
    m->spawn_rate = o->spawn_rate;
    m->threads = st->threads;
    m->connections = o->open_loop ? o->connections : (int)o->maxload;
    m->warmup_s = (double)o->warmup / 1e9;
    m->stage_s = (double)st->stage_ns / 1e9;
    m->timeout_s = (double)o->timeout / 1e9;
    m->max_wait_s = (double)(o->max_wait ? o->max_wait : o->timeout) / 1e9;
    m->check = o->prof.check == PB_CHECK_FULL ? "full" : o->prof.check == PB_CHECK_BASIC ? "basic" : "none";
    m->slo = o->slo_text;
    m->cpus = st->cpus;
    m->host = un->nodename;
    m->kernel = un->release;
    m->seed = o->seed;
    m->monitored = mon != NULL;
    m->mon_interval_s = mon ? (double)pb_monitor_interval_ns(mon) / 1e9 : 0;
    m->mon_pid = mon ? st->target_pid : 0;
    m->gpu_status = mon ? pb_monitor_gpu_status(mon) : NULL;
    m->disk_status = mon ? pb_monitor_disk_status(mon) : NULL;
    m->peak_reset = st->reset_peak && mon;
}

/* The table, hints, soak and text-to-image tables on stdout, the files
 * under --out; returns the exit status (3: SLO broken or a leak). */
static int report(const run_state *st, const pb_run_result *res, const pb_analysis *an)
{
    const pb_run_opts *o = &st->o;
    struct utsname un;
    uname(&un);
    char full_url[1024], err[512];
    snprintf(full_url, sizeof full_url, "%s%s", st->url, st->path + strlen(st->prefix));
    pb_report_meta m;
    report_meta(st, &un, full_url, &m);
    if (res->interrupted) fprintf(stderr, "pixbench: interrupted; reporting what was measured\n");
    pb_report_table(stdout, an, &m);
    if (!o->quiet)
        for (int i = 0; i < an->nhints; i++) printf("- %s\n", an->hints[i]);
    if (an->soak.on) {
        const char *no = "not monitored";
        printf("\nSoak: %s\n  RSS: %s\n", an->soak.leak ? "LEAK SUSPECTED" : "no leak detected",
               st->mon ? an->soak.rss.text : no);
        if (an->soak.have_gpu) printf("  GPU memory: %s\n", an->soak.gpu.text);
        else printf("  GPU memory: not observed (%s)\n", st->mon ? pb_monitor_gpu_status(st->mon) : no);
        printf("  descriptors: %s\n  %s\n", st->mon ? an->soak.fds.text : no, an->soak.drift.text);
    }
    if (st->gen) pb_gen_report_print(stdout, &st->gplan, an, &m);
    int rc = 0;
    if (o->out) {
        if (pb_report_write(o->out, res, an, &m, err, sizeof err) ||
            (st->gen && pb_gen_report_write(o->out, &st->gplan, an, &m, err, sizeof err))) {
            fprintf(stderr, "pixbench: %s\n", err);
            rc = 1;
        } else {
            printf("\nReport: %s/report.md, %s/report.html, %s/report.json (+ CSV files)\n", o->out, o->out, o->out);
        }
    }
    fflush(stdout);
    if (!rc && o->slo_text && an->slo_broken_stages) {
        fprintf(stderr, "pixbench: SLO broken in %d stage%s\n", an->slo_broken_stages,
                an->slo_broken_stages > 1 ? "s" : "");
        rc = 3;
    }
    if (!rc && an->soak.leak) {
        fprintf(stderr, "pixbench: a leak is suspected (see the soak verdict)\n");
        rc = 3;
    }
    return rc;
}

/* Everything after the flags: target, monitor, what to send, the load
 * (or the async driver), the report. */
static int run(run_state *st)
{
    int rc = start_target(st);
    if (!rc) rc = start_monitor(st);
    if (!rc) rc = build_payloads(st);
    if (!rc) rc = build_workloads(st);
    if (rc) return rc;
    if (st->o.gen.async) return run_async(st);
    pb_run_result *res = px_xcalloc(1, sizeof *res);
    pb_analysis *an = px_xcalloc(1, sizeof *an);
    rc = run_load(st, res);
    if (!rc) {
        analyze(st, res, an);
        rc = report(st, res, an);
    }
    pb_run_result_free(res);
    free(res);
    free(an);
    return rc;
}

int pb_cmd_run(int argc, char **argv, const char *cmdline)
{
    run_state *st = px_xcalloc(1, sizeof *st);
    pb_run_opts_init(&st->o);
    int rc = pb_run_opts_parse(&st->o, argc, argv);
    if (rc) {
        free(st);
        return rc == 1 ? 0 : rc;
    }
    rc = pb_run_opts_check(&st->o);
    if (!rc) {
        st->cmdline = cmdline;
        st->cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
        st->gen = PB_PROF_IS_GEN(st->o.prof.kind);
        st->images_needed = st->o.prof.kind == PB_PROF_PIXSERVE || st->o.prof.kind == PB_PROF_SEED ||
                            st->o.prof.kind == PB_PROF_IOPAINT;
        st->matrix = st->o.size_matrix;
        rc = run(st);
    }
    for (int i = 0; i < st->nwl; i++) pb_workload_free(&st->wls[i]);
    pb_gen_plan_free(&st->gplan);
    for (int i = 0; i < st->npl; i++) pb_payload_free(&st->pl[i]);
    free(st->pl);
    pb_monitor_close(st->mon);
    pb_target_unembed(&st->emb, PROG, st->o.quiet);
    free(st);
    return rc;
}
