/*
 * routes.c — the route table (see routes.h). Rows are matched in order;
 * exact paths before the prefixes that would cover them.
 */
#include "serve/routes.h"

#include "core/jsonw.h"
#include "serve/kind_generate.h"
#include "serve/kind_inpaint.h"
#include "serve/static.h"

#include <string.h>

/* One route per row (clang-format would put one field per line). */
/* clang-format off */
static const px_route_def g_routes[] = {
    {PX_ROUTE_UI, NULL, 0, "GET", NULL, 0, 0, {"GET /", "GET /dashboard", "GET /ui/{file}"}},
    {PX_ROUTE_UI, "/generate", 0, "GET", NULL, 0, 0, {"GET /generate"}},
    {PX_ROUTE_OTHER, "/api/v1", 0, "GET", NULL, 0, 0, {"GET /api/v1"}},
    {PX_ROUTE_OTHER, "/api/v1/", 0, "GET", NULL, 0, 0, {NULL}},
    {PX_ROUTE_INPAINT_V1, "/api/v1/inpaint", 0, "POST", &px_kind_inpaint, PX_DIALECT_V1, 0,
     {"POST /api/v1/inpaint"}},
    {PX_ROUTE_INPAINT_SEED, "/inpaint", 0, "POST", &px_kind_inpaint, PX_DIALECT_SEED, 0,
     {"POST /inpaint"}},
    {PX_ROUTE_GENERATE, "/api/v1/generate", 0, "POST", &px_kind_generate, PX_DIALECT_SEED, 0,
     {"POST /api/v1/generate"}},
    {PX_ROUTE_GENERATE, "/api/v1/generate_async", 0, "POST", &px_kind_generate, PX_DIALECT_SEED,
     1, {"POST /api/v1/generate_async"}},
    {PX_ROUTE_GENERATE_OPENAI, "/v1/images/generations", 0, "POST", &px_kind_generate,
     PX_DIALECT_OPENAI, 0, {"POST /v1/images/generations"}},
    {PX_ROUTE_JOBS, "/api/v1/jobs", 0, "POST", &px_kind_inpaint, PX_DIALECT_V1, 1,
     {"POST /api/v1/jobs"}},
    {PX_ROUTE_JOBS, "/api/v1/jobs/", 1, "GET, DELETE", NULL, 0, 0,
     {"GET /api/v1/jobs/{id}", "GET /api/v1/jobs/{id}/result", "GET /api/v1/jobs/{id}/events",
      "DELETE /api/v1/jobs/{id}"}},
    {PX_ROUTE_ENGINES, "/api/v1/engines", 0, "GET", NULL, 0, 0, {"GET /api/v1/engines"}},
    {PX_ROUTE_LORAS, "/api/v1/loras", 0, "GET, POST", NULL, 0, 0,
     {"GET /api/v1/loras", "POST /api/v1/loras"}},
    {PX_ROUTE_LORAS, "/api/v1/loras/", 1, "GET, DELETE", NULL, 0, 0,
     {"GET /api/v1/loras/{name}", "DELETE /api/v1/loras/{name}"}},
    {PX_ROUTE_OUTPUTS, "/outputs/", 1, "GET", NULL, 0, 0, {"GET /outputs/{name}"}},
    {PX_ROUTE_HEALTHZ, "/healthz", 0, "GET", NULL, 0, 0, {"GET /healthz"}},
    {PX_ROUTE_READYZ, "/readyz", 0, "GET", NULL, 0, 0, {"GET /readyz"}},
    {PX_ROUTE_METRICS, "/metrics", 0, "GET", NULL, 0, 0, {"GET /metrics"}},
    /* IOPaint's web frontend (iopaint.c; docs/api.md, IOPaint compatibility) */
    {PX_ROUTE_IOPAINT, "/api/v1/server-config", 0, "GET", NULL, 0, 0, {"GET /api/v1/server-config"}},
    {PX_ROUTE_IOPAINT, "/api/v1/model", 0, "GET, POST", NULL, 0, 0,
     {"GET /api/v1/model", "POST /api/v1/model"}},
    {PX_ROUTE_IOPAINT, "/api/v1/gen-info", 0, "POST", NULL, 0, 0, {"POST /api/v1/gen-info"}},
    {PX_ROUTE_IOPAINT, "/api/v1/inputimage", 0, "GET", NULL, 0, 0, {"GET /api/v1/inputimage"}},
    {PX_ROUTE_IOPAINT, "/api/v1/save_image", 0, "POST", NULL, 0, 0, {"POST /api/v1/save_image"}},
    {PX_ROUTE_IOPAINT, "/api/v1/medias", 0, "GET", NULL, 0, 0, {"GET /api/v1/medias"}},
    {PX_ROUTE_IOPAINT, "/api/v1/media_file", 0, "GET", NULL, 0, 0, {"GET /api/v1/media_file"}},
    {PX_ROUTE_IOPAINT, "/api/v1/media_thumbnail_file", 0, "GET", NULL, 0, 0,
     {"GET /api/v1/media_thumbnail_file"}},
    {PX_ROUTE_IOPAINT, "/api/v1/adjust_mask", 0, "POST", NULL, 0, 0, {"POST /api/v1/adjust_mask"}},
    {PX_ROUTE_IOPAINT, "/api/v1/switch_plugin_model", 0, "POST", NULL, 0, 0, {NULL}},
    {PX_ROUTE_IOPAINT, "/api/v1/run_plugin_gen_image", 0, "POST", NULL, 0, 0, {NULL}},
    {PX_ROUTE_IOPAINT, "/api/v1/run_plugin_gen_mask", 0, "POST", NULL, 0, 0, {NULL}},
    {PX_ROUTE_SOCKETIO, "/socket.io/", 1, "GET, POST", NULL, 0, 0, {"GET /socket.io/"}},
};
/* clang-format on */
#define NROUTES (sizeof g_routes / sizeof g_routes[0])

static const px_route_def g_other = {PX_ROUTE_OTHER, "", 0, "", NULL, 0, 0, {NULL}};

/* Metric labels by slot. */
static const char *const g_labels[PX_ROUTE_COUNT] = {
    [PX_ROUTE_INPAINT_V1] = "/api/v1/inpaint",
    [PX_ROUTE_INPAINT_SEED] = "/inpaint",
    [PX_ROUTE_GENERATE] = "/api/v1/generate",
    [PX_ROUTE_GENERATE_OPENAI] = "/v1/images/generations",
    [PX_ROUTE_JOBS] = "/api/v1/jobs",
    [PX_ROUTE_ENGINES] = "/api/v1/engines",
    [PX_ROUTE_LORAS] = "/api/v1/loras",
    [PX_ROUTE_OUTPUTS] = "/outputs",
    [PX_ROUTE_HEALTHZ] = "/healthz",
    [PX_ROUTE_READYZ] = "/readyz",
    [PX_ROUTE_METRICS] = "/metrics",
    [PX_ROUTE_IOPAINT] = "iopaint",
    [PX_ROUTE_SOCKETIO] = "/socket.io",
    [PX_ROUTE_UI] = "ui",
    [PX_ROUTE_OTHER] = "other",
};

const px_route_def *px_route_find(const char *url)
{
    for (size_t i = 0; i < NROUTES; i++) {
        const px_route_def *d = &g_routes[i];
        if (!d->path) continue;
        if (d->prefix ? !strncmp(url, d->path, strlen(d->path)) : !strcmp(url, d->path)) return d;
    }
    if (px_static_is_ui_path(url)) return &g_routes[0];
    return &g_other;
}

const char *px_route_label(enum px_route r)
{
    return (unsigned)r < PX_ROUTE_COUNT ? g_labels[r] : "other";
}

int px_route_allows(const px_route_def *d, const char *method)
{
    size_t n = strlen(method);
    if (!n) return 0;
    for (const char *m = d->methods; (m = strstr(m, method)) != NULL; m += n)
        if ((m == d->methods || m[-1] == ' ') && (m[n] == 0 || m[n] == ',')) return 1;
    return !strcmp(method, "HEAD") && px_route_allows(d, "GET");
}

int px_routes_list_json(px_buf *out)
{
    int rc = 0, k = 0;
    for (size_t i = 0; i < NROUTES && !rc; i++)
        for (int j = 0; j < PX_ROUTE_LISTED && g_routes[i].listed[j] && !rc; j++) {
            if (k++) rc = px_buf_puts(out, ",");
            if (!rc) rc = px_json_str(out, g_routes[i].listed[j]);
        }
    return rc;
}
