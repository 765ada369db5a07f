"""cdp — a small Chrome DevTools Protocol client for pixserve's browser tests.

Starts Debian's headless Chromium with --remote-debugging-pipe: the protocol
runs over two pipes (file descriptors 3 and 4 of the browser, messages are
JSON separated by NUL bytes), so there is no port to find, no websocket
library, nothing downloaded, and the browser dies with its pipes. Only the
Python standard library is used.

    with Browser() as b:
        page = b.new_page(1280, 800)
        page.goto("http://127.0.0.1:8080/")
        page.eval("document.title")
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

# Flags that keep a headless Chromium off the network and quiet on a closed
# CI machine (see the project's notes on this machine kind).
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--no-default-browser-check",
    "--disable-features=Translate,MediaRouter,OptimizationHints", "--password-store=basic",
    "--use-mock-keychain", "--disable-dev-shm-usage", "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


class CDPError(Exception):
    pass


class Browser:
    """A headless Chromium driven over the DevTools pipe."""

    def __init__(self, timeout=20.0):
        if not os.path.exists(CHROMIUM):
            raise CDPError("%s not found: run scripts/setup (Debian package chromium)" % CHROMIUM)
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="pxweb-profile-")
        self.log_path = os.path.join(self.profile, "chromium.log")
        # Our ends: we write commands to cmd_w, read replies from res_r.
        cmd_r, self.cmd_w = os.pipe()
        self.res_r, res_w = os.pipe()
        # Move the browser's ends out of the way of 3 and 4 before the child
        # dup2()s them there (os.pipe may have returned 3 or 4 itself).
        hi_r = os.dup2(cmd_r, 100 + cmd_r) if cmd_r < 100 else cmd_r
        hi_w = os.dup2(res_w, 100 + res_w) if res_w < 100 else res_w

        def child_fds():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.log = open(self.log_path, "wb")
        args = [CHROMIUM, *FLAGS, "--user-data-dir=" + self.profile, "--remote-debugging-pipe",
                "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=child_fds,
                                     close_fds=False, start_new_session=True)
        for fd in {cmd_r, res_w, hi_r, hi_w}:
            os.close(fd)
        self.next_id = 0
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.replies = {}
        self.events = []          # (sessionId, method, params), all of them, in order
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.send("Target.setDiscoverTargets", {"discover": True})

    # ---------------------------------------------------------------- wire

    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self.res_r, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                m = json.loads(msg)
                with self.cond:
                    if "id" in m:
                        self.replies[m["id"]] = m
                    else:
                        self.events.append((m.get("sessionId"), m.get("method"), m.get("params", {})))
                    self.cond.notify_all()

    def send(self, method, params=None, session=None, timeout=None):
        """Sends a command and waits for its reply; raises CDPError on a protocol error."""
        with self.lock:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        os.write(self.cmd_w, data)
        deadline = time.monotonic() + (timeout or self.timeout)
        with self.cond:
            while mid not in self.replies:
                if self.closed:
                    raise CDPError("the browser went away during %s\n%s" % (method, self.read_log()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CDPError("no reply to %s within %.0fs" % (method, timeout or self.timeout))
                self.cond.wait(left)
            r = self.replies.pop(mid)
        if "error" in r:
            raise CDPError("%s: %s" % (method, r["error"].get("message", r["error"])))
        return r.get("result", {})

    def wait_event(self, pred, timeout=None, since=0):
        """Waits for an event (session, method, params) with pred(...) true, from index since."""
        deadline = time.monotonic() + (timeout or self.timeout)
        i = since
        with self.cond:
            while True:
                while i < len(self.events):
                    if pred(*self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise CDPError("event not seen within %.0fs" % (timeout or self.timeout))
                self.cond.wait(left)

    def mark(self):
        with self.lock:
            return len(self.events)

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-3000:]
        except OSError:
            return ""

    # --------------------------------------------------------------- pages

    def new_page(self, width=1280, height=800, downloads=None):
        t = self.send("Target.createTarget", {"url": "about:blank"})
        s = self.send("Target.attachToTarget", {"targetId": t["targetId"], "flatten": True})
        page = Page(self, t["targetId"], s["sessionId"])
        page.setup(width, height, downloads)
        return page

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except CDPError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        # Its helpers (renderer, GPU, zygote) share the session we gave it.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        try:
            os.close(self.cmd_w)
        except OSError:
            pass
        self.reader.join(timeout=5)
        try:
            os.close(self.res_r)
        except OSError:
            pass
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Page:
    """One tab: navigation, script evaluation, input events, screenshots."""

    def __init__(self, browser, target, session):
        self.b = browser
        self.target = target
        self.session = session
        self.console = []      # console messages and exceptions, for failure reports

    def send(self, method, params=None, timeout=None):
        return self.b.send(method, params, self.session, timeout)

    def setup(self, width, height, downloads):
        for domain in ("Page", "Runtime"):
            self.send(domain + ".enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        if downloads:
            self.b.send("Browser.setDownloadBehavior",
                        {"behavior": "allow", "downloadPath": downloads, "eventsEnabled": True})

    def resize(self, width, height, mobile=False):
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def _events(self, method):
        return [p for s, m, p in self.b.events if s == self.session and m == method]

    def log(self):
        """Console output and uncaught exceptions seen so far, as text."""
        out = []
        for p in self._events("Runtime.consoleAPICalled"):
            out.append("console.%s: %s" % (p.get("type"), " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", []))))
        for p in self._events("Runtime.exceptionThrown"):
            d = p.get("exceptionDetails", {})
            out.append("exception: %s %s" % (d.get("text"), d.get("exception", {}).get("description", "")))
        return "\n".join(out)

    def goto(self, url, timeout=15):
        since = self.b.mark()
        r = self.send("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CDPError("navigate %s: %s" % (url, r["errorText"]))
        self.b.wait_event(lambda s, m, p: s == self.session and m == "Page.loadEventFired",
                          timeout, since)

    def eval(self, expr, timeout=None):
        """Evaluates an expression (promises awaited) and returns its JSON value."""
        r = self.send("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                           "returnByValue": True, "userGesture": True},
                      timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError("script failed: %s %s\n%s" % (
                d.get("text"), d.get("exception", {}).get("description", ""), self.log()))
        return r.get("result", {}).get("value")

    def wait_for(self, expr, timeout=15, interval=0.05):
        """Polls a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.eval(expr)
            if v:
                return v
            if time.monotonic() > deadline:
                raise CDPError("timed out waiting for %s\n%s" % (expr, self.log()))
            time.sleep(interval)

    def rect(self, selector, scroll=False):
        """Bounding box {x, y, width, height} of an element, in CSS px (scrolled
        into view first if asked)."""
        scroll_js = "e.scrollIntoView({block: 'nearest'});" if scroll else ""
        r = self.eval("(() => { const e = document.querySelector(%s); if (!e) return null; %s"
                      " const r = e.getBoundingClientRect();"
                      " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
                      % (json.dumps(selector), scroll_js))
        if not r:
            raise CDPError("no element %s" % selector)
        return r

    # ---------------------------------------------------------------- input

    def mouse(self, kind, x, y, button="left", buttons=1, modifiers=0):
        self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": button,
                                               "buttons": buttons, "clickCount": 1,
                                               "modifiers": modifiers})

    def click(self, selector):
        r = self.rect(selector, scroll=True)
        x, y = r["x"] + r["width"] / 2, r["y"] + r["height"] / 2
        self.mouse("mouseMoved", x, y, button="none", buttons=0)
        self.mouse("mousePressed", x, y)
        self.mouse("mouseReleased", x, y, buttons=0)

    def drag(self, points, button="left"):
        """Presses at the first point, moves through the others, releases at the last."""
        mask = {"left": 1, "right": 2, "middle": 4}[button]
        x, y = points[0]
        self.mouse("mouseMoved", x, y, button="none", buttons=0)
        self.mouse("mousePressed", x, y, button=button, buttons=mask)
        for x, y in points[1:]:
            self.mouse("mouseMoved", x, y, button=button, buttons=mask)
        self.mouse("mouseReleased", x, y, button=button, buttons=0)

    KEYS = {
        "Enter": (13, "Enter", "\r"), "Escape": (27, "Escape", ""), "Delete": (46, "Delete", ""),
        "[": (219, "BracketLeft", "["), "]": (221, "BracketRight", "]"), " ": (32, "Space", " "),
    }

    def key(self, key, ctrl=False, shift=False, up=True, down=True):
        """Presses a key: a letter, a digit or a name in KEYS."""
        if key in self.KEYS:
            vk, code, text = self.KEYS[key]
        elif len(key) == 1 and key.isalpha():
            vk, code, text = ord(key.upper()), "Key" + key.upper(), key
        elif len(key) == 1 and key.isdigit():
            vk, code, text = ord(key), "Digit" + key, key
        else:
            raise ValueError("key %r not mapped" % key)
        mods = (2 if ctrl else 0) | (8 if shift else 0)
        shown = key.upper() if shift and len(key) == 1 and key.isalpha() else key
        if ctrl:
            text = ""
        params = {"modifiers": mods, "windowsVirtualKeyCode": vk, "code": code, "key": shown}
        if down:
            self.send("Input.dispatchKeyEvent", dict(params, type="keyDown" if text else "rawKeyDown",
                                                     text=text, unmodifiedText=text))
        if up:
            self.send("Input.dispatchKeyEvent", dict(params, type="keyUp"))

    def set_files(self, selector, paths):
        doc = self.send("DOM.getDocument", {"depth": 0})
        node = self.send("DOM.querySelector", {"nodeId": doc["root"]["nodeId"], "selector": selector})
        self.send("DOM.setFileInputFiles", {"nodeId": node["nodeId"],
                                            "files": [os.path.abspath(p) for p in paths]})

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.b.send("Target.closeTarget", {"targetId": self.target})
        except CDPError:
            pass
