// One WebRTC call between the taxpayer and the agent, signalled over Socket.IO `rtc:signal`.
//
// Negotiation follows MDN "perfect negotiation": both sides add their tracks at
// `session:start`, `negotiationneeded` makes offers, the polite side (taxpayer) rolls back on
// an offer collision, the impolite side (agent) ignores the colliding offer. ICE candidates
// trickle as `type: "candidate"` with `data` = RTCIceCandidateInit, or null at the end.
//
// For tests and diagnostics the call exposes window.vtax.pc (the RTCPeerConnection) and
// window.vtax.call (session id, first-frame time).

import { vtax, emitAck } from './common.js';

export const MEDIA_CONSTRAINTS = {
  audio: true,
  video: { width: 640, height: 360, frameRate: 15 },
};

/**
 * Ask for camera and microphone. Falls back to audio only, then to nothing (receive-only),
 * so a taxpayer with a broken camera can still see and hear the agent.
 * Resolves with {stream: MediaStream|null, error: Error|null}.
 */
export async function getLocalMedia() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return { stream: null, error: new Error('This browser has no camera access (needs HTTPS)') };
  }
  try {
    return { stream: await navigator.mediaDevices.getUserMedia(MEDIA_CONSTRAINTS), error: null };
  } catch (videoErr) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      return { stream, error: videoErr };
    } catch {
      return { stream: null, error: videoErr };
    }
  }
}

export function stopStream(stream) {
  if (!stream) return;
  for (const t of stream.getTracks()) t.stop();
}

export class Call {
  /**
   * @param {object} o
   * @param {import('socket.io-client').Socket} o.socket
   * @param {object} o.start          the `session:start` payload
   * @param {Promise<{stream, error}>} o.media  local media (from getLocalMedia)
   * @param {HTMLVideoElement} o.localVideo
   * @param {HTMLVideoElement} o.remoteVideo
   * @param {(state: string) => void} [o.onConnectionState]
   * @param {(err: Error) => void} [o.onError]
   */
  constructor({ socket, start, media, localVideo, remoteVideo, onConnectionState, onError }) {
    this.socket = socket;
    this.sessionId = start.session_id;
    this.participantId = start.participant_id;
    this.peerId = start.peer ? start.peer.participant_id : undefined;
    this.polite = Boolean(start.polite);
    this.localVideo = localVideo;
    this.remoteVideo = remoteVideo;
    this.onConnectionState = onConnectionState || (() => {});
    this.onError = onError || ((e) => console.error(e));
    this.closed = false;
    this.stream = null;
    this.remoteStream = new MediaStream();

    // Perfect negotiation state (MDN).
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.isSettingRemoteAnswerPending = false;

    this.info = (vtax.call = {
      sessionId: this.sessionId,
      polite: this.polite,
      createdAt: Date.now(),
      firstFrameAt: null, // Date.now() when the first inbound video frame was seen decoded
      firstFrameRenderedAt: null, // Date.now() of the first requestVideoFrameCallback
      signalsIn: 0,
      signalsOut: 0,
    });

    const pc = (this.pc = new RTCPeerConnection({ iceServers: start.ice_servers || [] }));
    vtax.pc = pc;

    pc.onnegotiationneeded = async () => {
      if (this.closed) return;
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        await this.send(pc.localDescription.type, pc.localDescription.toJSON());
      } catch (e) {
        this.onError(e);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      this.send('candidate', candidate ? candidate.toJSON() : null).catch(() => {});
    };
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === 'failed' && !this.closed) pc.restartIce();
    };
    pc.onconnectionstatechange = () => {
      this.onConnectionState(pc.connectionState);
    };
    pc.ontrack = ({ track, streams }) => {
      const stream = streams && streams[0];
      if (stream) {
        this.remoteStream = stream;
      } else if (!this.remoteStream.getTracks().includes(track)) {
        this.remoteStream.addTrack(track);
      }
      if (this.remoteVideo && this.remoteVideo.srcObject !== this.remoteStream) {
        this.remoteVideo.srcObject = this.remoteStream;
      }
      if (track.kind === 'video') this.watchFirstFrame();
    };

    // Incoming signals are applied strictly in order, and only once local tracks are added,
    // so the first answer already carries our media (one negotiation instead of two).
    this.ready = this.addLocalMedia(media);
    this.chain = this.ready;
  }

  async addLocalMedia(media) {
    let stream = null;
    try {
      const m = await media;
      stream = m ? m.stream : null;
      if (m && m.error) this.onError(m.error);
    } catch (e) {
      this.onError(e);
    }
    if (this.closed) return;
    this.stream = stream;
    if (this.localVideo) {
      this.localVideo.muted = true;
      this.localVideo.srcObject = stream;
    }
    const kinds = new Set();
    if (stream) {
      for (const track of stream.getTracks()) {
        this.pc.addTrack(track, stream);
        kinds.add(track.kind);
      }
    }
    // Still receive what we cannot send (no camera / no microphone).
    for (const kind of ['audio', 'video']) {
      if (!kinds.has(kind)) this.pc.addTransceiver(kind, { direction: 'recvonly' });
    }
  }

  /** Send one rtc:signal to the peer. */
  async send(type, data) {
    if (this.closed) return undefined;
    const payload = { session_id: this.sessionId, type, data };
    if (this.peerId) payload.to = this.peerId;
    this.info.signalsOut += 1;
    try {
      return await emitAck(this.socket, 'rtc:signal', payload);
    } catch (e) {
      if (!this.closed) this.onError(e);
      throw e;
    }
  }

  /** Handle a server `rtc:signal` for this session. */
  handleSignal(msg) {
    if (this.closed || !msg || msg.session_id !== this.sessionId) return;
    if (this.peerId && msg.from && msg.from !== this.peerId) return; // not from our peer
    this.info.signalsIn += 1;
    this.chain = this.chain
      .then(() => this.applySignal(msg))
      .catch((e) => {
        if (!this.closed) this.onError(e);
      });
  }

  async applySignal({ type, data }) {
    if (this.closed) return;
    const pc = this.pc;
    if (type === 'offer' || type === 'answer') {
      const description = { type, sdp: data && data.sdp };
      const readyForOffer =
        !this.makingOffer && (pc.signalingState === 'stable' || this.isSettingRemoteAnswerPending);
      const offerCollision = type === 'offer' && !readyForOffer;
      this.ignoreOffer = !this.polite && offerCollision;
      if (this.ignoreOffer) return;
      this.isSettingRemoteAnswerPending = type === 'answer';
      try {
        await pc.setRemoteDescription(description); // polite side rolls back implicitly
      } finally {
        this.isSettingRemoteAnswerPending = false;
      }
      if (type === 'offer') {
        await pc.setLocalDescription();
        await this.send(pc.localDescription.type, pc.localDescription.toJSON());
      }
    } else if (type === 'candidate') {
      try {
        if (data && (data.candidate || data.candidate === '')) {
          await pc.addIceCandidate(data);
        } else {
          await pc.addIceCandidate(); // end of candidates
        }
      } catch (e) {
        if (!this.ignoreOffer && data) throw e;
      }
    } else if (type === 'restart') {
      pc.restartIce();
    }
  }

  /** Record when the first inbound video frame is decoded (and rendered). */
  watchFirstFrame() {
    if (this.watching) return;
    this.watching = true;
    const video = this.remoteVideo;
    if (video && typeof video.requestVideoFrameCallback === 'function') {
      video.requestVideoFrameCallback(() => {
        const now = Date.now();
        if (!this.info.firstFrameRenderedAt) this.info.firstFrameRenderedAt = now;
        // A presented frame was decoded: this can beat the getStats poll below.
        if (!this.info.firstFrameAt) this.info.firstFrameAt = now;
      });
    }
    const poll = async () => {
      if (this.closed || this.info.firstFrameAt) return;
      try {
        const stats = await this.pc.getStats();
        for (const r of stats.values()) {
          if (r.type === 'inbound-rtp' && r.kind === 'video' && r.framesDecoded > 0) {
            this.info.firstFrameAt = Date.now();
            return;
          }
        }
      } catch {
        return;
      }
      setTimeout(poll, 20);
    };
    poll();
  }

  /** Close the connection and release camera and microphone. Safe to call twice. */
  close() {
    if (this.closed) return;
    this.closed = true;
    try {
      this.pc.close();
    } catch {
      /* already closed */
    }
    stopStream(this.stream);
    if (this.localVideo) this.localVideo.srcObject = null;
    if (this.remoteVideo) this.remoteVideo.srcObject = null;
    vtax.lastPc = this.pc;
    if (vtax.pc === this.pc) vtax.pc = null;
  }
}

/**
 * Buffers `rtc:signal` messages that arrive before the page has created the Call for their
 * session, and routes the rest to the current call.
 */
export class SignalRouter {
  constructor(socket) {
    this.call = null;
    this.pending = [];
    socket.on('rtc:signal', (msg) => {
      if (this.call && msg && msg.session_id === this.call.sessionId) {
        this.call.handleSignal(msg);
      } else if (!this.call) {
        this.pending.push(msg);
        if (this.pending.length > 200) this.pending.shift();
      }
    });
  }

  attach(call) {
    this.call = call;
    const pending = this.pending;
    this.pending = [];
    for (const msg of pending) {
      if (msg && msg.session_id === call.sessionId) call.handleSignal(msg);
    }
  }

  detach() {
    if (this.call) this.call.close();
    this.call = null;
    this.pending = [];
  }
}
