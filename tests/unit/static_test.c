/*
 * static_test.c — the embedded web UI: URL → file mapping, refusal of every
 * path trick, content types, ETag matching, and the generated table itself
 * (sorted, unique names, bytes equal to the files under web/).
 */
#include "harness.h"
#include "serve/static.h"

#include <stdio.h>
#include <stdlib.h>

TEST(t_pages_map_to_html)
{
    const px_static_file *f = px_static_find("/");
    T_TRUE(f != NULL);
    T_EQ_STR(f->name, "index.html");
    f = px_static_find("/dashboard");
    T_TRUE(f != NULL);
    T_EQ_STR(f->name, "dashboard.html");
    /* The pages are also reachable as assets. */
    T_TRUE(px_static_find("/ui/index.html") == px_static_find("/"));
    f = px_static_find("/ui/style.css");
    T_TRUE(f != NULL);
    T_EQ_STR(px_static_content_type(f->name), "text/css; charset=utf-8");
}

TEST(t_ui_paths)
{
    T_TRUE(px_static_is_ui_path("/"));
    T_TRUE(px_static_is_ui_path("/dashboard"));
    T_TRUE(px_static_is_ui_path("/ui/x.js"));
    T_TRUE(px_static_is_ui_path("/ui/"));
    T_TRUE(!px_static_is_ui_path("/dashboard/"));
    T_TRUE(!px_static_is_ui_path("/ui"));
    T_TRUE(!px_static_is_ui_path("/api/v1"));
    T_TRUE(!px_static_is_ui_path("/index.html"));
    T_TRUE(!px_static_is_ui_path(""));
}

TEST(t_no_path_tricks)
{
    static const char *bad[] = {
        "/ui/",        "/ui/../index.html", "/ui/./index.html", "/ui//index.html",
        "/ui/.hidden", "/ui/x/../style.css", "/ui/..",          "/ui/\\index.html",
        "/ui/index.html/", "/ui/index.html\x01", "/ui/%2e%2e/index.html", "/ui/INDEX.HTML",
        "/ui/index.htm", "/ui/index.html.", "/ui/../../etc/passwd", "/etc/passwd",
        "/dashboard.html", "//", "/ui/index.html?x=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (px_static_find(bad[i])) px_tfail(__FILE__, __LINE__, "'%s' was served", bad[i]);
}

TEST(t_every_file_is_found_by_its_url)
{
    T_CMP_INT(px_static_nfiles, >=, 4);
    char url[512];
    for (size_t i = 0; i < px_static_nfiles; i++) {
        const px_static_file *f = &px_static_files[i];
        snprintf(url, sizeof url, "/ui/%s", f->name);
        T_TRUE(px_static_find(url) == f);
        if (i) T_CMP_INT(strcmp(px_static_files[i - 1].name, f->name), <, 0);
        /* ETags are quoted and differ between files. */
        size_t n = strlen(f->etag);
        T_CMP_INT(n, >, 2);
        T_TRUE(f->etag[0] == '"' && f->etag[n - 1] == '"');
        for (size_t j = 0; j < i; j++) T_TRUE(strcmp(px_static_files[j].etag, f->etag) != 0);
        T_TRUE(strcmp(px_static_content_type(f->name), "application/octet-stream") != 0);
    }
    T_TRUE(px_static_files[px_static_nfiles].name == NULL);
}

/* The embedded bytes are those of web/ (tests run from the repository root). */
TEST(t_bytes_match_the_source_tree)
{
    for (size_t i = 0; i < px_static_nfiles; i++) {
        const px_static_file *f = &px_static_files[i];
        char path[512];
        snprintf(path, sizeof path, "web/%s", f->name);
        FILE *fp = fopen(path, "rb");
        if (!fp) px_tfail(__FILE__, __LINE__, "cannot open %s (run from the repository root)", path);
        unsigned char *buf = malloc(f->len + 1);
        size_t n = fread(buf, 1, f->len + 1, fp);
        fclose(fp);
        T_EQ_INT(n, f->len);
        T_EQ_MEM(buf, f->data, f->len);
        free(buf);
    }
}

TEST(t_content_types)
{
    T_EQ_STR(px_static_content_type("index.html"), "text/html; charset=utf-8");
    T_EQ_STR(px_static_content_type("a/b.js"), "text/javascript; charset=utf-8");
    T_EQ_STR(px_static_content_type("x.SVG"), "image/svg+xml");
    T_EQ_STR(px_static_content_type("x.png"), "image/png");
    T_EQ_STR(px_static_content_type("x.webp"), "image/webp");
    T_EQ_STR(px_static_content_type("Makefile"), "application/octet-stream");
    T_EQ_STR(px_static_content_type("dir.js/file"), "application/octet-stream");
    T_EQ_STR(px_static_content_type("x."), "application/octet-stream");
}

TEST(t_etag_matching)
{
    const char *e = "\"1f-00ab\"";
    T_TRUE(!px_static_etag_matches(NULL, e));
    T_TRUE(!px_static_etag_matches("", e));
    T_TRUE(px_static_etag_matches("\"1f-00ab\"", e));
    T_TRUE(px_static_etag_matches("W/\"1f-00ab\"", e));
    T_TRUE(px_static_etag_matches("*", e));
    T_TRUE(px_static_etag_matches(" * ", e));
    T_TRUE(px_static_etag_matches("\"x\", \"1f-00ab\"", e));
    T_TRUE(px_static_etag_matches("\"x\",W/\"1f-00ab\" ,\"y\"", e));
    T_TRUE(!px_static_etag_matches("\"x\", \"1f-00ac\"", e));
    T_TRUE(!px_static_etag_matches("1f-00ab", e));
    T_TRUE(!px_static_etag_matches("\"1f-00ab", e));
    T_TRUE(!px_static_etag_matches("\"a,b\"", "\"a\""));
    T_TRUE(px_static_etag_matches("\"a,b\"", "\"a,b\""));
}

TEST_MAIN(t_pages_map_to_html, t_ui_paths, t_no_path_tricks, t_every_file_is_found_by_its_url,
          t_bytes_match_the_source_tree, t_content_types, t_etag_matching)
