/*
 * codec_test.c — PNG, JPEG and WebP through px_decode/px_encode: round trips
 * of every PNG colour type (written here with libpng where our encoder does
 * not produce them), JPEG and WebP within PSNR bounds, EXIF orientation,
 * CMYK, and every rejection path (caps, zero sizes, truncation, corruption,
 * animation, unknown formats, output caps) with its code and message. All
 * fixtures are generated here; the only files read are Debian's photos.
 */
#include "core/buf.h"
#include "core/err.h"
#include "harness.h"
#include "image/codec.h"
#include "image/exif.h"
#include "image/jpeg.h"

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>
#include <zlib.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

/* --- helpers ------------------------------------------------------------------ */

/* Smooth gradients with some edges: what photos look like to a codec. */
static px_image pattern(int w, int h, int c)
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

static double psnr(const px_image *a, const px_image *b)
{
    T_EQ_INT(a->w, b->w);
    T_EQ_INT(a->h, b->h);
    T_EQ_INT(a->c, b->c);
    double se = 0;
    size_t n = (size_t)a->w * a->h * a->c;
    for (size_t i = 0; i < n; i++) se += (a->px[i] - b->px[i]) * (double)(a->px[i] - b->px[i]);
    return se == 0 ? 99 : 10 * log10(255.0 * 255.0 / (se / (double)n));
}

static px_buf encode(const px_image *img, enum px_format fmt, int quality)
{
    px_buf b;
    px_buf_init(&b, 64 << 20);
    px_encode_opts o = {.fmt = fmt, .quality = quality, .png_level = -1};
    char err[200] = "";
    int rc = px_encode(img, &o, &b, err, sizeof err);
    if (rc) px_tfail(__FILE__, __LINE__, "encode %s: %d %s", px_format_name(fmt), rc, err);
    return b;
}

static px_image decode(const uint8_t *data, size_t n)
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
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    return (uint32_t)crc32(0L, p, (uInt)n);
}

static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static uint32_t get32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Appends a PNG chunk with a correct CRC. */
static void png_chunk(px_buf *b, const char *type, const uint8_t *data, uint32_t len)
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
static px_buf png_header_only(uint32_t w, uint32_t h)
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
static size_t png_find(const px_buf *b, const char *type)
{
    for (size_t i = 8; i + 8 <= b->len; i += 12 + get32be(b->data + i))
        if (memcmp(b->data + i + 4, type, 4) == 0) return i;
    return 0;
}

/* --- libpng writer for the variants our encoder does not produce -------------------- */

struct png_spec {
    int w, h, color_type, depth, interlace;
    const uint8_t *rows; /* packed rows as libpng expects them for depth */
    const png_color *palette;
    int npalette;
    const uint8_t *trns; /* palette alpha, ntrns entries */
    int ntrns;
    const png_color_16 *trans_color; /* gray/RGB key colour */
};

static void spec_write(png_structp png, png_bytep data, size_t len)
{
    T_EQ_INT(px_buf_append(png_get_io_ptr(png), data, len), 0);
}

static void spec_flush(png_structp png)
{
    (void)png;
}

static px_buf write_png(const struct png_spec *s)
{
    px_buf b;
    px_buf_init(&b, 16 << 20);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) px_tfail(__FILE__, __LINE__, "libpng could not write the fixture");
    png_set_write_fn(png, &b, spec_write, spec_flush);
    png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->depth, s->color_type,
                 s->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->npalette);
    if (s->trns || s->trans_color)
        png_set_tRNS(png, info, s->trns, s->ntrns, (png_color_16p)s->trans_color);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep *rows = malloc(sizeof *rows * (size_t)s->h);
    for (int y = 0; y < s->h; y++) rows[y] = (png_bytep)s->rows + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return b;
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

static jmp_buf spec_jmp;

static void spec_jpeg_error(j_common_ptr ci)
{
    (void)ci;
    longjmp(spec_jmp, 1);
}

static px_buf write_jpeg(const px_image *img, const struct jpeg_spec *s)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    je.error_exit = spec_jpeg_error;
    if (setjmp(spec_jmp)) px_tfail(__FILE__, __LINE__, "libjpeg could not write the fixture");
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
static size_t jpeg_find(const px_buf *b, uint8_t m)
{
    for (size_t i = 2; i + 4 <= b->len && b->data[i] == 0xff;
         i += 2 + ((size_t)b->data[i + 2] << 8 | b->data[i + 3])) {
        if (b->data[i + 1] == m) return i;
        if (b->data[i + 1] == 0xda) break;
    }
    return 0;
}

/* --- EXIF payloads ---------------------------------------------------------------- */

static void put16(uint8_t *p, unsigned v, bool le)
{
    p[le ? 0 : 1] = (uint8_t)v, p[le ? 1 : 0] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v, bool le)
{
    put16(p + (le ? 0 : 2), v & 0xffff, le);
    put16(p + (le ? 2 : 0), v >> 16, le);
}

/* "Exif\0\0" + TIFF with IFD0 = {Make (ASCII, by offset), Orientation}. */
static size_t exif_payload(uint8_t *buf, bool le, int orientation)
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

/* --- sniffing and names ------------------------------------------------------------- */

TEST(t_sniff_and_names)
{
    T_EQ_INT(px_format_sniff((const uint8_t *)"\x89PNG\r\n\x1a\nxx", 10), PX_FMT_PNG);
    T_EQ_INT(px_format_sniff((const uint8_t *)"\xff\xd8\xff\xe0", 4), PX_FMT_JPEG);
    T_EQ_INT(px_format_sniff((const uint8_t *)"RIFF\x10\0\0\0WEBPVP8 ", 16), PX_FMT_WEBP);
    T_EQ_INT(px_format_sniff((const uint8_t *)"RIFF\x10\0\0\0WAVEfmt ", 16), PX_FMT_UNKNOWN);
    T_EQ_INT(px_format_sniff((const uint8_t *)"\x89PNG", 4), PX_FMT_UNKNOWN);
    T_EQ_INT(px_format_sniff((const uint8_t *)"GIF89a", 6), PX_FMT_UNKNOWN);
    T_EQ_INT(px_format_sniff(NULL, 0), PX_FMT_UNKNOWN);
    T_EQ_STR(px_format_name(PX_FMT_JPEG), "jpeg");
    T_EQ_STR(px_format_name(PX_FMT_UNKNOWN), "unknown");
    T_EQ_STR(px_format_name((enum px_format)42), "unknown");
    T_EQ_STR(px_format_mime(PX_FMT_WEBP), "image/webp");
    T_EQ_STR(px_format_mime(PX_FMT_PNG), "image/png");
    T_EQ_STR(px_format_mime(PX_FMT_UNKNOWN), "application/octet-stream");
    T_EQ_INT(px_format_parse("JPG"), PX_FMT_JPEG);
    T_EQ_INT(px_format_parse("Jpeg"), PX_FMT_JPEG);
    T_EQ_INT(px_format_parse("png"), PX_FMT_PNG);
    T_EQ_INT(px_format_parse("WebP"), PX_FMT_WEBP);
    T_EQ_INT(px_format_parse("gif"), PX_FMT_UNKNOWN);
    T_EQ_INT(px_format_parse(""), PX_FMT_UNKNOWN);
    T_EQ_INT(px_format_parse(NULL), PX_FMT_UNKNOWN);
}

/* --- PNG ------------------------------------------------------------------------------ */

/* decode(encode(x)) == x at every level, on both encoders (levels 0-2:
 * the libdeflate writer; 3-9: libpng), for each channel count and for
 * degenerate shapes (one pixel, one column, two rows). */
TEST(t_png_roundtrip_encoder)
{
    static const int dims[][2] = {{37, 23}, {1, 1}, {1, 40}, {300, 2}};
    for (int d = 0; d < 4; d++)
        for (int c = 1; c <= 4; c++) {
            if (c == 2) continue;
            int w = dims[d][0], h = dims[d][1];
            px_image img = pattern(w, h, c);
            static const int levels[] = {-1, 0, 1, 2, 3, 9};
            size_t sizes[6];
            for (int l = 0; l < 6; l++) {
                px_buf b;
                px_buf_init(&b, 1 << 20);
                px_encode_opts o = {.fmt = PX_FMT_PNG, .png_level = levels[l]};
                T_EQ_INT(px_encode(&img, &o, &b, NULL, 0), 0);
                T_EQ_INT(px_format_sniff(b.data, b.len), PX_FMT_PNG);
                sizes[l] = b.len;
                px_image back = decode(b.data, b.len);
                T_EQ_INT(back.c, c);
                T_EQ_INT(back.w, w);
                T_EQ_INT(back.h, h);
                T_EQ_MEM(back.px, img.px, (size_t)w * h * c);
                px_image_free(&back);
                px_buf_free(&b);
            }
            T_EQ_INT(sizes[0], sizes[2]); /* the default level is 1 */
            if (d == 0) T_CMP_INT(sizes[1], >, sizes[5]); /* stored is bigger than level 9 */
            px_image_free(&img);
        }
}

TEST(t_png_gray_alpha_and_16bit)
{
    /* 8-bit gray+alpha -> RGBA with gray replicated. */
    uint8_t ga[4 * 3 * 2];
    for (int i = 0; i < 12; i++) ga[2 * i] = (uint8_t)(i * 20), ga[2 * i + 1] = (uint8_t)(255 - i);
    px_buf b = write_png(&(struct png_spec){.w = 4,
                                            .h = 3,
                                            .color_type = PNG_COLOR_TYPE_GRAY_ALPHA,
                                            .depth = 8,
                                            .interlace = 0,
                                            .rows = ga});
    px_image img = decode(b.data, b.len);
    T_EQ_INT(img.c, 4);
    for (int i = 0; i < 12; i++) {
        for (int k = 0; k < 3; k++) T_EQ_INT(img.px[4 * i + k], i * 20);
        T_EQ_INT(img.px[4 * i + 3], 255 - i);
    }
    px_image_free(&img);
    px_buf_free(&b);

    /* 16-bit RGB and gray+alpha: scaled (rounded) to 8 bits. */
    uint16_t v[5 * 2 * 3];
    uint8_t be[sizeof v];
    for (int i = 0; i < 30; i++) {
        v[i] = (uint16_t)(i * 2221 + 7);
        be[2 * i] = (uint8_t)(v[i] >> 8), be[2 * i + 1] = (uint8_t)v[i];
    }
    b = write_png(&(struct png_spec){
        .w = 5, .h = 2, .color_type = PNG_COLOR_TYPE_RGB, .depth = 16, .interlace = 0, .rows = be});
    img = decode(b.data, b.len);
    T_EQ_INT(img.c, 3);
    for (int i = 0; i < 30; i++) T_NEAR(img.px[i], v[i] / 257.0, 0.5001);
    px_image_free(&img);
    px_buf_free(&b);
    b = write_png(&(struct png_spec){.w = 5,
                                     .h = 3,
                                     .color_type = PNG_COLOR_TYPE_GRAY_ALPHA,
                                     .depth = 16,
                                     .interlace = 0,
                                     .rows = be});
    img = decode(b.data, b.len);
    T_EQ_INT(img.c, 4);
    for (int i = 0; i < 15; i++) {
        T_NEAR(img.px[4 * i], v[2 * i] / 257.0, 0.5001);
        T_EQ_INT(img.px[4 * i + 1], img.px[4 * i]);
        T_NEAR(img.px[4 * i + 3], v[2 * i + 1] / 257.0, 0.5001);
    }
    px_image_free(&img);
    px_buf_free(&b);
}

TEST(t_png_palette)
{
    static const png_color pal[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 99, 199}};
    static const uint8_t alpha[2] = {0, 128};
    uint8_t idx[6 * 2];
    for (int i = 0; i < 12; i++) idx[i] = (uint8_t)(i % 4);
    /* 8-bit indices without tRNS -> RGB. */
    px_buf b = write_png(&(struct png_spec){.w = 6,
                                            .h = 2,
                                            .color_type = PNG_COLOR_TYPE_PALETTE,
                                            .depth = 8,
                                            .interlace = 0,
                                            .rows = idx,
                                            .palette = pal,
                                            .npalette = 4});
    px_image img = decode(b.data, b.len);
    T_EQ_INT(img.c, 3);
    for (int i = 0; i < 12; i++) {
        const png_color *p = &pal[i % 4];
        T_EQ_INT(img.px[3 * i], p->red);
        T_EQ_INT(img.px[3 * i + 1], p->green);
        T_EQ_INT(img.px[3 * i + 2], p->blue);
    }
    px_image_free(&img);
    px_buf_free(&b);
    /* With tRNS covering the first two entries -> RGBA, the rest opaque. */
    b = write_png(&(struct png_spec){.w = 6,
                                     .h = 2,
                                     .color_type = PNG_COLOR_TYPE_PALETTE,
                                     .depth = 8,
                                     .interlace = 0,
                                     .rows = idx,
                                     .palette = pal,
                                     .npalette = 4,
                                     .trns = alpha,
                                     .ntrns = 2});
    img = decode(b.data, b.len);
    T_EQ_INT(img.c, 4);
    for (int i = 0; i < 12; i++) {
        T_EQ_INT(img.px[4 * i], pal[i % 4].red);
        T_EQ_INT(img.px[4 * i + 3], i % 4 < 2 ? alpha[i % 4] : 255);
    }
    px_image_free(&img);
    px_buf_free(&b);
    /* 2-bit packed indices: 4 pixels a byte, rows padded. */
    uint8_t packed[2 * 2] = {0x1b, 0xc0, 0xe4, 0x40}; /* 0123 3... / 3210 1... */
    b = write_png(&(struct png_spec){.w = 5,
                                     .h = 2,
                                     .color_type = PNG_COLOR_TYPE_PALETTE,
                                     .depth = 2,
                                     .interlace = 0,
                                     .rows = packed,
                                     .palette = pal,
                                     .npalette = 4});
    img = decode(b.data, b.len);
    static const int want[10] = {0, 1, 2, 3, 3, 3, 2, 1, 0, 1};
    for (int i = 0; i < 10; i++) T_EQ_INT(img.px[3 * i + 2], pal[want[i]].blue);
    px_image_free(&img);
    px_buf_free(&b);
}

TEST(t_png_low_depth_and_key_colours)
{
    /* 1-bit gray -> 0/255; 4-bit gray -> v*17. */
    uint8_t bits[2] = {0xa5, 0x0f}; /* 10100101 / 00001111 */
    px_buf b = write_png(&(struct png_spec){.w = 8,
                                            .h = 2,
                                            .color_type = PNG_COLOR_TYPE_GRAY,
                                            .depth = 1,
                                            .interlace = 0,
                                            .rows = bits});
    px_image img = decode(b.data, b.len);
    T_EQ_INT(img.c, 1);
    for (int i = 0; i < 16; i++) T_EQ_INT(img.px[i], (bits[i / 8] >> (7 - i % 8) & 1) * 255);
    px_image_free(&img);
    px_buf_free(&b);
    uint8_t nib[2] = {0x0f, 0x7a};
    b = write_png(&(struct png_spec){.w = 4,
                                     .h = 1,
                                     .color_type = PNG_COLOR_TYPE_GRAY,
                                     .depth = 4,
                                     .interlace = 0,
                                     .rows = nib});
    img = decode(b.data, b.len);
    T_EQ_INT(img.px[0], 0);
    T_EQ_INT(img.px[1], 255);
    T_EQ_INT(img.px[2], 7 * 17);
    T_EQ_INT(img.px[3], 10 * 17);
    px_image_free(&img);
    px_buf_free(&b);

    /* Gray with a tRNS key colour -> RGBA, transparent exactly at the key. */
    uint8_t g[6] = {1, 50, 50, 2, 50, 3};
    png_color_16 key = {.gray = 50};
    b = write_png(&(struct png_spec){.w = 3,
                                     .h = 2,
                                     .color_type = PNG_COLOR_TYPE_GRAY,
                                     .depth = 8,
                                     .interlace = 0,
                                     .rows = g,
                                     .trans_color = &key});
    img = decode(b.data, b.len);
    T_EQ_INT(img.c, 4);
    for (int i = 0; i < 6; i++) {
        T_EQ_INT(img.px[4 * i + 2], g[i]);
        T_EQ_INT(img.px[4 * i + 3], g[i] == 50 ? 0 : 255);
    }
    px_image_free(&img);
    px_buf_free(&b);
    /* RGB with a key colour. */
    uint8_t rgb[6] = {10, 20, 30, 10, 20, 31};
    png_color_16 rkey = {.red = 10, .green = 20, .blue = 30};
    b = write_png(&(struct png_spec){.w = 2,
                                     .h = 1,
                                     .color_type = PNG_COLOR_TYPE_RGB,
                                     .depth = 8,
                                     .interlace = 0,
                                     .rows = rgb,
                                     .trans_color = &rkey});
    img = decode(b.data, b.len);
    T_EQ_INT(img.c, 4);
    T_EQ_INT(img.px[3], 0);
    T_EQ_INT(img.px[7], 255);
    T_EQ_INT(img.px[6], 31);
    px_image_free(&img);
    px_buf_free(&b);
}

TEST(t_png_interlaced)
{
    px_image ref = pattern(13, 11, 3);
    px_buf b = write_png(&(struct png_spec){.w = 13,
                                            .h = 11,
                                            .color_type = PNG_COLOR_TYPE_RGB,
                                            .depth = 8,
                                            .interlace = PNG_INTERLACE_ADAM7,
                                            .rows = ref.px});
    T_EQ_INT(b.data[8 + 8 + 12], 1); /* the IHDR really says Adam7 */
    px_image img = decode(b.data, b.len);
    T_EQ_INT(img.c, 3);
    T_EQ_MEM(img.px, ref.px, 13 * 11 * 3);
    px_image_free(&img);
    px_buf_free(&b);
    px_image_free(&ref);
    /* Interlaced RGBA too. */
    ref = pattern(9, 9, 4);
    b = write_png(&(struct png_spec){.w = 9,
                                     .h = 9,
                                     .color_type = PNG_COLOR_TYPE_RGB_ALPHA,
                                     .depth = 8,
                                     .interlace = PNG_INTERLACE_ADAM7,
                                     .rows = ref.px});
    img = decode(b.data, b.len);
    T_EQ_MEM(img.px, ref.px, 9 * 9 * 4);
    px_image_free(&img);
    px_buf_free(&b);
    px_image_free(&ref);
}

/* --- JPEG ------------------------------------------------------------------------------ */

TEST(t_jpeg_quality)
{
    px_image img = pattern(64, 48, 3);
    px_buf hi = encode(&img, PX_FMT_JPEG, 95), mid = encode(&img, PX_FMT_JPEG, 90),
           lo = encode(&img, PX_FMT_JPEG, 20), def = encode(&img, PX_FMT_JPEG, 0);
    T_EQ_INT(px_format_sniff(hi.data, hi.len), PX_FMT_JPEG);
    px_image a = decode(hi.data, hi.len), b = decode(mid.data, mid.len),
             c = decode(lo.data, lo.len);
    T_EQ_INT(a.c, 3);
    double pa = psnr(&img, &a), pb = psnr(&img, &b), pc = psnr(&img, &c);
    T_CMP_DBL(pa, >, 36);
    T_CMP_DBL(pb, >, 33);
    T_CMP_DBL(pc, >, 24);
    T_CMP_DBL(pc, <, pb);
    T_CMP_INT(lo.len, <, mid.len);
    /* Quality 0 means the default, 90. */
    T_EQ_INT(def.len, mid.len);
    T_EQ_MEM(def.data, mid.data, mid.len);
    px_image_free(&a), px_image_free(&b), px_image_free(&c), px_image_free(&img);
    px_buf_free(&hi), px_buf_free(&mid), px_buf_free(&lo), px_buf_free(&def);
}

TEST(t_jpeg_gray_and_alpha)
{
    px_image gray = pattern(40, 30, 1);
    px_buf b = encode(&gray, PX_FMT_JPEG, 95);
    px_image back = decode(b.data, b.len);
    T_EQ_INT(back.c, 1);
    T_CMP_DBL(psnr(&gray, &back), >, 38);
    px_image_free(&back), px_buf_free(&b), px_image_free(&gray);

    /* RGBA: alpha dropped, colours kept. */
    px_image rgba = pattern(40, 30, 4), rgb, alpha;
    T_EQ_INT(px_image_split_alpha(&rgba, &rgb, &alpha), 0);
    b = encode(&rgba, PX_FMT_JPEG, 95);
    back = decode(b.data, b.len);
    T_EQ_INT(back.c, 3);
    T_CMP_DBL(psnr(&rgb, &back), >, 36);
    px_image_free(&back), px_buf_free(&b), px_image_free(&rgba), px_image_free(&rgb),
        px_image_free(&alpha);
}

TEST(t_jpeg_progressive_and_scan_limit)
{
    px_image img = pattern(64, 48, 1);
    px_buf b = write_jpeg(&img, &(struct jpeg_spec){.quality = 90, .progressive = true});
    px_image back = decode(b.data, b.len);
    T_CMP_DBL(psnr(&img, &back), >, 35);
    px_image_free(&back), px_buf_free(&b);

    /* DC in two passes, then every AC coefficient on its own in two passes:
     * 2 + 63 * 2 = 128 valid scans, past PX_JPEG_MAX_SCANS. */
    jpeg_scan_info scans[128];
    int n = 0;
    scans[n++] = (jpeg_scan_info){1, {0}, 0, 0, 0, 1};
    scans[n++] = (jpeg_scan_info){1, {0}, 0, 0, 1, 0};
    for (int k = 1; k < 64; k++) scans[n++] = (jpeg_scan_info){1, {0}, k, k, 0, 1};
    for (int k = 1; k < 64; k++) scans[n++] = (jpeg_scan_info){1, {0}, k, k, 1, 0};
    b = write_jpeg(&img, &(struct jpeg_spec){.quality = 90, .scans = scans, .nscans = n});
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ETOOBIG, "JPEG has more than 100 scans");
    px_buf_free(&b);
    /* DC, then each AC coefficient once: 64 scans, under the limit. */
    n = 0;
    scans[n++] = (jpeg_scan_info){1, {0}, 0, 0, 0, 0};
    for (int k = 1; k < 64; k++) scans[n++] = (jpeg_scan_info){1, {0}, k, k, 0, 0};
    b = write_jpeg(&img, &(struct jpeg_spec){.quality = 90, .scans = scans, .nscans = n});
    back = decode(b.data, b.len);
    T_CMP_DBL(psnr(&img, &back), >, 35);
    px_image_free(&back), px_buf_free(&b), px_image_free(&img);
}

TEST(t_jpeg_cmyk)
{
    /* CMYK of a known colour: C=0 M=128 Y=255 K=64 (ink amounts), which
     * is RGB (255*(1-0)*(1-k), ...) with k = 64/255. */
    px_image cmyk;
    T_EQ_INT(px_image_alloc(&cmyk, 16, 16, 4, NULL, NULL, 0), 0);
    const uint8_t ink[4] = {0, 128, 255, 64};
    const double want[3] = {255.0 * (255 - 64) / 255, (255.0 - 128) * (255 - 64) / 255, 0};
    for (int variant = 0; variant < 3; variant++) {
        /* 0: Adobe marker, inverted (as Photoshop writes); 1: no Adobe marker,
         * plain ink values; 2: YCCK with Adobe marker, inverted. */
        bool inverted = variant != 1;
        for (int i = 0; i < 256; i++)
            for (int k = 0; k < 4; k++) cmyk.px[4 * i + k] = inverted ? 255 - ink[k] : ink[k];
        struct jpeg_spec s = {.quality = 98,
                              .in_space = JCS_CMYK,
                              .jpeg_space = variant == 2 ? JCS_YCCK : JCS_CMYK,
                              .no_adobe = variant == 1};
        px_buf b = write_jpeg(&cmyk, &s);
        px_image rgb = decode(b.data, b.len);
        T_EQ_INT(rgb.c, 3);
        for (int i = 0; i < 256; i++)
            for (int k = 0; k < 3; k++) T_NEAR(rgb.px[3 * i + k], want[k], 4);
        px_image_free(&rgb), px_buf_free(&b);
    }
    px_image_free(&cmyk);
}

/* 48x32 of 3x2 solid 16-px blocks, block b coloured cols[b]. */
static const uint8_t block_colours[6][3] = {{230, 20, 20},  {20, 230, 20},  {20, 20, 230},
                                            {230, 230, 20}, {230, 20, 230}, {20, 230, 230}};

static px_image blocks(void)
{
    px_image img;
    T_EQ_INT(px_image_alloc(&img, 48, 32, 3, NULL, NULL, 0), 0);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 48; x++)
            memcpy(img.px + (y * 48 + x) * 3, block_colours[y / 16 * 3 + x / 16], 3);
    return img;
}

TEST(t_jpeg_exif_orientation)
{
    /* Where blocks "123/456" end up for each orientation (as in image_test). */
    static const struct {
        int gw, gh;
        uint8_t b[6];
    } want[9] = {
        [1] = {3, 2, {1, 2, 3, 4, 5, 6}}, [2] = {3, 2, {3, 2, 1, 6, 5, 4}},
        [3] = {3, 2, {6, 5, 4, 3, 2, 1}}, [4] = {3, 2, {4, 5, 6, 1, 2, 3}},
        [5] = {2, 3, {1, 4, 2, 5, 3, 6}}, [6] = {2, 3, {4, 1, 5, 2, 6, 3}},
        [7] = {2, 3, {6, 3, 5, 2, 4, 1}}, [8] = {2, 3, {3, 6, 2, 5, 1, 4}},
    };
    px_image img = blocks();
    for (int le = 0; le <= 1; le++)
        for (int o = 1; o <= 8; o++) {
            uint8_t app1[64];
            size_t n = exif_payload(app1, le, o);
            T_EQ_INT(px_exif_orientation(app1, n), o);
            px_buf b =
                write_jpeg(&img, &(struct jpeg_spec){.quality = 95, .app1 = app1, .app1_len = n});
            px_image back = decode(b.data, b.len);
            T_EQ_INT(back.w, want[o].gw * 16);
            T_EQ_INT(back.h, want[o].gh * 16);
            for (int gy = 0; gy < want[o].gh; gy++)
                for (int gx = 0; gx < want[o].gw; gx++) {
                    const uint8_t *p = back.px + ((gy * 16 + 8) * back.w + gx * 16 + 8) * 3;
                    const uint8_t *c = block_colours[want[o].b[gy * want[o].gw + gx] - 1];
                    for (int k = 0; k < 3; k++)
                        if (abs(p[k] - c[k]) > 30)
                            px_tfail(__FILE__, __LINE__,
                                     "%s orientation %d block (%d,%d): %d vs %d", le ? "II" : "MM",
                                     o, gx, gy, p[k], c[k]);
                }
            px_image_free(&back), px_buf_free(&b);
        }
    px_image_free(&img);
}

TEST(t_exif_parser_bounds)
{
    uint8_t p[64];
    size_t n = exif_payload(p, true, 6);
    T_EQ_INT(px_exif_orientation(p, n), 6);
    /* Every shorter prefix: never reads past n (ASan would tell), and the
     * orientation entry is found only once it is complete. */
    for (size_t k = 0; k < n; k++) {
        int o = px_exif_orientation(p, k);
        T_TRUE(o == 0 || (o == 6 && k >= 6 + 10 + 24));
    }
    T_EQ_INT(px_exif_orientation(NULL, 0), 0);
    uint8_t q[64];
    memcpy(q, p, n);
    q[5] = 'x'; /* not "Exif\0\0" */
    T_EQ_INT(px_exif_orientation(q, n), 0);
    memcpy(q, p, n);
    q[6] = 'I', q[7] = 'M'; /* mixed byte order */
    T_EQ_INT(px_exif_orientation(q, n), 0);
    memcpy(q, p, n);
    put32(q + 6 + 4, 0xfffffff0u, true); /* IFD offset far outside, would wrap */
    T_EQ_INT(px_exif_orientation(q, n), 0);
    memcpy(q, p, n);
    put32(q + 6 + 4, 4, true); /* IFD inside the TIFF header */
    T_EQ_INT(px_exif_orientation(q, n), 0);
    memcpy(q, p, n);
    put16(q + 6 + 8, 65535, true); /* entry count beyond the data: the real ones are read */
    T_EQ_INT(px_exif_orientation(q, n), 6);
    memcpy(q, p, n);
    put16(q + 6 + 8 + 2 + 12 + 8, 9, true); /* orientation 9 */
    T_EQ_INT(px_exif_orientation(q, n), 0);
    memcpy(q, p, n);
    put16(q + 6 + 8 + 2 + 12 + 2, 4, true); /* LONG instead of SHORT */
    T_EQ_INT(px_exif_orientation(q, n), 0);
    /* Big-endian with the orientation as the only entry. */
    n = exif_payload(p, false, 8);
    T_EQ_INT(px_exif_orientation(p, n), 8);
}

TEST(t_jpeg_bad_exif_is_ignored)
{
    px_image img = blocks();
    uint8_t app1[64];
    size_t n = exif_payload(app1, true, 6);
    put32(app1 + 6 + 4, 1000, true); /* IFD offset past the segment */
    px_buf b = write_jpeg(&img, &(struct jpeg_spec){.quality = 95, .app1 = app1, .app1_len = n});
    px_image back = decode(b.data, b.len);
    T_EQ_INT(back.w, 48); /* not rotated */
    T_EQ_INT(back.h, 32);
    px_image_free(&back), px_buf_free(&b), px_image_free(&img);
}

/* --- WebP ------------------------------------------------------------------------------ */

TEST(t_webp_lossy_and_lossless)
{
    px_image img = pattern(64, 48, 3);
    px_buf q90 = encode(&img, PX_FMT_WEBP, 90), q30 = encode(&img, PX_FMT_WEBP, 30),
           q100 = encode(&img, PX_FMT_WEBP, 100);
    T_EQ_INT(px_format_sniff(q90.data, q90.len), PX_FMT_WEBP);
    px_image a = decode(q90.data, q90.len), b = decode(q30.data, q30.len),
             c = decode(q100.data, q100.len);
    T_EQ_INT(a.c, 3);
    T_CMP_DBL(psnr(&img, &a), >, 32);
    T_CMP_DBL(psnr(&img, &b), <, psnr(&img, &a));
    T_CMP_INT(q30.len, <, q90.len);
    /* Quality 100 is lossless: bit-exact. */
    T_EQ_INT(c.c, 3);
    T_EQ_MEM(c.px, img.px, 64 * 48 * 3);
    /* And it is a VP8L (lossless) bitstream. */
    T_TRUE(memmem(q100.data, q100.len, "VP8L", 4) != NULL);
    px_image_free(&a), px_image_free(&b), px_image_free(&c), px_image_free(&img);
    px_buf_free(&q90), px_buf_free(&q30), px_buf_free(&q100);
}

TEST(t_webp_alpha_and_gray)
{
    px_image img = pattern(64, 48, 4);
    px_buf b = encode(&img, PX_FMT_WEBP, 85);
    px_image back = decode(b.data, b.len);
    T_EQ_INT(back.c, 4);
    /* Alpha survives lossy encoding exactly (it is coded losslessly). */
    for (int i = 0; i < 64 * 48; i++) T_EQ_INT(back.px[4 * i + 3], img.px[4 * i + 3]);
    /* Colour is lossy; compare where alpha is high (libwebp may alter
     * colour under nearly transparent pixels). */
    double se = 0;
    int n = 0;
    for (int i = 0; i < 64 * 48; i++)
        if (img.px[4 * i + 3] > 128)
            for (int k = 0; k < 3; k++, n++) se += pow(back.px[4 * i + k] - img.px[4 * i + k], 2);
    T_CMP_DBL(10 * log10(255.0 * 255.0 * n / se), >, 30);
    px_image_free(&back), px_buf_free(&b);
    /* Lossless RGBA keeps everything, even colour under alpha 0. */
    b = encode(&img, PX_FMT_WEBP, 100);
    back = decode(b.data, b.len);
    T_EQ_MEM(back.px, img.px, 64 * 48 * 4);
    px_image_free(&back), px_buf_free(&b), px_image_free(&img);
    /* Gray input comes back as RGB with equal channels. */
    px_image gray = pattern(20, 10, 1);
    b = encode(&gray, PX_FMT_WEBP, 100);
    back = decode(b.data, b.len);
    T_EQ_INT(back.c, 3);
    for (int i = 0; i < 200; i++)
        for (int k = 0; k < 3; k++) T_EQ_INT(back.px[3 * i + k], gray.px[i]);
    px_image_free(&back), px_buf_free(&b), px_image_free(&gray);
}

static void riff_chunk(px_buf *b, const char *tag, const uint8_t *data, uint32_t n)
{
    uint8_t h[8] = {(uint8_t)tag[0], (uint8_t)tag[1],   (uint8_t)tag[2],    (uint8_t)tag[3],
                    (uint8_t)n,      (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    T_EQ_INT(px_buf_append(b, h, 8), 0);
    T_EQ_INT(px_buf_append(b, data, n), 0);
    if (n & 1) T_EQ_INT(px_buf_append(b, "", 1), 0);
}

static void put24le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16);
}

TEST(t_webp_animated_refused)
{
    /* Hand-made animation: VP8X (animation flag) + ANIM + one ANMF frame
     * holding the VP8L chunk of a real still. */
    px_image img = pattern(4, 4, 4);
    px_buf still = encode(&img, PX_FMT_WEBP, 100);
    px_buf anim;
    px_buf_init(&anim, 1 << 20);
    T_EQ_INT(px_buf_append(&anim, "RIFF\0\0\0\0WEBP", 12), 0);
    uint8_t vp8x[10] = {0x02 | 0x10};
    put24le(vp8x + 4, 3), put24le(vp8x + 7, 3);
    riff_chunk(&anim, "VP8X", vp8x, 10);
    riff_chunk(&anim, "ANIM", (const uint8_t *)"\0\0\0\0\0\0", 6);
    px_buf frame;
    px_buf_init(&frame, 1 << 20);
    uint8_t fh[16] = {0};
    put24le(fh + 6, 3), put24le(fh + 9, 3), put24le(fh + 12, 100);
    T_EQ_INT(px_buf_append(&frame, fh, 16), 0);
    T_EQ_INT(px_buf_append(&frame, still.data + 12, still.len - 12), 0);
    riff_chunk(&anim, "ANMF", frame.data, (uint32_t)frame.len);
    uint32_t riff = (uint32_t)anim.len - 8;
    memcpy(anim.data + 4,
           (uint8_t[4]){(uint8_t)riff, (uint8_t)(riff >> 8), (uint8_t)(riff >> 16), 0}, 4);
    /* libwebp agrees this is an animation. */
    WebPBitstreamFeatures f;
    T_EQ_INT(WebPGetFeatures(anim.data, anim.len, &f), VP8_STATUS_OK);
    T_EQ_INT(f.has_animation, 1);
    T_DECODE_FAILS(anim.data, anim.len, NULL, PX_EUNSUP, "animated WebP is not supported");
    px_buf_free(&frame), px_buf_free(&anim), px_buf_free(&still), px_image_free(&img);
}

/* --- limits: nothing big may be allocated before the check --------------------------- */

/* Caps this forked test's address space near its current size, so a decoder
 * that allocated pixels before checking the limits would get ENOMEM (and
 * fail the test) instead of quietly succeeding. Sanitizer runtimes reserve
 * terabytes of shadow memory, so there the cap is left off. */
static void cap_address_space(unsigned headroom_mb)
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

TEST(t_png_too_big)
{
    cap_address_space(64);
    px_buf b = png_header_only(100000, 100000);
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ETOOBIG,
                   "PNG image is 100000x100000 (10000.0 megapixels), above the limit of 16.8 "
                   "megapixels");
    px_buf_free(&b);
    b = png_header_only(9000, 10);
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ETOOBIG,
                   "PNG image is 9000x10, above the limit of 8192 px a side");
    px_buf_free(&b);
    /* Above libpng's own default width cap (1e6): still our check and message. */
    b = png_header_only(2000000, 1);
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ETOOBIG, "PNG image is 2000000x1");
    px_buf_free(&b);
    b = png_header_only(0, 10);
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ECORRUPT, "PNG data is corrupt");
    px_buf_free(&b);
}

TEST(t_out_of_memory_names_format)
{
#ifdef SANITIZED
    /* Sanitizer allocators abort on failure instead of returning NULL. */
#else
    /* 4096x4096 RGB is within the limits but needs 48 MiB; allow 8. */
    cap_address_space(8);
    px_buf b = png_header_only(4096, 4096);
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ENOMEM, "PNG image of 4096x4096 does not fit in memory");
    px_buf_free(&b);
#endif
}

/* The SOF0 of a real JPEG patched to w×h. */
static px_buf jpeg_with_size(unsigned w, unsigned h)
{
    px_image img = pattern(16, 16, 3);
    px_buf b = encode(&img, PX_FMT_JPEG, 80);
    px_image_free(&img);
    size_t sof = jpeg_find(&b, 0xc0);
    T_TRUE(sof != 0);
    b.data[sof + 5] = (uint8_t)(h >> 8), b.data[sof + 6] = (uint8_t)h;
    b.data[sof + 7] = (uint8_t)(w >> 8), b.data[sof + 8] = (uint8_t)w;
    return b;
}

TEST(t_jpeg_too_big)
{
    cap_address_space(64);
    px_buf b = jpeg_with_size(60000, 60000);
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ETOOBIG,
                   "JPEG image is 60000x60000 (3600.0 megapixels), above the limit of 16.8 "
                   "megapixels");
    px_buf_free(&b);
    b = jpeg_with_size(8, 9000);
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ETOOBIG, "JPEG image is 8x9000, above the limit");
    px_buf_free(&b);
    b = jpeg_with_size(16, 0);
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ECORRUPT, "JPEG data is corrupt: Empty JPEG image");
    px_buf_free(&b);
}

TEST(t_webp_too_big)
{
    cap_address_space(64);
    /* Lossless: the VP8L header holds 14-bit width-1 and height-1. */
    px_image img = pattern(16, 16, 3);
    px_buf b = encode(&img, PX_FMT_WEBP, 100);
    T_EQ_MEM(b.data + 12, "VP8L", 4);
    uint32_t bits = (uint32_t)b.data[21] | (uint32_t)b.data[22] << 8 | (uint32_t)b.data[23] << 16 |
                    (uint32_t)b.data[24] << 24;
    bits = (bits & ~0x0fffffffu) | (10000 - 1) | (10000 - 1) << 14;
    for (int i = 0; i < 4; i++) b.data[21 + i] = (uint8_t)(bits >> (8 * i));
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ETOOBIG,
                   "WebP image is 10000x10000 (100.0 megapixels), above the limit of 16.8 "
                   "megapixels");
    px_buf_free(&b);
    /* Lossy: the VP8 frame header holds 14-bit sizes after 9d 01 2a. */
    b = encode(&img, PX_FMT_WEBP, 80);
    T_EQ_MEM(b.data + 12, "VP8 ", 4);
    T_EQ_MEM(b.data + 23, "\x9d\x01\x2a", 3);
    b.data[26] = 16000 & 0xff, b.data[27] = 16000 >> 8;
    b.data[28] = 9000 & 0xff, b.data[29] = 9000 >> 8;
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ETOOBIG, "WebP image is 16000x9000 (144.0 megapixels)");
    b.data[26] = b.data[27] = 0; /* zero width */
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ECORRUPT, "WebP data is corrupt");
    px_buf_free(&b), px_image_free(&img);
}

TEST(t_custom_limits_each_format)
{
    px_image img = pattern(64, 48, 3);
    px_img_limits small = {.max_pixels = 1000, .max_side = 1000};
    px_img_limits narrow = {.max_pixels = 1 << 20, .max_side = 63};
    static const char *names[] = {"", "PNG", "JPEG", "WebP"};
    for (int f = PX_FMT_PNG; f <= PX_FMT_WEBP; f++) {
        px_buf b = encode(&img, (enum px_format)f, 90);
        char want[128];
        snprintf(want, sizeof want,
                 "%s image is 64x48 (3072 pixels), above the limit of 1000 pixels", names[f]);
        T_DECODE_FAILS(b.data, b.len, &small, PX_ETOOBIG, want);
        snprintf(want, sizeof want, "%s image is 64x48, above the limit of 63 px a side", names[f]);
        T_DECODE_FAILS(b.data, b.len, &narrow, PX_ETOOBIG, want);
        /* Exactly at the limits is fine. */
        px_img_limits exact = {.max_pixels = 64 * 48, .max_side = 64};
        px_image ok;
        T_EQ_INT(px_decode(b.data, b.len, &exact, &ok, NULL, 0), 0);
        px_image_free(&ok);
        px_buf_free(&b);
    }
    px_image_free(&img);
}

/* --- truncation and corruption ------------------------------------------------------- */

TEST(t_png_truncated)
{
    px_image img = pattern(64, 48, 3);
    px_buf b = encode(&img, PX_FMT_PNG, 0);
    size_t idat = png_find(&b, "IDAT");
    T_TRUE(idat > 0);
    const size_t cuts[] = {1, 3, 8, 20, 33, idat + 4, idat + 30, b.len / 2, b.len - 13, b.len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        T_DECODE_FAILS(b.data, cuts[i], NULL, PX_ETRUNC, "PNG data is truncated");
    px_buf_free(&b), px_image_free(&img);
}

TEST(t_jpeg_truncated)
{
    px_image img = pattern(64, 48, 3);
    px_buf b = encode(&img, PX_FMT_JPEG, 90);
    px_buf p = write_jpeg(&img, &(struct jpeg_spec){.quality = 90, .progressive = true});
    size_t sos = jpeg_find(&b, 0xda);
    T_TRUE(sos > 0);
    const size_t cuts[] = {1, 2, 3, 20, sos, sos + 20, b.len / 2, b.len - 2, b.len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        T_DECODE_FAILS(b.data, cuts[i], NULL, PX_ETRUNC, "JPEG data is truncated");
    /* Progressive files are cut between or inside later scans. */
    const size_t pcuts[] = {p.len / 3, p.len / 2, p.len - 2};
    for (size_t i = 0; i < sizeof pcuts / sizeof pcuts[0]; i++)
        T_DECODE_FAILS(p.data, pcuts[i], NULL, PX_ETRUNC, "JPEG data is truncated");
    px_buf_free(&b), px_buf_free(&p), px_image_free(&img);
}

TEST(t_webp_truncated)
{
    px_image img = pattern(64, 48, 3);
    for (int q = 80; q <= 100; q += 20) {
        px_buf b = encode(&img, PX_FMT_WEBP, q);
        const size_t cuts[] = {1, 4, 6, 11, 16, 20, 30, b.len / 2, b.len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
            T_DECODE_FAILS(b.data, cuts[i], NULL, PX_ETRUNC, "WebP data is truncated");
        px_buf_free(&b);
    }
    px_image_free(&img);
}

TEST(t_png_corrupt)
{
    px_image img = pattern(64, 48, 3);
    px_buf b = encode(&img, PX_FMT_PNG, 0);
    size_t idat = png_find(&b, "IDAT");
    uint32_t len = get32be(b.data + idat);
    /* A flipped byte in IDAT: zlib's checksum or the chunk CRC, whichever
     * libpng meets first, catches it. */
    b.data[idat + 8 + len / 2] ^= 0x40;
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ECORRUPT, "PNG data is corrupt: IDAT: ");
    /* Same damage with the CRC fixed up: now zlib (or the filter) objects. */
    put32be(b.data + idat + 8 + len, crc32_of(b.data + idat + 4, len + 4));
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ECORRUPT, "PNG data is corrupt: ");
    px_buf_free(&b);
    /* A broken IHDR CRC. */
    b = encode(&img, PX_FMT_PNG, 1);
    b.data[8 + 8 + 13] ^= 1;
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ECORRUPT, "IHDR: CRC error");
    px_buf_free(&b), px_image_free(&img);
}

TEST(t_jpeg_corrupt)
{
    px_image img = pattern(64, 48, 3);
    px_buf b = encode(&img, PX_FMT_JPEG, 90);
    size_t sos = jpeg_find(&b, 0xda);
    size_t start = sos + 2 + ((size_t)b.data[sos + 2] << 8 | b.data[sos + 3]);
    /* JPEG has no checksum: scrambled entropy bytes often resynchronise
     * unnoticed. What libjpeg does notice, and only warns about (returning
     * grey-filled pixels), must be an error here. An all-ones bit run is no
     * valid Huffman code: */
    for (size_t i = start + 40; i < start + 56; i += 2) b.data[i] = 0xff, b.data[i + 1] = 0;
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ECORRUPT,
                   "JPEG data is corrupt: Corrupt JPEG data: bad Huffman code");
    px_buf_free(&b);
    /* A scan that stops short of its data, then EOI. */
    b = encode(&img, PX_FMT_JPEG, 90);
    b.data[start + 200] = 0xff, b.data[start + 201] = 0xd9;
    T_DECODE_FAILS(b.data, start + 202, NULL, PX_ECORRUPT, "premature end of data segment");
    px_buf_free(&b);
    /* A marker where entropy data should be. */
    b = encode(&img, PX_FMT_JPEG, 90);
    b.data[start + 50] = 0xff, b.data[start + 51] = 0xc4;
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ECORRUPT, "JPEG data is corrupt");
    px_buf_free(&b);
    /* A bogus marker segment length in the header. */
    b = encode(&img, PX_FMT_JPEG, 90);
    size_t dqt = jpeg_find(&b, 0xdb);
    b.data[dqt + 2] = 0, b.data[dqt + 3] = 1;
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ECORRUPT, "JPEG data is corrupt");
    px_buf_free(&b), px_image_free(&img);
}

TEST(t_webp_corrupt)
{
    px_image img = pattern(64, 48, 3);
    px_buf b = encode(&img, PX_FMT_WEBP, 100);
    for (size_t i = 40; i < 60; i++) b.data[i] ^= 0xa5;
    T_DECODE_FAILS(b.data, b.len, NULL, PX_ECORRUPT, "WebP data is corrupt: bitstream error");
    px_buf_free(&b);
    /* A RIFF chunk size that points past the file. */
    b = encode(&img, PX_FMT_WEBP, 80);
    b.data[16] = 0xff, b.data[17] = 0xff, b.data[18] = 0xff;
    px_image out;
    int rc = px_decode(b.data, b.len, NULL, &out, NULL, 0);
    T_TRUE(rc == PX_ETRUNC || rc == PX_ECORRUPT);
    T_TRUE(out.px == NULL);
    px_buf_free(&b), px_image_free(&img);
}

TEST(t_unknown_and_empty)
{
    T_DECODE_FAILS((const uint8_t *)"GIF89a\x01\x00", 8, NULL, PX_EUNSUP,
                   "not a PNG, JPEG or WebP image (first bytes 47 49 46 38)");
    T_DECODE_FAILS((const uint8_t *)"BM", 2, NULL, PX_EUNSUP, "(first bytes 42 4d)");
    T_DECODE_FAILS((const uint8_t *)"RIFF\0\0\0\0WAVE", 12, NULL, PX_EUNSUP,
                   "first bytes 52 49 46 46");
    T_DECODE_FAILS((const uint8_t *)"", 0, NULL, PX_EINVAL, "no image data");
    T_DECODE_FAILS(NULL, 0, NULL, PX_EINVAL, "no image data");
}

/* --- encoder rejections ---------------------------------------------------------------- */

TEST(t_encode_output_cap)
{
    px_image img = pattern(64, 48, 4);
    for (int f = PX_FMT_PNG; f <= PX_FMT_WEBP; f++) {
        px_buf b;
        px_buf_init(&b, 100);
        T_EQ_INT(px_buf_puts(&b, "abc"), 0);
        px_encode_opts o = {.fmt = (enum px_format)f, .quality = 90, .png_level = 1};
        char err[200] = "";
        T_EQ_INT(px_encode(&img, &o, &b, err, sizeof err), PX_ETOOBIG);
        T_CONTAINS(err, "larger than the output limit of 100 bytes");
        /* The buffer is as it was before the call. */
        T_EQ_INT(b.len, 3);
        T_EQ_STR((const char *)b.data, "abc");
        px_buf_free(&b);
    }
    px_image_free(&img);
}

TEST(t_encode_invalid)
{
    px_image img = pattern(8, 8, 3);
    px_buf b;
    px_buf_init(&b, 1 << 20);
    char err[200];
    px_encode_opts o = {.fmt = PX_FMT_JPEG, .quality = 101};
    T_EQ_INT(px_encode(&img, &o, &b, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "quality 101");
    o = (px_encode_opts){.fmt = PX_FMT_WEBP, .quality = 200};
    T_EQ_INT(px_encode(&img, &o, &b, err, sizeof err), PX_EINVAL);
    o = (px_encode_opts){.fmt = PX_FMT_PNG, .png_level = 10};
    T_EQ_INT(px_encode(&img, &o, &b, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "level 10");
    o = (px_encode_opts){.fmt = PX_FMT_UNKNOWN};
    T_EQ_INT(px_encode(&img, &o, &b, err, sizeof err), PX_EINVAL);
    o = (px_encode_opts){.fmt = PX_FMT_PNG, .png_level = -1};
    img.c = 2;
    T_EQ_INT(px_encode(&img, &o, &b, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "2 channels");
    img.c = 3;
    px_image none = {0};
    T_EQ_INT(px_encode(&none, &o, &b, err, sizeof err), PX_EINVAL);
    T_EQ_INT(b.len, 0);
    /* NULL opts: PNG with the defaults. */
    T_EQ_INT(px_encode(&img, NULL, &b, err, sizeof err), 0);
    T_EQ_INT(px_format_sniff(b.data, b.len), PX_FMT_PNG);
    px_buf_free(&b), px_image_free(&img);
}

/* --- files, photos, threads, stderr ------------------------------------------------------ */

TEST(t_file_helpers)
{
    char dir[] = "/tmp/px_codec_test_XXXXXX";
    T_TRUE(mkdtemp(dir) != NULL);
    char path[128];
    px_image img = pattern(30, 20, 3), back;
    char err[256];
    static const char *exts[] = {"png", "JPG", "webp"};
    static const enum px_format fmts[] = {PX_FMT_PNG, PX_FMT_JPEG, PX_FMT_WEBP};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/out.%s", dir, exts[i]);
        T_EQ_INT(px_encode_file(path, &img, NULL, err, sizeof err), 0);
        FILE *f = fopen(path, "rb");
        uint8_t head[16];
        size_t n = fread(head, 1, sizeof head, f);
        fclose(f);
        T_EQ_INT(px_format_sniff(head, n), fmts[i]);
        T_EQ_INT(px_decode_file(path, NULL, &back, err, sizeof err), 0);
        T_EQ_INT(back.w, 30);
        T_CMP_DBL(psnr(&img, &back), >, 30);
        px_image_free(&back);
        unlink(path);
    }
    /* opts->fmt wins over the extension. */
    snprintf(path, sizeof path, "%s/out.png", dir);
    px_encode_opts o = {.fmt = PX_FMT_JPEG};
    T_EQ_INT(px_encode_file(path, &img, &o, err, sizeof err), 0);
    T_EQ_INT(px_decode_file(path, NULL, &back, err, sizeof err), 0);
    T_EQ_INT(back.c, 3);
    px_image_free(&back);
    unlink(path);
    snprintf(path, sizeof path, "%s/out.gif", dir);
    T_EQ_INT(px_encode_file(path, &img, NULL, err, sizeof err), PX_EINVAL);
    T_CONTAINS(err, "cannot tell the image format");
    snprintf(path, sizeof path, "%s/missing.png", dir);
    T_EQ_INT(px_decode_file(path, NULL, &back, err, sizeof err), PX_EIO);
    T_CONTAINS(err, "No such file");
    T_TRUE(back.px == NULL);
    snprintf(path, sizeof path, "%s/no/such/dir.png", dir);
    T_EQ_INT(px_encode_file(path, &img, NULL, err, sizeof err), PX_EIO);
    T_EQ_INT(px_decode_file(dir, NULL, &back, err, sizeof err), PX_EIO); /* a directory */
    T_CONTAINS(err, "Is a directory");
    rmdir(dir);
    px_image_free(&img);
}

TEST(t_real_photos)
{
    char *astro = px_test_photo("astronaut.png"), *hubble = px_test_photo("hubble_deep_field.jpg");
    T_TRUE(astro != NULL && hubble != NULL); /* python3-skimage is a base dependency */
    px_image img;
    char err[256] = "";
    T_EQ_INT(px_decode_file(astro, NULL, &img, err, sizeof err), 0);
    T_EQ_INT(img.w, 512);
    T_EQ_INT(img.h, 512);
    T_EQ_INT(img.c, 3);
    /* Not a blank image: the channels spread over most of the range. */
    int lo = 255, hi = 0;
    for (size_t i = 0; i < (size_t)512 * 512 * 3; i++)
        lo = img.px[i] < lo ? img.px[i] : lo, hi = img.px[i] > hi ? img.px[i] : hi;
    T_CMP_INT(hi - lo, >, 200);
    px_image_free(&img);
    T_EQ_INT(px_decode_file(hubble, NULL, &img, err, sizeof err), 0);
    T_EQ_INT(img.w, 1000);
    T_EQ_INT(img.h, 872);
    T_EQ_INT(img.c, 3);
    px_image_free(&img);
    free(astro), free(hubble);
}

struct thread_job {
    const px_buf *files;
    const px_image *want;
    int bad;
};

static void *decode_loop(void *arg)
{
    struct thread_job *j = arg;
    for (int it = 0; it < 10; it++)
        for (int f = 0; f < 3; f++) {
            px_image img;
            if (px_decode(j->files[f].data, j->files[f].len, NULL, &img, NULL, 0) != 0 ||
                img.w != j->want[f].w || img.h != j->want[f].h ||
                memcmp(img.px, j->want[f].px, (size_t)img.w * img.h * img.c) != 0)
                j->bad++;
            px_image_free(&img);
            /* Failing decodes run concurrently too. */
            if (px_decode(j->files[f].data, j->files[f].len / 2, NULL, &img, NULL, 0) == 0)
                j->bad++;
        }
    return NULL;
}

TEST(t_threads_decode_the_same)
{
    px_image img = blocks();
    uint8_t app1[64];
    size_t n = exif_payload(app1, false, 6);
    px_buf files[3] = {
        encode(&img, PX_FMT_PNG, 0),
        write_jpeg(&img, &(struct jpeg_spec){.quality = 90, .app1 = app1, .app1_len = n}),
        encode(&img, PX_FMT_WEBP, 80)};
    px_image want[3];
    for (int f = 0; f < 3; f++) want[f] = decode(files[f].data, files[f].len);
    T_EQ_INT(want[1].w, 32); /* rotated */
    pthread_t th[4];
    struct thread_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (struct thread_job){files, want, 0};
        T_EQ_INT(pthread_create(&th[t], NULL, decode_loop, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        T_EQ_INT(jobs[t].bad, 0);
    }
    for (int f = 0; f < 3; f++) px_image_free(&want[f]), px_buf_free(&files[f]);
    px_image_free(&img);
}

TEST(t_libraries_stay_off_stderr)
{
    /* libpng and libjpeg print warnings and errors by default; none of
     * that may reach the server's stderr. */
    char path[] = "/tmp/px_stderr_XXXXXX";
    int fd = mkstemp(path);
    T_TRUE(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);

    px_image img = pattern(64, 48, 3), out;
    px_buf png = encode(&img, PX_FMT_PNG, 1), jpg = encode(&img, PX_FMT_JPEG, 90),
           webp = encode(&img, PX_FMT_WEBP, 80);
    /* A bad CRC on an ancillary chunk: libpng warns and goes on. */
    px_buf warn;
    px_buf_init(&warn, 1 << 20);
    T_EQ_INT(px_buf_append(&warn, png.data, 33), 0);
    png_chunk(&warn, "tEXt", (const uint8_t *)"Comment\0hi", 10);
    warn.data[warn.len - 1] ^= 1;
    T_EQ_INT(px_buf_append(&warn, png.data + 33, png.len - 33), 0);
    int rc_warn = px_decode(warn.data, warn.len, NULL, &out, NULL, 0);
    px_image_free(&out);
    size_t sos = jpeg_find(&jpg, 0xda);
    for (size_t i = sos + 60; i < sos + 90; i++) jpg.data[i] ^= 0x33;
    const px_buf *bad[] = {&png, &jpg, &webp};
    for (int i = 0; i < 3; i++) {
        px_decode(bad[i]->data, bad[i]->len / 2, NULL, &out, NULL, 0);
        px_decode(bad[i]->data, bad[i]->len, NULL, &out, NULL, 0);
        px_image_free(&out);
    }
    png.data[40] ^= 0xff;
    px_decode(png.data, png.len, NULL, &out, NULL, 0);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t written = lseek(fd, 0, SEEK_END);
    close(fd);
    T_EQ_INT(rc_warn, 0); /* an ancillary CRC error is not fatal */
    T_EQ_INT(written, 0);
    px_buf_free(&png), px_buf_free(&jpg), px_buf_free(&webp), px_buf_free(&warn);
    px_image_free(&img);
}

TEST_MAIN(t_sniff_and_names, t_png_roundtrip_encoder, t_png_gray_alpha_and_16bit, t_png_palette,
          t_png_low_depth_and_key_colours, t_png_interlaced, t_jpeg_quality, t_jpeg_gray_and_alpha,
          t_jpeg_progressive_and_scan_limit, t_jpeg_cmyk, t_jpeg_exif_orientation,
          t_exif_parser_bounds, t_jpeg_bad_exif_is_ignored, t_webp_lossy_and_lossless,
          t_webp_alpha_and_gray, t_webp_animated_refused, t_png_too_big,
          t_out_of_memory_names_format, t_jpeg_too_big, t_webp_too_big, t_custom_limits_each_format,
          t_png_truncated, t_jpeg_truncated, t_webp_truncated, t_png_corrupt, t_jpeg_corrupt,
          t_webp_corrupt, t_unknown_and_empty, t_encode_output_cap, t_encode_invalid,
          t_file_helpers, t_real_photos, t_threads_decode_the_same, t_libraries_stay_off_stderr)
