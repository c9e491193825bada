// Incidents: open alerts with their deadlines counting down, escalation step and
// ack/resolve buttons, grouped by host, service or alert name, filtered and
// acknowledged in bulk; the notes on the public status page; recently resolved ones;
// silences (with a form to add one); maintenance windows; notification deliveries.
// Writes need an operator token: a viewer sees no write buttons, and any refusal of
// the API is shown as it is. Resolving the alert of a learned listener that is gone
// asks whether to forget the listener, with the API's hint.
import { api } from './api.js';
import { h, badge, ago, fmtTime, countdown, tickCountdowns, hostOf, refusal, forgetCommand } from './util.js';

export const name = 'incidents';

// The grouping and filter of open incidents survive navigation.
const prefs = { group: 'none', q: '' };

// groupOf returns the group of an alert: its host, its service or its alert name.
function groupOf(a, by) {
  const l = a.labels || {};
  switch (by) {
    case 'host': return l.host || hostOf(a.target);
    case 'service': return l.service || '(no service label)';
    case 'alertname': return l.alertname || a.rule || a.class || '(unnamed)';
  }
  return '';
}

const ackable = (a) => a.state === 'firing' || a.state === 'flapping';

export function mount(root, _params, { store, showBanner, canWrite }) {
  const write = canWrite();
  // The services the targets name, offered in the note form.
  const services = [...new Set([...store.targets.values()].map((t) => (t.labels || {}).service).filter(Boolean))].sort();
  root.innerHTML = `<div id="incidents">
    <div class="panel forget-offer" id="forget-offer" hidden></div>
    <div class="panel"><h2>Open incidents</h2>
      <div class="toolbar" id="open-tools">
        <input type="search" id="open-q" placeholder="Filter: target, summary, label, severity" value="${h(prefs.q)}" aria-label="Filter incidents">
        <label class="muted">Group by <select id="open-group"><option value="none">nothing</option><option value="host">host</option>
          <option value="service">service</option><option value="alertname">alert name</option></select></label>
        ${write ? '<button type="button" class="primary" id="bulk-ack" disabled>Ack selected</button>' : '<span class="muted" id="read-only">read-only: enter an operator token to acknowledge or resolve</span>'}
      </div>
      <div class="table-wrap" id="open"><p class="muted">Loading…</p></div></div>
    ${write ? `<div class="panel"><h2>Status page notes</h2>
      <form class="form" id="note-form">
        <label>Service<input name="service" placeholder="empty: the whole page" list="note-services"></label>
        <datalist id="note-services">${services.map((v) => `<option value="${h(v)}">`).join('')}</datalist>
        <label>State<select name="state"><option>investigating</option><option>identified</option><option>monitoring</option><option>resolved</option></select></label>
        <label>Note<input class="wide" name="text" placeholder="What customers should know" required maxlength="2000"></label>
        <button class="primary" type="submit">Post</button>
      </form>
      <div class="table-wrap" id="notes"></div></div>` : '<div class="panel"><h2>Status page notes</h2><div class="table-wrap" id="notes"></div></div>'}
    <div class="panel"><h2>Silences</h2>
      ${write ? `<form class="form" id="silence-form">
        <label>Matchers<input class="wide" name="matchers" placeholder="target=tcp://db:5432, service=~orders.*" required></label>
        <label>For<select name="duration"><option>1h</option><option>2h</option><option>4h</option><option>12h</option><option>24h</option><option>168h</option></select></label>
        <label>Why<input name="comment" placeholder="migration, ticket…" required></label>
        <button class="primary" type="submit">Silence</button>
      </form>` : ''}
      <div class="table-wrap" id="silences"></div></div>
    <div class="panel"><h2>Maintenance windows</h2><div class="table-wrap" id="windows"></div></div>
    <div class="panel"><h2>Recently resolved</h2><div class="table-wrap" id="resolved"></div></div>
    <div class="panel"><h2>Notifications (last 24 h)</h2><div class="table-wrap" id="deliveries"></div></div></div>`;
  let alive = true;
  let timer = 0;
  let open = []; // the open alerts as last loaded
  const selected = new Set(); // IDs ticked for a bulk ack
  const section = (id) => root.querySelector('#' + id);
  const fail = (id, e) => { if (alive) section(id).innerHTML = `<p class="muted">${h(e.message)}</p>`; };
  const groupSel = section('open-group');
  groupSel.value = prefs.group;
  const bulk = section('bulk-ack');

  function matchesQ(a) {
    if (!prefs.q) return true;
    const s = prefs.q.toLowerCase();
    return [a.target, a.summary, a.severity, a.state, a.rule, ...Object.entries(a.labels || {}).map(([k, v]) => k + '=' + v)]
      .some((x) => (x || '').toLowerCase().includes(s));
  }

  function row(a) {
    return `<tr data-id="${h(a.id)}">${write ? `<td class="pick">${ackable(a) ? `<input type="checkbox" data-pick="${h(a.id)}" aria-label="select ${h(a.id)}"${selected.has(a.id) ? ' checked' : ''}>` : ''}</td>` : ''}
      <td>${badge(a.severity)}</td><td>${badge(a.state)}${a.muted_by ? `<br><span class="muted">${h(a.muted_by)}</span>` : ''}</td>
      <td><a href="#/target/${encodeURIComponent(a.target)}">${h(a.target)}</a></td><td class="msg">${h(a.summary)}${a.diagnosis ? `<br><span class="diagnosis">Diagnosis: ${h(a.diagnosis)}</span>` : ''}${a.impact ? `<br><span class="muted">Impact: ${h(a.impact)}</span>` : ''}${a.acked_by ? `<br><span class="muted">acknowledged by ${h(a.acked_by)} ${h(ago(a.acked_at))}</span>` : ''}</td>
      <td class="hide-narrow">${h(ago(a.starts_at))}</td><td>${a.state === 'acknowledged' || a.state === 'silenced' ? '–' : countdown(a.deadline)}</td>
      <td class="hide-narrow num">${a.escalation_step}</td><td class="hide-narrow">${h((a.told || []).join(', '))}</td>
      ${write ? `<td class="actions">${ackable(a) ? `<button type="button" data-act="ack" data-id="${h(a.id)}">Ack</button> ` : ''}<button type="button" class="danger" data-act="resolve" data-id="${h(a.id)}">Resolve</button></td>` : ''}</tr>`;
  }

  function drawOpen() {
    const shown = open.filter(matchesQ);
    for (const id of [...selected]) if (!shown.some((a) => a.id === id && ackable(a))) selected.delete(id);
    if (bulk) {
      bulk.disabled = selected.size === 0;
      bulk.textContent = selected.size ? `Ack selected (${selected.size})` : 'Ack selected';
    }
    const el = section('open');
    if (!open.length) { el.innerHTML = '<p class="muted">Nothing open. All quiet.</p>'; el.dataset.rendered = '0'; return; }
    if (!shown.length) { el.innerHTML = '<p class="muted">No open incident matches the filter.</p>'; el.dataset.rendered = '0'; return; }
    const cols = 8 + (write ? 2 : 0);
    const head = `<thead><tr>${write ? '<th class="pick"><input type="checkbox" data-pick-all aria-label="select all"></th>' : ''}<th>sev</th><th>state</th><th>target</th><th>what</th>
      <th class="hide-narrow">since</th><th>ack within</th><th class="hide-narrow">step</th><th class="hide-narrow">told</th>${write ? '<th></th>' : ''}</tr></thead>`;
    let body = '';
    if (prefs.group === 'none') {
      body = '<tbody>' + shown.map(row).join('') + '</tbody>';
    } else {
      const groups = new Map();
      for (const a of shown) {
        const k = groupOf(a, prefs.group);
        if (!groups.has(k)) groups.set(k, []);
        groups.get(k).push(a);
      }
      // Groups in the order of their most urgent alert (the API sends the most urgent first).
      for (const [k, as] of groups) {
        const sev = {};
        for (const a of as) sev[a.severity] = (sev[a.severity] || 0) + 1;
        const counts = Object.keys(sev).sort().map((s) => `${badge(s)} ${sev[s]}`).join(' ');
        const picks = as.filter(ackable).length;
        body += `<tbody class="igroup" data-group="${h(k)}"><tr class="ghead"><th colspan="${cols}">` +
          `${write && picks ? `<input type="checkbox" data-pick-group="${h(k)}" aria-label="select the group ${h(k)}"> ` : ''}` +
          `<span class="gname">${h(k)}</span> <span class="muted">${as.length} open</span> ${counts}</th></tr>` + as.map(row).join('') + '</tbody>';
      }
    }
    el.innerHTML = `<table>${head}${body}</table>`;
    el.dataset.rendered = String(shown.length);
  }

  async function loadOpen() {
    try {
      const { alerts } = await api('/alerts?state=open');
      if (!alive) return;
      open = alerts;
      drawOpen();
    } catch (e) { fail('open', e); }
  }

  async function loadNotes() {
    try {
      const { notes } = await api('/status/notes');
      if (!alive) return;
      section('notes').innerHTML = notes.length ? `<table><thead><tr><th>posted</th><th>service</th><th>state</th><th>note</th><th>by</th>${write ? '<th></th>' : ''}</tr></thead><tbody>` +
        notes.map((n) => `<tr data-note="${h(n.id)}"><td>${h(fmtTime(n.created_at))}</td><td>${h(n.service || 'whole page')}</td><td>${badge(n.state === 'resolved' ? 'ok' : 'pending', n.state)}</td>
          <td class="msg">${h(n.text)}</td><td>${h(n.author)}</td>${write ? `<td class="actions"><button type="button" class="danger" data-act="delete-note" data-id="${h(n.id)}">Delete</button></td>` : ''}</tr>`).join('') +
        '</tbody></table>' : '<p class="muted">No notes on the status page.</p>';
    } catch (e) {
      if (alive) section('notes').innerHTML = `<p class="muted">${h(e.status === 501 ? 'This server has no status page notes.' : e.message)}</p>`;
    }
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
            <td class="actions">${active && write ? `<button type="button" data-act="expire" data-id="${h(s.id)}">Expire</button>` : ''}</td></tr>`;
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

  // offerForget asks, after a resolve, whether to forget the learned listener the
  // incident was about, when the API's hint says it is one that is gone; null hides it.
  const offerEl = section('forget-offer');
  function offerForget(inc) {
    const addr = forgetCommand(inc?.hint);
    offerEl.hidden = !inc?.hint;
    if (!inc?.hint) { offerEl.innerHTML = ''; return; }
    offerEl.innerHTML = `<h2>Forget this listener?</h2><p>${h(inc.hint)}</p>
      <p class="muted">Forgotten, it is no longer expected and never pages again; if it listens again it is learned afresh.</p>
      ${addr ? `<button type="button" class="danger" data-act="forget-learned" data-addr="${h(addr)}">Forget ${h(addr)}</button>
      <button type="button" data-act="keep-learned">Keep it</button>` : ''}`;
  }

  const loadAll = () => Promise.all([loadOpen(), loadNotes(), loadSilences(), loadWindows(), loadResolved(), loadDeliveries()]);

  // One listener for every button on the page, on an element that goes with the page.
  root.querySelector('#incidents').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-act]');
    if (!b) return;
    const id = b.dataset.id, act = b.dataset.act;
    if (act === 'keep-learned') { offerForget(null); return; }
    b.disabled = true;
    try {
      if (act === 'forget-learned') {
        await api(`/learned/${encodeURIComponent(b.dataset.addr)}`, { method: 'DELETE' });
        offerForget(null);
        showBanner(`Forgot ${b.dataset.addr}: it is no longer expected and its loss no longer pages.`, true);
        return;
      }
      let inc = null;
      if (act === 'expire') await api(`/silences/${encodeURIComponent(id)}/expire`, { method: 'POST' });
      else if (act === 'delete-note') await api(`/status/notes/${encodeURIComponent(id)}`, { method: 'DELETE' });
      else inc = await api(`/alerts/${encodeURIComponent(id)}/${act}`, { method: 'POST', body: {} });
      showBanner({ ack: 'Acknowledged.', resolve: 'Resolved.', expire: 'Silence expired.', 'delete-note': 'Note deleted.' }[act], true);
      if (act === 'resolve') offerForget(inc);
      await loadAll();
    } catch (err) {
      showBanner(refusal(err));
      b.disabled = false;
    }
  });

  // Selection for the bulk ack: single rows, a whole group, everything shown.
  section('open').addEventListener('change', (e) => {
    const c = e.target;
    const boxes = (sel) => [...section('open').querySelectorAll(sel)];
    if (c.dataset.pick) {
      if (c.checked) selected.add(c.dataset.pick); else selected.delete(c.dataset.pick);
    } else if (c.dataset.pickGroup !== undefined) {
      const body = c.closest('tbody');
      for (const x of body.querySelectorAll('input[data-pick]')) { x.checked = c.checked; if (c.checked) selected.add(x.dataset.pick); else selected.delete(x.dataset.pick); }
    } else if (c.dataset.pickAll !== undefined) {
      for (const x of boxes('input[data-pick]')) { x.checked = c.checked; if (c.checked) selected.add(x.dataset.pick); else selected.delete(x.dataset.pick); }
      for (const x of boxes('input[data-pick-group]')) x.checked = c.checked;
    } else return;
    bulk.disabled = selected.size === 0;
    bulk.textContent = selected.size ? `Ack selected (${selected.size})` : 'Ack selected';
  });

  bulk?.addEventListener('click', async () => {
    const ids = [...selected];
    if (!ids.length) return;
    bulk.disabled = true;
    const results = await Promise.allSettled(ids.map((id) => api(`/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST', body: {} })));
    const failed = results.map((r, i) => [r, ids[i]]).filter(([r]) => r.status === 'rejected');
    selected.clear();
    if (failed.length) showBanner(`Acknowledged ${ids.length - failed.length} of ${ids.length}; ${failed[0][1]}: ${refusal(failed[0][0].reason)}`);
    else showBanner(`Acknowledged ${ids.length}.`, true);
    await loadAll();
  });

  section('open-q').addEventListener('input', (e) => { prefs.q = e.target.value.trim(); drawOpen(); });
  groupSel.addEventListener('change', () => { prefs.group = groupSel.value; drawOpen(); });

  root.querySelector('#note-form')?.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    try {
      await api('/status/notes', { method: 'POST', body: { service: f.service.value.trim(), state: f.state.value, text: f.text.value.trim() } });
      showBanner('Note posted to the status page.', true);
      f.reset();
      await loadNotes();
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
