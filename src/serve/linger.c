/*
 * linger.c — bounds of the lingering close (see linger.h).
 */
#include "serve/linger.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int px_linger_wanted(const px_serve_config *cfg, struct MHD_Connection *c)
{
    if (cfg->linger_ms <= 0 || cfg->linger_bytes == 0) return 0;
    const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    if (expect && !strcasecmp(expect, "100-continue")) return 0;
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) return strtoull(cl, NULL, 10) > 0;
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return te && strcasestr(te, "chunked") != NULL;
}

void px_linger_start(px_linger *l, const px_serve_config *cfg, int64_t now_ns)
{
    l->until_ns = now_ns + cfg->linger_ms * 1000000;
    l->left = cfg->linger_bytes;
}

int px_linger_drop(px_linger *l, size_t n, int64_t now_ns)
{
    if ((uint64_t)n > l->left || now_ns > l->until_ns) return 0;
    l->left -= n;
    return 1;
}
