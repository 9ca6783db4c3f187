// Agent page: sign in -> status -> offers -> video call -> summary -> ready for next.
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
  isDraining,
  resumeStore,
  setState,
  show,
  showError,
  showNotice,
  ApiError,
} from './common.js';
import { Call, SignalRouter, getLocalMedia, stopStream } from './rtc.js';
import { bindRecording } from './recording.js'; // recording (docs/recording.md)

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
    st.catalog = await getCatalog().catch(() => null);
    await openSocket();
    showDesk();
    setState('idle', 'signed in 已登录');
  });
});

function showDesk() {
  $('me').textContent = `· ${st.user.display_name || st.user.username}`;
  show('login-card', false);
  show('desk', true);
}

$('signout').addEventListener('click', () => {
  action($('signout'), async () => {
    if (st.call) throw new ApiError('in_session', '请先挂断 Hang up first');
    resumeStore.clear(RESUME_KEY);
    try {
      await emitAck(st.socket, 'agent:status', { status: 'offline' }, { timeoutMs: 3000 });
    } catch {
      /* disconnecting makes the agent offline anyway */
    }
    if (st.socket) st.socket.disconnect();
    st.socket = null;
    st.token = null;
    hideOffer();
    for (const id of ['desk', 'call-card', 'summary-card']) show(id, false);
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
  st.router = new SignalRouter(socket, { onSeq: persistSeq });
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
  socket.on('session:peer', (msg) => {
    if (!st.session || !msg || msg.session_id !== st.session.session_id) return;
    const peer = st.session.peer && st.session.peer.participant_id;
    if (msg.participant_id && peer && msg.participant_id !== peer) return; // e.g. the recorder
    vtax.peerState = msg.state;
    if (msg.state === 'reconnecting') {
      showNotice('对方重新连接中 peer reconnecting');
    } else if (msg.state === 'back') {
      showNotice('');
      // The impolite side restarts ICE so media recovers on the taxpayer's new network path.
      if (st.call && msg.ice_restart && !st.call.polite) st.call.restartIce();
    } else if (msg.state === 'left') {
      showNotice('对方已离开 The taxpayer has left');
      showError(new ApiError('peer_left', '纳税人已断开 The taxpayer has disconnected'));
    }
  });
  socket.on('disconnect', (reason) => {
    if (socket !== st.socket || reason === 'io client disconnect') return;
    hideOffer();
    setAgentStatus('offline', 'disconnected');
    if (st.call && st.session) {
      if (reason === 'io server disconnect' && !isDraining(socket)) {
        continuedElsewhere();
      } else {
        // Keep the call: socket.io-client reconnects, then 'connect' resumes the session.
        setState('in_session', 'reconnecting 重新连接中');
      }
      return;
    }
    showError(new ApiError('disconnected', `连接中断 Connection lost (${reason})`));
  });
  // After an automatic reconnect (network change, node drain): resume the live session.
  socket.on('connect', () => {
    if (socket === st.socket && st.call && st.session) resumeLive();
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
  persistSession(start); // a reload can resume it
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
  $('hangup').disabled = false;
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

function endCall(reason) {
  if (!st.call && vtax.state === 'ended') return;
  if (st.router) st.router.detach();
  st.call = null;
  showNotice('');
  // No more resuming; a reload still shows the summary form until it is saved.
  resumeStore.update(RESUME_KEY, { ended: true, endReason: reason || '' });
  setState('ended', reason || '');
  show('call-card', false);
  openSummary(reason);
}

// ---- summary ----------------------------------------------------------------------------

function openSummary(reason) {
  const t = (st.session && st.session.ticket) || {};
  const cat = findCategory(st.catalog, t.category);
  fillSelect(
    $('items'),
    (cat?.items || []).map((i) => ({ value: i.code, label: `${bilingual(i.name, i.code)} (${i.code})` })),
  );
  for (const o of $('items').options) o.selected = false;
  $('asked').value = t.question || '';
  $('handled').value = '';
  $('result').value = 'resolved';
  $('summary-saved').textContent = '';
  $('summary-info').textContent =
    `${categoryName(t.category)} · ${languageName(t.language)} · ${reason ? `ended: ${reason}` : ''}`;
  show('summary-card', true);
}

$('summary-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('save-summary'), async () => {
    if (!st.session) throw new ApiError('invalid_state', 'No session 没有会话');
    $('summary-saved').textContent = '';
    const payload = {
      session_id: st.session.session_id,
      asked: $('asked').value.trim(),
      handled: $('handled').value.trim(),
      result: $('result').value,
    };
    const items = [...$('items').selectedOptions].map((o) => o.value);
    if (items.length) payload.items = items;
    await emitAck(st.socket, 'session:summary', payload);
    resumeStore.clear(RESUME_KEY); // the session's work is done
    $('summary-saved').textContent = '已保存 Saved';
  });
});

$('ready').addEventListener('click', () => {
  action($('ready'), async () => {
    await sendStatus('available');
    show('summary-card', false);
    setState('idle', 'ready 等待接入');
  });
});

// ---- resume: socket reconnect and page reload -------------------------------------------

const RESUME_KEY = 'agent';
// Resume errors after which there is nothing to resume.
const RESUME_FINAL = new Set(['session_ended', 'not_in_session', 'unauthorized', 'forbidden']);

function persistSession(start) {
  resumeStore.save(RESUME_KEY, {
    token: st.token,
    user: st.user,
    sessionId: start.session_id,
    participantId: start.participant_id,
    peerId: start.peer ? start.peer.participant_id : null,
    ticket: start.ticket || null, // for the summary form after a reload
    lastSeq: st.router ? st.router.lastSeq(start.session_id) : 0,
  });
}

function persistSeq(sessionId, seq) {
  const saved = resumeStore.load(RESUME_KEY);
  if (saved && !saved.ended && saved.sessionId === sessionId && seq > (saved.lastSeq || 0)) {
    resumeStore.update(RESUME_KEY, { lastSeq: seq });
  }
}

/** The socket reconnected during the call: same RTCPeerConnection, resume the session. */
async function resumeLive() {
  if (st.resuming || !st.call || !st.session) return;
  const id = st.session.session_id;
  const socket = st.socket;
  st.resuming = true;
  setState('in_session', 'resuming 正在恢复');
  try {
    await st.router.resume(id);
    clearError();
    if (st.call && st.call.pc.connectionState === 'connected') {
      setState('connected', 'video connected 视频已连接');
    } else {
      setState('in_session', 'reconnecting 重新连接中');
    }
  } catch (e) {
    if (!st.session || st.session.session_id !== id) return;
    if (RESUME_FINAL.has(e.code)) {
      endCall(e.code === 'session_ended' ? 'session_ended' : e.code);
    } else {
      showError(e);
      setTimeout(() => {
        if (socket === st.socket && socket.connected) resumeLive();
      }, 1000);
    }
  } finally {
    st.resuming = false;
  }
}

/** Another window took this session over (the server disconnected us): stop here. */
function continuedElsewhere() {
  resumeStore.clear(RESUME_KEY);
  if (st.router) st.router.detach();
  st.call = null;
  showNotice('');
  show('call-card', false);
  showError(new ApiError('moved', '通话已在其他窗口继续 The call continues in another window'));
  setState('moved', 'continued in another window');
}

function showTicket(t) {
  $('call-category').textContent = categoryName(t.category);
  $('call-language').textContent = languageName(t.language);
  $('call-channel').textContent = channelName(t.channel);
  $('call-question').textContent = t.question || '';
}

/** Page load: if this tab has a live (or just ended) session, sign in again and pick it up. */
async function restoreFromStorage() {
  const saved = resumeStore.load(RESUME_KEY);
  if (!saved || !saved.token || !saved.sessionId) return;
  st.token = saved.token;
  st.user = saved.user || { username: '' };
  vtax.sessionId = saved.sessionId;
  st.catalog = await getCatalog().catch(() => null);
  showDesk();
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
  const deadline = Date.now() + 45000; // beyond the server's reconnect grace
  for (let attempt = 0; ; attempt += 1) {
    try {
      if (!st.socket || !st.socket.connected) {
        if (st.socket) st.socket.disconnect();
        await openSocket();
      }
      st.router.setLastSeq(saved.sessionId, saved.lastSeq);
      const ack = await st.router.resume(saved.sessionId, { fresh: true });
      onSessionStart(ack, { fresh: true });
      break;
    } catch (e) {
      if (!RESUME_FINAL.has(e.code) && Date.now() < deadline) {
        showError(e);
        await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 4000)));
        continue;
      }
      if (e.code === 'unauthorized') {
        restoreFailed(e);
      } else {
        st.session = { session_id: saved.sessionId, ticket: saved.ticket || {} };
        endCall(e.code === 'session_ended' ? 'session_ended' : e.code || 'disconnected');
      }
      break;
    }
  }
  vtax.restoring = false;
}

/** The stored sign-in is no good (expired token): back to the sign-in form. */
function restoreFailed(e) {
  resumeStore.clear(RESUME_KEY);
  releaseMedia();
  if (st.socket) st.socket.disconnect();
  st.socket = null;
  st.token = null;
  for (const id of ['desk', 'call-card', 'summary-card']) show(id, false);
  show('login-card', true);
  $('me').textContent = '';
  setState('idle');
  showError(e);
}

// ---- init -------------------------------------------------------------------------------

setState('idle');
setAgentStatus('offline', '');
restoreFromStorage().catch((e) => showError(e));
