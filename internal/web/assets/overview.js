// The overview: every target as a cell coloured by state and by its most urgent open
// alert, grouped by service, host, namespace or any label, with filter and search.
// Two views: "dense" (a heat map: small cells, a label that keeps only the part that
// tells targets of a group apart, all-green groups folded into a strip of tiny cells,
// detail on hover) fits 1,000 targets on one screen; "tiles" shows each target's full
// name. Cells are links, so no cell has a listener of its own; they are built in chunks
// between frames, and groups off screen are skipped by the browser
// (content-visibility), so 10,000 targets stay responsive. Live events recolour single
// cells in place. While the host watch is still learning listeners, they are listed
// with the time left until they are learned, beside the learned ones that are gone or
// retired, which an operator may forget (one, or all gone at once).
import { api } from './api.js';
import { h, hostOf, shortName, fmtDuration, ago, fmtSpan, refusal } from './util.js';

export const name = 'overview';

// natural orders names with numbers as people do: node-2 before node-10.
const natural = new Intl.Collator('en', { numeric: true });

const firstChunk = 1500; // cells built before the first paint
const frameBudget = 12; // ms of building per frame after that

const filters = [
  ['all', 'All'], ['problems', 'Problems'], ['down', 'Down'], ['up', 'Up'], ['unknown', 'Unknown'],
];

// The choices survive navigation to a target and back; the view survives a reload.
const viewKey = 'portpatrol.overview.view';
const prefs = { q: '', filter: 'all', group: 'service', view: localStorage.getItem(viewKey) === 'tiles' ? 'tiles' : 'dense', open: new Set() };

export function mount(root, _params, { store, showBanner, canWrite }) {
  const write = canWrite();
  root.innerHTML = `
    <div class="toolbar">
      <input type="search" id="q" placeholder="Search targets, names, labels" value="${h(prefs.q)}" aria-label="Search">
      <div class="chips" id="filters">${filters.map(([k, l]) => `<button type="button" data-f="${k}" class="${prefs.filter === k ? 'on' : ''}">${l}</button>`).join('')}</div>
      <label class="muted">Group by <select id="group"></select></label>
      <div class="chips" id="views" role="group" aria-label="View">
        <button type="button" data-v="dense" class="${prefs.view === 'dense' ? 'on' : ''}">Dense</button><button type="button" data-v="tiles" class="${prefs.view === 'tiles' ? 'on' : ''}">Tiles</button>
      </div>
    </div>
    <div class="summary" id="summary"></div>
    <div class="legend">
      <span><i class="s-up"></i>up</span><span><i class="s-down"></i>down</span><span><i class="s-unknown"></i>unknown</span>
      <span><i class="sev-P0"></i>P0</span><span><i class="sev-P1"></i>P1</span><span><i class="sev-P2"></i>P2</span><span><i class="sev-P3"></i>P3</span>
      <span><i class="silenced"></i>silenced</span><span>blue edge: acknowledged · dashed: flapping</span>
    </div>
    <div id="learning" hidden></div>
    <div id="groups"></div>
    <div id="tip" class="tip" role="tooltip" hidden></div>`;
  const groupsEl = root.querySelector('#groups');
  const summaryEl = root.querySelector('#summary');
  const learningEl = root.querySelector('#learning');
  const tipEl = root.querySelector('#tip');
  const q = root.querySelector('#q');
  const groupSel = root.querySelector('#group');
  fillGroupChoices();

  let cellEls = new Map(); // target ID → cell element
  let groupOf = new Map(); // target ID → group record
  let generation = 0; // bumps to abandon a render in progress
  let dirty = new Set();
  let frame = 0;
  let learned = []; // listeners of the host watch being learned, gone or retired, from /learned
  let all = [];
  let procNames = new Map(); // target ID → "process :port" of a learned listener
  // nameOf is what a cell is called: the target's name, its listener's process, its ID.
  const nameOf = (t) => t.name || procNames.get(t.id) || shortName(t);
  let alive = true;

  // fillGroupChoices offers service, host, namespace and every label key present.
  function fillGroupChoices() {
    const keys = new Set();
    for (const t of store.targets.values()) for (const k of Object.keys(t.labels || {})) keys.add(k);
    for (const k of ['service', 'host', 'namespace']) keys.delete(k);
    const opts = [['service', 'service'], ['host', 'host'], ['namespace', 'namespace'],
      ...[...keys].sort().map((k) => ['label:' + k, 'label ' + k]), ['none', 'nothing']];
    if (!opts.some(([v]) => v === prefs.group)) prefs.group = 'service';
    groupSel.innerHTML = opts.map(([v, l]) => `<option value="${h(v)}">${h(l)}</option>`).join('');
    groupSel.value = prefs.group;
  }

  function matches(t) {
    const a = store.worst(t.id);
    switch (prefs.filter) {
      case 'problems': if (t.status !== 'down' && !(a && a.state !== 'silenced')) return false; break;
      case 'down': case 'up': case 'unknown': if (t.status !== prefs.filter) return false; break;
    }
    if (!prefs.q) return true;
    const s = prefs.q.toLowerCase();
    if (t.id.toLowerCase().includes(s) || nameOf(t).toLowerCase().includes(s)) return true;
    for (const v of Object.values(t.labels || {})) if (v.toLowerCase().includes(s)) return true;
    return false;
  }

  // groupKey returns [key, kind]: groups of one kind only are shown together, so
  // service names never mix with host addresses. Targets without the grouping label
  // share one group that says so.
  function groupKey(t) {
    const l = t.labels || {};
    switch (prefs.group) {
      case 'none': return 'all targets';
      case 'host': return l.host || hostOf(t.id);
      case 'namespace': return l.namespace || '(outside Kubernetes)';
      case 'service':
        // Kubernetes targets carry their namespace: group them by namespace/Service.
        if (l.namespace && l.service) return l.namespace + '/' + l.service;
        return l.service || '(no service label)';
    }
    const key = prefs.group.slice('label:'.length);
    return l[key] || `(no ${key} label)`;
  }

  // cellClass colours a cell: an unmuted alert's severity wins over the state.
  function cellClass(t) {
    const a = store.worst(t.id);
    let c = 'tile s-' + (t.status || 'unknown');
    if (a) c += a.state === 'silenced' ? ' silenced' : ' sev-' + a.severity + (a.state === 'acknowledged' ? ' acked' : '');
    if (t.flapping) c += ' flapping';
    return c;
  }

  function detail(t) {
    const a = store.worst(t.id);
    const lines = [[nameOf(t) !== shortName(t) ? `${nameOf(t)} — ${t.id}` : t.id, 'tip-id'],
      [`${t.status}${t.flapping ? ' (flapping)' : ''} since ${ago(t.since)}`, 's-text-' + (t.status || 'unknown')]];
    if (t.last) lines.push([`last: ${t.last.class} in ${fmtDuration(t.last.duration_seconds)}${t.last.error ? ': ' + t.last.error : ''}`, '']);
    if (a) lines.push([`${a.severity} ${a.state}: ${a.summary}`, 'tip-alert']);
    const labels = Object.entries(t.labels || {}).map(([k, v]) => `${k}=${v}`).join(' ');
    if (labels) lines.push([labels, 'muted']);
    return lines;
  }

  const cellHTML = (t, label) => `<a class="${cellClass(t)}" href="#/target/${encodeURIComponent(t.id)}" data-id="${h(t.id)}" aria-label="${h(nameOf(t))}">${h(label)}</a>`;

  function rank(t) {
    const a = store.worst(t.id);
    if (a && a.state !== 'silenced') return Number(a.severity.slice(1));
    return t.status === 'down' ? 4 : t.status === 'unknown' ? 5 : 6;
  }

  // healthy says whether a group would fold: all green, every target up with no open
  // alert (a silenced one greys its cell, so it does not fold).
  const green = (t) => t.status === 'up' && !store.worst(t.id);
  const healthy = (g) => g.targets.every(green);

  function groupCounts(g) {
    let down = 0, alerting = 0, up = 0;
    for (const t of g.targets) {
      if (t.status === 'down') down++;
      if (t.status === 'up') up++;
      const a = store.worst(t.id);
      if (a && a.state !== 'silenced') alerting++;
    }
    const parts = [`${g.targets.length} target${g.targets.length === 1 ? '' : 's'}`];
    if (down) parts.push(`${down} down`);
    if (alerting) parts.push(`${alerting} alerting`);
    if (!down && !alerting && up === g.targets.length) parts.push('all up');
    return parts.join(' · ');
  }

  function summary() {
    let up = 0, down = 0, unknown = 0, alerting = 0;
    for (const t of store.targets.values()) {
      if (t.status === 'up') up++; else if (t.status === 'down') down++; else unknown++;
      const a = store.worst(t.id);
      if (a && a.state !== 'silenced') alerting++;
    }
    summaryEl.innerHTML = `<span><b>${store.targets.size}</b> targets</span><span><b>${up}</b> up</span>` +
      `<span><b class="${down ? 'overdue' : ''}">${down}</b> down</span><span><b>${unknown}</b> unknown</span>` +
      `<span><b>${alerting}</b> alerting</span>`;
  }

  function render() {
    const gen = ++generation;
    const t0 = performance.now();
    const dense = prefs.view === 'dense';
    const groups = new Map();
    for (const t of store.targets.values()) {
      if (!matches(t)) continue;
      const k = groupKey(t);
      if (!groups.has(k)) groups.set(k, { key: k, targets: [] });
      groups.get(k).targets.push(t);
    }
    const list = [...groups.values()];
    for (const g of list) {
      g.targets.sort((a, b) => rank(a) - rank(b) || natural.compare(a.id, b.id));
      g.worst = rank(g.targets[0]);
      g.folded = dense && healthy(g) && !prefs.open.has(g.key);
      g.labels = dense ? distinctLabels(g.targets.map(nameOf)) : null;
    }
    // Grouped by host, host names come first and bare addresses after, under a heading
    // of their own, so names and addresses never mix. Then the worst groups first; in the
    // dense view the folded (all-green) ones after all others.
    const byHost = prefs.group === 'host';
    for (const g of list) g.address = byHost && isAddress(g.key);
    list.sort((a, b) => (a.address - b.address) || (a.folded - b.folded) || a.worst - b.worst || natural.compare(a.key, b.key));
    const split = byHost && list.some((g) => g.address) && list.some((g) => !g.address);
    cellEls = new Map();
    groupOf = new Map();
    summary();
    groupsEl.className = dense ? 'dense' : 'tiled';
    if (store.loaded && list.length === 0) {
      if (store.targets.size === 0 && learned.length) {
        groupsEl.innerHTML = '';
        groupsEl.dataset.rendered = '0';
        return;
      }
      groupsEl.innerHTML = `<p class="empty">${store.targets.size ? 'No target matches.' : 'No targets configured yet: add some under targets: in the configuration file.'}</p>`;
      groupsEl.dataset.rendered = '0';
      return;
    }
    // Section skeletons first, then cells in chunks.
    groupsEl.innerHTML = list.map((g, i) => (split && g.address && !list[i - 1].address ? '<h3 class="kind" id="addresses">Addresses without a host name</h3>' : '') +
      `<section class="group${g.folded ? ' folded' : ''}" data-g="${i}" data-key="${h(g.key)}">` +
      `<h2>${dense ? `<button type="button" class="fold" data-key="${h(g.key)}" aria-expanded="${!g.folded}" title="${g.folded ? 'show labels' : 'fold'}">${g.folded ? '▸' : '▾'}</button>` : ''}` +
      `<span class="gname">${h(g.key)}</span> <span class="muted">${h(groupCounts(g))}</span></h2><div class="tiles"></div></section>`).join('');
    const sections = groupsEl.querySelectorAll('section.group');
    list.forEach((g, i) => { g.el = sections[i]; g.tilesEl = sections[i].lastElementChild; g.headEl = sections[i].querySelector('h2 .muted'); });
    let gi = 0, ti = 0, built = 0;
    const step = (budget, limit) => {
      const start = performance.now();
      while (gi < list.length) {
        const g = list[gi];
        const end = Math.min(g.targets.length, ti + 500);
        const before = g.tilesEl.children.length;
        let html = '';
        for (let k = ti; k < end; k++) {
          const t = g.targets[k];
          html += cellHTML(t, g.folded ? '' : dense ? g.labels.get(nameOf(t)) : nameOf(t));
        }
        g.tilesEl.insertAdjacentHTML('beforeend', html);
        const kids = g.tilesEl.children;
        for (let k = before; k < kids.length; k++) {
          const t = g.targets[ti + k - before];
          cellEls.set(t.id, kids[k]);
          groupOf.set(t.id, g);
        }
        built += end - ti;
        ti = end;
        if (ti >= g.targets.length) { gi++; ti = 0; }
        if ((limit && built >= limit) || (budget && performance.now() - start > budget)) break;
      }
      return gi < list.length;
    };
    const more = step(0, firstChunk);
    requestAnimationFrame(() => {
      if (gen !== generation) return;
      const now = performance.now();
      window.__pp.overviewFirstTiles = window.__pp.overviewFirstTiles ?? now;
      window.__pp.lastRender = { tiles: built, firstMs: now - t0 };
    });
    const finish = () => {
      if (gen !== generation) return;
      window.__pp.overviewAllTiles = performance.now();
      window.__pp.lastRender = { ...(window.__pp.lastRender || {}), tiles: built, allMs: performance.now() - t0 };
      groupsEl.dataset.rendered = String(built);
    };
    if (!more) { finish(); return; }
    const next = () => {
      if (gen !== generation) return;
      if (step(frameBudget, 0)) requestAnimationFrame(next); else finish();
    };
    requestAnimationFrame(next);
  }

  // Live updates: recolour cells in place, recount their groups once per frame. A
  // folded group that gets a problem is drawn again, unfolded.
  let refold = false;
  function flush() {
    frame = 0;
    for (const g of dirty) {
      if (g.headEl) g.headEl.textContent = groupCounts(g);
      if (g.folded && !healthy(g)) refold = true;
    }
    dirty = new Set();
    summary();
    if (refold) { refold = false; scheduleRender(100); }
  }
  function touch(id) {
    const t = store.targets.get(id);
    const el = cellEls.get(id);
    if (!t) return;
    if (!el) {
      if (!groupOf.has(id) && matches(t)) scheduleRender();
      return;
    }
    el.className = cellClass(t);
    if (tipEl.dataset.id === id) showTip(el);
    dirty.add(groupOf.get(id));
    if (!frame) frame = requestAnimationFrame(flush);
  }
  let renderTimer = 0;
  function scheduleRender(delay = 250) {
    clearTimeout(renderTimer);
    renderTimer = setTimeout(render, delay);
  }

  // The hover detail: one element for the page, filled from the store on demand.
  function showTip(el) {
    const t = store.targets.get(el.dataset.id);
    if (!t) return;
    tipEl.innerHTML = detail(t).map(([text, cls]) => `<div class="${cls}">${h(text)}</div>`).join('');
    tipEl.dataset.id = t.id;
    tipEl.hidden = false;
    const r = el.getBoundingClientRect();
    const w = tipEl.offsetWidth, hh = tipEl.offsetHeight;
    let x = r.left + window.scrollX, y = r.bottom + window.scrollY + 4;
    if (r.left + w > document.documentElement.clientWidth - 8) x = Math.max(8, document.documentElement.clientWidth - w - 8) + window.scrollX;
    if (r.bottom + hh + 4 > window.innerHeight) y = r.top + window.scrollY - hh - 4;
    tipEl.style.left = x + 'px';
    tipEl.style.top = y + 'px';
  }
  function hideTip() { tipEl.hidden = true; tipEl.dataset.id = ''; }
  groupsEl.addEventListener('mouseover', (e) => {
    const el = e.target.closest('a.tile');
    if (el) showTip(el); else hideTip();
  });
  groupsEl.addEventListener('focusin', (e) => { const el = e.target.closest('a.tile'); if (el) showTip(el); });
  groupsEl.addEventListener('mouseleave', hideTip);
  groupsEl.addEventListener('click', (e) => {
    const b = e.target.closest('button.fold');
    if (!b) return;
    const k = b.dataset.key;
    if (b.getAttribute('aria-expanded') === 'true') prefs.open.delete(k); else prefs.open.add(k);
    render();
  });

  // Listeners being learned, with their countdowns.
  async function loadLearned() {
    try {
      const res = await api('/learned');
      all = res.listeners || [];
    } catch { all = []; } // an older server has no /learned
    if (!alive) return;
    learned = all.filter((l) => l.state === 'learning' || isGone(l));
    // A learned listener's target is named by its process: "mosquitto :1883".
    const names = new Map(all.filter((l) => l.target_id && l.process).map((l) => [l.target_id, `${l.process} :${l.port}`]));
    const renamed = names.size !== procNames.size || [...names].some(([k, v]) => procNames.get(k) !== v);
    procNames = names;
    const wasEmpty = learningEl.hidden;
    drawLearned();
    if (renamed || (store.targets.size === 0 && wasEmpty !== learningEl.hidden)) render();
  }
  function drawLearned() {
    learningEl.hidden = learned.length === 0;
    learningEl.className = 'panel learning';
    if (!learned.length) { learningEl.innerHTML = ''; return; }
    const now = Date.now();
    const rows = [...learned].sort((a, b) => (a.port - b.port) || (a.addr < b.addr ? -1 : 1)).map((l) => {
      const due = l.state === 'learning' ? l.learn_at : l.forget_at;
      const left = due ? Date.parse(due) - now : NaN;
      const when = isNaN(left) ? '–' : left > 0 ? fmtSpan(left) : 'now';
      const what = l.state === 'learning' ? `learned in <b class="countdown" data-due="${h(due || '')}">${h(when)}</b>`
        : `gone ${h(ago(l.gone_since))}${due ? `, forgotten in <b class="countdown" data-due="${h(due)}">${h(when)}</b>` : fates[l.fate] || ''}`;
      return `<tr data-addr="${h(l.addr)}" data-state="${h(l.state)}"><td><b>${h(l.process || '?')}</b> :${l.port}</td><td class="muted">${h(l.addr)}${l.pid ? ` · pid ${l.pid}` : ''}</td>
        <td><span class="badge ${l.state === 'learning' ? 'pending' : l.state === 'retired' ? 'unknown' : 'down'}">${h(l.state)}</span></td><td>${what}</td><td class="muted hide-narrow">seen ${h(ago(l.first_seen))}</td>
        ${write ? `<td class="actions">${isGone(l) ? `<button type="button" class="danger" data-forget="${h(l.addr)}" aria-label="Forget ${h(l.addr)}">Forget</button>` : ''}</td>` : ''}</tr>`;
    }).join('');
    const n = learned.filter((l) => l.state === 'learning').length;
    const gone = learned.filter(isGone).length;
    learningEl.innerHTML = `<h2>Learning this host's listeners <span class="muted">${n} being learned: a listener that stays up until its countdown ends is expected from then on, and its loss pages${gone ? ` · ${gone} gone or retired` : ''}</span>
      ${write && gone ? `<button type="button" class="danger" id="forget-gone">Forget all gone (${gone})</button>` : ''}</h2>
      <div class="table-wrap"><table><tbody>${rows}</tbody></table></div>`;
  }
  // An operator forgets a gone listener, or all of them: no longer expected, never
  // paged again; one still listening is learned afresh.
  learningEl.addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-forget], #forget-gone');
    if (!b) return;
    b.disabled = true;
    try {
      let ids;
      if (b.id === 'forget-gone') {
        ({ forgotten: ids } = await api('/learned/forget?gone=true', { method: 'POST' }));
        learned = learned.filter((l) => !isGone(l));
        showBanner(`Forgot ${ids.length} gone listener${ids.length === 1 ? '' : 's'}.`, true);
      } else {
        const addr = b.dataset.forget;
        await api(`/learned/${encodeURIComponent(addr)}`, { method: 'DELETE' });
        learned = learned.filter((l) => l.addr !== addr);
        showBanner(`Forgot ${addr}: it is no longer expected and its loss no longer pages.`, true);
      }
      drawLearned();
      loadLearned();
    } catch (err) {
      showBanner(refusal(err));
      b.disabled = false;
    }
  });
  function tickLearned() {
    const now = Date.now();
    for (const el of learningEl.querySelectorAll('[data-due]')) {
      const left = Date.parse(el.dataset.due) - now;
      el.textContent = isNaN(left) ? '–' : left > 0 ? fmtSpan(left) : 'now';
    }
  }
  let learnTimer = 0;
  const pollLearned = async () => {
    await loadLearned();
    if (alive) learnTimer = setTimeout(pollLearned, learned.some((l) => l.state === 'learning') ? 5000 : 30000);
  };
  const ticker = setInterval(tickLearned, 1000);

  q.addEventListener('input', () => { prefs.q = q.value.trim(); scheduleRender(150); });
  groupSel.addEventListener('change', () => { prefs.group = groupSel.value; render(); });
  root.querySelector('#filters').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-f]');
    if (!b) return;
    prefs.filter = b.dataset.f;
    for (const x of root.querySelectorAll('#filters button')) x.classList.toggle('on', x === b);
    render();
  });
  root.querySelector('#views').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-v]');
    if (!b) return;
    prefs.view = b.dataset.v;
    localStorage.setItem(viewKey, prefs.view);
    for (const x of root.querySelectorAll('#views button')) x.classList.toggle('on', x === b);
    render();
  });

  render();
  pollLearned();
  return {
    update(type, data) {
      if (type === 'target') touch(data.id);
      else if (type === 'alert') touch(data.target);
    },
    unmount() {
      alive = false; generation++; clearTimeout(renderTimer); clearTimeout(learnTimer); clearInterval(ticker);
      if (frame) cancelAnimationFrame(frame);
    },
  };
}

// fates says what became of a gone listener's process when it is not counting down.
const fates = { running: ', its process runs without it', restarting: ', its program is restarting' };

// isGone says whether a learned listener is gone or retired: what may be forgotten.
const isGone = (l) => l.state === 'gone' || l.state === 'retired';

// isAddress says whether a host is an IP address rather than a name.
const isAddress = (host) => /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || /^\[?[0-9a-f]*:[0-9a-f:.]*\]?$/i.test(host);

// distinctLabels maps each name of a group to the part that tells it apart from the
// others: names are split into segments at '.', ':', '/' and '@'; segments that every
// name has in the same place are dropped (for names of as many segments), or else the
// segments all names start or end with. A name that would lose everything keeps it all.
export function distinctLabels(names) {
  const out = new Map();
  const uniq = [...new Set(names)];
  if (uniq.length < 2) {
    for (const n of uniq) out.set(n, n);
    return out;
  }
  const split = uniq.map((n) => n.split(/(?=[.:/@])/)); // each segment keeps its leading separator
  const clean = (s) => s.replace(/^[.:/@]+/, '');
  const same = split.every((s) => s.length === split[0].length);
  let keep;
  if (same) {
    const differs = split[0].map((_, i) => split.some((s) => s[i] !== split[0][i]));
    keep = (s) => s.filter((_, i) => differs[i]);
  } else {
    let pre = 0, suf = 0;
    const minLen = Math.min(...split.map((s) => s.length));
    while (pre < minLen - 1 && split.every((s) => s[pre] === split[0][pre])) pre++;
    while (suf < minLen - pre - 1 && split.every((s) => s[s.length - 1 - suf] === split[0][split[0].length - 1 - suf])) suf++;
    keep = (s) => s.slice(pre, s.length - suf);
  }
  uniq.forEach((n, i) => {
    const parts = keep(split[i]);
    const label = parts.length ? clean(parts[0]) + parts.slice(1).join('') : n;
    out.set(n, label || n);
  });
  // Labels must still tell the names apart; where two collide, show the names whole.
  const seen = new Map();
  for (const [n, l] of out) seen.set(l, (seen.get(l) || 0) + 1);
  for (const [n, l] of out) if (seen.get(l) > 1) out.set(n, n);
  return out;
}
