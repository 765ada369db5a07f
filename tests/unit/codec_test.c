/*
 * codec_test.c — what px_decode/px_encode do across PNG, JPEG and WebP:
 * sniffing and names, custom limits and out-of-memory messages per format,
 * unknown and empty input, encoder rejections (output cap, bad options), the
 * file helpers, Debian's photos, concurrent decodes, and that the codec
 * libraries never write to stderr. Each format's own round trips and
 * rejection paths are in codec_png_test.c, codec_jpeg_test.c and
 * codec_webp_test.c; all fixtures are generated (codec_fixtures.h), the only
 * files read are Debian's photos.
 */
#include "codec_fixtures.h"

#include <pthread.h>

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

/* --- limits of every format ------------------------------------------------------------ */

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

TEST_MAIN(t_sniff_and_names, t_out_of_memory_names_format, t_custom_limits_each_format,
          t_unknown_and_empty, t_encode_output_cap, t_encode_invalid, t_file_helpers, t_real_photos,
          t_threads_decode_the_same, t_libraries_stay_off_stderr)
