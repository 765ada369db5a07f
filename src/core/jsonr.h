/*
 * jsonr.h — bounded parsing of untrusted JSON texts (file headers, config
 * files, index files) through cJSON. cJSON allocates a node per value and
 * recurses per nesting level, so a hostile text of "[[[[..." or "1,1,1,..."
 * must be refused before it is handed to cJSON: a linear pre-scan bounds the
 * nesting depth and the number of values first.
 */
#ifndef PX_CORE_JSONR_H
#define PX_CORE_JSONR_H

#include <cjson/cJSON.h>
#include <stddef.h>

/*
 * Parses s[0..n) (need not be NUL-terminated) into a cJSON tree after
 * checking that it nests at most max_depth levels and holds at most
 * max_values values. `what` names the text in messages ("<what> is not
 * valid JSON"). With end NULL only whitespace may follow the value; else
 * *end is where the value ended. Returns the tree (caller cJSON_Deletes it)
 * or NULL with PX_ECORRUPT's message in err.
 */
cJSON *px_json_parse(const char *s, size_t n, int max_depth, size_t max_values, const char *what,
                     const char **end, char *err, size_t errlen);

#endif
