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
  setState,
  show,
  showError,
  ApiError,
} from './common.js';
import { Call, SignalRouter, getLocalMedia, stopStream } from './rtc.js';

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
    vtax.taxpayerId = res.taxpayer_id;
    $('who').textContent = name ? `您好，${name} · Hello, ${name}` : '您好 · Hello';
    await loadCatalog();
    showSteps('step-request');
    setState('idle', 'signed in 已登录');
    $('question').focus();
  });
});

$('logout').addEventListener('click', () => {
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
  st.router = new SignalRouter(socket);

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
    if (st.session && msg && msg.session_id === st.session.session_id && msg.state === 'left') {
      showError(new ApiError('peer_left', '对方已断开 The agent has disconnected'));
    }
  });
  socket.on('disconnect', (reason) => {
    if (socket !== st.socket) return;
    if (reason === 'io client disconnect') return;
    if (vtax.state === 'queued' || vtax.state === 'in_session' || vtax.state === 'connected') {
      showError(new ApiError('disconnected', `连接中断 Connection lost (${reason})`));
      if (st.call) endCall('disconnected');
      else backToRequest('connection lost');
    }
  });
  return socket;
}

// ---- the call ---------------------------------------------------------------------------

function onSessionStart(start) {
  if (st.call) st.router.detach();
  st.session = start;
  st.ticketId = null;
  vtax.sessionId = start.session_id;
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
    localVideo: $('local-video'),
    remoteVideo: $('remote-video'),
    onConnectionState: (s) => {
      if (vtax.state === 'ended') return;
      if (s === 'connected') setState('connected', 'video connected 视频已连接');
      else if (s === 'disconnected' || s === 'failed') setState('in_session', 'reconnecting 重新连接中');
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
    await emitAck(st.socket, 'session:rate', payload);
    $('rated').textContent = '谢谢！Thank you for your feedback.';
    for (const r of document.querySelectorAll('input[name=score]')) r.disabled = true;
    $('comment').disabled = true;
    show('rate', false);
  });
});

$('again').addEventListener('click', () => {
  clearError();
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
