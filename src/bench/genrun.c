/*
 * genrun.c — the text-to-image run plan and its reply reader (see
 * genrun.h).
 */
#include "bench/genrun.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

double pb_gen_mean_of(const pb_gen_mean *m)
{
    return m->n ? m->sum / (double)m->n : -1;
}

static void add(pb_gen_mean *m, double v)
{
    if (!(v >= 0)) return; /* unknown */
    m->sum += v;
    if (v > m->max || !m->n) m->max = v;
    m->n++;
}

/* Which cell and prompt a request is: its place among the cells' arrays
 * (modulo the prompts: profile.c's order). */
static int locate(const pb_genstats *s, const pb_request *req, int *prompt)
{
    for (int c = 0; c < s->ncells; c++)
        if (req >= s->reqs[c] && req < s->reqs[c] + s->nreqs[c]) {
            *prompt = (int)(req - s->reqs[c]) % (s->nprompts > 0 ? s->nprompts : 1);
            return c;
        }
    return -1;
}

static void note_reply(pb_genstats *s, const pb_request *req, const px_buf *body)
{
    int pi = 0, c = locate(s, req, &pi);
    if (c < 0) return;
    pb_gen_reply r;
    char err[128];
    int ok = body && body->len && pb_gen_reply_parse((const char *)body->data, body->len, &r, err, sizeof err) == 0;
    int cat = s->req_cat ? s->req_cat[pi] : 0;
    int64_t now = px_now_ns();
    pthread_mutex_lock(&s->mu);
    if (now < s->win_start || now >= s->win_end) { /* warm-up, or between stages */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pb_gen_cellstats *cs = &s->cell[c];
    cs->replies++;
    if (ok) {
        cs->parsed++;
        add(&cs->queue, r.queue_ms);
        add(&cs->text_encode, r.text_encode_ms);
        add(&cs->denoise, r.denoise_ms);
        add(&cs->step, r.step_mean_ms);
        add(&cs->step_first, r.step_first_ms);
        add(&cs->vae_decode, r.vae_decode_ms);
        add(&cs->encode, r.encode_ms);
        add(&cs->total, r.total_ms);
        add(&cs->tokens, r.prompt_tokens);
        add(&cs->te_peak, r.text_encode_peak);
        add(&cs->dn_peak, r.denoise_peak);
        add(&cs->vae_peak, r.vae_decode_peak);
        if (r.mem_source[0]) snprintf(cs->mem_source, sizeof cs->mem_source, "%s", r.mem_source);
        if (cat >= 0 && cat < PB_PROMPTS_MAX_CATS) {
            /* the queue is the load's, not the prompt's: compare the work */
            add(&cs->cat_total[cat], r.total_ms >= 0 && r.queue_ms >= 0 ? r.total_ms - r.queue_ms : r.total_ms);
            add(&cs->cat_denoise[cat], r.denoise_ms);
            add(&cs->cat_tokens[cat], r.prompt_tokens);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

int pb_gen_check(void *ctx, const pb_request *req, const pb_http_parser *resp, const px_buf *body, char *err,
                 size_t errlen)
{
    pb_genstats *s = ctx;
    int rc = s->inner ? s->inner(s->inner_ctx, req, resp, body, err, errlen) : 0;
    if (!rc && !strncasecmp(resp->content_type, "application/json", 16)) note_reply(s, req, body);
    return rc;
}

void pb_gen_bad_status(void *ctx, const pb_request *req, const pb_http_parser *resp, const px_buf *body)
{
    pb_genstats *s = ctx;
    int pi = 0, c = locate(s, req, &pi);
    if (c < 0) return;
    pb_gen_reply r;
    char err[128];
    int ok = body && body->len && pb_gen_reply_parse((const char *)body->data, body->len, &r, err, sizeof err) == 0;
    int64_t now = px_now_ns();
    pthread_mutex_lock(&s->mu);
    if (now < s->win_start || now >= s->win_end) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pb_gen_cellstats *cs = &s->cell[c];
    cs->failed++;
    cs->fail_status = resp->status;
    if (ok && pb_gen_reply_is_oom(&r)) cs->oom++;
    if (ok && r.err_code[0]) {
        snprintf(cs->fail_code, sizeof cs->fail_code, "%s", r.err_code);
        snprintf(cs->fail_msg, sizeof cs->fail_msg, "%s", r.err_msg);
    }
    pthread_mutex_unlock(&s->mu);
}

void pb_gen_window(void *ctx, int64_t start_ns, int64_t end_ns)
{
    pb_genstats *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->win_start = start_ns;
    s->win_end = end_ns;
    pthread_mutex_unlock(&s->mu);
}

static int load_prompts(const pb_gen_opts *g, const pb_profile_opts *prof, pb_gen_plan *p, char *err,
                        size_t errlen)
{
    if (g->prompts_file) {
        char e2[256];
        int rc = pb_prompts_load(g->prompts_file, &p->prompts, e2, sizeof e2);
        return rc ? px_errf(err, errlen, rc, "--prompts %.200s: %s", g->prompts_file, e2) : 0;
    }
    pb_prompts_default(&p->prompts);
    if (prof->prompt) { /* --prompt: that one prompt, as typed */
        free(p->prompts.p[0].text);
        p->prompts.p[0].text = px_xstrdup(prof->prompt);
        free(p->prompts.cats[0]);
        p->prompts.cats[0] = px_xstrdup("default");
    }
    return 0;
}

int pb_gen_plan_build(const pb_gen_opts *g, pb_profile_opts *prof, pb_gen_plan *p, pb_workload *wls,
                      int *nwl, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    *nwl = 0;
    int rc = load_prompts(g, prof, p, err, errlen);
    if (rc) return rc;
    p->texts = px_xcalloc((size_t)p->prompts.n, sizeof *p->texts);
    p->cats = px_xcalloc((size_t)p->prompts.n, sizeof *p->cats);
    for (int i = 0; i < p->prompts.n; i++) {
        p->texts[i] = p->prompts.p[i].text;
        p->cats[i] = p->prompts.p[i].cat;
    }
    prof->prompts = p->texts;
    prof->nprompts = p->prompts.n;
    pb_gen_cell base = {.steps = prof->steps ? prof->steps : 40, .cfg = prof->cfg_set ? prof->cfg_scale : 7.5,
                        .w = prof->width ? prof->width : 1024, .h = prof->height ? prof->height : 1024, .axis = -1};
    snprintf(base.label, sizeof base.label, "steps=%d cfg=%g size=%dx%d", base.steps, base.cfg, base.w, base.h);
    if (g->matrix[0]) {
        p->matrix = 1;
        rc = pb_matrix_build(g->matrix, &base, g->one_at_a_time, p->cells, &p->ncells, &p->baseline, err, errlen);
        if (rc) return rc;
    } else {
        p->cells[0] = base;
        p->ncells = 1;
    }
    p->stats = px_xcalloc(1, sizeof *p->stats);
    pthread_mutex_init(&p->stats->mu, NULL);
    p->stats->win_start = INT64_MAX; /* nothing counts before the first window */
    for (int c = 0; c < p->ncells; c++) {
        pb_profile_opts o = *prof;
        o.steps = p->cells[c].steps;
        o.cfg_scale = p->cells[c].cfg;
        o.cfg_set = 1;
        o.width = p->cells[c].w;
        o.height = p->cells[c].h;
        if ((rc = pb_workload_build(&o, NULL, 0, &wls[c], err, errlen))) return rc;
        (*nwl)++;
        if (!wls[c].body_max) wls[c].body_max = PB_GEN_MAX_REPLY; /* the reply's figures are read even with --check none */
        p->stats->reqs[c] = wls[c].reqs;
        p->stats->nreqs[c] = wls[c].nreqs;
    }
    p->stats->ncells = p->ncells;
    p->stats->inner = wls[0].check;
    p->stats->inner_ctx = wls[0].check_ctx;
    p->stats->req_cat = p->cats;
    p->stats->nprompts = p->prompts.n;
    return 0;
}

void pb_gen_plan_free(pb_gen_plan *p)
{
    if (p->stats) {
        pthread_mutex_destroy(&p->stats->mu);
        free(p->stats);
    }
    free(p->texts);
    free(p->cats);
    pb_prompts_free(&p->prompts);
    memset(p, 0, sizeof *p);
}
