// Agent page: sign in -> status -> offers -> video call -> summary -> ready for next; documents
// for the taxpayer during and after the session.
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
  findCategory,
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
  FOLLOW_UP_LABELS,
  RESULT_LABELS,
  fmtBytes,
  fmtTime,
  label,
  poller,
  ratingText,
  uploadDocument,
} from './loop.js';

const POLL_MS = 5000; // fallback: `session:loop` brings changes at once

const st = {
  token: null,
  user: null,
  socket: null,
  router: null,
  catalog: null,
  offer: null, // current offer:new payload
  offerTimer: null,
  media: null, // Promise<{stream, error}>, started when the agent accepts
  session: null, // session:start payload
  call: null,
  agentStatus: 'offline',
  resuming: false, // a session:resume is in flight
  deliverFor: null, // the session whose documents the deliver card shows
  deliveries: [],
  summaryVersion: null, // the version saved last (null: not saved on this page yet)
};
vtax.page = 'agent';
vtax.st = st;

// ---- sign in ----------------------------------------------------------------------------

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('login'), async () => {
    const res = await api('POST', '/api/auth/login', {
      body: { username: $('username').value.trim(), password: $('password').value },
    });
    if (res.role !== 'agent') {
      throw new ApiError('forbidden', `此页面仅供坐席使用 This page is for agents (you are ${res.role})`);
    }
    st.token = res.token;
    st.user = res.user || { username: $('username').value.trim() };
    $('password').value = '';
    st.catalog = await getCatalog().catch(catalogMissing);
    await openSocket();
    showDesk();
    setState('idle', 'signed in 已登录');
    await loadRecent();
  });
});

/** Without the catalog the desk still works, but the summary has no categories or items. */
function catalogMissing(e) {
  showError(new ApiError(e.code, `业务目录无法加载 The business catalog could not be loaded: ${e.message}`));
  return null;
}

function showDesk() {
  $('me').textContent = `· ${st.user.display_name || st.user.username}`;
  show('login-card', false);
  show('desk', true);
}

$('signout').addEventListener('click', () => {
  action($('signout'), async () => {
    if (st.call) throw new ApiError('in_session', '请先挂断 Hang up first');
    resume.clear();
    try {
      await emitAck(st.socket, 'agent:status', { status: 'offline' }, { timeoutMs: 3000 });
    } catch {
      /* disconnecting makes the agent offline anyway */
    }
    if (st.socket) st.socket.disconnect();
    st.socket = null;
    st.token = null;
    hideOffer();
    for (const id of ['desk', 'call-card', 'summary-card', 'deliver-card', 'recent-card']) show(id, false);
    show('login-card', true);
    $('me').textContent = '';
    setAgentStatus('offline', '');
    setState('idle');
  });
});

// ---- status -----------------------------------------------------------------------------

const STATUS_LABELS = {
  offline: '离线 offline',
  available: '空闲 available',
  reserved: '振铃 reserved',
  busy: '通话中 busy',
  wrap_up: '整理 wrap_up',
  away: '小休 away',
};

function setAgentStatus(status, reason) {
  st.agentStatus = status;
  vtax.agentStatus = status;
  $('agent-state').textContent = STATUS_LABELS[status] || status;
  $('agent-state').dataset.status = status;
  $('agent-state-reason').textContent = reason ? `(${reason})` : '';
}

for (const status of ['available', 'away', 'offline']) {
  $(status).addEventListener('click', () => {
    action($(status), () => sendStatus(status));
  });
}

async function sendStatus(status) {
  // After a resume the server may think a busy agent is offline: do not take offers mid-call.
  if (st.call && status === 'available') throw new ApiError('in_session', '请先挂断 Hang up first');
  const ack = await emitAck(st.socket, 'agent:status', { status });
  setAgentStatus(ack.status || status, '');
  return ack;
}

// ---- socket -----------------------------------------------------------------------------

async function openSocket() {
  const socket = await connectSocket(st.token);
  st.socket = socket;
  st.router = new SignalRouter(socket, { onSeq: resume.persistSeq });
  // Recording hook: consent prompt/status, send-only peer connection to the recorder.
  bindRecording(socket, { getCall: () => st.call, role: 'agent' });
  socket.on('agent:status', (msg) => {
    if (msg && msg.status) setAgentStatus(msg.status, msg.reason);
  });
  socket.on('offer:new', onOffer);
  socket.on('offer:revoked', (msg) => {
    if (st.offer && msg && msg.offer_id === st.offer.offer_id) {
      hideOffer();
      if (!st.call) releaseMedia();
      $('agent-state-reason').textContent = `请求已撤回 offer withdrawn (${msg.reason})`;
    }
  });
  socket.on('session:start', onSessionStart);
  socket.on('session:end', (msg) => {
    if (st.session && msg && msg.session_id === st.session.session_id) endCall(msg.reason);
  });
  socket.on('session:peer', (msg) => resume.onPeer(msg));
  // The taxpayer checked, rated or acknowledged a document: refresh now (the pollers below
  // are only the fallback for an event missed while reconnecting).
  socket.on('session:loop', (msg) => {
    if (!msg) return;
    if ((msg.step === 'check' || msg.step === 'rating') && st.session && msg.session_id === st.session.session_id) {
      refreshCheck().catch((e) => showError(e));
    }
    if (msg.step === 'delivery_ack' && msg.session_id === st.deliverFor) {
      loadDeliveries().catch((e) => showError(e));
    }
  });
  socket.on('disconnect', (reason) => {
    if (socket !== st.socket || reason === 'io client disconnect') return;
    hideOffer();
    setAgentStatus('offline', 'disconnected');
    if (resume.onDisconnect(socket, reason)) return;
    showError(new ApiError('disconnected', `连接中断 Connection lost (${reason})`));
  });
  // After an automatic reconnect (network change, node drain): resume the live session.
  socket.on('connect', () => {
    if (socket === st.socket && st.call && st.session) resume.resumeLive();
  });
  // After an automatic reconnect the server sees a fresh, offline agent.
  socket.io.on('reconnect', () => {
    clearError();
    setAgentStatus('offline', 'reconnected');
  });
}

// ---- offers -----------------------------------------------------------------------------

function languageName(code) {
  const l = (st.catalog?.languages || []).find((x) => x.code === code);
  return l ? `${bilingual(l.name, code)} (${code})` : code;
}
function channelName(code) {
  const c = (st.catalog?.channels || []).find((x) => x.code === code);
  return c ? `${bilingual(c.name, code)} (${code})` : code;
}
function categoryName(code) {
  const c = findCategory(st.catalog, code);
  return c ? `${bilingual(c.name, code)} (${code})` : code;
}

function onOffer(offer) {
  if (!offer || !offer.offer_id) return;
  st.offer = offer;
  vtax.offer = offer;
  const t = offer.ticket || {};
  $('offer-category').textContent = categoryName(t.category);
  $('offer-language').textContent = languageName(t.language);
  $('offer-channel').textContent = channelName(t.channel);
  $('offer-waited').textContent = fmtSeconds(t.waited_s);
  $('offer-question').textContent = t.question || '';
  const deadline = performance.now() + Number(offer.expires_in_s || 0) * 1000;
  clearInterval(st.offerTimer);
  const tick = () => {
    const left = Math.max(0, (deadline - performance.now()) / 1000);
    $('offer-countdown').textContent = `${Math.ceil(left)} s`;
    if (left <= 0) clearInterval(st.offerTimer); // the server revokes it
  };
  tick();
  st.offerTimer = setInterval(tick, 250);
  $('accept').disabled = false;
  $('reject').disabled = false;
  show('offer-card', true);
  setState('offered', t.category || '');
}

function hideOffer() {
  clearInterval(st.offerTimer);
  st.offerTimer = null;
  st.offer = null;
  vtax.offer = null;
  show('offer-card', false);
  if (vtax.state === 'offered') setState('idle');
}

function releaseMedia() {
  if (st.media) st.media.then(({ stream }) => stopStream(stream));
  st.media = null;
}

$('accept').addEventListener('click', () => {
  const offer = st.offer;
  if (!offer) return;
  vtax.acceptClickedAt = Date.now();
  // The camera starts while the accept travels to the server.
  if (!st.media) st.media = getLocalMedia();
  $('reject').disabled = true;
  action($('accept'), async () => {
    try {
      const ack = await emitAck(st.socket, 'offer:accept', { offer_id: offer.offer_id });
      vtax.acceptedSessionId = ack.session_id;
    } catch (e) {
      if (!st.call) releaseMedia();
      throw e;
    } finally {
      if (st.offer === offer) hideOffer();
    }
  });
});

$('reject').addEventListener('click', () => {
  const offer = st.offer;
  if (!offer) return;
  action($('reject'), async () => {
    try {
      await emitAck(st.socket, 'offer:reject', { offer_id: offer.offer_id, reason: 'rejected' });
    } finally {
      if (st.offer === offer) hideOffer();
    }
  });
});

// ---- the call ---------------------------------------------------------------------------

function onSessionStart(start, { fresh = false } = {}) {
  if (st.call) st.router.detach();
  hideOffer();
  st.session = start;
  vtax.sessionId = start.session_id;
  // a reload can resume it (the ticket fills the summary form after a reload)
  resume.persistSession(start, { user: st.user, ticket: start.ticket || null });
  openDeliveries(start.session_id, '本次通话 This call');
  showNotice('');
  const t = start.ticket || {};
  $('call-category').textContent = categoryName(t.category);
  $('call-language').textContent = languageName(t.language);
  $('call-channel').textContent = channelName(t.channel);
  $('call-question').textContent = t.question || '';
  const peer = start.peer || {};
  $('peer-name').textContent = peer.display_name ? `· ${peer.display_name}` : '';
  show('summary-card', false);
  show('call-card', true);
  show('deliver-card', true);
  $('hangup').disabled = false;
  fillTransferTargets();
  setState('in_session', t.category || '');
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
    onError: (e) => console.warn('call error', e),
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

// Transfer: the taxpayer goes to another queue (at priority there); this call ends with
// reason `transferred` and the summary form opens as after a hang-up.
$('transfer-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('transfer'), async () => {
    if (!st.session) return;
    const id = st.session.session_id;
    const note = $('transfer-note').value.trim();
    await emitAck(st.socket, 'session:transfer', {
      session_id: id,
      category: $('transfer-category').value,
      ...(note ? { note } : {}),
    });
    $('transfer-note').value = '';
    if (st.session && st.session.session_id === id) endCall('transferred');
  });
});

function fillTransferTargets() {
  fillSelect(
    $('transfer-category'),
    (st.catalog?.categories || []).map((c) => ({ value: c.code, label: `${bilingual(c.name, c.code)} (${c.code})` })),
    (st.session && st.session.ticket && st.session.ticket.category) || undefined,
  );
}

function endCall(reason) {
  if (!st.call && vtax.state === 'ended') return;
  if (st.router) st.router.detach();
  st.call = null;
  showNotice('');
  // No more resuming; a reload still shows the summary form until it is saved.
  resume.markEnded(reason);
  setState('ended', reason || '');
  show('call-card', false);
  openSummary(reason);
}

// ---- summary ----------------------------------------------------------------------------

function fillItems(categoryCode) {
  const cat = findCategory(st.catalog, categoryCode);
  const keep = new Set([...$('items').selectedOptions].map((o) => o.value));
  $('items').replaceChildren(
    ...(cat?.items || []).map((i) =>
      h('option', { value: i.code, text: `${bilingual(i.name, i.code)} (${i.code})`, selected: keep.has(i.code) }),
    ),
  );
}

function openSummary(reason) {
  const t = (st.session && st.session.ticket) || {};
  fillSelect(
    $('summary-category'),
    (st.catalog?.categories || []).map((c) => ({ value: c.code, label: `${bilingual(c.name, c.code)} (${c.code})` })),
    t.category,
  );
  $('items').replaceChildren();
  fillItems($('summary-category').value);
  $('asked').value = t.question || '';
  $('handled').value = '';
  $('actions').value = '';
  $('result').value = 'resolved';
  $('follow-up-due').value = '';
  show('follow-up-due-row', false);
  $('summary-saved').textContent = '';
  $('summary-check').textContent = '';
  $('summary-info').textContent =
    `${categoryName(t.category)} · ${languageName(t.language)} · ${reason ? `ended: ${reason}` : ''}`;
  st.summaryVersion = null;
  show('summary-card', true);
  if (st.session) openDeliveries(st.session.session_id, '本次服务 This session');
}

$('summary-category').addEventListener('change', () => fillItems($('summary-category').value));
$('result').addEventListener('change', () => show('follow-up-due-row', $('result').value === 'follow_up'));

$('summary-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('save-summary'), async () => {
    if (!st.session) throw new ApiError('invalid_state', 'No session 没有会话');
    $('summary-saved').textContent = '';
    const body = {
      asked: $('asked').value.trim(),
      handled: $('handled').value.trim(),
      result: $('result').value,
    };
    const t = st.session.ticket || {};
    const category = $('summary-category').value;
    if (category && category !== t.category) body.category = category; // refines the ask
    const items = [...$('items').selectedOptions].map((o) => o.value);
    if (items.length) body.items = items;
    const actions = $('actions')
      .value.split('\n')
      .map((a) => a.trim())
      .filter(Boolean);
    if (actions.length) body.actions = actions;
    if (body.result === 'follow_up' && $('follow-up-due').value) body.follow_up_due = $('follow-up-due').value;
    const id = encodeURIComponent(st.session.session_id);
    const saved = await api('POST', `/api/sessions/${id}/summary`, { body, token: st.token });
    resume.clear(); // the session's work is done
    st.summaryVersion = saved.version;
    $('summary-saved').textContent = `已保存 Saved (版本 version ${saved.version})`;
    await refreshCheck();
  });
});

/** The taxpayer's check and rating of the saved summary (a dispute asks for a revision). */
async function refreshCheck() {
  if (!st.session || !st.token) return;
  const view = await api('GET', `/api/sessions/${encodeURIComponent(st.session.session_id)}`, { token: st.token });
  if (!view.summary) return;
  const parts = [`纳税人核对 Taxpayer's check: ${label(CHECK_LABELS, view.loop.check)}`];
  if (view.loop.check === 'disputed') {
    const { checks } = await api('GET', `/api/sessions/${encodeURIComponent(st.session.session_id)}/checks`, {
      token: st.token,
    });
    const last = checks.filter((c) => c.decision === 'disputed').pop();
    if (last) parts.push(`纳税人意见 The taxpayer says: “${last.comment}”`);
    parts.push('请修改小结后重新保存 Please revise the summary and save it again');
  }
  if (view.rating) parts.push(`评价 Rating: ${ratingText(view.rating)}`);
  $('summary-check').textContent = parts.join(' · ');
  $('summary-check').dataset.check = view.loop.check;
  vtax.summaryView = view;
}

// ---- deliver -------------------------------------------------------------------------------

function openDeliveries(sessionId, about = '') {
  $('deliver-for').textContent = about;
  if (st.deliverFor !== sessionId) {
    st.deliverFor = sessionId;
    st.deliveries = [];
    $('deliveries').tBodies[0].replaceChildren();
    $('doc-file').value = '';
    $('doc-note').value = '';
  }
  show('deliver-card', true);
  loadDeliveries().catch((e) => showError(e));
}

async function loadDeliveries() {
  const sessionId = st.deliverFor;
  if (!sessionId || !st.token) return;
  const q = `session_id=${encodeURIComponent(sessionId)}&status=all&limit=200`;
  const data = await api('GET', `/api/deliveries?${q}`, { token: st.token });
  if (st.deliverFor !== sessionId) return;
  st.deliveries = data.deliveries || [];
  renderDeliveries();
}

function renderDeliveries() {
  vtax.deliveries = st.deliveries;
  $('deliveries').tBodies[0].replaceChildren(
    ...st.deliveries.map((d) => {
      const status = h('td', { class: 'status', text: label(DELIVERY_LABELS, d.status) });
      status.dataset.status = d.status;
      const receipt = d.receipt && d.receipt.acknowledged_at ? fmtTime(d.receipt.acknowledged_at) : '—';
      return h(
        'tr',
        { 'data-delivery-id': d.id },
        h('td', { class: 'text', text: d.note ? `${d.filename}\n${d.note}` : d.filename }),
        h('td', { class: 'num', text: fmtBytes(d.size_bytes) }),
        h('td', { text: fmtTime(d.created_at) }),
        status,
        h('td', { class: 'receipt', text: receipt }),
      );
    }),
  );
}

$('deliver-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('deliver'), async () => {
    if (!st.deliverFor) throw new ApiError('invalid_state', 'No session 没有会话');
    const file = $('doc-file').files[0];
    const view = await uploadDocument(st.token, st.deliverFor, file, $('doc-note').value.trim());
    $('doc-file').value = '';
    $('doc-note').value = '';
    st.deliveries = [view, ...st.deliveries.filter((d) => d.id !== view.id)];
    renderDeliveries();
  });
});

$('ready').addEventListener('click', () => {
  action($('ready'), async () => {
    await sendStatus('available');
    show('summary-card', false);
    show('deliver-card', false);
    st.deliverFor = null;
    await loadRecent();
    setState('idle', 'ready 等待接入');
  });
});

// ---- my recent sessions: follow-ups, documents after the session ----------------------------

async function loadRecent() {
  if (!st.token) return;
  const q = new URLSearchParams({ limit: '20' });
  if ($('recent-open-only').checked) q.set('follow_up', 'open');
  const data = await api('GET', `/api/sessions?${q}`, { token: st.token });
  $('recent').tBodies[0].replaceChildren(...(data.sessions || []).map(recentRow));
  show('recent-card', true);
}

function recentRow(s) {
  const fu = s.loop.follow_up;
  const td = (text, cls) => h('td', { class: cls, text });
  const buttons = h('td', {});
  if (!['waiting', 'live', 'abandoned'].includes(s.outcome)) {
    const docs = h('button', { type: 'button', class: 'deliver secondary', text: '送达文件 Documents' });
    docs.addEventListener('click', () =>
      action(docs, async () => {
        if (st.call) throw new ApiError('in_session', '请先挂断 Hang up first');
        openDeliveries(s.id, `会话 Session: ${categoryName(s.category)} · ${fmtTime(s.joined_at)}`);
        $('deliver-card').scrollIntoView({ block: 'start' });
      }),
    );
    buttons.append(docs);
  }
  if (fu.status === 'open') {
    const done = h('button', { type: 'button', class: 'follow-up-done', text: '跟进完成 Follow-up done' });
    done.addEventListener('click', () =>
      action(done, async () => {
        await api('POST', `/api/sessions/${encodeURIComponent(s.id)}/follow-up`, { body: {}, token: st.token });
        await loadRecent();
      }),
    );
    buttons.append(done);
  }
  return h(
    'tr',
    { 'data-session-id': s.id },
    td(fmtTime(s.joined_at)),
    td(categoryName(s.category)),
    td(s.outcome),
    td(s.summary ? `${label(RESULT_LABELS, s.summary.result)}: ${s.summary.handled}` : '—', 'text'),
    td(s.summary ? label(CHECK_LABELS, s.loop.check) : '—'),
    td(fu.status === 'none' ? '—' : `${label(FOLLOW_UP_LABELS, fu.status)}${fu.due ? ` (${fu.due})` : ''}`, 'follow-up'),
    td(ratingText(s.rating)),
    buttons,
  );
}

$('recent-refresh').addEventListener('click', () => action($('recent-refresh'), loadRecent));
$('recent-open-only').addEventListener('change', () => action(null, loadRecent));

// ---- resume: socket reconnect and page reload (web/js/resume.js) -----------------------

const resume = new SessionResume({
  key: 'agent',
  st,
  endCall: (reason) => endCall(reason),
  onMoved: () => show('call-card', false),
  peerLeftText: { notice: '对方已离开 The taxpayer has left', error: '纳税人已断开 The taxpayer has disconnected' },
});

function showTicket(t) {
  $('call-category').textContent = categoryName(t.category);
  $('call-language').textContent = languageName(t.language);
  $('call-channel').textContent = channelName(t.channel);
  $('call-question').textContent = t.question || '';
}

/** Page load: if this tab has a live (or just ended) session, sign in again and pick it up. */
async function restoreFromStorage() {
  const saved = resume.load();
  if (!saved || !saved.token || !saved.sessionId) return;
  st.token = saved.token;
  st.user = saved.user || { username: '' };
  vtax.sessionId = saved.sessionId;
  st.catalog = await getCatalog().catch(catalogMissing);
  showDesk();
  loadRecent().catch((e) => showError(e));
  if (saved.ended) {
    // The session ended before the reload: the summary is still to write.
    st.session = { session_id: saved.sessionId, ticket: saved.ticket || {} };
    try {
      await openSocket();
    } catch (e) {
      return restoreFailed(e);
    }
    setState('ended', saved.endReason || '');
    openSummary(saved.endReason || '');
    return;
  }
  vtax.restoring = true;
  showTicket(saved.ticket || {});
  show('call-card', true);
  $('hangup').disabled = true;
  setState('resuming', 'resuming the call 正在恢复通话');
  st.media = getLocalMedia();
  try {
    const ack = await resume.restore(saved, async () => {
      if (!st.socket || !st.socket.connected) {
        if (st.socket) st.socket.disconnect();
        await openSocket();
      }
    });
    onSessionStart(ack, { fresh: true });
  } catch (e) {
    if (e.code === 'unauthorized') {
      restoreFailed(e);
    } else {
      st.session = { session_id: saved.sessionId, ticket: saved.ticket || {} };
      endCall(e.code === 'session_ended' ? 'session_ended' : e.code || 'disconnected');
    }
  }
  vtax.restoring = false;
}

/** The stored sign-in is no good (expired token): back to the sign-in form. */
function restoreFailed(e) {
  resume.clear();
  releaseMedia();
  if (st.socket) st.socket.disconnect();
  st.socket = null;
  st.token = null;
  for (const id of ['desk', 'call-card', 'summary-card', 'deliver-card', 'recent-card']) show(id, false);
  show('login-card', true);
  $('me').textContent = '';
  setState('idle');
  showError(e);
}

// ---- init -------------------------------------------------------------------------------

setState('idle');
setAgentStatus('offline', '');
// Delivery receipts and the taxpayer's check come back while the cards are on screen.
poller(loadDeliveries, POLL_MS, {
  active: () => !$('deliver-card').classList.contains('hidden') && st.deliveries.some((d) => d.status !== 'acknowledged'),
  onError: (e) => showError(e),
});
poller(refreshCheck, POLL_MS, {
  active: () => !$('summary-card').classList.contains('hidden') && st.summaryVersion !== null,
  onError: (e) => showError(e),
});
restoreFromStorage().catch((e) => showError(e));
