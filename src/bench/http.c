/*
 * http.c — incremental HTTP/1.1 response parser (see http.h).
 */
#include "bench/http.h"

#include "core/err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum {
    S_STATUS,     /* waiting for the status line */
    S_HEADER,     /* header lines until the empty one */
    S_BODY_LEN,   /* Content-Length bytes */
    S_BODY_CLOSE, /* until the connection closes */
    S_CHUNK_SIZE, /* chunk-size [; ext] line */
    S_CHUNK_DATA,
    S_CHUNK_CRLF, /* the CRLF after a chunk's data */
    S_TRAILER,    /* trailer lines until the empty one */
    S_DONE
};

void pb_http_init(pb_http_parser *p, int head, px_buf *sink)
{
    p->state = S_STATUS;
    p->head = head;
    p->header_bytes = 0;
    p->nheaders = 0;
    p->remaining = 0;
    p->line_len = 0;
    p->sink = sink;
    p->status = 0;
    p->minor = 1;
    p->keep_alive = 1;
    p->chunked = 0;
    p->content_length = -1;
    p->body_bytes = 0;
    p->body_truncated = 0;
    p->wire_bytes = 0;
    p->content_type[0] = 0;
    p->server_timing[0] = 0;
}

int pb_http_started(const pb_http_parser *p)
{
    return p->wire_bytes > 0 || p->line_len > 0;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

/* Case-insensitive: does the comma-separated list v[n] contain token t? */
static int has_token(const char *v, size_t n, const char *t)
{
    size_t tl = strlen(t);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ',') j++;
        const char *s = v + i;
        size_t len = j - i;
        trim(&s, &len);
        if (len == tl && strncasecmp(s, t, tl) == 0) return 1;
        i = j + 1;
    }
    return 0;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static int parse_status(pb_http_parser *p, const char *l, size_t n, char *err, size_t errlen)
{
    /* HTTP/1.x SP 3DIGIT [SP reason] */
    if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)l[7]) || l[8] != ' ' ||
        !isdigit((unsigned char)l[9]) || !isdigit((unsigned char)l[10]) ||
        !isdigit((unsigned char)l[11]) || (n > 12 && l[12] != ' '))
        return px_errf(err, errlen, PX_ECORRUPT, "bad status line '%.*s'", (int)(n > 60 ? 60 : n),
                       l);
    p->minor = l[7] - '0';
    p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (p->status < 100)
        return px_errf(err, errlen, PX_ECORRUPT, "bad status code %d", p->status);
    /* HTTP/1.0 closes unless it says keep-alive. */
    p->keep_alive = p->minor >= 1;
    return 0;
}

static int parse_header(pb_http_parser *p, const char *l, size_t n, char *err, size_t errlen)
{
    if (++p->nheaders > PB_HTTP_MAX_HEADERS)
        return px_errf(err, errlen, PX_ETOOBIG, "more than %d header lines", PB_HTTP_MAX_HEADERS);
    if (l[0] == ' ' || l[0] == '\t')
        return px_errf(err, errlen, PX_ECORRUPT, "folded header line (obsolete, refused)");
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l) return px_errf(err, errlen, PX_ECORRUPT, "header line without a name");
    size_t nl = (size_t)(colon - l);
    for (size_t i = 0; i < nl; i++)
        if (l[i] <= ' ' || l[i] >= 127)
            return px_errf(err, errlen, PX_ECORRUPT, "bad character in header name");
    const char *v = colon + 1;
    size_t vn = n - nl - 1;
    trim(&v, &vn);
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(l, name, nl) == 0)
    if (p->state == S_TRAILER) return 0; /* trailers carry nothing we use */
    if (IS("content-length")) {
        if (vn == 0 || vn > 18)
            return px_errf(err, errlen, PX_ECORRUPT, "bad Content-Length '%.*s'", (int)(vn > 40 ? 40 : vn), v);
        int64_t len = 0;
        for (size_t i = 0; i < vn; i++) {
            if (!isdigit((unsigned char)v[i]))
                return px_errf(err, errlen, PX_ECORRUPT, "bad Content-Length '%.*s'",
                               (int)(vn > 40 ? 40 : vn), v);
            len = len * 10 + (v[i] - '0');
        }
        if (p->content_length >= 0 && p->content_length != len)
            return px_errf(err, errlen, PX_ECORRUPT, "conflicting Content-Length headers");
        p->content_length = len;
    } else if (IS("transfer-encoding")) {
        /* chunked must be the last coding; anything else is read to close */
        const char *last = v;
        size_t ln = vn;
        const char *comma = NULL;
        for (size_t i = 0; i < vn; i++)
            if (v[i] == ',') comma = v + i;
        if (comma) {
            last = comma + 1;
            ln = vn - (size_t)(last - v);
            trim(&last, &ln);
        }
        p->chunked = ln == 7 && strncasecmp(last, "chunked", 7) == 0 ? 1 : -1;
    } else if (IS("connection")) {
        if (has_token(v, vn, "close")) p->keep_alive = 0;
        else if (has_token(v, vn, "keep-alive")) p->keep_alive = 1;
    } else if (IS("content-type")) {
        copy_value(p->content_type, sizeof p->content_type, v, vn);
    } else if (IS("server-timing")) {
        size_t have = strlen(p->server_timing);
        if (have && have + 2 < sizeof p->server_timing) {
            memcpy(p->server_timing + have, ", ", 3);
            have += 2;
        }
        copy_value(p->server_timing + have, sizeof p->server_timing - have, v, vn);
    }
#undef IS
    return 0;
}

/* After the empty line that ends the headers: how is the body framed? */
static int headers_done(pb_http_parser *p, char *err, size_t errlen)
{
    if (p->status >= 100 && p->status < 200) {
        if (p->status == 101)
            return px_errf(err, errlen, PX_ECORRUPT, "unexpected 101 Switching Protocols");
        /* interim response (100 Continue, 103 Early Hints): the real one follows */
        int head = p->head;
        px_buf *sink = p->sink;
        uint64_t wire = p->wire_bytes;
        pb_http_init(p, head, sink);
        p->wire_bytes = wire;
        return 0;
    }
    if (p->head || p->status == 204 || p->status == 304) {
        p->state = S_DONE;
    } else if (p->chunked == 1) {
        p->state = S_CHUNK_SIZE;
    } else if (p->chunked == -1 || p->content_length < 0) {
        p->state = S_BODY_CLOSE;
        p->keep_alive = 0;
    } else {
        p->remaining = (uint64_t)p->content_length;
        p->state = p->remaining ? S_BODY_LEN : S_DONE;
    }
    return 0;
}

static int parse_chunk_size(pb_http_parser *p, const char *l, size_t n, char *err, size_t errlen)
{
    uint64_t size = 0;
    size_t i = 0, digits = 0;
    for (; i < n && isxdigit((unsigned char)l[i]); i++, digits++) {
        if (digits >= 15) return px_errf(err, errlen, PX_ECORRUPT, "chunk size too large");
        int c = l[i];
        size = size * 16 + (uint64_t)(isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
    }
    if (digits == 0) return px_errf(err, errlen, PX_ECORRUPT, "bad chunk size line");
    while (i < n && (l[i] == ' ' || l[i] == '\t')) i++;
    if (i < n && l[i] != ';') return px_errf(err, errlen, PX_ECORRUPT, "bad chunk size line");
    /* chunk extensions (";name=value") are ignored */
    if (size == 0) {
        p->state = S_TRAILER;
    } else {
        p->remaining = size;
        p->state = S_CHUNK_DATA;
    }
    return 0;
}

/* One complete line (without CR LF) in the current state. */
static int on_line(pb_http_parser *p, const char *l, size_t n, char *err, size_t errlen)
{
    switch (p->state) {
    case S_STATUS:
        p->state = S_HEADER;
        return parse_status(p, l, n, err, errlen);
    case S_HEADER:
        if (n == 0) return headers_done(p, err, errlen);
        return parse_header(p, l, n, err, errlen);
    case S_CHUNK_SIZE:
        return parse_chunk_size(p, l, n, err, errlen);
    case S_CHUNK_CRLF:
        if (n != 0) return px_errf(err, errlen, PX_ECORRUPT, "chunk data longer than its size");
        p->state = S_CHUNK_SIZE;
        return 0;
    case S_TRAILER:
        if (n == 0) {
            p->state = S_DONE;
            return 0;
        }
        return parse_header(p, l, n, err, errlen);
    default:
        return px_errf(err, errlen, PX_ECORRUPT, "internal: line in state %d", p->state);
    }
}

static void body_bytes(pb_http_parser *p, const uint8_t *d, size_t n)
{
    p->body_bytes += n;
    if (p->sink && !p->body_truncated && px_buf_append(p->sink, d, n) != 0) p->body_truncated = 1;
}

static int line_state(int s)
{
    return s == S_STATUS || s == S_HEADER || s == S_CHUNK_SIZE || s == S_CHUNK_CRLF ||
           s == S_TRAILER;
}

int pb_http_feed(pb_http_parser *p, const uint8_t *data, size_t n, size_t *used, char *err,
                 size_t errlen)
{
    size_t i = 0;
    int rc = 0;
    while (i < n && p->state != S_DONE) {
        if (line_state(p->state)) {
            const uint8_t *lf = memchr(data + i, '\n', n - i);
            size_t take = lf ? (size_t)(lf - (data + i)) + 1 : n - i;
            int headerish = p->state == S_STATUS || p->state == S_HEADER || p->state == S_TRAILER;
            if (headerish) {
                p->header_bytes += take;
                if (p->header_bytes > PB_HTTP_MAX_HEADER_BYTES) {
                    rc = px_errf(err, errlen, PX_ETOOBIG, "response headers above %d bytes",
                                 PB_HTTP_MAX_HEADER_BYTES);
                    goto out;
                }
            }
            if (p->line_len + take > PB_HTTP_MAX_LINE) {
                rc = px_errf(err, errlen, PX_ETOOBIG, "response line above %d bytes",
                             PB_HTTP_MAX_LINE);
                goto out;
            }
            const char *l;
            size_t ln;
            if (lf && p->line_len == 0) {
                l = (const char *)data + i; /* whole line in the input: no copy */
                ln = take - 1;
            } else {
                memcpy(p->line + p->line_len, data + i, take);
                p->line_len += take;
                l = p->line;
                ln = p->line_len - 1;
            }
            i += take;
            if (!lf) continue;
            if (ln && l[ln - 1] == '\r') ln--;
            p->line_len = 0;
            /* Leading empty lines before a status line are tolerated
             * (RFC 9112 2.2), but not forever. */
            if (p->state == S_STATUS && ln == 0) continue;
            if ((rc = on_line(p, l, ln, err, errlen)) != 0) goto out;
        } else if (p->state == S_BODY_LEN || p->state == S_CHUNK_DATA) {
            size_t take = n - i;
            if (take > p->remaining) take = (size_t)p->remaining;
            body_bytes(p, data + i, take);
            i += take;
            p->remaining -= take;
            if (p->remaining == 0) p->state = p->state == S_BODY_LEN ? S_DONE : S_CHUNK_CRLF;
        } else { /* S_BODY_CLOSE */
            body_bytes(p, data + i, n - i);
            i = n;
        }
    }
out:
    p->wire_bytes += i;
    *used = i;
    if (rc) return rc;
    return p->state == S_DONE ? PB_HTTP_DONE : PB_HTTP_MORE;
}

int pb_http_eof(pb_http_parser *p, char *err, size_t errlen)
{
    if (p->state == S_DONE) return PB_HTTP_DONE;
    if (p->state == S_BODY_CLOSE) {
        p->state = S_DONE;
        return PB_HTTP_DONE;
    }
    if (!pb_http_started(p))
        return px_errf(err, errlen, PX_EIO, "connection closed before the response");
    return px_errf(err, errlen, PX_ETRUNC, "connection closed in the middle of the response");
}
