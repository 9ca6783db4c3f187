// One WebRTC call between the taxpayer and the agent, signalled over Socket.IO `rtc:signal`:
// a framework-free port of web/js/rtc.js, typed with the generated contract.
//
// Negotiation follows MDN "perfect negotiation": both sides add their tracks at
// `session:start`, `negotiationneeded` makes offers, the polite side (taxpayer) rolls back on
// an offer collision, the impolite side (agent) ignores the colliding offer. ICE candidates
// trickle as `type: "candidate"` with `data` = RTCIceCandidateInit, or null at the end.
// A new RTCPeerConnection on the polite side waits (up to OFFER_FALLBACK_MS) for the impolite
// side's first offer instead of making its own (Chromium can stop gathering for good when an
// offer whose gathering has just started is rolled back). The impolite side restarts ICE if a
// negotiated connection never starts checking (ICE_WATCHDOG_MS).
//
// Resume (docs/protocol.md, `session:resume`):
// - Socket drop, same page: the Call keeps its RTCPeerConnection, outgoing signals wait in an
//   outbox while the socket is down (pause/resumed); the SignalRouter holds incoming signals
//   while `session:resume` is in flight, then applies the replay and the held ones in `seq`
//   order (each once), and the impolite side restarts ICE.
// - Page reload: a NEW Call made from the resume ack with `freshResume` first sends
//   `rtc:signal {type: "restart", data: {new_peer_connection: true}}`, so the other side
//   replaces its RTCPeerConnection; negotiation runs afresh.
// - Every signal's data is tagged with `pc` (the sender's RTCPeerConnection id) and, once
//   known, `to_pc` (the receiver's): a signal for a replaced RTCPeerConnection is dropped.
//
// Screen share (docs/frontend.md, "Transceivers"): the m-line set is fixed for the whole call,
// audio, camera video, screen video. The impolite side (agent) adds the screen transceiver
// itself at the start (`addTransceiver('video')`, sendrecv, no track); the polite side never
// adds one (a transceiver from `addTransceiver` is not matched to a remote m-line, so both
// adding one would end in four video m-lines) but adopts the transceiver of the offer's second
// video m-line before answering, and sets it sendrecv. Sharing is `replaceTrack` on it, no
// renegotiation; a new RTCPeerConnection (the peer reloaded) rebuilds the same layout and
// puts the screen track back. The screen encoding: contentHint "detail" (text stays sharp),
// maintain-resolution, at most SCREEN_MAX_BITRATE at SCREEN_MAX_FPS.
//
// For the browser tests the call exposes window.vtax.pc and window.vtax.call.
import type { IceServer, RelayedSignal, Resumed, RtcSignal, SessionStart, SignalSent } from '@/contract';
import { ApiError } from './errors';
import { vtax, type CallInfo } from './hook';
import { emitAck, type AckEmitter, type AckTarget } from './socket';

export const MEDIA_CONSTRAINTS: MediaStreamConstraints = {
  audio: true,
  video: { width: 640, height: 360, frameRate: 15 },
};

/**
 * The screen encoding's cap: on a 1 Mbit/s uplink it leaves ~600 kbit/s to the camera
 * (640x360 at 15 fps needs 300-500) and ~40 to Opus (docs/frontend.md, "Transceivers").
 */
export const SCREEN_MAX_BITRATE = 350_000;
/** Screens change rarely: a few frames a second keep text sharp within the cap. */
export const SCREEN_MAX_FPS = 5;

/** The mid of the description's second video m-line: the screen's (null if none yet). */
export function screenMid(sdp: string | undefined | null): string | null {
  if (!sdp) return null;
  let videos = 0;
  let inScreen = false;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) {
      inScreen = line.startsWith('m=video') && ++videos === 2;
    } else if (inScreen && line.startsWith('a=mid:')) {
      return line.slice(6).trim();
    }
  }
  return null;
}

/** The polite side offers itself if the impolite side's first offer has not come by then. */
export const OFFER_FALLBACK_MS = 3000;
/** Negotiated (stable, both descriptions) but ICE still "new" this long: restart ICE. */
export const ICE_WATCHDOG_MS = 5000;

export interface LocalMedia {
  stream: MediaStream | null;
  error: Error | null;
}

/**
 * Camera and microphone; falls back to audio only, then to nothing (receive-only), so a
 * taxpayer with a broken camera can still see and hear the agent.
 */
export async function getLocalMedia(constraints: MediaStreamConstraints = MEDIA_CONSTRAINTS): Promise<LocalMedia> {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return { stream: null, error: new ApiError('no_camera_access', 'This browser has no camera access (needs HTTPS)') };
  }
  try {
    return { stream: await navigator.mediaDevices.getUserMedia(constraints), error: null };
  } catch (videoErr) {
    const error = videoErr instanceof Error ? videoErr : new Error(String(videoErr));
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      return { stream, error };
    } catch {
      return { stream: null, error };
    }
  }
}

export function stopStream(stream: MediaStream | null | undefined): void {
  if (!stream) return;
  for (const t of stream.getTracks()) t.stop();
}

/** A short random id for an RTCPeerConnection (tags the signals it sends). */
export function newPcId(): string {
  const a = new Uint8Array(6);
  crypto.getRandomValues(a);
  return 'pc-' + Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** What the call needs of the socket: acks, and whether it is connected. */
export type SignalSocket = AckTarget & { readonly connected: boolean };

/** What the router listens to on the socket. */
export interface RouterSocket extends AckEmitter {
  readonly connected: boolean;
  on(event: 'rtc:signal', fn: (msg: RelayedSignal) => void): unknown;
  on(event: 'disconnect', fn: (reason: string) => void): unknown;
}

type SignalType = RtcSignal['type'];
type SignalData = Record<string, unknown> | null;
type StartLike = Pick<SessionStart, 'session_id' | 'participant_id' | 'polite' | 'ice_servers'> & {
  peer?: { participant_id: string } | null;
};

interface Queued {
  payload: RtcSignal;
  resolve: (v: SignalSent | undefined) => void;
  reject: (e: unknown) => void;
}

export interface CallOptions {
  socket: SignalSocket;
  start: StartLike;
  media: Promise<LocalMedia> | LocalMedia | null;
  localVideo?: HTMLVideoElement | null;
  remoteVideo?: HTMLVideoElement | null;
  onConnectionState?: (state: RTCPeerConnectionState) => void;
  onError?: (err: unknown) => void;
  /** made after a page reload from the resume ack: ask for a new RTCPeerConnection first */
  freshResume?: boolean;
  /** the RTCPeerConnection constructor (a fake in the unit tests) */
  peerConnection?: new (config: RTCConfiguration) => RTCPeerConnection;
}

export class Call {
  readonly socket: SignalSocket;
  readonly sessionId: string;
  readonly participantId: string;
  readonly peerId: string | undefined;
  readonly polite: boolean;
  iceServers: IceServer[];
  localVideo: HTMLVideoElement | null;
  remoteVideo: HTMLVideoElement | null;
  closed = false;
  stream: MediaStream | null = null;
  remoteStream: MediaStream;
  pc!: RTCPeerConnection;
  readonly info: CallInfo;
  /** resolves once the local tracks are added */
  readonly ready: Promise<void>;
  /** the transceiver of the screen m-line (ours on the impolite side, adopted on the polite) */
  screenTransceiver: RTCRtpTransceiver | null = null;
  /** the shared screen's track while this side shares */
  screenTrack: MediaStreamTrack | null = null;
  /** the other side's shared screen (its track arrives at negotiation, frames while it shares) */
  remoteScreen: MediaStream | null = null;
  /** told when this side's screen track changes (the recorder's peer connection follows) */
  readonly screenListeners = new Set<(track: MediaStreamTrack | null) => void>();
  /** told when this side's camera track is replaced (core/camera.ts: the recorder's peer
   * connection and the extra Calls of a call of three follow) */
  readonly cameraListeners = new Set<(track: MediaStreamTrack) => void>();
  /** told when the other side's screen track arrives (a new RTCPeerConnection: again) */
  onRemoteScreen: (stream: MediaStream) => void = () => {};

  private onConnectionState: (state: RTCPeerConnectionState) => void;
  private onError: (err: unknown) => void;
  private readonly PeerConnection: new (config: RTCConfiguration) => RTCPeerConnection;
  private watching = false;
  paused = false;
  outbox: Queued[] = [];
  pcId: string;
  remotePcId: string | null = null;
  private lastTaggedAccepted = true;
  private makingOffer = false;
  private ignoreOffer = false;
  private isSettingRemoteAnswerPending = false;
  awaitPeerOffer = false;
  private offerFallback: ReturnType<typeof setTimeout> | undefined;
  private iceWatchdog: ReturnType<typeof setTimeout> | undefined;
  private chain: Promise<void>;

  constructor(o: CallOptions) {
    this.socket = o.socket;
    this.sessionId = o.start.session_id;
    this.participantId = o.start.participant_id;
    this.peerId = o.start.peer ? o.start.peer.participant_id : undefined;
    this.polite = Boolean(o.start.polite);
    this.iceServers = o.start.ice_servers || [];
    this.localVideo = o.localVideo ?? null;
    this.remoteVideo = o.remoteVideo ?? null;
    this.onConnectionState = o.onConnectionState || (() => {});
    this.onError = o.onError || ((e) => console.error(e));
    this.PeerConnection = o.peerConnection || RTCPeerConnection;
    this.remoteStream = new MediaStream();
    this.pcId = newPcId();
    this.info = vtax.call = {
      sessionId: this.sessionId,
      polite: this.polite,
      createdAt: Date.now(),
      firstFrameAt: null,
      firstFrameRenderedAt: null,
      signalsIn: 0,
      signalsOut: 0,
      signalsDropped: 0,
      pcId: this.pcId,
      renewals: 0,
      resumes: 0,
      freshResume: Boolean(o.freshResume),
      offersAvoided: 0,
      iceWatchdogRestarts: 0,
    };
    this.createPeerConnection();
    // After a reload the other side still has an RTCPeerConnection for our old one: ask for a
    // new one first, before our tracks are added (so it precedes our first offer).
    if (o.freshResume) this.send('restart', { new_peer_connection: true }).catch(() => {});
    // Incoming signals are applied in order, and only once the local tracks are added.
    this.ready = this.addLocalMedia(o.media);
    this.chain = this.ready;
  }

  /** A new RTCPeerConnection with perfect negotiation handlers; becomes this.pc / vtax.pc. */
  private createPeerConnection(): RTCPeerConnection {
    const pc = new this.PeerConnection({ iceServers: this.iceServers as RTCIceServer[] });
    this.pc = pc;
    vtax.pc = pc;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.isSettingRemoteAnswerPending = false;
    this.awaitPeerOffer = this.polite;

    const negotiate = async (): Promise<void> => {
      if (this.closed || pc !== this.pc) return;
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        if (pc !== this.pc || !pc.localDescription) return;
        await this.send(pc.localDescription.type as SignalType, pc.localDescription.toJSON() as unknown as SignalData);
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
          if (pc.signalingState === 'stable') void negotiate();
        }, OFFER_FALLBACK_MS);
        return;
      }
      void negotiate();
    };
    pc.onsignalingstatechange = () => {
      if (pc === this.pc && pc.signalingState === 'stable') {
        this.armIceWatchdog(pc);
        void this.applyScreenParameters();
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (pc !== this.pc) return;
      this.send('candidate', candidate ? (candidate.toJSON() as unknown as SignalData) : null).catch(() => {});
    };
    pc.oniceconnectionstatechange = () => {
      if (pc === this.pc && pc.iceConnectionState === 'failed' && !this.closed) pc.restartIce();
    };
    pc.onconnectionstatechange = () => {
      if (pc === this.pc) this.onConnectionState(pc.connectionState);
    };
    pc.ontrack = ({ track, streams, transceiver }) => {
      if (pc !== this.pc) return;
      if (this.isScreenTransceiver(pc, transceiver)) {
        this.remoteScreen = new MediaStream([track]);
        this.onRemoteScreen(this.remoteScreen);
        return;
      }
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

  private async addLocalMedia(media: CallOptions['media']): Promise<void> {
    let stream: MediaStream | null = null;
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

  /** Impolite side: negotiated but ICE still "new" after ICE_WATCHDOG_MS: restart ICE. */
  private armIceWatchdog(pc: RTCPeerConnection): void {
    if (this.polite || !pc.remoteDescription || !pc.localDescription) return;
    clearTimeout(this.iceWatchdog);
    this.iceWatchdog = setTimeout(() => {
      if (this.closed || pc !== this.pc || pc.signalingState !== 'stable') return;
      if (pc.iceConnectionState !== 'new') return;
      this.info.iceWatchdogRestarts += 1;
      console.warn('ICE did not start: restarting ICE');
      pc.restartIce();
    }, ICE_WATCHDOG_MS);
  }

  /** Add the local tracks (and receive-only transceivers for what we lack) to this.pc. */
  private addTracks(): void {
    const kinds = new Set<string>();
    if (this.stream) {
      for (const track of this.stream.getTracks()) {
        if (track.readyState === 'ended') continue;
        this.pc.addTrack(track, this.stream);
        kinds.add(track.kind);
      }
    }
    for (const kind of ['audio', 'video'] as const) {
      if (!kinds.has(kind)) this.pc.addTransceiver(kind, { direction: 'recvonly' });
    }
    // The screen m-line: the impolite side's own; the polite side adopts it from the offer.
    this.screenTransceiver = null;
    if (!this.polite) {
      this.screenTransceiver = this.pc.addTransceiver(this.screenTrack ?? 'video', { direction: 'sendrecv' }) ?? null;
    }
  }

  /** Is this (a transceiver of `pc`) the screen's? The second video m-line of the session. */
  private isScreenTransceiver(pc: RTCPeerConnection, t: RTCRtpTransceiver | undefined): boolean {
    if (!t) return false;
    if (t === this.screenTransceiver) return true;
    const mid = screenMid(pc.remoteDescription?.sdp);
    return mid !== null && t.mid === mid;
  }

  /** Polite side, a remote offer applied: take its screen m-line's transceiver as ours. */
  private adoptScreenTransceiver(pc: RTCPeerConnection): void {
    if (this.polite === false || typeof pc.getTransceivers !== 'function') return;
    if (this.screenTransceiver && pc.getTransceivers().includes(this.screenTransceiver)) return;
    const mid = screenMid(pc.remoteDescription?.sdp);
    const t = mid === null ? undefined : pc.getTransceivers().find((x) => x.mid === mid);
    if (!t) return;
    this.screenTransceiver = t;
    if (t.direction === 'recvonly' || t.direction === 'inactive') t.direction = 'sendrecv';
    if (this.screenTrack) void t.sender.replaceTrack(this.screenTrack).catch((e) => this.onError(e));
  }

  /**
   * Share this track as the screen (null: stop sharing). No renegotiation: `replaceTrack` on
   * the screen transceiver (taken up by a transceiver adopted or made later, too).
   */
  async setScreenTrack(track: MediaStreamTrack | null): Promise<void> {
    if (this.closed) return;
    this.screenTrack = track;
    if (track && 'contentHint' in track) track.contentHint = 'detail';
    const t = this.screenTransceiver;
    if (t && typeof this.pc.getTransceivers === 'function' && this.pc.getTransceivers().includes(t)) {
      await t.sender.replaceTrack(track);
      await this.applyScreenParameters();
    }
    for (const fn of this.screenListeners) fn(track);
  }

  /** The screen encoding's limits (once negotiated: before, there are no encodings). */
  private async applyScreenParameters(): Promise<void> {
    const sender = this.screenTransceiver?.sender;
    if (!sender || typeof sender.getParameters !== 'function' || this.closed) return;
    const params = sender.getParameters();
    const encoding = params.encodings && params.encodings[0];
    if (!encoding) return;
    if (encoding.maxBitrate === SCREEN_MAX_BITRATE && params.degradationPreference === 'maintain-resolution') return;
    encoding.maxBitrate = SCREEN_MAX_BITRATE;
    encoding.maxFramerate = SCREEN_MAX_FPS;
    params.degradationPreference = 'maintain-resolution';
    try {
      await sender.setParameters(params);
    } catch (e) {
      console.warn('screen encoding parameters', e);
    }
  }

  /** The local camera track (null: no camera in this call). */
  cameraTrack(): MediaStreamTrack | null {
    return this.stream?.getVideoTracks()[0] ?? null;
  }

  /**
   * Put `track` in the camera's place (core/camera.ts): `replaceTrack` on the sender that
   * carries the camera (no renegotiation), the local stream (self view, a renewed
   * RTCPeerConnection) and the listeners; the old track stopped. It keeps the old one's
   * `enabled` (camera off stays off).
   */
  async replaceCameraTrack(track: MediaStreamTrack): Promise<void> {
    const old = this.cameraTrack();
    if (this.closed || !this.stream || !old) throw new ApiError('camera_switch', 'no camera in the call');
    track.enabled = old.enabled;
    const sender = this.pc.getSenders().find((s) => s.track === old);
    if (sender) await sender.replaceTrack(track);
    if (this.closed) {
      track.stop(); // closed meanwhile: close() stopped the stream's own tracks
      return;
    }
    this.stream.removeTrack(old);
    this.stream.addTrack(track);
    old.stop();
    // The self view: Chromium pauses an element whose stream lost its video track and does
    // not resume for the one added; load the stream afresh and play it.
    const self = this.localVideo;
    if (self && self.srcObject === this.stream) {
      self.srcObject = null;
      self.srcObject = this.stream;
      if (typeof self.play === 'function') void self.play().catch(() => {});
    }
    for (const fn of this.cameraListeners) fn(track);
  }

  /** Mute or unmute the local tracks of one kind (the call keeps its transceivers). */
  setTrackEnabled(kind: 'audio' | 'video', enabled: boolean): void {
    for (const t of this.stream?.getTracks() || []) if (t.kind === kind) t.enabled = enabled;
  }

  /** The peer reloaded (`remotePcId`): replace our RTCPeerConnection, same local stream. */
  renewPeerConnection(remotePcId: string | null): void {
    const old = this.pc;
    this.pcId = newPcId();
    this.remotePcId = remotePcId || null;
    this.lastTaggedAccepted = true;
    this.remoteStream = new MediaStream();
    this.remoteScreen = null;
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
  tag(data: SignalData): SignalData {
    if (!data || typeof data !== 'object') return data;
    const tagged: Record<string, unknown> = { ...data, pc: this.pcId };
    if (this.remotePcId) tagged.to_pc = this.remotePcId;
    return tagged;
  }

  /** Send one rtc:signal to the peer (queued while the socket is down). */
  send(type: SignalType, data: SignalData): Promise<SignalSent | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const payload: RtcSignal = { session_id: this.sessionId, type, data: this.tag(data) };
    if (this.peerId) payload.to = this.peerId;
    this.info.signalsOut += 1;
    if (this.paused || !this.socket.connected) {
      return new Promise((resolve, reject) => this.outbox.push({ payload, resolve, reject }));
    }
    return this.emitSignal(payload);
  }

  private async emitSignal(payload: RtcSignal): Promise<SignalSent | undefined> {
    try {
      return await emitAck(this.socket, 'rtc:signal', payload);
    } catch (e) {
      // The socket dropped while this was in flight: send it again after the resume (a
      // duplicate is harmless, a lost offer or answer is not).
      const code = e instanceof ApiError ? e.code : '';
      if (!this.closed && this.paused && (code === 'timeout' || code === 'not_in_session')) {
        return new Promise((resolve, reject) => this.outbox.push({ payload, resolve, reject }));
      }
      if (!this.closed) this.onError(e);
      throw e;
    }
  }

  /** The socket is down: keep the RTCPeerConnection, hold outgoing signals. */
  pause(): void {
    if (!this.closed) this.paused = true;
  }

  /** `session:resume` succeeded on the same RTCPeerConnection: new ICE servers, send the outbox. */
  resumed(ack: Pick<Resumed, 'ice_servers'> | null | undefined): void {
    if (this.closed) return;
    this.info.resumes += 1;
    if (ack && Array.isArray(ack.ice_servers)) {
      this.iceServers = ack.ice_servers;
      try {
        this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers: this.iceServers as RTCIceServer[] });
      } catch (e) {
        console.warn('setConfiguration after resume', e);
      }
    }
    this.paused = false;
    const out = this.outbox;
    this.outbox = [];
    for (const { payload, resolve, reject } of out) this.emitSignal(payload).then(resolve, reject);
  }

  /** Restart ICE in signal order; with `rollback` a pending local offer is rolled back first. */
  restartIce({ rollback = false }: { rollback?: boolean } = {}): void {
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

  /** Handle a server `rtc:signal` for this session (applied strictly in order). */
  handleSignal(msg: RelayedSignal): void {
    if (this.closed || !msg || msg.session_id !== this.sessionId) return;
    if (this.peerId && msg.from && msg.from !== this.peerId) return; // not from our peer
    this.info.signalsIn += 1;
    this.chain = this.chain
      .then(() => this.applySignal(msg))
      .catch((e) => {
        if (!this.closed) this.onError(e);
      });
  }

  /** Is this signal for our current RTCPeerConnection, from the peer's current one? */
  accepts(type: SignalType, data: SignalData): boolean {
    const tagged = Boolean(data && typeof data === 'object' && typeof data.pc === 'string');
    if (!tagged || !data) return data !== null || type !== 'candidate' || this.lastTaggedAccepted;
    const forUs = !data.to_pc || data.to_pc === this.pcId;
    const fromPeer = !this.remotePcId || data.pc === this.remotePcId;
    this.lastTaggedAccepted = forUs && fromPeer;
    if (this.lastTaggedAccepted && !this.remotePcId) this.remotePcId = data.pc as string;
    return this.lastTaggedAccepted;
  }

  private async applySignal({ type, data }: RelayedSignal): Promise<void> {
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
      if (type === 'offer') this.awaitPeerOffer = false;
      const description: RTCSessionDescriptionInit = { type, sdp: (data && (data.sdp as string)) || '' };
      const readyForOffer = !this.makingOffer && (pc.signalingState === 'stable' || this.isSettingRemoteAnswerPending);
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
        this.adoptScreenTransceiver(pc);
        await pc.setLocalDescription();
        if (pc.localDescription) {
          await this.send(pc.localDescription.type as SignalType, pc.localDescription.toJSON() as unknown as SignalData);
        }
      }
    } else if (type === 'candidate') {
      try {
        if (data && (data.candidate || data.candidate === '')) {
          const { pc: _from, to_pc: _to, ...init } = data;
          await pc.addIceCandidate(init as RTCIceCandidateInit);
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
  private async peerHasNewPeerConnection(remotePcId: string): Promise<void> {
    if (remotePcId === this.remotePcId) return; // a duplicate
    const pc = this.pc;
    if (!this.remotePcId && !pc.remoteDescription) {
      // Ours has not talked to any peer connection yet (we reloaded too): pair them, and
      // re-send an offer the peer may have dropped as meant for its old connection.
      this.remotePcId = remotePcId;
      this.lastTaggedAccepted = true;
      if (pc.signalingState === 'have-local-offer' && pc.localDescription && !this.makingOffer) {
        await this.send('offer', pc.localDescription.toJSON() as unknown as SignalData);
      }
      return;
    }
    this.renewPeerConnection(remotePcId);
  }

  /** Record when the first inbound video frame is decoded (and rendered). */
  private watchFirstFrame(): void {
    if (this.watching) return;
    this.watching = true;
    const video = this.remoteVideo;
    if (video && typeof video.requestVideoFrameCallback === 'function') {
      video.requestVideoFrameCallback(() => {
        const now = Date.now();
        if (!this.info.firstFrameRenderedAt) this.info.firstFrameRenderedAt = now;
        if (!this.info.firstFrameAt) this.info.firstFrameAt = now;
      });
    }
    const poll = async (): Promise<void> => {
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
      setTimeout(() => void poll(), 20);
    };
    void poll();
  }

  /** Close the connection and release camera and microphone. Safe to call twice. */
  close(): void {
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
    if (this.screenTrack) this.screenTrack.stop();
    this.screenListeners.clear();
    this.cameraListeners.clear();
    if (this.localVideo) this.localVideo.srcObject = null;
    if (this.remoteVideo) this.remoteVideo.srcObject = null;
    vtax.lastPc = this.pc;
    if (vtax.pc === this.pc) vtax.pc = null;
  }
}

/**
 * Routes `rtc:signal` messages to the current call, buffering those that arrive before the
 * call for their session exists. Tracks per session the highest `seq` seen (for
 * `session:resume {last_seq}`) and which seqs were applied (each once, even when it comes both
 * live and in a replay). While a resume is in flight it holds incoming signals.
 *
 * A call of three or more people (src/core/mesh.ts) has one more Call per other participant:
 * `attachPeer` routes the signals `from` that participant to it (held until it is attached),
 * and pause, resume and ICE restart apply to every one of them.
 */
export class SignalRouter {
  readonly socket: RouterSocket;
  call: Call | null = null;
  pending: RelayedSignal[] = [];
  held: RelayedSignal[] | null = null;
  /** the mesh's Calls, by the participant id of their peer */
  peers = new Map<string, Call>();
  private peerPending: RelayedSignal[] = [];
  private lastSeqs = new Map<string, number>();
  private seen = new Map<string, Set<number>>();
  private onSeq: (sessionId: string, seq: number) => void;

  constructor(socket: RouterSocket, { onSeq }: { onSeq?: (sessionId: string, seq: number) => void } = {}) {
    this.socket = socket;
    this.onSeq = onSeq || (() => {});
    socket.on('rtc:signal', (msg) => {
      if (!msg || typeof msg !== 'object') return;
      if (this.held) this.held.push(msg);
      else this.deliver(msg);
    });
    socket.on('disconnect', () => {
      if (this.call) this.call.pause();
      for (const peer of this.peers.values()) peer.pause();
    });
  }

  lastSeq(sessionId: string): number {
    return this.lastSeqs.get(sessionId) || 0;
  }

  /** Start from a persisted last_seq (page reload). */
  setLastSeq(sessionId: string, seq: unknown): void {
    const n = Number(seq) || 0;
    if (n > this.lastSeq(sessionId)) this.lastSeqs.set(sessionId, n);
  }

  /** Note the message's seq; false if it was already delivered. */
  markSeen(msg: RelayedSignal): boolean {
    const seq = Number(msg.seq);
    if (!Number.isInteger(seq) || seq <= 0) return true;
    let seen = this.seen.get(msg.session_id);
    if (!seen) this.seen.set(msg.session_id, (seen = new Set()));
    if (seen.has(seq)) return false;
    seen.add(seq);
    if (seen.size > 2000) seen.delete(Math.min(...seen));
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

  deliver(msg: RelayedSignal): void {
    if (!this.markSeen(msg)) return;
    const peer = this.peers.get(msg.from);
    if (peer && msg.session_id === peer.sessionId) {
      peer.handleSignal(msg);
    } else if (this.call && msg.session_id === this.call.sessionId) {
      if (this.call.peerId && msg.from && msg.from !== this.call.peerId) {
        // From a participant whose Call the mesh has not made yet (or the recorder's).
        this.peerPending.push(msg);
        if (this.peerPending.length > 200) this.peerPending.shift();
        return;
      }
      this.call.handleSignal(msg);
    } else if (!this.call) {
      this.pending.push(msg);
      if (this.pending.length > 200) this.pending.shift();
    }
  }

  attach(call: Call): void {
    this.call = call;
    const pending = this.pending;
    this.pending = [];
    for (const msg of pending) if (msg && msg.session_id === call.sessionId) call.handleSignal(msg);
  }

  detach(): void {
    if (this.call) this.call.close();
    this.call = null;
    this.pending = [];
    this.held = null;
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    this.peerPending = [];
  }

  /** A mesh Call for one more participant: it gets that participant's signals from now on. */
  attachPeer(call: Call): void {
    if (!call.peerId) return;
    this.peers.set(call.peerId, call);
    const mine = this.peerPending.filter((m) => m.from === call.peerId && m.session_id === call.sessionId);
    this.peerPending = this.peerPending.filter((m) => !mine.includes(m));
    for (const msg of mine) call.handleSignal(msg);
  }

  /** The participant left: close its Call. */
  detachPeer(peerId: string): void {
    const call = this.peers.get(peerId);
    if (call) call.close();
    this.peers.delete(peerId);
  }

  /**
   * `session:resume {session_id, last_seq}` and apply what was missed. Same page (a Call is
   * attached): keep the RTCPeerConnection, send the outbox, apply the replay and the held
   * signals in order; the impolite side restarts ICE. After a reload (`fresh`): the replay was
   * for the old RTCPeerConnection and is only marked as seen.
   */
  async resume(sessionId: string, { fresh = false }: { fresh?: boolean } = {}): Promise<Resumed> {
    const call = this.call && this.call.sessionId === sessionId && !fresh ? this.call : null;
    this.held = this.held || [];
    let ack: Resumed;
    try {
      ack = await emitAck(this.socket, 'session:resume', { session_id: sessionId, last_seq: this.lastSeq(sessionId) });
    } catch (e) {
      this.release();
      throw e;
    }
    const replay = Array.isArray(ack.replay) ? ack.replay : [];
    if (call && !call.closed) {
      call.resumed(ack);
      const peers = [...this.peers.values()].filter((p) => !p.closed && p.sessionId === sessionId);
      for (const peer of peers) peer.resumed(ack);
      for (const msg of replay) this.deliver(msg);
      this.release();
      if (!call.polite) call.restartIce({ rollback: true });
      for (const peer of peers) if (!peer.polite) peer.restartIce({ rollback: true });
    } else {
      for (const msg of replay) this.markSeen(msg);
      this.release();
    }
    return ack;
  }

  /** Stop holding: deliver the signals that arrived during the resume, in seq order. */
  release(): void {
    const held = this.held || [];
    this.held = null;
    held.sort((a, b) => (Number(a.seq) || 0) - (Number(b.seq) || 0));
    for (const msg of held) this.deliver(msg);
  }
}
