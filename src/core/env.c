/*
 * env.c — env.h.
 */
#include "core/env.h"

#include <stdlib.h>
#include <string.h>

bool px_env_is(const char *name, const char *value)
{
    const char *v = getenv(name);
    return v && !strcmp(v, value);
}

int px_env_on_unless_0(const char *name, int *cache)
{
    if (*cache < 0) *cache = !px_env_is(name, "0");
    return *cache;
}
