// The overview: every target as a tile coloured by state and by its most urgent open
// alert, grouped by service (or host), with filter and search. Tiles are links, so no
// tile has a listener of its own; they are built in chunks between frames, and groups
// off screen are skipped by the browser (content-visibility), so 10,000 targets stay
// responsive. Live events recolour single tiles in place.
import { h, hostOf, shortName, fmtDuration, ago } from './util.js';

export const name = 'overview';

const firstChunk = 1500; // tiles built before the first paint
const frameBudget = 12; // ms of building per frame after that

const filters = [
  ['all', 'All'], ['problems', 'Problems'], ['down', 'Down'], ['up', 'Up'], ['unknown', 'Unknown'],
];

// The choices survive navigation to a target and back.
const prefs = { q: '', filter: 'all', group: 'service' };

export function mount(root, _params, { store }) {
  root.innerHTML = `
    <div class="toolbar">
      <input type="search" id="q" placeholder="Search targets, names, labels" value="${h(prefs.q)}" aria-label="Search">
      <div class="chips" id="filters">${filters.map(([k, l]) => `<button type="button" data-f="${k}" class="${prefs.filter === k ? 'on' : ''}">${l}</button>`).join('')}</div>
      <label class="muted">Group by
        <select id="group"><option value="service">service</option><option value="host">host</option><option value="namespace">namespace</option><option value="none">nothing</option></select>
      </label>
    </div>
    <div class="summary" id="summary"></div>
    <div class="legend">
      <span><i class="s-up"></i>up</span><span><i class="s-down"></i>down</span><span><i class="s-unknown"></i>unknown</span>
      <span><i class="sev-P0"></i>P0</span><span><i class="sev-P1"></i>P1</span><span><i class="sev-P2"></i>P2</span><span><i class="sev-P3"></i>P3</span>
      <span><i class="silenced"></i>silenced</span><span>blue edge: acknowledged · dashed: flapping</span>
    </div>
    <div id="groups"></div>`;
  const groupsEl = root.querySelector('#groups');
  const summaryEl = root.querySelector('#summary');
  const q = root.querySelector('#q');
  const groupSel = root.querySelector('#group');
  groupSel.value = prefs.group;

  let tileEls = new Map(); // target ID → tile element
  let groupOf = new Map(); // target ID → group record
  let generation = 0; // bumps to abandon a render in progress
  let dirty = new Set();
  let frame = 0;

  function matches(t) {
    const a = store.worst(t.id);
    switch (prefs.filter) {
      case 'problems': if (t.status !== 'down' && !(a && a.state !== 'silenced')) return false; break;
      case 'down': case 'up': case 'unknown': if (t.status !== prefs.filter) return false; break;
    }
    if (!prefs.q) return true;
    const s = prefs.q.toLowerCase();
    if (t.id.toLowerCase().includes(s) || (t.name || '').toLowerCase().includes(s)) return true;
    for (const v of Object.values(t.labels || {})) if (v.toLowerCase().includes(s)) return true;
    return false;
  }

  function groupKey(t) {
    const l = t.labels || {};
    if (prefs.group === 'none') return 'all targets';
    if (prefs.group === 'host') return l.host || hostOf(t.id);
    if (prefs.group === 'namespace') return l.namespace || 'outside Kubernetes';
    // Kubernetes targets carry their namespace: group them by namespace/Service.
    if (l.namespace && l.service) return l.namespace + '/' + l.service;
    return l.service || l.host || hostOf(t.id);
  }

  // tileClass colours a tile: an unmuted alert's severity wins over the state.
  function tileClass(t) {
    const a = store.worst(t.id);
    let c = 'tile s-' + (t.status || 'unknown');
    if (a) c += a.state === 'silenced' ? ' silenced' : ' sev-' + a.severity + (a.state === 'acknowledged' ? ' acked' : '');
    if (t.flapping) c += ' flapping';
    return c;
  }

  function tileTitle(t) {
    const a = store.worst(t.id);
    let s = `${t.id}\n${t.status}${t.flapping ? ' (flapping)' : ''} since ${ago(t.since)}`;
    if (t.last) s += `\nlast: ${t.last.class} in ${fmtDuration(t.last.duration_seconds)}${t.last.error ? ': ' + t.last.error : ''}`;
    if (a) s += `\n${a.severity} ${a.state}: ${a.summary}`;
    return s;
  }

  const tileHTML = (t) => `<a class="${tileClass(t)}" href="#/target/${encodeURIComponent(t.id)}" data-id="${h(t.id)}" title="${h(tileTitle(t))}">${h(shortName(t))}</a>`;

  function rank(t) {
    const a = store.worst(t.id);
    if (a && a.state !== 'silenced') return Number(a.severity.slice(1));
    return t.status === 'down' ? 4 : t.status === 'unknown' ? 5 : 6;
  }

  function groupCounts(g) {
    let down = 0, alerting = 0;
    for (const t of g.targets) {
      if (t.status === 'down') down++;
      const a = store.worst(t.id);
      if (a && a.state !== 'silenced') alerting++;
    }
    const parts = [`${g.targets.length} target${g.targets.length === 1 ? '' : 's'}`];
    if (down) parts.push(`${down} down`);
    if (alerting) parts.push(`${alerting} alerting`);
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
    const groups = new Map();
    for (const t of store.targets.values()) {
      if (!matches(t)) continue;
      const k = groupKey(t);
      if (!groups.has(k)) groups.set(k, { key: k, targets: [] });
      groups.get(k).targets.push(t);
    }
    const list = [...groups.values()];
    for (const g of list) {
      g.targets.sort((a, b) => rank(a) - rank(b) || (a.id < b.id ? -1 : 1));
      g.worst = rank(g.targets[0]);
    }
    list.sort((a, b) => a.worst - b.worst || (a.key < b.key ? -1 : 1));
    tileEls = new Map();
    groupOf = new Map();
    summary();
    if (store.loaded && list.length === 0) {
      groupsEl.innerHTML = `<p class="empty">${store.targets.size ? 'No target matches.' : 'No targets configured yet: add some under targets: in the configuration file.'}</p>`;
      return;
    }
    // Section skeletons first, then tiles in chunks.
    groupsEl.innerHTML = list.map((g, i) => `<section class="group" data-g="${i}"><h2>${h(g.key)} <span class="muted">${h(groupCounts(g))}</span></h2><div class="tiles"></div></section>`).join('');
    const sections = groupsEl.children;
    list.forEach((g, i) => { g.el = sections[i]; g.tilesEl = sections[i].lastElementChild; g.headEl = sections[i].querySelector('.muted'); });
    let gi = 0, ti = 0, built = 0;
    const step = (budget, limit) => {
      const start = performance.now();
      while (gi < list.length) {
        const g = list[gi];
        const end = Math.min(g.targets.length, ti + 500);
        const before = g.tilesEl.children.length;
        g.tilesEl.insertAdjacentHTML('beforeend', g.targets.slice(ti, end).map(tileHTML).join(''));
        const kids = g.tilesEl.children;
        for (let k = before; k < kids.length; k++) {
          const t = g.targets[ti + k - before];
          tileEls.set(t.id, kids[k]);
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

  // Live updates: recolour tiles in place, recount their groups once per frame.
  function flush() {
    frame = 0;
    for (const g of dirty) if (g.headEl) g.headEl.textContent = groupCounts(g);
    dirty = new Set();
    summary();
  }
  function touch(id) {
    const t = store.targets.get(id);
    const el = tileEls.get(id);
    if (!t) return;
    if (!el) {
      if (!groupOf.has(id) && matches(t)) scheduleRender();
      return;
    }
    el.className = tileClass(t);
    el.title = tileTitle(t);
    dirty.add(groupOf.get(id));
    if (!frame) frame = requestAnimationFrame(flush);
  }
  let renderTimer = 0;
  function scheduleRender(delay = 250) {
    clearTimeout(renderTimer);
    renderTimer = setTimeout(render, delay);
  }

  q.addEventListener('input', () => { prefs.q = q.value.trim(); scheduleRender(150); });
  groupSel.addEventListener('change', () => { prefs.group = groupSel.value; render(); });
  root.querySelector('#filters').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-f]');
    if (!b) return;
    prefs.filter = b.dataset.f;
    for (const x of root.querySelectorAll('#filters button')) x.classList.toggle('on', x === b);
    render();
  });

  render();
  return {
    update(type, data) {
      if (type === 'target') touch(data.id);
      else if (type === 'alert') touch(data.target);
    },
    unmount() { generation++; clearTimeout(renderTimer); if (frame) cancelAnimationFrame(frame); },
  };
}
