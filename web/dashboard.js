// dashboard.js — the live dashboard: polls /metrics, turns counters into
// rates and histogram buckets into percentiles between polls, and draws the
// last two minutes or so as small charts. Metrics the server does not export
// (batching and GPU ones until the serving core and a GPU engine land) show
// as "n/a".

import * as M from './metrics.js';
import { lineChart, legend } from './chart.js';

const $ = (id) => document.getElementById(id);
const POINTS = 120;
const COLORS = ['#4ea1ff', '#ff3060', '#ffb347', '#3ccf8e', '#c38bff', '#5fd7d7'];
const STAGE_COLORS = { queue: '#9aa1b1', decode: '#ffb347', infer: '#ff3060', encode: '#4ea1ff' };

const points = [];  // one per poll: see sample()
let prev = null;    // {t, m} of the previous successful scrape
let timer = 0, paused = false, polls = 0, failures = 0;

// ------------------------------------------------------------- formats

const fmtNum = (v, d = 1) => (v == null ? '–' : v >= 100 ? v.toFixed(0) : v > 0 && v < 1 && d > 0 ? v.toFixed(2) : v.toFixed(d));
function fmtSecs(s) {
  if (s == null || !isFinite(s)) return '–';
  if (s === 0) return '0';
  if (s < 0.001) return `${(s * 1e6).toFixed(0)} µs`;
  if (s < 1) return `${(s * 1e3).toFixed(s < 0.01 ? 2 : s < 0.1 ? 1 : 0)} ms`;
  return `${s.toFixed(s < 10 ? 2 : 1)} s`;
}
function fmtBytes(b) {
  if (b == null || !isFinite(b)) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return `${+b.toFixed(b >= 100 || i === 0 ? 0 : 1)} ${u[i]}`;
}
function fmtDuration(s) {
  if (s == null) return '–';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${sec} s` : `${sec} s`;
}

// ------------------------------------------------------------ sampling

function latencyFilter() {
  const v = $('lat-route').value;
  if (v === 'inpaint') return { route: (r) => r === '/api/v1/inpaint' || r === '/inpaint' };
  if (v === '') return {};
  return { route: v };
}

/** Everything one scrape tells, relative to the previous one. */
function sample(m, t) {
  const p = { t };
  const dt = prev ? (t - prev.t) / 1000 : null;
  const pm = prev?.m;
  const notScrape = { route: (r) => r !== '/metrics' };
  const failed = { status: (s) => Number(s) >= 400 };
  p.qps = M.rate(M.sum(m, 'pixserve_requests_total', notScrape), pm && M.sum(pm, 'pixserve_requests_total', notScrape), dt);
  p.errps = M.rate(M.sum(m, 'pixserve_requests_total', failed) ?? 0, pm && (M.sum(pm, 'pixserve_requests_total', failed) ?? 0), dt);
  p.jobps = M.rate(M.sum(m, 'pixserve_jobs_total', { outcome: 'completed' }), pm && M.sum(pm, 'pixserve_jobs_total', { outcome: 'completed' }), dt);

  const lf = latencyFilter();
  const h = M.histogram(m, 'pixserve_request_duration_seconds', lf);
  const d = M.histDelta(h, pm && M.histogram(pm, 'pixserve_request_duration_seconds', lf));
  const win = prev && d && d.count > 0 ? d : null;
  p.p50 = M.quantile(win, 0.5); p.p90 = M.quantile(win, 0.9); p.p99 = M.quantile(win, 0.99);
  p.latTotal = h && h.count > 0 ? { p50: M.quantile(h, 0.5), p90: M.quantile(h, 0.9), p99: M.quantile(h, 0.99), mean: h.sum / h.count, count: h.count } : null;

  p.stages = {};
  const counts = M.byLabel(m, 'pixserve_stage_duration_seconds_count', 'stage');
  const sums = M.byLabel(m, 'pixserve_stage_duration_seconds_sum', 'stage');
  const pc = pm ? M.byLabel(pm, 'pixserve_stage_duration_seconds_count', 'stage') : {};
  const ps = pm ? M.byLabel(pm, 'pixserve_stage_duration_seconds_sum', 'stage') : {};
  for (const st of Object.keys(counts)) {
    const dc = counts[st] - (pc[st] ?? 0), ds = sums[st] - (ps[st] ?? 0);
    p.stages[st] = prev && dc > 0 ? ds / dc : null;
  }

  p.queue = M.sum(m, 'pixserve_queue_depth');
  p.pending = M.sum(m, 'pixserve_pending_requests');      // serving core: admitted, not yet answered
  p.cpuQueue = M.sum(m, 'pixserve_cpu_queue_depth');      // serving core: waiting for the CPU pool
  p.asyncJobs = M.sum(m, 'pixserve_async_jobs');
  p.capacity = M.sum(m, 'pixserve_queue_capacity');
  p.inflight = M.sum(m, 'pixserve_inflight');
  p.workers = M.sum(m, 'pixserve_workers');

  const b = M.histogram(m, 'pixserve_batch_size');
  p.hasBatch = !!b;
  if (b) {
    const bd = M.histDelta(b, pm && M.histogram(pm, 'pixserve_batch_size'));
    p.batch = prev && bd.count > 0 ? bd.sum / bd.count : null;
    p.batchMax = prev && bd.count > 0 ? M.quantile(bd, 1) : null;
    p.batchAll = b.count > 0 ? b.sum / b.count : null;
  }

  p.gpu = M.has(m, 'pixserve_gpu_utilization_ratio') ? M.byLabel(m, 'pixserve_gpu_utilization_ratio', 'device') : null;
  p.gpuUsed = M.has(m, 'pixserve_gpu_memory_used_bytes') ? M.byLabel(m, 'pixserve_gpu_memory_used_bytes', 'device') : null;
  p.gpuTotal = M.has(m, 'pixserve_gpu_memory_total_bytes') ? M.byLabel(m, 'pixserve_gpu_memory_total_bytes', 'device') : null;

  p.rss = M.sum(m, 'process_resident_memory_bytes');
  p.fds = M.sum(m, 'process_open_fds');
  p.uptime = M.sum(m, 'pixserve_uptime_seconds');
  p.ready = M.sum(m, 'pixserve_ready');
  p.jobs = M.byLabel(m, 'pixserve_jobs_total', 'outcome');
  p.errors = M.byLabel(m, 'pixserve_errors_total', 'code');
  p.requests = M.sum(m, 'pixserve_requests_total');
  p.routes = Object.keys(M.byLabel(m, 'pixserve_request_duration_seconds_count', 'route'));
  return p;
}

// ------------------------------------------------------------- drawing

const col = (key) => points.map((p) => (p.gap ? null : typeof key === 'function' ? key(p) : p[key]));
const last = () => points[points.length - 1] || {};

function setNow(id, html) { $(id).replaceChildren(...(Array.isArray(html) ? html : [html])); }
function nowText(main, small) {
  const out = [document.createTextNode(main)];
  if (small) { const s = document.createElement('small'); s.textContent = ` ${small}`; out.push(s); }
  return out;
}
function na(id, chart, leg, why) {
  const s = document.createElement('span');
  s.className = 'na'; s.textContent = 'n/a';
  setNow(id, s);
  lineChart($(chart), [], { points: slots(), leftLabel: span(), empty: why });
  $(leg).replaceChildren();
}

// The x axis spans the samples kept (up to POINTS; at least a few slots so
// the first seconds do not fill the whole width); its left end says how old.
const slots = () => Math.max(10, points.length);
function span() {
  const first = points[0], lastp = points[points.length - 1];
  if (!first || first === lastp) return '';
  const s = (lastp.t - first.t) / 1000 * (slots() - 1) / Math.max(1, points.length - 1);
  return s >= 120 ? `${Math.round(s / 60)} min ago` : `${Math.round(s)} s ago`;
}

/** A y-axis top for byte values on binary steps (4, 8, 12, 16 MiB rather than 19.1). */
function bytesMax(values) {
  const v = Math.max(0, ...values.filter((x) => x != null && isFinite(x)));
  if (!(v > 0)) return undefined;
  const unit = 1024 ** Math.max(0, Math.floor(Math.log(v) / Math.log(1024)));
  const steps = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
  return unit * steps.find((k) => v <= k * unit);
}

function chart(id, leg, series, opts) {
  lineChart($(id), series, { points: slots(), leftLabel: span(), ...opts });
  legend($(leg), series);
}

function deviceSeries(key, scale = 1) {
  const devs = [...new Set(points.flatMap((p) => Object.keys(p[key] || {})))].sort();
  return devs.map((d, i) => ({ name: `device ${d}`, color: COLORS[i % COLORS.length], values: col((p) => (p[key] && p[key][d] != null ? p[key][d] * scale : null)), area: devs.length === 1 }));
}

function draw() {
  const L = last();
  // Throughput
  chart('chart-qps', 'legend-qps', [
    { name: 'requests/s', color: COLORS[0], values: col('qps'), area: true },
    { name: 'completed jobs/s', color: COLORS[3], values: col('jobps') },
    { name: 'errors/s', color: COLORS[1], values: col('errps') },
  ], { format: (v) => fmtNum(v) });
  setNow('qps-now', nowText(fmtNum(L.qps), 'req/s'));

  // Latency
  chart('chart-lat', 'legend-lat', [
    { name: 'p50', color: COLORS[0], values: col('p50') },
    { name: 'p90', color: COLORS[2], values: col('p90') },
    { name: 'p99', color: COLORS[1], values: col('p99') },
  ], { format: fmtSecs, empty: 'no requests on this route yet' });
  setNow('lat-now', nowText(L.p99 != null ? fmtSecs(L.p99) : '–', 'p99'));
  const lt = L.latTotal;
  const rows = lt ? [['since start: p50', fmtSecs(lt.p50)], ['p90', fmtSecs(lt.p90)], ['p99', fmtSecs(lt.p99)], ['mean', fmtSecs(lt.mean)], ['requests', String(lt.count)]]
    : [['since start', 'no requests yet']];
  fillKv('lat-total', rows);

  // Stages
  const stages = [...new Set(points.flatMap((p) => Object.keys(p.stages || {})))];
  const order = ['queue', 'decode', 'infer', 'encode'];
  stages.sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  chart('chart-stage', 'legend-stage', stages.map((s, i) => ({ name: `${s} (mean)`, color: STAGE_COLORS[s] || COLORS[i % COLORS.length], values: col((p) => p.stages?.[s] ?? null) })),
    { format: fmtSecs, empty: 'no jobs yet' });
  const inf = L.stages?.infer;
  setNow('stage-now', nowText(inf != null ? fmtSecs(inf) : '–', 'infer'));

  // Queue: what waits where (the serving core adds pending requests and the CPU queue).
  const qs = [];
  if (L.pending != null) qs.push({ name: 'pending requests', color: COLORS[4], values: col('pending'), area: true });
  qs.push({ name: L.pending != null ? 'device queue' : 'queued', color: COLORS[2], values: col('queue'), area: L.pending == null });
  if (L.cpuQueue != null) qs.push({ name: 'CPU queue', color: COLORS[5], values: col('cpuQueue') });
  qs.push({ name: 'in flight', color: COLORS[0], values: col('inflight') });
  qs.push({ name: L.pending != null ? 'capacity per priority' : 'capacity', color: '#5a6170', values: col('capacity'), dash: true });
  const qmax = Math.max(4, ...qs.flatMap((x) => x.values).filter((v) => v != null));
  chart('chart-queue', 'legend-queue', qs, { format: (v) => fmtNum(v, 0), max: niceInt(qmax) });
  const waiting = L.pending ?? L.queue;
  setNow('queue-now', nowText(waiting != null ? String(waiting) : '–',
    `${L.pending != null ? 'pending' : 'queued'} · ${L.inflight ?? '–'} running / ${L.workers ?? '–'} workers`));

  // Batch size
  if (!L.hasBatch) {
    na('batch-now', 'chart-batch', 'legend-batch', 'not reported by this server');
    $('batch-note').textContent = 'Shown when the server exports pixserve_batch_size (dynamic batching).';
  } else {
    chart('chart-batch', 'legend-batch', [
      { name: 'mean batch', color: COLORS[4], values: col('batch'), area: true },
      { name: 'largest', color: COLORS[2], values: col('batchMax'), dash: true },
    ], { format: (v) => fmtNum(v), empty: 'no batches yet' });
    setNow('batch-now', nowText(L.batch != null ? fmtNum(L.batch) : fmtNum(L.batchAll), L.batch != null ? 'mean' : 'mean since start'));
    $('batch-note').textContent = '';
  }

  // GPU
  if (!L.gpu || !Object.keys(L.gpu).length) {
    na('gpu-now', 'chart-gpu', 'legend-gpu', 'no GPU metrics from this server');
  } else {
    chart('chart-gpu', 'legend-gpu', deviceSeries('gpu', 100), { format: (v) => `${v.toFixed(0)}%`, max: 100 });
    const vals = Object.values(L.gpu);
    setNow('gpu-now', nowText(`${(100 * vals.reduce((a, b) => a + b, 0) / vals.length).toFixed(0)}%`, vals.length > 1 ? `mean of ${vals.length}` : ''));
  }
  if (!L.gpuUsed || !Object.keys(L.gpuUsed).length) {
    na('gpumem-now', 'chart-gpumem', 'legend-gpumem', 'no GPU metrics from this server');
  } else {
    const total = L.gpuTotal ? Object.values(L.gpuTotal).reduce((a, b) => a + b, 0) : null;
    const used = Object.values(L.gpuUsed).reduce((a, b) => a + b, 0);
    const maxT = L.gpuTotal ? Math.max(...Object.values(L.gpuTotal)) : undefined;
    chart('chart-gpumem', 'legend-gpumem', deviceSeries('gpuUsed'), { format: fmtBytes, max: maxT ?? bytesMax(col((p) => Math.max(0, ...Object.values(p.gpuUsed || {})))) });
    setNow('gpumem-now', nowText(fmtBytes(used), total ? `of ${fmtBytes(total)}` : 'used'));
  }

  // Memory
  chart('chart-mem', 'legend-mem', [{ name: 'resident memory', color: COLORS[3], values: col('rss'), area: true }], { format: fmtBytes, max: bytesMax(col('rss')) });
  setNow('mem-now', nowText(fmtBytes(L.rss), L.fds != null ? `· ${L.fds} fds` : ''));

  // Totals
  const t = [['uptime', fmtDuration(L.uptime)], ['ready', L.ready ? 'yes' : 'no'], ['requests', String(L.requests ?? '–')]];
  if (L.asyncJobs != null) t.push(['async jobs held', String(L.asyncJobs)]);
  for (const [k, v] of Object.entries(L.jobs || {})) t.push([`jobs ${k}`, String(v)]);
  for (const [k, v] of Object.entries(L.errors || {})) t.push([`errors ${k}`, String(v)]);
  fillKv('totals', t);

  // Route choices follow what the server has seen.
  const sel = $('lat-route');
  const have = new Set([...sel.options].map((o) => o.value));
  for (const r of L.routes || []) if (!have.has(r)) sel.append(new Option(r, r));
}

/** A y-axis top for small counts: 4, 8, 12, 16, 20, 40, 80, ... */
function niceInt(v) {
  if (v <= 20) return Math.ceil(v / 4) * 4;
  let t = 20;
  while (t < v) t *= 2;
  return t;
}

function fillKv(id, rows) {
  $(id).replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    return [dt, dd];
  }));
}

// -------------------------------------------------------------- polling

function status(text, bad = false) {
  const s = $('dash-status');
  s.textContent = text;
  s.classList.toggle('bad', bad);
}

async function poll() {
  timer = 0;
  const t = performance.now();
  try {
    const r = await fetch('/metrics', { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const m = M.parsePrometheus(await r.text());
    if (!m.has('pixserve_requests_total') && !m.has('pixserve_uptime_seconds'))
      throw new Error('the answer is not pixserve metrics');
    const p = sample(m, t);
    prev = { t, m };
    points.push(p);
    polls++;
    failures = 0;
    status(`updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    failures++;
    points.push({ t, gap: true });
    status(`cannot read /metrics: ${e.message || e}${failures > 1 ? ` (${failures} failures in a row)` : ''}`, true);
  }
  while (points.length > POINTS) points.shift();
  draw();
  schedule();
}

function schedule() {
  if (paused || timer) return;
  timer = setTimeout(poll, Number($('interval').value) || 1000);
}

$('pause').addEventListener('click', () => {
  paused = !paused;
  $('pause').setAttribute('aria-pressed', String(paused));
  $('pause').textContent = paused ? 'Resume' : 'Pause';
  if (paused) { clearTimeout(timer); timer = 0; status('paused'); } else poll();
});
$('interval').addEventListener('change', () => { clearTimeout(timer); timer = 0; schedule(); });
$('lat-route').addEventListener('change', () => { for (const p of points) { p.p50 = p.p90 = p.p99 = null; } });
window.addEventListener('resize', () => { if (points.length) draw(); });

// For the browser tests and the console.
window.pixserveDashboard = { get polls() { return polls; }, get last() { return last(); }, get failures() { return failures; } };

poll();
