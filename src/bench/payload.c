/*
 * payload.c — generated images and masks (see payload.h).
 *
 * The image is the sum of layers a photograph has: smooth illumination
 * (a bilinear upsampling of a 4x3 colour grid), mid-scale texture (value
 * noise from a coarse grid), a few flat-shaded objects (ellipses and
 * rectangles), and per-pixel sensor noise, which is what makes PNG sizes
 * realistic (a pure gradient would compress a hundredfold). The mask is
 * drawn like a user's brush: thick strokes along smooth random walks,
 * stamped disc by disc until the target coverage is reached, with the disc
 * shrunk near the end so the coverage never passes the upper bound.
 */
#include "bench/payload.h"

#include "core/err.h"
#include "core/rng.h"
#include "image/resize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int random_grid(px_rng *r, int gw, int gh, int lo, int hi, px_image *out)
{
    int rc = px_image_alloc(out, gw, gh, 3, NULL, NULL, 0);
    if (rc) return rc;
    for (size_t i = 0; i < (size_t)gw * gh * 3; i++)
        out->px[i] = (uint8_t)(lo + (int)px_rng_below(r, (uint32_t)(hi - lo + 1)));
    return 0;
}

static int gen_image(int w, int h, px_rng *r, px_image *img)
{
    px_image g1 = {0}, g2 = {0}, base = {0}, tex = {0};
    int rc = random_grid(r, 4, 3, 20, 235, &g1);
    if (!rc) rc = px_resize(&g1, w, h, &base);
    int tw = w / 24 > 2 ? w / 24 : 2, th = h / 24 > 2 ? h / 24 : 2;
    if (!rc) rc = random_grid(r, tw, th, 0, 60, &g2);
    if (!rc) rc = px_resize(&g2, w, h, &tex);
    if (rc) goto out;
    /* light + texture (centred) */
    size_t n = (size_t)w * h * 3;
    for (size_t i = 0; i < n; i++) {
        int v = base.px[i] + tex.px[i] - 30;
        base.px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    /* objects: shaded ellipses and boxes */
    int nobj = 3 + (int)px_rng_below(r, 5);
    for (int o = 0; o < nobj; o++) {
        int cx = (int)px_rng_below(r, (uint32_t)w), cy = (int)px_rng_below(r, (uint32_t)h);
        int rx = 1 + (int)px_rng_below(r, (uint32_t)(w / 5 + 1)),
            ry = 1 + (int)px_rng_below(r, (uint32_t)(h / 5 + 1));
        int ell = (int)px_rng_below(r, 2);
        uint8_t col[3];
        for (int c = 0; c < 3; c++) col[c] = (uint8_t)px_rng_below(r, 256);
        for (int y = cy - ry < 0 ? 0 : cy - ry; y < h && y <= cy + ry; y++)
            for (int x = cx - rx < 0 ? 0 : cx - rx; x < w && x <= cx + rx; x++) {
                double dx = (double)(x - cx) / rx, dy = (double)(y - cy) / ry;
                double d2 = dx * dx + dy * dy;
                if (ell && d2 > 1) continue;
                double shade = 1.0 - 0.35 * (ell ? d2 : fabs(dy)); /* lit from above */
                uint8_t *p = base.px + ((size_t)y * w + x) * 3;
                for (int c = 0; c < 3; c++) p[c] = (uint8_t)(col[c] * shade);
            }
    }
    /* sensor noise, +-6 */
    for (size_t i = 0; i < n; i += 3) {
        uint32_t bits = px_rng_u32(r);
        for (int c = 0; c < 3; c++) {
            int v = base.px[i + c] + (int)((bits >> (c * 8)) % 13) - 6;
            base.px[i + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    *img = base;
    base.px = NULL;
out:
    px_image_free(&g1);
    px_image_free(&g2);
    px_image_free(&tex);
    px_image_free(&base);
    return rc;
}

/* Stamps a disc; returns the number of pixels it newly covered (or would,
 * when dry). */
static size_t disc(px_image *m, int cx, int cy, int rad, int dry)
{
    size_t added = 0;
    for (int y = cy - rad; y <= cy + rad; y++) {
        if (y < 0 || y >= m->h) continue;
        for (int x = cx - rad; x <= cx + rad; x++) {
            if (x < 0 || x >= m->w) continue;
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) > rad * rad) continue;
            uint8_t *p = m->px + (size_t)y * m->w + x;
            if (!*p) {
                added++;
                if (!dry) *p = 255;
            }
        }
    }
    return added;
}

int pb_mask_generate(int w, int h, double lo, double hi, uint64_t seed, uint64_t index,
                     px_image *mask, double *coverage)
{
    int rc = px_image_alloc(mask, w, h, 1, NULL, NULL, 0);
    if (rc) return rc;
    px_rng r;
    px_rng_seed(&r, px_hash64(seed ^ 0x6d61736bULL), index * 2 + 1);
    size_t total = (size_t)w * h;
    double target = lo + (hi - lo) * px_rng_float(&r);
    size_t want = (size_t)ceil(target * (double)total), cap = (size_t)floor(hi * (double)total);
    if (want > cap) want = cap;
    size_t have = 0;
    int side = w < h ? w : h;
    int rad0 = side / 25 > 1 ? side / 25 : 1;
    double x = 0, y = 0, ang = 0;
    int steps = 0;
    long budget = 20000000; /* stamps; then fill the rest in raster order */
    while (have < want && budget-- > 0) {
        if (steps-- <= 0) { /* a new stroke */
            x = px_rng_below(&r, (uint32_t)w);
            y = px_rng_below(&r, (uint32_t)h);
            ang = px_rng_float(&r) * 6.283185307;
            steps = 20 + (int)px_rng_below(&r, 40);
        }
        ang += (px_rng_float(&r) - 0.5) * 0.8;
        x += cos(ang) * rad0 * 0.6;
        y += sin(ang) * rad0 * 0.6;
        if (x < 0 || y < 0 || x >= w || y >= h) {
            steps = 0;
            continue;
        }
        int rad = rad0;
        /* shrink the brush so one stamp cannot pass the upper bound */
        while (rad > 0 && have + disc(mask, (int)x, (int)y, rad, 1) > cap) rad /= 2;
        have += disc(mask, (int)x, (int)y, rad, 0);
        if (cap - have < 4 && have >= want) break;
        if (rad == 0 && have < want) { /* a single pixel at the edge of the budget */
            uint8_t *p = mask->px + (size_t)(int)y * w + (int)x;
            if (!*p && have < cap) {
                *p = 255;
                have++;
            }
        }
    }
    for (size_t i = 0; i < total && have < want; i++)
        if (!mask->px[i]) {
            mask->px[i] = 255;
            have++;
        }
    *coverage = (double)have / (double)total;
    return 0;
}

static int finish(pb_payload *out, const px_image *mask, char *err, size_t errlen)
{
    px_buf_init(&out->mask, (size_t)1 << 30);
    px_encode_opts mo = {.fmt = PX_FMT_PNG, .png_level = 6};
    return px_encode(mask, &mo, &out->mask, err, errlen);
}

int pb_payload_generate(int w, int h, double lo, double hi, uint64_t seed, uint64_t index,
                        enum px_format fmt, pb_payload *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    px_img_limits lim = {0};
    int rc = px_image_check(w, h, 3, &lim, err, errlen);
    if (rc) return rc;
    if (!(lo >= 0 && lo <= hi && hi <= 1))
        return px_errf(err, errlen, PX_EINVAL, "mask coverage range must be within 0..1");
    px_rng r;
    px_rng_seed(&r, px_hash64(seed), index * 2);
    px_image img = {0}, mask = {0};
    rc = gen_image(w, h, &r, &img);
    if (rc) {
        px_errf(err, errlen, rc, "cannot make a %dx%d image", w, h);
        goto fail;
    }
    out->w = w;
    out->h = h;
    out->fmt = fmt == PX_FMT_JPEG ? PX_FMT_JPEG : PX_FMT_PNG;
    px_buf_init(&out->image, (size_t)1 << 30);
    px_encode_opts io = {.fmt = out->fmt, .quality = 90, .png_level = 6};
    if ((rc = px_encode(&img, &io, &out->image, err, errlen))) goto fail;
    if ((rc = pb_mask_generate(w, h, lo, hi, seed, index, &mask, &out->coverage))) goto fail;
    if ((rc = finish(out, &mask, err, errlen))) goto fail;
    px_image_free(&img);
    px_image_free(&mask);
    return 0;
fail:
    px_image_free(&img);
    px_image_free(&mask);
    pb_payload_free(out);
    return rc;
}

int pb_payload_from_file(const char *path, double lo, double hi, uint64_t seed, uint64_t index,
                         pb_payload *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    px_image img = {0}, mask = {0};
    int rc = px_decode_file(path, NULL, &img, err, errlen);
    if (rc) return rc;
    out->w = img.w;
    out->h = img.h;
    px_image_free(&img);
    /* send the file's own bytes, not a re-encoding */
    FILE *f = fopen(path, "rb");
    if (!f) return px_errf(err, errlen, PX_EIO, "cannot open %s", path);
    px_buf_init(&out->image, (size_t)256 << 20);
    uint8_t chunk[65536];
    size_t k;
    while (!rc && (k = fread(chunk, 1, sizeof chunk, f)) > 0) rc = px_buf_append(&out->image, chunk, k);
    fclose(f);
    if (rc) {
        px_errf(err, errlen, rc, "cannot read %s", path);
        goto fail;
    }
    out->fmt = px_format_sniff(out->image.data, out->image.len);
    if ((rc = pb_mask_generate(out->w, out->h, lo, hi, seed, index, &mask, &out->coverage))) goto fail;
    if ((rc = finish(out, &mask, err, errlen))) goto fail;
    px_image_free(&mask);
    return 0;
fail:
    px_image_free(&mask);
    pb_payload_free(out);
    return rc;
}

void pb_payload_free(pb_payload *p)
{
    px_buf_free(&p->image);
    px_buf_free(&p->mask);
}
