/*
 * png_encode.c — PNG encode/decode speed at 1024x1024 RGB on real photos
 * (a benchmark, not a test: it asserts only that every variant round-trips
 * exactly). For docs/benchmarks/png.md.
 *
 *   png_encode [--reps N] [--size S] [--json FILE]
 *
 * For each skimage photograph (resized to SxS, default 1024) and each
 * encoder variant, interleaved (photo by photo, rep by rep, every variant in
 * turn, so a noisy shared machine slows them alike): CPU-seconds of the
 * calling thread and wall time of one encode, the output size, and the time
 * of px_png_decode on that output (png_fast.c, else libpng) and of libpng
 * alone (px_png_decode_libpng). Prints the median per variant over reps,
 * averaged over the photos; --json writes the raw per-photo medians.
 *
 * Variants: libpng's defaults (level 6, adaptive filters), px_png_encode at
 * levels 1 and 6 (what the server runs), libpng level 1 with the Up / Sub /
 * Paeth filter and zlib's Z_RLE or Z_HUFFMAN_ONLY strategies, and, when
 * built with libdeflate, a one-IDAT PNG written here with libdeflate levels
 * 1 and 4 (Up filter).
 */
#include "core/buf.h"
#include "core/err.h"
#include "image/codec.h"
#include "image/image.h"
#include "image/png.h"
#include "image/resize.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#if defined(__has_include)
#if __has_include(<libdeflate.h>)
#include <libdeflate.h>
#define HAVE_LIBDEFLATE 1
#endif
#endif

#define SKIMAGE_DIR "/usr/lib/python3/dist-packages/skimage/data"

static double clock_ms(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ------------------------------------------------------------ libpng */

static void buf_write(png_structp png, png_bytep data, size_t len)
{
    if (px_buf_append(png_get_io_ptr(png), data, len)) png_error(png, "out of memory");
}

static void buf_flush(png_structp png)
{
    (void)png;
}

/* level -1 = libpng's default; filter 0 = libpng's default (adaptive);
 * strategy -1 = zlib's default. */
static int libpng_encode(const px_image *img, int level, int filter, int strategy, px_buf *out)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, out, buf_write, buf_flush);
    png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (level >= 0) png_set_compression_level(png, level);
    if (filter) png_set_filter(png, PNG_FILTER_TYPE_BASE, filter);
    if (strategy >= 0) png_set_compression_strategy(png, strategy);
    png_write_info(png, info);
    for (int y = 0; y < img->h; y++) png_write_row(png, img->px + (size_t)y * img->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

/* ------------------------------------------------------------ libdeflate */

#ifdef HAVE_LIBDEFLATE
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* One chunk: length, type, data, CRC over type and data. */
static void chunk(px_buf *out, const char *type, const uint8_t *data, size_t n)
{
    uint8_t hdr[8], crc[4];
    put32(hdr, (uint32_t)n);
    memcpy(hdr + 4, type, 4);
    px_buf_append(out, hdr, 8);
    if (n) px_buf_append(out, data, n);
    uint32_t c = (uint32_t)libdeflate_crc32(0, type, 4);
    if (n) c = (uint32_t)libdeflate_crc32(c, data, n); /* NULL would restart it */
    put32(crc, c);
    px_buf_append(out, crc, 4);
}

/* RGB 8-bit, every row filtered Up, one zlib stream in one IDAT. */
static int deflate_encode(const px_image *img, int level, px_buf *out)
{
    size_t stride = (size_t)img->w * 3, raw_n = (stride + 1) * (size_t)img->h;
    uint8_t *raw = malloc(raw_n);
    struct libdeflate_compressor *z = libdeflate_alloc_compressor(level);
    size_t cap = libdeflate_zlib_compress_bound(z, raw_n);
    uint8_t *zbuf = malloc(cap);
    for (int y = 0; y < img->h; y++) {
        uint8_t *r = raw + (size_t)y * (stride + 1);
        const uint8_t *cur = img->px + (size_t)y * stride, *up = cur - stride;
        r[0] = y ? 2 : 0; /* Up; the first row has nothing above: None */
        if (y)
            for (size_t i = 0; i < stride; i++) r[1 + i] = (uint8_t)(cur[i] - up[i]);
        else
            memcpy(r + 1, cur, stride);
    }
    size_t zn = libdeflate_zlib_compress(z, raw, raw_n, zbuf, cap);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13] = {0};
    put32(ihdr, (uint32_t)img->w);
    put32(ihdr + 4, (uint32_t)img->h);
    ihdr[8] = 8, ihdr[9] = 2; /* depth 8, RGB */
    px_buf_append(out, sig, 8);
    chunk(out, "IHDR", ihdr, 13);
    chunk(out, "IDAT", zbuf, zn);
    chunk(out, "IEND", NULL, 0);
    libdeflate_free_compressor(z);
    free(zbuf);
    free(raw);
    return zn ? 0 : -1;
}
#endif

/* ------------------------------------------------------------ variants */

enum { V_LIBPNG_DEFAULT, V_PX1, V_PX6, V_UP_DEF, V_UP_RLE, V_SUB_RLE, V_PAETH_RLE, V_UP_HUFF,
       V_DEFL1, V_DEFL4, NV };
static const char *const vnames[NV] = {
    "libpng-defaults (l6, adaptive)", "px_png_encode l1 (server default)", "px_png_encode l6",
    "libpng l1 up default-strategy", "libpng l1 up Z_RLE", "libpng l1 sub Z_RLE",
    "libpng l1 paeth Z_RLE", "libpng l1 up Z_HUFFMAN_ONLY", "libdeflate l1 up", "libdeflate l4 up"};

static int run_variant(int v, const px_image *img, px_buf *out)
{
    char err[128];
    switch (v) {
    case V_LIBPNG_DEFAULT: return libpng_encode(img, -1, 0, -1, out);
    case V_PX1: return px_png_encode(img, 1, out, err, sizeof err);
    case V_PX6: return px_png_encode(img, 6, out, err, sizeof err);
    case V_UP_DEF: return libpng_encode(img, 1, PNG_FILTER_UP, -1, out);
    case V_UP_RLE: return libpng_encode(img, 1, PNG_FILTER_UP, Z_RLE, out);
    case V_SUB_RLE: return libpng_encode(img, 1, PNG_FILTER_SUB, Z_RLE, out);
    case V_PAETH_RLE: return libpng_encode(img, 1, PNG_FILTER_PAETH, Z_RLE, out);
    case V_UP_HUFF: return libpng_encode(img, 1, PNG_FILTER_UP, Z_HUFFMAN_ONLY, out);
#ifdef HAVE_LIBDEFLATE
    case V_DEFL1: return deflate_encode(img, 1, out);
    case V_DEFL4: return deflate_encode(img, 4, out);
#endif
    default: return 1; /* not built */
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct cell {
    double cpu[64], wall[64], dec[64], decl[64]; /* decl: libpng alone */
    size_t bytes;
};

/* Encodes photo img with every variant, reps times interleaved; checks the
 * round trip; fills cells[v]. Returns 0, or -1 if a round trip differs. */
static int bench_photo(const px_image *img, int reps, struct cell *cells)
{
    for (int r = 0; r < reps; r++)
        for (int v = 0; v < NV; v++) {
            px_buf out;
            px_buf_init(&out, (size_t)1 << 30);
            double c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID), w0 = clock_ms(CLOCK_MONOTONIC);
            int rc = run_variant(v, img, &out);
            cells[v].cpu[r] = clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
            cells[v].wall[r] = clock_ms(CLOCK_MONOTONIC) - w0;
            if (rc) {
                px_buf_free(&out);
                cells[v].bytes = 0;
                continue;
            }
            cells[v].bytes = out.len;
            px_image back;
            char err[160];
            double d0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
            rc = px_png_decode(out.data, out.len, NULL, &back, err, sizeof err);
            cells[v].dec[r] = clock_ms(CLOCK_THREAD_CPUTIME_ID) - d0;
            px_image lb;
            d0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
            if (!px_png_decode_libpng(out.data, out.len, NULL, &lb, err, sizeof err)) px_image_free(&lb);
            cells[v].decl[r] = clock_ms(CLOCK_THREAD_CPUTIME_ID) - d0;
            int same = !rc && back.w == img->w && back.h == img->h && back.c == 3 &&
                       !memcmp(back.px, img->px, (size_t)img->w * img->h * 3);
            px_image_free(&back);
            px_buf_free(&out);
            if (!same) {
                fprintf(stderr, "%s: round trip differs (%s)\n", vnames[v], rc ? err : "pixels");
                return -1;
            }
        }
    return 0;
}

int main(int argc, char **argv)
{
    int reps = 9, size = 1024;
    const char *json = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
        else {
            fprintf(stderr, "usage: png_encode [--reps N<=64] [--size S] [--json FILE]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 64) reps = 9;
    static const char *const photos[] = {"astronaut.png", "coffee.png", "chelsea.png",
                                         "rocket.jpg", "motorcycle_left.png"};
    enum { NP = sizeof photos / sizeof *photos };
    static struct cell cells[NP][NV];
    int used[NP] = {0};
    for (int p = 0; p < NP; p++) {
        char path[512], err[160];
        snprintf(path, sizeof path, "%s/%s", SKIMAGE_DIR, photos[p]);
        px_image src, rgb = {0}, img;
        if (px_decode_file(path, NULL, &src, err, sizeof err)) {
            fprintf(stderr, "skip %s: %s\n", photos[p], err);
            continue;
        }
        if (src.c != 3) {
            /* RGB only: drop alpha / widen gray. */
            rgb = (px_image){src.w, src.h, 3, malloc((size_t)src.w * src.h * 3)};
            for (size_t i = 0; i < (size_t)src.w * src.h; i++)
                for (int k = 0; k < 3; k++) rgb.px[i * 3 + k] = src.px[i * src.c + (src.c >= 3 ? k : 0)];
            px_image_free(&src);
            src = rgb;
        }
        if (px_resize(&src, size, size, &img)) return 1;
        px_image_free(&src);
        if (bench_photo(&img, reps, cells[p])) return 1;
        used[p] = 1;
        px_image_free(&img);
    }
    FILE *jf = json ? fopen(json, "w") : NULL;
    if (jf) fprintf(jf, "{\"size\":%d,\"reps\":%d,\"variants\":[", size, reps);
    printf("%dx%d RGB, %d reps interleaved, median per photo then mean over photos\n", size, size, reps);
    printf("%-36s %9s %9s %9s %9s %9s\n", "variant", "cpu_ms", "wall_ms", "KiB", "dec_ms", "libpng_ms");
    for (int v = 0; v < NV; v++) {
        double cpu = 0, wall = 0, dec = 0, decl = 0, kib = 0;
        int np = 0;
        if (jf) fprintf(jf, "%s{\"name\":\"%s\",\"photos\":[", v ? "," : "", vnames[v]);
        for (int p = 0; p < NP; p++) {
            if (!used[p] || !cells[p][v].bytes) continue;
            double c = median(cells[p][v].cpu, reps), w = median(cells[p][v].wall, reps);
            double d = median(cells[p][v].dec, reps), dl = median(cells[p][v].decl, reps);
            if (jf)
                fprintf(jf, "%s{\"photo\":\"%s\",\"encode_cpu_ms\":%.2f,\"encode_wall_ms\":%.2f,"
                        "\"bytes\":%zu,\"decode_cpu_ms\":%.2f,\"decode_libpng_cpu_ms\":%.2f}",
                        np ? "," : "", photos[p], c, w, cells[p][v].bytes, d, dl);
            cpu += c, wall += w, dec += d, decl += dl, kib += (double)cells[p][v].bytes / 1024, np++;
        }
        if (jf) fprintf(jf, "]}");
        if (!np) continue;
        printf("%-36s %9.1f %9.1f %9.0f %9.1f %9.1f\n", vnames[v], cpu / np, wall / np, kib / np, dec / np,
               decl / np);
    }
    if (jf) fprintf(jf, "]}\n"), fclose(jf);
    return 0;
}
