/*
 * host_check.h — what the host checks (the ..._check.c beside it) share: a
 * failed CHECK prints where and why, and the check goes on (to report every
 * failure of a run), its exit status taken from g_fail at the end.
 */
#ifndef PX_TESTS_HOST_CHECK_H
#define PX_TESTS_HOST_CHECK_H

#include <stdio.h>

static int g_fail;

#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                          \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            g_fail = 1;                                                                            \
        }                                                                                          \
    } while (0)

#endif
