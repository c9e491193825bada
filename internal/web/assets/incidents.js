// Incidents: open alerts with their deadlines counting down, escalation step and
// ack/resolve buttons; recently resolved ones; silences (with a form to add one);
// maintenance windows; notification deliveries. Writes need an operator token; the
// API's refusal is shown as it is.
import { api } from './api.js';
import { h, badge, ago, fmtTime, countdown, tickCountdowns } from './util.js';

export const name = 'incidents';

export function mount(root, _params, { showBanner }) {
  root.innerHTML = `<div id="incidents">
    <div class="panel"><h2>Open incidents</h2><div class="table-wrap" id="open"><p class="muted">Loading…</p></div></div>
    <div class="panel"><h2>Silences</h2>
      <form class="form" id="silence-form">
        <label>Matchers<input class="wide" name="matchers" placeholder="target=tcp://db:5432, service=~orders.*" required></label>
        <label>For<select name="duration"><option>1h</option><option>2h</option><option>4h</option><option>12h</option><option>24h</option><option>168h</option></select></label>
        <label>Why<input name="comment" placeholder="migration, ticket…" required></label>
        <button class="primary" type="submit">Silence</button>
      </form>
      <div class="table-wrap" id="silences"></div></div>
    <div class="panel"><h2>Maintenance windows</h2><div class="table-wrap" id="windows"></div></div>
    <div class="panel"><h2>Recently resolved</h2><div class="table-wrap" id="resolved"></div></div>
    <div class="panel"><h2>Notifications (last 24 h)</h2><div class="table-wrap" id="deliveries"></div></div></div>`;
  let alive = true;
  let timer = 0;
  const section = (id) => root.querySelector('#' + id);
  const fail = (id, e) => { if (alive) section(id).innerHTML = `<p class="muted">${h(e.message)}</p>`; };

  async function loadOpen() {
    try {
      const { alerts } = await api('/alerts?state=open');
      if (!alive) return;
      section('open').innerHTML = alerts.length ? `<table><thead><tr><th>sev</th><th>state</th><th>target</th><th>what</th>
        <th class="hide-narrow">since</th><th>ack within</th><th class="hide-narrow">step</th><th class="hide-narrow">told</th><th></th></tr></thead><tbody>` +
        alerts.map((a) => `<tr data-id="${h(a.id)}"><td>${badge(a.severity)}</td><td>${badge(a.state)}${a.muted_by ? `<br><span class="muted">${h(a.muted_by)}</span>` : ''}</td>
          <td><a href="#/target/${encodeURIComponent(a.target)}">${h(a.target)}</a></td><td class="msg">${h(a.summary)}${a.acked_by ? `<br><span class="muted">acknowledged by ${h(a.acked_by)} ${h(ago(a.acked_at))}</span>` : ''}</td>
          <td class="hide-narrow">${h(ago(a.starts_at))}</td><td>${a.state === 'acknowledged' || a.state === 'silenced' ? '–' : countdown(a.deadline)}</td>
          <td class="hide-narrow num">${a.escalation_step}</td><td class="hide-narrow">${h((a.told || []).join(', '))}</td>
          <td class="actions">${a.state === 'firing' || a.state === 'flapping' ? `<button type="button" data-act="ack" data-id="${h(a.id)}">Ack</button> ` : ''}<button type="button" class="danger" data-act="resolve" data-id="${h(a.id)}">Resolve</button></td></tr>`).join('') +
        '</tbody></table>' : '<p class="muted">Nothing open. All quiet.</p>';
    } catch (e) { fail('open', e); }
  }

  async function loadResolved() {
    try {
      const { alerts } = await api('/alerts?state=resolved&limit=50');
      if (!alive) return;
      section('resolved').innerHTML = alerts.length ? `<table><thead><tr><th>sev</th><th>target</th><th>what</th><th>resolved</th><th>by</th></tr></thead><tbody>` +
        alerts.map((a) => `<tr><td>${badge(a.severity)}</td><td><a href="#/target/${encodeURIComponent(a.target)}">${h(a.target)}</a></td><td class="msg">${h(a.summary)}</td>
          <td>${h(ago(a.resolved_at))}</td><td>${h(a.resolved_by || '')}</td></tr>`).join('') + '</tbody></table>' : '<p class="muted">None retained.</p>';
    } catch (e) { fail('resolved', e); }
  }

  async function loadSilences() {
    try {
      const { silences } = await api('/silences');
      if (!alive) return;
      const now = Date.now();
      section('silences').innerHTML = silences.length ? `<table><thead><tr><th>matchers</th><th>why</th><th>by</th><th>ends</th><th></th></tr></thead><tbody>` +
        silences.map((s) => {
          const active = Date.parse(s.ends_at) > now;
          return `<tr><td>${s.matchers.map((m) => `<span class="label">${h(m.name + m.op + m.value)}</span>`).join(' ')}</td><td class="msg">${h(s.comment)}</td>
            <td>${h(s.author)}</td><td>${active ? countdown(s.ends_at) : 'ended ' + h(ago(s.ends_at)) + (s.expired_by ? ' by ' + h(s.expired_by) : '')}</td>
            <td class="actions">${active ? `<button type="button" data-act="expire" data-id="${h(s.id)}">Expire</button>` : ''}</td></tr>`;
        }).join('') + '</tbody></table>' : '<p class="muted">No silences.</p>';
    } catch (e) { fail('silences', e); }
  }

  async function loadWindows() {
    try {
      const { windows } = await api('/maintenance');
      if (!alive) return;
      section('windows').innerHTML = windows.length ? `<table><thead><tr><th>name</th><th>when</th><th>matches</th><th>now</th></tr></thead><tbody>` +
        windows.map((w) => `<tr><td>${h(w.name)}</td><td>${h(w.schedule || `${fmtTime(w.start)} – ${fmtTime(w.end)}`)}</td>
          <td>${(w.matchers || []).map((m) => `<span class="label">${h(m)}</span>`).join(' ') || 'every alert'}</td>
          <td>${w.active ? badge('silenced', 'open until ' + fmtTime(w.until)) : w.from ? 'next ' + h(fmtTime(w.from)) : 'over'}</td></tr>`).join('') +
        '</tbody></table>' : '<p class="muted">No maintenance windows configured.</p>';
    } catch (e) { fail('windows', e); }
  }

  async function loadDeliveries() {
    try {
      const since = Math.floor(Date.now() / 1000) - 86400;
      const { deliveries } = await api(`/deliveries?since=${since}&limit=200`);
      if (!alive) return;
      const rows = deliveries.slice(-50).reverse();
      section('deliveries').innerHTML = rows.length ? `<table><thead><tr><th>when</th><th>receiver</th><th>kind</th><th>state</th><th class="num">attempts</th><th>error</th></tr></thead><tbody>` +
        rows.map((d) => `<tr><td>${h(fmtTime(d.enqueued_at))}</td><td>${h(d.receiver)} <span class="muted">${h(d.provider)}</span></td><td>${h(d.kind)}</td>
          <td>${badge(d.state === 'delivered' ? 'ok' : d.state === 'pending' ? 'pending' : 'down', d.state)}</td><td class="num">${d.attempts}</td><td class="msg">${h(d.last_error || '')}</td></tr>`).join('') +
        '</tbody></table>' : '<p class="muted">No notifications in the last 24 hours.</p>';
    } catch (e) { fail('deliveries', e); }
  }

  const loadAll = () => Promise.all([loadOpen(), loadSilences(), loadWindows(), loadResolved(), loadDeliveries()]);

  // One listener for every button on the page, on an element that goes with the page.
  root.querySelector('#incidents').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-act]');
    if (!b) return;
    const id = b.dataset.id, act = b.dataset.act;
    b.disabled = true;
    try {
      if (act === 'expire') await api(`/silences/${encodeURIComponent(id)}/expire`, { method: 'POST' });
      else await api(`/alerts/${encodeURIComponent(id)}/${act}`, { method: 'POST', body: {} });
      showBanner(act === 'ack' ? 'Acknowledged.' : act === 'resolve' ? 'Resolved.' : 'Silence expired.', true);
      await loadAll();
    } catch (err) {
      showBanner(refusal(err));
      b.disabled = false;
    }
  });

  root.querySelector('#silence-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    let matchers;
    try {
      matchers = parseMatchers(f.matchers.value);
    } catch (err) { showBanner(err.message); return; }
    try {
      await api('/silences', { method: 'POST', body: { matchers, comment: f.comment.value, duration: f.duration.value } });
      showBanner('Silence created.', true);
      f.reset();
      await loadAll();
    } catch (err) { showBanner(refusal(err)); }
  });

  loadAll();
  const tick = setInterval(() => tickCountdowns(root), 1000);
  return {
    update(type) {
      if (type !== 'alert') return;
      clearTimeout(timer);
      timer = setTimeout(() => { loadOpen(); loadResolved(); }, 300);
    },
    unmount() { alive = false; clearInterval(tick); clearTimeout(timer); showBanner(''); },
  };
}

// refusal words an API error for the banner, with what to do about it.
function refusal(err) {
  if (err.status === 401) return `${err.message}. Enter an ${err.requiredRole || 'operator'} token at the top right.`;
  if (err.status === 403) return `Refused: ${err.message}.`;
  return err.field ? `${err.field}: ${err.message}` : err.message;
}

// parseMatchers reads "a=b, c=~d" into the API's matcher objects.
export function parseMatchers(text) {
  const out = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?$/.exec(part);
    if (!m) throw new Error(`matcher "${part}": want name=value, name!=value, name=~regexp or name!~regexp`);
    out.push({ name: m[1], op: m[2], value: m[3] });
  }
  if (!out.length) throw new Error('give at least one matcher, e.g. target=tcp://db:5432');
  return out;
}
