// Cluster: cluster mode as the answering member sees it. This member's link to NATS,
// the alerting leader with its fencing token, the results it publishes, buffers,
// drops and fences off, and every live member by location with its role, the targets
// it owns, its uptime and version. A required location with no live member is named,
// since nothing probes from there. When cluster mode is off (the API answers 501) the
// page says so and how to turn it on.
import { api } from './api.js';
import { h, badge, fmtSpan, fmtTime } from './util.js';

export const name = 'cluster';

const num = (n) => Number(n || 0).toLocaleString('en');

// uptime words how long ago a member started; '–' for a zero time.
function uptime(started, now) {
  const t = Date.parse(started);
  if (!started || isNaN(t) || t <= 0) return '–';
  return fmtSpan(Math.max(0, now - t));
}

// byLocation groups the members by location, the locations sorted, the leader first
// within its location and then by ID.
function byLocation(members, required, leader) {
  const groups = new Map();
  for (const loc of required || []) groups.set(loc, []);
  for (const m of members) {
    if (!groups.has(m.location)) groups.set(m.location, []);
    groups.get(m.location).push(m);
  }
  for (const ms of groups.values()) ms.sort((a, b) => ((b.id === leader) - (a.id === leader)) || a.id.localeCompare(b.id, 'en', { numeric: true }));
  return [...groups.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

function renderState(st) {
  const serve = st.members.filter((m) => m.role !== 'agent').length;
  const agents = st.members.length - serve;
  const leader = st.leader
    ? `<span class="stat" id="cl-leader">leader <b>${h(st.leader)}</b> ${badge('leader', 'token ' + num(st.token))}${st.leading ? ' (this member)' : ''}</span>`
    : '<span class="stat bad" id="cl-leader"><b>no leader</b>: nothing judges results or sends notifications</span>';
  const link = st.connected ? badge('ok', 'connected') : badge('down', 'disconnected');
  return `<h2>Cluster: ${num(st.members.length)} members (${num(serve)} serve, ${num(agents)} agents) in ${num(new Set(st.members.map((m) => m.location)).size)} locations</h2>
    <div class="summary"><span class="stat">this member <b>${h(st.self)}</b> in <b>${h(st.location)}</b> ${link}</span>${leader}
      <span class="stat"><b>${num(st.targets)}</b> targets known</span><span class="stat">assignment epoch <b>${num(st.epoch)}</b></span></div>
    ${st.connected ? '' : '<p class="warn" id="cl-disconnected">This member cannot reach NATS: it keeps probing what it owned and buffers the results until the link is back.</p>'}
    <div class="summary" id="cl-results"><span class="sep">results:</span>
      <span class="stat"><b>${num(st.published)}</b> published</span>
      <span class="stat${st.lag ? ' warn' : ''}" title="results in the stream the leader has not acknowledged"><b>${num(st.lag)}</b> lag</span>
      <span class="stat${st.buffered ? ' warn' : ''}" title="results waiting here for NATS"><b>${num(st.buffered)}</b> buffered</span>
      <span class="stat${st.dropped ? ' bad' : ''}" title="results lost because the buffer was full"><b>${num(st.dropped)}</b> dropped</span>
      <span class="stat${st.fenced ? ' warn' : ''}" title="results refused because their member did not own the target"><b>${num(st.fenced)}</b> fenced off</span></div>`;
}

function renderMembers(st, now) {
  return byLocation(st.members, st.locations, st.leader).map(([loc, ms]) => {
    const owned = ms.reduce((s, m) => s + m.owned, 0);
    const head = `<h3 data-location="${h(loc)}">${h(loc)} <span class="muted">${ms.length} member${ms.length === 1 ? '' : 's'}, ${num(owned)} targets owned</span></h3>`;
    if (!ms.length) {
      return head + `<p class="warn" data-empty="${h(loc)}">No live member in ${h(loc)}: targets that require it are not probed from there.</p>`;
    }
    return head + `<div class="table-wrap"><table><thead><tr><th>member</th><th>role</th><th class="num">owned</th><th>up</th><th>version</th><th class="num hide-narrow">capacity</th></tr></thead><tbody>` +
      ms.map((m) => ({ ...m, leader: !!st.leader && m.id === st.leader })).map((m) => `<tr data-member="${h(m.id)}"${m.leader ? ' class="leader"' : ''}><td class="addr">${h(m.id)}${m.leader ? ' ' + badge('leader', 'leader · token ' + num(st.token)) : ''}${m.id === st.self ? ' <span class="muted">(this member)</span>' : ''}</td>
        <td>${badge(m.role === 'agent' ? 'agent' : 'serve', m.role)}</td><td class="num">${num(m.owned)}</td>
        <td class="when" title="started ${h(fmtTime(m.started))}">${h(uptime(m.started, now))}</td><td>${h(m.version || '–')}</td>
        <td class="num hide-narrow">${m.capacity ? num(m.capacity) : '–'}</td></tr>`).join('') + '</tbody></table></div>';
  }).join('');
}

export function mount(root) {
  root.innerHTML = `<div id="cluster">
    <div class="panel cl-state" id="cl-state"><p class="muted">Loading…</p></div>
    <div class="panel" id="cl-members-panel"><h2>Members by location</h2><div id="cl-members"><p class="muted">Loading…</p></div></div></div>`;
  let alive = true;
  const section = (id) => root.querySelector('#' + id);

  async function load() {
    let st;
    try {
      st = await api('/cluster');
    } catch (e) {
      if (!alive) return;
      const el = section('cl-state');
      if (e.status === 501) {
        el.className = 'panel cl-state off';
        el.dataset.state = 'off';
        el.innerHTML = `<h2>Cluster mode is off</h2><p class="muted">This server probes and alerts alone. To share targets among several
          instances and locations, start each with <code>portpatrol serve --cluster nats://nats1:4222 --location eu-1</code> (or set
          <code>cluster.url</code> and <code>cluster.location</code> in the configuration) and add probe-only members with
          <code>portpatrol agent --cluster nats://nats1:4222 --location us-1</code>; see docs/scale-out.md.</p>`;
        section('cl-members-panel').hidden = true;
        return;
      }
      el.innerHTML = `<p class="muted">${h(e.message)}</p>`;
      return;
    }
    if (!alive) return;
    st.members ||= [];
    const el = section('cl-state');
    const mode = !st.connected ? 'disconnected' : !st.leader ? 'leaderless' : 'on';
    el.className = 'panel cl-state ' + mode;
    el.dataset.state = mode;
    el.innerHTML = renderState(st);
    section('cl-members-panel').hidden = false;
    const list = section('cl-members');
    list.innerHTML = renderMembers(st, Date.now());
    list.dataset.rendered = String(st.members.length);
  }

  load();
  const refresh = setInterval(load, 5000);
  return { unmount() { alive = false; clearInterval(refresh); } };
}
