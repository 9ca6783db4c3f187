// Monitor and whisper, browser side (docs/recording.md, "The media leg"), framework-free.
//
// The agent's page (`AgentMonitorLink`): on `monitor:agent {leg_id}` it opens one more
// RTCPeerConnection, to the media leg, with five m-lines in a fixed order: its own audio and
// video, the taxpayer's audio and video as received on the call (send-only: the agent's
// office link carries them, so the taxpayer's thin uplink carries nothing more), and one audio
// m-line it receives the whisper on, played in an <audio> element of its own: never into the
// call's connection, so the taxpayer cannot hear it. The call's own connection is untouched.
//
// The supervisor's wallboard (`SupervisorMonitor`): `monitor:start`, then one RTCPeerConnection
// to the leg: four m-lines it receives on (the same four sources, same order) and its
// microphone, sending only while the whisper button is held (the track is disabled otherwise
// and `monitor:whisper` tells the leg whose voice to pass to the agent).
//
// Both offer VP8 only, as the leg forwards encoded frames without re-encoding. Signals go as
// `monitor:signal` (never the call's `rtc:signal`). For the tests: window.vtax.monitor.
import type { MonitorAgentNotice, MonitorRelayedSignal, MonitorState, MonitorView } from '@/contract';
import { vtax } from './hook';
import type { Call } from './rtc';
import { emitAck, type AckEmitter } from './socket';

export interface MonitorSocket extends AckEmitter {
  on(event: 'monitor:agent', fn: (msg: MonitorAgentNotice) => void): unknown;
  on(event: 'monitor:state', fn: (msg: MonitorState) => void): unknown;
  on(event: 'monitor:signal', fn: (msg: MonitorRelayedSignal) => void): unknown;
  on(event: 'session:end', fn: () => void): unknown;
}

type SignalData = Record<string, unknown> | null;

/** Put VP8 first and alone (plus its retransmissions) on a video transceiver. */
function preferVp8(t: RTCRtpTransceiver): void {
  const caps = typeof RTCRtpReceiver !== 'undefined' && RTCRtpReceiver.getCapabilities ? RTCRtpReceiver.getCapabilities('video') : null;
  if (!caps || !t.setCodecPreferences) return;
  const vp8 = caps.codecs.filter((c) => /vp8|rtx/i.test(c.mimeType));
  if (vp8.some((c) => /vp8/i.test(c.mimeType))) {
    try {
      t.setCodecPreferences(vp8);
    } catch (e) {
      console.warn('setCodecPreferences', e);
    }
  }
}

/** How long a leg notice waits for the page's call (made again after a reload). */
const CALL_WAIT_MS = 10000;

/** One offered connection to the leg, its trickle and its answer. */
class LegConnection {
  readonly pc: RTCPeerConnection;
  closed = false;

  constructor(
    iceServers: RTCIceServer[],
    private send: (type: 'offer' | 'candidate', data: SignalData) => Promise<unknown>,
  ) {
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
    this.pc.onicecandidate = ({ candidate }) => {
      if (this.closed) return;
      this.send('candidate', candidate ? (candidate.toJSON() as unknown as Record<string, unknown>) : null).catch(() => {});
    };
  }

  async offer(): Promise<void> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.pc.localDescription) await this.send('offer', this.pc.localDescription.toJSON() as unknown as Record<string, unknown>);
  }

  async signal(msg: MonitorRelayedSignal): Promise<void> {
    if (this.closed) return;
    try {
      if (msg.type === 'answer' && msg.data) await this.pc.setRemoteDescription(msg.data as unknown as RTCSessionDescriptionInit);
      else if (msg.type === 'candidate' && msg.data && msg.data.candidate) await this.pc.addIceCandidate(msg.data as RTCIceCandidateInit);
    } catch (e) {
      console.warn('leg signal failed', e);
    }
  }

  close(): void {
    this.closed = true;
    try {
      this.pc.close();
    } catch {
      /* already closed */
    }
  }
}

export interface AgentMonitorInfo {
  legId: string | null;
  monitors: number;
  whispering: boolean;
  connectionState: string | null;
  offers: number;
}

export interface AgentMonitorHooks {
  getCall: () => Call | null;
  onState: (msg: MonitorAgentNotice | null) => void;
}

/** The agent's side: feed the leg, play the whisper. */
export class AgentMonitorLink {
  readonly info: AgentMonitorInfo;
  readonly whisperAudio: HTMLAudioElement | null;
  private conn: LegConnection | null = null;
  private senders: RTCRtpSender[] = [];
  private socket: MonitorSocket | null = null;
  private sync: ReturnType<typeof setInterval> | undefined;
  private opening = 0; // the latest open(): an older one still waiting for the call gives up

  constructor() {
    this.info = { legId: null, monitors: 0, whispering: false, connectionState: null, offers: 0 };
    vtax.monitor = this.info;
    this.whisperAudio = typeof document !== 'undefined' ? document.createElement('audio') : null;
    if (this.whisperAudio) {
      this.whisperAudio.autoplay = true;
      this.whisperAudio.id = 'whisper-audio';
    }
  }

  bind(socket: MonitorSocket, hooks: AgentMonitorHooks): void {
    if (this.socket === socket) return;
    this.socket = socket;
    socket.on('monitor:agent', (msg) => {
      if (!msg) return;
      const call = hooks.getCall();
      if (call && msg.session_id !== call.sessionId) return;
      this.info.monitors = msg.monitors;
      this.info.whispering = msg.whispering;
      hooks.onState(msg.monitors ? msg : null);
      if (!msg.leg_id) {
        this.close();
        this.info.legId = null;
      } else if (msg.leg_id !== this.info.legId || !this.conn) {
        this.info.legId = msg.leg_id;
        void this.open(hooks.getCall, msg.leg_id);
      }
    });
    socket.on('monitor:signal', (msg) => {
      if (!msg || msg.from !== this.info.legId) return;
      if (msg.type === 'restart') void this.open(hooks.getCall, msg.from);
      else if (this.conn) void this.conn.signal(msg);
    });
    socket.on('session:end', () => {
      this.close();
      this.info.legId = null;
      this.info.monitors = 0;
      this.info.whispering = false;
      hooks.onState(null);
    });
  }

  /** The call's tracks, in the leg's order: mine (audio, video), the taxpayer's (audio, video). */
  private static tracks(call: Call): (MediaStreamTrack | null)[] {
    const mine = call.stream;
    const theirs = call.remoteStream;
    return [
      mine?.getAudioTracks()[0] || null,
      mine?.getVideoTracks()[0] || null,
      theirs?.getAudioTracks()[0] || null,
      theirs?.getVideoTracks()[0] || null,
    ];
  }

  /**
   * Open the feed to the leg. After a reload the notice comes with the resumed call, before
   * the page has made that call again: wait for it (up to CALL_WAIT_MS).
   */
  private async open(getCall: () => Call | null, legId: string): Promise<void> {
    const mine = ++this.opening;
    let call = getCall();
    for (let waited = 0; !call && waited < CALL_WAIT_MS; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      if (mine !== this.opening) return;
      call = getCall();
    }
    if (!call || call.closed || !this.socket) return;
    await call.ready;
    if (call.closed || this.info.legId !== legId || mine !== this.opening) return;
    this.close();
    const socket = this.socket;
    const sessionId = call.sessionId;
    const conn = (this.conn = new LegConnection(call.iceServers as RTCIceServer[], (type, data) =>
      emitAck(socket, 'monitor:signal', { session_id: sessionId, to: legId, type, data }),
    ));
    const pc = conn.pc;
    const kinds = ['audio', 'video', 'audio', 'video'] as const;
    const tracks = AgentMonitorLink.tracks(call);
    this.senders = kinds.map((kind, i) => {
      const t = pc.addTransceiver(tracks[i] || kind, { direction: 'sendonly' });
      if (kind === 'video') preferVp8(t);
      return t.sender;
    });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    if (this.whisperAudio && !this.whisperAudio.isConnected && document.body) {
      this.whisperAudio.hidden = true; // heard, not seen
      document.body.appendChild(this.whisperAudio);
    }
    pc.ontrack = ({ track }) => {
      if (this.whisperAudio && track.kind === 'audio') {
        this.whisperAudio.srcObject = new MediaStream([track]);
        void this.whisperAudio.play().catch(() => {});
      }
    };
    pc.onconnectionstatechange = () => {
      if (this.conn === conn) this.info.connectionState = pc.connectionState;
    };
    // The taxpayer's tracks arrive (or change, after a new call connection) later than ours.
    this.sync = setInterval(() => {
      if (this.conn !== conn || call.closed) return;
      AgentMonitorLink.tracks(call).forEach((track, i) => {
        const sender = this.senders[i];
        if (sender && track && sender.track !== track) void sender.replaceTrack(track).catch(() => {});
      });
    }, 500);
    try {
      await conn.offer();
      this.info.offers += 1;
    } catch (e) {
      console.warn('leg offer failed', e);
    }
  }

  close(): void {
    if (this.sync) clearInterval(this.sync);
    this.sync = undefined;
    if (this.conn) this.conn.close();
    this.conn = null;
    this.senders = [];
    if (this.whisperAudio) this.whisperAudio.srcObject = null;
    this.info.connectionState = 'closed';
  }
}

export interface SupervisorMonitorInfo {
  sessionId: string | null;
  monitorId: string | null;
  legId: string | null;
  state: 'idle' | 'connecting' | 'live' | 'ended';
  whisper: boolean;
  connectionState: string | null;
}

export interface SupervisorMonitorHooks {
  /** the agent's and the taxpayer's streams, once their tracks arrive */
  onStreams: (agent: MediaStream, taxpayer: MediaStream) => void;
  onState: (info: SupervisorMonitorInfo) => void;
}

/** The supervisor's side: watch both, whisper to the agent. */
export class SupervisorMonitor {
  readonly info: SupervisorMonitorInfo;
  private conn: LegConnection | null = null;
  private mic: MediaStream | null = null;
  private iceServers: RTCIceServer[] = [];
  private wired = false;

  constructor(
    private socket: MonitorSocket,
    private hooks: SupervisorMonitorHooks,
  ) {
    this.info = { sessionId: null, monitorId: null, legId: null, state: 'idle', whisper: false, connectionState: null };
    vtax.supervisorMonitor = this.info;
  }

  private changed(): void {
    this.hooks.onState({ ...this.info });
  }

  private wire(): void {
    if (this.wired) return;
    this.wired = true;
    this.socket.on('monitor:state', (msg) => {
      if (!msg || msg.monitor_id !== this.info.monitorId) return;
      if (msg.state === 'live' && msg.leg_id) {
        this.info.state = 'live';
        this.info.legId = msg.leg_id;
        void this.connect(msg.leg_id);
      } else if (msg.state === 'connecting') {
        this.info.state = 'connecting';
        this.closeMedia();
      } else if (msg.state === 'ended') {
        this.info.state = 'ended';
        this.closeMedia();
      }
      this.changed();
    });
    this.socket.on('monitor:signal', (msg) => {
      if (!msg || msg.from !== this.info.legId) return;
      if (msg.type === 'restart' && this.info.legId) void this.connect(this.info.legId);
      else if (this.conn) void this.conn.signal(msg);
    });
  }

  async start(sessionId: string): Promise<MonitorView> {
    this.wire();
    if (this.info.sessionId && this.info.sessionId !== sessionId) await this.stop();
    const view = await emitAck(this.socket, 'monitor:start', { session_id: sessionId });
    this.iceServers = view.ice_servers as RTCIceServer[];
    Object.assign(this.info, { sessionId, monitorId: view.monitor_id, legId: view.leg_id, state: view.state, whisper: false });
    this.changed();
    if (view.state === 'live' && view.leg_id) await this.connect(view.leg_id);
    return view;
  }

  private async connect(legId: string): Promise<void> {
    const sessionId = this.info.sessionId;
    if (!sessionId) return;
    this.closeMedia();
    const socket = this.socket;
    const conn = (this.conn = new LegConnection(this.iceServers, (type, data) =>
      emitAck(socket, 'monitor:signal', { session_id: sessionId, to: legId, type, data }),
    ));
    const pc = conn.pc;
    const agent = new MediaStream();
    const taxpayer = new MediaStream();
    const order = (['audio', 'video', 'audio', 'video'] as const).map((kind) => {
      const t = pc.addTransceiver(kind, { direction: 'recvonly' });
      if (kind === 'video') preferVp8(t);
      return t;
    });
    if (!this.mic) {
      try {
        this.mic = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch (e) {
        console.warn('no microphone: whisper unavailable', e);
      }
    }
    const voice = this.mic ? this.mic.getAudioTracks()[0] : null;
    if (voice) voice.enabled = this.info.whisper;
    pc.addTransceiver(voice || 'audio', { direction: 'sendonly' });
    pc.ontrack = ({ track, transceiver }) => {
      const i = order.indexOf(transceiver);
      if (i < 0) return;
      (i < 2 ? agent : taxpayer).addTrack(track);
      this.hooks.onStreams(agent, taxpayer);
    };
    pc.onconnectionstatechange = () => {
      if (this.conn === conn) {
        this.info.connectionState = pc.connectionState;
        this.changed();
      }
    };
    vtax.monitorPc = pc;
    await conn.offer();
  }

  /** Push to talk: the microphone reaches the agent only while `on`. */
  async whisper(on: boolean): Promise<void> {
    if (!this.info.sessionId || this.info.whisper === on) return;
    const voice = this.mic ? this.mic.getAudioTracks()[0] : null;
    if (voice) voice.enabled = on;
    try {
      const view = await emitAck(this.socket, 'monitor:whisper', { session_id: this.info.sessionId, on });
      this.info.whisper = view.whisper;
    } catch (e) {
      if (voice) voice.enabled = false;
      this.info.whisper = false;
      this.changed();
      throw e;
    }
    if (voice) voice.enabled = this.info.whisper;
    this.changed();
  }

  async stop(): Promise<void> {
    const sessionId = this.info.sessionId;
    this.closeMedia();
    if (this.mic) this.mic.getTracks().forEach((t) => t.stop());
    this.mic = null;
    Object.assign(this.info, { sessionId: null, monitorId: null, legId: null, state: 'idle', whisper: false });
    this.changed();
    if (sessionId) await emitAck(this.socket, 'monitor:stop', { session_id: sessionId }).catch(() => {});
  }

  private closeMedia(): void {
    if (this.conn) this.conn.close();
    this.conn = null;
    this.info.connectionState = null;
  }
}
