/*
 * multipart.c — multipart/form-data splitter (see multipart.h).
 *
 * The body is treated as untrusted: every search is bounded by the body
 * length, header blocks are capped, and names are copied into fixed buffers
 * with truncation refused rather than silently cut.
 */
#include "serve/multipart.h"

#include "core/err.h"

#include <string.h>
#include <strings.h>

#define MAX_HEADER_BLOCK 8192

static int is_token_char(int c)
{
    return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/*
 * Finds parameter `key` in a header value's "; key=value" list and copies its
 * value (quoted-string or token) into out[cap]. Returns 1 if found, 0 if not,
 * -1 if malformed or too long.
 */
static int header_param(const char *v, size_t vlen, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    size_t i = 0;
    /* Skip the value's first token (the media type or "form-data"). */
    while (i < vlen && v[i] != ';') {
        if (v[i] == '"') return -1;
        i++;
    }
    while (i < vlen) {
        i++; /* ';' */
        while (i < vlen && (v[i] == ' ' || v[i] == '\t')) i++;
        size_t k0 = i;
        while (i < vlen && is_token_char((unsigned char)v[i])) i++;
        size_t k1 = i;
        while (i < vlen && (v[i] == ' ' || v[i] == '\t')) i++;
        if (i >= vlen || v[i] != '=') return k1 == k0 && i >= vlen ? 0 : -1;
        i++;
        while (i < vlen && (v[i] == ' ' || v[i] == '\t')) i++;
        size_t o = 0;
        int match = k1 - k0 == klen && strncasecmp(v + k0, key, klen) == 0;
        if (i < vlen && v[i] == '"') {
            i++;
            while (i < vlen && v[i] != '"') {
                char c = v[i];
                if (c == '\\' && i + 1 < vlen) c = v[++i];
                if (match) {
                    if (o + 1 >= cap) return -1;
                    out[o++] = c;
                }
                i++;
            }
            if (i >= vlen) return -1; /* unterminated quote */
            i++;
        } else {
            while (i < vlen && v[i] != ';' && v[i] != ' ' && v[i] != '\t') {
                if (match) {
                    if (o + 1 >= cap) return -1;
                    out[o++] = v[i];
                }
                i++;
            }
        }
        if (match) {
            out[o] = 0;
            return 1;
        }
        while (i < vlen && (v[i] == ' ' || v[i] == '\t')) i++;
        if (i < vlen && v[i] != ';') return -1;
    }
    return 0;
}

int px_multipart_boundary(const char *ct, char *boundary, char *err, size_t errlen)
{
    static const char mt[] = "multipart/form-data";
    if (!ct || strncasecmp(ct, mt, sizeof mt - 1) != 0 ||
        (ct[sizeof mt - 1] && ct[sizeof mt - 1] != ';' && ct[sizeof mt - 1] != ' '))
        return px_errf(err, errlen, PX_EUNSUP, "expected multipart/form-data");
    int r = header_param(ct, strlen(ct), "boundary", boundary, PX_MULTIPART_MAX_BOUNDARY + 1);
    if (r <= 0 || !boundary[0])
        return px_errf(err, errlen, PX_EINVAL,
                       "multipart/form-data needs a boundary parameter of 1 to 70 characters");
    return 0;
}

static const uint8_t *find(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    return m <= n ? memmem(hay, n, needle, m) : NULL;
}

/* Whether a real delimiter line ends at p: "--" (the close) or optional
 * transport padding then CRLF. Anything else means the bytes only look like
 * a delimiter's start and belong to the data. */
static int delimiter_ends_at(const uint8_t *p, const uint8_t *end)
{
    if (end - p >= 2 && p[0] == '-' && p[1] == '-') return 1;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    return end - p >= 2 && p[0] == '\r' && p[1] == '\n';
}

/* Next full delimiter at or after from, or NULL. */
static const uint8_t *find_delimiter(const uint8_t *from, const uint8_t *end, const char *delim,
                                     size_t dlen)
{
    while (from < end) {
        const uint8_t *d = find(from, (size_t)(end - from), delim, dlen);
        if (!d || delimiter_ends_at(d + dlen, end)) return d;
        from = d + 1;
    }
    return NULL;
}

/* Parses one part's header block [h, h+n) into part. */
static int parse_headers(const char *h, size_t n, px_part *part, char *err, size_t errlen)
{
    size_t i = 0;
    int have_disp = 0;
    while (i < n) {
        const char *eol = memchr(h + i, '\r', n - i);
        size_t end = eol ? (size_t)(eol - h) : n;
        const char *line = h + i;
        size_t len = end - i;
        const char *colon = memchr(line, ':', len);
        if (!colon) return px_errf(err, errlen, PX_EINVAL, "multipart part header without ':'");
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1;
        size_t vlen = len - nlen - 1;
        while (vlen && (*v == ' ' || *v == '\t')) v++, vlen--;
        if (nlen == 19 && strncasecmp(line, "Content-Disposition", 19) == 0) {
            if (vlen < 9 || strncasecmp(v, "form-data", 9) != 0)
                return px_errf(err, errlen, PX_EINVAL, "multipart part is not form-data");
            if (header_param(v, vlen, "name", part->name, sizeof part->name) < 0 ||
                header_param(v, vlen, "filename", part->filename, sizeof part->filename) < 0)
                return px_errf(err, errlen, PX_EINVAL,
                               "malformed or too long Content-Disposition parameters");
            have_disp = 1;
        } else if (nlen == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
            if (vlen >= sizeof part->content_type)
                return px_errf(err, errlen, PX_EINVAL, "multipart Content-Type too long");
            memcpy(part->content_type, v, vlen);
            part->content_type[vlen] = 0;
        }
        i = end + 2; /* skip CRLF (the block always ends before a CRLF CRLF) */
    }
    if (!have_disp)
        return px_errf(err, errlen, PX_EINVAL, "multipart part without Content-Disposition");
    return 0;
}

int px_multipart_parse(const uint8_t *body, size_t n, const char *boundary, px_part *parts,
                       int max_parts, int *nparts, char *err, size_t errlen)
{
    *nparts = 0;
    size_t blen = strlen(boundary);
    if (blen == 0 || blen > PX_MULTIPART_MAX_BOUNDARY)
        return px_errf(err, errlen, PX_EINVAL, "bad multipart boundary");
    /* Delimiter is CRLF "--" boundary; the first one may start the body. */
    char delim[PX_MULTIPART_MAX_BOUNDARY + 5];
    delim[0] = '\r';
    delim[1] = '\n';
    delim[2] = delim[3] = '-';
    memcpy(delim + 4, boundary, blen);
    size_t dlen = blen + 4;

    size_t pos;
    if (n >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0 &&
        delimiter_ends_at(body + dlen - 2, body + n)) {
        pos = dlen - 2;
    } else {
        const uint8_t *d = find_delimiter(body, body + n, delim, dlen);
        if (!d) return px_errf(err, errlen, PX_EINVAL, "multipart body has no opening boundary");
        pos = (size_t)(d - body) + dlen;
    }
    for (;;) {
        /* After a delimiter: "--" ends the body, else CRLF and a part follows. */
        if (n - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-') break;
        while (pos < n && (body[pos] == ' ' || body[pos] == '\t')) pos++; /* transport padding */
        if (n - pos < 2 || body[pos] != '\r' || body[pos + 1] != '\n')
            return px_errf(err, errlen, PX_EINVAL, "multipart boundary not followed by CRLF");
        pos += 2;
        if (*nparts >= max_parts)
            return px_errf(err, errlen, PX_EINVAL, "too many multipart parts (limit %d)", max_parts);
        px_part *p = &parts[*nparts];
        memset(p, 0, sizeof *p);
        size_t hlim = n - pos < MAX_HEADER_BLOCK ? n - pos : MAX_HEADER_BLOCK;
        const uint8_t *hend;
        if (hlim >= 2 && body[pos] == '\r' && body[pos + 1] == '\n') {
            hend = body + pos; /* no headers at all */
        } else {
            hend = find(body + pos, hlim, "\r\n\r\n", 4);
            if (!hend)
                return px_errf(err, errlen, PX_EINVAL,
                               "multipart part headers unterminated or longer than %d bytes",
                               MAX_HEADER_BLOCK);
            int rc = parse_headers((const char *)body + pos, (size_t)(hend - body) - pos, p, err,
                                   errlen);
            if (rc) return rc;
            hend += 2;
        }
        size_t dstart = (size_t)(hend - body) + 2;
        const uint8_t *d = find_delimiter(body + dstart, body + n, delim, dlen);
        if (!d) return px_errf(err, errlen, PX_EINVAL, "multipart part is not terminated by a boundary");
        p->data = body + dstart;
        p->len = (size_t)(d - body) - dstart;
        (*nparts)++;
        pos = (size_t)(d - body) + dlen;
    }
    return 0;
}

const px_part *px_multipart_find(const px_part *parts, int nparts, const char *name)
{
    for (int i = 0; i < nparts; i++)
        if (strcmp(parts[i].name, name) == 0) return &parts[i];
    return NULL;
}
