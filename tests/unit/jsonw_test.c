/*
 * jsonw_test.c — JSON string escaping (checked by parsing the output back
 * with cJSON) and number formatting.
 */
#include "core/buf.h"
#include "core/jsonw.h"
#include "harness.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

static char *roundtrip(const char *s, size_t n)
{
    px_buf b;
    px_buf_init(&b, 1 << 16);
    T_EQ_INT(px_json_strn(&b, s, n), 0);
    cJSON *v = cJSON_Parse((char *)b.data);
    if (!v || !cJSON_IsString(v)) px_tfail(__FILE__, __LINE__, "not a JSON string: %s", b.data);
    char *out = strdup(v->valuestring);
    cJSON_Delete(v);
    px_buf_free(&b);
    return out;
}

TEST(t_escapes_parse_back)
{
    const char *cases[] = {"plain", "quote \" and \\ backslash", "tab\tnew\nline\rcr",
                           "ctl \x01\x1f end", "utf8 \xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98\x80", ""};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *back = roundtrip(cases[i], strlen(cases[i]));
        T_EQ_STR(back, cases[i]);
        free(back);
    }
}

TEST(t_invalid_utf8_replaced)
{
    /* lone continuation, overlong '/', surrogate, truncated sequence */
    const char *bad[] = {"a\x80z", "a\xc0\xafz", "a\xed\xa0\x80z", "a\xe4\xbd"};
    for (size_t i = 0; i < 4; i++) {
        char *back = roundtrip(bad[i], strlen(bad[i]));
        T_TRUE(strstr(back, "\xef\xbf\xbd") != NULL);
        T_TRUE(back[0] == 'a');
        free(back);
    }
    /* embedded NUL with explicit length */
    char *back = roundtrip("a\0b", 3);
    T_EQ_INT(strlen(back), 1); /* cJSON stops at \u0000, but the text was valid JSON */
    free(back);
}

TEST(t_null_and_numbers)
{
    px_buf b;
    px_buf_init(&b, 256);
    px_json_str(&b, NULL);
    px_buf_puts(&b, " ");
    px_json_num(&b, 42);
    px_buf_puts(&b, " ");
    px_json_num(&b, 1.5);
    px_buf_puts(&b, " ");
    px_json_num(&b, NAN);
    px_buf_puts(&b, " ");
    px_json_num(&b, -INFINITY);
    px_buf_puts(&b, " ");
    px_json_num(&b, 0.000123456789);
    T_EQ_STR((char *)b.data, "null 42 1.5 null null 0.000123457");
    px_buf_free(&b);
}

TEST(t_cap_respected)
{
    px_buf b;
    px_buf_init(&b, 8);
    T_NE_INT(px_json_str(&b, "0123456789"), 0);
    T_TRUE(b.len <= 8);
    px_buf_free(&b);
}

TEST_MAIN(t_escapes_parse_back, t_invalid_utf8_replaced, t_null_and_numbers, t_cap_respected)
