// generate.js — the text-to-image page: reads and checks the form (prompt,
// size, steps, seed, count, CFG scale, model, LoRAs with their scales from
// GET /api/v1/loras), runs it through
// api.generate() with live progress and Cancel, and keeps this page
// session's results in a gallery (view large, download, reuse a seed).

import * as api from './api.js';

const $ = (id) => document.getElementById(id);

const ui = {
  form: $('gen-form'), prompt: $('prompt'), negative: $('negative'),
  size: $('size'), customSize: $('custom-size'), width: $('width'), height: $('height'),
  steps: $('steps'), count: $('count'), seed: $('seed'), seedRandom: $('seed-random'), seedLock: $('seed-lock'),
  cfg: $('cfg'), engine: $('engine'), generate: $('generate'), cancel: $('cancel'),
  loraList: $('lora-list'), loraPick: $('lora-pick'), loraAdd: $('lora-add'), loraHelp: $('lora-help'),
  progressText: $('progress-text'), progressBar: $('progress-bar'),
  error: $('error'), errorText: $('error-text'), errorClose: $('error-close'),
  status: $('gen-status'),
  gallery: $('gallery'), galleryEmpty: $('gallery-empty'), galleryCount: $('gallery-count'), galleryClear: $('gallery-clear'),
  viewer: $('viewer'), viewerImg: $('viewer-img'), viewerPrompt: $('viewer-prompt'), viewerMeta: $('viewer-meta'),
  viewerPrev: $('viewer-prev'), viewerNext: $('viewer-next'), viewerDownload: $('viewer-download'),
  viewerReuse: $('viewer-reuse'), viewerClose: $('viewer-close'),
};

const MAX_PROMPT = 4000;       // characters, as the server counts them
const MAX_SEED = Number.MAX_SAFE_INTEGER;
const MAX_LORAS = 8, MAX_LORA_SCALE = 4; // as the server takes them

let engines = [];              // generate engines from GET /api/v1/engines
let loraNames = null;          // LoRAs from GET /api/v1/loras; null = the server has none
let running = null;            // {controller, body, t0, state} while a job is out
let lastSeed = null;           // the first seed of the last run (for Lock)
let lastRequest = null;        // the body the last run sent (tests, debugging)
const results = [];            // this session's images, newest first
let viewing = -1;              // index into results shown in the viewer, or -1

// ------------------------------------------------------------ messages

function showError(msg) {
  ui.errorText.textContent = msg;
  ui.error.hidden = false;
  // The panel scrolls on short screens: the message must not land below it.
  ui.error.scrollIntoView({ block: 'nearest' });
}
function hideError() { ui.error.hidden = true; ui.errorText.textContent = ''; }
function setProgress(text, step = null, steps = null) {
  ui.progressText.textContent = text;
  ui.progressBar.hidden = step == null;
  if (steps) ui.progressBar.max = steps;
  if (step != null) ui.progressBar.value = step;
}

// Last resort: nothing fails silently, not even a bug in this page.
window.addEventListener('unhandledrejection', (e) => showError(`Unexpected error: ${e.reason?.message || e.reason}`));
window.addEventListener('error', (e) => { if (e.message) showError(`Unexpected error: ${e.message}`); });

function refresh() {
  ui.generate.disabled = !!running || !engines.length;
  ui.cancel.hidden = !running;
  ui.customSize.hidden = ui.size.value !== 'custom';
  const seed = Number(ui.seed.value);
  ui.seedRandom.setAttribute('aria-pressed', String(seed === -1));
  ui.seedLock.setAttribute('aria-pressed', String(ui.seed.value !== '' && seed >= 0));
  ui.galleryEmpty.hidden = results.length > 0;
  ui.galleryClear.disabled = results.length === 0 || !!running;
  ui.galleryCount.textContent = results.length ? `(${results.length})` : '';
  refreshLoras();
}

// ---------------------------------------------------------------- form

/** A field's value refused before sending: which field, and why. */
class Invalid extends Error {
  constructor(field, message) { super(message); this.field = field; }
}

function intField(el, name, lo, hi) {
  const raw = el.value.trim();
  const v = Number(raw);
  if (raw === '' || !Number.isInteger(v)) throw new Invalid(el, `${name} must be a whole number.`);
  if (v < lo || v > hi) throw new Invalid(el, `${name} must be between ${lo} and ${hi}.`);
  return v;
}

function sideField(el, name) {
  const v = intField(el, name, 16, 16384);
  if (v % 16) throw new Invalid(el, `${name} must be a multiple of 16 (${v} is not; try ${Math.max(16, Math.round(v / 16) * 16)}).`);
  return v;
}

/** The request body from the form; throws Invalid naming the field. */
function readForm() {
  const prompt = ui.prompt.value.trim();
  if (!prompt) throw new Invalid(ui.prompt, 'Write a prompt first: it says what the image should show.');
  if ([...prompt].length > MAX_PROMPT) throw new Invalid(ui.prompt, `The prompt is longer than ${MAX_PROMPT} characters.`);
  const negative = ui.negative.value.trim();
  if ([...negative].length > MAX_PROMPT) throw new Invalid(ui.negative, `The negative prompt is longer than ${MAX_PROMPT} characters.`);
  let width, height;
  if (ui.size.value === 'custom') {
    width = sideField(ui.width, 'Width');
    height = sideField(ui.height, 'Height');
  } else {
    [width, height] = ui.size.value.split('x').map(Number);
  }
  const cfgRaw = ui.cfg.value.trim();
  const cfg = cfgRaw === '' ? 0 : Number(cfgRaw);
  if (!Number.isFinite(cfg) || cfg < 0) throw new Invalid(ui.cfg, 'CFG scale must be a number, 0 or more (0 turns it off).');
  const body = {
    prompt, negative_prompt: negative, width, height,
    num_inference_steps: intField(ui.steps, 'Steps', 1, 50),
    seed: intField(ui.seed, 'Seed', -1, MAX_SEED),
    num_images: intField(ui.count, 'Images', 1, 4),
    cfg_scale: cfg,
  };
  if (ui.engine.value) body.model = ui.engine.value;
  const loras = readLoras();
  if (loras.length) body.loras = loras;
  return body;
}

function markInvalid(e) {
  e.field.setAttribute('aria-invalid', 'true');
  e.field.focus();
  showError(e.message);
}
for (const el of [ui.prompt, ui.negative, ui.width, ui.height, ui.steps, ui.seed, ui.cfg, ui.count])
  el.addEventListener('input', () => el.removeAttribute('aria-invalid'));

ui.size.addEventListener('change', () => {
  if (ui.size.value === 'custom') {
    refresh();
    ui.width.focus();
  } else {
    // Custom starts from the last preset, which is a valid size.
    const [w, h] = ui.size.value.split('x');
    ui.width.value = w; ui.height.value = h;
    refresh();
  }
});

function setSeed(v) {
  ui.seed.value = String(v);
  ui.seed.removeAttribute('aria-invalid');
  refresh();
}
ui.seed.addEventListener('input', refresh);
ui.seedRandom.addEventListener('click', () => setSeed(-1));
ui.seedLock.addEventListener('click', () => {
  const now = Number(ui.seed.value);
  if (Number.isInteger(now) && now >= 0) return; // already locked
  // The last run's seed, or a fresh one to keep from now on.
  setSeed(lastSeed ?? Math.floor(Math.random() * 2 ** 32));
});

// ------------------------------------------------------------- engines

async function loadEngines() {
  try {
    const r = api.enginesOfKind(await api.getEngines(), 'generate');
    engines = r.engines;
    ui.engine.replaceChildren(...engines.map((e) => new Option(e.name, e.name)));
    ui.engine.value = r.default;
    ui.engine.disabled = engines.length === 0;
    if (!engines.length) {
      ui.engine.replaceChildren(new Option('none loaded', ''));
      showError('This server has no text-to-image engine loaded. Start it with --engine zimage:model=DIR.');
    }
  } catch (e) {
    ui.engine.replaceChildren(new Option('unavailable', ''));
    showError(`Could not load the list of models. ${e.message}`);
  }
  refresh();
}

// --------------------------------------------------------------- LoRAs

const chosenLoras = () => [...ui.loraList.children].map((li) => li.dataset.name);

/** [{name, scale}] of the chosen LoRAs; throws Invalid for a bad scale. */
function readLoras() {
  return [...ui.loraList.children].map((li) => {
    const input = li.querySelector('input');
    const raw = input.value.trim(), scale = Number(raw);
    if (raw === '' || !Number.isFinite(scale) || Math.abs(scale) > MAX_LORA_SCALE)
      throw new Invalid(input, `The scale of LoRA ${li.dataset.name} must be a number from −${MAX_LORA_SCALE} to ${MAX_LORA_SCALE}.`);
    return { name: li.dataset.name, scale };
  });
}

function refreshLoras() {
  const chosen = new Set(chosenLoras());
  const free = (loraNames || []).filter((n) => !chosen.has(n));
  const keep = ui.loraPick.value;
  if (loraNames == null) ui.loraPick.replaceChildren(new Option('none on this server', ''));
  else if (!free.length) ui.loraPick.replaceChildren(new Option(loraNames.length ? 'all added' : 'none available', ''));
  else ui.loraPick.replaceChildren(...free.map((n) => new Option(n, n)));
  if (free.includes(keep)) ui.loraPick.value = keep;
  ui.loraPick.disabled = !free.length || !!running;
  ui.loraAdd.disabled = !free.length || chosen.size >= MAX_LORAS || !!running;
}

function addLora(name, scale = 1) {
  if (!name || chosenLoras().includes(name)) return;
  if (chosenLoras().length >= MAX_LORAS) { showError(`At most ${MAX_LORAS} LoRAs at once.`); return; }
  const input = el('input', { type: 'number', min: -MAX_LORA_SCALE, max: MAX_LORA_SCALE, step: 0.05, value: scale });
  input.id = `lora-scale-${name}`;
  input.setAttribute('aria-label', `Scale of LoRA ${name}`);
  input.addEventListener('input', () => input.removeAttribute('aria-invalid'));
  const remove = el('button', { type: 'button', className: 'small', textContent: '×', title: `Remove ${name}` });
  remove.setAttribute('aria-label', `Remove LoRA ${name}`);
  const li = el('li', {}, el('span', { className: 'lora-name', textContent: name, title: name }), input, remove);
  li.dataset.name = name;
  remove.addEventListener('click', () => { li.remove(); refresh(); ui.loraPick.focus(); });
  ui.loraList.append(li);
  refresh();
}
ui.loraAdd.addEventListener('click', () => addLora(ui.loraPick.value));

async function loadLoras() {
  try {
    const r = await api.getLoras();
    loraNames = r ? (r.loras || []).map((x) => x.name) : null;
    ui.loraHelp.textContent = loraNames == null
      ? 'This server has no LoRAs: start it with --lora-dir DIR.'
      : loraNames.length ? `Scale −${MAX_LORA_SCALE} to ${MAX_LORA_SCALE} (1 = as trained). Up to ${MAX_LORAS} at once.`
        : "No LoRAs in the server's LoRA directory yet.";
  } catch (e) {
    loraNames = null;
    ui.loraHelp.textContent = `Could not load the list of LoRAs. ${e.message}`;
  }
  refresh();
}

const lorasText = (loras) => loras.map((l) => `${l.name} × ${l.scale}`).join(', ');

// ------------------------------------------------------------ progress

const STAGE_LABELS = {
  text_encode: 'encoding the prompt', denoise: 'denoising', vae_decode: 'decoding the image', encode: 'encoding PNG',
};

function onProgress(s) {
  if (!running) return;
  running.state = s;
  const steps = s.progress?.steps || running.body.num_inference_steps;
  const step = s.progress?.step ?? 0;
  const stage = STAGE_LABELS[s.stage] || s.stage || '';
  if (s.status === 'queued') {
    setProgress(s.position != null ? `Queued — position ${s.position}` : 'Queued…', 0, steps);
  } else if (s.status === 'running') {
    if (s.progress) setProgress(`Step ${step} of ${steps}${stage ? ` — ${stage}` : ''}`, step, steps);
    else setProgress(stage ? `Running — ${stage}` : 'Running…', 0, steps);
  } else if (s.status === 'done') {
    // A short job can end before the event stream connects: the done
    // status still says how far it got.
    setProgress(`Step ${s.progress?.step ?? steps} of ${steps} — fetching the images…`, steps, steps);
  }
  ui.status.textContent = s.via === 'poll' ? 'progress by polling' : 'live progress (events)';
  ui.status.dataset.via = s.via || '';
}

// ----------------------------------------------------------------- run

async function run() {
  if (running || ui.generate.disabled) return;
  hideError();
  let body;
  try {
    body = readForm();
  } catch (e) {
    if (e instanceof Invalid) { markInvalid(e); return; }
    throw e;
  }
  const controller = new AbortController();
  running = { controller, body, t0: performance.now(), state: null };
  lastRequest = body;
  refresh();
  setProgress('Sending…', 0, body.num_inference_steps);
  try {
    const res = await api.generate(body, { signal: controller.signal, onProgress });
    const ms = performance.now() - running.t0;
    addResults(body, res, ms);
    const steps = body.num_inference_steps;
    setProgress(`Done: ${res.blobs.length} image${res.blobs.length > 1 ? 's' : ''} in ${(ms / 1000).toFixed(2)} s.`, steps, steps);
  } catch (e) {
    setProgress('');
    if (e.name === 'AbortError') setProgress('Cancelled.');
    else showError(e instanceof api.ApiError ? e.message : `Generating failed: ${e.message || e}`);
  } finally {
    running = null;
    refresh();
  }
}

ui.form.addEventListener('submit', (e) => { e.preventDefault(); run(); });
ui.cancel.addEventListener('click', () => running?.controller.abort());
ui.errorClose.addEventListener('click', hideError);

// ------------------------------------------------------------- gallery

function addResults(body, res, ms) {
  const job = res.job;
  const width = job.result?.width || body.width, height = job.result?.height || body.height;
  const stepMean = res.stepMs.length ? res.stepMs.reduce((a, b) => a + b, 0) / res.stepMs.length : null;
  const entries = res.blobs.map((blob, i) => {
    const seed = Number.isInteger(job.seeds?.[i]) ? job.seeds[i] : body.seed >= 0 ? body.seed + i : null;
    return {
      url: URL.createObjectURL(blob), blob, seed, width, height, index: i, count: res.blobs.length,
      steps: body.num_inference_steps, cfg: body.cfg_scale, model: job.model || body.model || '',
      loras: Array.isArray(job.loras) ? job.loras : body.loras || [],
      prompt: body.prompt, negative: body.negative_prompt, jobId: job.id,
      timings: res.timings, stepMean, ms,
    };
  });
  if (entries[0]?.seed != null) lastSeed = entries[0].seed;
  results.unshift(...entries);
  renderGallery();
}

const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
const fileName = (h) => `pixserve-${h.seed ?? `${h.jobId}-${h.index}`}-${h.width}x${h.height}.png`;

function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

function renderGallery() {
  ui.gallery.replaceChildren(...results.map((h, i) => {
    const img = el('img', { src: h.url, alt: h.prompt, width: h.width, height: h.height, decoding: 'async' });
    const thumb = el('button', { type: 'button', className: 'thumb', title: 'View large' }, img);
    thumb.setAttribute('aria-label', `View image ${i + 1} large (seed ${h.seed ?? 'unknown'})`);
    thumb.addEventListener('click', () => openViewer(i));
    const total = h.timings.total ?? h.ms;
    const meta = el('p', { className: 'shot-meta' },
      el('span', { className: 'shot-seed' }, `seed ${h.seed ?? '?'}`),
      el('span', {}, `${h.width}×${h.height} · ${h.steps} step${h.steps > 1 ? 's' : ''}`),
      el('span', { title: 'Server time of the run (all its images)' }, fmtMs(total)));
    const dl = el('a', { className: 'button small', href: h.url, download: fileName(h), textContent: 'PNG' });
    dl.title = 'Download the PNG';
    const reuse = el('button', { type: 'button', className: 'small', textContent: 'Reuse seed' });
    reuse.disabled = h.seed == null;
    reuse.addEventListener('click', () => reuseSeed(h));
    const prompt = el('p', { className: 'shot-prompt', textContent: h.prompt });
    if (h.loras.length) meta.append(el('span', { className: 'shot-loras', textContent: lorasText(h.loras) }));
    const li = el('li', { className: 'shot' }, thumb, prompt, meta, el('div', { className: 'shot-actions' }, dl, reuse));
    li.title = h.prompt;
    return li;
  }));
  refresh();
}

function reuseSeed(h) {
  if (h.seed == null) return;
  setSeed(h.seed);
  setProgress(`Seed ${h.seed} set: the next run repeats this image with the same prompt, size and steps.`);
}

ui.galleryClear.addEventListener('click', () => {
  for (const h of results) URL.revokeObjectURL(h.url);
  results.length = 0;
  renderGallery();
});

// -------------------------------------------------------------- viewer

function openViewer(i) {
  viewing = i;
  const h = results[i];
  ui.viewerImg.src = h.url;
  ui.viewerImg.alt = h.prompt;
  ui.viewerImg.classList.toggle('tiny', Math.max(h.width, h.height) < 256);
  ui.viewerPrompt.textContent = h.prompt;
  const rows = [
    ['seed', h.seed ?? 'unknown'], ['size', `${h.width} × ${h.height}`], ['steps', h.steps],
    ['CFG scale', h.cfg ? h.cfg : '0 (off)'], ['model', h.model],
    ['image', `${h.index + 1} of ${h.count}`],
  ];
  if (h.loras.length) rows.push(['LoRAs', lorasText(h.loras)]);
  if (h.negative) rows.push(['negative', h.negative]);
  const t = h.timings;
  for (const [k, label] of [['queue', 'queue'], ['text_encode', 'prompt encoding'], ['denoise', 'denoising'],
    ['vae_decode', 'VAE decode'], ['encode', 'PNG encode'], ['total', 'server total']])
    if (typeof t[k] === 'number') rows.push([label, fmtMs(t[k])]);
  if (h.stepMean != null) rows.push(['per step', fmtMs(h.stepMean)]);
  rows.push(['round trip', `${fmtMs(h.ms)} (browser)`]);
  ui.viewerMeta.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', { textContent: k }), el('dd', { textContent: String(v) })]));
  ui.viewerDownload.href = h.url;
  ui.viewerDownload.download = fileName(h);
  ui.viewerReuse.disabled = h.seed == null;
  ui.viewerPrev.disabled = i <= 0;
  ui.viewerNext.disabled = i >= results.length - 1;
  if (!ui.viewer.open) ui.viewer.showModal();
}
ui.viewer.addEventListener('close', () => { viewing = -1; });
ui.viewerClose.addEventListener('click', () => ui.viewer.close());
ui.viewerPrev.addEventListener('click', () => viewing > 0 && openViewer(viewing - 1));
ui.viewerNext.addEventListener('click', () => viewing < results.length - 1 && openViewer(viewing + 1));
ui.viewerReuse.addEventListener('click', () => { reuseSeed(results[viewing]); ui.viewer.close(); });
// A click on the backdrop (outside the figure) closes.
ui.viewer.addEventListener('click', (e) => { if (e.target === ui.viewer) ui.viewer.close(); });

// ------------------------------------------------------------ keyboard

window.addEventListener('keydown', (e) => {
  if (ui.viewer.open) {
    if (e.key === 'ArrowLeft') ui.viewerPrev.click();
    else if (e.key === 'ArrowRight') ui.viewerNext.click();
    return; // Esc closes the dialog by itself
  }
  if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); run(); return; }
  if (e.key === 'Escape') { if (running) running.controller.abort(); else hideError(); }
});

// ------------------------------------------------------- test/debug hook

// Read-only views for the browser tests (tests/web) and the console.
window.pixserveGen = {
  state: () => ({
    busy: !!running, engines: engines.map((e) => e.name),
    loras: loraNames && [...loraNames], chosenLoras: chosenLoras(),
    error: ui.error.hidden ? null : ui.errorText.textContent,
    progressText: ui.progressText.textContent,
    progress: running?.state ? { ...running.state } : null,
    jobId: running?.state?.id ?? null,
    invalid: [...document.querySelectorAll('[aria-invalid=true]')].map((x) => x.id),
    gallery: results.map((h) => ({
      seed: h.seed, width: h.width, height: h.height, steps: h.steps, cfg: h.cfg, model: h.model,
      prompt: h.prompt, jobId: h.jobId, download: fileName(h), bytes: h.blob.size, loras: h.loras,
    })),
    viewing,
  }),
  lastRequest: () => lastRequest && { ...lastRequest },
};

// ---------------------------------------------------------------- start

loadEngines();
loadLoras();
refresh();
