// One WebRTC call between the taxpayer and the agent, signalled over Socket.IO `rtc:signal`.
//
// Negotiation follows MDN "perfect negotiation": both sides add their tracks at
// `session:start`, `negotiationneeded` makes offers, the polite side (taxpayer) rolls back on
// an offer collision, the impolite side (agent) ignores the colliding offer. ICE candidates
// trickle as `type: "candidate"` with `data` = RTCIceCandidateInit, or null at the end.
// To avoid that collision where it is predictable, a new RTCPeerConnection on the polite side
// waits (up to OFFER_FALLBACK_MS) for the impolite side's first offer instead of making its own:
// Chromium can stop gathering ICE candidates for good when an offer whose gathering has just
// started is rolled back (seen in the e2e tests: answer sent, no local candidate ever).
// As a safety net the impolite side restarts ICE if a negotiated connection never starts
// checking (ICE_WATCHDOG_MS).
//
// Resume (see docs/protocol.md, `session:resume`):
// - Socket drop, same page: the Call keeps its RTCPeerConnection, outgoing signals wait in an
//   outbox while the socket is down (pause/resumed), the SignalRouter holds incoming signals
//   while `session:resume` is in flight, then applies the replay and the held signals in `seq`
//   order (each once), and the impolite side restarts ICE.
// - Page reload: a NEW Call is made from the resume ack with `freshResume`; it ignores the
//   replay (it was for the old RTCPeerConnection) and first sends
//   `rtc:signal {type: "restart", data: {new_peer_connection: true}}`, so the other side
//   replaces its RTCPeerConnection (same local stream); negotiation then runs afresh.
// - Every signal's data is tagged with `pc` (the sender's RTCPeerConnection id) and, once known,
//   `to_pc` (the receiver's). A signal for a replaced RTCPeerConnection is dropped, so late
//   offers, answers and candidates of an old connection never reach a new one. Untagged data
//   (other clients) is applied as before.
//
// For tests and diagnostics the call exposes window.vtax.pc (the RTCPeerConnection) and
// window.vtax.call (session id, first-frame time, pc id, renewals).

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

/** The polite side offers itself if the impolite side's first offer has not come by then. */
const OFFER_FALLBACK_MS = 3000;
/** Negotiated (stable, both descriptions) but ICE still "new" this long: restart ICE. */
const ICE_WATCHDOG_MS = 5000;

/** A short random id for an RTCPeerConnection (tags the signals it sends). */
function newPcId() {
  const a = new Uint8Array(6);
  crypto.getRandomValues(a);
  return 'pc-' + Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class Call {
  /**
   * @param {object} o
   * @param {import('socket.io-client').Socket} o.socket
   * @param {object} o.start          the `session:start` payload (or a `session:resume` ack)
   * @param {Promise<{stream, error}>} o.media  local media (from getLocalMedia)
   * @param {HTMLVideoElement} o.localVideo
   * @param {HTMLVideoElement} o.remoteVideo
   * @param {(state: string) => void} [o.onConnectionState]
   * @param {(err: Error) => void} [o.onError]
   * @param {boolean} [o.freshResume]  made after a page reload from the resume ack: ask the
   *   other side for a new RTCPeerConnection before negotiating
   */
  constructor({
    socket,
    start,
    media,
    localVideo,
    remoteVideo,
    onConnectionState,
    onError,
    freshResume = false,
  }) {
    this.socket = socket;
    this.sessionId = start.session_id;
    this.participantId = start.participant_id;
    this.peerId = start.peer ? start.peer.participant_id : undefined;
    this.polite = Boolean(start.polite);
    this.iceServers = start.ice_servers || [];
    this.localVideo = localVideo;
    this.remoteVideo = remoteVideo;
    this.onConnectionState = onConnectionState || (() => {});
    this.onError = onError || ((e) => console.error(e));
    this.closed = false;
    this.stream = null;
    this.remoteStream = new MediaStream();
    this.watching = false;

    // Resume: while paused (socket down) outgoing signals wait here, in order.
    this.paused = false;
    this.outbox = [];
    // Which RTCPeerConnections talk: ours (tag `pc`) and the peer's (tag `to_pc`).
    this.pcId = newPcId();
    this.remotePcId = null;
    this.lastTaggedAccepted = true; // an untagged null candidate follows the last tagged signal

    this.info = (vtax.call = {
      sessionId: this.sessionId,
      polite: this.polite,
      createdAt: Date.now(),
      firstFrameAt: null, // Date.now() when the first inbound video frame was seen decoded
      firstFrameRenderedAt: null, // Date.now() of the first requestVideoFrameCallback
      signalsIn: 0,
      signalsOut: 0,
      signalsDropped: 0, // tagged for another (older) RTCPeerConnection
      pcId: this.pcId,
      renewals: 0, // RTCPeerConnections replaced on the peer's request
      resumes: 0, // session:resume on the same RTCPeerConnection
      freshResume: Boolean(freshResume),
    });

    this.createPeerConnection();

    // After a reload the other side still has an RTCPeerConnection for our old one: ask for a
    // new one first. Emitted before our tracks are added, so it precedes our first offer.
    if (freshResume) this.send('restart', { new_peer_connection: true }).catch(() => {});

    // Incoming signals are applied strictly in order, and only once local tracks are added,
    // so the first answer already carries our media (one negotiation instead of two).
    this.ready = this.addLocalMedia(media);
    this.chain = this.ready;
  }

  /** A new RTCPeerConnection with perfect negotiation handlers; becomes this.pc / vtax.pc. */
  createPeerConnection() {
    const pc = (this.pc = new RTCPeerConnection({ iceServers: this.iceServers }));
    vtax.pc = pc;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.isSettingRemoteAnswerPending = false;
    // Polite: let the impolite side make the first offer on this connection (see the top).
    this.awaitPeerOffer = this.polite;
    this.info.offersAvoided = this.info.offersAvoided || 0;

    const negotiate = async () => {
      if (this.closed || pc !== this.pc) return;
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        if (pc !== this.pc) return;
        await this.send(pc.localDescription.type, pc.localDescription.toJSON());
      } catch (e) {
        if (pc === this.pc) this.onError(e);
      } finally {
        if (pc === this.pc) this.makingOffer = false;
      }
    };
    pc.onnegotiationneeded = () => {
      if (this.closed || pc !== this.pc) return;
      if (this.awaitPeerOffer) {
        this.info.offersAvoided += 1;
        clearTimeout(this.offerFallback);
        this.offerFallback = setTimeout(() => {
          if (pc !== this.pc || !this.awaitPeerOffer) return;
          this.awaitPeerOffer = false;
          if (pc.signalingState === 'stable') negotiate();
        }, OFFER_FALLBACK_MS);
        return;
      }
      negotiate();
    };
    pc.onsignalingstatechange = () => {
      if (pc === this.pc && pc.signalingState === 'stable') this.armIceWatchdog(pc);
    };
    pc.onicecandidate = ({ candidate }) => {
      if (pc !== this.pc) return;
      this.send('candidate', candidate ? candidate.toJSON() : null).catch(() => {});
    };
    pc.oniceconnectionstatechange = () => {
      if (pc === this.pc && pc.iceConnectionState === 'failed' && !this.closed) pc.restartIce();
    };
    pc.onconnectionstatechange = () => {
      if (pc === this.pc) this.onConnectionState(pc.connectionState);
    };
    pc.ontrack = ({ track, streams }) => {
      if (pc !== this.pc) return;
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
    return pc;
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
    if (this.closed) {
      stopStream(stream);
      return;
    }
    this.stream = stream;
    if (this.localVideo) {
      this.localVideo.muted = true;
      this.localVideo.srcObject = stream;
    }
    this.addTracks();
  }

  /**
   * Impolite side: once negotiated, ICE must start checking; if it is still "new" after
   * ICE_WATCHDOG_MS (a gatherer that never produced a candidate), restart ICE.
   */
  armIceWatchdog(pc) {
    if (this.polite || !pc.remoteDescription || !pc.localDescription) return;
    clearTimeout(this.iceWatchdog);
    this.iceWatchdog = setTimeout(() => {
      if (this.closed || pc !== this.pc || pc.signalingState !== 'stable') return;
      if (pc.iceConnectionState !== 'new') return;
      this.info.iceWatchdogRestarts = (this.info.iceWatchdogRestarts || 0) + 1;
      console.warn('ICE did not start: restarting ICE');
      pc.restartIce();
    }, ICE_WATCHDOG_MS);
  }

  /** Add the local tracks (and receive-only transceivers for what we lack) to this.pc. */
  addTracks() {
    const kinds = new Set();
    if (this.stream) {
      for (const track of this.stream.getTracks()) {
        if (track.readyState === 'ended') continue;
        this.pc.addTrack(track, this.stream);
        kinds.add(track.kind);
      }
    }
    // Still receive what we cannot send (no camera / no microphone).
    for (const kind of ['audio', 'video']) {
      if (!kinds.has(kind)) this.pc.addTransceiver(kind, { direction: 'recvonly' });
    }
  }

  /**
   * The peer reloaded and made a new RTCPeerConnection (`remotePcId`): close ours and start a
   * new one with the same local stream; negotiation starts again from `negotiationneeded`.
   */
  renewPeerConnection(remotePcId) {
    const old = this.pc;
    this.pcId = newPcId();
    this.remotePcId = remotePcId || null;
    this.lastTaggedAccepted = true;
    this.remoteStream = new MediaStream();
    this.watching = false;
    this.createPeerConnection();
    try {
      old.close();
    } catch {
      /* already closed */
    }
    vtax.lastPc = old;
    if (this.remoteVideo) this.remoteVideo.srcObject = null;
    this.info.pcId = this.pcId;
    this.info.renewals += 1;
    this.addTracks();
    this.onConnectionState(this.pc.connectionState);
  }

  /** Tag signal data with our RTCPeerConnection id (and the peer's, once known). */
  tag(data) {
    if (!data || typeof data !== 'object') return data;
    const tagged = { ...data, pc: this.pcId };
    if (this.remotePcId) tagged.to_pc = this.remotePcId;
    return tagged;
  }

  /** Send one rtc:signal to the peer (queued while the socket is down). */
  send(type, data) {
    if (this.closed) return Promise.resolve(undefined);
    const payload = { session_id: this.sessionId, type, data: this.tag(data) };
    if (this.peerId) payload.to = this.peerId;
    this.info.signalsOut += 1;
    if (this.paused || !this.socket.connected) {
      return new Promise((resolve, reject) => this.outbox.push({ payload, resolve, reject }));
    }
    return this.emitSignal(payload);
  }

  async emitSignal(payload) {
    try {
      return await emitAck(this.socket, 'rtc:signal', payload);
    } catch (e) {
      // The socket dropped while this was in flight: send it again after the resume (a
      // duplicate is harmless, a lost offer or answer is not).
      if (!this.closed && this.paused && (e.code === 'timeout' || e.code === 'not_in_session')) {
        return new Promise((resolve, reject) => this.outbox.push({ payload, resolve, reject }));
      }
      if (!this.closed) this.onError(e);
      throw e;
    }
  }

  /** The socket is down: keep the RTCPeerConnection, hold outgoing signals. */
  pause() {
    if (!this.closed) this.paused = true;
  }

  /**
   * `session:resume` succeeded on the same RTCPeerConnection: fresh TURN credentials, send
   * what waited in the outbox. The router then applies the replay.
   */
  resumed(ack) {
    if (this.closed) return;
    this.info.resumes += 1;
    if (ack && Array.isArray(ack.ice_servers)) {
      this.iceServers = ack.ice_servers;
      try {
        this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers: this.iceServers });
      } catch (e) {
        console.warn('setConfiguration after resume', e);
      }
    }
    this.paused = false;
    const out = this.outbox;
    this.outbox = [];
    for (const { payload, resolve, reject } of out) {
      this.emitSignal(payload).then(resolve, reject);
    }
  }

  /**
   * Restart ICE in signal order (after signals already received, e.g. a replay). With
   * `rollback` (we resumed: our last offer may have been lost in the drop) a pending local
   * offer is rolled back first so the restart offer goes out now.
   */
  restartIce({ rollback = false } = {}) {
    this.chain = this.chain
      .then(async () => {
        if (this.closed) return;
        const pc = this.pc;
        if (rollback && pc.signalingState === 'have-local-offer' && !this.makingOffer) {
          await pc.setLocalDescription({ type: 'rollback' });
        }
        pc.restartIce();
      })
      .catch((e) => {
        if (!this.closed) this.onError(e);
      });
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

  /**
   * Is this signal for our current RTCPeerConnection, from the peer's current one? Learns the
   * peer's id from the first tagged signal. An untagged end-of-candidates (null) follows the
   * verdict on the signal before it (same sender, same order).
   */
  accepts(type, data) {
    const tagged = data && typeof data === 'object' && typeof data.pc === 'string';
    if (!tagged) return data !== null || type !== 'candidate' || this.lastTaggedAccepted;
    const forUs = !data.to_pc || data.to_pc === this.pcId;
    const fromPeer = !this.remotePcId || data.pc === this.remotePcId;
    this.lastTaggedAccepted = forUs && fromPeer;
    if (this.lastTaggedAccepted && !this.remotePcId) this.remotePcId = data.pc;
    return this.lastTaggedAccepted;
  }

  async applySignal({ type, data }) {
    if (this.closed) return;
    if (type === 'restart' && data && data.new_peer_connection && typeof data.pc === 'string') {
      await this.peerHasNewPeerConnection(data.pc);
      return;
    }
    if (!this.accepts(type, data)) {
      this.info.signalsDropped += 1;
      return;
    }
    const pc = this.pc;
    if (type === 'offer' || type === 'answer') {
      if (type === 'offer') this.awaitPeerOffer = false; // the peer offered: we may, later
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
          const { pc: _from, to_pc: _to, ...init } = data;
          await pc.addIceCandidate(init);
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

  /** The peer reloaded: it has a new RTCPeerConnection `remotePcId` and wants one of ours. */
  async peerHasNewPeerConnection(remotePcId) {
    if (remotePcId === this.remotePcId) return; // a duplicate
    const pc = this.pc;
    if (!this.remotePcId && !pc.remoteDescription) {
      // Ours has not talked to any peer connection yet (we reloaded too): just pair them, and
      // re-send an offer the peer may have dropped as meant for its old connection.
      this.remotePcId = remotePcId;
      this.lastTaggedAccepted = true;
      if (pc.signalingState === 'have-local-offer' && pc.localDescription && !this.makingOffer) {
        await this.send('offer', pc.localDescription.toJSON());
      }
      return;
    }
    this.renewPeerConnection(remotePcId);
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
    clearTimeout(this.offerFallback);
    clearTimeout(this.iceWatchdog);
    for (const { reject } of this.outbox) reject(new Error('call closed'));
    this.outbox = [];
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
 * Routes `rtc:signal` messages to the current call, buffering those that arrive before the
 * page has created the Call for their session. Tracks, per session, the highest `seq` seen
 * (for `session:resume {last_seq}`) and which seqs were applied (each signal once, even when it
 * comes both live and in a replay). While a resume is in flight it holds incoming signals, so
 * the replay is applied before them.
 */
export class SignalRouter {
  /**
   * @param {import('socket.io-client').Socket} socket
   * @param {object} [o]
   * @param {(sessionId: string, lastSeq: number) => void} [o.onSeq]  persist last_seq
   */
  constructor(socket, { onSeq } = {}) {
    this.socket = socket;
    this.call = null;
    this.pending = [];
    this.held = null; // array while a session:resume is in flight
    this.lastSeqs = new Map(); // session id -> highest seq seen
    this.seen = new Map(); // session id -> Set of seqs delivered (bounded)
    this.onSeq = onSeq || (() => {});
    socket.on('rtc:signal', (msg) => {
      if (!msg || typeof msg !== 'object') return;
      if (this.held) this.held.push(msg);
      else this.deliver(msg);
    });
    // The socket dropped: keep the call, hold its outgoing signals until the resume.
    socket.on('disconnect', () => {
      if (this.call) this.call.pause();
    });
  }

  lastSeq(sessionId) {
    return this.lastSeqs.get(sessionId) || 0;
  }

  /** Start from a persisted last_seq (page reload). */
  setLastSeq(sessionId, seq) {
    const n = Number(seq) || 0;
    if (n > this.lastSeq(sessionId)) this.lastSeqs.set(sessionId, n);
  }

  /** Note the message's seq; false if it was already delivered. */
  markSeen(msg) {
    const seq = Number(msg.seq);
    if (!Number.isInteger(seq) || seq <= 0) return true;
    let seen = this.seen.get(msg.session_id);
    if (!seen) this.seen.set(msg.session_id, (seen = new Set()));
    if (seen.has(seq)) return false;
    seen.add(seq);
    if (seen.size > 2000) {
      const min = Math.min(...seen);
      seen.delete(min);
    }
    if (seq > this.lastSeq(msg.session_id)) {
      this.lastSeqs.set(msg.session_id, seq);
      try {
        this.onSeq(msg.session_id, seq);
      } catch (e) {
        console.warn('onSeq', e);
      }
    }
    return true;
  }

  deliver(msg) {
    if (!this.markSeen(msg)) return;
    if (this.call && msg.session_id === this.call.sessionId) {
      this.call.handleSignal(msg);
    } else if (!this.call) {
      this.pending.push(msg);
      if (this.pending.length > 200) this.pending.shift();
    }
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
    this.held = null;
  }

  /**
   * Send `session:resume {session_id, last_seq}` and apply what was missed.
   * Same page (a Call for the session is attached): the call keeps its RTCPeerConnection,
   * sends its outbox, applies the replay and the signals held meanwhile in order, and the
   * impolite side restarts ICE. After a reload (no call yet, `fresh`): the replay is stale (it
   * was for the old RTCPeerConnection) and only marked as seen; the page then makes a new Call
   * from the ack with `freshResume: true` and attaches it.
   * Resolves with the ack; rejects with ApiError (`session_ended`, `not_in_session`, ...).
   */
  async resume(sessionId, { fresh = false } = {}) {
    const call = this.call && this.call.sessionId === sessionId && !fresh ? this.call : null;
    this.held = this.held || [];
    let ack;
    try {
      ack = await emitAck(this.socket, 'session:resume', {
        session_id: sessionId,
        last_seq: this.lastSeq(sessionId),
      });
    } catch (e) {
      this.release();
      throw e;
    }
    const replay = Array.isArray(ack.replay) ? ack.replay : [];
    if (call && !call.closed) {
      call.resumed(ack);
      for (const msg of replay) this.deliver(msg);
      this.release();
      if (!call.polite) call.restartIce({ rollback: true });
    } else {
      for (const msg of replay) this.markSeen(msg); // for the old RTCPeerConnection
      this.release();
    }
    return ack;
  }

  /** Stop holding: deliver the signals that arrived during the resume, in order. */
  release() {
    const held = this.held || [];
    this.held = null;
    held.sort((a, b) => (Number(a.seq) || 0) - (Number(b.seq) || 0));
    for (const msg of held) this.deliver(msg);
  }
}
