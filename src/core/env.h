/*
 * env.h — switches read from the environment: the PX_* variables that
 * turn a default off to compare it with what it replaced (most are "=0").
 */
#ifndef PX_CORE_ENV_H
#define PX_CORE_ENV_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whether the environment variable name is set to exactly value. */
bool px_env_is(const char *name, const char *value);

/* A switch that is on unless name is "0", read once into *cache (-1
 * before; threads racing on the first read store the same value): 1 or 0. */
int px_env_on_unless_0(const char *name, int *cache);

#ifdef __cplusplus
}
#endif

#endif
