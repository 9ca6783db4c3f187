// Taxpayer page: identity -> question -> queue -> video call -> rating.
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

const params = new URLSearchParams(location.search);
const STEPS = ['step-identity', 'step-request', 'step-queue', 'step-call', 'step-rate'];

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
};
vtax.page = 'taxpayer';
vtax.st = st;

function showSteps(...visible) {
  for (const id of STEPS) show(id, visible.includes(id));
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
  });
});

function greet(name) {
  $('who').textContent = name ? `您好，${name} · Hello, ${name}` : '您好 · Hello';
}

$('logout').addEventListener('click', () => {
  resumeStore.clear(RESUME_KEY);
  if (st.socket) st.socket.disconnect();
  st.socket = null;
  st.router = null;
  st.token = null;
  st.taxpayerId = null;
  $('id-number').value = '';
  $('name').value = '';
  clearError();
  showSteps('step-identity');
  setState('idle');
});

// ---- step 2: request --------------------------------------------------------------------

async function loadCatalog() {
  const cat = await getCatalog();
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
  st.router = new SignalRouter(socket, { onSeq: persistSeq });
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
      if (st.call && msg.ice_restart && !st.call.polite) st.call.restartIce();
    } else if (msg.state === 'left') {
      showNotice('对方已离开 The agent has left');
      showError(new ApiError('peer_left', '对方已断开 The agent has disconnected'));
    }
  });
  socket.on('disconnect', (reason) => {
    if (socket !== st.socket) return;
    if (reason === 'io client disconnect') return;
    if (st.call && st.session) {
      if (reason === 'io server disconnect' && !isDraining(socket)) {
        continuedElsewhere();
      } else {
        // Keep the call: socket.io-client reconnects, then 'connect' resumes the session.
        setState('in_session', 'reconnecting 重新连接中');
      }
      return;
    }
    if (vtax.state === 'queued' || vtax.state === 'in_session' || vtax.state === 'connected') {
      showError(new ApiError('disconnected', `连接中断 Connection lost (${reason})`));
      if (st.call) endCall('disconnected');
      else backToRequest('connection lost');
    }
  });
  // After an automatic reconnect (network change, node drain): resume the live session.
  socket.on('connect', () => {
    if (socket === st.socket && st.call && st.session) resumeLive();
  });
  return socket;
}

// ---- resume: socket reconnect and page reload -------------------------------------------

const RESUME_KEY = 'taxpayer';
// Resume errors after which there is nothing to resume.
const RESUME_FINAL = new Set(['session_ended', 'not_in_session', 'unauthorized', 'forbidden']);

function persistSession(start) {
  resumeStore.save(RESUME_KEY, {
    token: st.token,
    taxpayerId: st.taxpayerId,
    name: st.name,
    sessionId: start.session_id,
    participantId: start.participant_id,
    peerId: start.peer ? start.peer.participant_id : null,
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
  show('hangup', false);
  showError(new ApiError('moved', '通话已在其他窗口继续 The call continues in another window'));
  setState('moved', 'continued in another window');
}

/** Page load: if this tab has a live (or just ended) session, pick it up. */
async function restoreFromStorage() {
  const saved = resumeStore.load(RESUME_KEY);
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
  const deadline = Date.now() + 45000; // beyond the server's reconnect grace
  for (let attempt = 0; ; attempt += 1) {
    try {
      await ensureSocket();
      st.router.setLastSeq(saved.sessionId, saved.lastSeq);
      const ack = await st.router.resume(saved.sessionId, { fresh: true });
      onSessionStart(ack, { fresh: true });
      break;
    } catch (e) {
      const final = RESUME_FINAL.has(e.code) || Date.now() > deadline;
      if (!final) {
        showError(e);
        await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 4000)));
        continue;
      }
      if (e.code === 'unauthorized') {
        resumeStore.clear(RESUME_KEY);
        releasePreview();
        showSteps('step-identity');
        setState('idle');
        showError(e);
      } else {
        st.session = { session_id: saved.sessionId };
        endCall(e.code === 'session_ended' ? 'session_ended' : e.code || 'disconnected');
      }
      break;
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
  persistSession(start); // a reload can resume it
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
  resumeStore.update(RESUME_KEY, { ended: true, endReason: reason || '' });
  showRating(reason);
}

function showRating(reason) {
  setState('ended', reason || '');
  $('end-reason').textContent = `服务已结束 The session has ended${reason ? ` (${reason})` : ''}.`;
  resetRating();
  showSteps('step-rate');
}

// ---- rating -----------------------------------------------------------------------------

function resetRating() {
  for (const r of document.querySelectorAll('input[name=score]')) {
    r.checked = false;
    r.disabled = false;
  }
  $('comment').value = '';
  $('comment').disabled = false;
  $('rate').disabled = false;
  show('rate', true);
  $('rated').textContent = '';
}

$('rate-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('rate'), async () => {
    const checked = document.querySelector('input[name=score]:checked');
    if (!checked) throw new ApiError('invalid_payload', '请选择评分 Please choose a score');
    const payload = { session_id: st.session.session_id, score: Number(checked.value) };
    const comment = $('comment').value.trim();
    if (comment) payload.comment = comment;
    await ensureSocket(); // not yet connected after a reload on this step
    await emitAck(st.socket, 'session:rate', payload);
    resumeStore.clear(RESUME_KEY); // the session's work is done
    $('rated').textContent = '谢谢！Thank you for your feedback.';
    for (const r of document.querySelectorAll('input[name=score]')) r.disabled = true;
    $('comment').disabled = true;
    show('rate', false);
  });
});

$('again').addEventListener('click', () => {
  clearError();
  resumeStore.clear(RESUME_KEY);
  st.session = null;
  $('question').value = '';
  showSteps('step-request');
  setState('idle');
  $('question').focus();
});

// ---- init -------------------------------------------------------------------------------

setState('idle');
getCatalog().catch((e) => showError(e));
if (params.get('channel') === 'kiosk') document.body.classList.add('kiosk');
restoreFromStorage().catch((e) => showError(e));
