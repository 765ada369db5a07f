"""The serving core end to end: the async jobs API, cancellation when the
client goes away, overload at ten times capacity, priorities, the large-image
strategies, per-client caps and the config file."""
import base64
import json
import os
import socket
import tempfile
import time
import unittest

import numpy as np

from pxtest import SLOW, Server, ServerTest, b64, box_mask, decode, encode, parallel, photo

BIG = photo("astronaut.png", (1024, 1024))
SLOW_REQ = {"image": b64(encode(BIG)), "mask": b64(encode(box_mask(1024, 1024, [(200, 200, 700, 700)]))),
            "method": "patchmatch", "hd_strategy": "Original"}
SMALL = photo("coffee.png", (96, 64))
SMALL_MASK = box_mask(64, 96, [(30, 20, 50, 40)])
SMALL_REQ = {"image": b64(encode(SMALL)), "mask": b64(encode(SMALL_MASK))}


def poll(srv, job_id, until=("done", "failed", "cancelled", "expired"), timeout=60):
    """Polls a job until its status (or, for "infer", its stage) is in until."""
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        st, j = srv.get_json("/api/v1/jobs/" + job_id)
        if st != 200:
            return st, j
        if j["status"] in until or j.get("stage") in until:
            return st, j
        time.sleep(0.01)
    raise AssertionError("job %s did not reach %s" % (job_id, until))


class AsyncJobs(ServerTest):
    flags = ("--workers", "1", "--job-ttl", "1500ms")

    def test_lifecycle(self):
        st, h, body = self.srv.post_json("/api/v1/jobs", dict(SMALL_REQ, output_format="webp"))
        self.assertEqual(st, 202, body[:300])
        j = json.loads(body)
        self.assertRegex(j["id"], r"^j-[0-9a-f]{16}$")
        self.assertEqual(j["status_url"], "/api/v1/jobs/" + j["id"])
        self.assertEqual(h["location"], j["status_url"])
        self.assertIn(j["status"], ("queued", "running", "done"))
        st, j2 = poll(self.srv, j["id"])
        self.assertEqual(j2["status"], "done", j2)
        self.assertEqual(j2["result"]["url"], "/api/v1/jobs/%s/result" % j["id"])
        self.assertEqual((j2["result"]["width"], j2["result"]["height"]), (96, 64))
        self.assertIn("infer_ms", j2["timings"])
        self.assertIsNotNone(j2["finished_ms"])
        st, h, data = self.srv.request("GET", j2["result"]["url"])
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "image/webp")
        self.assertEqual(decode(data).shape[:2], (64, 96))
        # finished: DELETE is a conflict; the result stays until the TTL
        st, h, body = self.srv.request("DELETE", "/api/v1/jobs/" + j["id"])
        self.assertJsonError(st, h, body, 409, "invalid_input")
        # gone once the TTL (1.5 s) has passed since it finished, not before
        # (waited for: the clock starts when the job's end reaches the job
        # table, which a loaded machine may run late)
        deadline = time.time() + 1.5 + 10 * SLOW
        while True:
            st, h, body = self.srv.request("GET", "/api/v1/jobs/" + j["id"])
            if st != 200 or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertJsonError(st, h, body, 404, "not_found")
        self.assertGreaterEqual(time.time() * 1000 - j2["finished_ms"], 1500 - 50)

    def test_queue_position_and_cancel(self):
        st, _, body = self.srv.post_json("/api/v1/jobs", SLOW_REQ)
        blocker = json.loads(body)["id"]
        poll(self.srv, blocker, until=("infer",))
        ids = []
        for _ in range(3):
            st, _, body = self.srv.post_json("/api/v1/jobs", SMALL_REQ)
            self.assertEqual(st, 202)
            ids.append(json.loads(body)["id"])
        deadline = time.time() + 10 * SLOW
        while True:  # the CPU pool hands them to the device queue in order
            js = [self.srv.get_json("/api/v1/jobs/" + i)[1] for i in ids]
            if all(j["position"] is not None for j in js) or time.time() > deadline:
                break
            time.sleep(0.01)
        self.assertEqual([j["position"] for j in js], [1, 2, 3])
        self.assertEqual({j["status"] for j in js}, {"queued"})
        st, h, body = self.srv.request("DELETE", "/api/v1/jobs/" + ids[1])
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["status"], "cancelled")
        self.assertEqual(self.srv.get_json("/api/v1/jobs/" + ids[2])[1]["position"], 2)
        st, h, body = self.srv.request("GET", "/api/v1/jobs/%s/result" % ids[1])
        self.assertJsonError(st, h, body, 409, "invalid_input")
        # a running job can be cancelled too, and frees the worker
        st, h, body = self.srv.request("DELETE", "/api/v1/jobs/" + blocker)
        self.assertEqual(st, 200)
        for i in (ids[0], ids[2]):
            self.assertEqual(poll(self.srv, i)[1]["status"], "done")
        self.assertEqual(self.srv.get_json("/api/v1/jobs/" + blocker)[1]["status"], "cancelled")

    def test_failures_and_unknown_ids(self):
        st, _, body = self.srv.post_json("/api/v1/jobs", {"image": b64(b"nope"), "mask": b64(b"x")})
        self.assertEqual(st, 202)  # accepted: the body is parsed on the CPU pool
        st, j = poll(self.srv, json.loads(body)["id"])
        self.assertEqual(j["status"], "failed")
        self.assertEqual(j["error"]["code"], "unsupported")
        st, h, body = self.srv.request("GET", "/api/v1/jobs/j-0000000000000000")
        self.assertJsonError(st, h, body, 404, "not_found")
        st, h, body = self.srv.request("PUT", "/api/v1/jobs/j-0000000000000000", b"")
        self.assertJsonError(st, h, body, 405, "invalid_input")
        st, h, body = self.srv.request("GET", "/api/v1/jobs")
        self.assertJsonError(st, h, body, 405, "invalid_input")

    def test_deadline_expires_job(self):
        st, _, body = self.srv.post_json("/api/v1/jobs", dict(SLOW_REQ, timeout_ms=100))
        st, j = poll(self.srv, json.loads(body)["id"])
        self.assertEqual(j["status"], "expired")
        self.assertEqual(j["error"]["code"], "timeout")


class Priorities(ServerTest):
    flags = ("--workers", "1")

    def test_high_before_low(self):
        st, _, body = self.srv.post_json("/api/v1/jobs", SLOW_REQ)
        blocker = json.loads(body)["id"]
        poll(self.srv, blocker, until=("infer",))
        lows, highs = [], []
        for _ in range(3):
            lows.append(json.loads(self.srv.post_json("/api/v1/jobs", dict(SMALL_REQ, priority="low"))[2])["id"])
        for _ in range(3):
            highs.append(json.loads(self.srv.post_json("/api/v1/jobs", dict(SMALL_REQ, priority="high"))[2])["id"])
        done = {i: poll(self.srv, i)[1] for i in lows + highs}
        self.assertTrue(all(d["status"] == "done" for d in done.values()))
        last_high = max(done[i]["started_ms"] for i in highs)
        first_low = min(done[i]["started_ms"] for i in lows)
        self.assertLessEqual(last_high, first_low)
        st, h, body = self.srv.post_json("/api/v1/jobs", dict(SMALL_REQ, priority="urgent"))
        st, j = poll(self.srv, json.loads(body)["id"])
        self.assertEqual(j["error"]["code"], "invalid_input")


class Disconnect(ServerTest):
    flags = ("--workers", "1")

    def test_client_gone_cancels_running_job(self):
        body = json.dumps(SLOW_REQ).encode()
        s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
        s.sendall(b"POST /api/v1/inpaint HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        deadline = time.time() + 10 * SLOW
        while self.srv.get_json("/healthz")[1]["workers"]["busy"] == 0 and time.time() < deadline:
            time.sleep(0.005)
        s.close()
        deadline = time.time() + 10 * SLOW
        while self.srv.metric('pixserve_jobs_total{outcome="cancelled"}') < 1 and time.time() < deadline:
            time.sleep(0.01)
        self.assertEqual(self.srv.metric('pixserve_jobs_total{outcome="cancelled"}'), 1)
        # the worker is free again long before the big job would have finished
        while self.srv.get_json("/healthz")[1]["workers"]["busy"] and time.time() < deadline:
            time.sleep(0.005)
        self.assertEqual(self.srv.get_json("/healthz")[1]["workers"]["busy"], 0)
        self.assertEqual(self.srv.metric('pixserve_requests_total{route="/api/v1/inpaint",status="499"}'), 1)


class Overload(ServerTest):
    flags = ("--workers", "1", "--queue", "3", "--cpu-queue", "4", "--timeout", "30s")

    def test_ten_times_capacity(self):
        # capacity: 3 admitted per priority; 40 concurrent clients
        req = dict(SMALL_REQ, method="patchmatch")
        img = photo("chelsea.png", (320, 240))
        req = {"image": b64(encode(img)), "mask": b64(encode(box_mask(240, 320, [(100, 80, 200, 160)]))),
               "method": "patchmatch", "timeout_ms": 20000}

        def one(i):
            t0 = time.time()
            st, h, body = self.srv.post_json("/api/v1/inpaint", req, timeout=120)
            return st, h, time.time() - t0

        results = parallel(40, one)
        for r in results:
            self.assertNotIsInstance(r, Exception, r)
        statuses = [r[0] for r in results]
        self.assertEqual(set(statuses) - {200, 429}, set(), statuses)
        self.assertGreaterEqual(statuses.count(200), 3)
        self.assertGreaterEqual(statuses.count(429), 1)
        for st, h, took in results:
            if st == 200:
                self.assertLess(took, 20 * SLOW + 5)  # within its deadline
            else:
                self.assertGreaterEqual(int(h["retry-after"]), 1)
        self.assertEqual(self.srv.metric('pixserve_requests_total{route="/api/v1/inpaint",status="500"}'), 0)
        self.assertHealthy()


class LargeImages(ServerTest):
    flags = ()

    def test_strategies(self):
        img = photo("astronaut.png", (1200, 900))
        mask = box_mask(900, 1200, [(100, 100, 140, 140), (900, 600, 950, 660)])
        base = {"image": b64(encode(img)), "mask": b64(encode(mask)), "return": "base64", "method": "telea"}
        outs = {}
        for strategy, windows in (("Crop", 2), ("Resize", 1), ("Original", 1)):
            req = dict(base, hd_strategy=strategy, hd_strategy_resize_limit=600)
            st, _, body = self.srv.post_json("/api/v1/inpaint", req)
            self.assertEqual(st, 200, body[:300])
            r = json.loads(body)
            self.assertEqual(r["hd_strategy"], strategy)
            self.assertEqual(r["windows"], windows)
            out = decode(base64.b64decode(r["image"]))
            self.assertEqual(out.shape, (900, 1200, 3))
            keep = mask == 0
            self.assertTrue(np.array_equal(out[keep], img[keep]))
            outs[strategy] = out
        # Telea is local: a crop window with margin gives the same pixels as
        # the whole image, while a resized copy does not.
        hole = mask > 0
        self.assertTrue(np.array_equal(outs["Crop"][hole], outs["Original"][hole]))
        self.assertFalse(np.array_equal(outs["Resize"][hole], outs["Original"][hole]))
        # two strokes close together: their windows overlap, so Crop runs one
        # window for both (--hd-crop-merge, on by default), and Telea still
        # gives the whole image's pixels in the holes
        mask2 = box_mask(900, 1200, [(300, 300, 500, 320), (300, 360, 500, 380)])
        req = dict(base, mask=b64(encode(mask2)), hd_strategy="Crop")
        merged = {}
        for strategy in ("Crop", "Original"):
            st, _, body = self.srv.post_json("/api/v1/inpaint", dict(req, hd_strategy=strategy))
            self.assertEqual(st, 200, body[:300])
            r = json.loads(body)
            self.assertEqual(r["windows"], 1)
            merged[strategy] = decode(base64.b64decode(r["image"]))
        self.assertTrue(np.array_equal(merged["Crop"][mask2 > 0], merged["Original"][mask2 > 0]))
        # small images are never cropped
        st, _, body = self.srv.post_json("/api/v1/inpaint", dict(SMALL_REQ, return_="x", **{"return": "base64"}))
        self.assertEqual(json.loads(body)["hd_strategy"], "Original")
        st, h, body = self.srv.post_json("/api/v1/inpaint", dict(base, hd_strategy="Zoom"))
        self.assertJsonError(st, h, body, 400, "invalid_input", "hd_strategy")


class PerClientCap(ServerTest):
    flags = ("--workers", "1", "--max-per-client", "1")

    def test_cap_per_api_key(self):
        body = json.dumps(SLOW_REQ).encode()

        def one(i):
            key = "alice" if i < 2 else "bob"
            return self.srv.request("POST", "/api/v1/inpaint", body,
                                    {"Content-Type": "application/json", "X-API-Key": key}, timeout=120)

        results = parallel(3, one)
        alice = sorted(r[0] for r in results[:2])
        self.assertEqual(alice, [200, 429], alice)
        self.assertEqual(results[2][0], 200)
        err = json.loads(results[0][2] if results[0][0] == 429 else results[1][2])["error"]
        self.assertIn("in flight", err["message"])


class ConfigFile(unittest.TestCase):
    def test_config_file_and_override(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "pixserve.conf")
            with open(path, "w") as f:
                f.write("# test config\nqueue = 7\nmax-batch 4\nhd-strategy = Resize\n"
                        "timeout = 5s   # comment\n")
            srv = Server("--config", path, "--queue", "9")
            try:
                st, h = srv.get_json("/healthz")
                self.assertEqual(h["queue"]["capacity"], 9)  # the later flag wins
            finally:
                self.assertEqual(srv.stop(), 0)
                srv.tmp.cleanup()
            with open(path, "w") as f:
                f.write("queue = many\n")
            import subprocess
            from pxtest import BIN
            r = subprocess.run([BIN, "serve", "--config", path, "--port", "0"], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, 2)
            self.assertIn("pixserve.conf:1", r.stderr)


if __name__ == "__main__":
    unittest.main()
