// client.js — calls pixserve the way IOPaint's web client calls its server
// (docs/api.md, "IOPaint compatibility"): on load server-config, model,
// inputimage and a socket.io connection; on upload gen-info; Settings
// switches the model; the brush paints #ffcc00 at alpha 0xbb on a
// transparent mask canvas, sent with the image as data URLs; errors show the
// body's `errors` string in a toast; the file manager lists and thumbnails.
"use strict";
const base = new URLSearchParams(location.search).get("api");
const API = base + "/api/v1";
const state = { calls: [], socket: [], toasts: [], seed: null, errors: [] };
window.iop = state;
window.addEventListener("error", (e) => state.errors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => state.errors.push(String(e.reason)));

async function call(name, url, init) {
  const res = await fetch(url, init);
  state.calls.push({ name, status: res.status });
  if (!res.ok) {
    const body = await res.json();
    toast(body.errors);  // what IOPaint's toast shows
    throw new Error(body.errors);
  }
  return res;
}

function toast(msg) {
  state.toasts.push(msg);
  document.getElementById("toast").textContent = msg;
}

async function onLoad() {
  const cfg = await (await call("server-config", API + "/server-config")).json();
  state.config = cfg;
  document.getElementById("settings").hidden = false;
  const sel = document.getElementById("models");
  for (const m of cfg.modelInfos.filter((m) => m.model_type === "inpaint")) sel.add(new Option(m.name));
  state.model = await (await call("model", API + "/model")).json();
  sel.value = state.model.name;
  const input = await call("inputimage", API + "/inputimage", { headers: { "Cache-Control": "no-cache" } });
  const blob = await input.blob();
  if (blob.type.startsWith("image/")) {
    const disp = input.headers.get("content-disposition") || "";
    state.inputName = disp.split("filename=")[1].replace(/"/g, "");
    await setImage(blob);
  }
  if (cfg.enableFileManager) await fileManager();
  const socket = io(base, { transports: ["polling", "websocket"] });
  socket.on("connect", () => state.socket.push("connect"));
  socket.on("disconnect", (reason) => state.socket.push("disconnect:" + reason));
  socket.on("connect_error", (e) => state.socket.push("connect_error:" + e.message));
  socket.io.on("reconnect_attempt", () => state.socket.push("reconnect_attempt"));
  socket.on("diffusion_progress", (d) => state.socket.push("progress:" + d.step));
  state.loaded = true;
}

async function fileManager() {
  const list = await (await call("medias", API + "/medias?tab=input")).json();
  state.medias = list;
  const ul = document.getElementById("files");
  for (const m of list) {
    const img = new Image();
    img.src = `${API}/media_thumbnail_file?tab=input&filename=${encodeURIComponent(m.name)}&width=32&height=32`;
    const li = document.createElement("li");
    li.append(img, m.name);
    ul.append(li);
  }
}

async function setImage(blob) {
  const bmp = await createImageBitmap(blob);
  for (const id of ["image", "mask"]) {
    const c = document.getElementById(id);
    c.width = bmp.width;
    c.height = bmp.height;
  }
  document.getElementById("image").getContext("2d").drawImage(bmp, 0, 0);
  state.imageType = blob.type;
  state.image = blob;
}

// Upload: IOPaint asks the server for the prompt stored in the file.
async function upload(file) {
  const form = new FormData();
  form.append("file", file);
  state.genInfo = await (await call("gen-info", API + "/gen-info", { method: "POST", body: form })).json();
  await setImage(file);
}

function brush(x0, y0, x1, y1) {
  const m = document.getElementById("mask").getContext("2d");
  m.fillStyle = "#ffcc00bb";
  m.fillRect(x0, y0, x1 - x0, y1 - y0);
}

function dataUrl(blob) {
  return new Promise((ok) => { const r = new FileReader(); r.onload = () => ok(r.result); r.readAsDataURL(blob); });
}

async function inpaint(maskUrl) {
  const body = {
    image: await dataUrl(state.image),
    mask: maskUrl || document.getElementById("mask").toDataURL(),
    ldm_steps: 20, ldm_sampler: "plms", zits_wireframe: true, hd_strategy: "Crop",
    hd_strategy_crop_margin: 196, hd_strategy_crop_trigger_size: 800, hd_strategy_resize_limit: 2048,
    prompt: state.genInfo ? state.genInfo.prompt : "", negative_prompt: "", use_croper: false,
    sd_seed: 42, sd_steps: 50, sd_sampler: "uni_pc", cv2_radius: 5, cv2_flag: "INPAINT_NS",
    paint_by_example_example_image: null, enable_controlnet: false, enable_brushnet: false,
  };
  try {
    const res = await call("inpaint", API + "/inpaint", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    state.seed = res.headers.get("X-Seed");
    const blob = await res.blob();
    state.resultType = blob.type;
    const bmp = await createImageBitmap(blob);
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const g = c.getContext("2d");
    g.drawImage(bmp, 0, 0);
    state.result = Array.from(g.getImageData(0, 0, bmp.width, bmp.height).data);
    const o = document.getElementById("image").getContext("2d").getImageData(0, 0, bmp.width, bmp.height);
    state.original = Array.from(o.data);
    document.getElementById("result").src = URL.createObjectURL(blob);
    return true;
  } catch (e) {
    return false;
  }
}

async function switchModel(name) {
  const res = await call("switch", API + "/model", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name }) });
  state.model = await res.json();
}

async function saveResult(name) {
  const blob = await (await fetch(document.getElementById("result").src)).blob();
  const form = new FormData();
  form.append("file", new File([blob], name, { type: blob.type }));
  await call("save_image", API + "/save_image", { method: "POST", body: form });
}

async function adjustMask(operate, kernel_size) {
  const res = await call("adjust_mask", API + "/adjust_mask", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ mask: document.getElementById("mask").toDataURL(), operate, kernel_size }) });
  const bmp = await createImageBitmap(await res.blob());
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const g = c.getContext("2d");
  g.drawImage(bmp, 0, 0);
  const d = g.getImageData(0, 0, bmp.width, bmp.height).data;
  let holes = 0;
  for (let i = 3; i < d.length; i += 4) holes += d[i] > 0;
  return holes;
}

Object.assign(state, { upload, brush, inpaint, switchModel, saveResult, adjustMask });
onLoad().catch((e) => { state.loadError = String(e); });
