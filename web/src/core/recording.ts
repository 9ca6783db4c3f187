// Recording, browser side (docs/recording.md), framework-free:
// - the recording state (`session:recording`) and, for the taxpayer, the consent prompt
//   (answered with `session:consent`);
// - when the recorder joins (`session:participant {role: "recorder", state: "joined"}`), a
//   second, send-only RTCPeerConnection carrying this page's camera and microphone to it;
// - the recorder's `rtc:signal {type: "restart"}` opens a new one when ours is not healthy
//   (signals of the other people of a call of three or more are the mesh's: src/core/mesh.ts);
// - a fixed video m-line on it for the shared screen, after the camera's (no track until this
//   side shares, then `replaceTrack` follows the call's screen track), named by its mid in the
//   offer (`screen_mid`: a page without a camera has no other video m-line): the recorder
//   keeps it as its own track (docs/recording.md, "Screen").
// For the tests: window.vtax.recording and window.vtax.recorderPc.
import type { RecordingState, RelayedSignal, SessionParticipant, SessionRoster } from '@/contract';
import { vtax, type RecordingInfo } from './hook';
import type { Call } from './rtc';
import { emitAck, type AckEmitter } from './socket';

export interface RecordingSocket extends AckEmitter {
  on(event: 'session:recording', fn: (msg: RecordingState) => void): unknown;
  on(event: 'session:participant', fn: (msg: SessionParticipant) => void): unknown;
  on(event: 'rtc:signal', fn: (msg: RelayedSignal) => void): unknown;
  on(event: 'session:end', fn: () => void): unknown;
  on(event: 'session:roster', fn: (msg: SessionRoster) => void): unknown;
}

interface Link {
  pc: RTCPeerConnection;
  sessionId: string;
  recorderId: string;
  /** stops following the call's screen track */
  unfollow: () => void;
}

export interface RecordingHooks {
  getCall: () => Call | null;
  /** every state change (the page shows it, and the consent prompt for the taxpayer) */
  onState: (msg: RecordingState) => void;
  /** the session ended: hide the prompt */
  onEnd: () => void;
}

export class Recording {
  readonly info: RecordingInfo;
  private link: Link | null = null;
  private socket: RecordingSocket | null = null;
  /** the visible participants (`session:roster`): their signals are the mesh's, not ours */
  private visible = new Set<string>();

  constructor() {
    this.info = vtax.recording = {
      state: null,
      recorderId: null,
      connectionState: null,
      offers: 0,
      consent: null,
      sessionId: null,
    };
  }

  /** Attach to a page's socket (again after a new socket). */
  bind(socket: RecordingSocket, hooks: RecordingHooks): void {
    if (this.socket === socket) return;
    this.socket = socket;
    socket.on('session:recording', (msg) => {
      if (!msg || !msg.state) return;
      this.info.state = msg.state;
      this.info.sessionId = msg.session_id;
      hooks.onState(msg);
    });
    socket.on('session:participant', (msg) => {
      if (!msg || msg.role !== 'recorder') return;
      if (msg.state === 'joined') {
        this.info.recorderId = msg.participant_id;
        void this.open(hooks.getCall(), msg.participant_id);
      } else if (msg.state === 'left' && this.info.recorderId === msg.participant_id) {
        this.close();
        this.info.recorderId = null;
      }
    });
    socket.on('rtc:signal', (msg) => void this.onSignal(hooks.getCall(), msg));
    socket.on('session:roster', (msg) => {
      if (msg && Array.isArray(msg.participants)) this.visible = new Set(msg.participants.map((p) => p.participant_id));
    });
    socket.on('session:end', () => {
      this.close();
      this.info.recorderId = null;
      hooks.onEnd();
    });
  }

  /** The taxpayer's answer to the consent prompt. */
  async consent(sessionId: string, recording: boolean): Promise<void> {
    const ack = await emitAck(this.socket, 'session:consent', { session_id: sessionId, recording });
    this.info.consent = recording;
    this.info.state = ack.recording;
  }

  private async open(call: Call | null, recorderId: string): Promise<void> {
    if (!call || call.closed || !this.socket) return;
    await call.ready;
    if (call.closed || this.info.recorderId !== recorderId) return;
    // A page without a camera (or without any device) still opens the link: what it has is
    // recorded, and the screen it shares too.
    const stream = call.stream;
    this.close();
    const socket = this.socket;
    const pc = new RTCPeerConnection({ iceServers: call.iceServers as RTCIceServer[] });
    let camera: RTCRtpSender | null = null;
    for (const track of stream ? stream.getTracks() : []) {
      const t = pc.addTransceiver(track, { direction: 'sendonly', streams: stream ? [stream] : [] });
      if (track.kind === 'video') camera = t.sender;
    }
    // The screen's m-line: always there (after the camera's), a track only while sharing.
    const screen = pc.addTransceiver(call.screenTrack ?? 'video', { direction: 'sendonly' });
    // No RTX (nor RED / FEC) on it: aiortc routes a packet of an SSRC it was not told of (an
    // RTX stream's) by payload type alone, so the camera's retransmissions must have payload
    // types of their own; the screen's lost packets are resent on its own SSRC (NACK).
    if (typeof screen.setCodecPreferences === 'function' && typeof RTCRtpSender.getCapabilities === 'function') {
      const codecs = (RTCRtpSender.getCapabilities('video')?.codecs || []).filter((c) => !/\/(rtx|red|ulpfec|flexfec-03)$/i.test(c.mimeType));
      try {
        if (codecs.length) screen.setCodecPreferences(codecs);
      } catch (e) {
        console.warn('recorder screen codecs', e);
      }
    }
    const follow = (track: MediaStreamTrack | null) => {
      screen.sender.replaceTrack(track).catch((e) => console.warn('recorder screen track', e));
    };
    call.screenListeners.add(follow);
    // a switched camera (core/camera.ts): the recorder gets the new one on the same m-line
    const followCamera = (track: MediaStreamTrack) => {
      camera?.replaceTrack(track).catch((e) => console.warn('recorder camera track', e));
    };
    call.cameraListeners.add(followCamera);
    const unfollow = () => {
      call.screenListeners.delete(follow);
      call.cameraListeners.delete(followCamera);
    };
    const mine: Link = (this.link = { pc, sessionId: call.sessionId, recorderId, unfollow });
    vtax.recorderPc = pc;
    const send = (type: 'offer' | 'candidate', data: Record<string, unknown> | null) =>
      emitAck(this.socket || socket, 'rtc:signal', { session_id: mine.sessionId, to: recorderId, type, data });
    pc.onicecandidate = ({ candidate }) => {
      if (this.link !== mine) return;
      send('candidate', candidate ? (candidate.toJSON() as unknown as Record<string, unknown>) : null).catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (this.link === mine) this.info.connectionState = pc.connectionState;
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      this.info.offers += 1;
      // the screen's m-line by its mid: without a camera it is the only video m-line
      if (pc.localDescription) await send('offer', { ...(pc.localDescription.toJSON() as unknown as Record<string, unknown>), screen_mid: screen.mid });
    } catch (e) {
      console.warn('recorder offer failed', e);
    }
  }

  private async onSignal(call: Call | null, msg: RelayedSignal): Promise<void> {
    if (!msg || !call || msg.session_id !== call.sessionId) return;
    if (msg.from === call.peerId) return; // the call's own signals
    if (this.visible.has(msg.from)) return; // another person of a call of three or more
    if (msg.type === 'restart') {
      const link = this.link;
      const healthy = link && ['connected', 'connecting', 'new'].includes(link.pc.connectionState);
      if (!healthy || !link || link.recorderId !== msg.from) {
        this.info.recorderId = msg.from;
        void this.open(call, msg.from);
      }
      return;
    }
    const link = this.link;
    if (!link || msg.from !== link.recorderId) return;
    try {
      if (msg.type === 'answer' && msg.data) {
        await link.pc.setRemoteDescription(msg.data as unknown as RTCSessionDescriptionInit);
      } else if (msg.type === 'candidate' && msg.data && msg.data.candidate) {
        await link.pc.addIceCandidate(msg.data as RTCIceCandidateInit);
      }
    } catch (e) {
      console.warn('recorder signal failed', e);
    }
  }

  close(): void {
    if (!this.link) return;
    this.link.unfollow();
    try {
      this.link.pc.close();
    } catch {
      /* already closed */
    }
    this.link = null;
    this.info.connectionState = 'closed';
  }
}
