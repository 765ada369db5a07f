/*
 * genreply.c — reading text-to-image replies and job event streams (see
 * genreply.h). The reply is the target's, so untrusted: JSON goes through
 * the bounded parser, every field is type-checked, and a field of the wrong
 * type counts as absent.
 */
#include "bench/genreply.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/jsonr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static double num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? v->valuedouble : -1;
}

static int inum(const cJSON *o, const char *name)
{
    double v = num(o, name);
    return v >= 0 && v < 1e9 ? (int)v : -1;
}

static void str(const cJSON *o, const char *name, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsString(v)) snprintf(out, cap, "%s", v->valuestring);
}

static void timings(const cJSON *t, pb_gen_reply *r)
{
    if (!cJSON_IsObject(t)) return;
    r->queue_ms = num(t, "queue_ms");
    r->text_encode_ms = num(t, "text_encode_ms");
    r->denoise_ms = num(t, "denoise_ms");
    r->vae_decode_ms = num(t, "vae_decode_ms");
    r->encode_ms = num(t, "encode_ms");
    r->total_ms = num(t, "total_ms");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(t, "step_ms"), *v;
    if (!cJSON_IsArray(steps)) return;
    double sum = 0;
    int n = 0;
    cJSON_ArrayForEach(v, steps) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0) continue;
        if (n == 0) r->step_first_ms = v->valuedouble;
        if (v->valuedouble > r->step_max_ms) r->step_max_ms = v->valuedouble;
        sum += v->valuedouble;
        n++;
    }
    r->nsteps = n;
    if (n) r->step_mean_ms = sum / n;
}

static void error_obj(const cJSON *e, pb_gen_reply *r)
{
    if (cJSON_IsString(e)) { /* some servers: {"error": "message"} */
        snprintf(r->err_msg, sizeof r->err_msg, "%s", e->valuestring);
        snprintf(r->err_code, sizeof r->err_code, "error");
        return;
    }
    if (!cJSON_IsObject(e)) return;
    str(e, "code", r->err_code, sizeof r->err_code);
    if (!r->err_code[0]) str(e, "type", r->err_code, sizeof r->err_code); /* OpenAI: code may be null */
    str(e, "message", r->err_msg, sizeof r->err_msg);
    if (!r->err_code[0]) snprintf(r->err_code, sizeof r->err_code, "error");
}

static void job(const cJSON *j, pb_gen_reply *r)
{
    str(j, "id", r->id, sizeof r->id);
    if (!r->id[0]) str(j, "task_id", r->id, sizeof r->id); /* the seed report's PoC */
    str(j, "status", r->status, sizeof r->status);
    str(j, "events_url", r->events_url, sizeof r->events_url);
    str(j, "status_url", r->status_url, sizeof r->status_url);
    r->created_ms = num(j, "created_ms");
    r->started_ms = num(j, "started_ms");
    r->finished_ms = num(j, "finished_ms");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "progress");
    if (cJSON_IsObject(p)) {
        r->step = inum(p, "step");
        r->steps = inum(p, "steps");
    } else {
        r->step = inum(j, "step"); /* a progress event's data is the progress itself */
        r->steps = inum(j, "steps");
    }
}

static void reset(pb_gen_reply *r)
{
    memset(r, 0, sizeof *r);
    r->nimages = r->width = r->height = r->prompt_tokens = r->step = r->steps = -1;
    r->queue_ms = r->text_encode_ms = r->denoise_ms = r->vae_decode_ms = r->encode_ms = r->total_ms = -1;
    r->step_mean_ms = r->step_first_ms = r->step_max_ms = -1;
    r->text_encode_peak = r->denoise_peak = r->vae_decode_peak = -1;
    r->created_ms = r->started_ms = r->finished_ms = -1;
}

int pb_gen_reply_parse(const char *s, size_t n, pb_gen_reply *out, char *err, size_t errlen)
{
    reset(out);
    if (n > PB_GEN_MAX_REPLY) return px_errf(err, errlen, PX_ETOOBIG, "reply over %zu bytes", PB_GEN_MAX_REPLY);
    /* a reply holds a few arrays of numbers and strings; 4 levels suffice */
    cJSON *j = px_json_parse(s, n, 8, 1u << 20, "the reply", NULL, err, errlen);
    if (!j) return PX_ECORRUPT;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return px_errf(err, errlen, PX_ECORRUPT, "the reply is not a JSON object");
    }
    const cJSON *imgs = cJSON_GetObjectItemCaseSensitive(j, "images");
    if (!cJSON_IsArray(imgs)) imgs = cJSON_GetObjectItemCaseSensitive(j, "data"); /* OpenAI */
    if (cJSON_IsArray(imgs)) out->nimages = cJSON_GetArraySize(imgs);
    out->width = inum(j, "width");
    out->height = inum(j, "height");
    out->prompt_tokens = inum(j, "prompt_tokens");
    timings(cJSON_GetObjectItemCaseSensitive(j, "timings"), out);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "memory");
    if (cJSON_IsObject(m)) {
        out->text_encode_peak = num(m, "text_encode_peak_bytes");
        out->denoise_peak = num(m, "denoise_peak_bytes");
        out->vae_decode_peak = num(m, "vae_decode_peak_bytes");
        double *pk[3] = {&out->text_encode_peak, &out->denoise_peak, &out->vae_decode_peak};
        for (int k = 0; k < 3; k++)
            if (!(*pk[k] > 0)) *pk[k] = -1; /* nothing measured */
        str(m, "source", out->mem_source, sizeof out->mem_source);
    }
    error_obj(cJSON_GetObjectItemCaseSensitive(j, "error"), out);
    job(j, out);
    cJSON_Delete(j);
    return 0;
}

int pb_gen_reply_is_oom(const pb_gen_reply *r)
{
    if (!strcmp(r->err_code, "out_of_memory")) return 1;
    const char *m = r->err_msg;
    for (; *m; m++)
        if (!strncasecmp(m, "out of memory", 13) || !strncasecmp(m, "outofmemory", 11)) return 1;
    return 0;
}

/* --- Server-Sent Events ---------------------------------------------------- */

void pb_sse_init(pb_sse *p)
{
    memset(p, 0, sizeof *p);
    p->line = px_xmalloc(PB_SSE_MAX_LINE + 1);
    p->data = px_xmalloc(PB_SSE_MAX_DATA + 1);
}

void pb_sse_free(pb_sse *p)
{
    free(p->line);
    free(p->data);
    memset(p, 0, sizeof *p);
}

/* One complete line (without its end): a field, a comment, or the blank
 * line that dispatches the event. */
static int sse_line(pb_sse *p, pb_sse_fn fn, void *ctx, char *err, size_t errlen)
{
    char *l = p->line;
    size_t n = p->line_len;
    l[n] = 0;
    if (n == 0) {
        int rc = 0;
        if (p->have_data) {
            p->data[p->data_len] = 0;
            rc = fn(ctx, p->event[0] ? p->event : "message", p->data, p->data_len);
        }
        p->event[0] = 0;
        p->data_len = 0;
        p->have_data = 0;
        return rc;
    }
    if (l[0] == ':') return 0; /* a comment (keep-alive) */
    char *colon = memchr(l, ':', n);
    size_t fl = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    if (*v == ' ') v++;
    size_t vl = (size_t)(l + n - v);
    if (fl == 5 && !memcmp(l, "event", 5)) {
        snprintf(p->event, sizeof p->event, "%.*s", (int)vl, v);
    } else if (fl == 4 && !memcmp(l, "data", 4)) {
        size_t need = p->data_len + (p->have_data ? 1 : 0) + vl;
        if (need > PB_SSE_MAX_DATA)
            return px_errf(err, errlen, PX_ETOOBIG, "an event's data is over %zu bytes", PB_SSE_MAX_DATA);
        if (p->have_data) p->data[p->data_len++] = '\n';
        memcpy(p->data + p->data_len, v, vl);
        p->data_len += vl;
        p->have_data = 1;
    }
    return 0;
}

int pb_sse_feed(pb_sse *p, const char *d, size_t n, pb_sse_fn fn, void *ctx, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (c == '\n' && p->skip_lf) {
            p->skip_lf = 0;
            continue;
        }
        p->skip_lf = 0;
        if (c == '\r' || c == '\n') { /* CRLF, LF or CR end a line */
            p->skip_lf = c == '\r';
            int rc = sse_line(p, fn, ctx, err, errlen);
            p->line_len = 0;
            if (rc) return rc;
            continue;
        }
        if (p->line_len == PB_SSE_MAX_LINE)
            return px_errf(err, errlen, PX_ETOOBIG, "an event-stream line is over %d bytes", PB_SSE_MAX_LINE);
        p->line[p->line_len++] = c;
    }
    return 0;
}
