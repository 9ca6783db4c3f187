// Three or more people in one call: a mesh above `Call` (docs/architecture.md, "Participants
// and the mesh"). The page keeps its one Call from `session:start` (its "main" peer: the
// session's agent for the taxpayer, the taxpayer for staff) and, for every other visible
// participant of `session:roster`, one more Call addressed to that participant alone
// (`rtc:signal` with `to`), routed by the SignalRouter by `from`. Each extra Call gets its own
// clone of the local tracks, so closing one never stops the camera of the others.
//
// Politeness per pair (MDN perfect negotiation): the taxpayer is polite to everyone; between
// staff, the one who joined later (later in the roster) is polite. Every extra Call starts
// with `freshResume` (a `restart {new_peer_connection}` first), so a page that reloaded pairs
// afresh with peers that still hold a connection to its old page, and a first meeting simply
// pairs.
//
// When the main peer leaves (warm transfer, take-over) its RTCPeerConnection is closed (the
// local tracks stay) and the main video shows the session's new agent instead.
//
// For the browser tests: window.vtax.mesh = {peers: {participantId: RTCPeerConnection}, ...}.
import type { RosterEntry, SessionRoster } from '@/contract';
import { vtax } from './hook';
import { Call, SignalRouter, type LocalMedia, type SignalSocket } from './rtc';

export interface MeshInfo {
  peers: Record<string, RTCPeerConnection>;
  owner: string;
  mainGone: boolean;
  rosters: number;
}

export interface Tile {
  participantId: string;
  entry: RosterEntry;
  call: Call;
}

/** The taxpayer is polite to all; between staff the later joiner is. */
export function politeTowards(entries: RosterEntry[], me: string, peer: string): boolean {
  const mine = entries.find((e) => e.participant_id === me);
  const theirs = entries.find((e) => e.participant_id === peer);
  if (mine?.role === 'taxpayer') return true;
  if (theirs?.role === 'taxpayer') return false;
  const at = (id: string) => entries.findIndex((e) => e.participant_id === id);
  return at(me) > at(peer);
}

export interface MeshOptions {
  socket: SignalSocket;
  router: SignalRouter;
  /** the page's Call from `session:start` (useCall's) */
  main: Call;
  /** the main remote video: shows the session's agent once the main peer left */
  mainVideo?: HTMLVideoElement | null;
  onChange?: () => void;
  /** the RTCPeerConnection constructor (a fake in the unit tests) */
  peerConnection?: new (config: RTCConfiguration) => RTCPeerConnection;
}

export class Mesh {
  readonly main: Call;
  readonly sessionId: string;
  readonly me: string;
  entries: RosterEntry[] = [];
  owner = '';
  mainGone = false;
  /** the participant whose stream the main video shows (after the main peer left) */
  adopted: string | null = null;
  closed = false;
  private readonly o: MeshOptions;
  readonly info: MeshInfo;

  constructor(o: MeshOptions) {
    this.o = o;
    this.main = o.main;
    this.sessionId = o.main.sessionId;
    this.me = o.main.participantId;
    this.info = { peers: {}, owner: '', mainGone: false, rosters: 0 };
    vtax.mesh = this.info;
    this.main.cameraListeners.add(this.followCamera);
  }

  /** The main Call's camera was switched: each extra Call sends a clone of the new one. */
  private readonly followCamera = (track: MediaStreamTrack): void => {
    for (const call of this.o.router.peers.values()) {
      if (call === this.main || !call.cameraTrack()) continue;
      const copy = track.clone();
      call.replaceCameraTrack(copy).catch((e) => {
        copy.stop();
        console.warn('mesh camera track', e);
      });
    }
  };

  /** Extra Calls, in roster order (not the main peer's, not the one in the main video). */
  tiles(): Tile[] {
    const out: Tile[] = [];
    for (const entry of this.entries) {
      const call = this.o.router.peers.get(entry.participant_id);
      if (call && entry.participant_id !== this.adopted) out.push({ participantId: entry.participant_id, entry, call });
    }
    return out;
  }

  /** Who is in the call now: open Calls for newcomers, close the ones of those who left. */
  update(roster: SessionRoster): void {
    if (this.closed || roster.session_id !== this.sessionId) return;
    this.info.rosters += 1;
    this.entries = roster.participants;
    this.owner = this.info.owner = roster.owner;
    const others = new Set(this.entries.map((e) => e.participant_id).filter((id) => id !== this.me));
    const mainPeer = this.main.peerId;
    for (const id of others) {
      if (id === mainPeer || this.o.router.peers.has(id)) continue;
      this.open(id);
    }
    for (const id of [...this.o.router.peers.keys()]) {
      if (!others.has(id)) {
        this.o.router.detachPeer(id);
        delete this.info.peers[id];
        if (this.adopted === id) this.adopted = null;
      }
    }
    if (mainPeer && !others.has(mainPeer) && !this.mainGone) this.dropMain();
    if (this.mainGone) this.adoptOwner();
    this.o.onChange?.();
  }

  private open(peerId: string): void {
    const main = this.main;
    // A clone of the local tracks once the main Call has them (muting follows setTrackEnabled).
    const media: Promise<LocalMedia> = main.ready.then(() => {
      const stream = main.stream ? main.stream.clone() : null;
      if (stream) {
        for (const t of stream.getTracks()) {
          const original = main.stream?.getTracks().find((x) => x.kind === t.kind);
          if (original) t.enabled = original.enabled;
        }
      }
      return { stream, error: null };
    });
    const keep = { pc: vtax.pc, call: vtax.call };
    const call = new Call({
      socket: this.o.socket,
      start: {
        session_id: this.sessionId,
        participant_id: this.me,
        polite: politeTowards(this.entries, this.me, peerId),
        ice_servers: main.iceServers,
        peer: { participant_id: peerId },
      },
      media,
      freshResume: true,
      peerConnection: this.o.peerConnection,
      onConnectionState: () => this.o.onChange?.(),
      onError: (e) => console.warn('mesh call error', e),
    });
    // The page's hooks keep pointing at the main Call.
    vtax.pc = keep.pc;
    vtax.call = keep.call;
    this.info.peers[peerId] = call.pc;
    const renew = call.renewPeerConnection.bind(call);
    call.renewPeerConnection = (remotePcId) => {
      renew(remotePcId);
      this.info.peers[peerId] = call.pc;
      vtax.pc = keep.pc;
      if (this.adopted === peerId) this.showInMain(call);
    };
    this.o.router.attachPeer(call);
  }

  /** The main peer left: close its connection, keep the local tracks. */
  private dropMain(): void {
    this.mainGone = this.info.mainGone = true;
    try {
      this.main.pc.close();
    } catch {
      /* already closed */
    }
  }

  private adoptOwner(): void {
    if (this.adopted && this.o.router.peers.has(this.adopted)) return;
    const ownerCall = this.o.router.peers.get(this.owner);
    if (!ownerCall) return;
    this.adopted = this.owner;
    this.showInMain(ownerCall);
  }

  private showInMain(call: Call): void {
    const video = this.o.mainVideo;
    if (!video) return;
    call.remoteVideo = video;
    video.srcObject = call.remoteStream;
  }

  /** Mute or unmute the local tracks of every extra Call (the main one is useCall's). */
  setTrackEnabled(kind: 'audio' | 'video', enabled: boolean): void {
    for (const call of this.o.router.peers.values()) call.setTrackEnabled(kind, enabled);
  }

  close(): void {
    this.closed = true;
    this.main.cameraListeners.delete(this.followCamera);
    for (const id of [...this.o.router.peers.keys()]) this.o.router.detachPeer(id);
    this.info.peers = {};
  }
}
