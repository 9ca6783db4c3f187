// Recording, browser side (docs/recording.md):
// - the taxpayer's consent prompt (`session:recording {state: "consent_requested"}` ->
//   `session:consent {session_id, recording}`), and a recording status line on both pages;
// - when the recorder joins (`session:participant {role: "recorder", state: "joined"}`), a
//   second, send-only RTCPeerConnection carrying this page's own camera and microphone to it,
//   offered with `rtc:signal {to: recorder}`. The recorder (aiortc) answers with all of its
//   candidates in the SDP; this side trickles its candidates to it.
// - the recorder may send `rtc:signal {type: "restart"}` (after a resume or a page reload):
//   a page without a healthy connection to it then opens a new one (a new segment).
//
// For tests: window.vtax.recording = {state, recorderId, connectionState, offers, consent},
// window.vtax.recorderPc (the peer connection to the recorder).

import { $, vtax, emitAck, show, showError } from './common.js';

const LABELS = {
  consent_requested: '本次服务将录像，请确认 This session may be recorded: please choose',
  awaiting_consent: '等待纳税人同意录像 Waiting for the taxpayer to allow recording',
  starting: '录像即将开始 Recording is starting',
  recording: '● 正在录像 Recording',
  refused: '不录像 Not recorded (the taxpayer declined)',
  interrupted: '录像中断，正在恢复 Recording interrupted, resuming',
  unavailable: '录像不可用 Recording unavailable',
};

const rec = (vtax.recording = {
  state: null,
  recorderId: null,
  connectionState: null,
  offers: 0,
  consent: null,
  sessionId: null,
});

let link = null; // {pc, sessionId, recorderId}
let bound = null; // the socket the handlers are on

/**
 * Attach recording to a page's socket. Call again with a new socket after a reconnect.
 * @param {import('socket.io-client').Socket} socket
 * @param {{getCall: () => any, role: 'taxpayer'|'agent'}} o
 */
export function bindRecording(socket, { getCall, role }) {
  if (bound === socket) return;
  bound = socket;
  socket.on('session:recording', (msg) => onRecordingState(socket, msg, role));
  socket.on('session:participant', (msg) => {
    if (!msg || msg.role !== 'recorder') return;
    if (msg.state === 'joined') {
      rec.recorderId = msg.participant_id;
      openLink(socket, getCall(), msg.participant_id);
    } else if (msg.state === 'left' && rec.recorderId === msg.participant_id) {
      closeLink();
      rec.recorderId = null;
    }
  });
  socket.on('rtc:signal', (msg) => onSignal(socket, getCall(), msg));
  socket.on('session:end', () => {
    closeLink();
    hidePrompt();
    rec.recorderId = null;
  });
  if (role === 'taxpayer') wirePrompt(socket);
}

// ---- status and consent -------------------------------------------------------------------

function statusElement() {
  let el = $('recording-status');
  if (!el) {
    // The agent page has no slot for it in its HTML: add one to the call card.
    const card = $('call-card');
    if (!card) return null;
    el = document.createElement('p');
    el.id = 'recording-status';
    el.className = 'recording-status';
    el.setAttribute('role', 'status');
    card.insertBefore(el, card.children[1] || null);
  }
  return el;
}

function onRecordingState(socket, msg, role) {
  if (!msg || !msg.state) return;
  rec.state = msg.state;
  rec.sessionId = msg.session_id;
  const el = statusElement();
  if (el) el.textContent = LABELS[msg.state] || msg.state;
  if (role === 'taxpayer' && msg.state === 'consent_requested') showPrompt(msg);
  if (msg.state !== 'consent_requested') hidePrompt();
}

function showPrompt(msg) {
  const card = $('consent-card');
  if (!card) return;
  card.dataset.sessionId = msg.session_id;
  const note = $('consent-refusal-note');
  if (note) {
    note.textContent =
      msg.on_refusal === 'end'
        ? '如不同意，本次服务将结束。If you decline, the session cannot continue.'
        : '如不同意，服务照常进行，不录像。If you decline, the session continues without recording.';
  }
  show('consent-card', true);
}

function hidePrompt() {
  if ($('consent-card')) show('consent-card', false);
}

function wirePrompt(socket) {
  for (const [id, value] of [
    ['consent-yes', true],
    ['consent-no', false],
  ]) {
    const button = $(id);
    if (!button || button.dataset.wired) continue;
    button.dataset.wired = '1';
    button.addEventListener('click', async () => {
      const sessionId = $('consent-card').dataset.sessionId;
      if (!sessionId) return;
      button.disabled = true;
      try {
        const ack = await emitAck(bound || socket, 'session:consent', {
          session_id: sessionId,
          recording: value,
        });
        rec.consent = value;
        rec.state = ack.recording;
        hidePrompt();
      } catch (e) {
        showError(e);
      } finally {
        button.disabled = false;
      }
    });
  }
}

// ---- the send-only peer connection to the recorder ------------------------------------------

async function openLink(socket, call, recorderId) {
  if (!call || call.closed) return;
  await call.ready; // the local camera and microphone
  if (call.closed || rec.recorderId !== recorderId) return;
  const stream = call.stream;
  if (!stream || !stream.getTracks().length) return; // nothing to record from this side
  closeLink();
  const pc = new RTCPeerConnection({ iceServers: call.iceServers || [] });
  const mine = (link = { pc, sessionId: call.sessionId, recorderId });
  vtax.recorderPc = pc;
  for (const track of stream.getTracks()) {
    pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  }
  const send = (type, data) =>
    emitAck(bound || socket, 'rtc:signal', {
      session_id: mine.sessionId,
      to: recorderId,
      type,
      data,
    });
  pc.onicecandidate = ({ candidate }) => {
    if (link !== mine) return;
    send('candidate', candidate ? candidate.toJSON() : null).catch(() => {});
  };
  pc.onconnectionstatechange = () => {
    if (link === mine) rec.connectionState = pc.connectionState;
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    rec.offers += 1;
    await send('offer', pc.localDescription.toJSON());
  } catch (e) {
    console.warn('recorder offer failed', e);
  }
}

async function onSignal(socket, call, msg) {
  if (!msg || !call || msg.session_id !== call.sessionId) return;
  if (msg.from === call.peerId) return; // the call's own signals
  if (msg.type === 'restart') {
    // The recorder asks for a (new) connection, e.g. after this page was reloaded.
    const healthy = link && ['connected', 'connecting', 'new'].includes(link.pc.connectionState);
    if (!healthy || link.recorderId !== msg.from) {
      rec.recorderId = msg.from;
      openLink(socket, call, msg.from);
    }
    return;
  }
  if (!link || msg.from !== link.recorderId) return;
  try {
    if (msg.type === 'answer' && msg.data) {
      await link.pc.setRemoteDescription(msg.data);
    } else if (msg.type === 'candidate' && msg.data && msg.data.candidate) {
      await link.pc.addIceCandidate(msg.data);
    }
  } catch (e) {
    console.warn('recorder signal failed', e);
  }
}

function closeLink() {
  if (!link) return;
  try {
    link.pc.close();
  } catch {
    /* already closed */
  }
  link = null;
  rec.connectionState = 'closed';
}
