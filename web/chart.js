// chart.js — a small SVG line chart for the dashboard: a few series over the
// same time axis, gaps where a value is unknown, an auto-scaled y axis with
// round ticks. No dependencies.

const NS = 'http://www.w3.org/2000/svg';
const el = (name, attrs = {}, text) => {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text != null) e.textContent = text;
  return e;
};

/** A "nice" upper bound ≥ v for an axis (1, 2, 2.5, 5 × 10^k). */
export function niceMax(v) {
  if (!(v > 0) || !isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/**
 * Draws into `svg` (replacing its content).
 * series: [{name, color, values: (number|null)[], area?: bool, dash?: bool}]
 * opts: {points: capacity of the x axis, format: (v) => string for ticks,
 *        min: y floor (0), max: fixed y top (else auto), empty: text when no data}
 */
export function lineChart(svg, series, opts = {}) {
  // Drawn in the element's own pixels, so text keeps its shape at any width.
  const W = Math.max(120, Math.round(svg.clientWidth || 400)), H = Math.max(60, Math.round(svg.clientHeight || 130));
  const R = 6, T = 8, B = 16;
  const n = opts.points || Math.max(2, ...series.map((s) => s.values.length));
  const fmt = opts.format || ((v) => String(v));
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const all = series.flatMap((s) => s.values).filter((v) => v != null && isFinite(v));
  const ymin = opts.min ?? 0;
  const ymax = opts.max ?? niceMax(Math.max(...all, ymin > 0 ? ymin : 0) || 1);
  // Room on the left for the widest tick label (about 6 px a character at 10 px).
  const L = 8 + 6 * Math.max(...[0, 1, 2, 3, 4].map((k) => fmt(ymin + ((ymax - ymin) * k) / 4).length));
  const x = (i) => L + ((W - L - R) * i) / Math.max(1, n - 1);
  const y = (v) => T + (H - T - B) * (1 - (v - ymin) / (ymax - ymin || 1));

  const grid = el('g', { class: 'grid' });
  for (let k = 0; k <= 4; k++) {
    const v = ymin + ((ymax - ymin) * k) / 4;
    grid.append(el('line', { x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    grid.append(el('text', { x: L - 4, y: y(v) + 3, 'text-anchor': 'end' }, fmt(v)));
  }
  svg.append(grid);
  const axis = el('g', { class: 'axis' });
  axis.append(el('text', { x: L, y: H - 3 }, opts.leftLabel ?? `${n} samples ago`));
  axis.append(el('text', { x: W - R, y: H - 3, 'text-anchor': 'end' }, 'now'));
  svg.append(axis);

  if (!all.length) {
    svg.append(el('text', { class: 'empty', x: (L + W) / 2, y: H / 2, 'text-anchor': 'middle' }, opts.empty || 'no data yet'));
    return;
  }
  for (const s of series) {
    const off = n - s.values.length; // right-align: the newest point is "now"
    let d = '', area = '', run = [];
    const flush = () => {
      if (!run.length) return;
      d += run.map(([i, v], j) => `${j ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('');
      if (s.area) {
        area += `M${x(run[0][0]).toFixed(1)},${y(ymin)}` +
          run.map(([i, v]) => `L${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('') +
          `L${x(run[run.length - 1][0]).toFixed(1)},${y(ymin)}Z`;
      }
      run = [];
    };
    s.values.forEach((v, i) => {
      if (v == null || !isFinite(v)) flush();
      else run.push([i + off, Math.min(Math.max(v, ymin), ymax)]);
    });
    flush();
    // A lone point between gaps would draw nothing: mark it with a dot.
    s.values.forEach((v, i) => {
      const alone = (j) => j < 0 || j >= s.values.length || s.values[j] == null || !isFinite(s.values[j]);
      if (v != null && isFinite(v) && alone(i - 1) && alone(i + 1))
        svg.append(el('circle', { cx: x(i + off), cy: y(Math.min(Math.max(v, ymin), ymax)), r: 2.5, fill: s.color }));
    });
    if (area) svg.append(el('path', { class: 'area', d: area, fill: s.color }));
    const p = el('path', { class: 'series', d, stroke: s.color });
    if (s.dash) p.setAttribute('stroke-dasharray', '4 3');
    const title = el('title', {}, s.name);
    p.append(title);
    svg.append(p);
  }
}

/** Fills a legend element with the series' names and colours. */
export function legend(div, series) {
  div.replaceChildren(...series.map((s) => {
    const span = document.createElement('span');
    const i = document.createElement('i');
    i.style.background = s.color;
    span.append(i, s.name);
    return span;
  }));
}
