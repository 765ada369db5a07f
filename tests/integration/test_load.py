"""Overload and lifecycle: a burst beyond the queue gets 429 with Retry-After
and the service recovers; a deadline gives 504 and frees the worker; SIGTERM
finishes what is in flight and exits 0."""
import json
import signal
import socket
import time
import unittest

import numpy as np

from pxtest import SLOW, Server, ServerTest, b64, box_mask, decode, encode, parallel, photo

# A job that takes the classic engine a while: PatchMatch on a large hole.
BIG = photo("astronaut.png", (1024, 1024))
BIG_PNG = encode(BIG)
BIG_MASK = encode(box_mask(1024, 1024, [(200, 200, 700, 700)]))
SLOW_REQ = {"image": b64(BIG_PNG), "mask": b64(BIG_MASK), "method": "patchmatch"}

SMALL = photo("coffee.png", (96, 64))
SMALL_REQ = {"image": b64(encode(SMALL)), "mask": b64(encode(box_mask(64, 96, [(30, 20, 50, 40)])))}


class QueueOverflow(ServerTest):
    flags = ("--workers", "1", "--queue", "1")

    def test_burst_gets_429_then_recovers(self):
        n = 8

        def one(i):
            return self.srv.post_json("/api/v1/inpaint", SLOW_REQ, timeout=300)

        results = parallel(n, one)
        for r in results:
            self.assertNotIsInstance(r, Exception, r)
        statuses = [r[0] for r in results]
        self.assertGreaterEqual(statuses.count(200), 1, statuses)
        self.assertGreaterEqual(statuses.count(429), 1, statuses)
        self.assertEqual(statuses.count(200) + statuses.count(429), n, statuses)
        for st, h, body in results:
            if st == 429:
                self.assertGreaterEqual(int(h["retry-after"]), 1)
                self.assertEqual(json.loads(body)["error"]["code"], "busy")
            else:
                self.assertEqual(decode(body).shape[:2], (1024, 1024))
        # Recovery: the queue drained, a new request is served.
        st, _, body = self.srv.post_json("/api/v1/inpaint", SMALL_REQ)
        self.assertEqual(st, 200)
        self.assertGreaterEqual(self.srv.metric('pixserve_jobs_total{outcome="rejected"}'), 1)
        self.assertHealthy()


class Deadline(ServerTest):
    flags = ("--workers", "1", "--timeout", "60s")

    def test_timeout_answers_504_and_frees_the_worker(self):
        req = dict(SLOW_REQ, timeout_ms=200)
        t0 = time.time()
        st, h, body = self.srv.post_json("/api/v1/inpaint", req)
        waited = time.time() - t0
        self.assertEqual(st, 504, body[:300])
        self.assertEqual(json.loads(body)["error"]["code"], "timeout")
        # Answered at the deadline, not when the work would have finished.
        self.assertLess(waited, 5 * SLOW)
        # The abandoned work stops promptly: a small job right after is served
        # by the single worker long before the big one could have finished.
        t0 = time.time()
        st, _, _ = self.srv.post_json("/api/v1/inpaint", SMALL_REQ)
        self.assertEqual(st, 200)
        self.assertLess(time.time() - t0, 5 * SLOW)
        self.assertEqual(self.srv.metric('pixserve_jobs_total{outcome="timeout"}'), 1)

    def test_server_default_timeout(self):
        srv = Server("--workers", "1", "--timeout", "150ms")
        try:
            st, h, body = srv.post_json("/api/v1/inpaint", SLOW_REQ)
            self.assertEqual(st, 504)
            # The abandoned job leaves the worker within a bounded time...
            deadline = time.time() + 10 * SLOW
            while time.time() < deadline and srv.get_json("/healthz")[1]["workers"]["busy"]:
                time.sleep(0.02)
            self.assertEqual(srv.get_json("/healthz")[1]["workers"]["busy"], 0)
            # ...and a request that asks for more time than the default gets it.
            st, _, _ = srv.post_json("/api/v1/inpaint", dict(SMALL_REQ, timeout_ms=30000))
            self.assertEqual(st, 200)
        finally:
            self.assertEqual(srv.stop(), 0)
            srv.tmp.cleanup()


class GracefulShutdown(unittest.TestCase):
    def test_sigterm_finishes_in_flight_and_exits_0(self):
        srv = Server("--workers", "1")
        try:
            results = []

            def slow(i):
                if i == 1:
                    # once the request computes on the worker (a fixed sleep
                    # could signal before it even arrived)
                    deadline = time.time() + 60 * SLOW
                    while srv.get_json("/healthz")[1]["workers"]["busy"] == 0:
                        assert time.time() < deadline, "the request never reached the worker"
                        time.sleep(0.01)
                    srv.proc.send_signal(signal.SIGTERM)
                    # draining: new clients are refused at once (not left
                    # waiting in the backlog) while the request finishes
                    while "finishing requests in flight" not in srv.read_log():
                        assert time.time() < deadline, "no drain message"
                        time.sleep(0.01)
                    while True:  # the message comes just before the listener stops
                        try:
                            socket.create_connection((srv.host, srv.port), timeout=5).close()
                        except ConnectionRefusedError:
                            return time.time()
                        assert time.time() < deadline, "still accepting connections while draining"
                        time.sleep(0.005)
                reply = srv.post_json("/api/v1/inpaint", SLOW_REQ, timeout=300)
                return reply + (time.time(),)

            results = parallel(2, slow)
            st, _, body, t_reply = results[0]
            self.assertEqual(st, 200, body[:300])
            self.assertLess(results[1], t_reply, "new clients refused while the request runs")
            self.assertEqual(decode(body).shape[:2], (1024, 1024))
            self.assertEqual(srv.proc.wait(timeout=60 * SLOW), 0)
            log = srv.read_log()
            self.assertIn("finishing requests in flight", log)
            self.assertIn("stopped", log)
        finally:
            srv.stop()
            srv.tmp.cleanup()

    def test_sigint_idle_exits_0(self):
        srv = Server()
        try:
            srv.proc.send_signal(signal.SIGINT)
            self.assertEqual(srv.proc.wait(timeout=20 * SLOW), 0)
        finally:
            srv.stop()
            srv.tmp.cleanup()


class ClientGone(ServerTest):
    flags = ("--workers", "1")

    def test_disconnect_while_queued_or_running_keeps_service_up(self):
        import socket
        body = json.dumps(SLOW_REQ).encode()
        for _ in range(2):
            s = socket.create_connection((self.srv.host, self.srv.port), timeout=10)
            s.sendall(b"POST /api/v1/inpaint HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            time.sleep(0.1)
            s.close()
        st, _, _ = self.srv.post_json("/api/v1/inpaint", SMALL_REQ, timeout=300)
        self.assertEqual(st, 200)
        self.assertHealthy()


if __name__ == "__main__":
    unittest.main()
