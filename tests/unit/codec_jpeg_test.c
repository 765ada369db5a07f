/*
 * codec_jpeg_test.c — JPEG through px_decode/px_encode: quality against
 * PSNR bounds, gray and alpha input, progressive files and the scan limit,
 * CMYK, EXIF orientation (and the EXIF parser's bounds), and the JPEG
 * rejection paths (size caps, truncation, corruption) with their codes and
 * messages. Shared fixtures: codec_fixtures.h.
 */
#include "codec_fixtures.h"
#include "image/exif.h"

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

/* --- EXIF orientation ------------------------------------------------------------------- */

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

/* --- limits, truncation and corruption ------------------------------------------------ */

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

TEST_MAIN(t_jpeg_quality, t_jpeg_gray_and_alpha, t_jpeg_progressive_and_scan_limit, t_jpeg_cmyk,
          t_jpeg_exif_orientation, t_exif_parser_bounds, t_jpeg_bad_exif_is_ignored, t_jpeg_too_big,
          t_jpeg_truncated, t_jpeg_corrupt)
