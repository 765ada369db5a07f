/*
 * iopaint.h — IOPaint's dialect: the calls IOPaint's web frontend makes
 * besides POST /api/v1/inpaint (which is the inpaint kind's V1 dialect), so
 * that frontend and its scripts work unchanged against pixserve
 * (docs/api.md, "IOPaint compatibility"):
 *
 *   iopaint.c        GET /api/v1/server-config, GET|POST /api/v1/model (the
 *                    server's current inpaint engine), POST gen-info,
 *                    adjust_mask, the plugin calls (none are loaded), and
 *                    /socket.io/ (see px_iopaint_socketio)
 *   iopaint_media.c  GET inputimage (--input FILE), POST save_image
 *                    (--output-dir), the file manager (medias, media_file,
 *                    media_thumbnail_file over --input DIR, --output-dir,
 *                    --mask-dir)
 *   iopaint_ops.c    the parts that read untrusted bytes without HTTP, for
 *                    unit tests and fuzzing: gen-info's prompt and the mask
 *                    adjustments
 *
 * The helper calls run on the HTTP thread: they are short (a chunk scan, one
 * directory listing, one mask or thumbnail bounded by --max-pixels) and come
 * from an interactive, single-user editor; inpainting itself goes through the
 * task pipeline like every other request.
 */
#ifndef PX_SERVE_IOPAINT_H
#define PX_SERVE_IOPAINT_H

#include "core/buf.h"
#include "image/image.h"

#include <stddef.h>
#include <stdint.h>

/* IOPaint's brush colour, which adjust_mask paints its result in: #ffcc00 at
 * alpha 0xbb on a transparent background. */
#define PX_IOPAINT_BRUSH_R 0xff
#define PX_IOPAINT_BRUSH_G 0xcc
#define PX_IOPAINT_BRUSH_B 0x00
#define PX_IOPAINT_BRUSH_A 0xbb

/*
 * gen-info: the prompt and negative prompt of an image, from a PNG's
 * "parameters" text chunk in AUTOMATIC1111's layout ("PROMPT\nNegative
 * prompt: NEG\nSteps: ..."); both empty for other images. *prompt and
 * *negative are malloc'd (caller frees) on success. Returns 0 or PX_ENOMEM.
 */
int px_iopaint_gen_info(const uint8_t *file, size_t n, char **prompt, char **negative);

/*
 * adjust_mask: body is the JSON {mask: base64 or data URL, operate:
 * "expand" | "shrink" | "reverse", kernel_size: 0..256}. The mask is read
 * like an inpaint mask (alpha strokes or non-zero pixels are holes), then
 * grown or shrunk by kernel_size pixels (a disc), or inverted, and written
 * as a PNG in IOPaint's brush colour (appended to png). Returns 0, or
 * PX_EINVAL / PX_ETOOBIG / a decode error with a message.
 */
int px_iopaint_adjust_mask(const uint8_t *body, size_t n, const px_img_limits *lim, px_buf *png,
                           char *err, size_t errlen);

/* Whether path names a directory (the file manager is on with --input DIR). */
int px_iopaint_is_dir(const char *path);

#ifdef PX_SERVE_SERVER_IMPL_H
#include "serve/multipart.h"

/* The multipart part "file" of r's body (IOPaint's uploads), or NULL with a
 * message. parts[max] holds the parts it points into. */
const px_part *px_iopaint_file_part(struct MHD_Connection *c, struct request *r, px_part *parts,
                                    int max, char *err, size_t errlen);
/* The routes (server.c's dispatch). url is the whole path. */
enum MHD_Result px_iopaint_serve(px_server *s, struct MHD_Connection *c, struct request *r,
                                 const char *method, const char *url);
/* /socket.io/ — Engine.IO v4 long-polling, only as far as telling IOPaint's
 * socket.io client that the server ends the session (see iopaint.c). */
enum MHD_Result px_iopaint_socketio(px_server *s, struct MHD_Connection *c, struct request *r,
                                    const char *method);
/* iopaint_media.c's routes, reached through px_iopaint_serve. */
enum MHD_Result px_iopaint_inputimage(px_server *s, struct MHD_Connection *c, struct request *r);
enum MHD_Result px_iopaint_save_image(px_server *s, struct MHD_Connection *c, struct request *r);
enum MHD_Result px_iopaint_medias(px_server *s, struct MHD_Connection *c, struct request *r);
enum MHD_Result px_iopaint_media_file(px_server *s, struct MHD_Connection *c, struct request *r,
                                      int thumbnail);
#endif

#endif
