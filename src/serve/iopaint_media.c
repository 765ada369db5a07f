/*
 * iopaint_media.c — IOPaint's file calls (see iopaint.h): the input image
 * (--input FILE), save_image (--output-dir) and the file manager over the
 * folders of its three tabs (input: --input DIR, output: --output-dir, mask:
 * --mask-dir).
 *
 * Names from requests are single path components with an image extension,
 * opened with openat(O_NOFOLLOW) relative to the tab's directory, so no
 * request reaches outside the folders given on the command line.
 */
#include "serve/server_impl.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/jsonw.h"
#include "image/codec.h"
#include "image/probe.h"
#include "image/resize.h"
#include "serve/iopaint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LISTED  10000
#define PROBE_BYTES 65536

int px_iopaint_is_dir(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A file name a request may use: one component, no hidden files, printable,
 * ending in an image extension. */
static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > 200 || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == '/' || name[i] == '\\' || name[i] == 0x7f)
            return 0;
    const char *ext = strrchr(name, '.');
    return ext && px_format_parse(ext + 1) != PX_FMT_UNKNOWN;
}

/* The directory of a file-manager tab, or NULL. */
static const char *tab_dir(const px_serve_config *cfg, const char *tab)
{
    if (!tab) return NULL;
    if (!strcmp(tab, "input")) return px_iopaint_is_dir(cfg->input) ? cfg->input : NULL;
    if (!strcmp(tab, "output")) return cfg->output_dir;
    if (!strcmp(tab, "mask")) return cfg->mask_dir;
    return NULL;
}

/* Reads up to max bytes of fd into a new buffer (*len set). NULL on error. */
static uint8_t *read_fd(int fd, size_t max, size_t *len)
{
    px_buf b;
    px_buf_init(&b, max);
    uint8_t chunk[65536];
    ssize_t got;
    *len = 0;
    while (b.len < max && (got = read(fd, chunk, sizeof chunk)) > 0)
        if (px_buf_append(&b, chunk, (size_t)got)) break;
    return px_buf_steal(&b, len);
}

/* ------------------------------------------------------------ input image */

enum MHD_Result px_iopaint_inputimage(px_server *s, struct MHD_Connection *c, struct request *r)
{
    const char *in = s->cfg->input;
    struct stat st;
    int fd = in && !px_iopaint_is_dir(in) ? open(in, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        px_buf b;
        px_buf_init(&b, 64);
        px_buf_puts(&b, "{\"input\":null}\n"); /* IOPaint's client then starts empty */
        return px_server_send_buf(c, r, 200, "application/json", &b, NULL, NULL);
    }
    uint8_t head[16] = {0};
    ssize_t got = pread(fd, head, sizeof head, 0);
    struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
    char disp[320] = "inline; filename=\"";
    size_t k = strlen(disp);
    for (const char *p = base; *p && k + 3 < sizeof disp; p++)
        if ((unsigned char)*p >= 0x20 && *p != '"' && *p != '\\') disp[k++] = *p;
    disp[k++] = '"', disp[k] = 0;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            px_format_mime(px_format_sniff(head, got > 0 ? (size_t)got : 0)));
    MHD_add_response_header(resp, "Content-Disposition", disp);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    return px_server_queue(c, r, 200, resp);
}

/* ------------------------------------------------------------ save_image */

/* Writes data as dir/name through a temporary file and a rename. */
static int write_atomic(const char *dir, const char *name, const uint8_t *data, size_t n, char *err,
                        size_t errlen)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return px_errf(err, errlen, PX_EIO, "cannot open --output-dir: %s", strerror(errno));
    char tmp[256];
    snprintf(tmp, sizeof tmp, ".px-save-%ld-%p", (long)getpid(), (const void *)data);
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int rc = 0;
    if (fd < 0) {
        rc = px_errf(err, errlen, PX_EIO, "cannot write in --output-dir: %s", strerror(errno));
    } else {
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(fd, data + off, n - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        if (close(fd) || off != n || renameat(dfd, tmp, dfd, name)) {
            rc = px_errf(err, errlen, PX_EIO, "cannot save %s: %s", name, strerror(errno));
            unlinkat(dfd, tmp, 0);
        }
    }
    close(dfd);
    return rc;
}

enum MHD_Result px_iopaint_save_image(px_server *s, struct MHD_Connection *c, struct request *r)
{
    if (!s->cfg->output_dir)
        return px_server_send_error(s, c, r, 400, PX_EINVAL,
                                    "saving is off: start pixserve with --output-dir DIR", NULL,
                                    NULL);
    px_part parts[8];
    char err[320];
    const px_part *f = px_iopaint_file_part(c, r, parts, 8, err, sizeof err);
    if (!f) return px_server_send_error(s, c, r, 400, PX_EINVAL, err, NULL, NULL);
    const char *name = strrchr(f->filename, '/') ? strrchr(f->filename, '/') + 1 : f->filename;
    if (!name_ok(name))
        return px_server_send_error(s, c, r, 400, PX_EINVAL,
                                    "the file needs a plain name ending in .png, .jpg or .webp",
                                    NULL, NULL);
    if (px_format_sniff(f->data, f->len) == PX_FMT_UNKNOWN)
        return px_server_send_error(s, c, r, 415, PX_EUNSUP, "the file is not a PNG, JPEG or WebP",
                                    NULL, NULL);
    int rc = write_atomic(s->cfg->output_dir, name, f->data, f->len, err, sizeof err);
    if (rc) return px_server_send_error(s, c, r, 500, rc, err, NULL, NULL);
    px_buf b;
    px_buf_init(&b, 512);
    px_buf_puts(&b, "{\"name\":");
    px_json_str(&b, name);
    px_buf_puts(&b, "}\n");
    return px_server_send_buf(c, r, 200, "application/json", &b, NULL, NULL);
}

/* ------------------------------------------------------------ file manager */

/* One listed image: [{name, height, width, ctime, mtime}]'s entry. */
static int list_entry(int dfd, const char *name, px_buf *b, int first)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat st;
    uint8_t head[PROBE_BYTES];
    enum px_format fmt;
    int w = 0, h = 0, ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    ssize_t got = ok ? pread(fd, head, sizeof head, 0) : -1;
    close(fd);
    if (!ok || got <= 0) return 0;
    px_image_probe(head, (size_t)got, &fmt, &w, &h); /* 0x0 when the header is not there */
    if (!first) px_buf_puts(b, ",");
    px_buf_puts(b, "{\"name\":");
    px_json_str(b, name);
    px_buf_printf(b, ",\"height\":%d,\"width\":%d,\"ctime\":%.3f,\"mtime\":%.3f}", h, w,
                  (double)st.st_ctim.tv_sec + st.st_ctim.tv_nsec / 1e9,
                  (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9);
    return 1;
}

enum MHD_Result px_iopaint_medias(px_server *s, struct MHD_Connection *c, struct request *r)
{
    const char *tab = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tab");
    const char *dir = tab_dir(s->cfg, tab);
    if (!dir)
        return px_server_send_error(s, c, r, 404, PX_ENOTFOUND,
                                    "no folder for this tab (input: --input DIR, output: "
                                    "--output-dir, mask: --mask-dir)",
                                    NULL, NULL);
    DIR *d = opendir(dir);
    if (!d) return px_server_send_error(s, c, r, 500, PX_EIO, "cannot read the folder", NULL, NULL);
    px_buf b;
    px_buf_init(&b, 64u << 20);
    px_buf_puts(&b, "[");
    int n = 0;
    struct dirent *e;
    while (n < MAX_LISTED && (e = readdir(d)) != NULL)
        if (name_ok(e->d_name)) n += list_entry(dirfd(d), e->d_name, &b, n == 0);
    closedir(d);
    px_buf_puts(&b, "]\n");
    return px_server_send_buf(c, r, 200, "application/json", &b, NULL, NULL);
}

/* A thumbnail of data that fits in want_w x want_h (0 = free; never
 * enlarged), as JPEG; its size in *tw, *th. */
static int thumbnail(const px_serve_config *cfg, const uint8_t *data, size_t n, int want_w,
                     int want_h, px_buf *out, int *tw, int *th, char *err, size_t errlen)
{
    px_img_limits lim = {.max_pixels = cfg->max_pixels, .max_side = cfg->max_side};
    px_image img = {0}, small = {0};
    int rc = px_decode(data, n, &lim, &img, err, errlen);
    if (rc) return rc;
    double sc = 1.0;
    if (want_w > 0 && want_w < img.w) sc = (double)want_w / img.w;
    if (want_h > 0 && want_h < img.h * sc) sc = (double)want_h / img.h;
    *tw = (int)(img.w * sc + 0.5), *th = (int)(img.h * sc + 0.5);
    if (*tw < 1) *tw = 1;
    if (*th < 1) *th = 1;
    if ((rc = px_resize(&img, *tw, *th, &small)))
        rc = px_errf(err, errlen, rc, "out of memory making a thumbnail");
    px_encode_opts eo = {.fmt = PX_FMT_JPEG, .quality = 85};
    if (!rc) rc = px_encode(&small, &eo, out, err, errlen);
    px_image_free(&img);
    px_image_free(&small);
    return rc;
}

static int int_arg(struct MHD_Connection *c, const char *key)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
    long x = v ? strtol(v, NULL, 10) : 0;
    return x > 0 && x <= 16384 ? (int)x : 0;
}

enum MHD_Result px_iopaint_media_file(px_server *s, struct MHD_Connection *c, struct request *r,
                                      int thumb)
{
    const char *dir = tab_dir(s->cfg, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tab"));
    const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "filename");
    if (!dir)
        return px_server_send_error(s, c, r, 404, PX_ENOTFOUND, "no folder for this tab", NULL,
                                    NULL);
    if (!name || !name_ok(name))
        return px_server_send_error(s, c, r, 400, PX_EINVAL, "invalid filename", NULL, NULL);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int fd = dfd >= 0 ? openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (dfd >= 0) close(dfd);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        return px_server_send_error(s, c, r, 404, PX_ENOTFOUND, "no such file", NULL, NULL);
    }
    const char *ext = strrchr(name, '.');
    if (!thumb) {
        struct MHD_Response *resp = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
        if (!resp) return close(fd), MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                px_format_mime(px_format_parse(ext + 1)));
        return px_server_queue(c, r, 200, resp);
    }
    size_t len = 0;
    uint8_t *data = read_fd(fd, (size_t)256 << 20, &len);
    close(fd);
    px_buf jpg;
    px_buf_init(&jpg, (size_t)256 << 20);
    char err[320];
    int tw = 0, th = 0;
    int rc = data ? thumbnail(s->cfg, data, len, int_arg(c, "width"), int_arg(c, "height"), &jpg,
                              &tw, &th, err, sizeof err)
                  : px_errf(err, sizeof err, PX_EIO, "cannot read %s", name);
    free(data);
    if (rc) {
        px_buf_free(&jpg);
        return px_server_send_error(s, c, r, 0, rc, err, NULL, NULL);
    }
    size_t jlen;
    uint8_t *bytes = px_buf_steal(&jpg, &jlen);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(jlen, bytes, free);
    if (!resp) return free(bytes), MHD_NO;
    char v[16];
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "image/jpeg");
    snprintf(v, sizeof v, "%d", tw);
    MHD_add_response_header(resp, "X-Width", v);
    snprintf(v, sizeof v, "%d", th);
    MHD_add_response_header(resp, "X-Height", v);
    return px_server_queue(c, r, 200, resp);
}
