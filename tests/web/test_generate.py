"""The Generate page (text to image) end to end in headless Chromium.

GenerateWithModel drives web/generate.html against a real
`pixserve serve --engine zimage:model=DIR` with a tiny random Z-Image model
(tools/zimage_reference.py make DIR --config tiny --layouts hf): a prompt,
the custom size 64x64, 2 steps, 2 images; the progress must reach step 2 of
2, the gallery must hold both images with the seeds the server reports, and
the PNG download must be the server's bytes. Then the server's own message
for a size it refuses, Cancel on a long job (the server's job ends
`cancelled`), and the polling fallback when the event stream is unusable.
It is skipped, saying so, only when this pixserve build has no zimage engine.

The model is made in a temporary directory (OUT/hf of `make`), with the real
Qwen3 tokenizer.json from build/testdata (scripts/testdata) copied in, or
PIXSERVE_QWEN3_TOKENIZER; PIXSERVE_ZIMAGE_MODEL=DIR uses a model already made.
The server has a --lora-dir with two tiny LoRAs (tools/zimage_lora.py):
the LoRA picker lists them, a bad scale is refused in the page, and a run
with one sends it with its scale, shows it in the gallery and the viewer,
and gets the image the API gives for the same body.
PIXSERVE_GEN_BASE=http://HOST:PORT runs GenerateWithModel against a server
that is already running (one implementing docs/api.md "Text to image")
instead of starting pixserve.

GenerateWithoutModel needs no model: the page served from a pixserve with
only inpainting engines says that no text-to-image engine is loaded, and
(no --lora-dir) that the server has no LoRAs.
Screenshots go to PIXSERVE_WEB_ARTIFACTS (generate-*.png).
"""
import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from urllib.parse import urlsplit

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import cdp  # noqa: E402
from pxtest import BIN, SLOW, Server, make_tiny_zimage  # noqa: E402

ARTIFACTS = os.path.abspath(os.environ.get("PIXSERVE_WEB_ARTIFACTS") or os.path.join(
    os.path.dirname(os.path.abspath(BIN)), "web-artifacts"))
PY = "/usr/bin/python3"
PROMPT = "a red fox sitting in fresh snow, morning light"


def zimage_built_in():
    """Whether this pixserve build has the zimage engine (its help or its engine list names it)."""
    try:
        helptext = subprocess.run([BIN, "serve", "--help"], capture_output=True, timeout=30).stdout
        listing = subprocess.run([BIN, "engines"], capture_output=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    try:
        names = [e.get("name") for e in json.loads(listing)]
    except ValueError:
        names = []
    return "zimage" in names or b"zimage" in helptext


class External(Server):
    """A server that is already running (PIXSERVE_GEN_BASE): the same client helpers, nothing to stop."""

    def __init__(self, base):
        u = urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.tmp = tempfile.TemporaryDirectory(prefix="pxgen-")

    def stop(self, timeout=30):
        return 0

    def read_log(self):
        return ""


class PageTest(unittest.TestCase):
    """One browser for the class, one tab per test."""
    srv = None

    @classmethod
    def start_browser(cls):
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.downloads = os.path.join(ARTIFACTS, "generate-downloads")
        os.makedirs(cls.downloads, exist_ok=True)
        for n in os.listdir(cls.downloads):
            os.remove(os.path.join(cls.downloads, n))
        cls.base = "http://%s:%d" % (cls.srv.host, cls.srv.port)
        try:
            cls.browser = cdp.Browser(timeout=30 * SLOW)
        except Exception:
            cls.stop_server()
            raise

    @classmethod
    def stop_server(cls):
        rc = cls.srv.stop()
        log = cls.srv.read_log() if rc != 0 else ""
        cls.srv.tmp.cleanup()
        if rc != 0:
            raise AssertionError("pixserve exited with %r\n%s" % (rc, log[-4000:]))

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.stop_server()

    def setUp(self):
        self.page = self.browser.new_page(1280, 800, downloads=self.downloads)

    def tearDown(self):
        self.page.close()

    def shot(self, name):
        return self.page.screenshot(os.path.join(ARTIFACTS, name))

    def state(self):
        return self.page.eval("window.pixserveGen.state()")

    def open_page(self, path="/generate"):
        p = self.page
        st, h, _ = self.srv.request("GET", path)
        self.assertEqual(st, 200, "GET %s: the Generate page must be served there (src/serve/static.c)" % path)
        self.assertTrue(h.get("content-type", "").startswith("text/html"), h)
        p.goto(self.base + path)
        # Engines loaded (or the failure to load them reported).
        p.wait_for("window.pixserveGen && (window.pixserveGen.state().engines.length"
                   " || window.pixserveGen.state().error)")
        return p

    def set_value(self, id_, value, event="input"):
        self.page.eval("(() => { const e = document.getElementById(%s); e.value = %s;"
                       " e.dispatchEvent(new Event(%s, {bubbles: true})); })()"
                       % (json.dumps(id_), json.dumps(str(value)), json.dumps(event)))

    def type_prompt(self, text):
        p = self.page
        p.eval("(() => { const e = document.getElementById('prompt'); e.value = ''; e.focus(); })()")
        p.send("Input.insertText", {"text": text})
        self.assertEqual(p.eval("document.getElementById('prompt').value"), text)

    def choose_size(self, w, h):
        """A preset when there is one for WxH, else Custom with the two fields."""
        value = "%dx%d" % (w, h)
        has = self.page.eval("[...document.getElementById('size').options].some(o => o.value === %s)"
                             % json.dumps(value))
        self.set_value("size", value if has else "custom", "change")
        if not has:
            self.assertFalse(self.page.eval("document.getElementById('custom-size').hidden"))
            self.set_value("width", w)
            self.set_value("height", h)

    def record_progress(self):
        self.page.eval("(() => { window.__progress = []; const el = document.getElementById('progress-text');"
                       " new MutationObserver(() => window.__progress.push(el.textContent))"
                       ".observe(el, {childList: true, characterData: true, subtree: true}); })()")

    def wait_idle(self, timeout=120):
        self.page.wait_for("!window.pixserveGen.state().busy", timeout=timeout * SLOW)


class GenerateWithModel(PageTest):
    @classmethod
    def setUpClass(cls):
        base = os.environ.get("PIXSERVE_GEN_BASE")
        if base:
            cls.srv = External(base)
        else:
            if not zimage_built_in():
                raise unittest.SkipTest(
                    "%s has no zimage engine (neither `pixserve serve --help` nor `pixserve engines`"
                    " names it): the Generate page's end-to-end test needs the text-to-image server"
                    " side (issue 12)" % BIN)
            model = os.environ.get("PIXSERVE_ZIMAGE_MODEL") or cls.make_tiny_model()
            cls.lora_dir = tempfile.mkdtemp(prefix="pxgen-loras-")
            for name, spelling, seed in (("style", "peft", 3), ("ink", "kohya", 4)):
                subprocess.run([PY, os.path.join(ROOT, "tools", "zimage_lora.py"), "write",
                                os.path.join(cls.lora_dir, name + ".safetensors"), "--model", model,
                                "--spelling", spelling, "--rank", "4", "--seed", str(seed)],
                               check=True, timeout=300, stdout=subprocess.DEVNULL)
            cls.srv = Server("--engine", "zimage:model=" + model, "--lora-dir", cls.lora_dir)
        cls.start_browser()

    @classmethod
    def make_tiny_model(cls):
        """A tiny random Z-Image in the Hugging Face layout (a few MB; the
        text encoder keeps Qwen3's vocabulary, so it gets the real tokenizer);
        returns its directory."""
        cls.model_dir = tempfile.mkdtemp(prefix="pxgen-model-")
        return make_tiny_zimage(os.path.join(cls.model_dir, "zimage-tiny"))

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        for d in (getattr(cls, "model_dir", None), getattr(cls, "lora_dir", None)):
            if d:
                shutil.rmtree(d, ignore_errors=True)

    def generate(self, w, h, steps, count, seed=None):
        self.type_prompt(PROMPT)
        self.choose_size(w, h)
        self.set_value("steps", steps)
        self.set_value("count", count, "change")
        if seed is not None:
            self.set_value("seed", seed)
        self.page.click("#generate")

    def test_two_images_progress_gallery_download_reuse_seed(self):
        p = self.open_page()
        s = self.state()
        self.assertIsNone(s["error"], s)
        st, eng = self.srv.get_json("/api/v1/engines")
        gen = [e["name"] for e in eng["engines"] if e.get("kind") == "generate"]
        self.assertEqual(s["engines"], gen, "the model picker lists exactly the generate engines")
        self.shot("generate-0-empty.png")
        self.record_progress()
        t0 = time.monotonic()
        self.generate(64, 64, steps=2, count=2)
        self.wait_idle()
        s = self.state()
        self.assertIsNone(s["error"], s)
        print("  64x64, 2 steps, 2 images: %.2fs in the browser" % (time.monotonic() - t0))
        req = p.eval("window.pixserveGen.lastRequest()")
        self.assertEqual((req["width"], req["height"], req["num_inference_steps"], req["num_images"]),
                         (64, 64, 2, 2))
        self.assertEqual(req["prompt"], PROMPT)
        self.assertEqual(req["seed"], -1)

        # Queued first, then progress up to step 2 of 2, and the bar full at the end.
        seen = p.eval("window.__progress")
        self.assertTrue(seen and seen[0] == "Sending…", seen)
        self.assertTrue(any(t.startswith("Queued") for t in seen), seen)
        self.assertTrue(any(t.startswith("Step 2 of 2") for t in seen), seen)
        self.assertLess(next(i for i, t in enumerate(seen) if t.startswith("Queued")),
                        next(i for i, t in enumerate(seen) if t.startswith("Step 2 of 2")), seen)
        self.assertRegex(s["progressText"], r"^Done: 2 images in \d+\.\d\d s\.$")
        bar = p.eval("(() => { const b = document.getElementById('progress-bar');"
                     " return {hidden: b.hidden, value: b.value, max: b.max}; })()")
        self.assertEqual(bar, {"hidden": False, "value": 2, "max": 2})

        # Two images, with the seeds the server used (image k: seed + k).
        g = s["gallery"]
        self.assertEqual(len(g), 2, g)
        job_id = g[0]["jobId"]
        self.assertTrue(job_id, g)
        st, job = self.srv.get_json("/api/v1/jobs/" + job_id)
        self.assertEqual(st, 200, job)
        self.assertEqual(job["status"], "done", job)
        self.assertEqual([x["seed"] for x in g], job["seeds"])
        self.assertEqual(g[1]["seed"], g[0]["seed"] + 1)
        for x in g:
            self.assertEqual((x["width"], x["height"], x["steps"]), (64, 64, 2))
            self.assertEqual(x["jobId"], job_id)
        shown = p.eval("[...document.querySelectorAll('#gallery .shot')].map(li => ({"
                       " seed: li.querySelector('.shot-seed').textContent,"
                       " w: li.querySelector('img').naturalWidth, ok: li.querySelector('img').complete}))")
        self.assertEqual([x["seed"] for x in shown], ["seed %d" % x["seed"] for x in g])
        self.assertEqual([(x["w"], x["ok"]) for x in shown], [(64, True), (64, True)])
        self.shot("generate-1-gallery.png")

        # The PNG download is the server's image, byte for byte.
        p.click("#gallery li:first-child a[download]")
        path = os.path.join(self.downloads, g[0]["download"])
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(path), "downloaded %s (have %s)" % (path, os.listdir(self.downloads)))
        time.sleep(0.1)
        with open(path, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"\x89PNG\r\n\x1a\n"))
        self.assertEqual(Image.open(io.BytesIO(data)).size, (64, 64))
        st, _, server_png = self.srv.request("GET", job["result"]["urls"][0])
        self.assertEqual(st, 200)
        self.assertEqual(data, server_png)

        # Click a thumbnail: the large view, closed with Esc.
        p.click("#gallery li:nth-child(2) .thumb")
        p.wait_for("document.getElementById('viewer').open")
        self.assertEqual(self.state()["viewing"], 1)
        self.assertIn(str(g[1]["seed"]), p.eval("document.getElementById('viewer-meta').innerText"))
        self.shot("generate-2-viewer.png")
        p.key("Escape")
        p.wait_for("!document.getElementById('viewer').open")

        # Reuse seed: the seed field takes that image's seed, and the lock shows it.
        p.click("#gallery li:nth-child(2) .shot-actions button")
        self.assertEqual(p.eval("document.getElementById('seed').value"), str(g[1]["seed"]))
        self.assertEqual(p.eval("document.getElementById('seed-lock').getAttribute('aria-pressed')"), "true")
        p.click("#seed-random")
        self.assertEqual(p.eval("document.getElementById('seed').value"), "-1")

    def test_loras_picked_with_scales(self):
        p = self.open_page()
        st, listing = self.srv.get_json("/api/v1/loras")
        if st != 200:
            self.skipTest("the server has no LoRAs (GET /api/v1/loras: %d)" % st)
        names = [x["name"] for x in listing["loras"]]
        p.wait_for("window.pixserveGen.state().loras !== null")
        self.assertEqual(self.state()["loras"], names, "the picker lists the server's LoRAs")
        self.assertEqual(p.eval("[...document.getElementById('lora-pick').options].map(o => o.value)"), names)
        # Add two, remove one: what is chosen leaves the picker.
        for name in ("ink", "style"):
            self.set_value("lora-pick", name, "change")
            p.click("#lora-add")
        self.assertEqual(self.state()["chosenLoras"], ["ink", "style"])
        self.assertNotIn("style", p.eval("[...document.getElementById('lora-pick').options].map(o => o.value)"))
        p.click("#lora-list li:first-child button")
        self.assertEqual(self.state()["chosenLoras"], ["style"])
        # A scale the server would refuse is refused in the page, nothing sent.
        self.type_prompt(PROMPT)
        self.choose_size(64, 64)
        self.set_value("steps", 2)
        self.set_value("seed", 7)
        self.set_value("lora-scale-style", 9)
        p.click("#generate")
        s = self.state()
        self.assertIn("scale of LoRA style", s["error"] or "")
        self.assertEqual(s["invalid"], ["lora-scale-style"])
        self.assertIsNone(p.eval("window.pixserveGen.lastRequest()"))
        # 0.85: sent, shown, and the image is the API's for the same body.
        self.set_value("lora-scale-style", 0.85)
        self.shot("generate-5-loras-form.png")
        p.click("#generate")
        self.wait_idle()
        s = self.state()
        self.assertIsNone(s["error"], s)
        req = p.eval("window.pixserveGen.lastRequest()")
        self.assertEqual(req["loras"], [{"name": "style", "scale": 0.85}])
        g = s["gallery"]
        self.assertEqual(len(g), 1, g)
        self.assertEqual(g[0]["loras"], [{"name": "style", "scale": 0.85}])
        st, job = self.srv.get_json("/api/v1/jobs/" + g[0]["jobId"])
        self.assertEqual(job["loras"], [{"name": "style", "scale": 0.85}])
        self.assertIn("style × 0.85", p.eval("document.querySelector('#gallery .shot-meta').innerText"))
        st, _, page_png = self.srv.request("GET", job["result"]["urls"][0])
        body = {k: req[k] for k in ("prompt", "width", "height", "num_inference_steps", "seed",
                                     "cfg_scale", "loras")}
        st, _, data = self.srv.post_json("/api/v1/generate", body, timeout=120)
        self.assertEqual(st, 200, data[:300])
        api_png = base64.b64decode(json.loads(data)["images"][0])
        self.assertEqual(Image.open(io.BytesIO(page_png)).tobytes(),
                         Image.open(io.BytesIO(api_png)).tobytes())
        p.click("#gallery li:first-child .thumb")
        p.wait_for("document.getElementById('viewer').open")
        self.assertIn("style × 0.85", p.eval("document.getElementById('viewer-meta').innerText"))
        self.shot("generate-6-loras-viewer.png")
        p.key("Escape")

    def test_bad_size_shows_the_servers_message(self):
        p = self.open_page()
        # Not a multiple of 16: refused in the page, nothing sent.
        self.type_prompt(PROMPT)
        self.choose_size(100, 64)
        p.click("#generate")
        s = self.state()
        self.assertIn("multiple of 16", s["error"] or "")
        self.assertEqual(s["invalid"], ["width"])
        self.assertIsNone(p.eval("window.pixserveGen.lastRequest()"))

        # A multiple of 16 the server refuses: its own message is shown.
        body = {"prompt": PROMPT, "width": 4096, "height": 4096, "num_inference_steps": 2, "num_images": 1}
        st, _, data = self.srv.post_json("/api/v1/generate", body)
        self.assertTrue(400 <= st < 500, (st, data[:300]))
        message = json.loads(data)["error"]["message"]
        self.assertTrue(message)
        self.choose_size(4096, 4096)
        self.set_value("steps", 2)
        p.click("#generate")
        self.wait_idle()
        err = p.wait_for("window.pixserveGen.state().error")
        self.assertIn(message, err)
        visible = p.eval("(() => { const e = document.getElementById('error'), r = e.getBoundingClientRect();"
                         " return !e.hidden && r.height > 0 && r.bottom <= innerHeight + 1; })()")
        self.assertTrue(visible, "the message is on screen")
        self.assertEqual(self.state()["gallery"], [])
        self.shot("generate-3-bad-size.png")

    def test_cancel_a_long_job(self):
        p = self.open_page()
        self.generate(1024, 1024, steps=50, count=4)
        # Wait until it is denoising, then Cancel.
        p.wait_for("(() => { const s = window.pixserveGen.state();"
                   " return s.error || !s.busy || (s.progress && s.progress.progress && s.progress.progress.step >= 1); })()",
                   timeout=120 * SLOW)
        s = self.state()
        self.assertTrue(s["busy"] and s["error"] is None, s)
        job_id = s["jobId"]
        self.shot("generate-4-running.png")
        p.click("#cancel")
        self.wait_idle(30)
        s = self.state()
        self.assertEqual(s["progressText"], "Cancelled.")
        self.assertIsNone(s["error"], s)
        self.assertEqual(s["gallery"], [])
        self.assertFalse(p.eval("document.getElementById('generate').disabled"))
        # The server dropped the job (running work stops at its next step).
        deadline = time.monotonic() + 30 * SLOW
        while True:
            st, job = self.srv.get_json("/api/v1/jobs/" + job_id)
            if job.get("status") != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(job.get("status"), "cancelled", job)
        self.assertLess((job.get("progress") or {}).get("step", 0), 50, job)

    def test_polling_when_the_event_stream_is_unusable(self):
        # An EventSource that cannot connect: the page must poll the job instead.
        ident = self.page.send("Page.addScriptToEvaluateOnNewDocument", {"source":
            "window.EventSource = function () { throw new Error('EventSource blocked by the test'); };"})["identifier"]
        p = self.open_page()
        self.record_progress()
        self.generate(64, 64, steps=2, count=1)
        self.wait_idle()
        s = self.state()
        self.assertIsNone(s["error"], s)
        self.assertEqual(len(s["gallery"]), 1)
        self.assertEqual(p.eval("document.getElementById('gen-status').dataset.via"), "poll")
        seen = p.eval("window.__progress")
        self.assertTrue(any(t.startswith("Queued") for t in seen), seen)
        self.assertTrue(any(t.startswith("Step 2 of 2") for t in seen), seen)
        self.page.send("Page.removeScriptToEvaluateOnNewDocument", {"identifier": ident})


class GenerateWithoutModel(PageTest):
    """The page from a pixserve with only inpainting engines (needs no model)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.start_browser()

    def test_no_generate_engine_is_explained(self):
        p = self.open_page("/ui/generate.html")
        s = self.state()
        self.assertEqual(s["engines"], [])
        self.assertIn("no text-to-image engine", s["error"] or "")
        self.assertTrue(p.eval("document.getElementById('generate').disabled"))
        links = p.eval("[...document.querySelectorAll('.topbar nav a')].map(a => a.getAttribute('href'))")
        self.assertEqual(links, ["/", "/generate", "/dashboard", "/api/v1"])
        p.wait_for("document.getElementById('lora-help').textContent.includes('--lora-dir')")
        self.assertIsNone(self.state()["loras"])
        self.assertTrue(p.eval("document.getElementById('lora-add').disabled"))
        for path in ("/", "/dashboard"):
            st, _, html = self.srv.request("GET", path)
            self.assertIn(b'<a href="/generate">Generate</a>', html, path)
        self.shot("generate-no-model.png")

    def test_small_screen_layout(self):
        p = self.page
        p.resize(390, 844, mobile=True)
        self.open_page("/ui/generate.html")
        lay = p.eval("({sw: document.documentElement.scrollWidth,"
                     " form: document.getElementById('gen-form').getBoundingClientRect().toJSON(),"
                     " gallery: document.querySelector('.gallery-area').getBoundingClientRect().toJSON()})")
        self.assertLessEqual(lay["sw"], 390, "no sideways scrolling")
        self.assertGreaterEqual(lay["gallery"]["top"], lay["form"]["bottom"] - 1, "results below the form")
        self.shot("generate-small-screen.png")


if __name__ == "__main__":
    unittest.main()
