// metrics.js — reading pixserve's /metrics (Prometheus text format 0.0.4) in
// the browser: a parser, label filters, histogram merging and deltas, and
// quantiles from buckets the way PromQL's histogram_quantile computes them.

/**
 * Parses exposition text into a Map: metric name → [{labels, value}].
 * Comments (# HELP / # TYPE) are kept as types in map.types. Lines that do
 * not parse are skipped (a monitoring page must not die on one odd line).
 */
export function parsePrometheus(text) {
  const out = new Map();
  out.types = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line[0] === '#') {
      const m = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (m) out.types.set(m[1], m[2]);
      continue;
    }
    const s = parseSample(line);
    if (!s) continue;
    if (!out.has(s.name)) out.set(s.name, []);
    out.get(s.name).push({ labels: s.labels, value: s.value });
  }
  return out;
}

function parseValue(v) {
  if (v === '+Inf' || v === 'Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  const n = Number(v);
  return v !== '' && !isNaN(n) ? n : null;
}

function parseSample(line) {
  const m = /^([A-Za-z_:][A-Za-z0-9_:]*)/.exec(line);
  if (!m) return null;
  const name = m[1];
  let i = name.length;
  const labels = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') { i++; break; }
      const lm = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"/.exec(line.slice(i));
      if (!lm) return null;
      i += lm[0].length;
      let v = '';
      for (;;) {
        const ch = line[i++];
        if (ch === undefined) return null;
        if (ch === '"') break;
        if (ch === '\\') {
          const e = line[i++];
          v += e === 'n' ? '\n' : e;
        } else v += ch;
      }
      labels[lm[1]] = v;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  const value = parseValue(rest[0] ?? '');
  if (value === null) return null;
  return { name, labels, value };
}

/** Whether labels match a filter: {key: value | RegExp | (v) => bool}. */
export function matches(labels, filter = {}) {
  for (const [k, want] of Object.entries(filter)) {
    const v = labels[k];
    if (typeof want === 'function') { if (!want(v)) return false; }
    else if (want instanceof RegExp) { if (v === undefined || !want.test(v)) return false; }
    else if (v !== want) return false;
  }
  return true;
}

/** Whether a metric is present at all. */
export function has(m, name) { return m.has(name) && m.get(name).length > 0; }

/** Sum of the samples of `name` whose labels match (null when the metric is absent). */
export function sum(m, name, filter) {
  const s = m.get(name);
  if (!s) return null;
  let t = 0;
  for (const x of s) if (matches(x.labels, filter)) t += x.value;
  return t;
}

/** Samples of `name` grouped by one label: {labelValue: summed value}. */
export function byLabel(m, name, label, filter) {
  const out = {};
  for (const x of m.get(name) || []) {
    if (!matches(x.labels, filter)) continue;
    const k = x.labels[label] ?? '';
    out[k] = (out[k] || 0) + x.value;
  }
  return out;
}

/**
 * A histogram (name_bucket/_sum/_count) summed over the label sets that
 * match: {buckets: [[le, cumulativeCount], ...] sorted, +Inf last, sum, count},
 * or null when absent.
 */
export function histogram(m, name, filter) {
  const b = m.get(`${name}_bucket`);
  if (!b) return null;
  const byLe = new Map();
  for (const x of b) {
    if (!matches(x.labels, filter)) continue;
    const le = parseValue(x.labels.le ?? '');
    if (le === null) continue;
    byLe.set(le, (byLe.get(le) || 0) + x.value);
  }
  const buckets = [...byLe.entries()].sort((a, c) => a[0] - c[0]);
  return { buckets, sum: sum(m, `${name}_sum`, filter) ?? 0, count: sum(m, `${name}_count`, filter) ?? 0 };
}

/**
 * What happened between two scrapes: cur − prev per bucket, sum and count.
 * A counter that went down (server restarted) means cur is all there is.
 */
export function histDelta(cur, prev) {
  if (!cur) return null;
  if (!prev || cur.count < prev.count) return cur;
  const p = new Map(prev.buckets);
  return {
    buckets: cur.buckets.map(([le, c]) => [le, Math.max(0, c - (p.get(le) || 0))]),
    sum: cur.sum - prev.sum,
    count: cur.count - prev.count,
  };
}

/**
 * The q-quantile (0..1) of a histogram, interpolating linearly inside the
 * bucket (PromQL histogram_quantile): null with no observations; when it
 * falls in the +Inf bucket, the highest finite bound.
 */
export function quantile(h, q) {
  if (!h || !h.buckets.length) return null;
  const total = h.buckets[h.buckets.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0, prevCount = 0;
  for (const [le, c] of h.buckets) {
    if (c >= rank) {
      if (le === Infinity) return prevLe;
      if (c === prevCount) return le;
      return prevLe + (le - prevLe) * ((rank - prevCount) / (c - prevCount));
    }
    prevLe = le; prevCount = c;
  }
  return prevLe;
}

/** Per-second rate of a counter between two readings (null if unknown). */
export function rate(cur, prev, seconds) {
  if (cur == null || prev == null || !(seconds > 0)) return null;
  const d = cur >= prev ? cur - prev : cur; // reset: count from zero
  return d / seconds;
}
