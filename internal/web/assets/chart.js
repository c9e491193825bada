// A latency chart in hand-written SVG: p50/p95/p99 lines, the learned band of the median
// when the anomaly detector has one, shaded incidents, and an availability strip. About a hundred lines do what the dashboard needs, with no
// library to vendor or update.
import { h, fmtDuration } from './util.js';

const NS = 'http://www.w3.org/2000/svg';

function niceMax(v) {
  if (v <= 0) return 0.001;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function timeLabel(ms, span) {
  const d = new Date(ms);
  if (span > 2 * 86400e3) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }) + ' ' + d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

// latencyChart returns an <svg> for a history answer of the API.
export function latencyChart(hist, width) {
  const W = Math.max(320, Math.round(width)), H = 260;
  const m = { l: 56, r: 12, t: 18, b: 44 };
  const from = Date.parse(hist.from), to = Date.parse(hist.to);
  const span = to - from;
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const x = (t) => m.l + ((t - from) / span) * pw;
  const keys = hist.quantiles === 'exact' ? ['p50', 'p95', 'p99'] : ['p95'];
  let max = 0;
  for (const p of hist.points) for (const k of keys) max = Math.max(max, p[k]);
  // The band widens the scale, but by no more than half of the lines' own height.
  const band = hist.band || [];
  const lineMax = max;
  for (const b of band) max = Math.max(max, Math.min(b.upper, lineMax * 1.5));
  max = niceMax(max * 1.1);
  const y = (v) => m.t + ph - (v / max) * ph;

  const parts = [];
  // Grid and axes.
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4, yy = y(v);
    parts.push(`<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${yy}" y2="${yy}"/>`);
    parts.push(`<text class="axis" x="${m.l - 6}" y="${yy + 4}" text-anchor="end">${h(fmtDuration(v))}</text>`);
  }
  const ticks = Math.max(2, Math.floor(pw / 110));
  for (let i = 0; i <= ticks; i++) {
    const t = from + (span * i) / ticks;
    parts.push(`<text class="axis" x="${x(t)}" y="${H - m.b + 16}" text-anchor="${i === 0 ? 'start' : i === ticks ? 'end' : 'middle'}">${h(timeLabel(t, span))}</text>`);
  }
  // The learned band of the median (p50): what is usual for each time of day and week.
  if (band.length) {
    const cy = (v) => y(Math.min(v, max)).toFixed(1);
    const up = band.map((b) => `${x(Date.parse(b.time)).toFixed(1)},${cy(b.upper)}`);
    const low = band.map((b) => `${x(Date.parse(b.time)).toFixed(1)},${cy(b.lower)}`).reverse();
    parts.push(`<path class="band" d="M${up.join('L')}L${low.join('L')}Z"><title>learned band of the median latency for each time of day</title></path>`);
  }
  // Incidents: a shaded band from start to resolution (or the end), a line at the start.
  for (const inc of hist.incidents) {
    const s = Math.max(from, Date.parse(inc.starts_at));
    const e = inc.resolved_at ? Math.min(to, Date.parse(inc.resolved_at)) : to;
    const x0 = x(s), x1 = Math.max(x(e), x0 + 2);
    parts.push(`<g class="marker"><title>${h(inc.severity + ' ' + inc.state + ': ' + inc.summary)}</title>` +
      `<rect class="incident" x="${x0}" y="${m.t}" width="${x1 - x0}" height="${ph}"/>` +
      `<line class="incident-start" x1="${x0}" x2="${x0}" y1="${m.t}" y2="${m.t + ph}"/>` +
      `<text class="incident-label" x="${x0 + 3}" y="${m.t + 11}">${h(inc.severity)}</text></g>`);
  }
  // Lines, broken where a bucket had no successful result or is missing.
  const step = hist.step_seconds * 1000;
  for (const k of keys) {
    let d = '', prev = null;
    for (const p of hist.points) {
      const t = Date.parse(p.time);
      const ok = p.count > p.failures;
      if (!ok) { prev = null; continue; }
      const cmd = prev !== null && t - prev <= step * 1.5 ? 'L' : 'M';
      d += `${cmd}${x(t + step / 2).toFixed(1)},${y(p[k]).toFixed(1)}`;
      prev = t;
    }
    parts.push(`<path class="line ${k}" d="${d}"/>`);
  }
  // Availability strip under the plot.
  const sy = H - m.b + 24;
  for (const p of hist.points) {
    const t = Date.parse(p.time);
    const cls = p.availability >= 0.999 ? 'avail-ok' : p.availability >= 0.9 ? 'avail-warn' : 'avail-bad';
    const x0 = x(t), x1 = x(Math.min(to, t + step));
    parts.push(`<rect class="${cls}" x="${x0}" y="${sy}" width="${Math.max(1, x1 - x0)}" height="8"><title>${h((p.availability * 100).toFixed(2))}% available</title></rect>`);
  }
  parts.push(`<text class="axis" x="${m.l - 6}" y="${sy + 8}" text-anchor="end">avail.</text>`);
  if (!hist.points.length) parts.push(`<text class="axis" x="${W / 2}" y="${m.t + ph / 2}" text-anchor="middle">No results in this span</text>`);

  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'latency percentiles over time');
  svg.innerHTML = parts.join('');
  return svg;
}
