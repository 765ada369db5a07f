"""The web UI's files as the binary serves them: pages and assets with their
content types, ETag revalidation (304), HEAD, no way out of the embedded set,
and the metrics route label."""
import os
import unittest

from pxtest import ServerTest

WEB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "web")


class WebStatic(ServerTest):
    def test_pages_and_assets(self):
        for path, file, ctype in (("/", "index.html", "text/html; charset=utf-8"),
                                  ("/dashboard", "dashboard.html", "text/html; charset=utf-8"),
                                  ("/ui/inpaint.js", "inpaint.js", "text/javascript; charset=utf-8"),
                                  ("/ui/style.css", "style.css", "text/css; charset=utf-8"),
                                  ("/ui/favicon.svg", "favicon.svg", "image/svg+xml")):
            st, h, body = self.srv.request("GET", path)
            self.assertEqual(st, 200, path)
            self.assertEqual(h["content-type"], ctype, path)
            with open(os.path.join(WEB, file), "rb") as f:
                self.assertEqual(body, f.read(), "%s serves web/%s as built" % (path, file))
            self.assertEqual(h["cache-control"], "no-cache")
            self.assertEqual(h["x-content-type-options"], "nosniff")
            self.assertIn("script-src 'self'", h["content-security-policy"])
            self.assertRegex(h["etag"], r'^"[0-9a-f]+-[0-9a-f]{16}"$')

    def test_etag_revalidation(self):
        st, h, body = self.srv.request("GET", "/ui/editor.js")
        self.assertEqual(st, 200)
        etag = h["etag"]
        st, h2, body2 = self.srv.request("GET", "/ui/editor.js", headers={"If-None-Match": etag})
        self.assertEqual((st, body2), (304, b""))
        self.assertEqual(h2["etag"], etag)
        st, _, _ = self.srv.request("GET", "/ui/editor.js", headers={"If-None-Match": 'W/' + etag})
        self.assertEqual(st, 304)
        st, _, body3 = self.srv.request("GET", "/ui/editor.js", headers={"If-None-Match": '"other"'})
        self.assertEqual((st, body3), (200, body))
        # Another file's ETag does not validate this one.
        _, h4, _ = self.srv.request("GET", "/ui/api.js")
        st, _, _ = self.srv.request("GET", "/ui/editor.js", headers={"If-None-Match": h4["etag"]})
        self.assertEqual(st, 200)

    def test_head(self):
        st, h, body = self.srv.request("HEAD", "/")
        self.assertEqual((st, body), (200, b""))
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        with open(os.path.join(WEB, "index.html"), "rb") as f:
            self.assertEqual(int(h["content-length"]), len(f.read()))
        st, _, body = self.srv.request("HEAD", "/dashboard")
        self.assertEqual((st, body), (200, b""))

    def test_nothing_outside_the_embedded_files(self):
        for path in ("/ui/", "/ui/../src/serve/server.c", "/ui/%2e%2e/Makefile", "/ui//index.html",
                     "/ui/./index.html", "/ui/.hidden", "/ui/nope.js", "/dashboard/", "/index.html",
                     "/ui/..%2fMakefile", "/../../etc/passwd", "/ui/INDEX.HTML"):
            st, h, body = self.srv.request("GET", path)
            self.assertEqual(st, 404, path)
            self.assertJsonError(st, h, body, 404, "not_found")

    def test_methods(self):
        st, h, body = self.srv.request("POST", "/", b"x", {"Content-Type": "text/plain"})
        self.assertJsonError(st, h, body, 405, "invalid_input")
        self.assertEqual(h["allow"], "GET")
        st, h, body = self.srv.request("DELETE", "/ui/style.css")
        self.assertEqual(st, 405)

    def test_counted_under_the_ui_route(self):
        before = self.srv.metric('pixserve_requests_total{route="ui",status="200"}')
        self.srv.request("GET", "/")
        self.srv.request("GET", "/ui/style.css")
        after = self.srv.metric_when('pixserve_requests_total{route="ui",status="200"}', before + 2)
        self.assertEqual(after - before, 2)


if __name__ == "__main__":
    unittest.main()
