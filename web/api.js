// api.js — the pixserve HTTP API as the web UI uses it: engines, inpainting
// through the async jobs API when the server has it (falling back to the
// synchronous POST /api/v1/inpaint), server timings, and every failure turned
// into an ApiError whose message a person can read.

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

/** GET /api/v1/engines → {default, engines: [{name, methods, default_method, ...}]}. */
export async function getEngines() {
  return (await call('/api/v1/engines', { headers: { Accept: 'application/json' } })).json();
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
  let job = await resp.json();
  const statusUrl = job.status_url || `/api/v1/jobs/${encodeURIComponent(job.id)}`;
  const cancel = () => { fetch(statusUrl, { method: 'DELETE' }).catch(() => {}); };
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    let delay = 60, failures = 0;
    for (;;) {
      onProgress({ via: 'jobs', id: job.id, status: job.status, position: job.position ?? null, stage: job.stage ?? null });
      if (job.status === 'done') break;
      if (job.status === 'failed') {
        const e = job.error || {};
        const status = CODE_STATUS[e.code] || 500;
        throw new ApiError(describeError({ status, code: e.code, message: e.message }), { status, code: e.code || '', detail: e.message || '' });
      }
      if (job.status === 'expired')
        throw new ApiError(describeError({ status: 504, code: 'timeout', message: 'the deadline passed before the job finished' }), { status: 504, code: 'timeout' });
      if (job.status === 'cancelled')
        throw new ApiError('The job was cancelled.', { status: 409, code: 'cancelled' });
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
    const url = job.result?.url || `${statusUrl}/result`;
    const r = await call(url, { signal });
    const blob = await r.blob();
    const timings = timingsFromJson(job.timings);
    // Submission to finish, by the server's clock (the jobs API has no Server-Timing).
    if (job.created_ms != null && job.finished_ms != null && timings.total == null)
      timings.total = job.finished_ms - job.created_ms;
    return { blob, timings, via: 'jobs', id: job.id };
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
