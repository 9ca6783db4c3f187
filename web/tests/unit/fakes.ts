// Fakes for the call core's unit tests: a socket that records acked emits, and an
// RTCPeerConnection that plays the signalling state machine without media.
import type { RelayedSignal } from '@/contract';

export interface Emitted {
  event: string;
  payload: Record<string, unknown>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Handler = (...args: any[]) => void;

export class FakeSocket {
  connected = true;
  emitted: Emitted[] = [];
  handlers = new Map<string, Handler[]>();
  /** how the server answers each event (default {ok: true, seq: n}) */
  answer: (event: string, payload: Record<string, unknown>) => unknown = () => ({ ok: true, seq: this.emitted.length });
  /** never answer (the ack times out) */
  silent = false;

  timeout(_ms: number) {
    return {
      emit: (event: string, payload: unknown, cb: (err: unknown, ack: unknown) => void) => {
        this.emitted.push({ event, payload: payload as Record<string, unknown> });
        if (this.silent) {
          queueMicrotask(() => cb(new Error('timeout'), undefined));
          return;
        }
        const ack = this.answer(event, payload as Record<string, unknown>);
        queueMicrotask(() => cb(null, ack));
      },
    };
  }

  on(event: string, fn: Handler) {
    const list = this.handlers.get(event) || [];
    list.push(fn);
    this.handlers.set(event, list);
    return this;
  }

  fire(event: string, ...args: unknown[]) {
    for (const fn of this.handlers.get(event) || []) fn(...args);
  }

  signals(): Emitted[] {
    return this.emitted.filter((e) => e.event === 'rtc:signal');
  }
}

export class FakeStream {
  tracks: { kind: string; readyState: string; enabled: boolean; stop: () => void }[] = [];
  getTracks() {
    return this.tracks;
  }
  addTrack(t: { kind: string; readyState: string; enabled: boolean; stop: () => void }) {
    this.tracks.push(t);
  }
}

export class FakePeerConnection {
  static made: FakePeerConnection[] = [];
  signalingState: RTCSignalingState = 'stable';
  connectionState: RTCPeerConnectionState = 'new';
  iceConnectionState: RTCIceConnectionState = 'new';
  localDescription: { type: string; sdp: string; toJSON(): unknown } | null = null;
  remoteDescription: { type: string; sdp: string } | null = null;
  config: RTCConfiguration;
  closed = false;
  restarts = 0;
  candidates: unknown[] = [];
  transceivers: string[] = [];
  tracks: string[] = [];
  onnegotiationneeded: (() => void) | null = null;
  onsignalingstatechange: (() => void) | null = null;
  onicecandidate: ((e: { candidate: unknown }) => void) | null = null;
  oniceconnectionstatechange: (() => void) | null = null;
  onconnectionstatechange: (() => void) | null = null;
  ontrack: ((e: unknown) => void) | null = null;

  constructor(config: RTCConfiguration) {
    this.config = config;
    FakePeerConnection.made.push(this);
  }
  private desc(type: string, sdp: string) {
    return { type, sdp, toJSON: () => ({ type, sdp }) };
  }
  async setLocalDescription(d?: { type: string }) {
    if (d && d.type === 'rollback') {
      this.localDescription = null;
      this.signalingState = 'stable';
      return;
    }
    if (this.signalingState === 'have-remote-offer') {
      this.localDescription = this.desc('answer', 'answer-sdp');
      this.signalingState = 'stable';
    } else {
      this.localDescription = this.desc('offer', 'offer-sdp');
      this.signalingState = 'have-local-offer';
    }
    this.onsignalingstatechange?.();
  }
  async setRemoteDescription(d: { type: string; sdp: string }) {
    this.remoteDescription = d;
    if (d.type === 'offer') {
      this.localDescription = null; // implicit rollback
      this.signalingState = 'have-remote-offer';
    } else {
      this.signalingState = 'stable';
    }
    this.onsignalingstatechange?.();
  }
  async addIceCandidate(c?: unknown) {
    this.candidates.push(c ?? null);
  }
  addTrack(track: { kind: string }) {
    this.tracks.push(track.kind);
  }
  addTransceiver(kind: string) {
    this.transceivers.push(kind);
  }
  restartIce() {
    this.restarts += 1;
  }
  getConfiguration() {
    return this.config;
  }
  setConfiguration(c: RTCConfiguration) {
    this.config = c;
  }
  async getStats() {
    return new Map();
  }
  close() {
    this.closed = true;
  }
}

export function signal(seq: number, type: RelayedSignal['type'], data: Record<string, unknown> | null, session = 's1'): RelayedSignal {
  return { session_id: session, from: 'peer', seq, type, data };
}

export const flush = () => new Promise<void>((r) => setTimeout(r, 0));

// ---- signing in (docs/identity.md): the identity endpoints' answers -------------------------

export const PERSON = { person_id: 'tp1', name: 'Wang Fang', document_type: 'resident_id', document: '1101**********002X' };
export const ENTERPRISE = { enterprise_id: 'e1', uscc: '91350100M000100Y43', enterprise_name: 'Demo Tech', role: 'legal_representative' as const };

/** A TaxpayerSession as the server answers it (access token `tok<n>`, refresh `rt<n>`). */
export function taxpayerSession(n = 1, extra: Record<string, unknown> = {}) {
  return {
    access_token: `tok${n === 1 ? '' : n}`,
    refresh_token: `rt${n}-${'x'.repeat(20)}`,
    token_type: 'Bearer',
    expires_in_s: 900,
    person: PERSON,
    acting: null,
    options: [],
    method: 'sms',
    acr: 3,
    auth_time: '2026-12-04T10:00:00Z',
    kiosk: null,
    ...extra,
  };
}

function answer(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

/** The SMS sign-in endpoints: any code but 000000 is right. Null for other URLs. */
export function authRoute(url: string, init?: RequestInit, session: () => unknown = () => taxpayerSession()): Response | null {
  const body = init?.body ? JSON.parse(String(init.body)) : {};
  if (url === '/api/auth/methods') return answer({ methods: ['sms'] });
  if (url === '/api/auth/sms/code') return answer({ phone: '+86138****8000', expires_in_s: 300, resend_in_s: 60 });
  if (url === '/api/auth/sms/verify') {
    if (body.code === '000000') return answer({ error: { code: 'invalid_code', message: 'wrong code' } }, 401);
    return answer(session());
  }
  if (url === '/api/auth/logout') return answer({ everywhere: false, provider_logout_url: null });
  return null;
}

/** Sign the taxpayer store in by SMS code, as the page does. */
export async function signInBySms(tp: {
  signin: { phone: string; code: string };
  action: (fn: () => Promise<void> | void) => Promise<void>;
  sendCode: (language: string) => Promise<void>;
  verifyCode: () => Promise<void>;
}): Promise<void> {
  tp.signin.phone = '138 0013 8000';
  await tp.action(() => tp.sendCode('en'));
  tp.signin.code = '123456';
  await tp.action(tp.verifyCode);
}
