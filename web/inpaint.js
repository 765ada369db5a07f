// inpaint.js — the inpaint page: wires the editor (editor.js) to the
// controls, the keyboard, file open/drop/paste, the API (api.js) with its
// progress and errors, the before/after comparison and downloads.

import { Editor } from './editor.js';
import * as api from './api.js';

const $ = (id) => document.getElementById(id);
const SERVER_FORMATS = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

const ui = {
  view: $('view'), stage: $('stage'), dropHint: $('drop-hint'), file: $('file'),
  brushSize: $('brush-size'), brushSizeValue: $('brush-size-value'),
  undo: $('undo'), redo: $('redo'), clear: $('clear'),
  zoomIn: $('zoom-in'), zoomOut: $('zoom-out'), zoomFit: $('zoom-fit'), zoomValue: $('zoom-value'),
  showMask: $('show-mask'),
  engine: $('engine'), method: $('method'), hd: $('hd-strategy'),
  inpaint: $('inpaint'), cancel: $('cancel'),
  progressText: $('progress-text'), progressBar: $('progress-bar'),
  error: $('error'), errorText: $('error-text'), errorClose: $('error-close'),
  resultSection: $('result-section'), compareHold: $('compare-hold'), split: $('split'), timings: $('timings'),
  downloadSection: $('download-section'), dlFormat: $('dl-format'), dlQuality: $('dl-quality'), download: $('download'),
  apiMode: $('api-mode'),
  stImage: $('st-image'), stZoom: $('st-zoom'), stMask: $('st-mask'), stHistory: $('st-history'),
};

let engines = [];          // from GET /api/v1/engines
let running = null;        // {controller} while a request is out
let lastRequest = null;    // what the last Inpaint sent (for tests and debugging)
let lastResult = null;     // {timings, via, ms}

const editor = new Editor(ui.view, { onChange: refresh });

// ------------------------------------------------------------ messages

function showError(msg) {
  ui.errorText.textContent = msg;
  ui.error.hidden = false;
}
function hideError() { ui.error.hidden = true; ui.errorText.textContent = ''; }
function setProgress(text, step = null) {
  ui.progressText.textContent = text;
  ui.progressBar.hidden = step == null;
  if (step != null) ui.progressBar.value = step;
}

// Last resort: nothing fails silently, not even a bug in this page.
window.addEventListener('unhandledrejection', (e) => showError(`Unexpected error: ${e.reason?.message || e.reason}`));
window.addEventListener('error', (e) => { if (e.message) showError(`Unexpected error: ${e.message}`); });

// --------------------------------------------------------------- state

function refresh(what) {
  const has = editor.hasImage;
  const mask = has ? editor.maskPixels() : 0;
  ui.undo.disabled = !editor.canUndo || !!running;
  ui.redo.disabled = !editor.canRedo || !!running;
  ui.clear.disabled = !has || mask === 0;
  ui.inpaint.disabled = !has || !!running || !engines.length;
  ui.dropHint.hidden = has;
  ui.stage.classList.toggle('has-image', has);
  for (const b of document.querySelectorAll('[data-tool]')) b.setAttribute('aria-pressed', String(b.dataset.tool === editor.tool));
  ui.view.dataset.tool = editor.tool;
  ui.brushSize.value = String(editor.brushSize);
  ui.brushSizeValue.textContent = String(editor.brushSize);
  ui.zoomValue.textContent = `${Math.round(editor.zoom * 100)}%`;
  ui.resultSection.hidden = !editor.hasResult && !lastResult;
  ui.downloadSection.hidden = !has;
  ui.compareHold.disabled = ui.split.disabled = !editor.hasResult;
  if (!editor.hasResult && editor.split) { editor.split = null; ui.split.value = '0'; }
  if (has) {
    const op = editor.ops[0];
    ui.stImage.textContent = `${op.name || 'image'} — ${editor.width}×${editor.height}`;
    ui.stZoom.textContent = `zoom ${Math.round(editor.zoom * 100)}%`;
    ui.stMask.textContent = `mask ${mask.toLocaleString('en')} px`;
    ui.stHistory.textContent = `step ${editor.pos}/${editor.ops.length}`;
  }
  if (what === 'undo' || what === 'redo' || what === 'load') renderTimings();
}

// ---------------------------------------------------------- open image

function sniff(bytes) {
  const b = new Uint8Array(bytes);
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'png';
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 &&
      b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'webp';
  return null;
}

async function openImage(blob, name = 'image') {
  if (running) { showError('Wait for the running job to finish (or cancel it) before opening another image.'); return; }
  hideError();
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    showError(`"${name}" is not an image this browser can open.`);
    return;
  }
  // The server reads PNG, JPEG and WebP: anything else (GIF, BMP, AVIF) is
  // sent as PNG made from what the browser decoded.
  const fmt = sniff(await blob.slice(0, 12).arrayBuffer());
  if (!fmt) {
    const c = document.createElement('canvas');
    c.width = bitmap.width; c.height = bitmap.height;
    c.getContext('2d').drawImage(bitmap, 0, 0);
    blob = await new Promise((res) => c.toBlob(res, 'image/png'));
  }
  lastResult = null;
  ui.timings.replaceChildren();
  editor.load(bitmap, blob, name.replace(/\.[^.]*$/, '') || 'image');
  setProgress('');
  ui.view.focus({ preventScroll: true });
}

ui.file.addEventListener('change', () => {
  const f = ui.file.files[0];
  if (f) openImage(f, f.name);
  ui.file.value = '';
});

for (const t of ['dragenter', 'dragover']) {
  window.addEventListener(t, (e) => {
    if (![...(e.dataTransfer?.types || [])].includes('Files')) return;
    e.preventDefault();
    ui.stage.classList.add('dragging');
  });
}
window.addEventListener('dragleave', (e) => { if (!e.relatedTarget) ui.stage.classList.remove('dragging'); });
window.addEventListener('drop', (e) => {
  ui.stage.classList.remove('dragging');
  const f = [...(e.dataTransfer?.files || [])].find((x) => x.type.startsWith('image/')) || e.dataTransfer?.files?.[0];
  if (!f) return;
  e.preventDefault();
  openImage(f, f.name);
});
document.addEventListener('paste', (e) => {
  const item = [...(e.clipboardData?.items || [])].find((i) => i.kind === 'file' && i.type.startsWith('image/'));
  if (!item) return;
  e.preventDefault();
  const f = item.getAsFile();
  openImage(f, f.name && f.name !== 'image.png' ? f.name : 'pasted');
});

// ------------------------------------------------------------- engines

function fillMethods() {
  const e = engines.find((x) => x.name === ui.engine.value);
  const methods = e?.methods || [];
  ui.method.replaceChildren(...methods.map((m) => new Option(m === e.default_method ? `${m} (default)` : m, m)));
  ui.method.disabled = methods.length === 0;
  if (e?.default_method) ui.method.value = e.default_method;
}

async function loadEngines() {
  try {
    // Text-to-image engines have their own page.
    const r = api.enginesOfKind(await api.getEngines(), 'inpaint');
    engines = r.engines;
    ui.engine.replaceChildren(...engines.map((e) => new Option(e.name, e.name)));
    ui.engine.value = r.default;
    ui.engine.disabled = engines.length === 0;
    fillMethods();
    if (!engines.length) showError('The server has no inpainting engine loaded.');
  } catch (e) {
    ui.engine.replaceChildren(new Option('unavailable', ''));
    showError(`Could not load the list of engines. ${e.message}`);
  }
  refresh();
}
ui.engine.addEventListener('change', fillMethods);

async function showApiMode() {
  const jobs = await api.detectJobs();
  ui.apiMode.textContent = jobs ? 'async jobs API' : 'synchronous API';
  ui.apiMode.dataset.mode = api.apiMode() || '';
}

// ------------------------------------------------------------- inpaint

const STAGES = { decode: 1, infer: 2, encode: 3 };

function onProgress(p) {
  if (p.status === 'queued') {
    setProgress(p.position != null ? `Queued — position ${p.position}` : 'Queued…', 0);
  } else if (p.status === 'running') {
    if (p.via === 'sync') setProgress('Working… (the server answers when the image is ready)', null);
    else setProgress(p.stage ? `Running — ${p.stage}` : 'Running…', STAGES[p.stage] ?? 0);
  } else if (p.status === 'done') {
    setProgress('Fetching the result…', 4);
  }
}

async function runInpaint() {
  if (running || !editor.hasImage) return;
  hideError();
  if (editor.maskPixels() === 0) {
    showError('Paint over the area to remove first: the mask is empty.');
    return;
  }
  const controller = new AbortController();
  running = { controller };
  ui.cancel.hidden = false;
  refresh();
  const t0 = performance.now();
  try {
    const op = editor.imageOp;
    const maskBlob = await editor.maskBlob();
    const form = new FormData();
    const ext = sniff(await op.blob.slice(0, 12).arrayBuffer()) || 'png';
    form.append('image', op.blob, `${op.name}.${ext === 'jpeg' ? 'jpg' : ext}`);
    form.append('mask', maskBlob, 'mask.png');
    if (ui.engine.value) form.append('engine', ui.engine.value);
    if (ui.method.value) form.append('method', ui.method.value);
    if (ui.hd.value) form.append('hd_strategy', ui.hd.value);
    form.append('output_format', 'png'); // lossless, so painting can go on from the result
    lastRequest = { image: op.blob, mask: maskBlob, engine: ui.engine.value, method: ui.method.value, hd_strategy: ui.hd.value };
    setProgress('Sending…', 0);
    const res = await api.inpaint(form, { signal: controller.signal, onProgress });
    const bitmap = await createImageBitmap(res.blob);
    if (bitmap.width !== editor.width || bitmap.height !== editor.height)
      throw new Error(`the result is ${bitmap.width}×${bitmap.height}, the image ${editor.width}×${editor.height}`);
    lastResult = { timings: res.timings, via: res.via, ms: performance.now() - t0, blob: res.blob };
    lastRequest.result = res.blob;
    editor.pushResult(bitmap, res.blob);
    renderTimings();
    setProgress(`Done in ${(lastResult.ms / 1000).toFixed(2)} s.`);
  } catch (e) {
    setProgress('');
    if (e.name === 'AbortError') setProgress('Cancelled.');
    else showError(e instanceof api.ApiError ? e.message : `Inpainting failed: ${e.message || e}`);
  } finally {
    running = null;
    ui.cancel.hidden = true;
    showApiMode();
    refresh();
  }
}

function renderTimings() {
  const rows = [];
  const t = lastResult?.timings || {};
  for (const k of ['queue', 'decode', 'infer', 'encode', 'save', 'total']) {
    if (typeof t[k] === 'number' && (k !== 'save' || t[k] > 0)) rows.push([k, `${t[k].toFixed(1)} ms`]);
  }
  if (lastResult) rows.push(['round trip', `${lastResult.ms.toFixed(0)} ms (browser)`]);
  if (lastResult) rows.push(['via', lastResult.via === 'jobs' ? 'async jobs API' : 'POST /api/v1/inpaint']);
  ui.timings.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    return [dt, dd];
  }));
}

ui.inpaint.addEventListener('click', runInpaint);
ui.cancel.addEventListener('click', () => running?.controller.abort());
ui.errorClose.addEventListener('click', hideError);

// ------------------------------------------------------------ controls

for (const b of document.querySelectorAll('[data-tool]')) b.addEventListener('click', () => editor.setTool(b.dataset.tool));
ui.brushSize.addEventListener('input', () => editor.setBrushSize(Number(ui.brushSize.value)));
ui.undo.addEventListener('click', () => editor.undo());
ui.redo.addEventListener('click', () => editor.redo());
ui.clear.addEventListener('click', () => editor.clearMask());
ui.zoomIn.addEventListener('click', () => editor.zoomBy(1.25));
ui.zoomOut.addEventListener('click', () => editor.zoomBy(0.8));
ui.zoomFit.addEventListener('click', () => editor.fit());
ui.showMask.addEventListener('change', () => editor.setShowMask(ui.showMask.checked));
ui.split.addEventListener('input', () => editor.setSplit(Number(ui.split.value) / 100 || null));
const hold = (on) => () => editor.setCompareHold(on && editor.hasResult);
ui.compareHold.addEventListener('pointerdown', hold(true));
for (const t of ['pointerup', 'pointerleave', 'pointercancel', 'blur']) ui.compareHold.addEventListener(t, hold(false));
ui.compareHold.addEventListener('keydown', (e) => { if (e.key === ' ' || e.key === 'Enter') { e.preventDefault(); editor.setCompareHold(editor.hasResult); } });
ui.compareHold.addEventListener('keyup', (e) => { if (e.key === ' ' || e.key === 'Enter') editor.setCompareHold(false); });

// ------------------------------------------------------------ download

async function download() {
  if (!editor.hasImage) return;
  const fmt = ui.dlFormat.value;
  const type = SERVER_FORMATS[fmt];
  const op = editor.imageOp;
  let blob = op.blob;
  // PNG bytes from the server (or the opened PNG) go out as they are;
  // other formats are encoded here from the pixels.
  if (sniff(await blob.slice(0, 12).arrayBuffer()) !== fmt) {
    const q = Math.max(1, Math.min(100, Number(ui.dlQuality.value) || 92)) / 100;
    const canvas = editor.imageCanvas(fmt === 'jpeg' ? '#fff' : null);
    blob = await new Promise((res) => canvas.toBlob(res, type, q));
    if (!blob) { showError(`This browser cannot encode ${fmt.toUpperCase()}.`); return; }
    if (blob.type !== type) { showError(`This browser cannot encode ${fmt.toUpperCase()}; try PNG.`); return; }
  }
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `${op.name}${editor.hasResult ? '-inpainted' : ''}.${fmt === 'jpeg' ? 'jpg' : fmt}`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
ui.download.addEventListener('click', download);

// ------------------------------------------------------------ keyboard

function typing(el) {
  return el && (el.tagName === 'SELECT' || el.tagName === 'TEXTAREA' ||
    (el.tagName === 'INPUT' && !['range', 'checkbox', 'button', 'file'].includes(el.type)));
}

window.addEventListener('keydown', (e) => {
  const mod = e.ctrlKey || e.metaKey;
  const k = e.key;
  if (k === 'Escape') { if (running) running.controller.abort(); hideError(); return; }
  if (mod && (k === 'z' || k === 'Z')) { e.preventDefault(); if (e.shiftKey) editor.redo(); else editor.undo(); return; }
  if (mod && (k === 'y' || k === 'Y')) { e.preventDefault(); editor.redo(); return; }
  if (mod && k === 'Enter') { e.preventDefault(); runInpaint(); return; }
  if (mod && (k === 'o' || k === 'O')) { e.preventDefault(); ui.file.click(); return; }
  if (mod && (k === 's' || k === 'S')) { e.preventDefault(); download(); return; }
  if (mod || e.altKey || typing(e.target)) return;
  const step = (s) => Math.max(1, Math.round(s * 0.15));
  switch (k) {
  case '[': editor.setBrushSize(editor.brushSize - step(editor.brushSize)); break;
  case ']': editor.setBrushSize(editor.brushSize + step(editor.brushSize)); break;
  case 'b': case 'B': editor.setTool('brush'); break;
  case 'e': case 'E': editor.setTool('eraser'); break;
  case 'h': case 'H': editor.setTool('pan'); break;
  case 'm': case 'M': ui.showMask.checked = !ui.showMask.checked; editor.setShowMask(ui.showMask.checked); break;
  case 'c': case 'C': editor.setCompareHold(editor.hasResult); break;
  case '+': case '=': editor.zoomBy(1.25); break;
  case '-': case '_': editor.zoomBy(0.8); break;
  case '0': editor.fit(); break;
  case '1': editor.zoomTo(1); break;
  case 'Delete': case 'Backspace': editor.clearMask(); break;
  case ' ':
    if (e.target === ui.view || e.target === document.body) {
      e.preventDefault();
      editor.tempPan = true; ui.view.classList.add('pan-ready'); editor.render();
    }
    return;
  default: return;
  }
  e.preventDefault();
});
window.addEventListener('keyup', (e) => {
  if (e.key === 'c' || e.key === 'C') editor.setCompareHold(false);
  if (e.key === ' ') { editor.tempPan = false; ui.view.classList.remove('pan-ready'); editor.render(); }
});
window.addEventListener('blur', () => { editor.setCompareHold(false); editor.tempPan = false; });

// ------------------------------------------------------- test/debug hook

// Read-only views for the browser tests (tests/web) and for debugging from
// the console; the page does not depend on it.
const blobToDataURL = (b) => new Promise((res, rej) => {
  const r = new FileReader();
  r.onload = () => res(r.result); r.onerror = () => rej(r.error);
  r.readAsDataURL(b);
});
window.pixserveUI = {
  editor,
  state: () => ({
    image: editor.hasImage ? { width: editor.width, height: editor.height } : null,
    zoom: editor.zoom, panX: editor.panX, panY: editor.panY,
    maskPixels: editor.hasImage ? editor.maskPixels() : 0,
    canUndo: editor.canUndo, canRedo: editor.canRedo, hasResult: editor.hasResult,
    version: editor.version, busy: !!running, apiMode: api.apiMode(),
    compareHold: editor.compareHold, split: editor.split, tool: editor.tool, brushSize: editor.brushSize,
    error: ui.error.hidden ? null : ui.errorText.textContent,
    progress: ui.progressText.textContent,
  }),
  /** The current image's pixels as a PNG data URL (what the canvas shows, mask left out). */
  imagePNG: async () => (editor.hasImage ? editor.imageCanvas().toDataURL('image/png') : null),
  /** The last request's parts and result as data URLs. */
  lastRequest: async () => lastRequest && {
    image: await blobToDataURL(lastRequest.image), mask: await blobToDataURL(lastRequest.mask),
    result: lastRequest.result ? await blobToDataURL(lastRequest.result) : null,
    engine: lastRequest.engine, method: lastRequest.method, hd_strategy: lastRequest.hd_strategy,
  },
};

// ---------------------------------------------------------------- start

loadEngines();
showApiMode();
refresh();
