/*
 * request_test.c — parsing inpaint requests: both JSON dialects, multipart,
 * option validation, and the structural limits that keep hostile JSON cheap.
 */
#include "core/base64.h"
#include "core/buf.h"
#include "core/err.h"
#include "harness.h"
#include "serve/request.h"

#include <stdio.h>
#include <stdlib.h>

static int parse(const char *json, enum px_dialect d, px_inpaint_req *r, char *err)
{
    return px_req_parse_json(json, strlen(json), d, 1 << 20, r, err, 256);
}

TEST(t_v1_minimal_and_defaults)
{
    px_inpaint_req r;
    char err[256];
    T_EQ_INT(parse("{\"image\":\"Zm9v\",\"mask\":\"YmFy\"}", PX_DIALECT_V1, &r, err), 0);
    T_EQ_INT(r.image_len, 3);
    T_EQ_MEM(r.image, "foo", 3);
    T_EQ_INT(r.mask_len, 3);
    T_EQ_MEM(r.mask, "bar", 3);
    T_EQ_INT(r.out_fmt, PX_FMT_UNKNOWN); /* the input's format */
    T_EQ_INT(r.ret, PX_RETURN_IMAGE);
    T_EQ_STR(r.engine, "");
    T_EQ_INT(r.timeout_ms, 0);
    px_req_free(&r);
    T_TRUE(r.image == NULL);
}

TEST(t_v1_all_options)
{
    px_inpaint_req r;
    char err[256];
    const char *j = "{\"image\":\"data:image/png;base64,Zm9v\",\"mask\":\"YmFy\","
                    "\"engine\":\"classic\",\"method\":\"telea\",\"output_format\":\"JPG\","
                    "\"quality\":77,\"return\":\"base64\",\"seed\":12345678901,"
                    "\"timeout_ms\":1500,\"hd_strategy\":\"Crop\",\"ldm_steps\":25,"
                    "\"sd_seed\":null,\"nested\":{\"ignored\":[1,2,3]}}";
    T_EQ_INT(parse(j, PX_DIALECT_V1, &r, err), 0);
    T_EQ_STR(r.engine, "classic");
    T_EQ_STR(r.method, "telea");
    T_EQ_INT(r.out_fmt, PX_FMT_JPEG);
    T_EQ_INT(r.quality, 77);
    T_EQ_INT(r.ret, PX_RETURN_BASE64);
    T_EQ_INT(r.seed, 12345678901ull);
    T_EQ_INT(r.timeout_ms, 1500);
    px_req_free(&r);
    /* Numbers sent as strings (form-minded clients) are accepted... */
    T_EQ_INT(parse("{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"return\":\"url\",\"quality\":\"90\"}",
                   PX_DIALECT_V1, &r, err),
             0);
    T_EQ_INT(r.quality, 90);
    T_EQ_INT(r.ret, PX_RETURN_URL);
    px_req_free(&r);
    /* ...but must still be integers in range. */
    T_EQ_INT(parse("{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"quality\":\"ninety\"}", PX_DIALECT_V1,
                   &r, err),
             PX_EINVAL);
    T_CONTAINS(err, "quality");
    T_EQ_INT(parse("{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"quality\":true}", PX_DIALECT_V1, &r,
                   err),
             PX_EINVAL);
}

TEST(t_seed_dialect)
{
    px_inpaint_req r;
    char err[256];
    T_EQ_INT(parse("{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"return_type\":\"image_url\"}",
                   PX_DIALECT_SEED, &r, err),
             0);
    T_EQ_INT(r.ret, PX_RETURN_URL);
    px_req_free(&r);
    T_EQ_INT(parse("{\"image\":\"Zm9v\",\"mask\":\"YmFy\"}", PX_DIALECT_SEED, &r, err), 0);
    T_EQ_INT(r.ret, PX_RETURN_BASE64);
    px_req_free(&r);
    T_EQ_INT(parse("{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"return_type\":\"pdf\"}", PX_DIALECT_SEED,
                   &r, err),
             PX_EINVAL);
    T_CONTAINS(err, "return_type");
    /* `return` is a v1 option; the seed dialect ignores it like any unknown field */
    T_EQ_INT(parse("{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"return\":\"zzz\"}", PX_DIALECT_SEED, &r,
                   err),
             0);
    px_req_free(&r);
}

TEST(t_field_errors)
{
    px_inpaint_req r;
    char err[256];
    struct {
        const char *json;
        int code;
        const char *msg;
    } cases[] = {
        {"{\"mask\":\"YmFy\"}", PX_EINVAL, "missing field 'image'"},
        {"{\"image\":\"Zm9v\"}", PX_EINVAL, "missing field 'mask'"},
        {"{\"image\":5,\"mask\":\"YmFy\"}", PX_EINVAL, "'image' must be a base64 string"},
        {"{\"image\":\"\",\"mask\":\"YmFy\"}", PX_EINVAL, "'image' is empty"},
        {"{\"image\":\"Zm9v!\",\"mask\":\"YmFy\"}", PX_EINVAL, "invalid base64 character"},
        {"{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"output_format\":\"gif\"}", PX_EINVAL,
         "output_format"},
        {"{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"quality\":0}", PX_EINVAL, "from 1 to 100"},
        {"{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"quality\":50.5}", PX_EINVAL, "integer"},
        {"{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"seed\":-1}", PX_EINVAL, "seed"},
        {"{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"timeout_ms\":0}", PX_EINVAL, "timeout_ms"},
        {"{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"engine\":7}", PX_EINVAL, "must be a string"},
        {"{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"engine\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
         PX_EINVAL, "too long"},
        {"{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"return\":\"file\"}", PX_EINVAL, "return"},
        {"[1,2]", PX_EINVAL, "JSON object"},
        {"{\"image\":\"Zm9v\",", PX_EINVAL, "malformed JSON"},
        {"", PX_EINVAL, "malformed JSON"},
        {"{} {}", PX_EINVAL, "after the JSON value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse(cases[i].json, PX_DIALECT_V1, &r, err);
        if (rc != cases[i].code) px_tfail(__FILE__, __LINE__, "case %zu: rc %d", i, rc);
        T_CONTAINS(err, cases[i].msg);
        T_TRUE(r.image == NULL && r.mask == NULL);
    }
}

TEST(t_hostile_json_is_cheap)
{
    px_inpaint_req r;
    char err[256];
    static char deep[200000];
    size_t n = 0;
    for (int i = 0; i < 50000; i++) deep[n++] = '[';
    deep[n] = 0;
    T_EQ_INT(parse(deep, PX_DIALECT_V1, &r, err), PX_EINVAL);
    T_CONTAINS(err, "nested deeper");
    n = 0;
    deep[n++] = '{';
    n += (size_t)sprintf(deep + n, "\"a\":[");
    for (int i = 0; i < 20000; i++) n += (size_t)sprintf(deep + n, "1,");
    n += (size_t)sprintf(deep + n, "1]}");
    T_EQ_INT(parse(deep, PX_DIALECT_V1, &r, err), PX_EINVAL);
    T_CONTAINS(err, "more than");
    /* brackets inside strings do not count */
    char ok[400];
    snprintf(ok, sizeof ok, "{\"image\":\"Zm9v\",\"mask\":\"YmFy\",\"note\":\"%s\"}",
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[");
    T_EQ_INT(parse(ok, PX_DIALECT_V1, &r, err), 0);
    px_req_free(&r);
}

TEST(t_image_size_cap)
{
    px_inpaint_req r;
    char err[256];
    const char *j = "{\"image\":\"Zm9vYmFy\",\"mask\":\"YmFy\"}";
    T_EQ_INT(px_req_parse_json(j, strlen(j), PX_DIALECT_V1, 5, &r, err, sizeof err), PX_ETOOBIG);
    T_CONTAINS(err, "image");
}

static size_t add(char *b, size_t n, const char *s)
{
    memcpy(b + n, s, strlen(s));
    return n + strlen(s);
}

TEST(t_multipart)
{
    char body[2048];
    size_t n = 0;
    n = add(body, n, "--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"i.png\"\r\n"
                     "Content-Type: image/png\r\n\r\nIMGxBYTES");
    body[n - 6] = 0; /* a binary NUL inside the file */
    n = add(body, n, "\r\n--B\r\nContent-Disposition: form-data; name=\"mask\"; filename=\"m.png\"\r\n"
                     "\r\nMASK\r\n--B\r\nContent-Disposition: form-data; name=\"output_format\"\r\n"
                     "\r\nwebp\r\n--B\r\nContent-Disposition: form-data; name=\"seed\"\r\n\r\n42\r\n"
                     "--B\r\nContent-Disposition: form-data; name=\"return\"\r\n\r\nbase64\r\n--B--\r\n");
    px_inpaint_req r;
    char err[256];
    T_EQ_INT(px_req_parse_multipart("multipart/form-data; boundary=B", (uint8_t *)body, n,
                                    PX_DIALECT_V1, 1 << 20, &r, err, sizeof err),
             0);
    T_EQ_INT(r.image_len, 9);
    T_EQ_INT(r.image[3], 0);
    T_EQ_INT(r.mask_len, 4);
    T_EQ_INT(r.out_fmt, PX_FMT_WEBP);
    T_EQ_INT(r.seed, 42);
    T_EQ_INT(r.ret, PX_RETURN_BASE64);
    px_req_free(&r);

    const char *nomask = "--B\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nI\r\n--B--";
    T_EQ_INT(px_req_parse_multipart("multipart/form-data; boundary=B", (const uint8_t *)nomask,
                                    strlen(nomask), PX_DIALECT_V1, 1 << 20, &r, err, sizeof err),
             PX_EINVAL);
    T_CONTAINS(err, "missing multipart part 'mask'");
    const char *badq = "--B\r\nContent-Disposition: form-data; name=\"quality\"\r\n\r\n101\r\n--B--";
    T_EQ_INT(px_req_parse_multipart("multipart/form-data; boundary=B", (const uint8_t *)badq,
                                    strlen(badq), PX_DIALECT_V1, 1 << 20, &r, err, sizeof err),
             PX_EINVAL);
    T_CONTAINS(err, "quality");
    T_EQ_INT(px_req_parse_multipart("text/plain", (const uint8_t *)badq, strlen(badq),
                                    PX_DIALECT_V1, 1 << 20, &r, err, sizeof err),
             PX_EUNSUP);
}

TEST_MAIN(t_v1_minimal_and_defaults, t_v1_all_options, t_seed_dialect, t_field_errors,
          t_hostile_json_is_cheap, t_image_size_cap, t_multipart)
