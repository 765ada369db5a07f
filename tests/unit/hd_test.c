/*
 * hd_test.c — the large-image strategies: when each applies, CROP window
 * geometry (margin, shifting inward at borders), and assembly that pastes
 * only hole pixels (each window only its own blob's).
 */
#include "core/err.h"
#include "core/rng.h"
#include "harness.h"
#include "engine/engine_impl.h"
#include "serve/hd.h"
#include "serve/kind_inpaint.h"

#include <stdlib.h>
#include <string.h>

static px_image img_make(int w, int h, int c)
{
    px_image im;
    px_image_alloc(&im, w, h, c, NULL, NULL, 0);
    for (size_t i = 0; i < (size_t)w * h * c; i++) im.px[i] = (uint8_t)(i * 13 + 7);
    return im;
}

static void box(px_image *m, int x0, int y0, int x1, int y1)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) m->px[(size_t)y * m->w + x] = 255;
}

static px_hd_params params(enum px_hd_strategy s)
{
    px_hd_params p;
    px_hd_defaults(&p);
    p.strategy = s;
    return p;
}

TEST(t_names_and_defaults)
{
    T_EQ_INT(px_hd_parse("crop"), PX_HD_CROP);
    T_EQ_INT(px_hd_parse("Resize"), PX_HD_RESIZE);
    T_EQ_INT(px_hd_parse("ORIGINAL"), PX_HD_ORIGINAL);
    T_EQ_INT(px_hd_parse("zoom"), -1);
    px_hd_params p;
    px_hd_defaults(&p);
    T_EQ_INT(p.strategy, PX_HD_CROP);
    T_EQ_INT(p.crop_trigger, 800);
    T_EQ_INT(p.crop_margin, 128);
    T_EQ_INT(p.resize_limit, 1280);
}

TEST(t_below_trigger_is_original)
{
    px_image im = img_make(640, 480, 3), m = img_make(640, 480, 1);
    memset(m.px, 0, 640 * 480);
    box(&m, 100, 100, 150, 150);
    px_hd_params p = params(PX_HD_CROP);
    px_hd_plan plan;
    char err[200];
    T_EQ_INT(px_hd_plan_make(&im, &m, &p, &plan, err, sizeof err), 0);
    T_EQ_INT(plan.used, PX_HD_ORIGINAL);
    T_EQ_INT(plan.nwin, 1);
    T_EQ_INT(plan.win[0].image.w, 640);
    px_hd_free(&plan);
    /* empty mask: nothing to run */
    memset(m.px, 0, 640 * 480);
    T_EQ_INT(px_hd_plan_make(&im, &m, &p, &plan, err, sizeof err), 0);
    T_EQ_INT(plan.nwin, 0);
    px_hd_free(&plan);
    px_image_free(&im);
    px_image_free(&m);
}

TEST(t_crop_windows)
{
    px_image im = img_make(2000, 1000, 3), m = img_make(2000, 1000, 1);
    memset(m.px, 0, 2000 * 1000);
    box(&m, 900, 400, 1000, 450);  /* middle: full margin */
    box(&m, 10, 20, 40, 60);       /* top-left corner: shifted inward */
    box(&m, 1950, 900, 2000, 1000);/* bottom-right corner */
    px_hd_params p = params(PX_HD_CROP);
    px_hd_plan plan;
    char err[200];
    T_EQ_INT(px_hd_plan_make(&im, &m, &p, &plan, err, sizeof err), 0);
    T_EQ_INT(plan.used, PX_HD_CROP);
    T_EQ_INT(plan.nwin, 3);
    /* Blobs are labelled in raster order of their first pixel. */
    const px_hd_window *a = &plan.win[0], *b = &plan.win[1], *c = &plan.win[2];
    T_EQ_INT(a->x, 0);   /* corner blob 30x40 + 2*128 = 286x296, from 0 */
    T_EQ_INT(a->y, 0);
    T_EQ_INT(a->w, 286);
    T_EQ_INT(a->h, 296);
    T_EQ_INT(b->x, 772); /* 900 - 128 */
    T_EQ_INT(b->y, 272);
    T_EQ_INT(b->w, 356);
    T_EQ_INT(b->h, 306);
    T_EQ_INT(c->x + c->w, 2000); /* pushed back inside, keeping its size */
    T_EQ_INT(c->y + c->h, 1000);
    T_EQ_INT(c->w, 306);
    T_EQ_INT(c->h, 356);
    for (int i = 0; i < 3; i++) {
        const px_hd_window *w = &plan.win[i];
        T_EQ_INT(w->image.w, w->w);
        T_EQ_INT(w->mask.h, w->h);
        /* the window's pixels are the original's */
        T_EQ_MEM(w->image.px, im.px + ((size_t)w->y * 2000 + w->x) * 3, (size_t)w->w * 3);
    }
    px_hd_free(&plan);
    px_image_free(&im);
    px_image_free(&m);
}

TEST(t_crop_assembly_pastes_own_blob_only)
{
    px_image im = img_make(1000, 300, 3), m = img_make(1000, 300, 1), out = img_make(1000, 300, 3);
    memset(m.px, 0, 1000 * 300);
    box(&m, 400, 100, 420, 120);
    box(&m, 430, 100, 450, 120); /* close: the windows overlap */
    px_hd_params p = params(PX_HD_CROP);
    p.crop_margin = 50;
    p.crop_merge = 0; /* IOPaint's one window per blob */
    px_hd_plan plan;
    char err[200];
    T_EQ_INT(px_hd_plan_make(&im, &m, &p, &plan, err, sizeof err), 0);
    T_EQ_INT(plan.nwin, 2);
    /* Fake engine outputs: window i paints everything with value 10*(i+1). */
    for (int i = 0; i < plan.nwin; i++)
        memset(plan.win[i].out.px, 10 * (i + 1), (size_t)plan.win[i].w * plan.win[i].h * 3);
    T_EQ_INT(px_hd_assemble(&plan, &im, &m, &out), 0);
    for (int y = 0; y < 300; y++)
        for (int x = 0; x < 1000; x++) {
            size_t o = (size_t)y * 1000 + x;
            int want = !m.px[o] ? -1 : x < 425 ? 10 : 20;
            for (int k = 0; k < 3; k++) {
                if (want < 0) T_EQ_INT(out.px[o * 3 + k], im.px[o * 3 + k]);
                else T_EQ_INT(out.px[o * 3 + k], want);
            }
        }
    px_hd_free(&plan);
    px_image_free(&im);
    px_image_free(&m);
    px_image_free(&out);
}

TEST(t_resize_plan_and_assembly)
{
    px_image im = img_make(2560, 1280, 3), m = img_make(2560, 1280, 1), out = img_make(2560, 1280, 3);
    memset(m.px, 0, 2560 * 1280);
    box(&m, 1000, 500, 1100, 600);
    px_hd_params p = params(PX_HD_RESIZE);
    px_hd_plan plan;
    char err[200];
    T_EQ_INT(px_hd_plan_make(&im, &m, &p, &plan, err, sizeof err), 0);
    T_EQ_INT(plan.used, PX_HD_RESIZE);
    T_EQ_INT(plan.nwin, 1);
    T_EQ_INT(plan.win[0].image.w, 1280);
    T_EQ_INT(plan.win[0].image.h, 640);
    memset(plan.win[0].out.px, 77, 1280 * 640 * 3);
    T_EQ_INT(px_hd_assemble(&plan, &im, &m, &out), 0);
    for (size_t o = 0; o < 2560 * 1280; o++)
        T_EQ_INT(out.px[o * 3], m.px[o] ? 77 : im.px[o * 3]);
    px_hd_free(&plan);
    /* Smaller than the limit: Original. */
    p.resize_limit = 4000;
    T_EQ_INT(px_hd_plan_make(&im, &m, &p, &plan, err, sizeof err), 0);
    T_EQ_INT(plan.used, PX_HD_ORIGINAL);
    px_hd_free(&plan);
    p.resize_limit = 2;
    T_EQ_INT(px_hd_plan_make(&im, &m, &p, &plan, err, sizeof err), PX_EINVAL);
    px_image_free(&im);
    px_image_free(&m);
    px_image_free(&out);
}

/* A seeded random mask: a few boxes and strokes covering roughly 5-30 %. */
static void random_mask(px_image *m, px_rng *rng)
{
    memset(m->px, 0, (size_t)m->w * m->h);
    int n = 1 + (int)px_rng_below(rng, 6);
    for (int i = 0; i < n; i++) {
        int bw = 8 + (int)px_rng_below(rng, (uint32_t)(m->w / 3)), bh = 8 + (int)px_rng_below(rng, (uint32_t)(m->h / 3));
        int x0 = (int)px_rng_below(rng, (uint32_t)(m->w - bw)), y0 = (int)px_rng_below(rng, (uint32_t)(m->h - bh));
        if (px_rng_below(rng, 2)) bh = 6 + (int)px_rng_below(rng, 10); /* a stroke */
        box(m, x0, y0, x0 + bw, y0 + bh);
    }
}

/* A fake engine whose fill depends only on the global position, so that
 * bucketed and exact plans must assemble the same image. */
static void fake_fill(px_hd_plan *plan, int imgw)
{
    for (int i = 0; i < plan->nwin; i++) {
        px_hd_window *w = &plan->win[i];
        for (int r = 0; r < w->h; r++)
            for (int c = 0; c < w->w; c++)
                for (int k = 0; k < 3; k++)
                    w->out.px[((size_t)r * w->w + c) * 3 + k] =
                        (uint8_t)(((w->y + r) * imgw + (w->x + c)) * 7 + k * 31 + 1);
    }
}

/* Windows of random masks map to the bucket set (px_hd_window_shapes),
 * hold their blob with its margin where the image allows, and assemble to
 * exactly what exact windows give: the image outside the mask, every hole
 * pixel from its own blob's window. */
TEST(t_crop_bucket_windows)
{
    static const int sizes[][2] = {{1024, 1024}, {1500, 900}, {1000, 1000}};
    px_rng rng;
    px_rng_seed(&rng, 16, 1);
    char err[200];
    for (int s = 0; s < 3; s++) {
        int W = sizes[s][0], H = sizes[s][1];
        px_image im = img_make(W, H, 3), m = img_make(W, H, 1);
        px_image o1 = img_make(W, H, 3), o2 = img_make(W, H, 3);
        px_hd_params exact = params(PX_HD_CROP), bucketed;
        exact.crop_merge = 0; /* window i of both plans is blob i's */
        bucketed = exact;
        bucketed.crop_bucket = 256;
        int bw[32], bh[32];
        int nb = px_hd_window_shapes(&bucketed, W, H, bw, bh, 32);
        /* Squares of 256, 512, ... capped at the image's sides. */
        T_EQ_INT(nb, (W > H ? W : H) / 256 + ((W > H ? W : H) % 256 != 0));
        for (int k = 0; k < nb; k++) {
            int side = 256 * (k + 1);
            T_EQ_INT(bw[k], side < W ? side : W);
            T_EQ_INT(bh[k], side < H ? side : H);
        }
        T_EQ_INT(px_hd_window_shapes(&exact, W, H, bw + nb, bh + nb, 1), 0);
        for (int round = 0; round < 8; round++) {
            random_mask(&m, &rng);
            px_hd_plan pe, pb;
            T_EQ_INT(px_hd_plan_make(&im, &m, &exact, &pe, err, sizeof err), 0);
            T_EQ_INT(px_hd_plan_make(&im, &m, &bucketed, &pb, err, sizeof err), 0);
            T_EQ_INT(pb.nwin, pe.nwin);
            for (int i = 0; i < pb.nwin; i++) {
                const px_hd_window *b = &pb.win[i], *e = &pe.win[i];
                int found = 0;
                for (int k = 0; k < nb; k++) found |= b->w == bw[k] && b->h == bh[k];
                T_TRUE(found);
                /* The exact window lies inside the bucketed one (or both
                 * are clamped to the image on that axis). */
                T_CMP_INT(b->w, >=, e->w);
                T_CMP_INT(b->h, >=, e->h);
                T_TRUE(b->x >= 0 && b->y >= 0 && b->x + b->w <= W && b->y + b->h <= H);
                T_TRUE(b->x <= e->x && b->x + b->w >= e->x + e->w);
                T_TRUE(b->y <= e->y && b->y + b->h >= e->y + e->h);
                T_EQ_MEM(b->image.px, im.px + ((size_t)b->y * W + b->x) * 3, (size_t)b->w * 3);
            }
            fake_fill(&pe, W);
            fake_fill(&pb, W);
            T_EQ_INT(px_hd_assemble(&pe, &im, &m, &o1), 0);
            T_EQ_INT(px_hd_assemble(&pb, &im, &m, &o2), 0);
            T_EQ_MEM(o2.px, o1.px, (size_t)W * H * 3);
            for (size_t o = 0; o < (size_t)W * H; o++)
                if (!m.px[o]) T_EQ_MEM(o2.px + o * 3, im.px + o * 3, 3);
            px_hd_free(&pe);
            px_hd_free(&pb);
        }
        px_image_free(&im);
        px_image_free(&m);
        px_image_free(&o1);
        px_image_free(&o2);
    }
}

static long long plan_pixels(const px_hd_plan *plan)
{
    long long n = 0;
    for (int i = 0; i < plan->nwin; i++) n += (long long)plan->win[i].w * plan->win[i].h;
    return n;
}

/* Merging: two close blobs share a window that pastes both; strokes across
 * a 1024² image become one run of the whole image; far blobs stay apart
 * (t_crop_windows); and on random masks, exact or bucketed, merged plans
 * run no more pixels than one window per blob and assemble the same image. */
TEST(t_crop_merge)
{
    char err[200];
    px_image im = img_make(1000, 300, 3), m = img_make(1000, 300, 1), out = img_make(1000, 300, 3);
    memset(m.px, 0, 1000 * 300);
    box(&m, 400, 100, 420, 120);
    box(&m, 430, 100, 450, 120);
    px_hd_params p = params(PX_HD_CROP);
    p.crop_margin = 50;
    px_hd_plan plan;
    T_EQ_INT(px_hd_plan_make(&im, &m, &p, &plan, err, sizeof err), 0);
    T_EQ_INT(plan.nwin, 1);
    T_EQ_INT(plan.win[0].x, 350);
    T_EQ_INT(plan.win[0].w, 150);
    memset(plan.win[0].out.px, 10, (size_t)plan.win[0].w * plan.win[0].h * 3);
    T_EQ_INT(px_hd_assemble(&plan, &im, &m, &out), 0);
    for (size_t o = 0; o < 1000 * 300; o++)
        T_EQ_INT(out.px[o * 3], m.px[o] ? 10 : im.px[o * 3]);
    px_hd_free(&plan);
    px_image_free(&im);
    px_image_free(&m);
    px_image_free(&out);

    im = img_make(1024, 1024, 3), m = img_make(1024, 1024, 1);
    memset(m.px, 0, 1024 * 1024);
    for (int y = 100; y < 1000; y += 200) box(&m, 100, y, 900, y + 20);
    for (int bucket = 0; bucket <= 256; bucket += 256) {
        p = params(PX_HD_CROP);
        p.crop_bucket = bucket;
        T_EQ_INT(px_hd_plan_make(&im, &m, &p, &plan, err, sizeof err), 0);
        T_EQ_INT(plan.nwin, 1);
        T_EQ_INT(plan.win[0].w * plan.win[0].h, 1024 * 1024);
        px_hd_free(&plan);
    }
    px_image_free(&im);
    px_image_free(&m);

    /* a speckled mask (~1000 dots, past the pairwise limit): one window */
    im = img_make(1500, 1100, 3), m = img_make(1500, 1100, 1);
    memset(m.px, 0, 1500 * 1100);
    for (int y = 20; y < 1080; y += 40)
        for (int x = 20; x < 1480; x += 40) box(&m, x, y, x + 3, y + 3);
    p = params(PX_HD_CROP);
    T_EQ_INT(px_hd_plan_make(&im, &m, &p, &plan, err, sizeof err), 0);
    T_EQ_INT(plan.nwin, 1);
    px_hd_free(&plan);
    px_image_free(&im);
    px_image_free(&m);

    px_rng rng;
    px_rng_seed(&rng, 17, 1);
    int W = 1500, H = 1100;
    im = img_make(W, H, 3), m = img_make(W, H, 1);
    px_image o1 = img_make(W, H, 3), o2 = img_make(W, H, 3);
    for (int round = 0; round < 24; round++) {
        random_mask(&m, &rng);
        px_hd_params on = params(PX_HD_CROP), off;
        on.crop_bucket = round % 2 ? 256 : 0;
        off = on;
        off.crop_merge = 0;
        px_hd_plan pm, pa;
        T_EQ_INT(px_hd_plan_make(&im, &m, &on, &pm, err, sizeof err), 0);
        T_EQ_INT(px_hd_plan_make(&im, &m, &off, &pa, err, sizeof err), 0);
        T_CMP_INT(pm.nwin, <=, pa.nwin);
        T_TRUE(plan_pixels(&pm) <= plan_pixels(&pa));
        fake_fill(&pm, W);
        fake_fill(&pa, W);
        T_EQ_INT(px_hd_assemble(&pm, &im, &m, &o1), 0);
        T_EQ_INT(px_hd_assemble(&pa, &im, &m, &o2), 0);
        T_EQ_MEM(o1.px, o2.px, (size_t)W * H * 3);
        px_hd_free(&pm);
        px_hd_free(&pa);
    }
    px_image_free(&im);
    px_image_free(&m);
    px_image_free(&o1);
    px_image_free(&o2);
}

/* The bucket per engine: configured wins; auto is 256 on a GPU, 0 on the CPU. */
TEST(t_crop_bucket_per_engine)
{
    static const px_engine_ops ops = {.name = "fake", .kind = PX_ENGINE_INPAINT};
    px_engine gpu = {.ops = &ops, .device = "cuda:0"}, cpu = {.ops = &ops, .device = "cpu"};
    T_EQ_INT(px_kind_inpaint_crop_bucket(&gpu, -1), PX_KIND_INPAINT_GPU_BUCKET);
    T_EQ_INT(px_kind_inpaint_crop_bucket(&cpu, -1), 0);
    T_EQ_INT(px_kind_inpaint_crop_bucket(&gpu, 0), 0);
    T_EQ_INT(px_kind_inpaint_crop_bucket(&cpu, 128), 128);
}

TEST_MAIN(t_names_and_defaults, t_below_trigger_is_original, t_crop_windows,
          t_crop_assembly_pastes_own_blob_only, t_resize_plan_and_assembly, t_crop_bucket_windows,
          t_crop_bucket_per_engine, t_crop_merge)
