// api.js — the pixserve HTTP API as the web UI uses it: engines, inpainting
// through the async jobs API when the server has it (falling back to the
// synchronous POST /api/v1/inpaint), text-to-image through
// POST /api/v1/generate_async followed live over the job's event stream
// (falling back to polling), server timings, and every failure turned into an
// ApiError whose message a person can read.

/** An API or network failure with a readable message. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = '', retryAfter = null, detail = '' } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;       // HTTP status, 0 for network errors
    this.code = code;           // the API's error code ("too_large", "busy", ...)
    this.retryAfter = retryAfter; // seconds, when the server said
    this.detail = detail;       // the server's own message
  }
}

// The status each error code comes with (for errors inside job objects,
// which carry a code but no HTTP status of their own).
const CODE_STATUS = {
  invalid_input: 400, corrupt_data: 400, truncated_data: 400, not_found: 404,
  too_large: 413, unsupported: 415, busy: 429, cancelled: 503, timeout: 504, internal: 500,
  unavailable: 503, out_of_memory: 503,
};

/** A readable sentence for an API error (status, code, server message, Retry-After). */
export function describeError({ status = 0, code = '', message = '', retryAfter = null } = {}) {
  const detail = message ? message.replace(/\s+$/, '') : '';
  const withDetail = (head) => (detail ? `${head}: ${detail}` : `${head}.`);
  const retry = retryAfter != null && isFinite(retryAfter) ? Math.max(1, Math.ceil(retryAfter)) : null;
  if (status === 413 || code === 'too_large') return withDetail('The image is too large');
  if (status === 429 || code === 'busy')
    return retry != null ? `The server is busy, retry in ${retry} s.` : 'The server is busy, retry in a moment.';
  if (status === 504 || code === 'timeout') return withDetail('Timed out before the result was ready');
  if (status === 415 || code === 'unsupported') return withDetail('This image format is not supported');
  if (code === 'corrupt_data' || code === 'truncated_data') return withDetail('The image could not be decoded');
  if (status === 503 || code === 'cancelled')
    return `The server is shutting down or not ready${retry != null ? `, retry in ${retry} s` : ''}.`;
  if (status === 404 || code === 'not_found') return withDetail('Not found');
  if (status === 409) return withDetail('Not ready yet');
  if (status === 400 || code === 'invalid_input') return withDetail('The server refused the request');
  if (status >= 500 || code === 'internal') return withDetail(`The server failed (HTTP ${status || 500})`);
  return withDetail(`Unexpected answer (HTTP ${status})`);
}

/** Builds an ApiError from a non-2xx fetch Response (JSON error body or not). */
export async function errorFromResponse(resp) {
  let text = '';
  try { text = await resp.text(); } catch { /* body lost: the status still speaks */ }
  let code = '', message = '';
  try {
    const j = JSON.parse(text);
    if (j && j.error) { code = String(j.error.code || ''); message = String(j.error.message || ''); }
  } catch {
    message = text.trim().slice(0, 300);
  }
  const ra = resp.headers.get('Retry-After');
  const retryAfter = ra != null && ra !== '' && !isNaN(Number(ra)) ? Number(ra) : null;
  const status = resp.status;
  return new ApiError(describeError({ status, code, message, retryAfter }),
                      { status, code, retryAfter, detail: message });
}

/** An ApiError for a request that never got an answer. */
export function networkError(err) {
  const why = err && err.message ? err.message : String(err);
  return new ApiError(`Could not reach the pixserve server (${why}). Is it running, and is the image within its size limit?`,
                      { status: 0, code: 'network', detail: why });
}

async function call(url, init) {
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw networkError(e);
  }
  if (!resp.ok) throw await errorFromResponse(resp);
  return resp;
}

/** Parses a Server-Timing header into {stage: ms}. */
export function parseServerTiming(header) {
  const out = {};
  if (!header) return out;
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().split(';');
    if (!name) continue;
    for (const p of params) {
      const m = /^\s*dur\s*=\s*"?([0-9.eE+-]+)"?\s*$/.exec(p);
      if (m) out[name.trim()] = Number(m[1]);
    }
  }
  return out;
}

/** The `timings` object of a JSON reply ({queue_ms, ...}) as {queue: ms, ...}. */
export function timingsFromJson(t) {
  const out = {};
  if (!t) return out;
  for (const [k, v] of Object.entries(t)) if (typeof v === 'number') out[k.replace(/_ms$/, '')] = v;
  return out;
}

/** GET /api/v1/engines → {default, engines: [{name, kind, methods, default_method, ...}]}. */
export async function getEngines() {
  return (await call('/api/v1/engines', { headers: { Accept: 'application/json' } })).json();
}

/**
 * GET /api/v1/loras → {loras: [{name, file, size_bytes, loaded, engines}], ...},
 * or null when the server has no LoRA directory (404, or a server from
 * before LoRAs).
 */
export async function getLoras() {
  try {
    return await (await call('/api/v1/loras', { headers: { Accept: 'application/json' } })).json();
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

/**
 * The engines of one kind ("inpaint" or "generate") in a getEngines() reply,
 * and which of them to preselect: the server's default when it is of that
 * kind, else the first. Engines without a kind are inpainting engines (the
 * servers from before text-to-image did not say).
 */
export function enginesOfKind(reply, kind) {
  const engines = (reply?.engines || []).filter((e) => e && e.available !== false && (e.kind || 'inpaint') === kind);
  const preferred = engines.find((e) => e.name === reply?.default) || engines[0];
  return { engines, default: preferred ? preferred.name : '' };
}

let jobsSupported = null; // null: not known yet

/**
 * Whether the server has the async jobs API. Asks the route index
 * (GET /api/v1 lists "POST /api/v1/jobs" when it is there); a server without
 * the index is asked GET /api/v1/jobs directly, which is 404 only when the
 * route does not exist (405 or anything else means it does). Neither creates
 * a job. A network failure is not an answer: it stays unknown (and inpaint()
 * uses the synchronous route meanwhile).
 */
export async function detectJobs() {
  if (jobsSupported !== null) return jobsSupported;
  try {
    const r = await fetch('/api/v1', { headers: { Accept: 'application/json' } });
    if (r.ok) {
      const idx = await r.json().catch(() => null);
      if (idx && Array.isArray(idx.routes)) {
        jobsSupported = idx.routes.includes('POST /api/v1/jobs');
        return jobsSupported;
      }
    }
    const probe = await fetch('/api/v1/jobs', { headers: { Accept: 'application/json' } });
    jobsSupported = probe.status !== 404;
  } catch {
    return false;
  }
  return jobsSupported;
}

/** Forgets what detectJobs found (tests, or a server that was swapped). */
export function resetDetection() { jobsSupported = null; }

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); }, { once: true });
});

// ------------------------------------------------------------- async jobs

/** Where a job's status lives (the submission's status_url, or built from its id). */
export function jobStatusUrl(job) {
  return job.status_url || `/api/v1/jobs/${encodeURIComponent(job.id)}`;
}

/** Asks the server to cancel a job (DELETE); fire and forget: a job that just finished answers 409. */
export function cancelJob(job) {
  return fetch(jobStatusUrl(job), { method: 'DELETE' }).then(() => {}, () => {});
}

/** The ApiError a finished-but-not-done job stands for (failed, expired, cancelled), or null. */
export function jobError(job) {
  if (job.status === 'failed') {
    const e = job.error || {};
    const status = CODE_STATUS[e.code] || 500;
    return new ApiError(describeError({ status, code: e.code, message: e.message }), { status, code: e.code || '', detail: e.message || '' });
  }
  if (job.status === 'expired')
    return new ApiError(describeError({ status: 504, code: 'timeout', message: 'the deadline passed before the job finished' }), { status: 504, code: 'timeout' });
  if (job.status === 'cancelled')
    return new ApiError('The job was cancelled.', { status: 409, code: 'cancelled' });
  return null;
}

/** A done job's timings as {stage: ms}, with the server's submission-to-finish total when it gave none. */
export function jobTimings(job) {
  const timings = timingsFromJson(job.timings);
  if (job.created_ms != null && job.finished_ms != null && timings.total == null)
    timings.total = job.finished_ms - job.created_ms;
  return timings;
}

/**
 * Polls a job until it is done (60 ms at first, then every half second at
 * most). `onUpdate(job)` sees every state, the first one included. Resolves
 * to the done job; rejects with its jobError, or an ApiError when the server
 * cannot be asked (a few dropped polls are retried), or AbortError.
 */
async function pollJob(statusUrl, job, { signal, onUpdate }) {
  let delay = 60, failures = 0;
  for (;;) {
    onUpdate(job);
    if (job.status === 'done') return job;
    const err = jobError(job);
    if (err) throw err;
    await sleep(delay, signal);
    delay = Math.min(500, delay * 1.5);
    try {
      job = await (await call(statusUrl, { signal, headers: { Accept: 'application/json' } })).json();
      failures = 0;
    } catch (e) {
      // A dropped poll is not a failed job: retry a few times.
      if (e.name === 'AbortError' || !(e instanceof ApiError) || e.status !== 0 || ++failures > 3) throw e;
    }
  }
}

// Thrown by followEvents when the event stream cannot be used (no
// EventSource, the route is missing, the connection dropped): poll instead.
const NO_EVENTS = Symbol('no event stream');
const TERMINAL_EVENTS = ['done', 'failed', 'cancelled'];

/**
 * Follows GET /api/v1/jobs/{id}/events: `status` events ({status, position}),
 * `progress` events ({step, steps}) and one of `done` / `failed` /
 * `cancelled`, whose data is the job's status object. Resolves to
 * {status, ...that object}; rejects with NO_EVENTS if the stream fails first
 * (EventSource would reconnect on its own; polling is the better fallback).
 */
function followEvents(url, { signal, onEvent }) {
  return new Promise((resolve, reject) => {
    let es;
    try {
      if (typeof EventSource !== 'function') throw new Error('no EventSource');
      es = new EventSource(url);
    } catch {
      reject(NO_EVENTS);
      return;
    }
    const finish = (settle) => {
      es.close();
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = () => finish(() => reject(new DOMException('aborted', 'AbortError')));
    signal?.addEventListener('abort', onAbort, { once: true });
    const data = (e) => { try { const d = JSON.parse(e.data); return d && typeof d === 'object' ? d : {}; } catch { return {}; } };
    es.addEventListener('status', (e) => onEvent(data(e)));
    es.addEventListener('progress', (e) => {
      const d = data(e);
      onEvent({ status: 'running', progress: { step: d.step, steps: d.steps }, ...(d.stage ? { stage: d.stage } : {}) });
    });
    for (const t of TERMINAL_EVENTS) es.addEventListener(t, (e) => { const d = data(e); finish(() => resolve({ ...d, status: d.status || t })); });
    es.onerror = () => finish(() => reject(NO_EVENTS));
  });
}

/**
 * Follows a submitted job to its end: live over its event stream when
 * `events` is true and the server has one, else (or when the stream fails)
 * by polling its status. `onUpdate(state)` gets the merged job state after
 * every change: {id, status, position, stage, progress: {step, steps}, via}
 * where via is 'events' or 'poll'. Resolves to the done job's status object;
 * rejects like pollJob.
 */
export async function watchJob(job, { signal, onUpdate = () => {}, events = true } = {}) {
  const statusUrl = jobStatusUrl(job);
  const state = { ...job, via: events ? 'events' : 'poll' };
  const merge = (d) => {
    Object.assign(state, d);
    if (state.status !== 'queued') state.position = null;
    // The event stream says when denoising steps end, not when decoding
    // starts: after the last step the job is decoding the latents.
    const p = state.progress;
    if (state.status === 'running' && p && p.steps && !d.stage && state.via === 'events')
      state.stage = p.step >= p.steps ? 'vae_decode' : 'denoise';
    onUpdate({ ...state });
  };
  onUpdate({ ...state }); // the submission's own state (queued, and where)
  if (events) {
    const url = job.events_url || `${statusUrl}/events`;
    try {
      const end = await followEvents(url, { signal, onEvent: merge });
      merge(end);
      // The terminal event normally carries the whole status object; ask once if it did not.
      const complete = end.status === 'done' ? !!end.result : end.status !== 'failed' || !!end.error;
      if (!complete) merge(await (await call(statusUrl, { signal, headers: { Accept: 'application/json' } })).json());
      if (state.status === 'done') return { ...state };
      const err = jobError(state);
      if (err) throw err;
    } catch (e) {
      if (e !== NO_EVENTS) throw e;
    }
  }
  state.via = 'poll';
  await pollJob(statusUrl, { ...state }, { signal, onUpdate: (j) => merge({ ...j, via: 'poll' }) });
  return { ...state };
}

async function inpaintSync(form, { signal, onProgress }) {
  onProgress({ via: 'sync', status: 'running', stage: null });
  const resp = await call('/api/v1/inpaint', { method: 'POST', body: form, signal });
  const blob = await resp.blob();
  return { blob, timings: parseServerTiming(resp.headers.get('Server-Timing')), via: 'sync' };
}

// Thrown by inpaintJob when the server has no jobs route after all.
const NO_JOBS = Symbol('no jobs route');

async function inpaintJob(form, { signal, onProgress }) {
  let resp;
  try {
    resp = await call('/api/v1/jobs', { method: 'POST', body: form, signal });
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) throw NO_JOBS;
    throw e;
  }
  const submitted = await resp.json();
  const statusUrl = jobStatusUrl(submitted);
  const cancel = () => cancelJob(submitted);
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    const job = await pollJob(statusUrl, submitted, {
      signal,
      onUpdate: (j) => onProgress({ via: 'jobs', id: j.id, status: j.status, position: j.position ?? null, stage: j.stage ?? null }),
    });
    const url = job.result?.url || `${statusUrl}/result`;
    const r = await call(url, { signal });
    const blob = await r.blob();
    return { blob, timings: jobTimings(job), via: 'jobs', id: job.id };
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}

/**
 * Inpaints: `form` is a FormData with the image and mask parts and options.
 * Resolves to {blob, timings, via}; rejects with ApiError (or AbortError when
 * `signal` aborts). `onProgress({via, status, position, stage})` is called
 * as the job moves (queued with its position, running with its stage).
 */
export async function inpaint(form, { signal, onProgress = () => {} } = {}) {
  if (await detectJobs()) {
    try {
      return await inpaintJob(form, { signal, onProgress });
    } catch (e) {
      if (e !== NO_JOBS) throw e;
      // The route went away (a server without jobs took over): use the other.
      jobsSupported = false;
    }
  }
  return inpaintSync(form, { signal, onProgress });
}

/** Which path inpaint() takes now: 'jobs', 'sync' or null (not probed yet). */
export function apiMode() { return jobsSupported === null ? null : jobsSupported ? 'jobs' : 'sync'; }

// ------------------------------------------------------------ text to image

/**
 * Text to image: submits `body` (the fields of POST /api/v1/generate: prompt,
 * width, height, num_inference_steps, seed, num_images, cfg_scale, model, ...)
 * to POST /api/v1/generate_async, follows the job (watchJob: live events, or
 * polling) and fetches its images. `onProgress(state)` gets watchJob's
 * states; aborting `signal` cancels the job on the server (DELETE) and
 * rejects with AbortError. Resolves to {job, blobs, timings, stepMs} with one
 * PNG blob per image, in order; rejects with ApiError, whose message is the
 * server's error (a refused submission or a failed job) made readable.
 */
export async function generate(body, { signal, onProgress = () => {}, events = true } = {}) {
  const resp = await call('/api/v1/generate_async', {
    method: 'POST', signal, body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
  });
  const submitted = await resp.json();
  const statusUrl = jobStatusUrl(submitted);
  const cancel = () => cancelJob(submitted);
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    const job = await watchJob(submitted, { signal, events, onUpdate: onProgress });
    const r = job.result || {};
    const urls = Array.isArray(r.urls) && r.urls.length ? r.urls : [r.url || `${statusUrl}/result`];
    const blobs = [];
    for (const u of urls) blobs.push(await (await call(u, { signal })).blob());
    const steps = Array.isArray(job.timings?.step_ms) ? job.timings.step_ms.filter((x) => typeof x === 'number') : [];
    return { job, blobs, timings: jobTimings(job), stepMs: steps };
  } finally {
    signal?.removeEventListener('abort', cancel);
  }
}
