// Security: intrusion detection's state (running, dry run, or a part unavailable
// with the reason), the bans in force with an Unban button each, a form to ban by
// hand that shows the API's refusal as it is (an allowlisted address names its
// rule), the tracked sources of highest score, and the recent scan and brute-force
// alerts. Writes need an operator token: a viewer sees no write controls.
import { api } from './api.js';
import { h, badge, ago, fmtTime, countdown, tickCountdowns, refusal } from './util.js';

export const name = 'security';

const kindNames = { fast_scan: 'fast scan', slow_scan: 'slow scan', half_open: 'half-open', bruteforce: 'brute force', manual: 'by hand' };
const kindName = (k) => kindNames[k] || k || '–';
const num = (n) => Number(n || 0).toLocaleString('en');

// inForce says whether a ban holds now, or would in dry run (decided, not enforced).
function inForce(b, now) {
  if (b.active) return true;
  return b.dry_run && !b.lifted && Date.parse(b.expires) > now;
}

export function mount(root, _params, { showBanner, canWrite }) {
  const write = canWrite();
  root.innerHTML = `<div id="security">
    <div class="panel sec-state" id="sec-state"><p class="muted">Loading…</p></div>
    ${write ? `<div class="panel"><h2>Ban an address</h2>
      <form class="form" id="ban-form" autocomplete="off">
        <label>Address<input name="addr" placeholder="203.0.113.7 or 2001:db8::7" required></label>
        <label>For<select name="duration"><option value="">configured ban time</option><option>10m</option><option>1h</option><option>24h</option><option>168h</option></select></label>
        <label>Why<input class="wide" name="reason" placeholder="abuse report, ticket…" required maxlength="500"></label>
        <button class="primary" type="submit">Ban</button>
      </form>
      <p class="refused" id="ban-refused" role="alert" hidden></p></div>` : ''}
    <div class="panel"><h2>Bans <span class="muted" id="ban-count"></span></h2>
      <div class="toolbar">
        <input type="search" id="ban-q" placeholder="Filter: address, kind, reason" aria-label="Filter bans">
        <label class="muted"><input type="checkbox" id="ban-ended"> show ended</label>
        ${write ? '' : '<span class="muted" id="read-only">read-only: enter an operator token to ban or unban</span>'}
      </div>
      <div class="table-wrap scroll" id="bans"><p class="muted">Loading…</p></div></div>
    <div class="panel"><h2>Top sources <span class="muted">tracked now, by score: distinct ports + failed flows + short logins</span></h2>
      <div class="table-wrap scroll" id="sources"><p class="muted">Loading…</p></div></div>
    <div class="panel"><h2>Recent scan and brute-force alerts</h2><div class="table-wrap scroll" id="sec-alerts"><p class="muted">Loading…</p></div></div></div>`;
  let alive = true;
  let bans = [];
  let timer = 0;
  const section = (id) => root.querySelector('#' + id);
  const q = section('ban-q'), ended = section('ban-ended');

  function drawState(st) {
    const el = section('sec-state');
    if (!st) {
      el.className = 'panel sec-state off';
      el.innerHTML = `<h2>Intrusion detection is off</h2><p class="muted">Set <code>intrusion.enabled: true</code> to detect scans and brute force; see docs/security.md.</p>`;
      el.dataset.state = 'off';
      return;
    }
    const missing = [];
    if (!st.conntrack.available) missing.push(`<li><b>conntrack unavailable</b>: scans and brute force are not seen from flows (the SYN_RECV fallback runs instead). <span class="reason">${h(st.conntrack.reason)}</span></li>`);
    if (!st.nftables.available) missing.push(`<li><b>nftables unavailable</b>: no ban is enforced. <span class="reason">${h(st.nftables.reason)}</span></li>`);
    const mode = missing.length ? 'degraded' : st.dry_run ? 'dry-run' : 'enforcing';
    const title = (missing.length ? 'Intrusion detection runs with parts missing' : 'Intrusion detection on') +
      (st.dry_run ? ' — bans in dry run' : ' — bans enforced');
    const scans = st.scans.map((s) => `<span class="stat"><b>${num(s.count)}</b> ${h(kindName(s.kind))}</span>`).join('');
    el.className = 'panel sec-state ' + mode;
    el.dataset.state = mode;
    el.innerHTML = `<h2>${h(title)}</h2>
      ${missing.length ? `<ul class="missing">${missing.join('')}</ul>` : ''}
      ${st.dry_run ? '<p class="muted">Bans are decided and recorded, never enforced (<code>intrusion.dry_run: false</code> enforces them).</p>' : ''}
      <div class="summary"><span class="stat"><b>${num(st.active_bans)}</b> bans enforced</span><span class="stat"><b>${num(st.sources)}</b> sources tracked</span>
        <span class="stat"><b>${num(st.events)}</b> events read</span><span class="stat${st.lost ? ' lost' : ''}"><b>${num(st.lost)}</b> overruns (events lost)</span>
        <span class="sep">findings:</span>${scans}</div>`;
  }

  function drawSources(top) {
    const el = section('sources');
    el.dataset.rendered = String(top.length);
    if (!top.length) { el.innerHTML = '<p class="muted">No source tracked now.</p>'; return; }
    el.innerHTML = `<table><thead><tr><th>source</th><th class="num">score</th><th class="num">ports</th><th class="num hide-narrow">hosts</th>
      <th class="num">refused</th><th class="num hide-narrow">unanswered</th><th class="num">short logins</th><th class="num hide-narrow">new flows</th>
      <th class="hide-narrow">first seen</th><th>last seen</th><th>found</th>${write ? '<th></th>' : ''}</tr></thead><tbody>` +
      top.map((s) => `<tr data-source="${h(s.source)}"><td class="addr">${h(s.source)}${s.banned ? ' ' + badge('banned') : ''}</td><td class="num"><b>${num(s.score)}</b></td>
        <td class="num">${num(s.distinct_ports)}</td><td class="num hide-narrow">${num(s.distinct_hosts)}</td><td class="num">${num(s.refused)}</td>
        <td class="num hide-narrow">${num(s.half_open)}</td><td class="num">${num(s.attempts)}</td><td class="num hide-narrow">${num(s.new_flows)}</td>
        <td class="hide-narrow when">${h(ago(s.first_seen))}</td><td class="when">${h(ago(s.last_seen))}</td>
        <td>${s.found.map((k) => badge(k === 'bruteforce' ? 'bruteforce' : 'scan', kindName(k))).join(' ')}</td>
        ${write ? `<td class="actions">${s.banned ? '' : `<button type="button" data-act="prefill" data-addr="${h(s.source)}">Ban…</button>`}</td>` : ''}</tr>`).join('') +
      '</tbody></table>';
  }

  function drawBans() {
    const now = Date.now();
    const f = q.value.trim().toLowerCase();
    const holding = bans.filter((b) => inForce(b, now));
    const shown = bans.filter((b) => (ended.checked || inForce(b, now)) &&
      (!f || [b.addr, b.kind, kindName(b.kind), b.reason, b.actor].some((x) => (x || '').toLowerCase().includes(f))));
    // Newest first: the latest bans are what one came to see.
    shown.sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
    const dry = holding.filter((b) => !b.active).length;
    section('ban-count').textContent = `${holding.length} in force` + (dry ? ` (${dry} in dry run: not enforced)` : '') +
      (bans.length > holding.length ? `, ${bans.length - holding.length} ended` : '');
    const el = section('bans');
    el.dataset.rendered = String(shown.length);
    if (!shown.length) { el.innerHTML = `<p class="muted">${bans.length ? 'No ban matches.' : 'No bans.'}</p>`; return; }
    el.innerHTML = `<table><thead><tr><th>address</th><th>kind</th><th class="hide-narrow">since</th><th>expires</th><th class="hide-narrow">evidence</th><th class="num" title="bans of this address in a row; each doubles the last">recurrence</th>
      <th class="hide-narrow">by</th>${write ? '<th></th>' : ''}</tr></thead><tbody>` +
      shown.map((b) => {
        const holds = inForce(b, now);
        const state = b.active ? '' : b.lifted ? ` ${badge('resolved', 'lifted')}` : holds ? ` ${badge('pending', 'dry run')}` : ` ${badge('resolved', 'ended')}`;
        return `<tr data-addr="${h(b.addr)}"><td class="addr">${h(b.addr)}${state}</td><td>${badge(b.kind === 'bruteforce' ? 'bruteforce' : b.kind === 'manual' ? 'manual' : 'scan', kindName(b.kind))}</td>
          <td class="when hide-narrow" title="${h(fmtTime(b.created))}">${h(ago(b.created))}</td><td>${holds ? countdown(b.expires) : b.lifted ? 'lifted ' + h(ago(b.lifted)) + (b.lifted_by ? ' by ' + h(b.lifted_by) : '') : h(fmtTime(b.expires))}
          <span class="muted">(${h(b.duration)})</span></td><td class="msg evidence hide-narrow" title="${h(b.reason)}">${h(b.reason)}</td><td class="num">${b.count > 1 ? `<b>×${b.count}</b>` : '1'}</td>
          <td class="hide-narrow">${h(b.actor)}</td>
          ${write ? `<td class="actions">${holds ? `<button type="button" class="danger" data-act="unban" data-addr="${h(b.addr)}">Unban</button>` : ''}</td>` : ''}</tr>`;
      }).join('') + '</tbody></table>';
  }

  async function loadState() {
    try {
      const st = await api('/intrusion?top=50');
      if (!alive) return;
      drawState(st);
      drawSources(st.top);
    } catch (e) {
      if (!alive) return;
      if (e.status === 501) { drawState(null); section('sources').innerHTML = '<p class="muted">Intrusion detection is off.</p>'; return; }
      section('sec-state').innerHTML = `<p class="muted">${h(e.message)}</p>`;
    }
  }

  async function loadBans() {
    try {
      bans = (await api('/bans')).bans;
      if (alive) drawBans();
    } catch (e) {
      if (alive) section('bans').innerHTML = `<p class="muted">${h(e.status === 501 ? 'Bans are off (intrusion.enabled is false).' : e.message)}</p>`;
    }
  }

  async function loadAlerts() {
    try {
      const { alerts } = await api('/alerts?state=all&limit=1000');
      if (!alive) return;
      const sec = alerts.filter((a) => a.class === 'security' && (a.rule === 'scan' || a.rule === 'bruteforce'))
        .sort((a, b) => Date.parse(b.starts_at) - Date.parse(a.starts_at)).slice(0, 30);
      section('sec-alerts').innerHTML = sec.length ? `<table><thead><tr><th>sev</th><th>state</th><th>source</th><th>what</th><th>since</th></tr></thead><tbody>` +
        sec.map((a) => `<tr data-id="${h(a.id)}"><td>${badge(a.severity)}</td><td>${badge(a.state)}</td><td class="addr">${h((a.labels || {}).source || a.target)}</td>
          <td class="msg">${h(a.summary)}</td><td class="when">${h(ago(a.starts_at))}</td></tr>`).join('') + '</tbody></table>'
        : '<p class="muted">No scan or brute-force alert retained.</p>';
    } catch (e) { if (alive) section('sec-alerts').innerHTML = `<p class="muted">${h(e.message)}</p>`; }
  }

  const loadAll = () => Promise.all([loadState(), loadBans(), loadAlerts()]);

  const refused = section('ban-refused');
  const form = section('ban-form');
  form?.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { addr: form.addr.value.trim(), reason: form.reason.value.trim() };
    if (form.duration.value) body.duration = form.duration.value;
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    refused.hidden = true;
    try {
      const b = await api('/bans', { method: 'POST', body });
      showBanner(b.active ? `Banned ${b.addr} for ${b.duration}.` : `Ban of ${b.addr} recorded in dry run (not enforced).`, true);
      form.reset();
      await loadAll();
    } catch (err) {
      // Shown beside the form, whole: an allowlisted address names the rule that protects it.
      refused.textContent = `Refused: ${refusal(err)}`;
      refused.hidden = false;
    } finally { btn.disabled = false; }
  });

  root.querySelector('#security').addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-act]');
    if (!b) return;
    const addr = b.dataset.addr;
    if (b.dataset.act === 'prefill') {
      form.addr.value = addr;
      form.reason.focus();
      form.scrollIntoView({ block: 'nearest' });
      return;
    }
    if (b.dataset.act !== 'unban') return;
    b.disabled = true;
    try {
      await api(`/bans/${encodeURIComponent(addr)}?reason=${encodeURIComponent('lifted from the dashboard')}`, { method: 'DELETE' });
      showBanner(`Lifted the ban of ${addr}.`, true);
      await loadAll();
    } catch (err) {
      b.disabled = false;
      showBanner(refusal(err));
    }
  });
  q.addEventListener('input', drawBans);
  ended.addEventListener('change', drawBans);

  loadAll();
  const tick = setInterval(() => tickCountdowns(root), 1000);
  const refresh = setInterval(() => { loadState(); loadBans(); }, 10000);
  return {
    update(type, data) {
      if (type !== 'alert' || data.class !== 'security') return;
      clearTimeout(timer);
      timer = setTimeout(() => { loadAlerts(); loadState(); loadBans(); }, 300);
    },
    unmount() { alive = false; clearInterval(tick); clearInterval(refresh); clearTimeout(timer); showBanner(''); },
  };
}
