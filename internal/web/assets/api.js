// The API client: JSON requests with the session's bearer token, and the event stream
// read with fetch (EventSource cannot send an Authorization header).
const base = document.querySelector('meta[name="pp-api"]').content;
const tokenKey = 'portpatrol.token';

export function getToken() { return sessionStorage.getItem(tokenKey) || ''; }
export function setToken(t) {
  if (t) sessionStorage.setItem(tokenKey, t); else sessionStorage.removeItem(tokenKey);
}

// APIError carries the API's JSON error: its message, the role it wanted and the field at fault.
export class APIError extends Error {
  constructor(status, body) {
    super(body.error || `HTTP ${status}`);
    this.status = status;
    this.requiredRole = body.required_role || '';
    this.field = body.field || '';
  }
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const t = getToken();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

// api sends a request to the API and returns the decoded JSON answer, or throws an APIError.
export async function api(path, { method = 'GET', body } = {}) {
  const opts = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
  if (body !== undefined) opts.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(base + path, opts);
  } catch (e) {
    throw new APIError(0, { error: 'cannot reach portpatrol: ' + e.message });
  }
  let data = {};
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: text }; }
  }
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}

export const targetPath = (id) => '/targets/' + encodeURIComponent(id);

// EventStream follows /events, reconnecting with Last-Event-ID after a drop.
export class EventStream {
  constructor({ onEvent, onReset, onStatus }) {
    this.onEvent = onEvent; this.onReset = onReset; this.onStatus = onStatus;
    this.lastID = ''; this.retry = 3000; this.ctrl = null; this.stopped = false;
  }
  start() { this.stopped = false; this.loop(); }
  stop() { this.stopped = true; if (this.ctrl) this.ctrl.abort(); }
  // restart reconnects at once, e.g. with a new token.
  restart() { this.restarting = true; if (this.ctrl) this.ctrl.abort(); }
  async loop() {
    while (!this.stopped) {
      this.ctrl = new AbortController();
      try {
        const h = headers({ Accept: 'text/event-stream' });
        if (this.lastID) h['Last-Event-ID'] = this.lastID;
        const res = await fetch(base + '/events', { headers: h, signal: this.ctrl.signal, cache: 'no-store' });
        if (!res.ok) {
          let body = {};
          try { body = await res.json(); } catch { /* not JSON */ }
          this.onStatus(false, new APIError(res.status, body));
        } else {
          this.onStatus(true);
          await this.read(res.body.getReader());
        }
      } catch (e) {
        if (e.name !== 'AbortError') this.onStatus(false, e);
      }
      if (this.stopped) return;
      if (this.restarting) { this.restarting = false; continue; }
      this.onStatus(false);
      await new Promise((r) => setTimeout(r, this.retry));
    }
  }
  async read(reader) {
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        this.dispatch(buf.slice(0, i));
        buf = buf.slice(i + 2);
      }
    }
  }
  dispatch(block) {
    let type = 'message', data = '', id = null;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'event') type = value;
      else if (field === 'data') data += (data ? '\n' : '') + value;
      else if (field === 'id') id = value;
      else if (field === 'retry' && /^\d+$/.test(value)) this.retry = +value;
    }
    if (id !== null) this.lastID = id;
    if (type === 'reset') { this.onReset(); return; }
    if (type === 'dropped') { this.restart(); return; }
    if (!data) return;
    try { this.onEvent(type, JSON.parse(data)); } catch (e) { console.error('bad event', e); }
  }
}
