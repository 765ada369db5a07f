"""IOPaint drop-in and HTTP manners (docs/api.md, "IOPaint compatibility").

Frontend: every call IOPaint's web frontend makes, with the bodies it sends
(data-URL images, its #ffcc00/0xbb brush mask, dozens of model fields),
against a server with two inpaint engines (classic and a tiny random LaMa
made at test time), --input DIR, --output-dir, --mask-dir and --cors-origin.
InputFile: GET /api/v1/inputimage with --input FILE. Manners: the legacy
lama-cleaner form on POST /inpaint beside the seed JSON, no CORS headers by
default, and the lingering close seen by real clients (Python's urllib,
Node's fetch through iopaint_fetch.mjs, a raw socket sending a chunked body).
Batch: `pixserve inpaint --image DIR --mask DIR --output DIR`.
"""
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

import numpy as np
from PIL import Image, PngImagePlugin

from pxtest import BIN, SLOW, Server, ServerTest, b64, box_mask, decode, encode, photo

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PY = "/usr/bin/python3"
NODE = "/usr/bin/node"
ORIGIN = "http://frontend.test:5173"
BRUSH = (0xff, 0xcc, 0x00, 0xbb)


def brush_mask(h, w, boxes):
    """IOPaint's mask: brush-coloured strokes at alpha 0xbb on transparent."""
    m = np.zeros((h, w, 4), np.uint8)
    for x0, y0, x1, y1 in boxes:
        m[y0:y1, x0:x1] = BRUSH
    return m


def data_url(data, mime="image/png"):
    return "data:%s;base64,%s" % (mime, b64(data))


def png_with_parameters(arr, text):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def multipart(fields, files):
    """A multipart/form-data body: fields {name: text}, files {name: (filename, bytes)}."""
    boundary = "----pxtest7MA4YWxkTrZu0gW"
    out = []
    for k, v in fields.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                    % (boundary, k, v)).encode())
    for k, (fn, data) in files.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n" % (boundary, k, fn)).encode())
        out.append(data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary


def iopaint_body(image, mask, mime="image/png"):
    """The JSON IOPaint's client posts to /api/v1/inpaint (most fields unknown to pixserve)."""
    return {
        "image": data_url(image, mime), "mask": data_url(mask), "ldm_steps": 30,
        "ldm_sampler": "ddim", "zits_wireframe": True, "cv2_flag": "INPAINT_NS", "cv2_radius": 5,
        "hd_strategy": "Crop", "hd_strategy_crop_trigger_size": 800,
        "hd_strategy_crop_margin": 128, "hd_strategy_resize_limit": 1280, "prompt": "",
        "negative_prompt": "", "use_croper": False, "croper_x": 0, "croper_y": 0,
        "croper_height": 512, "croper_width": 512, "use_extender": False, "sd_mask_blur": 12,
        "sd_strength": 1.0, "sd_steps": 50, "sd_guidance_scale": 7.5, "sd_sampler": "uni_pc",
        "sd_seed": 42, "sd_match_histograms": False, "sd_lcm_lora": False,
        "paint_by_example_example_image": None, "p2p_image_guidance_scale": 1.5,
        "enable_controlnet": False, "controlnet_conditioning_scale": 0.4,
        "controlnet_method": "", "enable_brushnet": False, "brushnet_method": "",
        "brushnet_conditioning_scale": 1.0, "enable_powerpaint_v2": False,
        "powerpaint_task": "text-guided",
    }


def make_tiny_lama(path):
    r = subprocess.run([PY, os.path.join(ROOT, "tools", "lama_reference.py"), "weights", "--config",
                        "tiny", "--seed", "3", "--out", path], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]


class Frontend(unittest.TestCase):
    """The calls of IOPaint's frontend on page load, upload, Settings, inpaint and file manager."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pxiop-")
        d = cls.tmp.name
        cls.lama = os.path.join(d, "lama.safetensors")
        make_tiny_lama(cls.lama)
        cls.input, cls.output, cls.masks = (os.path.join(d, x) for x in ("in", "out", "masks"))
        for x in (cls.input, cls.output, cls.masks):
            os.mkdir(x)
        cls.img = photo("astronaut.png", (96, 64))
        with open(os.path.join(cls.input, "astro.png"), "wb") as f:
            f.write(png_with_parameters(cls.img, "x"))
        with open(os.path.join(cls.input, "coffee.jpg"), "wb") as f:
            f.write(encode(photo("coffee.png", (120, 80)), "JPEG"))
        with open(os.path.join(cls.input, "notes.txt"), "w") as f:
            f.write("not listed")
        with open(os.path.join(cls.masks, "m.png"), "wb") as f:
            f.write(encode(box_mask(64, 96, [(10, 10, 40, 30)])))
        cls.srv = Server("--engine", "classic", "--engine", "lama:weights=" + cls.lama, "--input",
                         cls.input, "--output-dir", cls.output, "--mask-dir", cls.masks,
                         "--cors-origin", ORIGIN)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        log = cls.srv.read_log()
        cls.srv.tmp.cleanup()
        cls.tmp.cleanup()
        assert rc == 0, log[-3000:]

    def json_ok(self, method, path, body=None, headers=None):
        st, h, data = self.srv.request(method, path, body, headers)
        self.assertEqual(st, 200, data[:300])
        return h, json.loads(data)

    def test_server_config_lists_the_loaded_engines(self):
        _, cfg = self.json_ok("GET", "/api/v1/server-config")
        self.assertEqual(cfg["plugins"], [])
        self.assertEqual([m["name"] for m in cfg["modelInfos"]], ["classic", "lama"])
        for m in cfg["modelInfos"]:
            self.assertEqual(m["model_type"], "inpaint")
            self.assertFalse(m["need_prompt"])
            self.assertEqual((m["controlnets"], m["brushnets"]), ([], []))
        for key in ("removeBGModel", "removeBGModels", "realesrganModel", "realesrganModels",
                    "interactiveSegModel", "interactiveSegModels", "enableControlnet",
                    "controlnetMethod", "isDesktop", "samplers"):
            self.assertIn(key, cfg)
        self.assertTrue(cfg["enableFileManager"])
        self.assertTrue(cfg["enableAutoSaving"])
        self.assertFalse(cfg["disableModelSwitch"])

    def test_model_switch_changes_the_engine_of_inpaint_requests(self):
        _, m = self.json_ok("GET", "/api/v1/model")
        self.assertEqual(m["name"], "classic")
        body = iopaint_body(encode(self.img), encode(brush_mask(64, 96, [(20, 20, 50, 40)])))
        body["return"] = "base64"  # pixserve's own field: the JSON names the engine
        try:
            _, r = self.json_ok("POST", "/api/v1/inpaint", json.dumps(body).encode(),
                                {"Content-Type": "application/json"})
            self.assertEqual(r["engine"], "classic")
            _, m = self.json_ok("POST", "/api/v1/model", b'{"name": "lama"}',
                                {"Content-Type": "application/json"})
            self.assertEqual(m["name"], "lama")
            _, m = self.json_ok("GET", "/api/v1/model")
            self.assertEqual(m["name"], "lama")
            _, r = self.json_ok("POST", "/api/v1/inpaint", json.dumps(body).encode(),
                                {"Content-Type": "application/json"})
            self.assertEqual(r["engine"], "lama")
            st, _, data = self.srv.post_json("/api/v1/model", {"name": "sd15"})
            self.assertEqual(st, 404)
            self.assertIn("sd15", json.loads(data)["errors"])
        finally:
            self.srv.post_json("/api/v1/model", {"name": "classic"})

    def test_inpaint_with_iopaints_body_and_brush_mask(self):
        boxes = [(20, 20, 50, 40)]
        mask = brush_mask(64, 96, boxes)
        st, h, data = self.srv.post_json("/api/v1/inpaint", iopaint_body(encode(self.img),
                                                                         encode(mask)))
        self.assertEqual(st, 200, data[:300])
        self.assertEqual(h["content-type"], "image/png")
        self.assertEqual(h["x-seed"], "0")
        out = decode(data)
        hole = box_mask(64, 96, boxes) > 0
        self.assertTrue(np.array_equal(out[~hole], self.img[~hole]))  # outside the strokes: kept
        self.assertGreater(np.abs(out[hole].astype(int) - self.img[hole]).mean(), 1)
        # JPEG in, JPEG out; asking for another format wins.
        jpg = encode(self.img, "JPEG")
        st, h, data = self.srv.post_json("/api/v1/inpaint",
                                         iopaint_body(jpg, encode(mask), "image/jpeg"))
        self.assertEqual((st, h["content-type"], data[:2]), (200, "image/jpeg", b"\xff\xd8"))
        body = iopaint_body(jpg, encode(mask), "image/jpeg")
        body["output_format"] = "webp"
        st, h, _ = self.srv.post_json("/api/v1/inpaint", body)
        self.assertEqual((st, h["content-type"]), (200, "image/webp"))

    def test_errors_carry_the_string_the_toast_shows(self):
        st, _, data = self.srv.post_json("/api/v1/inpaint", {"image": "bm90IGFuIGltYWdl",
                                                             "mask": "bm90IGFuIGltYWdl"})
        j = json.loads(data)
        self.assertEqual(st, 415)
        self.assertEqual(j["error"]["code"], "unsupported")
        self.assertEqual(j["errors"], j["error"]["message"])
        st, _, data = self.srv.request("GET", "/api/v1/nothing-here")
        self.assertEqual(st, 404)
        self.assertIn("nothing-here", json.loads(data)["errors"])

    def test_gen_info_reads_the_png_parameters_chunk(self):
        text = "a cat on a mat\nwith a hat\nNegative prompt: blurry, dog\nSteps: 20, Seed: 1"
        body, ct = multipart({}, {"file": ("a.png", png_with_parameters(self.img, text))})
        _, j = self.json_ok("POST", "/api/v1/gen-info", body, {"Content-Type": ct})
        self.assertEqual(j, {"prompt": "a cat on a mat\nwith a hat", "negative_prompt": "blurry, dog"})
        body, ct = multipart({}, {"file": ("a.jpg", encode(self.img, "JPEG"))})
        _, j = self.json_ok("POST", "/api/v1/gen-info", body, {"Content-Type": ct})
        self.assertEqual(j, {"prompt": "", "negative_prompt": ""})
        st, _, data = self.srv.request("POST", "/api/v1/gen-info", b"{}",
                                       {"Content-Type": "application/json"})
        self.assertEqual(st, 400, data)

    def test_inputimage_without_a_file_is_json(self):
        h, j = self.json_ok("GET", "/api/v1/inputimage")
        self.assertTrue(h["content-type"].startswith("application/json"))

    def test_save_image_writes_into_the_output_dir(self):
        png = encode(self.img)
        body, ct = multipart({}, {"file": ("result.png", png)})
        _, j = self.json_ok("POST", "/api/v1/save_image", body, {"Content-Type": ct})
        self.assertEqual(j["name"], "result.png")
        with open(os.path.join(self.output, "result.png"), "rb") as f:
            self.assertEqual(f.read(), png)
        for name in ("../escape.png", ".hidden.png", "x.exe"):
            body, ct = multipart({}, {"file": (name, png)})
            st, _, _ = self.srv.request("POST", "/api/v1/save_image", body, {"Content-Type": ct})
            self.assertIn(st, (200, 400), name)
            self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "escape.png")))
        body, ct = multipart({}, {"file": ("y.png", b"not an image")})
        st, _, _ = self.srv.request("POST", "/api/v1/save_image", body, {"Content-Type": ct})
        self.assertEqual(st, 415)
        # The file manager's output tab lists it.
        _, listed = self.json_ok("GET", "/api/v1/medias?tab=output")
        self.assertIn("result.png", [m["name"] for m in listed])

    def test_file_manager(self):
        _, listed = self.json_ok("GET", "/api/v1/medias?tab=input")
        by = {m["name"]: m for m in listed}
        self.assertEqual(sorted(by), ["astro.png", "coffee.jpg"])
        self.assertEqual((by["astro.png"]["width"], by["astro.png"]["height"]), (96, 64))
        self.assertEqual((by["coffee.jpg"]["width"], by["coffee.jpg"]["height"]), (120, 80))
        self.assertGreater(by["astro.png"]["mtime"], 1e9)
        self.assertIn("ctime", by["astro.png"])
        _, masks = self.json_ok("GET", "/api/v1/medias?tab=mask")
        self.assertEqual([m["name"] for m in masks], ["m.png"])
        st, h, data = self.srv.request("GET", "/api/v1/media_file?tab=input&filename=coffee.jpg")
        with open(os.path.join(self.input, "coffee.jpg"), "rb") as f:
            self.assertEqual((st, h["content-type"], data), (200, "image/jpeg", f.read()))
        st, h, data = self.srv.request(
            "GET", "/api/v1/media_thumbnail_file?tab=input&filename=coffee.jpg&width=60&height=60")
        self.assertEqual((st, h["content-type"]), (200, "image/jpeg"))
        self.assertEqual((h["x-width"], h["x-height"]), ("60", "40"))
        self.assertEqual(Image.open(io.BytesIO(data)).size, (60, 40))
        for bad in ("../in/astro.png", "%2e%2e%2fetc%2fpasswd", "notes.txt"):
            st, _, _ = self.srv.request("GET", "/api/v1/media_file?tab=input&filename=" + bad)
            self.assertEqual(st, 400, bad)
        st, _, _ = self.srv.request("GET", "/api/v1/media_file?tab=input&filename=gone.png")
        self.assertEqual(st, 404)
        st, _, _ = self.srv.request("GET", "/api/v1/medias?tab=elsewhere")
        self.assertEqual(st, 404)

    def test_adjust_mask(self):
        mask = encode(brush_mask(40, 50, [(15, 10, 35, 30)]))
        area = 20 * 20

        def adjust(op, k):
            st, h, data = self.srv.post_json("/api/v1/adjust_mask", {
                "mask": data_url(mask), "operate": op, "kernel_size": k})
            self.assertEqual((st, h["content-type"]), (200, "image/png"), data[:200])
            out = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
            holes = out[..., 3] > 0
            self.assertTrue((out[holes] == BRUSH).all())
            return holes

        self.assertGreater(adjust("expand", 3).sum(), area + 4 * 20 * 2)
        self.assertEqual(adjust("shrink", 3).sum(), 14 * 14)
        self.assertEqual(adjust("reverse", 0).sum(), 40 * 50 - area)
        st, _, data = self.srv.post_json("/api/v1/adjust_mask", {"mask": data_url(mask),
                                                                 "operate": "melt"})
        self.assertEqual(st, 400)
        self.assertIn("operate", json.loads(data)["errors"])

    def test_plugins_are_absent(self):
        for call in ("switch_plugin_model", "run_plugin_gen_image", "run_plugin_gen_mask"):
            st, _, data = self.srv.post_json("/api/v1/" + call, {"name": "RemoveBG"})
            self.assertEqual(st, 404)
            self.assertIn("plugins", json.loads(data)["errors"])

    def test_socketio_session_ends_with_a_server_disconnect(self):
        st, h, data = self.srv.request("GET", "/socket.io/?EIO=4&transport=polling&t=abc")
        self.assertEqual(st, 200)
        self.assertEqual(data[:1], b"0")
        hs = json.loads(data[1:])
        self.assertEqual(hs["upgrades"], [])
        self.assertGreater(hs["pingInterval"], 0)
        sid = hs["sid"]
        st, _, data = self.srv.request("POST", "/socket.io/?EIO=4&transport=polling&sid=" + sid,
                                       b"40", {"Content-Type": "text/plain;charset=UTF-8"})
        self.assertEqual((st, data), (200, b"ok"))
        st, _, data = self.srv.request("GET", "/socket.io/?EIO=4&transport=polling&sid=" + sid)
        packets = data.split(b"\x1e")
        self.assertEqual(st, 200)
        self.assertTrue(packets[0].startswith(b"40{"), data)  # CONNECT acknowledged ...
        self.assertEqual(packets[-1], b"41")  # ... then DISCONNECT: no reconnecting
        st, _, data = self.srv.request("GET", "/socket.io/?EIO=4&transport=websocket")
        self.assertEqual((st, json.loads(data)["code"]), (400, 0))
        st, _, _ = self.srv.request("GET", "/socket.io/?EIO=3&transport=polling")
        self.assertEqual(st, 400)

    def test_cors(self):
        st, h, _ = self.srv.request("OPTIONS", "/api/v1/inpaint", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(st, 204)
        self.assertEqual(h["access-control-allow-origin"], ORIGIN)
        self.assertIn("POST", h["access-control-allow-methods"])
        self.assertIn("content-type", h["access-control-allow-headers"].lower())
        st, h, _ = self.srv.request("GET", "/api/v1/server-config", headers={"Origin": ORIGIN})
        self.assertEqual(h["access-control-allow-origin"], ORIGIN)
        exposed = h["access-control-expose-headers"]
        for name in ("X-Seed", "Server-Timing"):
            self.assertIn(name, exposed)
        st, h, _ = self.srv.request("GET", "/api/v1/server-config",
                                    headers={"Origin": "http://evil.test"})
        self.assertNotIn("access-control-allow-origin", h)
        st, h, _ = self.srv.request("OPTIONS", "/api/v1/inpaint", headers={
            "Origin": "http://evil.test", "Access-Control-Request-Method": "POST"})
        self.assertNotIn("access-control-allow-origin", h)


class InputFile(ServerTest):
    """--input FILE: the image IOPaint's frontend opens on load."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pxiop-in-")
        cls.path = os.path.join(cls.dir, "holiday photo.jpg")
        cls.data = encode(photo("coffee.png", (64, 48)), "JPEG")
        with open(cls.path, "wb") as f:
            f.write(cls.data)
        cls.flags = ("--input", cls.path)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.dir)

    def test_inputimage(self):
        st, h, data = self.srv.request("GET", "/api/v1/inputimage")
        self.assertEqual((st, h["content-type"], data), (200, "image/jpeg", self.data))
        self.assertEqual(h["content-disposition"], 'inline; filename="holiday photo.jpg"')
        _, cfg = self.srv.get_json("/api/v1/server-config")
        self.assertFalse(cfg["enableFileManager"])  # a file, not a folder
        self.assertTrue(cfg["disableModelSwitch"])  # one engine: nothing to switch to


class Manners(ServerTest):
    """Legacy lama-cleaner clients, CORS off by default and the lingering close."""

    flags = ("--max-body", "256K")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.img = photo("astronaut.png", (64, 48))
        cls.mask = box_mask(48, 64, [(10, 10, 30, 30)])

    def test_lama_cleaner_form_and_seed_json_share_post_inpaint(self):
        fields = {"ldmSteps": "25", "ldmSampler": "plms", "hdStrategy": "Crop",
                  "hdStrategyCropMargin": "32", "hdStrategyCropTrigerSize": "2048",
                  "hdStrategyResizeLimit": "2048", "prompt": "a long prompt " * 20,
                  "negativePrompt": "", "sizeLimit": "Original", "cv2Radius": "5",
                  "cv2Flag": "INPAINT_NS", "sdSeed": "-1", "useCroper": "false"}
        body, ct = multipart(fields, {"image": ("image.png", encode(self.img)),
                                      "mask": ("mask.png", encode(self.mask))})
        st, h, data = self.srv.request("POST", "/inpaint", body, {"Content-Type": ct})
        self.assertEqual((st, h["content-type"]), (200, "image/png"), data[:300])
        self.assertIn("x-seed", h)
        out = decode(data)
        self.assertTrue(np.array_equal(out[self.mask == 0], self.img[self.mask == 0]))
        st, h, data = self.srv.post_json("/inpaint", {"image": b64(encode(self.img)),
                                                      "mask": b64(encode(self.mask))})
        j = json.loads(data)
        self.assertEqual((st, j["status"]), (200, "ok"))
        self.assertTrue(np.array_equal(decode(__import__("base64").b64decode(j["image"])), out))
        body, ct = multipart({"hdStrategy": "Sideways"}, {"image": ("i.png", encode(self.img)),
                                                          "mask": ("m.png", encode(self.mask))})
        st, _, data = self.srv.request("POST", "/inpaint", body, {"Content-Type": ct})
        self.assertEqual(st, 400)
        self.assertIn("hd_strategy", json.loads(data)["errors"])

    def test_no_cors_headers_unless_asked(self):
        st, h, _ = self.srv.request("GET", "/api/v1/server-config",
                                    headers={"Origin": ORIGIN})
        self.assertEqual(st, 200)
        self.assertNotIn("access-control-allow-origin", h)
        st, _, _ = self.srv.request("OPTIONS", "/api/v1/inpaint", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
        self.assertEqual(st, 405)

    def urllib_post(self, path, body):
        req = urllib.request.Request("http://%s:%d%s" % (self.srv.host, self.srv.port, path),
                                     data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30 * SLOW) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_urllib_reads_early_answers(self):
        big = b"x" * (8 << 20)  # far above --max-body and the socket buffers
        st, data = self.urllib_post("/api/v1/inpaint", big)
        self.assertEqual(st, 413)
        self.assertEqual(json.loads(data)["error"]["code"], "too_large")
        st, data = self.urllib_post("/no/such/route", big)
        self.assertEqual(st, 404)
        st, data = self.urllib_post("/api/v1/gen-info", big)
        self.assertEqual(st, 413)
        self.assertHealthy()

    def test_chunked_body_past_the_cap(self):
        """No Content-Length: the cap is found while reading; the answer still arrives."""
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=30 * SLOW)
        s.sendall(b"POST /api/v1/inpaint HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b"y" * 65536)
        for _ in range(64):  # 4 MiB
            s.sendall(chunk)
        s.sendall(b"0\r\n\r\n")
        data = b""
        while not data.endswith(b"}\n"):
            got = s.recv(65536)
            if not got:
                break
            data += got
        s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])

    def test_node_fetch(self):
        if not os.path.exists(NODE):
            self.skipTest("node is not installed")
        d = tempfile.mkdtemp(prefix="pxiop-node-")
        try:
            ip, mp = os.path.join(d, "i.png"), os.path.join(d, "m.png")
            with open(ip, "wb") as f:
                f.write(encode(self.img))
            with open(mp, "wb") as f:
                f.write(encode(brush_mask(48, 64, [(5, 5, 20, 20)])))
            r = subprocess.run([NODE, os.path.join(HERE, "iopaint_fetch.mjs"),
                                "http://%s:%d" % (self.srv.host, self.srv.port), ip, mp,
                                str(8 << 20)], capture_output=True, text=True, timeout=60 * SLOW)
        finally:
            shutil.rmtree(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout)
        self.assertEqual(out["config"]["status"], 200)
        self.assertEqual([m["name"] for m in out["config"]["body"]["modelInfos"]], ["classic"])
        self.assertEqual(out["model"]["body"]["name"], "classic")
        self.assertEqual(out["geninfo"]["body"], {"prompt": "", "negative_prompt": ""})
        self.assertEqual((out["inpaint"]["status"], out["inpaint"]["type"], out["inpaint"]["seed"]),
                         (200, "image/png", "0"))
        self.assertEqual(out["too_big"]["status"], 413, out["too_big"])
        self.assertIn("exceeds", out["too_big"]["body"]["errors"])
        self.assertEqual(out["no_route"]["status"], 404, out["no_route"])


class Batch(unittest.TestCase):
    """`pixserve inpaint --image DIR --mask DIR --output DIR`, like `iopaint run`."""

    def test_folder_batch(self):
        with tempfile.TemporaryDirectory(prefix="pxiop-batch-") as d:
            imgs, masks, out = (os.path.join(d, x) for x in ("images", "masks", "out"))
            os.mkdir(imgs)
            os.mkdir(masks)
            arrs = {}
            for i in range(5):
                name = "p%d.%s" % (i, "jpg" if i % 2 else "png")
                arrs[name] = photo("astronaut.png", (40 + 8 * i, 32))
                with open(os.path.join(imgs, name), "wb") as f:
                    f.write(encode(arrs[name], "JPEG" if i % 2 else "PNG"))
                mname = name if i < 3 else name.rsplit(".", 1)[0] + ".png"  # same stem, .png
                with open(os.path.join(masks, mname), "wb") as f:
                    f.write(encode(box_mask(32, 40 + 8 * i, [(4, 4, 16, 16)])))
            with open(os.path.join(imgs, "broken.png"), "wb") as f:
                f.write(b"\x89PNG\r\n\x1a\n truncated")
            with open(os.path.join(imgs, "nomask.png"), "wb") as f:
                f.write(encode(photo("astronaut.png", (20, 20))))
            r = subprocess.run([BIN, "inpaint", "--image", imgs, "--mask", masks, "--output", out,
                                "--jobs", "2"], capture_output=True, text=True, timeout=120 * SLOW)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # two skipped
            self.assertIn("inpainted 5 of 7 images", r.stdout)
            self.assertIn("broken.png:", r.stdout)
            self.assertIn("nomask.png:", r.stdout)
            self.assertEqual(sorted(os.listdir(out)), sorted(arrs))
            for name, arr in arrs.items():
                with Image.open(os.path.join(out, name)) as got:
                    self.assertEqual(got.format, "JPEG" if name.endswith("jpg") else "PNG")
                    self.assertEqual(got.size, (arr.shape[1], arr.shape[0]))
            keep = box_mask(32, 40, [(4, 4, 16, 16)]) == 0
            with open(os.path.join(out, "p0.png"), "rb") as f:
                self.assertTrue(np.array_equal(decode(f.read())[keep], arrs["p0.png"][keep]))


if __name__ == "__main__":
    unittest.main()
