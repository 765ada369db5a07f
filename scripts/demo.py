"""The pixserve demo (run through `make demo`; see scripts/demo)."""
import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

PHOTO = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png"  # from python3-skimage
OUT = "demo-out"


def main():
    binary = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    img = Image.open(PHOTO).convert("RGB")
    w, h = img.size

    # The mask: the shuttle model on the right, the name tag on the suit, and
    # a thin scribble across the flag (thin strokes go to Telea under "auto").
    mask = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(mask)
    d.polygon([(380, 0), (445, 0), (470, 150), (472, 215), (462, 290), (365, 290), (352, 215)],
              fill=255)
    d.rectangle([276, 336, 332, 378], fill=255)
    d.line([(10, 120), (60, 160), (40, 230), (90, 300)], fill=255, width=5)
    mask_path = os.path.join(OUT, "astronaut-mask.png")
    mask.save(mask_path)
    img.save(os.path.join(OUT, "astronaut.png"))
    hole = np.asarray(mask) > 0
    print("demo: photo %s (%dx%d), mask %s covering %.1f%% of the image"
          % (PHOTO, w, h, mask_path, 100.0 * hole.mean()))

    log = open(os.path.join(OUT, "pixserve.log"), "wb")
    proc = subprocess.Popen([binary, "serve", "--port", "0", "--outputs", os.path.join(OUT, "outputs")],
                            stdout=subprocess.PIPE, stderr=log)
    try:
        line = proc.stdout.readline().decode().strip()
        m = re.search(r"http://([\d.]+):(\d+)", line)
        if not m:
            sys.exit("demo: pixserve did not start (see %s/pixserve.log)" % OUT)
        host, port = m.group(1), int(m.group(2))
        print("demo: started `%s serve --port 0` -> %s" % (binary, line))

        conn = http.client.HTTPConnection(host, port, timeout=300)
        # pixserve listens before its engines are loaded and warmed: wait for /readyz
        for _ in range(600):
            conn.request("GET", "/readyz")
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                break
            time.sleep(0.1)
        conn.request("GET", "/healthz")
        health = json.loads(conn.getresponse().read())
        print("demo: GET /healthz -> status=%s engines=%s workers=%d rss=%.1f MiB"
              % (health["status"], health["engines"], health["workers"]["count"],
                 health["rss_bytes"] / 2**20))

        with open(PHOTO, "rb") as f:
            image_b64 = base64.b64encode(f.read()).decode()
        with open(mask_path, "rb") as f:
            mask_b64 = base64.b64encode(f.read()).decode()
        body = json.dumps({"image": image_b64, "mask": mask_b64, "return": "base64", "seed": 1})
        t0 = time.time()
        conn.request("POST", "/api/v1/inpaint", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        wall = (time.time() - t0) * 1000
        if resp.status != 200:
            sys.exit("demo: POST /api/v1/inpaint -> %d %s" % (resp.status, data[:500].decode()))
        r = json.loads(data)
        out_bytes = base64.b64decode(r["image"])
        out_path = os.path.join(OUT, "astronaut-inpainted.png")
        with open(out_path, "wb") as f:
            f.write(out_bytes)
        out = np.asarray(Image.open(out_path).convert("RGB"))
        src = np.asarray(img)
        unchanged = np.array_equal(out[~hole], src[~hole])
        print("demo: POST /api/v1/inpaint (%.0f KiB JSON) -> %d, %s %dx%d, engine %s, %.0f ms round trip"
              % (len(body) / 1024, resp.status, r["format"], r["width"], r["height"], r["engine"], wall))
        t = r["timings"]
        print("demo: server timings: queue %.1f ms, decode %.1f ms, inpaint %.1f ms, encode %.1f ms"
              % (t["queue_ms"], t["decode_ms"], t["infer_ms"], t["encode_ms"]))
        print("demo: Server-Timing: %s" % resp.getheader("Server-Timing"))
        print("demo: pixels outside the mask unchanged: %s; mean change inside the hole: %.1f levels"
              % ("yes" if unchanged else "NO",
                 np.abs(out[hole].astype(int) - src[hole].astype(int)).mean()))
        side = Image.new("RGB", (w * 3, h))
        side.paste(img, (0, 0))
        overlay = img.copy()
        overlay.paste(Image.new("RGB", (w, h), (255, 0, 255)), (0, 0), mask)
        side.paste(Image.blend(img, overlay, 0.6), (w, 0))
        side.paste(Image.fromarray(out), (2 * w, 0))
        side_path = os.path.join(OUT, "astronaut-before-mask-after.png")
        side.save(side_path)
        print("demo: saved %s and %s (original | mask | result)" % (out_path, side_path))
        if not unchanged:
            sys.exit("demo: FAILED: pixels outside the mask changed")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        log.close()
        print("demo: pixserve stopped with SIGTERM, exit status %d" % rc)
    print("demo: next: `make test` runs the test suite; docs/api.md describes the API.")


if __name__ == "__main__":
    main()
