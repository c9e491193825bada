// Exposure: the latest report of each scheduled audit, host by host, worst finding
// first: every open port with the policy's verdict on it and who listens there, the
// required ports that are closed, the exceptions that ran out, and what the audit could
// not check. Three or more ports alike but for their number (same verdict, findings,
// process, user, bind address and rule) fold into one row: "950 ports of pid 4242,
// 20000–20949".
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
      // The audit with the worst finding first.
      const worst = (a) => Math.min(9, ...(a.findings || []).map((f) => sevRank(f.severity)));
      const sorted = audits.map((a, i) => [a, i]).sort(([a, i], [b, j]) => worst(a) - worst(b) || i - j).map(([a]) => a);
      el.innerHTML = audits.length
        ? sorted.map(renderAudit).join('')
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

const sevRank = (s) => (s ? Number(String(s).slice(1)) : 9);

function renderAudit(a) {
  const head = `<h2>${h(a.name)} <span class="muted">${h(a.policy)}${a.time ? ` · ran ${h(ago(a.time))} (${h(fmtTime(a.time))})` : ''}</span></h2>`;
  if (!a.time) return `<div class="panel audit" data-audit="${h(a.name)}">${head}<p class="muted">Not run yet.</p></div>`;
  const counts = {};
  for (const f of a.findings) counts[f.severity] = (counts[f.severity] || 0) + 1;
  const summary = Object.keys(counts).sort().map((s) => `${badge(s)} ${counts[s]}`).join(' ');
  // Hosts with the worst finding first.
  const hosts = a.hosts.map((host) => {
    const fs = a.findings.filter((f) => f.host === host.host && (f.addr || '') === (host.addr || ''));
    return { host, fs, worst: Math.min(9, ...fs.map((f) => sevRank(f.severity))) };
  }).sort((x, y) => x.worst - y.worst).map(({ host, fs }) => renderHost(host, fs)).join('');
  return `<div class="panel audit" data-audit="${h(a.name)}">${head}
    <div class="summary">${a.hosts.length} host${a.hosts.length === 1 ? '' : 's'} · ${a.findings.length ? summary : badge('ok', 'no findings')}</div>
    ${hosts || '<p class="muted">No hosts scanned.</p>'}</div>`;
}

// ranges words a sorted list of ports: "20000–20949, 21000".
export function ranges(ports) {
  const out = [];
  for (let i = 0; i < ports.length;) {
    let j = i;
    while (j + 1 < ports.length && ports[j + 1] === ports[j] + 1) j++;
    out.push(j > i ? `${ports[i]}–${ports[j]}` : String(ports[i]));
    i = j + 1;
  }
  return out.join(', ');
}

// bindHost is a bind address without its port: "0.0.0.0:6379" → "0.0.0.0".
const bindHost = (b) => b.replace(/:\d+$/, '');

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
    const sev = states.length ? states.map((s) => s[2]).sort()[0] : '';
    const pids = [...new Set(ls.map((l) => l.pid).filter(Boolean))];
    const proc = procs.join(', ') || fromFinding(fs, 'process');
    const user = who('user').join(', ') || fromFinding(fs, 'user');
    const bind = who('bind').join(', ') || fromFinding(fs, 'bind');
    rows.push({
      port: op.port, sev, state: states.length ? states[0][0] : op.verdict, stateHTML: state + (required.has(op.port) ? ' <span class="label">required</span>' : ''),
      proc, user, bind, rule: op.rule || '', msgs: fs.map((f) => f.message), required: required.has(op.port),
      owner: pids.length === 1 ? `pid ${pids[0]}` : proc || 'unknown owner',
      // Ports alike in all but their number fold into one row.
      key: [sev, states.map((x) => x[0]).join('+'), op.verdict, proc.replace(/\s*\(\d+\)/g, '') + '|' + pids.join(','), user,
        [...new Set(who('bind').map(bindHost))].join(','), op.rule || '', required.has(op.port)].join('\u0000'),
    });
  }
  // Findings not about an open port: required ports closed, expired exceptions.
  const open = new Set(host.open.map((op) => op.port));
  for (const f of findings) {
    if (open.has(f.port) && f.kind !== 'exception_expired') continue;
    rows.push({
      port: f.port || 0, sev: f.severity, state: f.kind, stateHTML: `<span class="badge ${h(f.severity)}" data-kind="${h(f.kind)}">${h(kindText[f.kind] || f.kind)}</span>`,
      proc: f.process || '', user: f.user || '', bind: f.bind || '', rule: f.rule || '', msgs: [f.message], single: true,
      owner: f.process || 'unknown owner', key: f.kind + '\u0000' + f.severity + '\u0000' + (f.process || '') + '\u0000' + (f.rule || ''),
    });
  }
  // Worst first, then by port; then fold runs of three or more alike.
  rows.sort((a, b) => sevRank(a.sev) - sevRank(b.sev) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) || a.port - b.port);
  const out = [];
  for (let i = 0; i < rows.length;) {
    let j = i;
    while (j + 1 < rows.length && rows[j + 1].key === rows[i].key && rows[j + 1].port) j++;
    const n = j - i + 1;
    if (n >= 3 && rows[i].port) {
      const run = rows.slice(i, j + 1);
      const ports = run.map((r) => r.port).sort((a, b) => a - b);
      const r = run[0];
      const binds = [...new Set(run.flatMap((x) => x.bind.split(', ').filter(Boolean).map(bindHost)))].join(', ');
      out.push(`<tr class="range" data-port="${ports[0]}-${ports[ports.length - 1]}" data-ports="${n}" data-state="${h(r.state)}">
        <td>${r.sev ? badge(r.sev) : ''}</td><td class="num">${n} ports</td><td>${r.stateHTML}</td>
        <td>${h(r.proc.replace(/\s*\(\d+\)/g, '') || r.proc)}</td><td>${h(r.user)}</td><td>${h(binds)}</td><td class="hide-narrow muted">${h(r.rule)}</td>
        <td class="msg"><b>${n} ports of ${h(r.owner)}, ${h(ranges(ports))}</b>${r.msgs.length ? `<br><span class="muted">${h(r.msgs[0])}${n > 1 ? ` (and ${n - 1} more alike)` : ''}</span>` : ''}</td></tr>`);
    } else {
      for (const r of rows.slice(i, j + 1)) {
        out.push(`<tr data-port="${r.port || ''}" data-state="${h(r.state)}">
          <td>${r.sev ? badge(r.sev) : ''}</td><td class="num">${r.port || '–'}</td><td>${r.stateHTML}</td>
          <td>${h(r.proc)}</td><td>${h(r.user)}</td><td>${h(r.bind)}</td><td class="hide-narrow muted">${h(r.rule)}</td>
          <td class="msg">${r.msgs.map((m) => h(m)).join('<br>')}</td></tr>`);
      }
    }
    i = j + 1;
  }
  const title = host.addr && host.addr !== host.host ? `${h(host.host)} <span class="muted">${h(host.addr)}</span>` : h(host.host);
  const meta = `${host.ports_scanned} port${host.ports_scanned === 1 ? '' : 's'} scanned · ${host.open.length} open` +
    (host.inventory ? ' · owners from the local socket inventory' : '');
  return `<div class="audit-host" data-host="${h(host.host)}"><h3>${title} <span class="muted">${h(meta)}</span></h3>
    ${out.length ? `<div class="table-wrap"><table><thead><tr><th>sev</th><th class="num">port</th><th>state</th><th>process</th><th>user</th><th>bind</th>
      <th class="hide-narrow">rule</th><th>finding</th></tr></thead><tbody>${out.join('')}</tbody></table></div>` : '<p class="muted">No open ports, nothing required.</p>'}
    ${(host.notes || []).map((n) => `<p class="note muted">${h(n)}</p>`).join('')}</div>`;
}

// fromFinding is what the findings on a port say of its listener when the report has none.
function fromFinding(fs, field) {
  return [...new Set(fs.map((f) => f[field]).filter(Boolean))].join(', ');
}
