/*
 * cli_generate.c — `pixserve generate "PROMPT" -o OUT ...` (see usage()):
 * parses the flags, opens the model (engine/zimage/zimage.h), optionally
 * reads initial latents from a safetensors file and LoRA files, generates,
 * writes the image (format from OUT's extension) and prints the seed and
 * timings.
 */
#include "serve/cli_generate.h"

#include "core/clock.h"
#include "core/err.h"
#include "engine/safetensors.h"
#include "engine/zimage/sampler.h"
#include "engine/zimage/zimage.h"
#include "image/codec.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pixserve generate \"PROMPT\" -o OUT [--model DIR | --dit F --text-encoder F\n"
            "                         --vae F --tokenizer F] [--negative-prompt S]\n"
            "                         [--width W] [--height H] [--steps N] [--seed N]\n"
            "                         [--cfg-scale X] [--latents FILE] [--threads N]\n"
            "                         [--lora FILE[:SCALE]]...\n"
            "\n"
            "Generates one image with Z-Image-Turbo on the CPU. OUT's extension picks the\n"
            "format (.png, .jpg, .jpeg, .webp).\n"
            "\n"
            "  --model DIR          a Hugging Face Z-Image directory (model_index.json,\n"
            "                       transformer/, text_encoder/, tokenizer/, vae/, scheduler/)\n"
            "  --dit F              instead of --model: the DiT (.safetensors or .gguf, ComfyUI\n"
            "  --text-encoder F     names accepted), the Qwen3 text encoder, the VAE (diffusers\n"
            "  --vae F              or FLUX ae.safetensors) and the tokenizer (tokenizer.json or\n"
            "  --tokenizer F        its directory); a component directory with config.json\n"
            "                       also works. With --model, --tokenizer overrides its own.\n"
            "  --negative-prompt S  the prompt guidance steers away from (with --cfg-scale > 0)\n"
            "  --width W, --height H  image size, multiples of 16 up to %d (default 1024)\n"
            "  --steps N            denoising steps (default 8, Turbo's)\n"
            "  --seed N             seed of the initial noise; -1 (default) picks one at random.\n"
            "                       The seed used is printed. Noise comes from PCG32 +\n"
            "                       Box-Muller: the same seed does NOT give PyTorch's noise\n"
            "                       (use --latents to reproduce another implementation)\n"
            "  --cfg-scale X        classifier-free guidance weight w: each step uses\n"
            "                       pred = pos + w*(pos - neg), pos and neg the model's outputs\n"
            "                       for the prompt and the negative prompt (twice the DiT work).\n"
            "                       0 (default) is off: Turbo is distilled to run without it\n"
            "  --latents FILE       initial latents instead of noise: a safetensors file with\n"
            "                       one float32 tensor [1, 16, H/8, W/8] (e.g. `latents` as\n"
            "                       tools/zimage_reference.py noise writes)\n"
            "  --threads N          compute threads (default: all CPUs)\n"
            "  --lora FILE[:SCALE]  a LoRA (.safetensors: PEFT/diffusers, ComfyUI or kohya key\n"
            "                       names) applied at SCALE (default 1, -100..100) as\n"
            "                       W + SCALE*(alpha/rank)*B*A; repeatable, up to %d. Keys that\n"
            "                       match no weight of the model are an error, never skipped\n",
            ZI_MAX_SIDE, ZI_MAX_LORAS);
}

typedef struct gen_args {
    const char *prompt, *out, *negative, *latents;
    const char *lora[ZI_MAX_LORAS]; /* FILE[:SCALE] as given */
    int nlora;
    zi_model_paths paths;
    int width, height, steps, threads;
    long long seed;
    float cfg;
} gen_args;

static int parse_int(const char *flag, const char *v, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "pixserve generate: %s wants an integer in %lld..%lld, got '%s'\n", flag,
                lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

static const struct {
    const char *name;
    size_t off; /* of a const char * in gen_args */
} str_flags[] = {
    {"-o", offsetof(gen_args, out)},
    {"--output", offsetof(gen_args, out)},
    {"--model", offsetof(gen_args, paths.dir)},
    {"--dit", offsetof(gen_args, paths.dit)},
    {"--text-encoder", offsetof(gen_args, paths.text_encoder)},
    {"--vae", offsetof(gen_args, paths.vae)},
    {"--tokenizer", offsetof(gen_args, paths.tokenizer)},
    {"--negative-prompt", offsetof(gen_args, negative)},
    {"--latents", offsetof(gen_args, latents)},
};

static const struct {
    const char *name;
    size_t off; /* of an int in gen_args */
    long long lo, hi;
} int_flags[] = {
    {"--width", offsetof(gen_args, width), 1, ZI_MAX_SIDE},
    {"--height", offsetof(gen_args, height), 1, ZI_MAX_SIDE},
    {"--steps", offsetof(gen_args, steps), 1, ZI_MAX_STEPS},
    {"--threads", offsetof(gen_args, threads), 0, 4096},
};

/* One flag with its value; -1 on a bad value, 1 for an unknown flag. */
static int parse_flag(gen_args *a, const char *f, const char *v)
{
    long long x;
    for (size_t i = 0; i < sizeof str_flags / sizeof str_flags[0]; i++)
        if (!strcmp(f, str_flags[i].name)) {
            *(const char **)((char *)a + str_flags[i].off) = v;
            return 0;
        }
    for (size_t i = 0; i < sizeof int_flags / sizeof int_flags[0]; i++)
        if (!strcmp(f, int_flags[i].name)) {
            if (parse_int(f, v, int_flags[i].lo, int_flags[i].hi, &x)) return -1;
            *(int *)((char *)a + int_flags[i].off) = (int)x;
            return 0;
        }
    if (!strcmp(f, "--lora")) {
        if (a->nlora == ZI_MAX_LORAS) {
            fprintf(stderr, "pixserve generate: at most %d --lora\n", ZI_MAX_LORAS);
            return -1;
        }
        a->lora[a->nlora++] = v;
        return 0;
    }
    if (!strcmp(f, "--seed")) {
        if (parse_int(f, v, -1, (1ll << 53) - 1, &x)) return -1;
        a->seed = x;
        return 0;
    }
    if (strcmp(f, "--cfg-scale")) return 1;
    char *end;
    a->cfg = strtof(v, &end);
    if (end == v || *end || !(a->cfg >= 0 && a->cfg <= 100)) {
        fprintf(stderr, "pixserve generate: --cfg-scale wants a number in 0..100, got '%s'\n", v);
        return -1;
    }
    return 0;
}

/* 0 to run, else the exit status (0 after --help). */
static int parse_args(gen_args *a, int argc, char **argv, int *status)
{
    *a = (gen_args){.width = 1024, .height = 1024, .steps = 8, .seed = -1};
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
            usage(stdout);
            return *status = 0, 1;
        }
        if (f[0] != '-' || !strcmp(f, "-")) {
            if (a->prompt) {
                fprintf(stderr, "pixserve generate: one prompt only (quote it): '%s'\n", f);
                return *status = 2, 1;
            }
            a->prompt = f;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pixserve generate: %s needs a value\n", f);
            return *status = 2, 1;
        }
        int rc = parse_flag(a, f, argv[++i]);
        if (rc) {
            if (rc > 0) fprintf(stderr, "pixserve generate: unknown flag %s (see --help)\n", f);
            return *status = 2, 1;
        }
    }
    const zi_model_paths *p = &a->paths;
    const char *missing = !a->prompt ? "a prompt" : !a->out ? "-o OUT" : NULL;
    if (!missing && !p->dir && (!p->dit || !p->text_encoder || !p->vae || !p->tokenizer))
        missing = "--model DIR, or all of --dit, --text-encoder, --vae and --tokenizer";
    if (!missing && p->dir && (p->dit || p->text_encoder || p->vae))
        missing = "either --model or the component files, not both";
    if (missing) {
        fprintf(stderr, "pixserve generate: needs %s (see --help)\n", missing);
        return *status = 2, 1;
    }
    const char *ext = strrchr(a->out, '.');
    if (px_format_parse(ext ? ext + 1 : "") == PX_FMT_UNKNOWN) {
        fprintf(stderr, "pixserve generate: OUT must end in .png, .jpg, .jpeg or .webp\n");
        return *status = 2, 1;
    }
    return 0;
}

/* The initial latents of FILE: its one F32 tensor (or the one named
 * `latents`), [1, C, h, w] or [C, h, w], checked against the request. */
static int read_latents(const char *path, int c, int h, int w, float **out, char *err,
                        size_t errlen)
{
    px_st *st;
    int rc = px_st_open(path, &st, err, errlen);
    if (rc) return rc;
    const px_st_tensor *t = px_st_count(st) == 1 ? px_st_at(st, 0) : px_st_find(st, "latents");
    int64_t want[4] = {1, c, h, w};
    if (!t) {
        rc = px_errf(err, errlen, PX_EINVAL, "%s: holds %d tensors and none is named 'latents'",
                     path, px_st_count(st));
    } else if (t->dtype != PX_ST_F32) {
        rc = px_errf(err, errlen, PX_EINVAL, "%s: tensor %s is %s, expected F32", path, t->name,
                     px_st_dtype_name(t->dtype));
    } else {
        int off = t->ndim == 3 ? 1 : 0;
        bool ok = t->ndim == 3 || t->ndim == 4;
        for (int i = 0; ok && i < t->ndim; i++) ok = t->shape[i] == want[i + off];
        if (!ok) {
            char found[128];
            size_t at = 0;
            for (int i = 0; i < t->ndim && at < sizeof found; i++)
                at += (size_t)snprintf(found + at, sizeof found - at, "%s%lld", i ? ", " : "",
                                       (long long)t->shape[i]);
            rc = px_errf(err, errlen, PX_EINVAL,
                         "%s: tensor %s: expected [1, %d, %d, %d] for a %dx%d image, found [%s]",
                         path, t->name, c, h, w, w * 8, h * 8, found);
        } else if (!(*out = malloc(t->nelem * sizeof **out))) {
            rc = px_errf(err, errlen, PX_ENOMEM, "out of memory");
        } else {
            px_st_to_f32(t, *out);
        }
    }
    px_st_close(st);
    return rc;
}

/* FILE[:SCALE] into path (buf) and scale; the part after the last ':' is a
 * scale only if it reads as a number. */
static int lora_spec(const char *spec, char *buf, size_t n, float *scale, char *err,
                     size_t errlen)
{
    const char *c = strrchr(spec, ':');
    char *end = NULL;
    float m = c ? strtof(c + 1, &end) : 1.0f;
    if (!c || end == c + 1 || *end) {
        c = spec + strlen(spec);
        m = 1.0f;
    }
    if ((size_t)(c - spec) >= n || c == spec)
        return px_errf(err, errlen, PX_EINVAL, "--lora %s: no file name", spec);
    if (!(m >= -100 && m <= 100))
        return px_errf(err, errlen, PX_EINVAL, "--lora %s: scale %s is outside -100..100", spec,
                       c + 1);
    memcpy(buf, spec, (size_t)(c - spec));
    buf[c - spec] = 0;
    *scale = m;
    return 0;
}

/* Opens the --lora files for the model's DiT into own (the caller frees
 * them) and u. */
static int open_loras(const gen_args *a, const zi_model *m, zi_lora **own, zi_lora_use *u,
                      char *err, size_t errlen)
{
    for (int i = 0; i < a->nlora; i++) {
        char path[4096], inner[1024];
        zi_lora *l = NULL;
        int rc = lora_spec(a->lora[i], path, sizeof path, &u[i].scale, err, errlen);
        if (rc) return rc;
        int64_t t0 = px_now_ns();
        if ((rc = zi_lora_open(path, zi_model_dit_config(m), &l, inner, sizeof inner)))
            return px_errf(err, errlen, rc, "--lora: %s", inner);
        u[i].lora = own[i] = l;
        fprintf(stderr, "lora %s: scale %g, rank %d, %d deltas, %s keys, %.1f MB, %.1f ms\n", path,
                (double)u[i].scale, zi_lora_max_rank(l), zi_lora_count(l),
                zi_lora_spelling_name(zi_lora_spelling_of(l)), (double)zi_lora_bytes(l) / 1e6,
                px_ns_to_ms(px_now_ns() - t0));
    }
    return 0;
}

static void progress(void *user, int step, int steps, double ms)
{
    (void)user;
    fprintf(stderr, "step %d/%d: %.1f ms\n", step, steps, ms);
}

static void print_stats(const gen_args *a, const zi_gen_result *r, double open_ms)
{
    const zi_gen_stats *s = &r->stats;
    const double mb = 1024.0 * 1024.0;
    printf("%s: %dx%d, seed %lld%s, %d steps, cfg-scale %g\n", a->out, r->image.w, r->image.h,
           (long long)s->seed, a->latents ? " (unused: --latents)" : "", s->steps, (double)a->cfg);
    printf("model open      %9.1f ms\n", open_ms);
    printf("text encode     %9.1f ms  %d tokens%s", s->text_ms, s->prompt_tokens,
           s->prompt_truncated ? " (prompt truncated to 512 tokens)" : "");
    if (a->cfg > 0)
        printf(", negative %d tokens%s", s->negative_tokens,
               s->negative_truncated ? " (truncated to 512)" : "");
    printf("  peak RSS %.0f MB\n", (double)s->peak_rss_text / mb);
    printf("denoise         %9.1f ms  per step:", s->denoise_ms);
    for (int i = 0; i < s->steps; i++) printf(" %.1f", s->step_ms[i]);
    printf("  peak RSS %.0f MB\n", (double)s->peak_rss_denoise / mb);
    printf("vae decode      %9.1f ms  peak RSS %.0f MB\n", s->vae_ms, (double)s->peak_rss_vae / mb);
    printf("total           %9.1f ms%s\n", s->total_ms,
           s->peak_per_stage ? "" : "  (peaks are the process's so far: no per-stage reset)");
}

int px_cli_generate(int argc, char **argv)
{
    gen_args a;
    int status;
    if (parse_args(&a, argc, argv, &status)) return status;
    if (a.threads > 0) zi_set_threads(a.threads);
    char err[1024];
    zi_model *m = NULL;
    float *lat = NULL;
    zi_gen_result r = {0};
    zi_lora_use loras[ZI_MAX_LORAS] = {{0}};
    zi_lora *own[ZI_MAX_LORAS] = {0};
    int64_t t0 = px_now_ns();
    /* BF16 weights stay BF16: the matmuls widen them exactly, and the
     * 12 GB DiT would otherwise take 24 GB. */
    zi_model_opts mo = {.keep_bf16 = 1};
    int rc = zi_model_open(&a.paths, &mo, &m, err, sizeof err);
    double open_ms = px_ns_to_ms(px_now_ns() - t0);
    /* A size that is not a multiple is zi_generate's error to report. */
    int mult = m ? zi_model_size_multiple(m) : 0;
    if (!rc && a.latents && a.width % mult == 0 && a.height % mult == 0) {
        int f = mult / zi_model_dit_config(m)->patch;
        rc = read_latents(a.latents, zi_model_dit_config(m)->in_channels, a.height / f, a.width / f,
                          &lat, err, sizeof err);
    }
    if (!rc) rc = open_loras(&a, m, own, loras, err, sizeof err);
    if (!rc) {
        zi_gen_params p = {.prompt = a.prompt,
                           .negative_prompt = a.negative,
                           .width = a.width,
                           .height = a.height,
                           .steps = a.steps,
                           .seed = a.seed,
                           .cfg_scale = a.cfg,
                           .latents = lat,
                           .loras = a.nlora ? loras : NULL,
                           .nloras = a.nlora,
                           .progress = progress};
        rc = zi_generate(m, NULL, &p, &r, err, sizeof err);
    }
    if (!rc) rc = px_encode_file(a.out, &r.image, NULL, err, sizeof err);
    if (!rc)
        print_stats(&a, &r, open_ms);
    else
        fprintf(stderr, "pixserve generate: %s\n", err);
    zi_gen_result_free(&r);
    for (int i = 0; i < a.nlora; i++) zi_lora_free(own[i]);
    free(lat);
    zi_model_close(m);
    return rc ? 1 : 0;
}
