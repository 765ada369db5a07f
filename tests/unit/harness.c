/*
 * harness.c — runner for harness.h: fork per test, time limit per test,
 * a summary line, exit status 1 if anything failed.
 */
#include "harness.h"

#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void px_tfail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout); /* what the test printed before failing (_exit drops buffers) */
    fprintf(stderr, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
}

char *px_test_path(const char *rel)
{
    const char *dir = getenv("PX_TEST_DATA");
    if (!dir) dir = "tests/data";
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

char *px_test_photo(const char *name)
{
    static const char *dirs[] = {"/usr/lib/python3/dist-packages/skimage/data", NULL};
    for (int i = 0; dirs[i]; i++) {
        size_t n = strlen(dirs[i]) + strlen(name) + 2;
        char *p = malloc(n);
        snprintf(p, n, "%s/%s", dirs[i], name);
        if (access(p, R_OK) == 0) return p;
        free(p);
    }
    return NULL;
}

static char g_tmpdir[64];

const char *px_test_tmpdir(void)
{
    return g_tmpdir;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc <= 1) return 1;
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i])) return 1;
    return 0;
}

int px_test_main(int argc, char **argv, const px_test *tests, size_t n)
{
    /* Each test gets this long before it is killed as hung (sanitizer builds
     * are several times slower, so the default is generous). */
    const char *lim = getenv("PX_TEST_TIMEOUT");
    int timeout_s = lim ? atoi(lim) : 300;
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    int failed = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (!selected(tests[i].name, argc, argv)) continue;
        ran++;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        fflush(stdout);
        snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/pxtest-XXXXXX");
        if (!mkdtemp(g_tmpdir)) {
            perror("mkdtemp");
            return 2;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            alarm((unsigned)timeout_s);
            tests[i].fn();
            fflush(stdout);
            _exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        nftw(g_tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            printf("  ok   %s.%s (%.0f ms)\n", prog, tests[i].name, ms);
        } else {
            failed++;
            if (WIFSIGNALED(st))
                printf("  FAIL %s.%s (killed by signal %d%s)\n", prog, tests[i].name, WTERMSIG(st),
                       WTERMSIG(st) == SIGALRM ? ": timed out" : "");
            else
                printf("  FAIL %s.%s\n", prog, tests[i].name);
        }
    }
    printf("%s: %d/%d passed\n", prog, ran - failed, ran);
    return failed ? 1 : 0;
}
