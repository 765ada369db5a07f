/*
 * codec_webp_test.c — WebP through px_decode/px_encode: lossy and lossless
 * round trips within PSNR bounds, alpha and gray input, animated files
 * refused, and the WebP rejection paths (size caps, truncation, corruption)
 * with their codes and messages. Shared fixtures: codec_fixtures.h.
 */
#include "codec_fixtures.h"

#include <webp/decode.h>

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

/* --- limits, truncation and corruption ------------------------------------------------ */

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

TEST_MAIN(t_webp_lossy_and_lossless, t_webp_alpha_and_gray, t_webp_animated_refused, t_webp_too_big,
          t_webp_truncated, t_webp_corrupt)
