// Taxpayer page: identity -> question -> queue -> video call -> after the session (the
// agent's summary to confirm or dispute, the rating, delivered documents); "my sessions".
import {
  $,
  vtax,
  api,
  action,
  bilingual,
  clearError,
  connectSocket,
  emitAck,
  fillSelect,
  fmtSeconds,
  getCatalog,
  h,
  setState,
  show,
  showError,
  showNotice,
  ApiError,
} from './common.js';
import { Call, SignalRouter, getLocalMedia, stopStream } from './rtc.js';
import { bindRecording } from './recording.js'; // recording (docs/recording.md)
import { SessionResume } from './resume.js';
import {
  CHECK_LABELS,
  DELIVERY_LABELS,
  DIMENSIONS,
  FOLLOW_UP_LABELS,
  OUTCOME_LABELS,
  categoryLabel,
  downloadDocument,
  fmtBytes,
  fmtTime,
  label,
  poller,
  ratingText,
  summaryFacts,
} from './loop.js';

const params = new URLSearchParams(location.search);
const STEPS = ['step-identity', 'step-request', 'step-history', 'step-queue', 'step-call', 'step-rate'];
const POLL_MS = 5000; // fallback: `session:loop` brings changes at once

const st = {
  token: null,
  taxpayerId: null,
  socket: null,
  router: null,
  ticketId: null,
  session: null, // the session:start payload of the current/last session
  call: null,
  media: null, // Promise<{stream, error}> acquired at "start" for the preview
  name: '', // as entered, for the greeting after a reload
  resuming: false, // a session:resume is in flight
  catalog: null,
  // The session shown after a call or opened from "my sessions": its id, the last Session
  // view (GET /api/sessions/{id}), its deliveries, and which summary version is on screen.
  panel: null,
  historyCursor: null,
};
vtax.page = 'taxpayer';
vtax.st = st;

function showSteps(...visible) {
  for (const id of STEPS) show(id, visible.includes(id));
  // Documents belong to a session: shown in the call and after it.
  show('documents-card', Boolean(st.panel) && (visible.includes('step-rate') || visible.includes('step-call')));
}

// ---- step 1: identity -------------------------------------------------------------------

$('identity-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('auth'), async () => {
    const body = {
      id_type: $('id-type').value,
      id_number: $('id-number').value.trim().toUpperCase(),
    };
    const name = $('name').value.trim();
    if (name) body.name = name;
    const res = await api('POST', '/api/auth/taxpayer', { body });
    st.token = res.token;
    st.taxpayerId = res.taxpayer_id;
    st.name = name;
    vtax.taxpayerId = res.taxpayer_id;
    greet(name);
    await loadCatalog();
    showSteps('step-request');
    setState('idle', 'signed in 已登录');
    $('question').focus();
    await remindPending();
  });
});

/** Documents delivered earlier and not yet acknowledged: say so at sign-in. */
async function remindPending() {
  const data = await api('GET', '/api/deliveries?status=pending&limit=200', { token: st.token });
  const n = (data.deliveries || []).length;
  vtax.pendingDocuments = n;
  if (n) showNotice(`您有 ${n} 份文件待签收，请查看“我的服务记录” ${n} document(s) wait for you: see My sessions`);
}

function greet(name) {
  $('who').textContent = name ? `您好，${name} · Hello, ${name}` : '您好 · Hello';
}

$('logout').addEventListener('click', () => {
  resume.clear();
  if (st.socket) st.socket.disconnect();
  st.socket = null;
  st.router = null;
  st.token = null;
  st.taxpayerId = null;
  st.panel = null;
  $('id-number').value = '';
  $('name').value = '';
  clearError();
  showSteps('step-identity');
  setState('idle');
});

// ---- step 2: request --------------------------------------------------------------------

async function loadCatalog() {
  const cat = await getCatalog();
  st.catalog = cat;
  fillSelect(
    $('category'),
    (cat.categories || []).map((c) => ({ value: c.code, label: bilingual(c.name, c.code) })),
    params.get('category'),
  );
  fillSelect(
    $('language'),
    (cat.languages || []).map((l) => ({ value: l.code, label: bilingual(l.name, l.code) })),
    params.get('language') || 'zh-CN',
  );
  fillSelect(
    $('channel'),
    (cat.channels || []).map((c) => ({ value: c.code, label: bilingual(c.name, c.code) })),
    params.get('channel') || 'web',
  );
}

$('request-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  vtax.startClickedAt = Date.now();
  action($('start'), startRequest);
});

async function startRequest() {
  const question = $('question').value.trim();
  if (!question) throw new ApiError('invalid_payload', '请填写问题 Please enter your question');
  // Start the camera now: the taxpayer sees a preview (and answers the browser's permission
  // prompt) while waiting, and the call starts faster once an agent accepts.
  if (!st.media) st.media = getLocalMedia();
  st.media.then(({ stream }) => {
    if (stream && !st.call) $('local-video').srcObject = stream;
  });
  try {
    await ensureSocket();
    const ack = await emitAck(st.socket, 'queue:join', {
      category: $('category').value,
      language: $('language').value,
      channel: $('channel').value,
      question,
    });
    st.ticketId = ack.ticket_id;
    if (vtax.state !== 'in_session' && vtax.state !== 'connected') {
      updatePosition(ack);
      showSteps('step-queue', 'step-call');
      show('hangup', false);
      show('remote-figure', false); // only the self-preview while waiting
      setState('queued');
    }
  } catch (e) {
    releasePreview();
    throw e;
  }
}

function updatePosition({ position, eta_s }) {
  const eta = eta_s === null || eta_s === undefined ? '—' : fmtSeconds(eta_s);
  $('position').replaceChildren(
    document.createTextNode('排队位置 Position: '),
    Object.assign(document.createElement('span'), {
      className: 'big-number',
      id: 'position-number',
      textContent: String(position),
    }),
    document.createTextNode(`  ·  预计等待 Estimated wait: ${eta}`),
  );
  vtax.position = position;
  vtax.eta_s = eta_s;
}

function releasePreview() {
  if (st.media && !st.call) {
    const m = st.media;
    m.then(({ stream }) => stopStream(stream));
    $('local-video').srcObject = null;
  }
  st.media = null;
}

$('leave').addEventListener('click', () => {
  action($('leave'), async () => {
    if (st.ticketId) await emitAck(st.socket, 'queue:leave', { ticket_id: st.ticketId });
    backToRequest('left the queue 已取消排队');
  });
});

function backToRequest(text) {
  st.ticketId = null;
  releasePreview();
  showSteps('step-request');
  setState('idle', text);
}

// ---- socket -----------------------------------------------------------------------------

async function ensureSocket() {
  if (st.socket && st.socket.connected) return st.socket;
  if (st.socket) st.socket.disconnect();
  const socket = await connectSocket(st.token);
  st.socket = socket;
  st.router = new SignalRouter(socket, { onSeq: resume.persistSeq });
  // Recording hook: consent prompt/status, send-only peer connection to the recorder.
  bindRecording(socket, { getCall: () => st.call, role: 'taxpayer' });

  socket.on('queue:update', (msg) => {
    if (msg && msg.ticket_id === st.ticketId && vtax.state === 'queued') updatePosition(msg);
  });
  socket.on('queue:left', (msg) => {
    if (msg && msg.ticket_id === st.ticketId && vtax.state === 'queued') {
      backToRequest(`left the queue: ${msg.reason}`);
    }
  });
  socket.on('session:start', onSessionStart);
  // The agent transferred the call: the session just ended (`transferred`); the taxpayer now
  // waits in the target queue, at priority, and the next agent's session:start follows.
  socket.on('queue:transferred', (msg) => {
    if (!msg || !msg.ticket_id) return;
    if (st.call) endCall('transferred');
    st.ticketId = msg.ticket_id;
    updatePosition(msg);
    showSteps('step-queue', 'step-call');
    show('hangup', false);
    show('remote-figure', false);
    const to = msg.note ? `${msg.category}: ${msg.note}` : msg.category;
    setState('queued', `已转接 Transferred to ${to}`);
  });
  socket.on('session:end', (msg) => {
    if (st.session && msg && msg.session_id === st.session.session_id) endCall(msg.reason);
  });
  socket.on('session:peer', (msg) => resume.onPeer(msg));
  socket.on('delivery:new', onDeliveryNew);
  // The agent saved or revised the summary, or closed the follow-up: refresh now (the poller
  // below is only the fallback for an event missed while reconnecting).
  socket.on('session:loop', (msg) => {
    if (msg && st.panel && msg.session_id === st.panel.sessionId) refreshPanel().catch((e) => showError(e));
  });
  socket.on('disconnect', (reason) => {
    if (socket !== st.socket) return;
    if (reason === 'io client disconnect') return;
    if (resume.onDisconnect(socket, reason)) return;
    if (vtax.state === 'queued' || vtax.state === 'in_session' || vtax.state === 'connected') {
      showError(new ApiError('disconnected', `连接中断 Connection lost (${reason})`));
      if (st.call) endCall('disconnected');
      else backToRequest('connection lost');
    }
  });
  // After an automatic reconnect (network change, node drain): resume the live session.
  socket.on('connect', () => {
    if (socket === st.socket && st.call && st.session) resume.resumeLive();
  });
  return socket;
}

// ---- resume: socket reconnect and page reload (web/js/resume.js) -----------------------

const resume = new SessionResume({
  key: 'taxpayer',
  st,
  endCall: (reason) => endCall(reason),
  onMoved: () => show('hangup', false),
  peerLeftText: { notice: '对方已离开 The agent has left', error: '对方已断开 The agent has disconnected' },
});

/** Page load: if this tab has a live (or just ended) session, pick it up. */
async function restoreFromStorage() {
  const saved = resume.load();
  if (!saved || !saved.token || !saved.sessionId) return;
  st.token = saved.token;
  st.taxpayerId = saved.taxpayerId || null;
  st.name = saved.name || '';
  vtax.taxpayerId = st.taxpayerId;
  vtax.sessionId = saved.sessionId;
  greet(st.name);
  loadCatalog().catch((e) => showError(e));
  if (saved.ended) {
    // The session ended before the reload: the rating is still to do.
    st.session = { session_id: saved.sessionId };
    showRating(saved.endReason || '');
    return;
  }
  vtax.restoring = true;
  showSteps('step-call');
  show('hangup', false);
  show('remote-figure', true);
  setState('resuming', 'resuming the call 正在恢复通话');
  st.media = getLocalMedia();
  st.media.then(({ stream }) => {
    if (stream && !st.call) $('local-video').srcObject = stream;
  });
  try {
    const ack = await resume.restore(saved, ensureSocket);
    onSessionStart(ack, { fresh: true });
  } catch (e) {
    if (e.code === 'unauthorized') {
      resume.clear();
      releasePreview();
      showSteps('step-identity');
      setState('idle');
      showError(e);
    } else {
      st.session = { session_id: saved.sessionId };
      endCall(e.code === 'session_ended' ? 'session_ended' : e.code || 'disconnected');
    }
  }
  vtax.restoring = false;
}

// ---- the call ---------------------------------------------------------------------------

function onSessionStart(start, { fresh = false } = {}) {
  if (st.call) st.router.detach();
  st.session = start;
  st.ticketId = null;
  vtax.sessionId = start.session_id;
  resume.persistSession(start, { taxpayerId: st.taxpayerId, name: st.name }); // a reload can resume it
  openPanel(start.session_id);
  showNotice('');
  const peer = start.peer || {};
  $('agent-name').textContent = peer.display_name ? `· ${peer.display_name}` : '';
  showSteps('step-call');
  show('hangup', true);
  show('remote-figure', true);
  setState('in_session', peer.display_name ? `with ${peer.display_name}` : '');
  const media = st.media || getLocalMedia();
  st.media = null;
  st.call = new Call({
    socket: st.socket,
    start,
    media,
    freshResume: fresh,
    localVideo: $('local-video'),
    remoteVideo: $('remote-video'),
    onConnectionState: (s) => {
      if (vtax.state === 'ended' || vtax.state === 'moved') return;
      if (s === 'connected') setState('connected', 'video connected 视频已连接');
      else if (s === 'disconnected' || s === 'failed') setState('in_session', 'reconnecting 重新连接中');
      else if (s === 'new' && vtax.state === 'connected') setState('in_session', 'reconnecting 重新连接中');
    },
    onError: (e) => {
      console.warn('call error', e);
      if (e && e.name === 'NotAllowedError') {
        showError(new ApiError('camera', '无法使用摄像头 Camera/microphone not available'));
      }
    },
  });
  st.router.attach(st.call);
}

$('hangup').addEventListener('click', () => {
  action($('hangup'), async () => {
    if (!st.session) return;
    const id = st.session.session_id;
    try {
      await emitAck(st.socket, 'session:end', { session_id: id, reason: 'hangup' });
    } finally {
      if (st.session && st.session.session_id === id) endCall('hangup');
    }
  });
});

function endCall(reason) {
  if (vtax.state === 'ended' && !st.call) return;
  if (st.router) st.router.detach();
  st.call = null;
  showNotice('');
  // No more resuming; a reload still shows the rating until it is given.
  resume.markEnded(reason);
  showRating(reason);
}

function showRating(reason) {
  setState('ended', reason || '');
  $('end-reason').textContent = `服务已结束 The session has ended${reason ? ` (${reason})` : ''}.`;
  openPanel(st.session.session_id);
  showSteps('step-rate');
  refreshPanel().catch((e) => showError(e));
}

// ---- after the session: summary check, rating, documents (also for "my sessions") --------

/** Show `sessionId` in the after-session step and the documents card. */
function openPanel(sessionId) {
  if (st.panel && st.panel.sessionId === sessionId) return;
  st.panel = { sessionId, view: null, deliveries: [], shownVersion: null };
  vtax.panel = st.panel;
  $('summary-view').replaceChildren();
  $('check-status').textContent = '';
  $('check-comment').value = '';
  $('follow-up-status').textContent = '';
  show('summary-waiting', true);
  show('check-form', false);
  resetRating();
  renderDocuments();
  loadDeliveries().catch((e) => showError(e));
}

async function refreshPanel() {
  const panel = st.panel;
  if (!panel || !st.token) return;
  const id = encodeURIComponent(panel.sessionId);
  const [view] = await Promise.all([
    api('GET', `/api/sessions/${id}`, { token: st.token }),
    loadDeliveries(),
  ]);
  if (st.panel !== panel) return;
  panel.view = view;
  renderPanel(view);
}

/** Nothing left to wait for: the summary confirmed, rated, every document acknowledged
 * (a later document still arrives as `delivery:new`). */
function panelSettled() {
  const v = st.panel && st.panel.view;
  return Boolean(
    v &&
      v.summary &&
      v.loop.check === 'confirmed' &&
      v.rating &&
      st.panel.deliveries.every((d) => d.status === 'acknowledged'),
  );
}

function renderPanel(view) {
  const panel = st.panel;
  const s = view.summary;
  show('summary-waiting', !s);
  if (s && panel.shownVersion !== s.version) {
    panel.shownVersion = s.version;
    $('summary-view').replaceChildren(summaryFacts(s, st.catalog));
  }
  const fu = view.loop.follow_up;
  $('follow-up-status').textContent =
    fu && fu.status !== 'none'
      ? `跟进 Follow-up: ${label(FOLLOW_UP_LABELS, fu.status)}${fu.due ? ` · 期限 due ${fu.due}` : ''}`
      : '';
  const check = view.loop.check;
  const ended = !['waiting', 'live'].includes(view.outcome);
  $('check-status').textContent = s ? `核对 Check: ${label(CHECK_LABELS, check)}` : '';
  $('check-status').dataset.check = s ? check : '';
  show('check-form', Boolean(s) && ended && check === 'pending');
  if (view.rating) showRated(view.rating);
  vtax.panelView = view;
}

/** Confirm or dispute the summary on screen: the event in a session, else REST. */
async function sendCheck(decision) {
  const panel = st.panel;
  if (!panel || !panel.view || !panel.view.summary) throw new ApiError('invalid_state', '还没有小结 No summary yet');
  const comment = $('check-comment').value.trim();
  if (decision === 'dispute' && !comment) {
    throw new ApiError('invalid_payload', '请说明哪里不对 Please say what is wrong');
  }
  const body = { decision, version: panel.view.summary.version };
  if (comment) body.comment = comment;
  await loopStep('session:check', 'check', body);
  $('check-comment').value = '';
  await refreshPanel();
}

$('confirm-summary').addEventListener('click', () => action($('confirm-summary'), () => sendCheck('confirm')));
$('dispute-summary').addEventListener('click', () => action($('dispute-summary'), () => sendCheck('dispute')));

/** A loop step of the panel's session: the Socket.IO event if connected, else the REST endpoint. */
async function loopStep(event, path, body) {
  const id = st.panel.sessionId;
  if (st.socket && st.socket.connected) return emitAck(st.socket, event, { session_id: id, ...body });
  return api('POST', `/api/sessions/${encodeURIComponent(id)}/${path}`, { body, token: st.token });
}

// ---- rating -----------------------------------------------------------------------------

function buildDimensions() {
  const box = $('dimensions');
  box.replaceChildren(
    ...DIMENSIONS.map(([key, name]) => {
      const select = h(
        'select',
        { id: `dim-${key}`, name: key },
        h('option', { value: '', text: '—' }),
        ...[5, 4, 3, 2, 1].map((n) => h('option', { value: String(n), text: String(n) })),
      );
      return h('div', { class: 'dimension' }, h('label', { htmlFor: `dim-${key}`, text: name }), select);
    }),
  );
}

function resetRating() {
  for (const r of document.querySelectorAll('input[name=score]')) {
    r.checked = false;
    r.disabled = false;
  }
  for (const [key] of DIMENSIONS) {
    $(`dim-${key}`).value = '';
    $(`dim-${key}`).disabled = false;
  }
  $('comment').value = '';
  $('comment').disabled = false;
  $('rate').disabled = false;
  show('rate-form', true);
  show('rate', true);
  $('rated').textContent = '';
}

function showRated(rating) {
  if ($('rated').textContent) return;
  $('rated').textContent = `已评价 Rated: ${ratingText(rating)}`;
  show('rate-form', false);
}

$('rate-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('rate'), async () => {
    if (!st.panel) throw new ApiError('invalid_state', 'No session 没有会话');
    const checked = document.querySelector('input[name=score]:checked');
    if (!checked) throw new ApiError('invalid_payload', '请选择评分 Please choose a score');
    const body = { score: Number(checked.value) };
    const comment = $('comment').value.trim();
    if (comment) body.comment = comment;
    const dimensions = {};
    for (const [key] of DIMENSIONS) {
      const v = $(`dim-${key}`).value;
      if (v) dimensions[key] = Number(v);
    }
    if (Object.keys(dimensions).length) body.dimensions = dimensions;
    await loopStep('session:rate', 'rating', body);
    const saved = resume.load();
    if (saved && saved.sessionId === st.panel.sessionId) resume.clear(); // the call's work is done
    $('rated').textContent = '谢谢！Thank you for your feedback.';
    for (const r of document.querySelectorAll('input[name=score]')) r.disabled = true;
    for (const [key] of DIMENSIONS) $(`dim-${key}`).disabled = true;
    $('comment').disabled = true;
    show('rate', false);
  });
});

$('again').addEventListener('click', () => {
  clearError();
  resume.clear();
  st.session = null;
  st.panel = null;
  $('question').value = '';
  showSteps('step-request');
  setState('idle');
  $('question').focus();
});

// ---- documents (deliver) -----------------------------------------------------------------

async function loadDeliveries() {
  const panel = st.panel;
  if (!panel || !st.token) return;
  const q = `session_id=${encodeURIComponent(panel.sessionId)}&status=all&limit=200`;
  const data = await api('GET', `/api/deliveries?${q}`, { token: st.token });
  if (st.panel !== panel) return;
  panel.deliveries = data.deliveries || [];
  renderDocuments();
}

function onDeliveryNew(msg) {
  if (!msg || !msg.id) return;
  vtax.lastDelivery = msg;
  if (st.panel && msg.session_id === st.panel.sessionId) {
    if (!st.panel.deliveries.some((d) => d.id === msg.id)) {
      st.panel.deliveries.unshift({ ...msg, status: 'pending', receipt: null, note: '' });
      renderDocuments();
    }
    loadDeliveries().catch((e) => showError(e)); // the full view (note, times)
  }
  showNotice(`收到新文件 New document: ${msg.filename}`);
}

function renderDocuments() {
  const list = st.panel ? st.panel.deliveries : [];
  show('documents-empty', list.length === 0);
  $('documents').replaceChildren(
    ...list.map((d) => {
      const status = h('span', { class: 'delivery-status', text: label(DELIVERY_LABELS, d.status) });
      status.dataset.status = d.status;
      const li = h(
        'li',
        { 'data-delivery-id': d.id },
        h('strong', { class: 'filename', text: d.filename }),
        ` · ${fmtBytes(d.size_bytes)} · `,
        status,
      );
      if (d.note) li.append(h('div', { class: 'note', text: d.note }));
      if (d.receipt && d.receipt.acknowledged_at) {
        li.append(h('div', { class: 'receipt', text: `签收于 Acknowledged ${fmtTime(d.receipt.acknowledged_at)}` }));
      }
      const dl = h('button', { type: 'button', class: 'download', text: '下载 Download' });
      dl.addEventListener('click', () => action(dl, () => download(d)));
      li.append(h('div', {}, dl));
      if (d.status !== 'acknowledged') {
        const ack = h('button', { type: 'button', class: 'ack secondary', text: '确认收到 Acknowledge' });
        ack.disabled = !d.downloadedSha && d.status === 'pending';
        ack.addEventListener('click', () => action(ack, () => acknowledge(d)));
        li.lastChild.append(ack);
      }
      return li;
    }),
  );
}

async function download(d) {
  d.downloadedSha = await downloadDocument(st.token, d);
  if (d.status === 'pending') d.status = 'downloaded';
  renderDocuments();
  loadDeliveries().catch((e) => showError(e));
}

async function acknowledge(d) {
  const body = d.downloadedSha ? { sha256: d.downloadedSha } : {};
  const view = await api('POST', `/api/deliveries/${encodeURIComponent(d.id)}/ack`, { body, token: st.token });
  const list = st.panel ? st.panel.deliveries : [];
  const i = list.findIndex((x) => x.id === view.id);
  if (i >= 0) list[i] = { ...view, downloadedSha: d.downloadedSha };
  renderDocuments();
}

// ---- my sessions ----------------------------------------------------------------------------

async function openHistory() {
  st.historyCursor = null;
  $('my-sessions').tBodies[0].replaceChildren();
  showSteps('step-history');
  await loadHistory();
}

async function loadHistory() {
  const q = new URLSearchParams({ limit: '20' });
  if (st.historyCursor) q.set('before', st.historyCursor);
  const data = await api('GET', `/api/sessions?${q}`, { token: st.token });
  st.historyCursor = data.next_before;
  const rows = (data.sessions || []).map(historyRow);
  $('my-sessions').tBodies[0].append(...rows);
  show('my-sessions-empty', $('my-sessions').tBodies[0].rows.length === 0);
  show('my-sessions-more', Boolean(data.next_before));
}

function historyRow(s) {
  const fu = s.loop.follow_up;
  const open = h('button', { type: 'button', class: 'open secondary', text: '查看 Open' });
  open.addEventListener('click', () =>
    action(open, async () => {
      st.session = { session_id: s.id };
      $('end-reason').textContent = `${fmtTime(s.joined_at)} · ${categoryLabel(st.catalog, s.category)}`;
      openPanel(s.id);
      showSteps('step-rate');
      await refreshPanel();
    }),
  );
  const fuText = fu.status === 'none' ? '—' : `${label(FOLLOW_UP_LABELS, fu.status)}${fu.due ? ` (${fu.due})` : ''}`;
  const td = (text, cls) => h('td', { class: cls, text });
  return h(
    'tr',
    { 'data-session-id': s.id },
    td(fmtTime(s.joined_at)),
    td(categoryLabel(st.catalog, s.category)),
    td(s.agent ? s.agent.display_name || s.agent.username : '—'),
    td(label(OUTCOME_LABELS, s.outcome)),
    td(s.summary ? `${s.summary.handled}` : '—', 'text'),
    td(s.summary ? label(CHECK_LABELS, s.loop.check) : '—', 'check'),
    td(fuText, 'follow-up'),
    td(ratingText(s.rating), 'rating'),
    h('td', {}, open),
  );
}

$('my-sessions-open').addEventListener('click', () => action($('my-sessions-open'), openHistory));
$('after-history').addEventListener('click', () => action($('after-history'), openHistory));
$('my-sessions-more').addEventListener('click', () => action($('my-sessions-more'), loadHistory));
$('history-back').addEventListener('click', () => {
  clearError();
  st.panel = null;
  showSteps('step-request');
  setState('idle');
});

// ---- init -------------------------------------------------------------------------------

setState('idle');
buildDimensions();
getCatalog()
  .then((c) => (st.catalog = c))
  .catch((e) => showError(e));
// While the after-session step is on screen: the summary (and its revisions), the check,
// the follow-up and the documents, every 5 s as a fallback for `session:loop`.
poller(refreshPanel, POLL_MS, {
  active: () =>
    Boolean(st.panel && st.token) && !$('step-rate').classList.contains('hidden') && !panelSettled(),
  onError: (e) => showError(e),
});
if (params.get('channel') === 'kiosk') document.body.classList.add('kiosk');
restoreFromStorage().catch((e) => showError(e));
