/*
 * cors.c — CORS headers and preflights (see cors.h).
 */
#include "serve/cors.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Whether origin is in the comma-separated list (exact, as browsers send
 * it: scheme://host[:port]). */
static int origin_listed(const char *list, const char *origin)
{
    size_t n = strlen(origin);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',') p++;
        size_t len = strcspn(p, ", ");
        if (len == n && len && !strncasecmp(p, origin, n)) return 1;
        p += len;
    }
    return 0;
}

void px_cors_headers(const px_serve_config *cfg, struct MHD_Connection *c,
                     struct MHD_Response *resp)
{
    if (!cfg->cors_origin || !cfg->cors_origin[0]) return;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    int any = !strcmp(cfg->cors_origin, "*");
    if (!any && (!origin || !origin_listed(cfg->cors_origin, origin))) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", any ? "*" : origin);
    if (!any) MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers", PX_CORS_EXPOSED);
}

int px_cors_is_preflight(const px_serve_config *cfg, struct MHD_Connection *c, const char *method)
{
    return cfg->cors_origin && cfg->cors_origin[0] && !strcmp(method, "OPTIONS") &&
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin") &&
           MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method");
}

struct MHD_Response *px_cors_preflight(struct MHD_Connection *c)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp) return NULL;
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
    const char *req =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    /* Echo what was asked when it is a plain list of header names (a browser
     * asks for exactly what the script sets); anything odd gets the list
     * pixserve reads. */
    char allow[256];
    size_t n = req ? strlen(req) : 0;
    int ok = req && n < sizeof allow;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)req[i]) || strchr("-_, ", req[i]);
    snprintf(allow, sizeof allow, "%s",
             ok ? req : "Content-Type, Authorization, X-API-Key, X-Timeout-Ms");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", allow);
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    return resp;
}
