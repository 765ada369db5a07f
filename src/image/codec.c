/*
 * codec.c — the front of the image I/O layer: format sniffing from magic
 * bytes, dispatch to png.c / jpeg.c / webp.c, format names, and the file
 * helpers.
 */
#include "image/codec.h"

#include "core/err.h"
#include "image/codec_impl.h"
#include "image/jpeg.h"
#include "image/png.h"
#include "image/webp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum {
    DEFAULT_QUALITY = 90,
    DEFAULT_PNG_LEVEL = 1, /* zlib's fastest: encode time matters more than bytes */
    MAX_FILE_BYTES = 256 << 20,
};
#define MAX_ENCODED_FILE_BYTES ((size_t)1 << 30)

typedef int (*decode_fn)(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out,
                         char *err, size_t errlen);

struct format {
    const char *name;    /* for px_format_name and file extensions */
    const char *display; /* for messages */
    const char *mime;
    unsigned char magic[12];
    unsigned char magic_len;
    unsigned short wild; /* bit i set: magic byte i matches anything */
    decode_fn decode;
};

/* Indexed by enum px_format. WebP's bytes 4..7 are the RIFF size. */
static const struct format formats[] = {
    [PX_FMT_PNG] = {"png", "PNG", "image/png", "\x89PNG\r\n\x1a\n", 8, 0, px_png_decode},
    [PX_FMT_JPEG] = {"jpeg", "JPEG", "image/jpeg", "\xff\xd8\xff", 3, 0, px_jpeg_decode},
    [PX_FMT_WEBP] = {"webp", "WebP", "image/webp", "RIFF\0\0\0\0WEBP", 12, 0xf0, px_webp_decode},
};

static const struct format *format_of(enum px_format f)
{
    return f > PX_FMT_UNKNOWN && f <= PX_FMT_WEBP ? &formats[f] : NULL;
}

/* Do the first min(n, magic_len) bytes agree with the magic? */
static bool magic_agrees(const struct format *f, const uint8_t *data, size_t n)
{
    size_t m = n < f->magic_len ? n : f->magic_len;
    for (size_t i = 0; i < m; i++)
        if (!(f->wild >> i & 1) && data[i] != f->magic[i]) return false;
    return true;
}

enum px_format px_format_sniff(const uint8_t *data, size_t n)
{
    for (int f = PX_FMT_PNG; f <= PX_FMT_WEBP; f++)
        if (n >= formats[f].magic_len && magic_agrees(&formats[f], data, n))
            return (enum px_format)f;
    return PX_FMT_UNKNOWN;
}

const char *px_format_name(enum px_format f)
{
    return format_of(f) ? format_of(f)->name : "unknown";
}

const char *px_format_mime(enum px_format f)
{
    return format_of(f) ? format_of(f)->mime : "application/octet-stream";
}

enum px_format px_format_parse(const char *name)
{
    if (!name) return PX_FMT_UNKNOWN;
    if (strcasecmp(name, "jpg") == 0) return PX_FMT_JPEG;
    for (int f = PX_FMT_PNG; f <= PX_FMT_WEBP; f++)
        if (strcasecmp(name, formats[f].name) == 0) return (enum px_format)f;
    return PX_FMT_UNKNOWN;
}

int px_codec_check(const char *fmt, int w, int h, int c, const px_img_limits *lim, char *err,
                   size_t errlen)
{
    char msg[160];
    int rc = px_image_check(w, h, c, lim, msg, sizeof msg);
    return rc ? px_errf(err, errlen, rc, "%s %s", fmt, msg) : 0;
}

int px_codec_alloc(const char *fmt, px_image *img, int w, int h, int c, const px_img_limits *lim,
                   char *err, size_t errlen)
{
    char msg[160];
    int rc = px_image_alloc(img, w, h, c, lim, msg, sizeof msg);
    return rc ? px_errf(err, errlen, rc, "%s %s", fmt, msg) : 0;
}

int px_decode(const uint8_t *data, size_t n, const px_img_limits *lim, px_image *out, char *err,
              size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!data || n == 0) return px_errf(err, errlen, PX_EINVAL, "no image data (0 bytes)");
    const struct format *f = format_of(px_format_sniff(data, n));
    if (f) return f->decode(data, n, lim, out, err, errlen);
    /* Too short to sniff but the start of a known signature: a cut file. */
    for (int i = PX_FMT_PNG; i <= PX_FMT_WEBP; i++)
        if (n < formats[i].magic_len && magic_agrees(&formats[i], data, n))
            return px_errf(err, errlen, PX_ETRUNC, "%s data is truncated", formats[i].display);
    char hex[4 * 3 + 1] = "";
    for (size_t i = 0, len = 0; i < n && i < 4; i++)
        len += (size_t)snprintf(hex + len, sizeof hex - len, "%s%02x", i ? " " : "", data[i]);
    return px_errf(err, errlen, PX_EUNSUP, "not a PNG, JPEG or WebP image (first bytes %s)", hex);
}

/* Only shape is checked here; the size of an image that exists is its own
 * business (each encoder refuses what its format cannot hold). */
static int check_encodable(const px_image *img, char *err, size_t errlen)
{
    if (!img || !img->px || img->w <= 0 || img->h <= 0)
        return px_errf(err, errlen, PX_EINVAL, "cannot encode an empty image");
    if (img->c != 1 && img->c != 3 && img->c != 4)
        return px_errf(err, errlen, PX_EINVAL, "cannot encode an image with %d channels", img->c);
    return 0;
}

int px_encode(const px_image *img, const px_encode_opts *opts, px_buf *out, char *err,
              size_t errlen)
{
    int rc = check_encodable(img, err, errlen);
    if (rc) return rc;
    enum px_format fmt = opts ? opts->fmt : PX_FMT_PNG;
    int quality = opts && opts->quality > 0 ? opts->quality : DEFAULT_QUALITY;
    int level = opts && opts->png_level >= 0 ? opts->png_level : DEFAULT_PNG_LEVEL;
    size_t start = out->len;
    switch (fmt) {
    case PX_FMT_PNG:
        rc = px_png_encode(img, level, out, err, errlen);
        break;
    case PX_FMT_JPEG:
        rc = px_jpeg_encode(img, quality, out, err, errlen);
        break;
    case PX_FMT_WEBP:
        rc = px_webp_encode(img, quality, out, err, errlen);
        break;
    default:
        return px_errf(err, errlen, PX_EINVAL, "no output format given");
    }
    if (rc && out->len > start) {
        /* Leave out as it was: a half-written image is worse than none. */
        out->len = start;
        out->data[start] = 0;
    }
    return rc;
}

/* Thread-safe strerror (the GNU strerror_r returns the text to use). */
static const char *errno_text(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len);
}

int px_decode_file(const char *path, const px_img_limits *lim, px_image *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    char why[128];
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return px_errf(err, errlen, PX_EIO, "cannot open %s: %s", path,
                       errno_text(errno, why, sizeof why));
    px_buf b;
    px_buf_init(&b, MAX_FILE_BYTES);
    int rc = 0;
    uint8_t chunk[16384];
    size_t got;
    while (rc == 0 && (got = fread(chunk, 1, sizeof chunk, fp)) > 0)
        rc = px_buf_append(&b, chunk, got);
    if (rc == PX_ETOOBIG)
        rc = px_errf(err, errlen, rc, "%s is larger than %d MiB", path, MAX_FILE_BYTES >> 20);
    else if (rc)
        rc = px_errf(err, errlen, rc, "out of memory reading %s", path);
    else if (ferror(fp))
        rc = px_errf(err, errlen, PX_EIO, "cannot read %s: %s", path,
                     errno_text(errno, why, sizeof why));
    fclose(fp);
    if (!rc) rc = px_decode(b.data, b.len, lim, out, err, errlen);
    px_buf_free(&b);
    return rc;
}

int px_encode_file(const char *path, const px_image *img, const px_encode_opts *opts, char *err,
                   size_t errlen)
{
    px_encode_opts o = opts ? *opts : (px_encode_opts){.quality = 0, .png_level = -1};
    if (o.fmt == PX_FMT_UNKNOWN) {
        const char *dot = strrchr(path, '.');
        o.fmt = dot ? px_format_parse(dot + 1) : PX_FMT_UNKNOWN;
        if (o.fmt == PX_FMT_UNKNOWN)
            return px_errf(err, errlen, PX_EINVAL,
                           "cannot tell the image format from the file name %s", path);
    }
    px_buf b;
    px_buf_init(&b, MAX_ENCODED_FILE_BYTES);
    int rc = px_encode(img, &o, &b, err, errlen);
    if (rc) {
        px_buf_free(&b);
        return rc;
    }
    char why[128];
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        rc = px_errf(err, errlen, PX_EIO, "cannot create %s: %s", path,
                     errno_text(errno, why, sizeof why));
    } else {
        bool ok = fwrite(b.data, 1, b.len, fp) == b.len;
        if (fclose(fp) != 0) ok = false;
        if (!ok) {
            rc = px_errf(err, errlen, PX_EIO, "cannot write %s: %s", path,
                         errno_text(errno, why, sizeof why));
            unlink(path);
        }
    }
    px_buf_free(&b);
    return rc;
}
