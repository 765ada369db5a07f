"""The command line: help texts, one-shot inpainting, engine listing, bad flags."""
import json
import os
import subprocess
import tempfile
import unittest

import numpy as np

from pxtest import BIN, box_mask, decode, encode, photo


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=300)


class Cli(unittest.TestCase):
    def test_help(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("pixserve serve", r.stdout)
        self.assertIn("pixserve inpaint", r.stdout)
        r = run("serve", "--help")
        self.assertEqual(r.returncode, 0)
        for flag in ("--host", "--port", "--workers", "--queue", "--max-body", "--max-pixels",
                     "--outputs", "--timeout"):
            self.assertIn(flag, r.stdout)
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"pixserve \d+\.\d+\.\d+")

    def test_bad_usage(self):
        self.assertEqual(run().returncode, 2)
        r = run("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown command", r.stderr)
        r = run("serve", "--port", "99999")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--port", r.stderr)
        r = run("serve", "--engine", "nosuch", "--port", "0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nosuch", r.stderr)
        # Per-engine settings: checked before anything starts.
        r = run("serve", "--engine", "classic:device=cuda", "--port", "0")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot choose a device", r.stderr)
        r = run("serve", "--engine", "lama:colour=blue", "--port", "0")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown key 'colour'", r.stderr)

    def test_inpaint_files(self):
        with tempfile.TemporaryDirectory() as d:
            img = photo("chelsea.png")
            h, w = img.shape[:2]
            mask = box_mask(h, w, [(150, 100, 200, 150)])
            ip, mp = os.path.join(d, "in.png"), os.path.join(d, "mask.png")
            with open(ip, "wb") as f:
                f.write(encode(img))
            with open(mp, "wb") as f:
                f.write(encode(mask))
            for ext in ("png", "jpg", "webp"):
                op = os.path.join(d, "out." + ext)
                r = run("inpaint", ip, mp, "-o", op, "--seed", "3")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("inpaint", r.stdout)
                with open(op, "rb") as f:
                    out = decode(f.read())
                self.assertEqual(out.shape[:2], (h, w))
            with open(os.path.join(d, "out.png"), "rb") as f:
                out = decode(f.read())
            keep = mask == 0
            self.assertTrue(np.array_equal(out[keep], img[keep]))
            r = run("inpaint", ip, mp, "-o", os.path.join(d, "out.gif"))
            self.assertEqual(r.returncode, 2)
            r = run("inpaint", ip, os.path.join(d, "missing.png"), "-o", os.path.join(d, "o.png"))
            self.assertEqual(r.returncode, 1)
            self.assertIn("missing.png", r.stderr)
            small = encode(np.zeros((5, 5), np.uint8))
            with open(mp, "wb") as f:
                f.write(small)
            r = run("inpaint", ip, mp, "-o", os.path.join(d, "o.png"))
            self.assertEqual(r.returncode, 1)
            self.assertIn("mask is 5x5", r.stderr)

    def test_engines_lists_classic(self):
        r = run("engines")
        self.assertEqual(r.returncode, 0)
        names = [e["name"] for e in json.loads(r.stdout)]
        self.assertIn("classic", names)


if __name__ == "__main__":
    unittest.main()
