/*
 * codec_fixtures.h — what the codec tests (codec_test.c, codec_png_test.c,
 * codec_jpeg_test.c, codec_webp_test.c) share: test images, encode/decode
 * that fail the test on error, hand-made PNG chunks, a libjpeg writer for
 * what our encoder does not write (APP1, progression scripts, CMYK), EXIF
 * payloads and the address-space cap of the limit tests. Static inline, as
 * each test is its own program and uses only some of them.
 */
#ifndef PX_TESTS_CODEC_FIXTURES_H
#define PX_TESTS_CODEC_FIXTURES_H

#include "core/buf.h"
#include "core/err.h"
#include "harness.h"
#include "image/codec.h"

#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jpeglib.h>
#include <zlib.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

/* Smooth gradients with some edges: what photos look like to a codec. */
static inline px_image pattern(int w, int h, int c)
{
    px_image img;
    T_EQ_INT(px_image_alloc(&img, w, h, c, NULL, NULL, 0), 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                double v = 128 + 90 * sin(x * 0.11 + k) * cos(y * 0.07 - k) +
                           ((x / 16 + y / 16) % 2 ? 20 : -20);
                if (k == 3) v = (x * 7 + y * 3) % 256; /* alpha: its own ramp */
                img.px[((size_t)y * w + x) * c + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return img;
}

static inline double psnr(const px_image *a, const px_image *b)
{
    T_EQ_INT(a->w, b->w);
    T_EQ_INT(a->h, b->h);
    T_EQ_INT(a->c, b->c);
    double se = 0;
    size_t n = (size_t)a->w * a->h * a->c;
    for (size_t i = 0; i < n; i++) se += (a->px[i] - b->px[i]) * (double)(a->px[i] - b->px[i]);
    return se == 0 ? 99 : 10 * log10(255.0 * 255.0 / (se / (double)n));
}

static inline px_buf encode(const px_image *img, enum px_format fmt, int quality)
{
    px_buf b;
    px_buf_init(&b, 64 << 20);
    px_encode_opts o = {.fmt = fmt, .quality = quality, .png_level = -1};
    char err[200] = "";
    int rc = px_encode(img, &o, &b, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "encode %s: %d %s", px_format_name(fmt), rc, err);
    return b;
}

static inline px_image decode(const uint8_t *data, size_t n)
{
    px_image img;
    char err[200] = "";
    int rc = px_decode(data, n, NULL, &img, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "decode: %d %s", rc, err);
    return img;
}

/* Decode that must fail with `code` and a message containing `text`. */
#define T_DECODE_FAILS(data, n, lim, code, text)                                                   \
    do {                                                                                           \
        px_image bad_ = {.w = 1, .px = (uint8_t *)1};                                              \
        char e_[256] = "";                                                                         \
        T_EQ_INT(px_decode((data), (n), (lim), &bad_, e_, sizeof e_), (code));                     \
        T_CONTAINS(e_, (text));                                                                    \
        T_TRUE(bad_.px == NULL && bad_.w == 0);                                                    \
    } while (0)

/* The CRC of PNG chunks is zlib's CRC-32. */
static inline uint32_t crc32_of(const uint8_t *p, size_t n)
{
    return (uint32_t)crc32(0L, p, (uInt)n);
}

static inline void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static inline uint32_t get32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Appends a PNG chunk with a correct CRC. */
static inline void png_chunk(px_buf *b, const char *type, const uint8_t *data, uint32_t len)
{
    uint8_t hdr[8];
    put32be(hdr, len);
    memcpy(hdr + 4, type, 4);
    T_EQ_INT(px_buf_append(b, hdr, 8), 0);
    T_EQ_INT(px_buf_append(b, data, len), 0);
    uint8_t crc[4];
    put32be(crc, crc32_of(b->data + b->len - len - 4, len + 4));
    T_EQ_INT(px_buf_append(b, crc, 4), 0);
}

/* A PNG that is only a signature, an IHDR of w×h RGB and a small IDAT. */
static inline px_buf png_header_only(uint32_t w, uint32_t h)
{
    px_buf b;
    px_buf_init(&b, 1 << 20);
    T_EQ_INT(px_buf_append(&b, "\x89PNG\r\n\x1a\n", 8), 0);
    uint8_t ihdr[13] = {0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0};
    put32be(ihdr, w);
    put32be(ihdr + 4, h);
    png_chunk(&b, "IHDR", ihdr, 13);
    png_chunk(&b, "IDAT", (const uint8_t *)"\x78\x01\x01\x00\x00\xff\xff", 7);
    png_chunk(&b, "IEND", NULL, 0);
    return b;
}

/* Offset of PNG chunk `type` (its length field), or 0. */
static inline size_t png_find(const px_buf *b, const char *type)
{
    for (size_t i = 8; i + 8 <= b->len; i += 12 + get32be(b->data + i))
        if (memcmp(b->data + i + 4, type, 4) == 0) return i;
    return 0;
}

/* --- libjpeg writer with APP1, progression scripts and CMYK ------------------------ */

struct jpeg_spec {
    int quality;
    bool progressive;
    const jpeg_scan_info *scans;
    int nscans;
    const uint8_t *app1;
    size_t app1_len;
    J_COLOR_SPACE in_space;   /* 0: from c */
    J_COLOR_SPACE jpeg_space; /* 0: libjpeg's default for in_space */
    bool no_adobe;
};

static inline void spec_jpeg_error(j_common_ptr ci)
{
    longjmp(*(jmp_buf *)ci->client_data, 1);
}

static inline px_buf write_jpeg(const px_image *img, const struct jpeg_spec *s)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    jmp_buf jb;
    ci.err = jpeg_std_error(&je);
    je.error_exit = spec_jpeg_error;
    ci.client_data = &jb;
    if (setjmp(jb)) px_tfail(__FILE__, __LINE__, "libjpeg could not write the fixture");
    jpeg_create_compress(&ci);
    unsigned char *mem = NULL;
    unsigned long memn = 0;
    jpeg_mem_dest(&ci, &mem, &memn);
    ci.image_width = (JDIMENSION)img->w;
    ci.image_height = (JDIMENSION)img->h;
    ci.input_components = img->c;
    ci.in_color_space = s->in_space ? s->in_space : img->c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    if (s->jpeg_space) jpeg_set_colorspace(&ci, s->jpeg_space);
    if (s->no_adobe) ci.write_Adobe_marker = FALSE;
    jpeg_set_quality(&ci, s->quality ? s->quality : 90, TRUE);
    if (s->progressive) jpeg_simple_progression(&ci);
    if (s->scans) {
        ci.scan_info = s->scans;
        ci.num_scans = s->nscans;
    }
    jpeg_start_compress(&ci, TRUE);
    if (s->app1) jpeg_write_marker(&ci, JPEG_APP0 + 1, s->app1, (unsigned)s->app1_len);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = img->px + (size_t)ci.next_scanline * img->w * img->c;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    px_buf b;
    px_buf_init(&b, 16 << 20);
    T_EQ_INT(px_buf_append(&b, mem, memn), 0);
    free(mem);
    return b;
}

/* Offset of the first JPEG marker `m` (its 0xFF byte) before the scan, or 0. */
static inline size_t jpeg_find(const px_buf *b, uint8_t m)
{
    for (size_t i = 2; i + 4 <= b->len && b->data[i] == 0xff;
         i += 2 + ((size_t)b->data[i + 2] << 8 | b->data[i + 3])) {
        if (b->data[i + 1] == m) return i;
        if (b->data[i + 1] == 0xda) break;
    }
    return 0;
}

/* --- EXIF payloads and the image that shows orientation ---------------------------- */

static inline void put16(uint8_t *p, unsigned v, bool le)
{
    p[le ? 0 : 1] = (uint8_t)v, p[le ? 1 : 0] = (uint8_t)(v >> 8);
}

static inline void put32(uint8_t *p, uint32_t v, bool le)
{
    put16(p + (le ? 0 : 2), v & 0xffff, le);
    put16(p + (le ? 2 : 0), v >> 16, le);
}

/* "Exif\0\0" + TIFF with IFD0 = {Make (ASCII, by offset), Orientation}. */
static inline size_t exif_payload(uint8_t *buf, bool le, int orientation)
{
    memcpy(buf, "Exif\0\0", 6);
    uint8_t *t = buf + 6;
    memcpy(t, le ? "II" : "MM", 2);
    put16(t + 2, 42, le);
    put32(t + 4, 8, le);
    put16(t + 8, 2, le);
    uint8_t *e = t + 10;
    put16(e, 0x010f, le), put16(e + 2, 2, le), put32(e + 4, 6, le), put32(e + 8, 38, le);
    e += 12;
    put16(e, 0x0112, le), put16(e + 2, 3, le), put32(e + 4, 1, le), put32(e + 8, 0, le);
    put16(e + 8, (unsigned)orientation, le);
    put32(e + 12, 0, le); /* no IFD1 */
    memcpy(t + 38, "Canon", 6);
    return 6 + 44;
}

/* 48x32 of 3x2 solid 16-px blocks, block b coloured cols[b]. */
static const uint8_t block_colours[6][3] = {{230, 20, 20},  {20, 230, 20},  {20, 20, 230},
                                            {230, 230, 20}, {230, 20, 230}, {20, 230, 230}};

static inline px_image blocks(void)
{
    px_image img;
    T_EQ_INT(px_image_alloc(&img, 48, 32, 3, NULL, NULL, 0), 0);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 48; x++)
            memcpy(img.px + (y * 48 + x) * 3, block_colours[y / 16 * 3 + x / 16], 3);
    return img;
}

/* --- limits: nothing big may be allocated before the check --------------------------- */

/* Caps this forked test's address space near its current size, so a decoder
 * that allocated pixels before checking the limits would get ENOMEM (and
 * fail the test) instead of quietly succeeding. Sanitizer runtimes reserve
 * terabytes of shadow memory, so there the cap is left off. */
static inline void cap_address_space(unsigned headroom_mb)
{
#ifdef SANITIZED
    (void)headroom_mb;
#else
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    T_TRUE(f && fscanf(f, "%lu", &pages) == 1);
    fclose(f);
    rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)headroom_mb << 20);
    struct rlimit rl = {cap, cap};
    T_EQ_INT(setrlimit(RLIMIT_AS, &rl), 0);
#endif
}

#endif
