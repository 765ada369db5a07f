"""Admission from the deadline with the classic engine: once the engine's
service rate is measured, a burst far beyond the old fixed cap is admitted
when the deadlines allow it, and a request whose predicted wait misses its
deadline gets 429 with a Retry-After from the prediction."""
import json
import threading
import time

from pxtest import SLOW, ServerTest, b64, box_mask, decode, encode, parallel, photo

IMG = photo("astronaut.png", (384, 384))
REQ = {"image": b64(encode(IMG)), "mask": b64(encode(box_mask(384, 384, [(100, 100, 260, 260)]))),
       "method": "patchmatch"}


class DeadlineAdmission(ServerTest):
    flags = ("--workers", "1", "--max-batch", "1")

    def test_burst_admitted_short_deadline_refused(self):
        # Measure the rate: a few requests one after another.
        t0 = time.time()
        for _ in range(2):
            st, _, body = self.srv.post_json("/api/v1/inpaint", REQ, timeout=120)
            self.assertEqual(st, 200, body[:300])
        per = (time.time() - t0) / 2
        n = 10
        results = [None] * n

        def burst():
            results[:] = parallel(n, lambda i: self.srv.post_json("/api/v1/inpaint", REQ, timeout=300))

        th = threading.Thread(target=burst)
        th.start()
        # Let the burst be admitted and queue up, then ask with a deadline
        # shorter than the work ahead of it.
        deadline = time.time() + 10 * SLOW
        while time.time() < deadline:
            q = self.srv.get_json("/healthz")[1]["queue"]
            if q.get("pending", 0) >= n - 2:
                break
            time.sleep(0.01)
        short = max(50, int(per * 1000))  # one item's time; >= 2 are ahead
        st, h, body = self.srv.post_json("/api/v1/inpaint", dict(REQ, timeout_ms=short))
        th.join()
        self.assertEqual(st, 429, body[:300])
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], "busy")
        self.assertIn("deadline", err["message"])
        retry = int(h["retry-after"])
        # At most the whole burst's time (every item ahead), at least 1 s.
        self.assertGreaterEqual(retry, 1)
        self.assertLessEqual(retry, int((n + 2) * per * 3) + 2, (retry, per))
        # Every request of the burst was admitted (the old default cap was
        # 32 per priority; with --queue 1 it would have refused 9 of 10) and
        # served.
        for r in results:
            self.assertNotIsInstance(r, Exception, r)
            self.assertEqual(r[0], 200, r[2][:300])
            self.assertEqual(decode(r[2]).shape[:2], (384, 384))
        self.assertGreaterEqual(self.srv.metric('pixserve_jobs_total{outcome="rejected"}'), 1)
        self.assertHealthy()
