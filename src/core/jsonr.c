/*
 * jsonr.c — bounded JSON parsing: a pre-scan of the structural characters
 * outside strings, then cJSON (see jsonr.h for why).
 */
#include "core/jsonr.h"

#include "core/err.h"

#include <stdbool.h>

static int prescan(const char *s, size_t n, int max_depth, size_t max_values, const char *what,
                   char *err, size_t errlen)
{
    size_t values = 1;
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        switch (c) {
        case '"':
            in_str = true;
            break;
        case '{':
        case '[':
            if (++depth > max_depth)
                return px_errf(err, errlen, PX_ECORRUPT, "%s nests deeper than %d levels", what,
                               max_depth);
            values++;
            break;
        case '}':
        case ']':
            depth--;
            break;
        case ',':
        case ':':
            if (++values > max_values)
                return px_errf(err, errlen, PX_ECORRUPT, "%s has more than %zu values", what,
                               max_values);
            break;
        default:
            break;
        }
    }
    return 0;
}

cJSON *px_json_parse(const char *s, size_t n, int max_depth, size_t max_values, const char *what,
                     const char **end, char *err, size_t errlen)
{
    if (prescan(s, n, max_depth, max_values, what, err, errlen)) return NULL;
    const char *e = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(s, n, &e, 0);
    /* (cJSON's error position is a global, not safe to read here: the
     * prescan bounded memory, so a NULL is malformed text.) */
    if (!root) {
        px_errf(err, errlen, PX_ECORRUPT, "%s is not valid JSON", what);
        return NULL;
    }
    if (end) {
        *end = e;
        return root;
    }
    for (const char *p = e; p && p < s + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0') {
            cJSON_Delete(root);
            px_errf(err, errlen, PX_ECORRUPT, "%s has bytes after its JSON value", what);
            return NULL;
        }
    return root;
}
