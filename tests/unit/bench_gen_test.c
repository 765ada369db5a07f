/*
 * bench_gen_test.c — pixbench's text-to-image parts: prompt sets (text and
 * the JSON forms, and what they refuse), the generate / OpenAI / job / error
 * reply parser, the event-stream parser fed in every split, and the
 * parameter matrix.
 */
#include "bench/genreply.h"
#include "bench/matrix.h"
#include "bench/profile.h"
#include "bench/prompts.h"
#include "bench/report_gen.h"
#include "bench/stats.h"
#include "core/err.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *s, pb_prompts *p)
{
    char err[256];
    return pb_prompts_parse(s, strlen(s), p, err, sizeof err);
}

TEST(t_prompts_text)
{
    pb_prompts p;
    T_EQ_INT(parse("\xef\xbb\xbf# a comment\n  first prompt  \r\n\nsecond\n# category: complex scene\n"
                   "neon street, rain\n#category:high detail\nmacro dew\n", &p), 0);
    T_EQ_INT(p.n, 4);
    T_EQ_STR(p.p[0].text, "first prompt");
    T_EQ_STR(p.cats[p.p[0].cat], "default");
    T_EQ_STR(p.cats[p.p[1].cat], "default");
    T_EQ_STR(p.p[2].text, "neon street, rain");
    T_EQ_STR(p.cats[p.p[2].cat], "complex scene");
    T_EQ_STR(p.cats[p.p[3].cat], "high detail");
    T_EQ_INT(p.ncats, 3);
    pb_prompts_free(&p);
}

TEST(t_prompts_json_forms)
{
    pb_prompts p;
    T_EQ_INT(parse(" [\"a\", \"b c\"]", &p), 0);
    T_EQ_INT(p.n, 2);
    T_EQ_STR(p.p[1].text, "b c");
    T_EQ_STR(p.cats[p.p[1].cat], "default");
    pb_prompts_free(&p);
    T_EQ_INT(parse("{\"simple\": [\"1girl\"], \"complex scene\": [\"x\", \"y\"]}", &p), 0);
    T_EQ_INT(p.n, 3);
    T_EQ_INT(p.ncats, 2);
    T_EQ_STR(p.cats[p.p[0].cat], "simple");
    T_EQ_STR(p.cats[p.p[2].cat], "complex scene");
    pb_prompts_free(&p);
    T_EQ_INT(parse("[{\"prompt\": \"p\", \"category\": \"simple\"}, {\"prompt\": \"q\"}]", &p), 0);
    T_EQ_INT(p.n, 2);
    T_EQ_STR(p.cats[p.p[0].cat], "simple");
    T_EQ_STR(p.cats[p.p[1].cat], "default");
    pb_prompts_free(&p);
}

TEST(t_prompts_refused)
{
    pb_prompts p;
    char err[256];
    T_EQ_INT(parse("", &p), PX_EINVAL);
    T_EQ_INT(parse("# only comments\n\n", &p), PX_EINVAL);
    T_EQ_INT(parse("[1, 2]", &p), PX_EINVAL);
    T_EQ_INT(parse("{\"a\": \"not a list\"}", &p), PX_EINVAL);
    T_EQ_INT(parse("[\"unterminated", &p), PX_ECORRUPT);
    T_EQ_INT(parse("[\"ok\", \"\"]", &p), PX_EINVAL);
    T_EQ_INT(parse("[{\"category\": \"x\"}]", &p), PX_EINVAL);
    T_EQ_INT(pb_prompts_parse("a\0b", 3, &p, err, sizeof err), PX_EINVAL);
    T_EQ_INT(parse("[[[[[[[[[[[[\"deep\"]]]]]]]]]]]]", &p), PX_ECORRUPT);
    char *big = malloc(PB_PROMPT_MAX_LEN + 2);
    memset(big, 'a', PB_PROMPT_MAX_LEN + 1);
    big[PB_PROMPT_MAX_LEN + 1] = 0;
    T_EQ_INT(parse(big, &p), PX_ETOOBIG);
    big[PB_PROMPT_MAX_LEN] = 0;
    T_EQ_INT(parse(big, &p), 0);
    T_EQ_INT((int)strlen(p.p[0].text), PB_PROMPT_MAX_LEN);
    pb_prompts_free(&p);
    free(big);
    pb_prompts_default(&p);
    T_EQ_STR(p.p[0].text, PB_SEED_PROMPT);
    pb_prompts_free(&p);
}

TEST(t_reply_generate)
{
    const char *s = "{\"images\": [\"iVBO\", \"iVBO\"], \"format\": \"png\", \"width\": 64, \"height\": 48,"
                    "\"prompt_tokens\": 9, \"timings\": {\"queue_ms\": 1.5, \"text_encode_ms\": 35,"
                    "\"denoise_ms\": 300, \"step_ms\": [110, 90, 100], \"vae_decode_ms\": 20,"
                    "\"encode_ms\": 2, \"total_ms\": 360}, \"memory\": {\"text_encode_peak_bytes\": 1000,"
                    "\"denoise_peak_bytes\": 3000, \"vae_decode_peak_bytes\": 2000}}";
    pb_gen_reply r;
    char err[200];
    T_EQ_INT(pb_gen_reply_parse(s, strlen(s), &r, err, sizeof err), 0);
    T_EQ_INT(r.nimages, 2);
    T_EQ_INT(r.width, 64);
    T_EQ_INT(r.height, 48);
    T_EQ_INT(r.prompt_tokens, 9);
    T_NEAR(r.queue_ms, 1.5, 1e-9);
    T_NEAR(r.text_encode_ms, 35, 1e-9);
    T_NEAR(r.denoise_ms, 300, 1e-9);
    T_EQ_INT(r.nsteps, 3);
    T_NEAR(r.step_mean_ms, 100, 1e-9);
    T_NEAR(r.step_first_ms, 110, 1e-9);
    T_NEAR(r.step_max_ms, 110, 1e-9);
    T_NEAR(r.vae_decode_ms, 20, 1e-9);
    T_NEAR(r.encode_ms, 2, 1e-9);
    T_NEAR(r.total_ms, 360, 1e-9);
    T_NEAR(r.denoise_peak, 3000, 1e-9);
    T_NEAR(r.vae_decode_peak, 2000, 1e-9);
    T_EQ_STR(r.err_code, "");
    T_EQ_INT(pb_gen_reply_is_oom(&r), 0);
    /* another server: nothing but the images; and fields of the wrong type */
    s = "{\"data\": [{\"b64_json\": \"x\"}], \"timings\": {\"denoise_ms\": \"fast\", \"step_ms\": [1, \"a\"]},"
        "\"memory\": 7}";
    T_EQ_INT(pb_gen_reply_parse(s, strlen(s), &r, err, sizeof err), 0);
    T_EQ_INT(r.nimages, 1);
    T_CMP_DBL(r.denoise_ms, <, 0);
    T_EQ_INT(r.nsteps, 1);
    T_CMP_DBL(r.denoise_peak, <, 0);
    T_CMP_DBL(r.total_ms, <, 0);
    T_EQ_INT(pb_gen_reply_parse("[1]", 3, &r, err, sizeof err), PX_ECORRUPT);
    T_EQ_INT(pb_gen_reply_parse("{\"a\":", 5, &r, err, sizeof err), PX_ECORRUPT);
}

TEST(t_reply_errors_and_jobs)
{
    pb_gen_reply r;
    char err[200];
    const char *s = "{\"error\": {\"code\": \"out_of_memory\", \"message\": \"not enough memory\"}}";
    T_EQ_INT(pb_gen_reply_parse(s, strlen(s), &r, err, sizeof err), 0);
    T_EQ_STR(r.err_code, "out_of_memory");
    T_EQ_INT(pb_gen_reply_is_oom(&r), 1);
    s = "{\"error\": {\"message\": \"CUDA out of memory. Tried to allocate\", \"type\": \"server_error\", "
        "\"param\": null, \"code\": null}}";
    T_EQ_INT(pb_gen_reply_parse(s, strlen(s), &r, err, sizeof err), 0);
    T_EQ_STR(r.err_code, "server_error");
    T_EQ_INT(pb_gen_reply_is_oom(&r), 1);
    s = "{\"error\": {\"code\": \"invalid_input\", \"message\": \"width must be a multiple of 16\"}}";
    T_EQ_INT(pb_gen_reply_parse(s, strlen(s), &r, err, sizeof err), 0);
    T_EQ_INT(pb_gen_reply_is_oom(&r), 0);
    s = "{\"id\": \"j-5f1c\", \"status\": \"queued\", \"position\": 1, \"status_url\": \"/api/v1/jobs/j-5f1c\","
        "\"events_url\": \"/api/v1/jobs/j-5f1c/events\"}";
    T_EQ_INT(pb_gen_reply_parse(s, strlen(s), &r, err, sizeof err), 0);
    T_EQ_STR(r.id, "j-5f1c");
    T_EQ_STR(r.status, "queued");
    T_EQ_STR(r.events_url, "/api/v1/jobs/j-5f1c/events");
    s = "{\"id\": \"j\", \"kind\": \"generate\", \"status\": \"done\", \"progress\": {\"step\": 8, \"steps\": 8},"
        "\"created_ms\": 1764800000000, \"started_ms\": 1764800000010, \"finished_ms\": 1764800000980,"
        "\"timings\": {\"queue_ms\": 1.2, \"total_ms\": 970.0}}";
    T_EQ_INT(pb_gen_reply_parse(s, strlen(s), &r, err, sizeof err), 0);
    T_EQ_STR(r.status, "done");
    T_NEAR(r.started_ms - r.created_ms, 10, 1e-6);
    T_NEAR(r.finished_ms - r.started_ms, 970, 1e-6);
    T_EQ_INT(r.step, 8);
    T_NEAR(r.total_ms, 970, 1e-9);
    s = "{\"task_id\": \"abc\"}"; /* the seed report's own async PoC */
    T_EQ_INT(pb_gen_reply_parse(s, strlen(s), &r, err, sizeof err), 0);
    T_EQ_STR(r.id, "abc");
}

typedef struct events {
    char log[1024];
    size_t len;
} events;

static int on_event(void *ctx, const char *ev, const char *data, size_t n)
{
    events *e = ctx;
    e->len += (size_t)snprintf(e->log + e->len, sizeof e->log - e->len, "[%s|%.*s]", ev, (int)n, data);
    return !strcmp(ev, "stop") ? 7 : 0;
}

TEST(t_sse_any_split)
{
    const char *stream = ": keep-alive\r\nevent: status\r\ndata: {\"status\": \"queued\"}\r\n\r\n"
                         "event:progress\ndata:{\"step\": 1,\ndata: \"steps\": 2}\n\n"
                         "data: plain\rid: 5\r\r"
                         "event: ignored-without-data\n\n"
                         "event: end\ndata: {}\n\n";
    const char *want = "[status|{\"status\": \"queued\"}][progress|{\"step\": 1,\n\"steps\": 2}]"
                       "[message|plain][end|{}]";
    size_t n = strlen(stream);
    for (size_t cut = 0; cut <= n; cut++) {
        pb_sse p;
        pb_sse_init(&p);
        events e = {{0}, 0};
        char err[128];
        T_EQ_INT(pb_sse_feed(&p, stream, cut, on_event, &e, err, sizeof err), 0);
        T_EQ_INT(pb_sse_feed(&p, stream + cut, n - cut, on_event, &e, err, sizeof err), 0);
        T_EQ_STR(e.log, want);
        pb_sse_free(&p);
    }
    pb_sse p;
    pb_sse_init(&p);
    events e = {{0}, 0};
    char err[128];
    T_EQ_INT(pb_sse_feed(&p, "event: stop\ndata: x\n\nevent: a\ndata: y\n\n", 38, on_event, &e, err, sizeof err), 7);
    T_EQ_STR(e.log, "[stop|x]");
    pb_sse_free(&p);
    /* a line without end over the cap is refused, not grown */
    pb_sse_init(&p);
    char *big = malloc(PB_SSE_MAX_LINE + 10);
    memset(big, 'd', PB_SSE_MAX_LINE + 10);
    T_EQ_INT(pb_sse_feed(&p, big, PB_SSE_MAX_LINE + 10, on_event, &e, err, sizeof err), PX_ETOOBIG);
    free(big);
    pb_sse_free(&p);
}

TEST(t_matrix_product_and_axes)
{
    pb_gen_cell c[PB_MATRIX_MAX];
    int n = 0, base = -1;
    char err[256];
    pb_gen_cell b = {.steps = 25, .cfg = 7, .w = 1024, .h = 1024};
    T_EQ_INT(pb_matrix_build("steps=10,25,50", &b, 0, c, &n, &base, err, sizeof err), 0);
    T_EQ_INT(n, 3);
    T_EQ_INT(base, 1);
    T_EQ_INT(c[0].steps, 10);
    T_EQ_INT(c[2].w, 1024);
    T_NEAR(c[2].cfg, 7, 1e-9);
    T_EQ_STR(c[0].label, "steps=10");
    /* product: 2 x 2 cells, the baseline is the one matching the defaults */
    T_EQ_INT(pb_matrix_build("cfg=1,7 size=768x768,1024x1024", &b, 0, c, &n, &base, err, sizeof err), 0);
    T_EQ_INT(n, 4);
    T_EQ_INT(base, 3);
    T_EQ_STR(c[3].label, "cfg=7 size=1024x1024");
    /* one axis at a time around the baseline: the seed's tables */
    T_EQ_INT(pb_matrix_build("steps=10,25,50 cfg=1,7,12 size=768x768,1024x1024,1280x1280", &b, 1, c, &n, &base,
                             err, sizeof err), 0);
    T_EQ_INT(n, 7);
    T_EQ_INT(base, 0);
    T_EQ_INT(c[0].axis, -1);
    T_EQ_STR(c[0].label, "steps=25 cfg=7 size=1024x1024");
    T_EQ_INT(c[1].axis, PB_AXIS_STEPS);
    T_EQ_INT(c[1].steps, 10);
    T_EQ_INT(c[2].steps, 50);
    T_EQ_INT(c[3].axis, PB_AXIS_CFG);
    T_NEAR(c[4].cfg, 12, 1e-9);
    T_EQ_INT(c[6].w, 1280);
    T_EQ_INT(c[6].steps, 25);
    T_EQ_INT(pb_matrix_build("steps=10;cfg=0", &b, 0, c, &n, &base, err, sizeof err), 0);
    T_EQ_INT(n, 1);
    T_EQ_INT(base, 0); /* no cell matches the defaults: the first is the baseline */
    T_EQ_INT(pb_matrix_build("steps=", &b, 0, c, &n, &base, err, sizeof err), PX_EINVAL);
    T_EQ_INT(pb_matrix_build("color=red", &b, 0, c, &n, &base, err, sizeof err), PX_EINVAL);
    T_EQ_INT(pb_matrix_build("size=12", &b, 0, c, &n, &base, err, sizeof err), PX_EINVAL);
    T_EQ_INT(pb_matrix_build("steps=1,2,3,4,5,6,7,8 cfg=1,2,3,4,5,6,7,8 size=16x16,32x32", &b, 0, c, &n, &base,
                             err, sizeof err), PX_ETOOBIG);
}

/* one request per prompt; OpenAI's body names size and n; cfg 0 is sent as 0 */
TEST(t_gen_requests)
{
    static const char *const prompts[] = {"a \"quoted\" fox", "neon street"};
    pb_profile_opts o = {.kind = PB_PROF_OPENAI, .check = PB_CHECK_FULL, .host_header = "h:1",
                         .prompts = prompts, .nprompts = 2, .width = 64, .height = 48, .steps = 2,
                         .cfg_scale = 0, .cfg_set = 1, .gen_seed = 3};
    pb_workload w;
    char err[256];
    T_EQ_INT(pb_workload_build(&o, NULL, 0, &w, err, sizeof err), 0);
    T_EQ_INT(w.nreqs, 2);
    char *head = strndup((const char *)w.reqs[0].head, w.reqs[0].head_len);
    char *b0 = strndup((const char *)w.reqs[0].body, w.reqs[0].body_len);
    char *b1 = strndup((const char *)w.reqs[1].body, w.reqs[1].body_len);
    T_CONTAINS(head, "POST /v1/images/generations HTTP/1.1");
    T_CONTAINS(b0, "\"prompt\":\"a \\\"quoted\\\" fox\"");
    T_CONTAINS(b0, "\"size\":\"64x48\"");
    T_CONTAINS(b0, "\"n\":1");
    T_CONTAINS(b0, "\"response_format\":\"b64_json\"");
    T_CONTAINS(b0, "\"steps\":2");
    T_CONTAINS(b0, "\"cfg_scale\":0");
    T_CONTAINS(b1, "neon street");
    free(head);
    free(b0);
    free(b1);
    pb_workload_free(&w);
    pb_profile_opts g = {.kind = PB_PROF_GENERATE, .host_header = "h:1"};
    T_EQ_INT(pb_workload_build(&g, NULL, 0, &w, err, sizeof err), 0);
    char *b = strndup((const char *)w.reqs[0].body, w.reqs[0].body_len);
    T_CONTAINS(b, PB_SEED_PROMPT);
    T_CONTAINS(b, "\"cfg_scale\":7.5");
    free(b);
    pb_workload_free(&w);
}

/* --lora: every request names every LoRA; --lora-mix: every prompt with
 * each LoRA alone, so the workload holds prompts × LoRAs bodies */
TEST(t_gen_loras)
{
    static const char *const prompts[] = {"fox", "street"};
    pb_profile_opts o = {.kind = PB_PROF_GENERATE, .host_header = "h:1", .prompts = prompts,
                         .nprompts = 2};
    char err[256];
    T_EQ_INT(pb_profile_add_lora(&o, "ink:0.85", err, sizeof err), 0);
    T_EQ_INT(pb_profile_add_lora(&o, "style", err, sizeof err), 0);
    T_EQ_INT(pb_profile_add_lora(&o, "x:abc", err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "scale");
    T_EQ_INT(pb_profile_add_lora(&o, ":1", err, sizeof err), PX_EINVAL);
    T_EQ_INT(o.nloras, 2);
    pb_workload w;
    T_EQ_INT(pb_workload_build(&o, NULL, 0, &w, err, sizeof err), 0);
    T_EQ_INT(w.nreqs, 2);
    for (int i = 0; i < 2; i++) {
        char *b = strndup((const char *)w.reqs[i].body, w.reqs[i].body_len);
        T_CONTAINS(b, "\"loras\":[{\"name\":\"ink\",\"scale\":0.85},{\"name\":\"style\",\"scale\":1}]");
        free(b);
    }
    pb_workload_free(&w);
    o.lora_mix = 1;
    T_EQ_INT(pb_workload_build(&o, NULL, 0, &w, err, sizeof err), 0);
    T_EQ_INT(w.nreqs, 4);
    static const char *const want[4][2] = {{"fox", "ink"}, {"street", "ink"}, {"fox", "style"},
                                           {"street", "style"}};
    for (int i = 0; i < 4; i++) {
        char *b = strndup((const char *)w.reqs[i].body, w.reqs[i].body_len);
        char p[64], l[64];
        snprintf(p, sizeof p, "\"prompt\":\"%s\"", want[i][0]);
        snprintf(l, sizeof l, "\"loras\":[{\"name\":\"%s\",", want[i][1]);
        T_CONTAINS(b, p);
        T_CONTAINS(b, l);
        T_TRUE(strstr(b, want[i][1][0] == 'i' ? "style" : "ink") == NULL); /* one LoRA each */
        free(b);
    }
    pb_workload_free(&w);
}

/* a stage whose failures share one status keeps it through merges; two
 * statuses anywhere make it mixed */
TEST(t_fail_status)
{
    pb_acc a, b, c;
    pb_acc_init(&a);
    pb_acc_init(&b);
    pb_acc_init(&c);
    pb_acc_note_status(&a, 404);
    pb_acc_note_status(&a, 404);
    pb_acc_note_status(&b, 404);
    pb_acc_merge(&c, &a);
    pb_acc_merge(&c, &b);
    T_EQ_INT(c.fail_status, 404);
    T_EQ_INT(c.fail_status_mixed, 0);
    pb_acc_note_status(&b, 503);
    T_EQ_INT(b.fail_status_mixed, 1);
    pb_acc_merge(&c, &b);
    T_EQ_INT(c.fail_status, 0);
    T_EQ_INT(c.fail_status_mixed, 1);
    pb_acc_note_status(&c, 404); /* once mixed, always mixed */
    T_EQ_INT(c.fail_status, 0);
    pb_acc_reset(&c);
    T_EQ_INT(c.fail_status_mixed, 0);
    pb_acc_free(&a);
    pb_acc_free(&b);
    pb_acc_free(&c);
}

static char *print_tables(const pb_gen_plan *p, const pb_analysis *a, const pb_report_meta *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pb_gen_report_print(f, p, a, m);
    fclose(f);
    return buf;
}

/* The seed 002 table from GPU samples (faked: there is no GPU here), and
 * the matrix tables' changes, OOM marking and Server-Timing fallback. */
TEST(t_report_tables)
{
    pb_gen_plan *p = calloc(1, sizeof *p);
    pb_analysis *a = calloc(1, sizeof *a);
    pb_report_meta m = {.monitored = 1, .mon_pid = 42, .profile = "generate", .gpu_status = "1 GPU"};
    pb_prompts_default(&p->prompts);
    p->stats = calloc(1, sizeof *p->stats);
    p->ncells = 1;
    snprintf(p->cells[0].label, sizeof p->cells[0].label, "steps=40 cfg=7.5 size=1024x1024");
    a->n = 2;
    for (int k = 0; k < 2; k++) {
        pb_stage_summary *s = &a->s[k];
        pb_res_init(&s->res);
        s->load = k ? 10 : 1;
        s->requests = 100;
        s->ok = k ? 98 : 100;
        s->errors = s->requests - s->ok;
        s->qps = k ? 7.1 : 0.8;
        s->p95_ms = k ? 23500 : 18200;
        s->mean_ms = 1000;
        pb_agg_add(&s->res.gpu_util_peak, k ? 91 : 65);
        pb_agg_add(&s->res.gpu_util_peak, 50);
        pb_agg_add(&s->res.gpu_proc_mem_mb, 14540.8);  /* the target's own: preferred */
        pb_agg_add(&s->res.gpu_proc_mem_mb, 14540.8);
        pb_agg_add(&s->res.gpu_mem_mb, 20000);
        pb_agg_add(&s->res.rss_mb, 3000);
    }
    char *t = print_tables(p, a, &m);
    T_CONTAINS(t, "| 1 | 0.80 | 18.20 | 100.0% | 65% | 14.2 GB | 3000 MB |");
    T_CONTAINS(t, "| 10 | 7.10 | 23.50 | 98.0% | 91% | 14.2 GB | 3000 MB |");
    T_CONTAINS(t, "the target's GPU memory (NVML)");
    T_CONTAINS(t, "none: the server reported no stages");
    free(t);

    /* a matrix: baseline, then a cell that ran out of memory on every request */
    p->matrix = 1;
    p->ncells = 2;
    p->baseline = 0;
    p->cells[0].axis = -1;
    p->cells[1].axis = PB_AXIS_SIZE;
    snprintf(p->cells[1].label, sizeof p->cells[1].label, "size=1280x1280");
    pb_gen_cellstats *c0 = &p->stats->cell[0], *c1 = &p->stats->cell[1];
    c0->dn_peak = (pb_gen_mean){.sum = 0, .max = 1000.0 * 1048576, .n = 1};
    c0->denoise = (pb_gen_mean){.sum = 2980, .max = 2980, .n = 1};
    c0->total = (pb_gen_mean){.sum = 4030, .max = 4030, .n = 1};
    c0->step = (pb_gen_mean){.sum = 119, .max = 119, .n = 1};
    c1->failed = c1->oom = 5;
    c1->fail_status = 503;
    snprintf(c1->fail_code, sizeof c1->fail_code, "out_of_memory");
    a->s[0].mean_ms = 4200;
    a->s[1].ok = 0;
    a->s[1].errors = 5;
    /* the second cell's figures come from Server-Timing only */
    t = print_tables(p, a, &m);
    T_CONTAINS(t, "| baseline | steps=40 cfg=7.5 size=1024x1024 | 1000 MB | — |");
    T_CONTAINS(t, "| resolution | size=1280x1280 | - | - |");
    T_CONTAINS(t, "**OOM**: every request (5)");
    T_CONTAINS(t, "the last with status 503, out_of_memory");
    T_CONTAINS(t, "| 4200.0 ms |");          /* client mean of the baseline */
    T_CONTAINS(t, "| 2980.0 ms (71%) |");    /* denoise share of it */
    T_CONTAINS(t, "| 119.00 ms (-) |");      /* per step; no first step given */
    T_CONTAINS(t, "| 170.0 ms | the replies' timings{} |"); /* other = 4200 - 4030 */
    free(t);
    pb_prompts_free(&p->prompts);
    free(p->stats);
    free(p);
    free(a);
}

TEST_MAIN(t_gen_requests, t_gen_loras, t_report_tables, t_fail_status, t_prompts_text, t_prompts_json_forms, t_prompts_refused, t_reply_generate, t_reply_errors_and_jobs,
          t_sse_any_split, t_matrix_product_and_axes)
