// Small helpers shared by the pages.
const esc = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const h = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => esc[c]);

export function fmtDuration(sec) {
  if (sec == null || isNaN(sec)) return '–';
  if (sec === 0) return '0';
  if (sec < 1e-3) return (sec * 1e6).toFixed(0) + ' µs';
  if (sec < 1) return (sec * 1e3).toFixed(sec < 0.01 ? 2 : 1) + ' ms';
  return sec.toFixed(2) + ' s';
}

export function fmtSpan(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

export function ago(t) {
  if (!t) return '–';
  const ms = Date.now() - Date.parse(t);
  return ms < 0 ? 'in ' + fmtSpan(ms) : fmtSpan(ms) + ' ago';
}

export function fmtTime(t) {
  if (!t) return '–';
  const d = new Date(t);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

// hostOf returns the host of a target ID such as tcp://db.internal:5432.
export function hostOf(id) {
  const m = /^[a-z]+:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/?]+)/i.exec(id);
  return m ? m[1] : id;
}

// shortName is what a tile shows: the name, else host:port and path.
export function shortName(t) {
  if (t.name) return t.name;
  return t.id.replace(/^[a-z]+:\/\//i, '').replace(/^[^@/]*@/, '');
}

export function badge(cls, text) { return `<span class="badge ${h(cls)}">${h(text ?? cls)}</span>`; }

// countdown renders a deadline; tick() keeps every one on the page current.
export function countdown(deadline) {
  if (!deadline) return '–';
  const over = Date.parse(deadline) < Date.now() ? ' overdue' : '';
  return `<span class="countdown${over}" data-deadline="${h(deadline)}">${countdownText(deadline)}</span>`;
}

function countdownText(deadline) {
  const ms = Date.parse(deadline) - Date.now();
  return ms >= 0 ? fmtSpan(ms) + ' left' : 'overdue ' + fmtSpan(ms);
}

export function tickCountdowns(root) {
  for (const el of root.querySelectorAll('[data-deadline]')) {
    const d = el.dataset.deadline;
    el.textContent = countdownText(d);
    el.classList.toggle('overdue', Date.parse(d) < Date.now());
  }
}

// refusal words an API error for the banner, with what to do about it.
export function refusal(err) {
  if (err.status === 401) return `${err.message}. Enter an ${err.requiredRole || 'operator'} token at the top right.`;
  if (err.status === 403) return `Refused: ${err.message}.`;
  return err.field ? `${err.field}: ${err.message}` : err.message;
}

// forgetCommand is the listener address in a hint that ends "portpatrol learned forget
// ADDR", as the API words the hint of a gone learned listener; '' when there is none.
export function forgetCommand(hint) {
  const m = /portpatrol learned forget (\S+)\s*$/.exec(hint || '');
  return m ? m[1] : '';
}
