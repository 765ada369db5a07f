// iopaint_fetch.mjs — Node's fetch (undici) as an IOPaint-style client of a
// running pixserve: node iopaint_fetch.mjs BASE IMAGE.png MASK.png BIG_BYTES
// Prints one JSON object with what each call returned; test_iopaint.py
// asserts on it. Node's fetch is one of the clients that saw a broken pipe
// instead of a 413 before pixserve lingered.
import { readFileSync } from "node:fs";

const [base, imagePath, maskPath, bigBytes] = process.argv.slice(2);
const api = base + "/api/v1";
const out = {};

async function call(name, url, init) {
  try {
    const r = await fetch(url, init);
    const type = r.headers.get("content-type") || "";
    const body = type.startsWith("application/json") ? await r.json() : (await r.arrayBuffer()).byteLength;
    out[name] = { status: r.status, type, body, seed: r.headers.get("x-seed") };
  } catch (e) {
    out[name] = { error: String(e.cause ? e.cause.code || e.cause : e) };
  }
}

const png = readFileSync(imagePath);
const dataUrl = "data:image/png;base64," + png.toString("base64");
const maskUrl = "data:image/png;base64," + readFileSync(maskPath).toString("base64");
await call("config", api + "/server-config");
await call("model", api + "/model");
const form = new FormData();
form.append("file", new Blob([png], { type: "image/png" }), "photo.png");
await call("geninfo", api + "/gen-info", { method: "POST", body: form });
await call("inpaint", api + "/inpaint", {
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ image: dataUrl, mask: maskUrl, prompt: "", sd_seed: 42, hd_strategy: "Crop" }),
});
const big = new Uint8Array(Number(bigBytes));
await call("too_big", api + "/inpaint", { method: "POST", headers: { "Content-Type": "application/json" }, body: big });
await call("no_route", base + "/no/such/route", { method: "POST", body: big });
console.log(JSON.stringify(out));
