/*
 * multipart_test.c — the multipart/form-data splitter: well-formed bodies
 * from browsers and curl, binary content with look-alike delimiters, and
 * every malformed shape.
 */
#include "core/err.h"
#include "harness.h"
#include "serve/multipart.h"

#include <stdio.h>

static int parse(const char *body, const char *boundary, px_part *parts, int max, int *n, char *err)
{
    return px_multipart_parse((const uint8_t *)body, strlen(body), boundary, parts, max, n, err, 200);
}

TEST(t_boundary_header)
{
    char b[PX_MULTIPART_MAX_BOUNDARY + 1], err[200];
    T_EQ_INT(px_multipart_boundary("multipart/form-data; boundary=abc123", b, err, 200), 0);
    T_EQ_STR(b, "abc123");
    T_EQ_INT(px_multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b;c\"", b, err,
                                   200),
             0);
    T_EQ_STR(b, "a b;c");
    T_EQ_INT(px_multipart_boundary("application/json", b, err, 200), PX_EUNSUP);
    T_EQ_INT(px_multipart_boundary(NULL, b, err, 200), PX_EUNSUP);
    T_EQ_INT(px_multipart_boundary("multipart/form-data", b, err, 200), PX_EINVAL);
    T_CONTAINS(err, "boundary");
    T_EQ_INT(px_multipart_boundary("multipart/form-data; boundary=", b, err, 200), PX_EINVAL);
    char longb[120] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'x', 75);
    T_EQ_INT(px_multipart_boundary(longb, b, err, 200), PX_EINVAL);
    T_EQ_INT(px_multipart_boundary("multipart/form-data; boundary=\"unterminated", b, err, 200),
             PX_EINVAL);
}

TEST(t_two_files_and_a_field)
{
    const char *body = "--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
                       "Content-Type: image/png\r\n"
                       "\r\n"
                       "PNGDATA\r\n--XyZnot-a-boundary\r\n"
                       "\r\n--XyZ\r\n"
                       "content-disposition: form-data; name=mask; filename=\"m.png\"\r\n"
                       "\r\n"
                       "\r\n\r\n"
                       "\r\n--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"quality\"\r\n"
                       "\r\n"
                       "80\r\n--XyZ--\r\n";
    px_part parts[8];
    int n;
    char err[200];
    T_EQ_INT(parse(body, "XyZ", parts, 8, &n, err), 0);
    T_EQ_INT(n, 3);
    T_EQ_STR(parts[0].name, "image");
    T_EQ_STR(parts[0].filename, "a.png");
    T_EQ_STR(parts[0].content_type, "image/png");
    /* "\r\n--XyZnot-a-boundary" starts like a delimiter but is not followed
     * by CRLF or "--", so it is data. */
    T_EQ_INT(parts[0].len, 30);
    T_EQ_MEM(parts[0].data, "PNGDATA\r\n--XyZnot-a-boundary\r\n", 30);
    T_EQ_STR(parts[1].name, "mask");
    T_EQ_INT(parts[1].len, 4);
    T_EQ_MEM(parts[1].data, "\r\n\r\n", 4);
    T_EQ_STR(parts[2].name, "quality");
    T_EQ_INT(parts[2].len, 2);
    T_TRUE(px_multipart_find(parts, n, "mask") == &parts[1]);
    T_TRUE(px_multipart_find(parts, n, "nope") == NULL);
}

TEST(t_preamble_and_binary)
{
    char body[256];
    size_t n = 0;
    const char *pre = "ignored preamble\r\n--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n";
    memcpy(body, pre, strlen(pre));
    n += strlen(pre);
    const uint8_t bin[] = {0, 1, 2, '\r', '\n', '-', '-', 'a', 255};
    memcpy(body + n, bin, sizeof bin);
    n += sizeof bin;
    memcpy(body + n, "\r\n--b--", 7);
    n += 7;
    px_part parts[2];
    int np;
    char err[200];
    T_EQ_INT(px_multipart_parse((const uint8_t *)body, n, "b", parts, 2, &np, err, 200), 0);
    T_EQ_INT(np, 1);
    T_EQ_INT(parts[0].len, sizeof bin);
    T_EQ_MEM(parts[0].data, bin, sizeof bin);
}

TEST(t_malformed)
{
    px_part parts[2];
    int n;
    char err[200];
    T_EQ_INT(parse("no delimiter at all", "b", parts, 2, &n, err), PX_EINVAL);
    T_CONTAINS(err, "opening boundary");
    T_EQ_INT(parse("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nnever closed", "b",
                   parts, 2, &n, err),
             PX_EINVAL);
    T_CONTAINS(err, "not terminated");
    T_EQ_INT(parse("--b\r\nContent-Disposition: form-data; name=\"x\"\r\nno blank line", "b", parts,
                   2, &n, err),
             PX_EINVAL);
    T_EQ_INT(parse("--b\r\nX-Other: 1\r\n\r\ndata\r\n--b--", "b", parts, 2, &n, err), PX_EINVAL);
    T_CONTAINS(err, "Content-Disposition");
    T_EQ_INT(parse("--b\r\nContent-Disposition: attachment\r\n\r\nd\r\n--b--", "b", parts, 2, &n,
                   err),
             PX_EINVAL);
    T_EQ_INT(parse("--b\r\nContent-Disposition: form-data; name=\"x\r\n\r\nd\r\n--b--", "b", parts,
                   2, &n, err),
             PX_EINVAL);
    T_EQ_INT(parse("--bXX", "b", parts, 2, &n, err), PX_EINVAL);
    T_EQ_INT(parse("--b\r\nContent-Disposition: form-data; name=x\r\n\r\nd\r\n--bX", "b", parts, 2,
                   &n, err),
             PX_EINVAL);
    const char *three = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                        "--b\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n"
                        "--b\r\nContent-Disposition: form-data; name=c\r\n\r\n3\r\n--b--";
    T_EQ_INT(parse(three, "b", parts, 2, &n, err), PX_EINVAL);
    T_CONTAINS(err, "too many");
    /* A name longer than the field buffer is refused, not truncated. */
    char big[600];
    snprintf(big, sizeof big, "--b\r\nContent-Disposition: form-data; name=\"%0100d\"\r\n\r\nd\r\n--b--", 7);
    T_EQ_INT(parse(big, "b", parts, 2, &n, err), PX_EINVAL);
}

TEST(t_header_block_cap)
{
    static char body[20000];
    strcpy(body, "--b\r\nContent-Disposition: form-data; name=x\r\nX-Pad: ");
    size_t n = strlen(body);
    memset(body + n, 'p', 10000);
    strcpy(body + n + 10000, "\r\n\r\nd\r\n--b--");
    px_part parts[2];
    int np;
    char err[200];
    T_EQ_INT(parse(body, "b", parts, 2, &np, err), PX_EINVAL);
    T_CONTAINS(err, "8192");
}

TEST_MAIN(t_boundary_header, t_two_files_and_a_field, t_preamble_and_binary, t_malformed,
          t_header_block_cap)
