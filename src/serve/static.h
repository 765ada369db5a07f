/*
 * static.h — the web UI's files (web/), embedded in the binary at build time
 * and served read-only: GET / (the inpaint page), GET /dashboard, and the
 * assets under /ui/.
 *
 * The files are compiled in by a generated C file (tools/embed_web.c writes
 * $(BUILD)/gen/web_assets.c from web/ when building), so the service carries
 * its UI wherever the binary goes. A URL is looked up by exact comparison
 * with the embedded names: nothing is read from disk, and no URL can name
 * anything but those files (no path traversal by construction).
 */
#ifndef PX_SERVE_STATIC_H
#define PX_SERVE_STATIC_H

#include <microhttpd.h>
#include <stddef.h>

/* One embedded file. `name` is its path under web/ ("index.html",
 * "inpaint.js"); `etag` a strong validator derived from the bytes, quoted
 * ("\"9f2c...\""). */
typedef struct px_static_file {
    const char *name;
    const unsigned char *data;
    size_t len;
    const char *etag;
} px_static_file;

/* The table the generator writes (sorted by name; defined in web_assets.c). */
extern const px_static_file px_static_files[];
extern const size_t px_static_nfiles;

/* The URL prefix of the UI's assets: /ui/<name under web/>. */
#define PX_STATIC_PREFIX "/ui/"

/* Whether a request path belongs to the UI (so the router sends it here):
 * "/", "/dashboard" or anything under PX_STATIC_PREFIX. */
int px_static_is_ui_path(const char *url);

/* The embedded file a URL names ("/" → index.html, "/dashboard" →
 * dashboard.html, "/ui/x.js" → x.js), or NULL when there is none (the path
 * is not a UI path, names no embedded file, or holds "..", "//", a
 * backslash or a control character). The result points into static data. */
const px_static_file *px_static_find(const char *url);

/* The Content-Type for a file name, from its extension (text types carry
 * charset=utf-8); "application/octet-stream" when unknown. Never NULL. */
const char *px_static_content_type(const char *name);

/* The Cache-Control for a file: always revalidate ("no-cache") since names
 * are not content-hashed and a rebuilt binary must not serve stale scripts;
 * the ETag makes revalidation a 304 with no body. */
const char *px_static_cache_control(const px_static_file *f);

/* Whether an If-None-Match header value (NULL when absent) matches etag:
 * "*", or any entry of the comma-separated list, weak ("W/") or strong
 * (RFC 9110 weak comparison, as GET requires). */
int px_static_etag_matches(const char *if_none_match, const char *etag);

/*
 * Queues the reply for file f on connection c: 304 with no body when
 * If-None-Match matches its ETag, else 200 with the bytes (MHD leaves the
 * body out for HEAD). Headers: Content-Type, ETag, Cache-Control and a
 * restrictive Content-Security-Policy (same-origin scripts, styles and
 * requests; blob:/data: images for the user's pictures). Sets *status to
 * the status queued. Returns MHD's result (MHD_NO when out of memory).
 */
enum MHD_Result px_static_reply(struct MHD_Connection *c, const px_static_file *f, int *status);

#endif
