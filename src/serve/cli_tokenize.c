/*
 * cli_tokenize.c — `pixserve tokenize --model DIR|--tokenizer FILE "text"
 * [--raw]`: loads the tokenizer, encodes the text with the Z-Image chat
 * template and its 512-token cap (or without it, --raw) and prints
 * {"ids":[...],"count":N,"truncated":false}.
 */
#include "serve/cli_tokenize.h"

#include "engine/zimage/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: pixserve tokenize --model DIR|--tokenizer FILE \"text\" [--raw]\n"
               "  prints the Z-Image text encoder's token ids as JSON; the text is wrapped in\n"
               "  the chat template and capped at %d tokens unless --raw is given\n",
            ZI_TOK_MAX_PROMPT);
}

int px_cli_tokenize(int argc, char **argv)
{
    const char *path = NULL, *text = NULL;
    bool raw = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--model") || !strcmp(a, "--tokenizer")) && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(a, "--raw")) {
            raw = true;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1] == '-' && strcmp(a, "--")) {
            fprintf(stderr, "pixserve tokenize: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!text) {
            text = !strcmp(a, "--") && i + 1 < argc ? argv[++i] : a;
        } else {
            fprintf(stderr, "pixserve tokenize: one text only (quote it)\n");
            return 2;
        }
    }
    if (!path || !text) {
        usage(stderr);
        return 2;
    }
    char err[512];
    zi_tok *tok;
    if (zi_tok_load(path, &tok, err, sizeof err)) {
        fprintf(stderr, "pixserve tokenize: %s\n", err);
        return 1;
    }
    int32_t *ids = NULL, fixed[ZI_TOK_MAX_PROMPT];
    size_t n = 0;
    bool truncated = false;
    int rc = raw ? zi_tok_encode(tok, text, strlen(text), &ids, &n, err, sizeof err)
                 : zi_tok_encode_prompt(tok, text, fixed, ZI_TOK_MAX_PROMPT, &n, &truncated, err,
                                        sizeof err);
    zi_tok_free(tok);
    if (rc) {
        fprintf(stderr, "pixserve tokenize: %s\n", err);
        return 1;
    }
    const int32_t *v = raw ? ids : fixed;
    printf("{\"ids\":[");
    for (size_t i = 0; i < n; i++) printf(i ? ",%d" : "%d", v[i]);
    printf("],\"count\":%zu,\"truncated\":%s}\n", n, truncated ? "true" : "false");
    free(ids);
    return 0;
}
