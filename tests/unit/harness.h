/*
 * harness.h — the unit-test harness: typed assertions that print both sides,
 * and a runner that executes each test in its own forked process so a crash
 * or a failed assertion in one test cannot hide or break the others.
 *
 * A test file defines its tests with TEST(name) and lists them once:
 *     TEST(t_roundtrip) { T_EQ_INT(1 + 1, 2); }
 *     TEST_MAIN(t_roundtrip)
 * Run it with no arguments for all tests, or with substrings to filter names.
 * Environment: PX_TEST_DATA points at test fixtures (default tests/data).
 */
#ifndef PX_TESTS_HARNESS_H
#define PX_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct px_test {
    const char *name;
    void (*fn)(void);
} px_test;

int px_test_main(int argc, char **argv, const px_test *tests, size_t n);

/* Failure reporters: print the location and both sides, then _exit(1). */
_Noreturn void px_tfail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Path of a file under the fixture directory (static buffer per call site is
 * not needed: returns a malloc'd string the test may leak). */
char *px_test_path(const char *rel);

/* A fresh empty directory for the running test; the runner deletes it and
 * everything in it when the test ends. */
const char *px_test_tmpdir(void);

/* Path of a real photograph shipped by Debian's python3-skimage (e.g.
 * "astronaut.png"), or NULL if the package is missing. */
char *px_test_photo(const char *name);

#define TEST(name) static void name(void)

#define PX_TEST_ENTRY(fn) {#fn, fn},
#define TEST_MAIN(...)                                                                     \
    static const px_test px_tests_[] = {PX_TEST_FOREACH_(PX_TEST_ENTRY, __VA_ARGS__)};       \
    int main(int argc, char **argv)                                                          \
    {                                                                                        \
        return px_test_main(argc, argv, px_tests_, sizeof px_tests_ / sizeof px_tests_[0]); \
    }

/* Up to 40 tests per file. */
#define PX_TEST_FOREACH_(M, ...) PX_TF_N_(__VA_ARGS__, PX_TF_SEQ_)(M, __VA_ARGS__)
#define PX_TF_N_(...) PX_TF_PICK_(__VA_ARGS__)
#define PX_TF_PICK_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, \
                    _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32,  \
                    _33, _34, _35, _36, _37, _38, _39, _40, N, ...)                             \
    PX_TF_##N
#define PX_TF_SEQ_                                                                           \
    40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, \
        17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1
#define PX_TF_1(M, a) M(a)
#define PX_TF_2(M, a, ...) M(a) PX_TF_1(M, __VA_ARGS__)
#define PX_TF_3(M, a, ...) M(a) PX_TF_2(M, __VA_ARGS__)
#define PX_TF_4(M, a, ...) M(a) PX_TF_3(M, __VA_ARGS__)
#define PX_TF_5(M, a, ...) M(a) PX_TF_4(M, __VA_ARGS__)
#define PX_TF_6(M, a, ...) M(a) PX_TF_5(M, __VA_ARGS__)
#define PX_TF_7(M, a, ...) M(a) PX_TF_6(M, __VA_ARGS__)
#define PX_TF_8(M, a, ...) M(a) PX_TF_7(M, __VA_ARGS__)
#define PX_TF_9(M, a, ...) M(a) PX_TF_8(M, __VA_ARGS__)
#define PX_TF_10(M, a, ...) M(a) PX_TF_9(M, __VA_ARGS__)
#define PX_TF_11(M, a, ...) M(a) PX_TF_10(M, __VA_ARGS__)
#define PX_TF_12(M, a, ...) M(a) PX_TF_11(M, __VA_ARGS__)
#define PX_TF_13(M, a, ...) M(a) PX_TF_12(M, __VA_ARGS__)
#define PX_TF_14(M, a, ...) M(a) PX_TF_13(M, __VA_ARGS__)
#define PX_TF_15(M, a, ...) M(a) PX_TF_14(M, __VA_ARGS__)
#define PX_TF_16(M, a, ...) M(a) PX_TF_15(M, __VA_ARGS__)
#define PX_TF_17(M, a, ...) M(a) PX_TF_16(M, __VA_ARGS__)
#define PX_TF_18(M, a, ...) M(a) PX_TF_17(M, __VA_ARGS__)
#define PX_TF_19(M, a, ...) M(a) PX_TF_18(M, __VA_ARGS__)
#define PX_TF_20(M, a, ...) M(a) PX_TF_19(M, __VA_ARGS__)
#define PX_TF_21(M, a, ...) M(a) PX_TF_20(M, __VA_ARGS__)
#define PX_TF_22(M, a, ...) M(a) PX_TF_21(M, __VA_ARGS__)
#define PX_TF_23(M, a, ...) M(a) PX_TF_22(M, __VA_ARGS__)
#define PX_TF_24(M, a, ...) M(a) PX_TF_23(M, __VA_ARGS__)
#define PX_TF_25(M, a, ...) M(a) PX_TF_24(M, __VA_ARGS__)
#define PX_TF_26(M, a, ...) M(a) PX_TF_25(M, __VA_ARGS__)
#define PX_TF_27(M, a, ...) M(a) PX_TF_26(M, __VA_ARGS__)
#define PX_TF_28(M, a, ...) M(a) PX_TF_27(M, __VA_ARGS__)
#define PX_TF_29(M, a, ...) M(a) PX_TF_28(M, __VA_ARGS__)
#define PX_TF_30(M, a, ...) M(a) PX_TF_29(M, __VA_ARGS__)
#define PX_TF_31(M, a, ...) M(a) PX_TF_30(M, __VA_ARGS__)
#define PX_TF_32(M, a, ...) M(a) PX_TF_31(M, __VA_ARGS__)
#define PX_TF_33(M, a, ...) M(a) PX_TF_32(M, __VA_ARGS__)
#define PX_TF_34(M, a, ...) M(a) PX_TF_33(M, __VA_ARGS__)
#define PX_TF_35(M, a, ...) M(a) PX_TF_34(M, __VA_ARGS__)
#define PX_TF_36(M, a, ...) M(a) PX_TF_35(M, __VA_ARGS__)
#define PX_TF_37(M, a, ...) M(a) PX_TF_36(M, __VA_ARGS__)
#define PX_TF_38(M, a, ...) M(a) PX_TF_37(M, __VA_ARGS__)
#define PX_TF_39(M, a, ...) M(a) PX_TF_38(M, __VA_ARGS__)
#define PX_TF_40(M, a, ...) M(a) PX_TF_39(M, __VA_ARGS__)

#define PX_TLOC_ __FILE__, __LINE__

#define T_TRUE(cond)                                                               \
    do {                                                                           \
        if (!(cond)) px_tfail(PX_TLOC_, "expected true: %s", #cond);               \
    } while (0)

#define T_EQ_INT(a, b)                                                                      \
    do {                                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                                 \
        if (a_ != b_) px_tfail(PX_TLOC_, "%s == %s: %lld != %lld", #a, #b, a_, b_);         \
    } while (0)

#define T_NE_INT(a, b)                                                                      \
    do {                                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                                 \
        if (a_ == b_) px_tfail(PX_TLOC_, "%s != %s: both %lld", #a, #b, a_);                \
    } while (0)

#define T_CMP_INT(a, op, b)                                                                 \
    do {                                                                                    \
        long long a_ = (long long)(a), b_ = (long long)(b);                                 \
        if (!(a_ op b_)) px_tfail(PX_TLOC_, "%s %s %s: %lld vs %lld", #a, #op, #b, a_, b_); \
    } while (0)

#define T_CMP_DBL(a, op, b)                                                                 \
    do {                                                                                    \
        double a_ = (double)(a), b_ = (double)(b);                                          \
        if (!(a_ op b_)) px_tfail(PX_TLOC_, "%s %s %s: %.9g vs %.9g", #a, #op, #b, a_, b_); \
    } while (0)

#define T_NEAR(a, b, tol)                                                                    \
    do {                                                                                     \
        double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                       \
        if (!(a_ - b_ <= t_ && b_ - a_ <= t_))                                               \
            px_tfail(PX_TLOC_, "%s ~= %s (tol %g): %.9g vs %.9g", #a, #b, t_, a_, b_);      \
    } while (0)

#define T_EQ_STR(a, b)                                                                      \
    do {                                                                                    \
        const char *a_ = (a), *b_ = (b);                                                    \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                              \
            px_tfail(PX_TLOC_, "%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)",    \
                     b_ ? b_ : "(null)");                                                   \
    } while (0)

/* Substring check, for error messages. */
#define T_CONTAINS(hay, needle)                                                              \
    do {                                                                                     \
        const char *h_ = (hay), *n_ = (needle);                                              \
        if (!h_ || !strstr(h_, n_))                                                          \
            px_tfail(PX_TLOC_, "%s contains \"%s\": got \"%s\"", #hay, n_, h_ ? h_ : "(null)"); \
    } while (0)

#define T_EQ_MEM(a, b, n)                                                                   \
    do {                                                                                    \
        const unsigned char *a_ = (const unsigned char *)(a), *b_ = (const unsigned char *)(b); \
        size_t n_ = (n);                                                                    \
        for (size_t i_ = 0; i_ < n_; i_++)                                                  \
            if (a_[i_] != b_[i_])                                                           \
                px_tfail(PX_TLOC_, "%s == %s over %zu bytes: first difference at %zu: %u vs %u", \
                         #a, #b, n_, i_, a_[i_], b_[i_]);                                   \
    } while (0)

#include <string.h>

#endif
