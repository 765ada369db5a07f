/*
 * static.c — serves the embedded web UI (see static.h): URL → embedded file,
 * content types, ETag revalidation and the reply's headers.
 */
#include "serve/static.h"

#include <string.h>
#include <strings.h>

int px_static_is_ui_path(const char *url)
{
    return !strcmp(url, "/") || !strcmp(url, "/dashboard") || !strcmp(url, "/generate") ||
           !strncmp(url, PX_STATIC_PREFIX, sizeof PX_STATIC_PREFIX - 1);
}

/* Whether a name under web/ is one that could be embedded: the generator only
 * takes plain relative paths, and this keeps the lookup honest even if a
 * future table held something odd. */
static int name_ok(const char *name)
{
    if (!name[0] || name[0] == '/' || name[0] == '.') return 0;
    for (const char *p = name; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f || ch == '\\') return 0;
        if (ch == '/' && (p[1] == '/' || p[1] == '.' || p[1] == 0)) return 0;
        if (ch == '.' && p[1] == '.') return 0;
    }
    return 1;
}

const px_static_file *px_static_find(const char *url)
{
    const char *name;
    if (!strcmp(url, "/")) name = "index.html";
    else if (!strcmp(url, "/dashboard")) name = "dashboard.html";
    else if (!strcmp(url, "/generate")) name = "generate.html";
    else if (!strncmp(url, PX_STATIC_PREFIX, sizeof PX_STATIC_PREFIX - 1))
        name = url + sizeof PX_STATIC_PREFIX - 1;
    else return NULL;
    if (!name_ok(name)) return NULL;
    /* The table is sorted by name (strcmp order): binary search. */
    size_t lo = 0, hi = px_static_nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, px_static_files[mid].name);
        if (c == 0) return &px_static_files[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

const char *px_static_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"json", "application/json"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"webp", "image/webp"},
        {"ico", "image/x-icon"},
        {"txt", "text/plain; charset=utf-8"},
        {"md", "text/markdown; charset=utf-8"},
    };
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash ? slash + 1 : name, '.');
    if (dot && dot[1])
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot + 1, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

const char *px_static_cache_control(const px_static_file *f)
{
    (void)f;
    return "no-cache";
}

/* Skips optional whitespace (RFC 9110 OWS). */
static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

int px_static_etag_matches(const char *inm, const char *etag)
{
    if (!inm || !etag) return 0;
    size_t elen = strlen(etag);
    const char *p = skip_ows(inm);
    if (*p == '*' && !*skip_ows(p + 1)) return 1;
    while (*p) {
        p = skip_ows(p);
        if (!strncmp(p, "W/", 2)) p += 2;
        /* An entry runs to the next comma outside quotes. */
        const char *start = p;
        int quoted = 0;
        while (*p && (quoted || *p != ',')) {
            if (*p == '"') quoted = !quoted;
            p++;
        }
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
        if ((size_t)(end - start) == elen && !memcmp(start, etag, elen)) return 1;
        if (*p == ',') p++;
    }
    return 0;
}

enum MHD_Result px_static_reply(struct MHD_Connection *c, const px_static_file *f, int *status)
{
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    int not_modified = px_static_etag_matches(inm, f->etag);
    /* The bytes live in the binary for its whole life: MHD may point at them. */
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        not_modified ? 0 : f->len, not_modified ? NULL : (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    if (!not_modified)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                px_static_content_type(f->name));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f->etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, px_static_cache_control(f));
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' blob: data:; "
                            "connect-src 'self'; style-src 'self'; script-src 'self'; "
                            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
    *status = not_modified ? 304 : 200;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)*status, resp);
    MHD_destroy_response(resp);
    return ret;
}
