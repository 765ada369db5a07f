"""The inpainting API end to end: both dialects, every return mode and output
format, multipart uploads, alpha, outputs and the info routes."""
import json
import os
import unittest

import numpy as np

from pxtest import (ServerTest, b64, box_mask, decode, encode, photo)


class InpaintApi(ServerTest):
    flags = ("--workers", "2")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.img = photo("astronaut.png", (256, 192))
        cls.mask = box_mask(192, 256, [(100, 60, 140, 100), (20, 150, 60, 170)])
        cls.png = encode(cls.img)
        cls.mask_png = encode(cls.mask)

    def check_result(self, out, img=None, mask=None):
        img = self.img if img is None else img
        mask = self.mask if mask is None else mask
        self.assertEqual(out.shape[:2], img.shape[:2])
        keep = mask == 0
        # Outside the hole the result is the input, byte for byte (lossless PNG).
        self.assertTrue(np.array_equal(out[..., :3][keep], img[keep]))
        # Inside, something was filled in: not the input's black box of a
        # masked hole, and not left untouched as zeros.
        self.assertGreater(out[..., :3][~keep].std(), 1.0)

    def test_v1_json_returns_png_bytes(self):
        st, h, body = self.srv.post_json("/api/v1/inpaint", {"image": b64(self.png),
                                                             "mask": b64(self.mask_png)})
        self.assertEqual(st, 200, body[:300])
        self.assertEqual(h["content-type"], "image/png")
        self.assertIn("infer;dur=", h["server-timing"])
        self.assertIn("decode;dur=", h["server-timing"])
        self.check_result(decode(body))

    def test_v1_data_url_and_deterministic_seed(self):
        req = {"image": "data:image/png;base64," + b64(self.png), "mask": b64(self.mask_png),
               "seed": 7, "method": "patchmatch"}
        st1, _, a = self.srv.post_json("/api/v1/inpaint", req)
        st2, _, b = self.srv.post_json("/api/v1/inpaint", req)
        self.assertEqual((st1, st2), (200, 200))
        self.assertEqual(a, b)

    def test_v1_base64_and_formats(self):
        for fmt, mime, magic in (("jpeg", "image/jpeg", b"\xff\xd8"), ("webp", "image/webp", b"RIFF"),
                                 ("png", "image/png", b"\x89PNG")):
            st, h, body = self.srv.post_json("/api/v1/inpaint", {
                "image": b64(self.png), "mask": b64(self.mask_png), "output_format": fmt,
                "quality": 90, "return": "base64"})
            self.assertEqual(st, 200, body[:300])
            self.assertEqual(h["content-type"], "application/json")
            r = json.loads(body)
            self.assertEqual(r["format"], fmt)
            self.assertEqual((r["width"], r["height"]), (256, 192))
            data = __import__("base64").b64decode(r["image"])
            self.assertTrue(data.startswith(magic))
            self.assertEqual(decode(data).shape[:2], (192, 256))
            for k in ("queue_ms", "decode_ms", "infer_ms", "encode_ms"):
                self.assertGreaterEqual(r["timings"][k], 0)
            # raw bytes in the requested format too
            st, h, body = self.srv.post_json("/api/v1/inpaint", {
                "image": b64(self.png), "mask": b64(self.mask_png), "output_format": fmt})
            self.assertEqual(h["content-type"], mime)

    def test_v1_url_then_get_output(self):
        st, h, body = self.srv.post_json("/api/v1/inpaint", {
            "image": b64(self.png), "mask": b64(self.mask_png), "return": "url"})
        self.assertEqual(st, 200, body[:300])
        url = json.loads(body)["url"]
        self.assertRegex(url, r"^/outputs/[A-Za-z0-9_-]+\.png$")
        st, h, data = self.srv.request("GET", url)
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "image/png")
        self.check_result(decode(data))
        self.assertTrue(os.path.exists(os.path.join(self.srv.outputs, url.split("/")[-1])))

    def test_v1_multipart(self):
        boundary = "----pxtestBoundary7MA4YWxkTrZu0gW"
        parts = []
        for name, fname, data in (("image", "photo.png", self.png), ("mask", "mask.png", self.mask_png)):
            parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                          "Content-Type: image/png\r\n\r\n" % (boundary, name, fname)).encode() + data)
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"output_format\"\r\n\r\nwebp"
                      % boundary).encode())
        body = b"\r\n".join(parts) + ("\r\n--%s--\r\n" % boundary).encode()
        st, h, data = self.srv.request("POST", "/api/v1/inpaint", body, {
            "Content-Type": "multipart/form-data; boundary=" + boundary})
        self.assertEqual(st, 200, data[:300])
        self.assertEqual(h["content-type"], "image/webp")
        self.assertEqual(decode(data).shape[:2], (192, 256))

    def test_seed_dialect_image_url_and_base64(self):
        st, h, body = self.srv.post_json("/inpaint", {"image": b64(self.png), "mask": b64(self.mask_png),
                                                      "return_type": "image_url"})
        self.assertEqual(st, 200, body[:300])
        r = json.loads(body)
        self.assertEqual(r["status"], "ok")
        self.assertIn("infer_ms", r["timings"])
        st, _, data = self.srv.request("GET", r["image_url"])
        self.assertEqual(st, 200)
        self.check_result(decode(data))
        st, h, body = self.srv.post_json("/inpaint", {"image": b64(self.png), "mask": b64(self.mask_png),
                                                      "return_type": "base64"})
        r = json.loads(body)
        self.check_result(decode(__import__("base64").b64decode(r["image"])))

    def test_rgba_keeps_alpha_and_gray_mask_variants(self):
        rgba = np.dstack([self.img, np.full(self.img.shape[:2], 200, np.uint8)])
        rgba[:10, :10, 3] = 0
        # mask as RGBA strokes on a transparent layer
        m = np.zeros((192, 256, 4), np.uint8)
        m[self.mask > 0] = (255, 0, 0, 255)
        st, _, body = self.srv.post_json("/api/v1/inpaint", {"image": b64(encode(rgba)),
                                                             "mask": b64(encode(m))})
        self.assertEqual(st, 200, body[:300])
        out = decode(body)
        self.assertEqual(out.shape, (192, 256, 4))
        self.assertTrue(np.array_equal(out[..., 3], rgba[..., 3]))
        self.check_result(out, img=self.img)

    def test_jpeg_input(self):
        jpg = encode(self.img, "JPEG", quality=95)
        # JPEG in, JPEG out (as IOPaint answers) ...
        st, h, body = self.srv.post_json("/api/v1/inpaint", {"image": b64(jpg), "mask": b64(self.mask_png)})
        self.assertEqual((st, h["content-type"], body[:2]), (200, "image/jpeg", b"\xff\xd8"))
        # ... and exactly the decoded input outside the mask when asked for PNG.
        st, _, body = self.srv.post_json("/api/v1/inpaint", {"image": b64(jpg), "mask": b64(self.mask_png),
                                                             "output_format": "png"})
        self.assertEqual(st, 200, body[:300])
        out = decode(body)
        orig = decode(jpg)
        keep = self.mask == 0
        self.assertTrue(np.array_equal(out[keep], orig[keep]))

    def test_empty_and_full_masks(self):
        empty = encode(np.zeros((192, 256), np.uint8))
        st, _, body = self.srv.post_json("/api/v1/inpaint", {"image": b64(self.png), "mask": b64(empty)})
        self.assertEqual(st, 200)
        self.assertTrue(np.array_equal(decode(body), self.img))
        full = encode(np.full((192, 256), 255, np.uint8))
        st, _, body = self.srv.post_json("/api/v1/inpaint", {"image": b64(self.png), "mask": b64(full)})
        self.assertEqual(st, 200, body[:300])
        self.assertEqual(decode(body).shape, (192, 256, 3))

    def test_info_routes(self):
        st, h = self.srv.get_json("/healthz")
        self.assertEqual(st, 200)
        self.assertEqual(h["status"], "ok")
        self.assertIn("classic", h["engines"])
        self.assertIsNone(h["gpu"])
        for k in ("workers", "queue", "uptime_s", "rss_bytes"):
            self.assertIn(k, h)
        self.assertGreater(h["rss_bytes"], 1 << 20)
        st, r = self.srv.get_json("/readyz")
        self.assertEqual((st, r["ready"]), (200, True))
        st, e = self.srv.get_json("/api/v1/engines")
        self.assertEqual(st, 200)
        self.assertEqual(e["default"], "classic")
        names = [x["name"] for x in e["engines"]]
        self.assertIn("classic", names)
        st, h, body = self.srv.request("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/plain"))
        text = body.decode()
        for name in ("pixserve_requests_total", "pixserve_request_duration_seconds_bucket",
                     "pixserve_queue_depth", "pixserve_inflight", "pixserve_stage_duration_seconds"):
            self.assertIn(name, text)
        # The JSON index moved from / (now the web UI) to /api/v1.
        st, idx = self.srv.get_json("/api/v1")
        self.assertEqual(st, 200)
        self.assertEqual(idx["service"], "pixserve")
        self.assertIn("POST /api/v1/inpaint", idx["routes"])
        self.assertIn("GET /", idx["routes"])
        st, h, body = self.srv.request("HEAD", "/healthz")
        self.assertEqual((st, body), (200, b""))

    def test_metrics_count_requests(self):
        before = self.srv.metric('pixserve_requests_total{route="/healthz",status="200"}')
        for _ in range(3):
            self.srv.request("GET", "/healthz")
        after = self.srv.metric_when('pixserve_requests_total{route="/healthz",status="200"}',
                                     before + 3)
        self.assertEqual(after - before, 3)


if __name__ == "__main__":
    unittest.main()
