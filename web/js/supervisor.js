// Supervisor page: sign in, then the session table (GET /api/sessions), refreshed every 2 s.
// All user data goes in with textContent (see h()); nothing is parsed as HTML.
import { $, vtax, api, action, clearError, h, setState, show, showError, ApiError } from './common.js';

const REFRESH_MS = 2000;
const st = { token: null, user: null, timer: null, loading: false };
vtax.page = 'supervisor';
vtax.st = st;

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('login'), async () => {
    const res = await api('POST', '/api/auth/login', {
      body: { username: $('username').value.trim(), password: $('password').value },
    });
    if (res.role !== 'supervisor') {
      throw new ApiError('forbidden', `此页面仅供督导使用 This page is for supervisors (you are ${res.role})`);
    }
    st.token = res.token;
    st.user = res.user || { username: $('username').value.trim() };
    $('password').value = '';
    $('me').textContent = `· ${st.user.display_name || st.user.username}`;
    show('login-card', false);
    show('sessions-card', true);
    setState('idle', 'signed in 已登录');
    await refresh();
    schedule();
  });
});

$('signout').addEventListener('click', signOut);

function signOut() {
  clearTimeout(st.timer);
  st.timer = null;
  st.token = null;
  $('sessions').tBodies[0].replaceChildren();
  $('me').textContent = '';
  show('sessions-card', false);
  show('login-card', true);
  setState('idle');
}

$('refresh').addEventListener('click', () => action($('refresh'), refresh));
$('auto-refresh').addEventListener('change', schedule);

function schedule() {
  clearTimeout(st.timer);
  st.timer = null;
  if (!st.token || !$('auto-refresh').checked) return;
  st.timer = setTimeout(async () => {
    try {
      await refresh();
    } catch (e) {
      showError(e);
    }
    schedule();
  }, REFRESH_MS);
}

async function refresh() {
  if (!st.token || st.loading) return;
  st.loading = true;
  try {
    const data = await api('GET', '/api/sessions?limit=200', { token: st.token });
    render(data.sessions || []);
    vtax.sessions = data.sessions || [];
    vtax.refreshedAt = Date.now();
    $('updated').textContent = `更新于 updated ${new Date().toLocaleTimeString()}`;
    clearError();
    setState('loaded', `${(data.sessions || []).length} sessions`);
  } catch (e) {
    if (e.code === 'unauthorized') {
      signOut();
      throw new ApiError(e.code, `登录已过期 Please sign in again (${e.message})`);
    }
    throw e;
  } finally {
    st.loading = false;
  }
}

function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

function fmtNum(v) {
  return v === null || v === undefined ? '—' : Number(v).toFixed(1);
}

function cell(text, cls) {
  return h('td', { class: cls, text: text ?? '' });
}

function ratingCell(r) {
  if (!r) return cell('—', 'rating');
  const td = h('td', { class: 'rating text' });
  td.append(h('strong', { class: 'score', text: `${r.score} / 5` }));
  if (r.comment) td.append(h('br'), h('span', { class: 'comment', text: r.comment }));
  return td;
}

function summaryCell(s) {
  if (!s) return cell('—', 'summary');
  const td = h('td', { class: 'summary text' });
  td.append(
    h('div', { class: 'asked' }, h('strong', { text: '问 Asked: ' }), s.asked || ''),
    h('div', { class: 'handled' }, h('strong', { text: '办 Handled: ' }), s.handled || ''),
    h('div', { class: 'result' }, h('strong', { text: '结果 Result: ' }), s.result || ''),
  );
  if (Array.isArray(s.items) && s.items.length) {
    td.append(h('div', { class: 'items' }, h('strong', { text: '事项 Items: ' }), s.items.join(', ')));
  }
  return td;
}

function render(sessions) {
  const rows = sessions.map((s) => {
    const agent = s.agent ? s.agent.display_name || s.agent.username : '—';
    const outcome = s.end_reason ? `${s.outcome} (${s.end_reason})` : s.outcome;
    return h(
      'tr',
      { 'data-session-id': s.id },
      cell(fmtTime(s.joined_at)),
      cell(fmtNum(s.wait_s), 'num'),
      cell(fmtNum(s.duration_s), 'num'),
      cell(agent),
      cell(s.category),
      cell(s.channel),
      cell(s.language),
      cell(outcome),
      ratingCell(s.rating),
      summaryCell(s.summary),
    );
  });
  $('sessions').tBodies[0].replaceChildren(...rows);
}

setState('idle');
