/*
 * base64_test.c — round trips, the tolerant forms clients send, and every
 * rejection path of px_b64_decode.
 */
#include "core/base64.h"
#include "core/err.h"
#include "harness.h"

#include <stdlib.h>

static int dec(const char *s, size_t max, uint8_t **out, size_t *n, char *err)
{
    return px_b64_decode(s, strlen(s), max, out, n, err, 200);
}

TEST(t_roundtrip_all_lengths)
{
    uint8_t in[300];
    for (int i = 0; i < 300; i++) in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n < sizeof in; n++) {
        char *enc = malloc(px_b64_encoded_len(n) + 1);
        size_t m = px_b64_encode(in, n, enc);
        T_EQ_INT(m, px_b64_encoded_len(n));
        T_EQ_INT(m % 4, 0);
        uint8_t *out;
        size_t outn;
        char err[200];
        T_EQ_INT(dec(enc, 1000, &out, &outn, err), 0);
        T_EQ_INT(outn, n);
        T_EQ_MEM(out, in, n);
        free(out);
        free(enc);
    }
}

TEST(t_known_vectors)
{
    char buf[64];
    px_b64_encode((const uint8_t *)"foobar", 6, buf);
    T_EQ_STR(buf, "Zm9vYmFy");
    px_b64_encode((const uint8_t *)"fooba", 5, buf);
    T_EQ_STR(buf, "Zm9vYmE=");
    px_b64_encode((const uint8_t *)"f", 1, buf);
    T_EQ_STR(buf, "Zg==");
}

TEST(t_tolerant_forms)
{
    uint8_t *out;
    size_t n;
    char err[200];
    /* Data-URL prefix, line breaks, missing padding, URL-safe alphabet. */
    T_EQ_INT(dec("data:image/png;base64,Zm9v\r\nYmE=", 100, &out, &n, err), 0);
    T_EQ_INT(n, 5);
    T_EQ_MEM(out, "fooba", 5);
    free(out);
    T_EQ_INT(dec("Zm9vYmE", 100, &out, &n, err), 0);
    T_EQ_INT(n, 5);
    free(out);
    T_EQ_INT(dec("-_-_", 100, &out, &n, err), 0);
    T_EQ_INT(n, 3);
    T_EQ_INT(out[0], 0xfb);
    T_EQ_INT(out[1], 0xff);
    T_EQ_INT(out[2], 0xbf);
    free(out);
    T_EQ_INT(dec("", 100, &out, &n, err), 0);
    T_EQ_INT(n, 0);
    T_TRUE(out != NULL);
    free(out);
}

TEST(t_rejections)
{
    uint8_t *out = (uint8_t *)1;
    size_t n;
    char err[200] = "";
    T_EQ_INT(dec("Zm9v!mFy", 100, &out, &n, err), PX_EINVAL);
    T_CONTAINS(err, "offset 4");
    T_TRUE(out == NULL);
    T_EQ_INT(dec("Zm9vY", 100, &out, &n, err), PX_EINVAL);
    T_CONTAINS(err, "dangling");
    T_EQ_INT(dec("Zg==Zg==", 100, &out, &n, err), PX_EINVAL);
    T_CONTAINS(err, "after '='");
    T_EQ_INT(dec("Zg===", 100, &out, &n, err), PX_EINVAL);
    T_CONTAINS(err, "padding");
    T_EQ_INT(dec("data:image/png,Zm9v", 100, &out, &n, err), PX_EINVAL);
    T_CONTAINS(err, "data URL");
    T_EQ_INT(dec("data:image/png;base64Zm9v", 100, &out, &n, err), PX_EINVAL);
    T_EQ_INT(dec("Zm9vYmFy", 5, &out, &n, err), PX_ETOOBIG);
    T_CONTAINS(err, "limit of 5 bytes");
    T_EQ_INT(dec("Zm9vYmFy", 6, &out, &n, err), 0);
    free(out);
}

TEST(t_data_url_prefix)
{
    T_EQ_INT(px_b64_data_url_prefix("abc", 3), 0);
    T_EQ_INT(px_b64_data_url_prefix("data:image/png;base64,xx", 24), 22);
    T_EQ_INT(px_b64_data_url_prefix("data:,xx", 8), -1);
}

TEST_MAIN(t_roundtrip_all_lengths, t_known_vectors, t_tolerant_forms, t_rejections,
          t_data_url_prefix)
