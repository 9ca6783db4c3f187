// Shared helpers for the V-Tax pages: HTTP API calls, the Socket.IO connection with acks,
// error display and small DOM utilities. Plain ES module, no bundler.
// User data is only ever put into the page with textContent / value (never innerHTML).

/** Global test/debug handle. Tests read window.vtax.state and window.vtax.pc. */
export const vtax = (window.vtax = window.vtax || {});
vtax.state = vtax.state || 'idle';

export const $ = (id) => document.getElementById(id);

/** An error carrying the contract's {code, message}. */
export class ApiError extends Error {
  constructor(code, message, details) {
    super(message || code);
    this.code = code;
    this.details = details;
  }
}

/** Format an error for people: the server's message, plus which fields were bad. */
export function describeError(err) {
  if (!err) return '';
  let text = err.message || String(err);
  if (err.code && !text.includes(err.code)) text += ` (${err.code})`;
  if (Array.isArray(err.details) && err.details.length) {
    const parts = err.details.map((d) => {
      const loc = Array.isArray(d.loc) ? d.loc.join('.') : String(d.loc ?? '');
      return loc ? `${loc}: ${d.msg}` : String(d.msg);
    });
    text += ' — ' + parts.join('; ');
  }
  return text;
}

/** Show an error in the element with id `error` (empty/undefined clears it). */
export function showError(err) {
  const el = $('error');
  if (!el) return;
  el.textContent = err ? describeError(err) : '';
  if (err) {
    vtax.lastError = { code: err.code || null, message: err.message || String(err) };
    console.warn('vtax error', err);
  }
}

export function clearError() {
  showError(null);
}

/**
 * A status notice that is not an error (e.g. "peer reconnecting"): one line under the error
 * line, created on first use. Empty/undefined hides it. Mirrored in window.vtax.notice.
 */
export function showNotice(text) {
  let el = $('notice');
  if (!el) {
    if (!text) return;
    const anchor = $('error');
    if (!anchor) return;
    el = h('div', { id: 'notice', class: 'notice' });
    el.setAttribute('role', 'status');
    el.setAttribute('aria-live', 'polite');
    anchor.after(el);
  }
  el.textContent = text || '';
  el.classList.toggle('hidden', !text);
  vtax.notice = text || '';
}

/**
 * What a page needs to resume its live session after a reload, in sessionStorage (this tab
 * only): the token, the session and participant ids, last_seq and role-specific bits.
 * Written at session start, cleared when the session's work is done.
 */
const RESUME_PREFIX = 'vtax.resume.';
export const resumeStore = {
  load(page) {
    try {
      const raw = sessionStorage.getItem(RESUME_PREFIX + page);
      const data = raw ? JSON.parse(raw) : null;
      return data && typeof data === 'object' ? data : null;
    } catch {
      return null;
    }
  },
  save(page, data) {
    try {
      sessionStorage.setItem(RESUME_PREFIX + page, JSON.stringify({ ...data, savedAt: Date.now() }));
    } catch (e) {
      console.warn('sessionStorage unavailable', e);
    }
  },
  update(page, patch) {
    const current = this.load(page);
    if (current) this.save(page, { ...current, ...patch });
  },
  clear(page) {
    try {
      sessionStorage.removeItem(RESUME_PREFIX + page);
    } catch {
      /* nothing stored */
    }
  },
};

/** Set the visible status line (id `status`) and window.vtax.state. */
export function setState(state, text) {
  vtax.state = state;
  const el = $('status');
  if (el) el.textContent = text ? `${state} — ${text}` : state;
  document.body.dataset.state = state;
}

export function show(el, visible = true) {
  const node = typeof el === 'string' ? $(el) : el;
  if (node) node.classList.toggle('hidden', !visible);
}

/** Create an element with text content and optional attributes; children appended in order. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('data-')) el.setAttribute(k, String(v));
    else el[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** JSON HTTP call. Resolves with the parsed body, rejects with ApiError. */
export async function api(method, path, { body, token } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError('network', `Network error 网络错误: ${e.message}`);
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(e.code || `http_${res.status}`, e.message || `HTTP ${res.status}`, e.details);
  }
  return data;
}

/**
 * A bearer-authenticated fetch for what is not a JSON call (uploads, downloads). Resolves with
 * the Response when it is 2xx; rejects with ApiError from the error envelope otherwise.
 */
export async function fetchOk(method, path, { token, body, headers = {} } = {}) {
  const h2 = { ...headers };
  if (token) h2.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { method, headers: h2, body, cache: 'no-store' });
  } catch (e) {
    throw new ApiError('network', `Network error 网络错误: ${e.message}`);
  }
  if (res.ok) return res;
  let e = {};
  try {
    e = ((await res.json()) || {}).error || {};
  } catch {
    /* not JSON */
  }
  throw new ApiError(e.code || `http_${res.status}`, e.message || `HTTP ${res.status}`, e.details);
}

let catalogPromise = null;
/** GET /api/catalog once per page. */
export function getCatalog() {
  if (!catalogPromise) {
    catalogPromise = api('GET', '/api/catalog').catch((e) => {
      catalogPromise = null;
      throw e;
    });
  }
  return catalogPromise;
}

/** Bilingual label for a catalog name: {zh-CN, en} object or a plain string. */
export function bilingual(name, fallback = '') {
  if (!name) return fallback;
  if (typeof name === 'string') return name;
  const zh = name['zh-CN'] || name.zh || '';
  const en = name.en || '';
  if (zh && en && zh !== en) return `${zh} ${en}`;
  return zh || en || fallback;
}

/** Look up a category object in the catalog by code. */
export function findCategory(catalog, code) {
  return (catalog?.categories || []).find((c) => c.code === code) || null;
}

/** Fill a <select> with options [{value, label}], keeping the current choice when possible. */
export function fillSelect(select, options, preferred) {
  const keep = preferred ?? select.value;
  select.replaceChildren(...options.map((o) => h('option', { value: o.value, text: o.label })));
  if (keep && options.some((o) => o.value === keep)) select.value = keep;
}

/**
 * Connect the Socket.IO client (global `io` from /vendor/socket.io.min.js) with the token.
 * Resolves once connected; rejects with ApiError on connect_error (e.g. unauthorized).
 */
export function connectSocket(token, { timeoutMs = 10000 } = {}) {
  if (typeof window.io !== 'function') {
    return Promise.reject(new ApiError('client', 'Socket.IO client not loaded 客户端未加载'));
  }
  const socket = window.io({ auth: { token }, transports: ['websocket', 'polling'] });
  vtax.socket = socket;
  followDrain(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      socket.disconnect();
      reject(new ApiError('timeout', 'Could not connect to the server 无法连接服务器'));
    }, timeoutMs);
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      const data = err && err.data;
      // A refused token will not get better by retrying: stop and report.
      if (data && data.code) {
        cleanup();
        socket.disconnect();
        reject(new ApiError(data.code, data.message || err.message));
      }
      // Otherwise (transport error) the client keeps retrying until the timeout.
    };
    function cleanup() {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    }
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}

/**
 * `server:draining {reconnect, within_s}`: the node is shutting down. Move now (close the
 * transport, with jitter; socket.io-client reconnects on its own, through the balancer to a
 * live node), and if the node still cuts us off ("io server disconnect", after which the
 * client would not reconnect by itself) connect again. Pages resume their session on 'connect'.
 */
function followDrain(socket) {
  socket.on('server:draining', (msg) => {
    const within = Math.max(0, Number(msg && msg.within_s) || 0);
    socket.vtaxDrainingUntil = Date.now() + within * 1000 + 15000;
    vtax.draining = true;
    const delay = Math.random() * Math.min(within * 500, 2000);
    setTimeout(() => {
      if (socket.connected && socket.io.engine) socket.io.engine.close();
    }, delay);
  });
  socket.on('disconnect', (reason) => {
    if (reason === 'io server disconnect' && isDraining(socket)) {
      setTimeout(() => socket.connect(), 200 + Math.random() * 800);
    }
  });
}

/** True while a drain announced by the server may still cut this socket off. */
export function isDraining(socket) {
  return Boolean(socket && socket.vtaxDrainingUntil && Date.now() < socket.vtaxDrainingUntil);
}

/**
 * Emit an event with an ack. Resolves with the ack (minus `ok`) on {ok:true},
 * rejects with ApiError on {ok:false, error} or when no ack arrives in time.
 */
export function emitAck(socket, event, payload, { timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    if (!socket) {
      reject(new ApiError('not_connected', 'Not connected 未连接'));
      return;
    }
    socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
      if (err) {
        reject(new ApiError('timeout', `No answer from the server for ${event} 服务器无响应`));
        return;
      }
      if (ack && ack.ok) {
        resolve(ack);
      } else {
        const e = (ack && ack.error) || {};
        reject(new ApiError(e.code || 'bad_ack', e.message || `${event} failed`, e.details));
      }
    });
  });
}

/** Format seconds as m:ss for people. */
export function fmtSeconds(s) {
  if (s === null || s === undefined || Number.isNaN(Number(s))) return '—';
  const total = Math.max(0, Math.round(Number(s)));
  const m = Math.floor(total / 60);
  const sec = total % 60;
  return `${m}:${String(sec).padStart(2, '0')}`;
}

/** Run an async UI action: clears the error, disables the button while running, shows errors. */
export async function action(button, fn) {
  clearError();
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}
