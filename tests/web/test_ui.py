"""The web UI end to end in headless Chromium, against the real pixserve.

One pixserve (--max-pixels 200000, so a 512x512 photo is "too large") and one
Chromium serve every test; each test opens its own tab. The inpaint test
opens a real photograph through the file input, paints a stroke with mouse
events, checks undo/redo, runs Inpaint and compares pixels: the result must
differ from the original inside the mask the page sent and equal it, byte
for byte, everywhere else. Screenshots go to PIXSERVE_WEB_ARTIFACTS (default
build/<build>/web-artifacts/ next to PIXSERVE_BIN).
"""
import base64
import io
import json
import os
import sys
import threading
import time
import unittest

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import cdp  # noqa: E402
from pxtest import SLOW, Server, b64, box_mask, encode, photo  # noqa: E402

ARTIFACTS = os.path.abspath(os.environ.get("PIXSERVE_WEB_ARTIFACTS") or os.path.join(
    os.path.dirname(os.path.abspath(os.environ.get("PIXSERVE_BIN", "build/release/pixserve"))),
    "web-artifacts"))
MAX_PIXELS = 200000
W, H = 384, 288           # the fixture photo (inside the limit)


def data_url_bytes(u):
    return base64.b64decode(u.split(",", 1)[1])


def pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


class WebUI(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.fixtures = os.path.join(ARTIFACTS, "fixtures")
        os.makedirs(cls.fixtures, exist_ok=True)
        cls.photo = photo("astronaut.png", (W, H))
        cls.photo_path = os.path.join(cls.fixtures, "astronaut-384x288.png")
        with open(cls.photo_path, "wb") as f:
            f.write(encode(cls.photo))
        cls.big_path = os.path.join(cls.fixtures, "astronaut-512x512.png")
        with open(cls.big_path, "wb") as f:
            f.write(encode(photo("astronaut.png")))
        cls.downloads = os.path.join(ARTIFACTS, "downloads")
        os.makedirs(cls.downloads, exist_ok=True)
        for n in os.listdir(cls.downloads):
            os.remove(os.path.join(cls.downloads, n))
        cls.srv = Server("--max-pixels", str(MAX_PIXELS), "--workers", "2")
        cls.base = "http://%s:%d" % (cls.srv.host, cls.srv.port)
        try:
            cls.browser = cdp.Browser(timeout=30 * SLOW)
        except Exception:
            cls.srv.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        rc = cls.srv.stop()
        log = cls.srv.read_log() if rc != 0 else ""
        cls.srv.tmp.cleanup()
        if rc != 0:
            raise AssertionError("pixserve exited with %r\n%s" % (rc, log[-4000:]))

    def setUp(self):
        self.page = self.browser.new_page(1280, 800, downloads=self.downloads)

    def tearDown(self):
        self.page.close()

    def shot(self, name):
        return self.page.screenshot(os.path.join(ARTIFACTS, name))

    # ------------------------------------------------------------ helpers

    def open_inpaint_page(self):
        p = self.page
        p.goto(self.base + "/")
        p.wait_for("window.pixserveUI && !document.getElementById('engine').disabled"
                   " && window.pixserveUI.state().apiMode")
        return p

    def state(self):
        return self.page.eval("window.pixserveUI.state()")

    def load_photo(self, path):
        p = self.page
        p.set_files("#file", [path])
        p.wait_for("window.pixserveUI.state().image")
        # Let the fit and first frame settle.
        p.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        return self.state()

    def to_view(self, ix, iy):
        """Image pixel → page coordinates (CSS px)."""
        s, r = self.state(), self.page.rect("#view")
        return r["x"] + s["panX"] + ix * s["zoom"], r["y"] + s["panY"] + iy * s["zoom"]

    def paint(self, img_points, steps=12):
        pts = []
        for (x0, y0), (x1, y1) in zip(img_points, img_points[1:]):
            for k in range(steps):
                t = k / steps
                pts.append(self.to_view(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t))
        pts.append(self.to_view(*img_points[-1]))
        self.page.drag(pts)

    def wait_idle(self, timeout=60):
        self.page.wait_for("!window.pixserveUI.state().busy", timeout=timeout * SLOW)

    # -------------------------------------------------------------- tests

    def test_inpaint_stroke_undo_result_compare_download(self):
        p = self.open_inpaint_page()
        self.shot("inpaint-0-empty.png")
        s = self.load_photo(self.photo_path)
        self.assertEqual(s["image"], {"width": W, "height": H})
        self.assertEqual(s["maskPixels"], 0)
        self.assertFalse(s["canUndo"])

        # Brush size with ] and [.
        p.eval("document.getElementById('view').focus()")
        size0 = s["brushSize"]
        p.key("]")
        self.assertGreater(self.state()["brushSize"], size0)
        p.key("[")
        p.eval("window.pixserveUI.editor.setBrushSize(24)")

        # One stroke across the astronaut's badge area.
        stroke = [(150, 120), (230, 150), (260, 210)]
        self.paint(stroke)
        s = self.state()
        self.assertGreater(s["maskPixels"], 1500)
        self.assertTrue(s["canUndo"])
        painted = s["maskPixels"]

        # Undo and redo with the keyboard.
        p.key("z", ctrl=True)
        s = self.state()
        self.assertEqual(s["maskPixels"], 0)
        self.assertTrue(s["canRedo"])
        p.key("z", ctrl=True, shift=True)
        self.assertEqual(self.state()["maskPixels"], painted)
        self.shot("inpaint-1-mask.png")

        # Inpaint (a real click), wait for the result.
        t0 = time.monotonic()
        p.click("#inpaint")
        self.wait_idle()
        s = self.state()
        self.assertIsNone(s["error"], s)
        self.assertTrue(s["hasResult"], s)
        self.assertEqual(s["maskPixels"], 0, "painting goes on from an empty mask")
        timings = p.eval("document.getElementById('timings').innerText")
        self.assertIn("infer", timings)
        self.assertIn("round trip", timings)
        print("  inpaint round trip %.2fs via %s" % (time.monotonic() - t0, s["apiMode"]))
        self.assertEqual(s["apiMode"], "jobs" if self.server_has_jobs() else "sync")
        self.shot("inpaint-2-result.png")

        # Pixels: what was sent, what came back, what is shown.
        req = p.eval("window.pixserveUI.lastRequest()")
        sent = pixels(data_url_bytes(req["image"]))
        self.assertTrue(np.array_equal(sent, self.photo.astype(np.int16)), "the page sent the photo as opened")
        mask = pixels(data_url_bytes(req["mask"]))[..., 0] > 127
        self.assertEqual(mask.shape, (H, W))
        self.assertEqual(int(mask.sum()), painted)
        for x, y in stroke:
            self.assertTrue(mask[y, x], "stroke point (%d,%d) is in the mask" % (x, y))
        self.assertFalse(mask[10, 10] or mask[H - 10, W - 10])
        _, _, result = self.assert_inpainted(req)
        orig = self.photo.astype(np.int16)
        self.assertGreater(np.abs(result[mask] - orig[mask]).sum(axis=1).mean(), 10)
        shown = pixels(data_url_bytes(p.eval("window.pixserveUI.imagePNG()")))
        self.assertTrue(np.array_equal(shown, result), "the canvas shows the result")

        # Compare: hold C shows the original; the slider splits.
        p.eval("document.getElementById('view').focus()")
        p.key("c", up=False)
        self.assertTrue(self.state()["compareHold"])
        self.shot("inpaint-3-compare-hold.png")
        p.key("c", down=False)
        self.assertFalse(self.state()["compareHold"])
        p.eval("(() => { const s = document.getElementById('split'); s.value = 50;"
               " s.dispatchEvent(new Event('input')); })()")
        self.assertEqual(self.state()["split"], 0.5)
        self.shot("inpaint-4-compare-split.png")

        # Undo the inpaint: the original and its mask come back; redo: the result.
        p.key("z", ctrl=True)
        s = self.state()
        self.assertFalse(s["hasResult"])
        self.assertEqual(s["maskPixels"], painted)
        back = pixels(data_url_bytes(p.eval("window.pixserveUI.imagePNG()")))
        self.assertTrue(np.array_equal(back, orig))
        p.key("z", ctrl=True, shift=True)
        self.assertTrue(self.state()["hasResult"])

        # Keep painting on the result: a second stroke, a second inpaint.
        self.paint([(60, 60), (90, 70)])
        self.assertGreater(self.state()["maskPixels"], 0)
        p.key("Enter", ctrl=True)
        self.wait_idle()
        s = self.state()
        self.assertIsNone(s["error"], s)
        req2 = p.eval("window.pixserveUI.lastRequest()")
        self.assertTrue(np.array_equal(pixels(data_url_bytes(req2["image"])), result),
                        "the second inpaint starts from the first result")

        # Downloads in the three formats.
        for fmt, magic in (("png", b"\x89PNG"), ("jpeg", b"\xff\xd8\xff"), ("webp", b"RIFF")):
            p.eval("document.getElementById('dl-format').value = %s" % json.dumps(fmt))
            p.click("#download")
            ext = "jpg" if fmt == "jpeg" else fmt
            path = os.path.join(self.downloads, "astronaut-384x288-inpainted." + ext)
            deadline = time.monotonic() + 10
            while not os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertTrue(os.path.exists(path), "downloaded %s (have %s; %s)" % (
                path, os.listdir(self.downloads),
                [e for e in self.browser.events if "ownload" in (e[1] or "")][-3:]))
            time.sleep(0.1)
            with open(path, "rb") as f:
                data = f.read()
            self.assertTrue(data.startswith(magic), fmt)
            self.assertEqual(Image.open(io.BytesIO(data)).size, (W, H))
            if fmt == "png":
                self.assertEqual(data, data_url_bytes(req2["result"]), "PNG download is the server's bytes")

    def test_oversized_image_is_explained(self):
        p = self.open_inpaint_page()
        s = self.load_photo(self.big_path)
        self.assertEqual(s["image"], {"width": 512, "height": 512})
        self.paint([(200, 200), (300, 260)])
        p.click("#inpaint")
        self.wait_idle()
        msg = p.wait_for("window.pixserveUI.state().error")
        self.assertIn("The image is too large", msg)
        self.assertIn("512x512", msg)
        self.assertIn("limit", msg)
        visible = p.eval("(() => { const e = document.getElementById('error');"
                         " return !e.hidden && e.getBoundingClientRect().height > 0; })()")
        self.assertTrue(visible, "the message is on screen")
        self.assertFalse(self.state()["hasResult"])
        self.shot("inpaint-5-too-large.png")

    def test_empty_mask_busy_timeout_and_network_errors_are_shown(self):
        p = self.open_inpaint_page()
        self.load_photo(self.photo_path)
        # Nothing painted: a message, not a silent no-op.
        p.click("#inpaint")
        self.assertIn("mask is empty", p.wait_for("window.pixserveUI.state().error"))
        self.paint([(100, 100), (140, 120)])
        cases = [
            ("new Response(JSON.stringify({error: {code: 'busy', message: 'the queue is full'}}),"
             " {status: 429, headers: {'Retry-After': '7', 'Content-Type': 'application/json'}})",
             "The server is busy, retry in 7 s"),
            ("new Response(JSON.stringify({error: {code: 'timeout', message: 'the request did not"
             " finish within its deadline'}}), {status: 504})", "Timed out"),
            ("Promise.reject(new TypeError('Failed to fetch'))", "Could not reach the pixserve server"),
            ("new Response('<html>bad gateway</html>', {status: 502})", "HTTP 502"),
        ]
        for fake, want in cases:
            # Replace fetch for the inpaint routes only.
            p.eval("(() => { const real = window.__realFetch || (window.__realFetch = window.fetch);"
                   " window.fetch = (u, o) => /inpaint|jobs/.test(String(u)) && o && o.method === 'POST'"
                   " && o.body instanceof FormData ? (%s) : real(u, o); })()" % fake)
            p.click("#inpaint")
            self.wait_idle()
            msg = p.wait_for("window.pixserveUI.state().error")
            self.assertIn(want, msg)
            if "busy" in want:
                self.shot("inpaint-6-busy.png")
        p.eval("window.fetch = window.__realFetch")

    # A fake server side for the jobs API, installed in the page before its
    # scripts run: the index lists the route, a job goes through two queue
    # positions and the three stages, and its result is computed by the real
    # server (synchronously). Deterministic, unlike a real queue's timing.
    FAKE_JOBS = r"""
    (() => {
      const realFetch = window.fetch.bind(window);
      let polls = 0, submitted = null;
      const json = (obj, status = 200) => new Response(JSON.stringify(obj), {status, headers: {'Content-Type': 'application/json'}});
      window.fetch = async (u, o = {}) => {
        const url = String(u), m = (o.method || 'GET').toUpperCase();
        if (/\/api\/v1\/?$/.test(url)) return json({service: 'pixserve', routes: ['POST /api/v1/jobs', 'POST /api/v1/inpaint']});
        if (url.endsWith('/api/v1/jobs') && m === 'POST') {
          submitted = o.body;
          return json({id: 'j-test', status: 'queued', position: 2, status_url: '/api/v1/jobs/j-test'}, 202);
        }
        if (url.endsWith('/api/v1/jobs/j-test') && m === 'GET') {
          const seq = [{status: 'queued', position: 2}, {status: 'queued', position: 1},
                       {status: 'running', stage: 'decode'}, {status: 'running', stage: 'infer'},
                       {status: 'running', stage: 'encode'}];
          const st = seq[polls++];
          if (st) return json({id: 'j-test', position: null, stage: null, ...st});
          return json({id: 'j-test', status: 'done', result: {url: '/api/v1/jobs/j-test/result', format: 'png'},
                       timings: {queue_ms: 12.5, decode_ms: 1.5, infer_ms: 40.25, encode_ms: 3}});
        }
        if (url.endsWith('/api/v1/jobs/j-test/result'))
          return realFetch('/api/v1/inpaint', {method: 'POST', body: submitted});
        return realFetch(u, o);
      };
    })();"""

    # No jobs API at all: the index and the jobs routes answer 404, as a
    # server without them would. The UI must use POST /api/v1/inpaint.
    NO_JOBS = r"""
    (() => {
      const realFetch = window.fetch.bind(window);
      window.__jobsCalls = 0;
      const nf = (u) => new Response(JSON.stringify({error: {code: 'not_found', message: 'no route for ' + u}}),
                                     {status: 404, headers: {'Content-Type': 'application/json'}});
      window.fetch = (u, o = {}) => {
        const url = String(u);
        if (/\/api\/v1\/?$/.test(url)) return Promise.resolve(nf(url));
        if (/\/api\/v1\/jobs/.test(url)) { window.__jobsCalls++; return Promise.resolve(nf(url)); }
        return realFetch(u, o);
      };
    })();"""

    def with_script(self, source):
        """Installs a script that runs before the page's own on every load."""
        return self.page.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})["identifier"]

    def record_progress(self):
        self.page.eval("(() => { window.__progress = []; const el = document.getElementById('progress-text');"
                       " new MutationObserver(() => window.__progress.push(el.textContent))"
                       ".observe(el, {childList: true, characterData: true, subtree: true}); })()")

    def assert_inpainted(self, req):
        """The result the page got differs from the image it sent inside the
        mask it sent, and equals it outside. Returns (image, mask, result)."""
        img = pixels(data_url_bytes(req["image"]))
        mask = pixels(data_url_bytes(req["mask"]))[..., 0] > 127
        result = pixels(data_url_bytes(req["result"]))
        self.assertEqual(result.shape, img.shape)
        self.assertGreater(mask.sum(), 0)
        self.assertTrue(np.array_equal(result[~mask], img[~mask]), "outside the mask: the original")
        diff = np.abs(result[mask] - img[mask]).sum(axis=1)
        self.assertGreater((diff > 0).mean(), 0.5, "most pixels inside the mask changed")
        return img, mask, result

    def server_has_jobs(self):
        st, idx = self.srv.get_json("/api/v1")
        return st == 200 and "POST /api/v1/jobs" in idx.get("routes", [])

    def test_async_jobs_real_queue_position(self):
        """Through the server's own jobs API, behind other work: the page shows its place in the queue."""
        if not self.server_has_jobs():
            self.skipTest("this pixserve has no /api/v1/jobs")
        p = self.open_inpaint_page()
        self.assertEqual(self.state()["apiMode"], "jobs")
        self.record_progress()
        self.load_photo(self.photo_path)
        self.paint([(150, 120), (230, 150)])
        # Occupy the device: four heavier jobs submitted just before ours.
        img = photo("astronaut.png", (512, 384))
        body = {"image": b64(encode(img)), "mask": b64(encode(box_mask(384, 512, [(100, 100, 300, 300)]))),
                "method": "patchmatch"}
        for _ in range(4):
            st, _, _ = self.srv.post_json("/api/v1/jobs", body)
            self.assertEqual(st, 202)
        p.click("#inpaint")
        self.wait_idle()
        s = self.state()
        self.assertIsNone(s["error"], s)
        self.assertTrue(s["hasResult"])
        seen = p.eval("window.__progress")
        self.assertTrue(any(t.startswith("Queued — position ") for t in seen), seen)
        self.assertIn("async jobs API", p.eval("document.getElementById('timings').innerText"))
        self.assert_inpainted(p.eval("window.pixserveUI.lastRequest()"))

    def test_async_jobs_faked_stages(self):
        """Every state of the jobs contract shows up as the page polls."""
        ident = self.with_script(self.FAKE_JOBS)
        p = self.open_inpaint_page()
        self.assertEqual(self.state()["apiMode"], "jobs")
        self.record_progress()
        self.load_photo(self.photo_path)
        self.paint([(150, 120), (230, 150)])
        p.click("#inpaint")
        self.wait_idle()
        s = self.state()
        self.assertIsNone(s["error"], s)
        self.assertTrue(s["hasResult"])
        seen = p.eval("window.__progress")
        for want in ("Queued — position 2", "Queued — position 1", "Running — decode",
                     "Running — infer", "Running — encode"):
            self.assertIn(want, seen)
        self.assertLess(seen.index("Queued — position 1"), seen.index("Running — infer"))
        timings = p.eval("document.getElementById('timings').innerText")
        self.assertIn("40.3 ms", timings)
        self.assertIn("async jobs API", timings)
        self.assert_inpainted(p.eval("window.pixserveUI.lastRequest()"))
        self.page.send("Page.removeScriptToEvaluateOnNewDocument", {"identifier": ident})

    def test_sync_fallback_without_jobs_api(self):
        """A server without the jobs API: the page notices and uses POST /api/v1/inpaint."""
        self.with_script(self.NO_JOBS)
        p = self.open_inpaint_page()
        self.assertEqual(self.state()["apiMode"], "sync")
        self.assertEqual(p.eval("document.getElementById('api-mode').textContent"), "synchronous API")
        self.load_photo(self.photo_path)
        self.paint([(150, 120), (230, 150), (260, 210)])
        calls = p.eval("window.__jobsCalls")
        p.click("#inpaint")
        self.wait_idle()
        s = self.state()
        self.assertIsNone(s["error"], s)
        self.assertTrue(s["hasResult"])
        self.assertEqual(p.eval("window.__jobsCalls"), calls, "no job submitted")
        timings = p.eval("document.getElementById('timings').innerText")
        self.assertIn("POST /api/v1/inpaint", timings)
        self.assertIn("infer", timings)  # from the Server-Timing header
        self.assert_inpainted(p.eval("window.pixserveUI.lastRequest()"))
        self.shot("inpaint-7-sync-fallback.png")

    def test_dashboard_shows_live_metrics(self):
        p = self.page
        p.goto(self.base + "/dashboard")
        p.wait_for("window.pixserveDashboard && window.pixserveDashboard.polls >= 1")
        # Some load for the charts: inpaints on a side thread while it polls.
        img = photo("astronaut.png", (128, 96))
        body = {"image": b64(encode(img)), "mask": b64(encode(box_mask(96, 128, [(40, 30, 70, 60)])))}
        stop = threading.Event()

        def load():
            while not stop.is_set():
                self.srv.post_json("/api/v1/inpaint", body)
                self.srv.request("GET", "/healthz")

        t = threading.Thread(target=load)
        t.start()
        try:
            p.wait_for("(() => { const l = window.pixserveDashboard.last;"
                       " return l.qps > 0 && l.p50 != null && l.stages.infer != null; })()",
                       timeout=20 * SLOW)
            # A few more polls under load, so the charts (and the screenshot) show lines.
            n = p.eval("window.pixserveDashboard.polls")
            p.wait_for("window.pixserveDashboard.polls >= %d" % (n + 3), timeout=10 * SLOW)
        finally:
            stop.set()
            t.join()
        last = p.eval("window.pixserveDashboard.last")
        self.assertGreater(last["p99"], 0)
        self.assertGreaterEqual(last["p99"], last["p50"])
        self.assertEqual(last["capacity"], self.srv.metric("pixserve_queue_capacity"))
        texts = p.eval("({qps: document.getElementById('qps-now').innerText,"
                       " lat: document.getElementById('lat-now').innerText,"
                       " queue: document.getElementById('queue-now').innerText,"
                       " batch: document.getElementById('batch-now').innerText,"
                       " gpu: document.getElementById('gpu-now').innerText,"
                       " gpumem: document.getElementById('gpumem-now').innerText,"
                       " mem: document.getElementById('mem-now').innerText})")
        self.assertRegex(texts["qps"], r"^\d+(\.\d+)? req/s")
        self.assertRegex(texts["lat"], r"\d+(\.\d+)? (µs|ms|s) p99")
        self.assertRegex(texts["queue"], r"^\d+ (queued|pending) · \d+ running")
        self.assertRegex(texts["mem"], r"MiB")
        # No batching or GPU metrics from this server yet: said so, not blank.
        has_gpu = self.srv.metric("pixserve_gpu_memory_total_bytes") > 0
        if not has_gpu:
            self.assertEqual(texts["gpu"], "n/a")
            self.assertEqual(texts["gpumem"], "n/a")
        _, _, m = self.srv.request("GET", "/metrics")
        if b"pixserve_batch_size" not in m:
            self.assertEqual(texts["batch"], "n/a")
        paths = p.eval("document.querySelectorAll('#chart-qps path.series').length")
        self.assertGreaterEqual(paths, 1)
        self.shot("dashboard.png")

    def test_metrics_parser_and_quantiles(self):
        p = self.page
        p.goto(self.base + "/dashboard")
        r = p.eval(r"""import('/ui/metrics.js').then(M => {
          const text = [
            '# TYPE x histogram',
            'x_bucket{route="a",le="0.1"} 10', 'x_bucket{route="a",le="0.5"} 30',
            'x_bucket{route="a",le="1"} 40', 'x_bucket{route="a",le="+Inf"} 40',
            'x_sum{route="a"} 9', 'x_count{route="a"} 40',
            'x_bucket{route="b",le="0.1"} 0', 'x_bucket{route="b",le="0.5"} 0',
            'x_bucket{route="b",le="1"} 0', 'x_bucket{route="b",le="+Inf"} 10',
            'x_sum{route="b"} 50', 'x_count{route="b"} 10',
            'c{k="q\\"uo\\\\te"} 3', 'c{k="z"} 4.5e0', 'junk line here', 'g 7 1700000000000'];
          const m = M.parsePrometheus(text.join('\n'));
          const a = M.histogram(m, 'x', {route: 'a'});
          const all = M.histogram(m, 'x');
          const prev = M.parsePrometheus(text.join('\n').replace('le="+Inf"} 40', 'le="+Inf"} 20'));
          return {
            p50: M.quantile(a, 0.5), p25: M.quantile(a, 0.25), p100: M.quantile(a, 1),
            allp99: M.quantile(all, 0.99), count: all.count,
            sum: M.sum(m, 'c'), label: m.get('c')[0].labels.k, g: M.sum(m, 'g'),
            none: M.quantile(M.histogram(m, 'x', {route: 'zzz'}), 0.5), missing: M.sum(m, 'nope'),
            rate: M.rate(30, 10, 4), reset: M.rate(5, 10, 1),
            type: m.types.get('x'),
          };
        })""")
        self.assertAlmostEqual(r["p50"], 0.1 + 0.4 * (20 - 10) / 20)
        self.assertAlmostEqual(r["p25"], 0.1)
        self.assertAlmostEqual(r["p100"], 1)
        self.assertAlmostEqual(r["allp99"], 1)  # in +Inf: the highest finite bound
        self.assertEqual(r["count"], 50)
        self.assertEqual(r["sum"], 7.5)
        self.assertEqual(r["label"], 'q"uo\\te')
        self.assertEqual(r["g"], 7)
        self.assertIsNone(r["none"])
        self.assertIsNone(r["missing"])
        self.assertEqual(r["rate"], 5)
        self.assertEqual(r["reset"], 5)
        self.assertEqual(r["type"], "histogram")

    def test_small_screen_layout(self):
        p = self.page
        p.resize(390, 844, mobile=True)
        self.open_inpaint_page()
        self.load_photo(self.photo_path)
        lay = p.eval("({sw: document.documentElement.scrollWidth,"
                     " stage: document.getElementById('stage').getBoundingClientRect().toJSON(),"
                     " panel: document.querySelector('.panel').getBoundingClientRect().toJSON()})")
        self.assertLessEqual(lay["sw"], 390, "no sideways scrolling")
        self.assertGreaterEqual(lay["panel"]["top"], lay["stage"]["bottom"] - 1, "panel below the image")
        self.assertGreater(lay["stage"]["height"], 300)
        self.shot("inpaint-small-screen.png")
        p.goto(self.base + "/dashboard")
        p.wait_for("window.pixserveDashboard.polls >= 1")
        self.assertLessEqual(p.eval("document.documentElement.scrollWidth"), 390)
        self.shot("dashboard-small-screen.png")


if __name__ == "__main__":
    unittest.main()
