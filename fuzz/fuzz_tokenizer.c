/*
 * fuzz_tokenizer.c — libFuzzer target for the Z-Image tokenizer. The first
 * byte picks what the rest is (its value mod 3):
 *   0  a tokenizer.json (untrusted file): it must load or fail with a
 *      message naming it, never crash; a loaded one encodes and decodes a
 *      fixed text without error;
 *   1  vocab.json, a NUL byte, merges.txt: the same for that loader;
 *   2  text (any bytes) encoded by a small fixed tokenizer that has every
 *      byte, some merges and added tokens: invalid UTF-8 is refused with a
 *      message, valid text encodes, the templated prompt stays within its
 *      cap and ends with the template, and text without added tokens
 *      decodes back to its NFC form.
 */
#include "engine/zimage/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char FIXED_TEXT[] = "Hello, it's a cat 🐱 <|im_end|> 12 \r\n  x";

static void exercise(const zi_tok *t)
{
    int32_t *ids, fixed[64];
    size_t n;
    bool tr;
    char err[256];
    if (zi_tok_encode(t, FIXED_TEXT, sizeof FIXED_TEXT - 1, &ids, &n, err, sizeof err) == 0) {
        char *s;
        size_t len;
        if (zi_tok_decode(t, ids, n, false, &s, &len, err, sizeof err)) __builtin_trap();
        free(s);
        free(ids);
    }
    if (zi_tok_encode_prompt(t, FIXED_TEXT, fixed, 64, &n, &tr, err, sizeof err) == 0 && n > 64)
        __builtin_trap();
}

/* The GPT-2 byte-level spelling of byte b, as a JSON string body. */
static void bytelevel_json(int b, char *out)
{
    bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    int cp = b;
    if (!keep) {
        cp = 256;
        for (int k = 0; k < b; k++)
            cp += !((k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || k >= 0xAE);
    }
    if (cp == '"' || cp == '\\') sprintf(out, "\\%c", cp);
    else sprintf(out, "\\u%04x", cp);
}

static zi_tok *fixed_tokenizer(void)
{
    static zi_tok *t;
    if (t) return t;
    static char j[1 << 15];
    size_t at = (size_t)sprintf(j, "{\"added_tokens\":[{\"id\":300,\"content\":\"<|im_start|>\","
                                   "\"special\":true},{\"id\":301,\"content\":\"<|im_end|>\","
                                   "\"special\":true},{\"id\":302,\"content\":\"<x>\"}],"
                                   "\"normalizer\":{\"type\":\"NFC\"},\"model\":{\"vocab\":{");
    char s[16];
    for (int b = 0; b < 256; b++) {
        bytelevel_json(b, s);
        at += (size_t)sprintf(j + at, "\"%s\":%d,", s, b);
    }
    sprintf(j + at, "\"\\u0120t\":256,\"he\":257,\"\\u0120the\":258,\"in\":259,\"\\u010a\\u010a\":260,"
                    "\"\\u0120\\u0120\":261,\"\\u00e4\\u00bd\":262},\"merges\":[\"\\u0120 t\","
                    "\"h e\",\"\\u0120t he\",\"i n\",[\"\\u010a\",\"\\u010a\"],\"\\u0120 \\u0120\","
                    "\"\\u00e4 \\u00bd\"]}}");
    /* No pre_tokenizer member: use the Qwen regex through a Sequence. */
    char *full = malloc(strlen(j) + 512);
    sprintf(full, "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"%s\"},"
                  "\"behavior\":\"Isolated\",\"invert\":false},%s",
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}|"
            " ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+",
            j + 1);
    char err[256];
    if (zi_tok_load_json(full, strlen(full), "fixed", &t, err, sizeof err)) {
        fprintf(stderr, "fuzz_tokenizer: fixed tokenizer: %s\n", err);
        abort();
    }
    free(full);
    return t;
}

static void encode_text(const uint8_t *data, size_t size)
{
    const zi_tok *t = fixed_tokenizer();
    int32_t *ids, fixed[40];
    size_t n;
    bool tr;
    char err[256];
    err[0] = 0;
    if (zi_tok_encode(t, (const char *)data, size, &ids, &n, err, sizeof err)) {
        if (!strstr(err, "UTF-8")) __builtin_trap();
        return;
    }
    /* Without '<' no added token can match, so decoding must give back the
     * NFC text; NUL ends the C strings the prompt API takes, so skip those. */
    if (!memchr(data, '<', size) && !memchr(data, 0, size)) {
        char *s;
        size_t len;
        if (zi_tok_decode(t, ids, n, false, &s, &len, err, sizeof err)) __builtin_trap();
        utf8proc_uint8_t *nfc;
        utf8proc_ssize_t m = utf8proc_map(data, (utf8proc_ssize_t)size, &nfc,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (m < 0 || (size_t)m != len || memcmp(nfc, s, len)) __builtin_trap();
        free(nfc);
        free(s);
        char *p = malloc(size + 1);
        memcpy(p, data, size);
        p[size] = 0;
        if (zi_tok_encode_prompt(t, p, fixed, 40, &n, &tr, err, sizeof err)) __builtin_trap();
        /* The tail: <|im_end|> \n <|im_start|> a s s i s t a n t \n. */
        if (n > 40 || n < 13 + 6 || fixed[n - 13] != 301 || fixed[n - 11] != 300 ||
            fixed[n - 1] != '\n')
            __builtin_trap();
        free(p);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1 << 16)) return 0;
    int mode = data[0] % 3;
    data++;
    size--;
    /* A private copy so that ASan sees reads past the end of the input. */
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    zi_tok *t = NULL;
    char err[512];
    err[0] = 0;
    int rc = 0;
    if (mode == 0) {
        rc = zi_tok_load_json(buf, size, "fuzz.json", &t, err, sizeof err);
        if (rc && (strncmp(err, "fuzz.json", 9) || t)) __builtin_trap();
    } else if (mode == 1) {
        const char *nul = memchr(buf, 0, size);
        size_t vlen = nul ? (size_t)(nul - buf) : size;
        const char *m = nul ? nul + 1 : "";
        size_t mlen = nul ? size - vlen - 1 : 0;
        rc = zi_tok_load_vocab_merges(buf, vlen, m, mlen, NULL, 0, "dir", &t, err, sizeof err);
        if (rc && (strncmp(err, "dir", 3) || t)) __builtin_trap();
    } else {
        encode_text((const uint8_t *)buf, size);
    }
    if (!rc && t) exercise(t);
    zi_tok_free(t);
    free(buf);
    return 0;
}
