// Automation: the remediation engine's live state (mode, kill switch, fleet count), its
// circuit breakers, the approval requests waiting with their plan, reasons and diff, and
// the recent audit trail. An operator approves, denies, pauses and resumes here; a
// viewer sees the same page without any of those buttons.
import { api } from './api.js';
import { h, badge, ago, fmtTime, countdown, tickCountdowns, refusal } from './util.js';

export const name = 'automation';

export function mount(root, _params, { showBanner, canWrite }) {
  const write = canWrite();
  root.innerHTML = `<div id="automation">
    <div class="panel"><h2>State</h2><div id="auto-state"><p class="muted">Loading…</p></div></div>
    <div class="panel"><h2>Waiting for approval</h2><div id="auto-pending"><p class="muted">Loading…</p></div></div>
    <div class="panel"><h2>Circuit breakers</h2><div class="table-wrap" id="auto-breakers"></div></div>
    <div class="panel"><h2>Audit trail <span class="muted">(last 24 h, newest first)</span></h2><div class="table-wrap" id="auto-trail"></div></div>
  </div>`;
  let alive = true;
  const section = (id) => root.querySelector('#' + id);

  async function load() {
    let st, reqs, rv;
    try {
      [st, reqs, rv] = await Promise.all([api('/automation'), api('/automation/approvals'), api('/automation/report?since=1d')]);
    } catch (e) {
      if (alive) section('auto-state').innerHTML = `<p class="muted">${h(e.status === 501 ? 'Automation is not running on this server.' : e.message)}</p>`;
      return;
    }
    if (!alive) return;
    section('auto-state').innerHTML = renderState(st, rv, write);
    const pending = (reqs.requests || []).filter((r) => r.state === 'pending');
    section('auto-pending').innerHTML = pending.length ? pending.map((r) => renderRequest(r, write)).join('')
      : '<p class="muted" id="none-pending">Nothing is waiting for approval.</p>';
    section('auto-breakers').innerHTML = renderBreakers(st.breakers || []);
    section('auto-trail').innerHTML = renderTrail(rv.recent || []);
    root.querySelector('#automation').dataset.rendered = pending.length;
  }

  // Buttons: approve, deny (with its reason), pause (with its reason) and resume.
  root.addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-act]');
    if (!b || !write) return;
    const act = b.dataset.act, id = b.dataset.id || '';
    let path, body, done;
    if (act === 'approve' || act === 'deny') {
      const text = root.querySelector(`input[data-for="${CSS.escape(id)}"]`)?.value.trim() || '';
      if (act === 'deny' && !text) { showBanner('Deny needs a reason: write it in the box beside the buttons.'); return; }
      path = `/automation/approvals/${encodeURIComponent(id)}/${act}`;
      body = act === 'deny' ? { reason: text } : (text ? { comment: text } : {});
      done = act === 'approve' ? 'Approved ' + id : 'Denied ' + id;
    } else {
      path = '/automation/' + act;
      const text = root.querySelector('#pause-reason')?.value.trim() || '';
      body = text ? { reason: text } : {};
      done = act === 'pause' ? 'Automation paused' : 'Automation resumed';
    }
    b.disabled = true;
    try {
      const r = await api(path, { method: 'POST', body });
      if (act === 'approve' && r.state === 'pending') done = `Approval recorded on ${id}; still needs ${r.needs}`;
      showBanner(done, true);
    } catch (err) {
      showBanner(refusal(err));
    }
    b.disabled = false;
    load();
  });

  load();
  const every = setInterval(load, 5000);
  const ticker = setInterval(() => tickCountdowns(root), 1000);
  return {
    update(type) { if (type === 'alert') setTimeout(load, 300); },
    unmount() { alive = false; clearInterval(every); clearInterval(ticker); },
  };
}

function renderState(st, rv, write) {
  const mode = st.mode === 'on' ? badge('ok', 'on') : badge('silenced', 'off: observe and recommend only');
  const paused = st.paused ? `${badge('down', 'paused')} by ${h(st.paused_by)}: ${h(st.pause_reason)}` : badge('ok', 'running');
  const full = st.fleet_count >= st.fleet_limit;
  const control = !write ? '<p class="muted" id="read-only">read-only: enter an operator token to approve, deny, pause or resume</p>'
    : st.paused ? '<div class="form"><button type="button" class="primary" data-act="resume" id="resume">Resume</button></div>'
    : `<div class="form"><label>Why<input id="pause-reason" placeholder="deploy, incident…" maxlength="1000"></label>
        <button type="button" data-act="pause" id="pause">Pause all automation</button></div>`;
  const pbs = (st.playbooks || []).map((p) => `<li><b>${h(p.name)}</b> <span class="label">${h(p.mode)}</span> ${h((p.steps || []).join('; '))}</li>`).join('');
  return `<dl class="kv">
      <dt>Mode</dt><dd id="auto-mode">${mode}</dd>
      <dt>Kill switch</dt><dd id="auto-paused">${paused}</dd>
      <dt>Fleet</dt><dd id="auto-fleet">${badge(full ? 'down' : 'ok', `${st.fleet_count} of ${st.fleet_limit}`)} actions within ${h(st.fleet_window)}</dd>
      <dt>Audit chain</dt><dd id="auto-chain" class="${/^BROKEN/.test(rv.chain || '') ? 'bad' : ''}">${h(rv.chain || 'not checked')}</dd>
    </dl>
    ${pbs ? `<ul class="playbooks">${pbs}</ul>` : '<p class="muted">No playbook is configured.</p>'}
    ${control}`;
}

function renderRequest(r, write) {
  const p = r.plan || {};
  const approvals = (r.approvals || []).map((a) => `${h(a.by)}${a.comment ? ': ' + h(a.comment) : ''}`).join(', ');
  const buttons = write ? `<div class="form">
      <label>Comment or reason<input data-for="${h(r.id)}" maxlength="1000" placeholder="required to deny"></label>
      <button type="button" class="primary" data-act="approve" data-id="${h(r.id)}">Approve</button>
      <button type="button" data-act="deny" data-id="${h(r.id)}">Deny</button></div>` : '';
  return `<div class="request" data-request="${h(r.id)}">
    <h3>${badge(p.tier === 'R3' || p.tier === 'R2' ? 'P1' : 'P2', p.tier)} ${h(p.playbook)} · step ${h(p.step)} <span class="muted">${h(p.action)} on ${h(p.target)}</span></h3>
    <pre class="diff">${h(p.diff)}</pre>
    <ul class="reasons">${(r.reasons || []).map((x) => `<li>${h(x)}</li>`).join('')}</ul>
    <p class="muted">Requested by ${h(r.requested_by)} ${h(ago(r.created_at))} · expires ${countdown(r.expires_at)} · needs ${h(r.needs)}
      ${approvals ? ' · approved so far by ' + approvals : ''}<br>plan hash <code>${h(p.hash)}</code> · request <code>${h(r.id)}</code></p>
    ${buttons}</div>`;
}

function renderBreakers(bs) {
  if (!bs.length) return '<p class="muted">No breaker has counted an attempt.</p>';
  return `<table><thead><tr><th>action</th><th>target</th><th class="num">attempts</th><th>state</th></tr></thead><tbody>${bs.map((b) => `
    <tr data-breaker="${h(b.action + ' ' + b.target)}"><td>${h(b.action)}</td><td>${h(b.target)}</td><td class="num">${(b.attempts || []).length}</td>
    <td>${breakerState(b)}</td></tr>`).join('')}</tbody></table>`;
}

// breakerState words a breaker: open (its attempts are spent), backing off until its
// next attempt, or closed.
function breakerState(b) {
  if (!b.open) return badge('ok', 'closed');
  if (/^backing off/.test(b.reason || '')) return `${badge('pending', 'backing off')} next attempt ${h(fmtTime(b.next_at))}`;
  return `${badge('down', 'open')} ${h(b.reason)}`;
}

const kindBadge = { execution: 'up', verification: 'up', rollback: 'down', approval: 'ok', denial: 'down', expiry: 'silenced', control: 'acknowledged', decision: 'pending' };

function renderTrail(evs) {
  if (!evs.length) return '<p class="muted">No entry in the last 24 hours.</p>';
  return `<table><thead><tr><th class="num">#</th><th>when</th><th>kind</th><th>outcome</th><th>by</th><th>playbook · step</th><th class="hide-narrow">target</th><th>why</th></tr></thead><tbody>${evs.map((e) => `
    <tr data-seq="${e.seq}" data-kind="${h(e.kind)}"><td class="num">${e.seq}</td><td title="${h(e.time)}">${h(fmtTime(e.time))}</td>
    <td>${badge(kindBadge[e.kind] || '', e.kind)}</td><td>${h(e.outcome)}</td><td>${h(e.actor)}</td>
    <td>${h(e.playbook || '')}${e.step ? ' · ' + h(e.step) : ''}</td><td class="hide-narrow">${h(e.target || '')}</td><td class="msg">${h(e.reason)}</td></tr>`).join('')}</tbody></table>`;
}
