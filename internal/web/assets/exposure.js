// Exposure: the latest report of each scheduled audit, host by host: every open port
// with the policy's verdict on it and who listens there, the required ports that are
// closed, the exceptions that ran out, and what the audit could not check.
import { api } from './api.js';
import { h, badge, ago, fmtTime } from './util.js';

export const name = 'exposure';

// The state an open port is in, by the findings on it, worst first.
const portStates = [
  ['wrong_owner', 'wrong owner'],
  ['public_bind', 'public bind'],
  ['unauthorised_open', 'unauthorised'],
];

const kindText = {
  unauthorised_open: 'unauthorised',
  required_closed: 'required, closed',
  wrong_owner: 'wrong owner',
  public_bind: 'public bind',
  exception_expired: 'exception expired',
};

export function mount(root) {
  root.innerHTML = '<div id="exposure"><p class="muted">Loading…</p></div>';
  const el = root.querySelector('#exposure');
  let alive = true;
  let timer = 0;

  async function load() {
    try {
      const { audits } = await api('/audits');
      if (!alive) return;
      el.innerHTML = audits.length
        ? audits.map(renderAudit).join('')
        : '<div class="panel empty">No scheduled audits: add <code>audits:</code> to the configuration, see docs/security.md</div>';
      el.dataset.rendered = audits.length;
    } catch (e) {
      if (alive) el.innerHTML = `<div class="panel"><p class="muted">${h(e.message)}</p></div>`;
    }
  }

  load();
  // Audits run on their own schedule; their findings arrive as alerts.
  const every = setInterval(load, 60000);
  return {
    update(type) {
      if (type !== 'alert') return;
      clearTimeout(timer);
      timer = setTimeout(load, 500);
    },
    unmount() { alive = false; clearInterval(every); clearTimeout(timer); },
  };
}

function renderAudit(a) {
  const head = `<h2>${h(a.name)} <span class="muted">${h(a.policy)}${a.time ? ` · ran ${h(ago(a.time))} (${h(fmtTime(a.time))})` : ''}</span></h2>`;
  if (!a.time) return `<div class="panel audit" data-audit="${h(a.name)}">${head}<p class="muted">Not run yet.</p></div>`;
  const counts = {};
  for (const f of a.findings) counts[f.severity] = (counts[f.severity] || 0) + 1;
  const summary = Object.keys(counts).sort().map((s) => `${badge(s)} ${counts[s]}`).join(' ');
  const hosts = a.hosts.map((host) => renderHost(host, a.findings.filter((f) => f.host === host.host && (f.addr || '') === (host.addr || '')))).join('');
  return `<div class="panel audit" data-audit="${h(a.name)}">${head}
    <div class="summary">${a.hosts.length} host${a.hosts.length === 1 ? '' : 's'} · ${a.findings.length ? summary : badge('ok', 'no findings')}</div>
    ${hosts || '<p class="muted">No hosts scanned.</p>'}</div>`;
}

function renderHost(host, findings) {
  const rows = [];
  const byPort = new Map();
  for (const f of findings) {
    if (!byPort.has(f.port || 0)) byPort.set(f.port || 0, []);
    byPort.get(f.port || 0).push(f);
  }
  const required = new Set(host.required || []);
  for (const op of host.open) {
    const fs = (byPort.get(op.port) || []).filter((f) => f.kind !== 'exception_expired');
    const states = portStates.filter(([k]) => fs.some((f) => f.kind === k)).map(([k, text]) => {
      const worst = fs.filter((f) => f.kind === k).map((f) => f.severity).sort()[0];
      return [k, text, worst];
    });
    let state;
    if (states.length) state = states.map(([k, text, sev]) => `<span class="badge ${h(sev)}" data-kind="${h(k)}">${h(text)}</span>`).join(' ');
    else if (op.verdict === 'exception') state = badge('exception');
    else state = badge(op.verdict === 'allowed' ? 'ok' : 'down', op.verdict);
    const ls = op.listeners || [];
    const who = (field) => ls.map((l) => l[field]).filter(Boolean);
    const procs = ls.filter((l) => l.process).map((l) => l.process + (l.pid ? ` (${l.pid})` : ''));
    rows.push(`<tr data-port="${op.port}" data-state="${h(states.length ? states[0][0] : op.verdict)}">
      <td>${states.length ? badge(states.map((s) => s[2]).sort()[0]) : ''}</td>
      <td class="num">${op.port}</td><td>${state}${required.has(op.port) ? ' <span class="label">required</span>' : ''}</td>
      <td>${h(procs.join(', ') || fromFinding(fs, 'process'))}</td><td>${h(who('user').join(', ') || fromFinding(fs, 'user'))}</td>
      <td>${h(who('bind').join(', ') || fromFinding(fs, 'bind'))}</td><td class="hide-narrow muted">${h(op.rule || '')}</td>
      <td class="msg">${fs.map((f) => h(f.message)).join('<br>')}</td></tr>`);
  }
  // Findings not about an open port: required ports closed, expired exceptions.
  const open = new Set(host.open.map((op) => op.port));
  for (const f of findings) {
    if (open.has(f.port) && f.kind !== 'exception_expired') continue;
    rows.push(`<tr data-port="${f.port || ''}" data-state="${h(f.kind)}">
      <td>${badge(f.severity)}</td><td class="num">${f.port || '–'}</td>
      <td><span class="badge ${h(f.severity)}" data-kind="${h(f.kind)}">${h(kindText[f.kind] || f.kind)}</span></td>
      <td>${h(f.process || '')}</td><td>${h(f.user || '')}</td><td>${h(f.bind || '')}</td>
      <td class="hide-narrow muted">${h(f.rule || '')}</td><td class="msg">${h(f.message)}</td></tr>`);
  }
  const title = host.addr && host.addr !== host.host ? `${h(host.host)} <span class="muted">${h(host.addr)}</span>` : h(host.host);
  const meta = `${host.ports_scanned} port${host.ports_scanned === 1 ? '' : 's'} scanned · ${host.open.length} open` +
    (host.inventory ? ' · owners from the local socket inventory' : '');
  return `<div class="audit-host" data-host="${h(host.host)}"><h3>${title} <span class="muted">${h(meta)}</span></h3>
    ${rows.length ? `<div class="table-wrap"><table><thead><tr><th>sev</th><th class="num">port</th><th>state</th><th>process</th><th>user</th><th>bind</th>
      <th class="hide-narrow">rule</th><th>finding</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>` : '<p class="muted">No open ports, nothing required.</p>'}
    ${(host.notes || []).map((n) => `<p class="note muted">${h(n)}</p>`).join('')}</div>`;
}

// fromFinding is what the findings on a port say of its listener when the report has none.
function fromFinding(fs, field) {
  return [...new Set(fs.map((f) => f[field]).filter(Boolean))].join(', ');
}
