// useCall ends a call once per session (commit 836c9a6): a hang-up hears the end twice, from
// the server's `session:end` and from the hang-up's own ack, and a second `onEnded` would take
// the page back to the after-call step from wherever the person went meanwhile.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SessionStart } from '@/contract';
import { FakePeerConnection, FakeSocket, FakeStream, flush } from './fakes';

type TestSocket = FakeSocket & { disconnect: () => void };
const sockets: TestSocket[] = [];
vi.mock('@/core/socket', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@/core/socket')>()),
  connectSocket: vi.fn(async () => {
    const s = new FakeSocket() as TestSocket;
    s.disconnect = () => {
      s.connected = false;
    };
    sockets.push(s);
    return s;
  }),
}));

const { useCall } = await import('@/composables/useCall');
const { resumeStore } = await import('@/core/resumeStore');

/** A session:start (its ticket left out: the call does not read it). */
function started(sessionId: string): SessionStart {
  return {
    session_id: sessionId,
    participant_id: 'me',
    role: 'taxpayer',
    polite: true,
    peer: { participant_id: 'officer', role: 'agent', display_name: 'Officer' },
    ice_servers: [],
  } as unknown as SessionStart;
}

/** A call on a page, live in session `sid`, and what its onEnded heard. */
async function liveCall(sid: string) {
  const ended: string[] = [];
  const call = useCall('call-end-test', { wire: () => {}, onEnded: (reason) => ended.push(reason), onMoved: () => {}, onError: () => {} });
  await call.ensureSocket('tok');
  const socket = sockets.at(-1)!;
  const start = started(sid);
  call.persistSession(start, 'tok', {});
  call.start(start);
  await flush();
  return { call, socket, ended };
}

/** The server tells the room the session ended (what it does for a hang-up). */
function serverEnds(socket: FakeSocket, sid: string, reason = 'hangup'): void {
  socket.fire('session:end', { session_id: sid, reason });
}

/** Run `fn` on fake timers (the hang-up's retries, the media check), real ones after. */
async function onFakeTimers(fn: () => Promise<void>): Promise<void> {
  vi.useFakeTimers();
  try {
    await fn();
  } finally {
    vi.useRealTimers();
  }
}

/** A hang-up and every retry it makes (10 s of fake time). */
async function hangUpWithRetries(call: { hangup: () => Promise<void> }): Promise<void> {
  await onFakeTimers(async () => {
    const done = call.hangup();
    await vi.advanceTimersByTimeAsync(10_000);
    await done;
  });
}

/** The server: a resume answers that the session is over; anything else is fine. */
const resumeSaysEnded = (event: string) =>
  event === 'session:resume' ? { ok: false, error: { code: 'session_ended', message: 'over' } } : { ok: true };

// a device whose camera gives a stream without tracks (the call sends nothing, receives)
class TracklessStream extends FakeStream {
  getVideoTracks() {
    return [];
  }
  getAudioTracks() {
    return [];
  }
}
const mediaDevices = { getUserMedia: async () => new TracklessStream(), enumerateDevices: async () => [] };

beforeEach(() => {
  vi.stubGlobal('RTCPeerConnection', FakePeerConnection);
  vi.stubGlobal('MediaStream', FakeStream);
  Object.defineProperty(navigator, 'mediaDevices', { value: mediaDevices, configurable: true });
  FakePeerConnection.made = [];
  sockets.length = 0;
  resumeStore.clear('call-end-test');
});
afterEach(() => {
  vi.unstubAllGlobals();
  resumeStore.clear('call-end-test');
});

describe('useCall: the call ends once per session', () => {
  it("a hang-up whose ack comes after the server's session:end ends it once", async () => {
    const { call, socket, ended } = await liveCall('s1');
    socket.answer = (event) => {
      // the server's broadcast is on the wire before the ack
      if (event === 'session:end') serverEnds(socket, 's1');
      return { ok: true };
    };
    await call.hangup();
    expect(socket.emitted.filter((e) => e.event === 'session:end')).toHaveLength(1);
    expect(ended).toEqual(['hangup']);
    expect(call.call.value).toBeNull();
    expect(resumeStore.load('call-end-test')).toMatchObject({ ended: true, endReason: 'hangup' });
  });

  it("the server's session:end arriving after the hang-up's ack does not end it again", async () => {
    const { call, socket, ended } = await liveCall('s1');
    await call.hangup();
    serverEnds(socket, 's1');
    expect(ended).toEqual(['hangup']);
  });

  it('a session:end heard twice (a resent broadcast) ends it once', async () => {
    const { socket, ended } = await liveCall('s1');
    serverEnds(socket, 's1', 'agent_ended');
    serverEnds(socket, 's1', 'agent_ended');
    expect(ended).toEqual(['agent_ended']);
  });

  it('the next session on the same page ends in its turn (the guard is per session)', async () => {
    const { call, socket, ended } = await liveCall('s1');
    serverEnds(socket, 's1', 'agent_ended');
    // a new question: a new session on the same socket
    call.start(started('s2'));
    await flush();
    serverEnds(socket, 's1', 'agent_ended'); // a late echo of the old one
    expect(ended).toEqual(['agent_ended']);
    expect(call.call.value).not.toBeNull();
    serverEnds(socket, 's2', 'hangup');
    expect(ended).toEqual(['agent_ended', 'hangup']);
    expect(call.call.value).toBeNull();
  });

  it('a hang-up the server could not take (a Redis outage) ends here at once and is sent again until it is taken', async () => {
    const { call, socket, ended } = await liveCall('s1');
    let tries = 0;
    socket.answer = (event) => {
      if (event !== 'session:end') return { ok: true };
      tries += 1;
      return tries <= 2 ? { ok: false, error: { code: 'unavailable', message: 'down' } } : { ok: true };
    };
    await onFakeTimers(async () => {
      const done = call.hangup();
      await vi.advanceTimersByTimeAsync(0);
      expect(ended).toEqual(['hangup']); // not waiting for the server
      await vi.advanceTimersByTimeAsync(10_000);
      await done;
    });
    expect(tries).toBe(3);
    expect(ended).toEqual(['hangup']);
  });

  it('a hang-up refused for good (not in the session, nor resumable) is not sent again', async () => {
    const { call, socket, ended } = await liveCall('s1');
    socket.answer = (event) =>
      event === 'session:resume'
        ? { ok: false, error: { code: 'session_ended', message: 'over' } }
        : { ok: false, error: { code: 'not_in_session', message: 'no' } };
    await hangUpWithRetries(call);
    // one hang-up, one resume that says it is over: nothing more
    expect(socket.emitted.map((e) => e.event)).toEqual(['session:end', 'session:resume']);
    expect(ended).toEqual(['hangup']);
  });

  it('a hang-up that went out on a reconnected socket resumes on it, then hangs up', async () => {
    const { call, socket, ended } = await liveCall('s1');
    let ends = 0;
    socket.answer = (event) => {
      if (event === 'session:end') {
        ends += 1;
        return ends === 1 ? { ok: false, error: { code: 'not_in_session', message: 'new connection' } } : { ok: true };
      }
      return { ok: true };
    };
    await hangUpWithRetries(call);
    expect(socket.emitted.map((e) => e.event)).toEqual(['session:end', 'session:resume', 'session:end']);
    expect(ended).toEqual(['hangup']);
  });
});

describe('useCall: media stopped, the page asks the server where the call is', () => {
  /** The call's peer connection goes to `state` (what Chromium does when media stops). */
  function media(state: RTCPeerConnectionState): void {
    const pc = FakePeerConnection.made.at(-1)!;
    pc.connectionState = state;
    pc.onconnectionstatechange?.();
  }

  it('a call whose session:end never came ends when its resume answers session_ended', async () => {
    const { socket, ended } = await liveCall('s1');
    socket.answer = resumeSaysEnded;
    await onFakeTimers(async () => {
      media('connected');
      media('disconnected');
      await vi.advanceTimersByTimeAsync(3000);
      expect(socket.emitted.some((e) => e.event === 'session:resume')).toBe(false); // a blip: wait
      await vi.advanceTimersByTimeAsync(2000);
    });
    expect(socket.emitted.filter((e) => e.event === 'session:resume')).toHaveLength(1);
    expect(ended).toEqual(['session_ended']);
  });

  it('a peer connection back to new (the peer closed its end) is checked too', async () => {
    const { socket, ended } = await liveCall('s1');
    socket.answer = resumeSaysEnded;
    await onFakeTimers(async () => {
      media('connected');
      media('new');
      await vi.advanceTimersByTimeAsync(5000);
    });
    expect(ended).toEqual(['session_ended']);
  });

  it('a call slow to connect at the start is not checked (new, connecting: not lost)', async () => {
    const { socket } = await liveCall('s1');
    await onFakeTimers(async () => {
      media('new');
      media('connecting');
      await vi.advanceTimersByTimeAsync(10_000);
    });
    expect(socket.emitted.some((e) => e.event === 'session:resume')).toBe(false);
  });

  it('media back within the check asks nothing', async () => {
    const { socket, ended } = await liveCall('s1');
    await onFakeTimers(async () => {
      media('connected');
      media('disconnected');
      await vi.advanceTimersByTimeAsync(2000);
      media('connected');
      await vi.advanceTimersByTimeAsync(10_000);
    });
    expect(socket.emitted.some((e) => e.event === 'session:resume')).toBe(false);
    expect(ended).toEqual([]);
  });
});
