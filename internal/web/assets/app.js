// The dashboard's shell: the shared state of targets and open alerts, kept current by
// the event stream; the hash router; the token form; the banner.
import { api, getToken, setToken, EventStream } from './api.js';
import * as overview from './overview.js';
import * as target from './target.js';
import * as incidents from './incidents.js';
import * as exposure from './exposure.js';
import * as security from './security.js';
import * as automation from './automation.js';
import * as cluster from './cluster.js';

// Measurements the browser test reads.
window.__pp = { start: performance.now(), longestTask: 0 };
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__pp.longestTask = Math.max(window.__pp.longestTask, e.duration);
  }).observe({ type: 'longtask', buffered: true });
} catch { /* longtask entries are not supported everywhere */ }

// store holds every target and every open alert.
export const store = {
  targets: new Map(),
  alerts: new Map(), // open alerts by ID
  byTarget: new Map(), // target ID → Map of its open alerts
  loaded: false,
  async load() {
    const [t, a] = await Promise.all([api('/targets'), api('/alerts')]);
    this.targets = new Map(t.targets.map((x) => [x.id, x]));
    this.alerts = new Map();
    this.byTarget = new Map();
    for (const al of a.alerts) this.putAlert(al);
    this.loaded = true;
  },
  putTarget(t) {
    const old = this.targets.get(t.id);
    this.targets.set(t.id, old ? { ...old, ...t } : t);
    return !old;
  },
  putAlert(a) {
    const open = a.state !== 'resolved';
    const old = this.alerts.get(a.id);
    if (old && old.target !== a.target) this.byTarget.get(old.target)?.delete(a.id);
    if (open) {
      this.alerts.set(a.id, a);
      if (!this.byTarget.has(a.target)) this.byTarget.set(a.target, new Map());
      this.byTarget.get(a.target).set(a.id, a);
    } else {
      this.alerts.delete(a.id);
      this.byTarget.get(a.target)?.delete(a.id);
    }
  },
  // worst returns the target's most urgent open alert: unmuted before muted, then by severity.
  worst(id) {
    const m = this.byTarget.get(id);
    if (!m || m.size === 0) return null;
    let best = null;
    for (const a of m.values()) {
      const rank = (x) => (x.state === 'silenced' ? 10 : 0) + Number(x.severity.slice(1));
      if (!best || rank(a) < rank(best)) best = a;
    }
    return best;
  },
};

const view = document.getElementById('view');
const banner = document.getElementById('banner');
let current = null; // { module, instance }

export function showBanner(msg, ok = false) {
  banner.textContent = msg;
  banner.classList.toggle('ok', ok);
  banner.hidden = !msg;
  if (ok) setTimeout(() => { if (banner.textContent === msg) banner.hidden = true; }, 4000);
}

function route() {
  const hash = location.hash || '#/';
  let mod = overview, params = {};
  if (hash.startsWith('#/target/')) {
    mod = target;
    params.id = decodeURIComponent(hash.slice('#/target/'.length));
  } else if (hash.startsWith('#/incidents')) {
    mod = incidents;
  } else if (hash.startsWith('#/exposure')) {
    mod = exposure;
  } else if (hash.startsWith('#/security')) {
    mod = security;
  } else if (hash.startsWith('#/automation')) {
    mod = automation;
  } else if (hash.startsWith('#/cluster')) {
    mod = cluster;
  }
  if (current?.instance?.unmount) current.instance.unmount();
  document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active', a.dataset.nav === mod.name));
  view.textContent = '';
  view.dataset.role = session.role; // what this page was drawn for
  current = { module: mod, instance: mod.mount(view, params, { store, showBanner, canWrite }) };
  window.scrollTo(0, 0);
}

function updateOpenCount() {
  const el = document.getElementById('open-count');
  let n = 0;
  for (const a of store.alerts.values()) if (a.state === 'firing' || a.state === 'pending') n++;
  el.textContent = n;
  el.hidden = n === 0;
}

const live = document.getElementById('live');
const stream = new EventStream({
  onEvent(type, data) {
    if (loading) { pending.push([type, data]); return; }
    apply(type, data);
  },
  async onReset() {
    await reload();
  },
  onStatus(on, err) {
    live.className = 'live ' + (on ? 'on' : 'off');
    live.textContent = on ? 'live' : 'offline';
    if (err && err.status === 401) live.textContent = 'needs a token';
  },
});

// Events that arrive while the state loads are applied after it, so the snapshot does
// not overwrite them.
let loading = false, pending = [];
let whoReady = Promise.resolve();
function apply(type, data) {
  if (type === 'target') {
    window.__pp.targetEvents = (window.__pp.targetEvents || 0) + 1;
    window.__pp.firstTargetEvent ??= performance.now();
    store.putTarget(data);
  }
  else if (type === 'alert') { store.putAlert(data); updateOpenCount(); }
  current?.instance?.update?.(type, data);
}

async function reload() {
  loading = true;
  try {
    await store.load();
    for (const [type, data] of pending) {
      if (type === 'target') store.putTarget(data); else if (type === 'alert') store.putAlert(data);
    }
    showBanner('');
  } catch (e) {
    showBanner(e.status === 401
      ? 'This server needs an API token to read: enter one at the top right (portpatrol token create --role viewer).'
      : 'Cannot load state: ' + e.message);
  }
  pending = [];
  loading = false;
  updateOpenCount();
  await whoReady;
  route();
}

// The token form: the token stays in this tab's sessionStorage only.
const form = document.getElementById('token-form');
const who = document.getElementById('who');
const clear = document.getElementById('token-clear');
// session.role is the caller's role as /whoami tells it ('' while unknown): the pages
// offer writes (ack, resolve, silence, notes) only to an operator or admin.
export const session = { role: '' };
export const canWrite = () => session.role === 'operator' || session.role === 'admin';
async function showWho() {
  clear.hidden = !getToken();
  let role = '';
  try {
    const me = await api('/whoami');
    role = me.role;
    who.textContent = getToken() ? `${me.name} (${me.role})` : '';
  } catch (e) {
    who.textContent = getToken() ? e.message : '';
  }
  who.dataset.role = role;
  session.role = role;
}
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = document.getElementById('token-input');
  setToken(input.value.trim());
  input.value = '';
  await showWho();
  stream.restart();
  await reload();
});
clear.addEventListener('click', async () => {
  setToken('');
  await showWho();
  stream.restart();
  await reload();
});

// The header shows portpatrol's own health from /-/self (beside the API's base): a
// red badge naming the failing self-checks, each with its detail in the tooltip.
const selfEl = document.getElementById('self');
const selfURL = (document.querySelector('meta[name="pp-api"]')?.content || '').replace(/\/api\/v1\/?$/, '') + '/-/self';
async function showSelf() {
  try {
    const res = await fetch(selfURL, { cache: 'no-store' });
    const st = await res.json();
    const bad = (st.checks || []).filter((c) => !c.ok);
    selfEl.href = selfURL;
    selfEl.className = 'self' + (bad.length ? ' bad' : '');
    selfEl.textContent = bad.length ? `portpatrol: ${bad.map((c) => c.name).join(', ')}` : 'self-checks ok';
    selfEl.title = bad.length ? bad.map((c) => `${c.name} (${c.severity}): ${c.detail}`).join('\n') : 'every self-check passes';
    selfEl.dataset.failing = bad.length;
    selfEl.hidden = false;
  } catch {
    selfEl.hidden = true; // an older server without /-/self
  }
}
showSelf();
setInterval(showSelf, 15000);

window.addEventListener('hashchange', route);
stream.start();
// The role is asked for beside the state, and known before the first page is drawn.
whoReady = showWho();
reload();
