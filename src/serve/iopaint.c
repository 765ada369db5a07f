/*
 * iopaint.c — IOPaint's frontend calls that answer from the server's state
 * (see iopaint.h): server-config, the current model, gen-info, adjust_mask,
 * the plugin calls and the socket.io endpoint.
 *
 * socket.io: IOPaint's client opens a socket.io connection on load and
 * listens for diffusion_progress/diffusion_finish; with nothing at
 * /socket.io/ it reconnects forever (a 404 every few seconds, console
 * errors). pixserve answers the Engine.IO v4 polling handshake without
 * upgrades, acknowledges the client's namespace CONNECT and ends it with a
 * server DISCONNECT in the same payload: socket.io clients do not reconnect
 * after a server-side disconnect. Progress is not pushed this way because
 * the engines behind the IOPaint dialect are erase models that run in one
 * step (no progress to show), and text-to-image jobs have their own event
 * stream (GET /api/v1/jobs/{id}/events), which needs no session state,
 * long-polling or WebSocket upgrade inside the HTTP layer.
 */
#include "serve/server_impl.h"

#include "core/alloc.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "core/jsonw.h"
#include "serve/iopaint.h"
#include "serve/multipart.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum MHD_Result send_json(struct MHD_Connection *c, struct request *r, px_buf *b)
{
    return px_server_send_buf(c, r, 200, "application/json", b, NULL, NULL);
}

/* ------------------------------------------------------------ models */

/* IOPaint's ModelInfo for an inpaint engine: an erase model ("inpaint"),
 * no prompt, none of the diffusion options. */
static void model_info(px_buf *b, const px_engine *e)
{
    px_buf_puts(b, "{\"name\":");
    px_json_str(b, px_engine_name(e));
    px_buf_puts(b, ",\"path\":");
    px_json_str(b, px_engine_name(e));
    px_buf_puts(b, ",\"model_type\":\"inpaint\",\"is_single_file_diffusers\":false,"
                   "\"need_prompt\":false,\"controlnets\":[],\"brushnets\":[],"
                   "\"support_strength\":false,\"support_outpainting\":false,"
                   "\"support_lcm_lora\":false,\"support_controlnet\":false,"
                   "\"support_brushnet\":false,\"support_powerpaint_v2\":false}");
}

static int inpaint_engines(const px_server *s)
{
    int n = 0;
    for (int i = 0; atomic_load(&s->ready) && i < s->nengines; i++)
        n += px_engine_kind_of(s->engines[i]) == PX_ENGINE_INPAINT;
    return n;
}

static enum MHD_Result server_config(px_server *s, struct MHD_Connection *c, struct request *r)
{
    const px_serve_config *cfg = s->cfg;
    px_buf b;
    px_buf_init(&b, 1 << 16);
    px_buf_puts(&b, "{\"plugins\":[],\"modelInfos\":[");
    int k = 0;
    for (int i = 0; atomic_load(&s->ready) && i < s->nengines; i++) {
        if (px_engine_kind_of(s->engines[i]) != PX_ENGINE_INPAINT) continue;
        if (k++) px_buf_puts(&b, ",");
        model_info(&b, s->engines[i]);
    }
    px_buf_puts(&b, "],\"removeBGModel\":\"\",\"removeBGModels\":[],\"realesrganModel\":\"\","
                    "\"realesrganModels\":[],\"interactiveSegModel\":\"\","
                    "\"interactiveSegModels\":[],\"enableFileManager\":");
    px_buf_puts(&b, cfg->input && px_iopaint_is_dir(cfg->input) ? "true" : "false");
    px_buf_puts(&b, ",\"enableAutoSaving\":");
    px_buf_puts(&b, cfg->output_dir ? "true" : "false");
    px_buf_printf(&b,
                  ",\"enableControlnet\":false,\"controlnetMethod\":\"\","
                  "\"disableModelSwitch\":%s,\"isDesktop\":false,\"samplers\":[]}\n",
                  inpaint_engines(s) > 1 ? "false" : "true");
    return send_json(c, r, &b);
}

/* GET: the current model; POST {name}: switch to another loaded one. */
static enum MHD_Result model(px_server *s, struct MHD_Connection *c, struct request *r,
                             const char *method)
{
    if (!atomic_load(&s->ready) || atomic_load(&s->current) < 0)
        return px_server_send_error(s, c, r, 0, PX_EUNAVAIL, "the engines are still loading",
                                    "Retry-After", "1");
    if (!strcmp(method, MHD_HTTP_METHOD_POST)) {
        char err[200];
        cJSON *root = px_json_parse((const char *)r->body.data, r->body.len, 4, 64,
                                    "the request body", NULL, err, sizeof err);
        const cJSON *name = root ? cJSON_GetObjectItemCaseSensitive(root, "name") : NULL;
        int found = -1;
        for (int i = 0; cJSON_IsString(name) && i < s->nengines && found < 0; i++)
            if (px_engine_kind_of(s->engines[i]) == PX_ENGINE_INPAINT &&
                !strcmp(px_engine_name(s->engines[i]), name->valuestring))
                found = i;
        if (found < 0) {
            if (root)
                snprintf(err, sizeof err,
                         "model %.60s is not loaded (GET /api/v1/server-config "
                         "lists the loaded ones)",
                         cJSON_IsString(name) ? name->valuestring : "(no name)");
            cJSON_Delete(root);
            return px_server_send_error(s, c, r, 0, root ? PX_ENOTFOUND : PX_EINVAL, err, NULL,
                                        NULL);
        }
        cJSON_Delete(root);
        atomic_store(&s->current, found);
    }
    px_buf b;
    px_buf_init(&b, 4096);
    model_info(&b, s->engines[atomic_load(&s->current)]);
    px_buf_puts(&b, "\n");
    return send_json(c, r, &b);
}

/* ------------------------------------------------------------ gen-info, masks */

/* The multipart part "file" of the body, or an error reply. */
const px_part *px_iopaint_file_part(struct MHD_Connection *c, struct request *r, px_part *parts,
                                    int max, char *err, size_t errlen)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    char boundary[PX_MULTIPART_MAX_BOUNDARY + 1];
    int np = 0;
    if (px_multipart_boundary(ct ? ct : "", boundary, err, errlen) ||
        px_multipart_parse(r->body.data, r->body.len, boundary, parts, max, &np, err, errlen))
        return NULL;
    const px_part *p = px_multipart_find(parts, np, "file");
    if (!p) px_errf(err, errlen, PX_EINVAL, "missing multipart part 'file'");
    return p;
}

static enum MHD_Result gen_info(px_server *s, struct MHD_Connection *c, struct request *r)
{
    px_part parts[8];
    char err[200];
    const px_part *f = px_iopaint_file_part(c, r, parts, 8, err, sizeof err);
    if (!f) return px_server_send_error(s, c, r, 400, PX_EINVAL, err, NULL, NULL);
    char *prompt, *negative;
    if (px_iopaint_gen_info(f->data, f->len, &prompt, &negative))
        return px_server_send_error(s, c, r, 0, PX_ENOMEM, "out of memory", NULL, NULL);
    px_buf b;
    px_buf_init(&b, 4u << 20);
    px_buf_puts(&b, "{\"prompt\":");
    px_json_str(&b, prompt);
    px_buf_puts(&b, ",\"negative_prompt\":");
    px_json_str(&b, negative);
    px_buf_puts(&b, "}\n");
    free(prompt);
    free(negative);
    return send_json(c, r, &b);
}

static enum MHD_Result adjust_mask(px_server *s, struct MHD_Connection *c, struct request *r)
{
    px_img_limits lim = {.max_pixels = s->cfg->max_pixels, .max_side = s->cfg->max_side};
    px_buf png;
    px_buf_init(&png, (size_t)1 << 30);
    char err[320];
    int rc = px_iopaint_adjust_mask(r->body.data, r->body.len, &lim, &png, err, sizeof err);
    if (rc) {
        px_buf_free(&png);
        return px_server_send_error(s, c, r, 0, rc, err, NULL, NULL);
    }
    return px_server_send_buf(c, r, 200, "image/png", &png, NULL, NULL);
}

/* ------------------------------------------------------------ socket.io */

/* Whether an Engine.IO session id has the shape pixserve hands out. */
static int sid_ok(const char *sid)
{
    size_t n = strlen(sid);
    if (!n || n > 40) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((sid[i] >= 'a' && sid[i] <= 'z') || (sid[i] >= '0' && sid[i] <= '9') ||
              sid[i] == '-'))
            return 0;
    return 1;
}

static enum MHD_Result eio_error(struct MHD_Connection *c, struct request *r, int code,
                                 const char *msg)
{
    px_buf b;
    px_buf_init(&b, 256);
    px_buf_printf(&b, "{\"code\":%d,\"message\":\"%s\"}", code, msg);
    return px_server_send_buf(c, r, 400, "application/json", &b, NULL, NULL);
}

enum MHD_Result px_iopaint_socketio(px_server *s, struct MHD_Connection *c, struct request *r,
                                    const char *method)
{
    static atomic_ullong counter;
    (void)s;
    const char *eio = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "EIO");
    const char *transport = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "transport");
    const char *sid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "sid");
    if (!eio || strcmp(eio, "4")) return eio_error(c, r, 5, "Unsupported protocol version");
    if (!transport || strcmp(transport, "polling"))
        return eio_error(c, r, 0, "Transport unknown"); /* no WebSocket (see above) */
    if (sid && !sid_ok(sid)) return eio_error(c, r, 1, "Session ID unknown");
    if (!sid && strcmp(method, MHD_HTTP_METHOD_GET)) return eio_error(c, r, 3, "Bad request");
    px_buf b;
    px_buf_init(&b, 512);
    const char *ctype = "text/plain; charset=UTF-8";
    if (!sid) { /* open: no upgrades, so the client stays on polling */
        unsigned long long k = atomic_fetch_add(&counter, 1) + 1;
        px_buf_printf(&b,
                      "0{\"sid\":\"px-%llx-%llx\",\"upgrades\":[],\"pingInterval\":25000,"
                      "\"pingTimeout\":20000,\"maxPayload\":1000000}",
                      (unsigned long long)r->t_arrival, k);
    } else if (!strcmp(method, MHD_HTTP_METHOD_POST)) {
        px_buf_puts(&b, "ok"); /* the client's CONNECT, pong or close: nothing to keep */
        ctype = "text/html";
    } else { /* CONNECT ack for "/", then DISCONNECT: the client stops here */
        px_buf_printf(&b,
                      "40{\"sid\":\"%s-0\"}\x1e"
                      "41",
                      sid);
    }
    return px_server_send_buf(c, r, 200, ctype, &b, NULL, NULL);
}

/* ------------------------------------------------------------ dispatch */

enum MHD_Result px_iopaint_serve(px_server *s, struct MHD_Connection *c, struct request *r,
                                 const char *method, const char *url)
{
    const char *p = url + strlen("/api/v1/");
    if (!strcmp(p, "server-config")) return server_config(s, c, r);
    if (!strcmp(p, "model")) return model(s, c, r, method);
    if (!strcmp(p, "gen-info")) return gen_info(s, c, r);
    if (!strcmp(p, "adjust_mask")) return adjust_mask(s, c, r);
    if (!strcmp(p, "inputimage")) return px_iopaint_inputimage(s, c, r);
    if (!strcmp(p, "save_image")) return px_iopaint_save_image(s, c, r);
    if (!strcmp(p, "medias")) return px_iopaint_medias(s, c, r);
    if (!strcmp(p, "media_file")) return px_iopaint_media_file(s, c, r, 0);
    if (!strcmp(p, "media_thumbnail_file")) return px_iopaint_media_file(s, c, r, 1);
    /* switch_plugin_model, run_plugin_gen_image, run_plugin_gen_mask */
    return px_server_send_error(s, c, r, 404, PX_ENOTFOUND,
                                "pixserve runs no plugins (server-config lists none)", NULL, NULL);
}
