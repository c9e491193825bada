// A target: its state, a latency chart over 1 h, 24 h or 7 d with incident markers,
// where the time of a probe goes (phases), and its latest results.
import { api, targetPath } from './api.js';
import { h, badge, fmtDuration, fmtSpan, fmtTime, ago } from './util.js';
import { latencyChart } from './chart.js';

export const name = 'target';

const ranges = { '1h': 3600, '24h': 86400, '7d': 7 * 86400 };
let range = '1h';

export function mount(root, { id }, { showBanner }) {
  root.innerHTML = `<p><a href="#/">← Overview</a></p><div id="head"><h1>${h(id)}</h1></div>
    <div class="panel">
      <div class="head"><h2>Latency</h2>
        <div class="chips ranges" id="ranges">${Object.keys(ranges).map((r) => `<button type="button" data-r="${r}" class="${r === range ? 'on' : ''}">${r}</button>`).join('')}</div>
        <span class="muted" id="res"></span></div>
      <div id="chart"></div>
      <div class="chart-legend"><span><i class="k-p50"></i>p50</span><span><i class="k-p95"></i>p95</span><span><i class="k-p99"></i>p99</span><span><i class="k-inc"></i>incident</span><span id="band-key" hidden><i class="k-band"></i>learned band (p50)</span></div>
    </div>
    <div class="grid2">
      <div class="panel"><h2>Recent results</h2><div class="table-wrap" id="recent"></div></div>
      <div><div class="panel"><h2>Phases</h2><div id="phases"></div></div>
      <div class="panel"><h2>Open alerts</h2><div id="alerts"></div></div></div>
    </div>`;
  let alive = true;
  let timer = 0;

  async function loadDetail() {
    let d;
    try {
      d = await api(targetPath(id));
    } catch (e) {
      if (alive) root.querySelector('#head').innerHTML = `<h1>${h(id)}</h1><p class="banner">${h(e.message)}</p>`;
      return;
    }
    if (!alive) return;
    const t = d.target;
    const labels = Object.entries(t.labels || {}).map(([k, v]) => `<span class="label">${h(k)}=${h(v)}</span>`).join('');
    root.querySelector('#head').innerHTML = `<div class="head"><h1>${h(t.name || t.id)}</h1>${badge(t.status)}${t.flapping ? badge('flapping') : ''}
      <span class="muted">since ${h(ago(t.since))}</span></div>${t.name ? `<div class="muted">${h(t.id)}</div>` : ''}<div class="labels">${labels}</div>`;
    root.querySelector('#recent').innerHTML = d.recent.length ? `<table><thead><tr><th>time</th><th>class</th><th class="num">duration</th><th class="hide-narrow">address</th><th>message</th></tr></thead><tbody>` +
      d.recent.map((r) => `<tr><td>${h(fmtTime(r.start))}</td><td>${badge(r.class)}</td><td class="num">${h(fmtDuration(r.duration_seconds))}</td>` +
        `<td class="hide-narrow">${h(r.remote_addr || '')}</td><td class="msg">${h(r.error || details(r))}</td></tr>`).join('') + '</tbody></table>'
      : '<p class="muted">No results yet.</p>';
    root.querySelector('#phases').innerHTML = phases(d.recent);
    root.querySelector('#alerts').innerHTML = d.alerts.length ? d.alerts.map((a) =>
      `<p>${badge(a.severity)} ${badge(a.state)} <a href="#/incidents">${h(a.summary)}</a><br><span class="muted">since ${h(ago(a.starts_at))}</span></p>`).join('')
      : '<p class="muted">None.</p>';
  }

  async function loadHistory() {
    const to = Math.floor(Date.now() / 1000), from = to - ranges[range];
    try {
      const hist = await api(`/targets/history?id=${encodeURIComponent(id)}&from=${from}&to=${to}`);
      if (!alive) return;
      const el = root.querySelector('#chart');
      el.textContent = '';
      el.appendChild(latencyChart(hist, el.clientWidth || 800));
      root.querySelector('#band-key').hidden = !(hist.band && hist.band.length);
      root.querySelector('#res').textContent = `${hist.resolution} · step ${fmtSpan(hist.step_seconds * 1000)}${hist.quantiles === 'exact' ? '' : ' · only p95 is kept at this resolution'}`;
    } catch (e) {
      if (alive) root.querySelector('#chart').innerHTML = `<p class="muted">${h(e.message)}</p>`;
    }
  }

  root.querySelector('#ranges').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-r]');
    if (!b) return;
    range = b.dataset.r;
    for (const x of root.querySelectorAll('#ranges button')) x.classList.toggle('on', x === b);
    loadHistory();
  });
  loadDetail();
  loadHistory();
  return {
    update(type, data) {
      if ((type === 'target' && data.id === id) || (type === 'alert' && data.target === id)) {
        clearTimeout(timer);
        timer = setTimeout(() => { loadDetail(); loadHistory(); }, 300);
      }
    },
    unmount() { alive = false; clearTimeout(timer); showBanner(''); },
  };
}

function details(r) {
  const d = r.details || {};
  const parts = Object.entries(d).slice(0, 3).map(([k, v]) => `${k}: ${v}`);
  if (r.http) parts.unshift(`HTTP ${r.http.status}`);
  if (r.capacity) parts.push(`${r.capacity.what} ${r.capacity.used}/${r.capacity.limit}`);
  return parts.join(' · ');
}

// phases shows the last result's phases as a stacked bar and the mean of each phase
// over the recent successful results.
function phases(recent) {
  const last = recent.find((r) => r.phases && Object.keys(r.phases).length);
  if (!last) return '<p class="muted">No phase timings recorded.</p>';
  // Phases in the order a probe goes through them; others after, by name.
  const order = ['dns', 'connect', 'tls', 'request', 'first_byte', 'transfer'];
  const pos = (n) => (order.indexOf(n) + 1 || order.length + 1);
  const names = Object.keys(last.phases).sort((a, b) => pos(a) - pos(b) || (a < b ? -1 : 1));
  const total = names.reduce((s, n) => s + last.phases[n], 0) || 1;
  const sums = {}, counts = {};
  for (const r of recent) {
    if (!r.up || !r.phases) continue;
    for (const [n, v] of Object.entries(r.phases)) { sums[n] = (sums[n] || 0) + v; counts[n] = (counts[n] || 0) + 1; }
  }
  const bar = names.map((n, i) => `<span class="ph-${i % 6}" data-w="${(100 * last.phases[n] / total).toFixed(2)}" title="${h(n)} ${h(fmtDuration(last.phases[n]))}"></span>`).join('');
  const legend = names.map((n, i) => `<span><i class="ph-${i % 6}"></i>${h(n)} ${h(fmtDuration(last.phases[n]))}${counts[n] ? ` <span class="muted">(mean ${h(fmtDuration(sums[n] / counts[n]))})</span>` : ''}</span>`).join('');
  queueMicrotask(() => document.querySelectorAll('.phases span[data-w]').forEach((el) => { el.style.width = el.dataset.w + '%'; }));
  return `<div class="muted">last result, ${h(fmtTime(last.start))}: ${h(fmtDuration(last.duration_seconds))}</div><div class="phases">${bar}</div><div class="phase-legend">${legend}</div>`;
}
