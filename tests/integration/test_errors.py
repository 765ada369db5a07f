"""Every refusal the service makes: the right status, a JSON error with a
specific code and message, and the service still healthy afterwards."""
import socket
import struct
import time
import unittest
import zlib

import numpy as np

from pxtest import ServerTest, b64, box_mask, encode, photo


def png_with_dims(w, h):
    """A PNG whose IHDR declares w x h (CRC correct) and holds one tiny IDAT:
    a decompression bomb as far as the header is concerned."""
    def chunk(t, data):
        return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")


class Errors(ServerTest):
    flags = ("--max-body", "2M", "--max-pixels", "1000x1000", "--max-side", "2000")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.img = photo("coffee.png", (120, 80))
        cls.png = encode(cls.img)
        cls.mask = encode(box_mask(80, 120, [(40, 20, 70, 50)]))

    def tearDown(self):
        self.assertHealthy()

    def post(self, obj, path="/api/v1/inpaint"):
        return self.srv.post_json(path, obj)

    def test_malformed_json(self):
        st, h, b = self.srv.request("POST", "/api/v1/inpaint", b"{\"image\": ",
                                    {"Content-Type": "application/json"})
        self.assertJsonError(st, h, b, 400, "invalid_input", "malformed JSON")

    def test_deeply_nested_json(self):
        st, h, b = self.srv.request("POST", "/api/v1/inpaint", b"[" * 100000,
                                    {"Content-Type": "application/json"})
        self.assertJsonError(st, h, b, 400, "invalid_input", "nested deeper")

    def test_invalid_base64(self):
        st, h, b = self.post({"image": "not*base64", "mask": b64(self.mask)})
        self.assertJsonError(st, h, b, 400, "invalid_input", "image")

    def test_missing_field(self):
        st, h, b = self.post({"image": b64(self.png)})
        self.assertJsonError(st, h, b, 400, "invalid_input", "missing field 'mask'")

    def test_wrong_mask_size(self):
        m = encode(np.zeros((10, 10), np.uint8))
        st, h, b = self.post({"image": b64(self.png), "mask": b64(m)})
        self.assertJsonError(st, h, b, 400, "invalid_input", "mask is 10x10 but the image is 120x80")

    def test_not_an_image(self):
        st, h, b = self.post({"image": b64(b"GIF89a not supported"), "mask": b64(self.mask)})
        self.assertJsonError(st, h, b, 415, "unsupported", "image")

    def test_truncated_png_and_jpeg(self):
        st, h, b = self.post({"image": b64(self.png[: len(self.png) // 2]), "mask": b64(self.mask)})
        self.assertJsonError(st, h, b, 400, "truncated_data", "image")
        jpg = encode(self.img, "JPEG")
        st, h, b = self.post({"image": b64(jpg[: len(jpg) // 2]), "mask": b64(self.mask)})
        self.assertJsonError(st, h, b, 400, "truncated_data", "image")

    def test_corrupt_png(self):
        bad = bytearray(self.png)
        for i in range(60, len(bad) - 20, 7):
            bad[i] ^= 0x5A
        st, h, b = self.post({"image": b64(bytes(bad)), "mask": b64(self.mask)})
        self.assertJsonError(st, h, b, 400, "corrupt_data", "image")

    def test_decompression_bomb(self):
        st, h, b = self.post({"image": b64(png_with_dims(60000, 60000)), "mask": b64(self.mask)})
        self.assertJsonError(st, h, b, 413, "too_large", "60000x60000")
        st, h, b = self.post({"image": b64(png_with_dims(1200, 1000)), "mask": b64(self.mask)})
        self.assertJsonError(st, h, b, 413, "too_large")

    def test_body_too_large_declared(self):
        # Content-Length above the cap is refused before the body is read.
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        s.sendall(b"POST /api/v1/inpaint HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 500000000\r\n\r\n")
        data = s.recv(65536)
        s.close()
        self.assertIn(b" 413 ", data.split(b"\r\n")[0])
        self.assertIn(b"too_large", data)

    def test_body_too_large_streamed(self):
        body = b"{\"image\":\"" + b"A" * (3 << 20) + b"\"}"
        try:
            st, h, b = self.srv.request("POST", "/api/v1/inpaint", body,
                                        {"Content-Type": "application/json"})
            self.assertJsonError(st, h, b, 413, "too_large")
        except (ConnectionResetError, BrokenPipeError):
            # The server may close before the client finishes sending 3 MB;
            # what matters is that it stays healthy (tearDown checks).
            pass

    def test_chunked_body_too_large(self):
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        s.sendall(b"POST /api/v1/inpaint HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"A" * 65536
        got = b""
        try:
            for _ in range(64):  # 4 MB > 2 MB cap
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (ConnectionResetError, BrokenPipeError):
            pass
        try:
            got = s.recv(65536)
        except ConnectionResetError:
            pass
        s.close()
        if got:
            self.assertIn(b" 413 ", got.split(b"\r\n")[0])

    def test_wrong_content_type(self):
        st, h, b = self.srv.request("POST", "/api/v1/inpaint", b"image=1", {
            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertJsonError(st, h, b, 415, "unsupported", "multipart/form-data")
        # POST /inpaint takes lama-cleaner's form: one without an image is a 400.
        st, h, b = self.srv.request("POST", "/inpaint", b"--x--", {
            "Content-Type": "multipart/form-data; boundary=x"})
        self.assertJsonError(st, h, b, 400, "invalid_input", "image")
        st, h, b = self.srv.request("POST", "/inpaint", b"<x/>", {"Content-Type": "text/xml"})
        self.assertJsonError(st, h, b, 415, "unsupported")

    def test_unknown_engine_and_method(self):
        st, h, b = self.post({"image": b64(self.png), "mask": b64(self.mask), "engine": "dalle"})
        self.assertJsonError(st, h, b, 400, "invalid_input", "loaded: classic")
        st, h, b = self.post({"image": b64(self.png), "mask": b64(self.mask), "method": "magic"})
        self.assertJsonError(st, h, b, 400, "invalid_input", "magic")

    def test_bad_options(self):
        for opt, val, part in (("output_format", "gif", "output_format"), ("quality", 0, "quality"),
                               ("return", "file", "return"), ("timeout_ms", -5, "timeout_ms")):
            st, h, b = self.post({"image": b64(self.png), "mask": b64(self.mask), opt: val})
            self.assertJsonError(st, h, b, 400, "invalid_input", part)

    def test_routes_and_methods(self):
        st, h, b = self.srv.request("GET", "/nope")
        self.assertJsonError(st, h, b, 404, "not_found")
        st, h, b = self.srv.request("GET", "/api/v1/inpaint")
        self.assertJsonError(st, h, b, 405, "invalid_input")
        self.assertEqual(h["allow"], "POST")
        st, h, b = self.srv.request("DELETE", "/healthz")
        self.assertJsonError(st, h, b, 405, "invalid_input")
        # The jobs API names other request kinds with ?kind=; unknown ones are refused.
        st, h, b = self.srv.request("POST", "/api/v1/jobs?kind=nope", b"{}",
                                    {"Content-Type": "application/json"})
        self.assertJsonError(st, h, b, 400, "invalid_input", "unknown request kind")
        st, h, b = self.srv.request("GET", "/api/v1/jobs")
        self.assertJsonError(st, h, b, 405, "invalid_input")
        self.assertEqual(h["allow"], "POST")

    def test_outputs_traversal_and_missing(self):
        for path in ("/outputs/../../etc/passwd", "/outputs/..%2f..%2fetc%2fpasswd",
                     "/outputs/.hidden", "/outputs/a/b.png", "/outputs/"):
            st, h, b = self.srv.request("GET", path)
            self.assertIn(st, (400, 404), path)
            self.assertNotIn(b"root:", b)
        st, h, b = self.srv.request("GET", "/outputs/1-0123456789abcdef.png")
        self.assertJsonError(st, h, b, 404, "not_found")

    def test_slow_headers_do_not_block_others(self):
        # A client that opens a connection and dribbles a partial request must
        # not hold up anyone else.
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        s.sendall(b"POST /api/v1/inpaint HTTP/1.1\r\nHost: x\r\n")
        t0 = time.time()
        self.assertHealthy()
        self.assertLess(time.time() - t0, 5)
        s.close()

    def test_client_disconnect_mid_upload(self):
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        s.sendall(b"POST /api/v1/inpaint HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n{\"image\":\"AAAA")
        s.close()
        time.sleep(0.1)

    def test_errors_are_counted(self):
        before = self.srv.metric('pixserve_errors_total{code="invalid_input"}')
        self.post({"image": b64(self.png)})
        after = self.srv.metric('pixserve_errors_total{code="invalid_input"}')
        self.assertEqual(after - before, 1)


if __name__ == "__main__":
    unittest.main()
