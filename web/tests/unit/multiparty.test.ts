import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RosterEntry, SessionRoster } from '@/contract';
import { Mesh, politeTowards } from '@/core/mesh';
import { Call, SignalRouter, type CallOptions } from '@/core/rtc';
import { FakePeerConnection, FakeSocket, FakeStream, flush } from './fakes';

const PC = FakePeerConnection as unknown as CallOptions['peerConnection'];

function entry(id: string, role: RosterEntry['role'], part: RosterEntry['part'] = role): RosterEntry {
  return { participant_id: id, role, part, display_name: id, label: '', state: 'connected' };
}

function roster(owner: string, ...participants: RosterEntry[]): SessionRoster {
  return { session_id: 's1', owner, participants };
}

function mainCall(socket: FakeSocket, me: string, peer: string, polite: boolean): Call {
  return new Call({
    socket,
    start: { session_id: 's1', participant_id: me, polite, ice_servers: [], peer: { participant_id: peer } },
    media: { stream: null, error: null },
    peerConnection: PC,
    onError: () => {},
  });
}

beforeEach(() => {
  vi.stubGlobal('MediaStream', FakeStream);
  FakePeerConnection.made = [];
});
afterEach(() => vi.unstubAllGlobals());

describe('politeness per pair', () => {
  const people = [entry('t', 'taxpayer'), entry('a', 'agent'), entry('i', 'agent', 'invitee'), entry('s', 'supervisor')];
  it('the taxpayer is polite to everyone; between staff the later joiner is', () => {
    expect(politeTowards(people, 't', 'i')).toBe(true);
    expect(politeTowards(people, 'i', 't')).toBe(false);
    expect(politeTowards(people, 'i', 'a')).toBe(true);
    expect(politeTowards(people, 'a', 'i')).toBe(false);
    expect(politeTowards(people, 's', 'i')).toBe(true);
    // each pair has exactly one polite side
    for (const x of people) for (const y of people) {
      if (x !== y) expect(politeTowards(people, x.participant_id, y.participant_id)).not.toBe(politeTowards(people, y.participant_id, x.participant_id));
    }
  });
});

describe('Mesh', () => {
  it('opens a Call per newcomer addressed to it, routes its signals by `from`, closes it when it leaves', async () => {
    const socket = new FakeSocket();
    const router = new SignalRouter(socket);
    const main = mainCall(socket, 't', 'a', true);
    router.attach(main);
    const mesh = new Mesh({ socket, router, main, peerConnection: PC });
    // The interpreter's offer may come before the roster: it waits for its Call.
    socket.fire('rtc:signal', { session_id: 's1', from: 'i', seq: 1, type: 'offer', data: { type: 'offer', sdp: 'x' } });
    expect(main.info.signalsIn).toBe(0);
    mesh.update(roster('a', entry('t', 'taxpayer'), entry('a', 'agent'), entry('i', 'agent', 'invitee')));
    const peer = router.peers.get('i');
    expect(peer).toBeDefined();
    expect(peer?.polite).toBe(true);
    await peer?.ready;
    await flush();
    expect(peer?.info.signalsIn).toBe(1);
    const sent = socket.signals().map((s) => s.payload.to);
    expect(sent).toContain('i'); // the mesh Call speaks to the interpreter alone
    expect(mesh.tiles().map((t) => t.participantId)).toEqual(['i']);

    // Warm transfer: the agent (the main peer) leaves; the main connection closes, the
    // interpreter's Call stays and is shown in the main video.
    mesh.update(roster('i', entry('t', 'taxpayer'), entry('i', 'agent', 'agent')));
    expect(mesh.mainGone).toBe(true);
    expect(mesh.adopted).toBe('i');
    expect((main.pc as unknown as FakePeerConnection).closed).toBe(true);
    expect(main.closed).toBe(false); // the local tracks are kept
    expect(mesh.tiles()).toEqual([]);

    mesh.update(roster('i', entry('t', 'taxpayer')));
    expect(router.peers.size).toBe(0);
    expect(peer?.closed).toBe(true);
  });
});
