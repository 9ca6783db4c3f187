import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Call, OFFER_FALLBACK_MS, SignalRouter, type CallOptions } from '@/core/rtc';
import { vtax } from '@/core/hook';
import { FakePeerConnection, FakeSocket, FakeStream, flush, signal } from './fakes';

const START = {
  session_id: 's1',
  participant_id: 'me',
  polite: true,
  ice_servers: [],
  peer: { participant_id: 'peer' },
};

function makeCall(socket: FakeSocket, extra: Partial<CallOptions> = {}): Call {
  return new Call({
    socket,
    start: START,
    media: { stream: null, error: null },
    peerConnection: FakePeerConnection as unknown as CallOptions['peerConnection'],
    onError: () => {},
    ...extra,
  });
}

beforeEach(() => {
  vi.stubGlobal('MediaStream', FakeStream);
  FakePeerConnection.made = [];
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('Call', () => {
  it('tags its signals with its pc id and the peer, and exposes itself on window.vtax', async () => {
    const socket = new FakeSocket();
    const call = makeCall(socket);
    await call.send('candidate', { candidate: 'c1' });
    const [sent] = socket.signals();
    expect(sent?.payload).toMatchObject({ session_id: 's1', to: 'peer', type: 'candidate' });
    expect((sent?.payload.data as Record<string, unknown>).pc).toBe(call.pcId);
    expect(vtax.pc).toBe(call.pc);
    expect(vtax.call?.sessionId).toBe('s1');
    call.close();
    expect(vtax.pc).toBeNull();
  });

  it('adds receive-only transceivers for what it cannot send', async () => {
    const call = makeCall(new FakeSocket());
    await call.ready;
    expect((call.pc as unknown as FakePeerConnection).transceivers).toEqual(['audio', 'video']);
  });

  it('holds signals in the outbox while paused and sends them in order when resumed', async () => {
    const socket = new FakeSocket();
    const call = makeCall(socket);
    call.pause();
    const a = call.send('candidate', { candidate: 'a' });
    const b = call.send('candidate', { candidate: 'b' });
    expect(socket.signals()).toHaveLength(0);
    call.resumed({ ice_servers: [{ urls: ['turn:x'] }] });
    await Promise.all([a, b]);
    const sent = socket.signals().map((e) => (e.payload.data as Record<string, unknown>).candidate);
    expect(sent).toEqual(['a', 'b']);
    expect(call.info.resumes).toBe(1);
    expect((call.pc as unknown as FakePeerConnection).config.iceServers).toEqual([{ urls: ['turn:x'] }]);
  });

  it('drops a signal addressed to an older RTCPeerConnection and learns the peer pc', () => {
    const call = makeCall(new FakeSocket());
    expect(call.accepts('candidate', { candidate: 'x', pc: 'peer-1' })).toBe(true);
    expect(call.remotePcId).toBe('peer-1');
    expect(call.accepts('candidate', { candidate: 'x', pc: 'peer-0' })).toBe(false);
    expect(call.accepts('candidate', { candidate: 'x', pc: 'peer-1', to_pc: 'pc-old' })).toBe(false);
    // an untagged end-of-candidates follows the verdict on the signal before it
    expect(call.accepts('candidate', null)).toBe(false);
    expect(call.accepts('candidate', { candidate: 'y', pc: 'peer-1', to_pc: call.pcId })).toBe(true);
    expect(call.accepts('candidate', null)).toBe(true);
  });

  it('answers an offer, and the polite side waits for the peer to offer first', async () => {
    vi.useFakeTimers();
    const socket = new FakeSocket();
    const call = makeCall(socket);
    await call.ready;
    const pc = call.pc as unknown as FakePeerConnection;
    pc.onnegotiationneeded?.();
    expect(call.info.offersAvoided).toBe(1);
    expect(socket.signals()).toHaveLength(0); // no own offer yet
    call.handleSignal(signal(1, 'offer', { type: 'offer', sdp: 'peer-offer', pc: 'peer-1' }));
    await vi.advanceTimersByTimeAsync(1);
    const answer = socket.signals().find((e) => e.payload.type === 'answer');
    expect(answer).toBeTruthy();
    expect((answer?.payload.data as Record<string, unknown>).to_pc).toBe('peer-1');
    await vi.advanceTimersByTimeAsync(OFFER_FALLBACK_MS + 10);
    expect(socket.signals().filter((e) => e.payload.type === 'offer')).toHaveLength(0);
  });

  it('offers itself after the fallback when the peer never offers', async () => {
    vi.useFakeTimers();
    const socket = new FakeSocket();
    const call = makeCall(socket);
    await call.ready;
    (call.pc as unknown as FakePeerConnection).onnegotiationneeded?.();
    await vi.advanceTimersByTimeAsync(OFFER_FALLBACK_MS + 10);
    expect(socket.signals().filter((e) => e.payload.type === 'offer')).toHaveLength(1);
  });

  it('the impolite side ignores a colliding offer', async () => {
    const socket = new FakeSocket();
    const call = makeCall(socket, { start: { ...START, polite: false } });
    await call.ready;
    const pc = call.pc as unknown as FakePeerConnection;
    pc.onnegotiationneeded?.();
    await flush();
    expect(pc.signalingState).toBe('have-local-offer');
    call.handleSignal(signal(1, 'offer', { type: 'offer', sdp: 'peer-offer', pc: 'peer-1' }));
    await flush();
    expect(pc.remoteDescription).toBeNull();
    expect(socket.signals().filter((e) => e.payload.type === 'answer')).toHaveLength(0);
  });

  it('replaces its RTCPeerConnection when the reloaded peer asks for a new one', async () => {
    const socket = new FakeSocket();
    const call = makeCall(socket);
    await call.ready;
    call.handleSignal(signal(1, 'offer', { type: 'offer', sdp: 'o', pc: 'peer-1' }));
    await flush();
    const first = call.pc;
    call.handleSignal(signal(2, 'restart', { new_peer_connection: true, pc: 'peer-2' }));
    await flush();
    expect(call.pc).not.toBe(first);
    expect((first as unknown as FakePeerConnection).closed).toBe(true);
    expect(call.remotePcId).toBe('peer-2');
    expect(call.info.renewals).toBe(1);
  });

  it('a fresh resume asks the peer for a new RTCPeerConnection before anything else', async () => {
    const socket = new FakeSocket();
    makeCall(socket, { freshResume: true });
    await flush();
    const [first] = socket.signals();
    expect(first?.payload.type).toBe('restart');
    expect((first?.payload.data as Record<string, unknown>).new_peer_connection).toBe(true);
  });
});

describe('SignalRouter', () => {
  it('buffers signals until the call is attached and applies each seq once', async () => {
    const socket = new FakeSocket();
    const seqs: number[] = [];
    const router = new SignalRouter(socket, { onSeq: (_s, n) => seqs.push(n) });
    socket.fire('rtc:signal', signal(1, 'candidate', { candidate: 'a' }));
    socket.fire('rtc:signal', signal(1, 'candidate', { candidate: 'a' }));
    expect(router.pending).toHaveLength(1);
    const call = makeCall(socket);
    router.attach(call);
    await call.ready;
    await flush();
    expect(call.info.signalsIn).toBe(1);
    expect(router.lastSeq('s1')).toBe(1);
    expect(seqs).toEqual([1]);
  });

  it('pauses the call on disconnect and, on resume, applies the replay then held signals in order', async () => {
    const socket = new FakeSocket();
    const router = new SignalRouter(socket);
    const call = makeCall(socket, { start: { ...START, polite: false } });
    router.attach(call);
    await call.ready;
    socket.fire('disconnect', 'transport close');
    expect(call.paused).toBe(true);
    const order: number[] = [];
    const handle = call.handleSignal.bind(call);
    call.handleSignal = (m) => {
      order.push(m.seq);
      handle(m);
    };
    socket.answer = (event) =>
      event === 'session:resume'
        ? { ok: true, session_id: 's1', ice_servers: [], replay: [signal(2, 'candidate', { candidate: 'r' })] }
        : { ok: true, seq: 9 };
    const resumed = router.resume('s1');
    socket.fire('rtc:signal', signal(4, 'candidate', { candidate: 'late' }));
    socket.fire('rtc:signal', signal(3, 'candidate', { candidate: 'held' }));
    await resumed;
    expect(order).toEqual([2, 3, 4]);
    expect(call.paused).toBe(false);
    const resumeEmit = socket.emitted.find((e) => e.event === 'session:resume');
    expect(resumeEmit?.payload).toEqual({ session_id: 's1', last_seq: 0 });
    await flush();
    expect((call.pc as unknown as FakePeerConnection).restarts).toBe(1); // impolite: ICE restart
  });

  it('after a reload the replay is only marked as seen', async () => {
    const socket = new FakeSocket();
    const router = new SignalRouter(socket);
    router.setLastSeq('s1', 5);
    socket.answer = () => ({ ok: true, session_id: 's1', ice_servers: [], replay: [signal(6, 'offer', { sdp: 'old' })] });
    await router.resume('s1', { fresh: true });
    expect(socket.emitted[0]?.payload).toEqual({ session_id: 's1', last_seq: 5 });
    expect(router.pending).toHaveLength(0);
    expect(router.lastSeq('s1')).toBe(6);
  });

  it('rejects with the error code of a refused resume', async () => {
    const socket = new FakeSocket();
    const router = new SignalRouter(socket);
    socket.answer = () => ({ ok: false, error: { code: 'session_ended', message: 'over' } });
    await expect(router.resume('s1')).rejects.toMatchObject({ code: 'session_ended' });
    expect(router.held).toBeNull();
  });
});
