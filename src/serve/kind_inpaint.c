/*
 * kind_inpaint.c — the inpaint request kind (see kind_inpaint.h): parse,
 * check the method, decode and plan, one engine item per window with its
 * shape bucket, the padding run adapter, assemble + encode + reply.
 */
#include "serve/kind_inpaint.h"

#include "core/alloc.h"
#include "core/base64.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "serve/hd.h"
#include "serve/inpaint.h"
#include "serve/request.h"
#include "serve/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One request: its options, decoded inputs, plan and engine items. */
typedef struct inpaint_req {
    px_inpaint_req req;
    px_hd_params hd;
    px_inpaint_input in;
    px_hd_plan plan;
    px_engine_item *eitems; /* the payload of window i's scheduler item */
    enum px_format in_fmt;  /* the input's format: the reply's unless asked */
} inpaint_req;

static void ir_free(void *p)
{
    inpaint_req *r = p;
    px_req_free(&r->req);
    px_inpaint_input_free(&r->in);
    px_hd_free(&r->plan);
    free(r->eitems);
    free(r);
}

/* ------------------------------------------------------------ parse */

static int content_is(const char *ct, const char *type)
{
    size_t n = strlen(type);
    return strncasecmp(ct, type, n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

static int ir_parse(const px_kind_ctx *c, const uint8_t *body, size_t len, void **out,
                    px_kind_opts *o, char *err, size_t errlen)
{
    const px_serve_config *cfg = c->env->cfg;
    const char *ct = c->content_type;
    inpaint_req *r = px_xcalloc(1, sizeof *r);
    *out = r;
    int rc;
    if (content_is(ct, "application/json")) {
        rc = px_req_parse_json((const char *)body, len, c->dialect, cfg->max_body, &r->req, err,
                               errlen);
    } else if (strncasecmp(ct, "multipart/form-data", 19) == 0) {
        /* /api/v1/inpaint's form, or a lama-cleaner client's POST /inpaint
         * (image bytes back): told apart from the JSON body by the type. */
        rc = px_req_parse_multipart(ct, body, len, c->dialect, cfg->max_body, &r->req, err, errlen);
    } else {
        return px_errf(err, errlen, PX_EUNSUP,
                       "Content-Type %s%.120s%s is not supported here; send %s", ct[0] ? "'" : "",
                       ct[0] ? ct : "(none)", ct[0] ? "'" : "",
                       "application/json or multipart/form-data");
    }
    if (rc) return rc;
    snprintf(o->engine, sizeof o->engine, "%s", r->req.engine);
    o->priority = r->req.priority;
    o->timeout_ms = r->req.timeout_ms;
    r->hd = cfg->hd;
    if (r->req.hd_strategy >= 0) r->hd.strategy = (enum px_hd_strategy)r->req.hd_strategy;
    if (r->req.hd_crop_trigger > 0) r->hd.crop_trigger = r->req.hd_crop_trigger;
    if (r->req.hd_crop_margin >= 0) r->hd.crop_margin = r->req.hd_crop_margin;
    if (r->req.hd_resize_limit > 0) r->hd.resize_limit = r->req.hd_resize_limit;
    return 0;
}

int px_kind_inpaint_crop_bucket(const px_engine *e, int configured)
{
    if (configured >= 0) return configured;
    const char *dev = e ? px_engine_device(e) : NULL;
    return dev && !strncmp(dev, "cuda", 4) ? PX_KIND_INPAINT_GPU_BUCKET : 0;
}

static int ir_check(const px_kind_ctx *c, void *p, char *err, size_t errlen)
{
    inpaint_req *r = p;
    r->hd.crop_bucket = px_kind_inpaint_crop_bucket(c->engine, r->hd.crop_bucket);
    if (!r->req.method[0]) return 0;
    return px_engine_check_method(c->engine, r->req.method, err, errlen);
}

/* ------------------------------------------------------------ prepare */

static int ir_prepare(const px_kind_ctx *c, void *p, int *nitems, char *err, size_t errlen)
{
    inpaint_req *r = p;
    r->plan.used = PX_HD_ORIGINAL;
    r->in_fmt = px_format_sniff(r->req.image, r->req.image_len);
    int rc = px_inpaint_decode(r->req.image, r->req.image_len, r->req.mask, r->req.mask_len,
                               &c->env->limits, &r->in, err, errlen);
    if (rc) return rc;
    px_req_free_images(&r->req);
    if ((rc = px_hd_plan_make(&r->in.rgb, &r->in.mask, &r->hd, &r->plan, err, errlen))) return rc;
    *nitems = r->plan.nwin; /* 0 for an empty mask: the image is the answer */
    return 0;
}

static int round_up(int v, int step)
{
    return step > 1 ? (v + step - 1) / step * step : v;
}

void px_kind_inpaint_item(px_sched_item *it, px_engine_item *eit, int batching, int bucket_step)
{
    int w = eit->image->w, h = eit->image->h;
    it->payload = eit;
    it->shape = (px_engine_shape){batching ? round_up(w, bucket_step) : w,
                                  batching ? round_up(h, bucket_step) : h, 0, 0};
    it->own = (px_engine_shape){w, h, 0, 0}; /* px_kind_inpaint_run: equal sizes run unpadded */
    it->key = px_kind_key3(it->shape.w, it->shape.h, 0);
}

static void ir_make_items(const px_kind_ctx *c, void *p, px_sched_item *items, int n)
{
    inpaint_req *r = p;
    int batching = px_sched_batches(c->env->sched, c->engine);
    r->eitems = px_xcalloc((size_t)n, sizeof *r->eitems);
    for (int i = 0; i < n; i++) {
        px_hd_window *w = &r->plan.win[i];
        r->eitems[i] = (px_engine_item){.image = &w->image,
                                        .mask = &w->mask,
                                        .out = &w->out,
                                        .seed = r->req.seed,
                                        .method = r->req.method[0] ? r->req.method : NULL};
        px_kind_inpaint_item(&items[i], &r->eitems[i], batching, c->env->cfg->bucket_step);
    }
}

/* ------------------------------------------------------------ run */

/* Mirror index for symmetric padding (edge pixel repeated, like numpy's
 * 'symmetric'), valid for any overshoot. */
static int mirror(int i, int n)
{
    int period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

/* Copies src into a bw×bh image, filling the extra columns and rows by
 * mirroring (a mask gets zeros: padding is known context, never a hole). */
static int pad_to(const px_image *src, int bw, int bh, int is_mask, px_image *dst)
{
    int rc = px_image_alloc(dst, bw, bh, src->c, NULL, NULL, 0);
    if (rc) return rc;
    size_t c = (size_t)src->c;
    for (int y = 0; y < bh; y++) {
        int sy = mirror(y, src->h);
        for (int x = 0; x < bw; x++) {
            uint8_t *d = dst->px + ((size_t)y * bw + x) * c;
            if (is_mask && (x >= src->w || y >= src->h)) {
                d[0] = 0;
                continue;
            }
            const uint8_t *s = src->px + ((size_t)sy * src->w + mirror(x, src->w)) * c;
            memcpy(d, s, c);
        }
    }
    return 0;
}

/* A batch of mixed sizes: every item padded to the bucket, run, cropped. */
static void run_padded(px_engine *e, px_sched_item *const *items, int n, int bw, int bh)
{
    px_engine_item eit[PX_SCHED_MAX_BATCH];
    px_image pimg[PX_SCHED_MAX_BATCH] = {{0}}, pmask[PX_SCHED_MAX_BATCH] = {{0}},
             pout[PX_SCHED_MAX_BATCH] = {{0}};
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const px_engine_item *src = items[i]->payload;
        eit[i] = *src;
        eit[i].cancel = &items[i]->cancel;
        eit[i].progress = px_sched_progress;
        eit[i].progress_arg = items[i];
        if (!rc) rc = pad_to(src->image, bw, bh, 0, &pimg[i]);
        if (!rc) rc = pad_to(src->mask, bw, bh, 1, &pmask[i]);
        if (!rc) rc = px_image_alloc(&pout[i], bw, bh, 3, NULL, NULL, 0);
        eit[i].image = &pimg[i];
        eit[i].mask = &pmask[i];
        eit[i].out = &pout[i];
    }
    if (!rc) px_engine_run(e, eit, n);
    for (int i = 0; i < n; i++) {
        px_sched_item *it = items[i];
        it->status = rc ? PX_ENOMEM : eit[i].status;
        if (rc)
            snprintf(it->err, sizeof it->err, "out of memory padding a batch");
        else
            memcpy(it->err, eit[i].err, sizeof it->err);
        if (!rc && eit[i].status == 0) {
            /* Crop the bucket-sized output back to the item. */
            px_image *o = ((px_engine_item *)it->payload)->out;
            for (int y = 0; y < o->h; y++)
                memcpy(o->px + (size_t)y * o->w * 3, pout[i].px + (size_t)y * bw * 3,
                       (size_t)o->w * 3);
        }
        px_image_free(&pimg[i]);
        px_image_free(&pmask[i]);
        px_image_free(&pout[i]);
    }
}

void px_kind_inpaint_run(px_engine *e, px_sched_item *const *items, int n)
{
    int bw = items[0]->shape.w, bh = items[0]->shape.h, mixed = 0;
    for (int i = 0; i < n; i++) {
        const px_image *im = ((const px_engine_item *)items[i]->payload)->image;
        mixed |= im->w != bw || im->h != bh;
    }
    if (n > 1 && mixed)
        run_padded(e, items, n, bw, bh);
    else
        px_kind_run_engine_items(e, items, n); /* a lone item runs at its own size */
}

/* ------------------------------------------------------------ finish */

/* The JSON reply's fields after the image or URL. */
static int reply_fields(const px_kind_ctx *c, const inpaint_req *r, enum px_format fmt,
                        px_buf *reply)
{
    px_task_timings tm;
    px_task_timings_get(c->task, &tm);
    px_buf_printf(reply, ",\"format\":\"%s\",\"width\":%d,\"height\":%d,\"seed\":%llu,\"engine\":",
                  px_format_name(fmt), r->in.rgb.w, r->in.rgb.h, (unsigned long long)r->req.seed);
    px_json_str(reply, px_engine_name(c->engine));
    px_buf_printf(reply, ",\"hd_strategy\":\"%s\",\"windows\":%d,\"batch_size\":%d,",
                  px_hd_name(r->plan.used), r->plan.nwin, tm.batch_size);
    px_buf_puts(reply, "\"timings\":{\"queue_ms\":");
    px_json_num(reply, tm.queue_ms);
    px_buf_puts(reply, ",\"decode_ms\":");
    px_json_num(reply, tm.decode_ms);
    px_buf_puts(reply, ",\"infer_ms\":");
    px_json_num(reply, tm.infer_ms);
    px_buf_puts(reply, ",\"encode_ms\":");
    px_json_num(reply, tm.encode_ms);
    px_buf_puts(reply, ",\"save_ms\":");
    px_json_num(reply, tm.save_ms);
    return px_buf_puts(reply, "}}\n");
}

/* Builds the success reply of the dialect and return mode. */
static int build_reply(const px_kind_ctx *c, const inpaint_req *r, px_buf *enc, enum px_format fmt,
                       px_kind_reply *out, char *err, size_t errlen)
{
    char name[PX_OUTPUT_NAME_MAX] = "";
    if (c->async || r->req.ret == PX_RETURN_IMAGE) {
        out->content_type = px_format_mime(fmt);
        /* IOPaint's client reads the seed from this header. */
        out->header_name = "X-Seed";
        snprintf(out->header_value, sizeof out->header_value, "%llu",
                 (unsigned long long)r->req.seed);
        out->body = *enc;
        px_buf_init(enc, 0);
        return 0;
    }
    if (r->req.ret == PX_RETURN_URL) {
        int64_t t0 = px_now_ns();
        int rc = px_outputs_save(c->env->outputs, enc->data, enc->len, px_format_name(fmt), name,
                                 err, errlen);
        px_task_note_save(c->task, px_now_ns() - t0);
        if (rc) return rc;
    }
    px_buf *reply = &out->body;
    size_t cap = px_b64_encoded_len(enc->len) + 4096;
    px_buf_init(reply, cap);
    int rc = px_buf_reserve(reply, cap);
    if (rc) return px_errf(err, errlen, rc, "out of memory building the reply");
    int seed = c->dialect == PX_DIALECT_SEED;
    px_buf_puts(reply, seed ? "{\"status\":\"ok\"," : "{");
    if (r->req.ret == PX_RETURN_URL) {
        px_buf_puts(reply, seed ? "\"image_url\":" : "\"url\":");
        char url[PX_OUTPUT_NAME_MAX + 16];
        snprintf(url, sizeof url, "/outputs/%s", name);
        px_json_str(reply, url);
    } else {
        px_buf_puts(reply, "\"image\":\"");
        reply->len += px_b64_encode(enc->data, enc->len, (char *)reply->data + reply->len);
        px_buf_puts(reply, "\"");
    }
    if ((rc = reply_fields(c, r, fmt, reply)))
        return px_errf(err, errlen, rc, "reply larger than expected");
    out->content_type = "application/json";
    return 0;
}

static int ir_finish(const px_kind_ctx *c, void *p, px_kind_reply *out, char *err, size_t errlen)
{
    inpaint_req *r = p;
    px_image img = {0};
    px_buf enc;
    px_buf_init(&enc, (size_t)1 << 30);
    int64_t t0 = px_now_ns();
    int rc;
    if ((rc = px_image_alloc(&img, r->in.rgb.w, r->in.rgb.h, 3, NULL, NULL, 0)) ||
        (rc = px_hd_assemble(&r->plan, &r->in.rgb, &r->in.mask, &img))) {
        px_errf(err, errlen, rc, "out of memory assembling a %dx%d result", r->in.rgb.w,
                r->in.rgb.h);
        goto done;
    }
    enum px_format fmt = r->req.out_fmt ? r->req.out_fmt : r->in_fmt ? r->in_fmt : PX_FMT_PNG;
    px_encode_opts eo = {.fmt = fmt,
                         .quality = r->req.quality,
                         .png_level = c->env->cfg->png_level};
    if ((rc = px_inpaint_encode(&img, &r->in.alpha, &eo, &enc, err, errlen))) goto done;
    px_task_note_stage(c->task, PX_STAGE_ENCODE, px_now_ns() - t0);
    rc = build_reply(c, r, &enc, eo.fmt, out, err, errlen);
done:
    px_image_free(&img);
    px_buf_free(&enc);
    return rc;
}

static int ir_status_result(const void *p, px_buf *b)
{
    const inpaint_req *r = p;
    return px_buf_printf(b, ",\"width\":%d,\"height\":%d", r->in.rgb.w, r->in.rgb.h);
}

const px_kind px_kind_inpaint = {
    .name = "inpaint",
    .engine_kind = PX_ENGINE_INPAINT,
    .prepare_stage = "decode",
    .finish_stage = "encode",
    .parse = ir_parse,
    .check = ir_check,
    .prepare = ir_prepare,
    .make_items = ir_make_items,
    .run = px_kind_inpaint_run,
    .finish = ir_finish,
    .free = ir_free,
    .status_result = ir_status_result,
};
