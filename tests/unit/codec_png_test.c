/*
 * codec_png_test.c — PNG through px_decode/px_encode: round trips of every
 * colour type, bit depth, palette, key colour and interlacing (written here
 * with libpng where our encoder does not produce them), and the PNG
 * rejection paths (size caps, truncation, corrupt chunks) with their codes
 * and messages. Shared fixtures: codec_fixtures.h.
 */
#include "codec_fixtures.h"

#include "image/png.h"
#include "image/png_fast.h"

#include <png.h>

/* --- libpng writer for the variants our encoder does not produce -------------------- */

struct png_spec {
    int w, h, color_type, depth, interlace;
    const uint8_t *rows; /* packed rows as libpng expects them for depth */
    const png_color *palette;
    int npalette;
    const uint8_t *trns; /* palette alpha, ntrns entries */
    int ntrns;
    const png_color_16 *trans_color; /* gray/RGB key colour */
    int filters;                     /* PNG_FILTER_* to allow (0: libpng's choice) */
    int zbuf;                        /* IDAT chunk size (0: libpng's 8 KiB) */
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
    if (s->filters) png_set_filter(png, PNG_FILTER_TYPE_BASE, s->filters);
    if (s->zbuf) png_set_compression_buffer_size(png, (size_t)s->zbuf);
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

/* --- decoding every colour type ------------------------------------------------------ */

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
            T_EQ_INT(sizes[0], sizes[2]);                 /* the default level is 1 */
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

/* --- limits, truncation and corruption ------------------------------------------------ */

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

/* Noisy pixels of c channels (gray, gray+alpha, RGB, RGBA) so every
 * filter type gets chosen and matters. */
static uint8_t *noisy_rows(int w, int h, int c, uint32_t seed)
{
    uint8_t *p = malloc((size_t)w * h * c);
    for (size_t i = 0; i < (size_t)w * h * c; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)((i / c % (size_t)w) * 3 + (i / c / w) * 5 + (seed >> 28));
    }
    return p;
}

/* What both decoders give for b: the same result and the same pixels;
 * fast says whether png_fast.c should take the file itself. */
static void both_decoders(const px_buf *b, int fast)
{
    px_img_limits lim = {1u << 24, 8192};
    px_image a, l, f;
    char err[200];
    int ra = px_png_decode(b->data, b->len, &lim, &a, err, sizeof err);
    int rl = px_png_decode_libpng(b->data, b->len, &lim, &l, err, sizeof err);
    int rf = px_png_fast_decode(b->data, b->len, &lim, &f, err, sizeof err);
    T_EQ_INT(ra, rl);
    T_EQ_INT(rf, fast ? 0 : PX_EUNSUP);
    if (!ra) {
        T_EQ_INT(a.c, l.c);
        T_EQ_INT(a.w, l.w);
        T_EQ_MEM(a.px, l.px, (size_t)a.w * a.h * a.c);
        px_image_free(&a), px_image_free(&l);
    }
    if (!rf) px_image_free(&f);
}

/* png_fast.c against libpng: every 8-bit colour type it takes, each filter
 * type alone and adaptive, one IDAT and many, odd widths; and the files it
 * must leave to libpng (palette, 16-bit, key colour, interlaced, IDATs
 * split by another chunk, data after the zlib stream, a bad IDAT CRC). */
TEST(t_png_fast_matches_libpng)
{
    static const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                PNG_COLOR_TYPE_RGB_ALPHA};
    static const int chans[] = {1, 2, 3, 4};
    static const int filters[] = {PNG_FILTER_NONE, PNG_FILTER_SUB, PNG_FILTER_UP, PNG_FILTER_AVG,
                                  PNG_FILTER_PAETH, PNG_ALL_FILTERS};
    static const int dims[][2] = {{37, 29}, {1, 7}, {160, 3}};
    for (int t = 0; t < 4; t++)
        for (int f = 0; f < 6; f++)
            for (int d = 0; d < 3; d++) {
                int w = dims[d][0], h = dims[d][1];
                uint8_t *rows = noisy_rows(w, h, chans[t], (uint32_t)(t * 100 + f * 10 + d));
                struct png_spec s = {.w = w, .h = h, .color_type = types[t], .depth = 8,
                                     .rows = rows, .filters = filters[f], .zbuf = f % 2 ? 64 : 0};
                px_buf b = write_png(&s);
                both_decoders(&b, 1);
                px_buf_free(&b);
                free(rows);
            }
    uint8_t *rows = noisy_rows(40, 20, 3, 7);
    struct png_spec s = {.w = 40, .h = 20, .color_type = PNG_COLOR_TYPE_RGB, .depth = 8, .rows = rows,
                         .zbuf = 128};
    /* interlaced, and RGB with a key colour: libpng's */
    s.interlace = PNG_INTERLACE_ADAM7;
    px_buf b = write_png(&s);
    both_decoders(&b, 0);
    px_buf_free(&b);
    s.interlace = PNG_INTERLACE_NONE;
    png_color_16 key = {.red = 3, .green = 5, .blue = 7};
    s.trans_color = &key;
    b = write_png(&s);
    both_decoders(&b, 0);
    px_buf_free(&b);
    s.trans_color = NULL;
    /* an ancillary chunk between two IDATs */
    b = write_png(&s);
    size_t first = png_find(&b, "IDAT"), next = first + 12 + get32be(b.data + first);
    T_TRUE(!memcmp(b.data + next + 4, "IDAT", 4));
    static const uint8_t chunk[12] = {0, 0, 0, 0, 'z', 'z', 'Z', 'z', 0, 0, 0, 0};
    px_buf c;
    px_buf_init(&c, 1 << 20);
    T_EQ_INT(px_buf_append(&c, b.data, next), 0);
    T_EQ_INT(px_buf_append(&c, chunk, 12), 0);
    T_EQ_INT(px_buf_append(&c, b.data + next, b.len - next), 0);
    both_decoders(&c, 0);
    px_buf_free(&c);
    /* a bad CRC on the first IDAT */
    b.data[first + 8 + get32be(b.data + first)] ^= 1;
    both_decoders(&b, 0);
    px_buf_free(&b);
    free(rows);
    /* our own encoder's files (Up filter, one IDAT): the fast path's */
    for (int ch = 1; ch <= 4; ch++) {
        if (ch == 2) continue;
        px_image img = pattern(33, 17, ch);
        b = encode(&img, PX_FMT_PNG, 1);
        both_decoders(&b, 1);
        px_buf_free(&b), px_image_free(&img);
    }
}

TEST_MAIN(t_png_roundtrip_encoder, t_png_gray_alpha_and_16bit, t_png_palette,
          t_png_low_depth_and_key_colours, t_png_interlaced, t_png_too_big, t_png_truncated,
          t_png_corrupt, t_png_fast_matches_libpng)
