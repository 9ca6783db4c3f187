// Screen share and call quality in the call core: the fixed transceiver layout (a fake
// RTCPeerConnection that pairs m-lines with transceivers the way JSEP does), the stats
// sampler, the MOS and badge mapping (the same points as tests/review/test_call_quality.py),
// and the pointer's coordinates.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Call, SCREEN_MAX_BITRATE, screenMid, type CallOptions } from '@/core/rtc';
import { StatsSampler, estimatedMos, levelOf, rFactor, sampleLevel } from '@/core/quality';
import { contentBox, fromPicture, toPicture } from '@/core/screen';
import { FakeSocket, FakeStream, flush, signal } from './fakes';

class FakeSender {
  track: unknown = null;
  params: { encodings: { maxBitrate?: number; maxFramerate?: number }[]; degradationPreference?: string } = { encodings: [] };
  async replaceTrack(t: unknown) {
    this.track = t;
  }
  getParameters() {
    return structuredClone(this.params);
  }
  async setParameters(p: FakeSender['params']) {
    this.params = p;
  }
}

class FakeTransceiver {
  mid: string | null = null;
  sender = new FakeSender();
  constructor(
    readonly kind: string,
    public direction: string,
    readonly fromAddTrack: boolean,
  ) {}
}

/** Enough of RTCPeerConnection for the layout: m-lines are transceivers with mids, in order. */
class LayoutPC {
  static made: LayoutPC[] = [];
  signalingState = 'stable';
  connectionState = 'new';
  iceConnectionState = 'new';
  localDescription: { type: string; sdp: string; toJSON(): unknown } | null = null;
  remoteDescription: { type: string; sdp: string } | null = null;
  list: FakeTransceiver[] = [];
  nextMid = 0;
  onnegotiationneeded: (() => void) | null = null;
  onsignalingstatechange: (() => void) | null = null;
  onicecandidate: (() => void) | null = null;
  oniceconnectionstatechange: (() => void) | null = null;
  onconnectionstatechange: (() => void) | null = null;
  ontrack: ((e: unknown) => void) | null = null;
  constructor(public config: RTCConfiguration) {
    LayoutPC.made.push(this);
  }
  addTrack(track: { kind: string }) {
    const t = new FakeTransceiver(track.kind, 'sendrecv', true);
    t.sender.track = track;
    this.list.push(t);
  }
  addTransceiver(what: string | { kind: string }, init: { direction: string }) {
    const kind = typeof what === 'string' ? what : what.kind;
    const t = new FakeTransceiver(kind, init.direction, false);
    if (typeof what !== 'string') t.sender.track = what;
    this.list.push(t);
    return t;
  }
  getTransceivers() {
    return this.list;
  }
  /** The SDP of our m-lines: every transceiver gets a mid (in order) when we offer. */
  sdp(): string {
    for (const t of this.list) if (t.mid === null) t.mid = String(this.nextMid++);
    return this.list.map((t) => `m=${t.kind} 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:${t.mid}\r\na=${t.direction}`).join('\r\n');
  }
  async setLocalDescription() {
    const type = this.signalingState === 'have-remote-offer' ? 'answer' : 'offer';
    const sdp = type === 'offer' ? this.sdp() : this.list.filter((t) => t.mid !== null).map((t) => `m=${t.kind} 9 X 96\r\na=mid:${t.mid}\r\na=${t.direction}`).join('\r\n');
    this.localDescription = { type, sdp, toJSON: () => ({ type, sdp }) };
    this.signalingState = type === 'offer' ? 'have-local-offer' : 'stable';
    // a negotiated sending transceiver has one encoding, with or without a track
    for (const t of this.list) if (t.direction.includes('send') && !t.sender.params.encodings.length && t.mid !== null) t.sender.params.encodings = [{}];
    this.onsignalingstatechange?.();
  }
  /** JSEP: each remote m-line takes the transceiver with its mid, else an unassociated
   * addTrack one of its kind, else a new recvonly one. */
  async setRemoteDescription(d: { type: string; sdp: string }) {
    this.remoteDescription = d;
    if (d.type === 'offer') {
      this.signalingState = 'have-remote-offer';
      const lines = [...d.sdp.matchAll(/m=(\w+)[^\n]*\r\na=mid:(\S+)/g)];
      for (const [, kind, mid] of lines) {
        let t = this.list.find((x) => x.mid === mid);
        if (!t) {
          t = this.list.find((x) => x.mid === null && x.fromAddTrack && x.kind === kind);
          if (t) t.mid = mid!;
        }
        if (!t) {
          t = new FakeTransceiver(kind!, 'recvonly', false);
          t.mid = mid!;
          this.list.push(t);
          this.ontrack?.({ track: { kind }, streams: [], transceiver: t });
        }
      }
      this.nextMid = lines.length;
    } else {
      this.signalingState = 'stable';
    }
    this.onsignalingstatechange?.();
  }
  async addIceCandidate() {}
  restartIce() {}
  getConfiguration() {
    return this.config;
  }
  setConfiguration() {}
  async getStats() {
    return new Map();
  }
  close() {}
}

const track = (kind: string) => ({ kind, readyState: 'live', enabled: true, stop: vi.fn(), contentHint: '' });

function stream() {
  const s = new FakeStream();
  s.addTrack(track('audio'));
  s.addTrack(track('video'));
  return s as unknown as MediaStream;
}

function makeCall(polite: boolean, socket = new FakeSocket()): Call {
  return new Call({
    socket,
    start: { session_id: 's1', participant_id: polite ? 'tp' : 'ag', polite, ice_servers: [], peer: { participant_id: 'peer' } },
    media: { stream: stream(), error: null },
    peerConnection: LayoutPC as unknown as CallOptions['peerConnection'],
    onError: () => {},
  });
}

beforeEach(() => {
  vi.stubGlobal('MediaStream', FakeStream);
  LayoutPC.made = [];
});
afterEach(() => vi.unstubAllGlobals());

describe('the transceiver layout', () => {
  it('finds the screen m-line: the second video one', () => {
    const sdp = 'v=0\r\nm=audio 9 X 111\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:1\r\nm=video 9 X 96\r\na=mid:2\r\n';
    expect(screenMid(sdp)).toBe('2');
    expect(screenMid('m=audio 9 X 1\r\na=mid:a\r\nm=video 9 X 1\r\na=mid:v\r\n')).toBeNull();
    expect(screenMid(undefined)).toBeNull();
  });

  it('keeps three m-lines on both sides: the agent adds the screen, the taxpayer adopts it', async () => {
    const agent = makeCall(false);
    const taxpayer = makeCall(true);
    await Promise.all([agent.ready, taxpayer.ready]);
    const a = agent.pc as unknown as LayoutPC;
    const t = taxpayer.pc as unknown as LayoutPC;
    expect(a.list.map((x) => x.kind)).toEqual(['audio', 'video', 'video']);
    expect(t.list.map((x) => x.kind)).toEqual(['audio', 'video']); // no screen transceiver of its own
    expect(taxpayer.screenTransceiver).toBeNull();

    await a.setLocalDescription();
    const remoteScreens: MediaStream[] = [];
    taxpayer.onRemoteScreen = (s) => remoteScreens.push(s);
    taxpayer.handleSignal(signal(1, 'offer', { type: 'offer', sdp: a.localDescription!.sdp }));
    await flush();
    await flush();
    expect(t.list.map((x) => `${x.kind}:${x.mid}`)).toEqual(['audio:0', 'video:1', 'video:2']);
    expect(taxpayer.screenTransceiver).toBe(t.list[2]);
    expect(t.list[2]!.direction).toBe('sendrecv'); // set before the answer: no renegotiation
    expect(remoteScreens).toHaveLength(1); // the agent's screen, apart from its camera
    expect(taxpayer.remoteStream.getTracks()).toHaveLength(0);

    // Sharing is replaceTrack on it, with the screen encoding's limits.
    const screen = track('video');
    const seen: unknown[] = [];
    taxpayer.screenListeners.add((x) => seen.push(x));
    await taxpayer.setScreenTrack(screen as unknown as MediaStreamTrack);
    const sender = t.list[2]!.sender;
    expect(sender.track).toBe(screen);
    expect(screen.contentHint).toBe('detail');
    expect(sender.params.encodings[0]).toMatchObject({ maxBitrate: SCREEN_MAX_BITRATE, maxFramerate: 5 });
    expect(sender.params.degradationPreference).toBe('maintain-resolution');
    expect(seen).toEqual([screen]);
    await taxpayer.setScreenTrack(null);
    expect(sender.track).toBeNull();
    expect(t.list).toHaveLength(3);
  });

  it('rebuilds the same layout on a new RTCPeerConnection and puts the screen track back', async () => {
    const agent = makeCall(false);
    await agent.ready;
    const screen = track('video');
    await agent.setScreenTrack(screen as unknown as MediaStreamTrack);
    expect((agent.pc as unknown as LayoutPC).list[2]!.sender.track).toBe(screen);
    agent.renewPeerConnection('peer-pc-2');
    const fresh = agent.pc as unknown as LayoutPC;
    expect(LayoutPC.made).toHaveLength(2);
    expect(fresh.list.map((x) => x.kind)).toEqual(['audio', 'video', 'video']);
    expect(fresh.list[2]!.sender.track).toBe(screen);
    expect(agent.screenTransceiver).toBe(fresh.list[2]);
    agent.close();
    expect(screen.stop).toHaveBeenCalled();
  });
});

describe('call quality', () => {
  it('estimates the MOS with the simplified E-model, as the server does', () => {
    expect(rFactor(40)).toBe(92.45);
    expect(rFactor(300, 25, 4)).toBeCloseTo(84.2 - 10, 6);
    expect(rFactor(10000, 1000, 100)).toBe(0);
    expect(estimatedMos(40)).toBe(4.39);
    expect(estimatedMos(null, 5, 1)).toBeNull();
    const values = [20, 100, 200, 400, 800, 2000].map((rtt) => estimatedMos(rtt, rtt / 10, rtt / 50)!);
    expect([...values].sort((x, y) => y - x)).toEqual(values);
  });

  it('maps a MOS to the badge', () => {
    expect([4.41, 4.0, 3.99, 3.6, 3.59, 1.0, null].map(levelOf)).toEqual(['good', 'good', 'fair', 'fair', 'poor', 'poor', null]);
    expect(sampleLevel({ rtt_ms: 40, jitter_ms: 5, loss_pct: 0 })).toBe('good');
    expect(sampleLevel({ rtt_ms: 300, jitter_ms: 40, loss_pct: 8 })).toBe('poor');
    expect(sampleLevel({})).toBeNull();
  });

  it('samples RTT, jitter, loss, bitrates, frame rate and size from successive reports', () => {
    const report = (n: number) =>
      new Map<string, unknown>([
        ['T', { type: 'transport', id: 'T', selectedCandidatePairId: 'P1' }],
        ['P0', { type: 'candidate-pair', id: 'P0', currentRoundTripTime: 0.9, nominated: true, state: 'succeeded' }],
        ['P1', { type: 'candidate-pair', id: 'P1', currentRoundTripTime: 0.05 }],
        ['IA', { type: 'inbound-rtp', id: 'IA', kind: 'audio', jitter: 0.012, packetsLost: 2 * n, packetsReceived: 98 * n, bytesReceived: 4000 * n }],
        ['IV', { type: 'inbound-rtp', id: 'IV', kind: 'video', mid: '1', framesDecoded: 30 * n, frameWidth: 640, frameHeight: 360, packetsLost: 0, packetsReceived: 100 * n, bytesReceived: 96000 * n }],
        ['IS', { type: 'inbound-rtp', id: 'IS', kind: 'video', mid: '2', framesDecoded: 10 * n, frameWidth: 1280, frameHeight: 720, packetsLost: 0, packetsReceived: 0, bytesReceived: 0 }],
        ['OV', { type: 'outbound-rtp', id: 'OV', kind: 'video', mid: '1', bytesSent: 100000 * n }],
        ['OS', { type: 'outbound-rtp', id: 'OS', kind: 'video', mid: '2', bytesSent: 50000 * n }],
      ]);
    const sampler = new StatsSampler(() => '2');
    const first = sampler.sample(report(1), 1000);
    expect(first).toEqual({ rtt_ms: 50, jitter_ms: 12, width: 640, height: 360 }); // no window yet
    const second = sampler.sample(report(2), 3000);
    expect(second).toEqual({
      rtt_ms: 50,
      jitter_ms: 12,
      width: 640,
      height: 360,
      loss_pct: 1, // 2 lost of 200 expected
      out_kbps: 600, // 150 000 bytes in 2 s
      in_kbps: 400,
      screen_out_kbps: 200,
      fps: 15, // the camera's 30 frames in 2 s, not the screen's
    });
  });
});

describe('the pointer', () => {
  it('maps a click on a letterboxed picture to coordinates over the picture and back', () => {
    const box = contentBox({ width: 800, height: 600 }, { width: 1280, height: 720 });
    expect(box).toEqual({ left: 0, top: 75, width: 800, height: 450 });
    expect(toPicture(400, 300, box)).toEqual({ x: 0.5, y: 0.5 });
    expect(toPicture(200, 75, box)).toEqual({ x: 0.25, y: 0 });
    expect(toPicture(400, 50, box)).toBeNull(); // on the black band
    // the sharer's preview is another size: the marker lands on the same place of the picture
    const preview = contentBox({ width: 320, height: 180 }, { width: 1280, height: 720 });
    expect(fromPicture({ x: 0.25, y: 0.75 }, preview)).toEqual({ x: 80, y: 135 });
  });
});
