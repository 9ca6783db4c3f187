// The mesh (src/core/mesh.ts) behind a composable: it follows useCall's socket and Call,
// applies `session:roster` (kept if it comes before the Call exists, e.g. a join's or a
// resume's), restarts ICE towards a participant who came back, mutes every extra Call with
// the main one, and gives the pages the roster and the extra video tiles to render.
import { markRaw, ref, shallowRef, watch } from 'vue';
import type { RosterEntry, SessionPeer, SessionRoster } from '@/contract';
import { Mesh, type Tile } from '@/core/mesh';
import type { VtaxSocket } from '@/core/socket';
import type { UseCall } from './useCall';

export function useMesh(call: UseCall) {
  const entries = ref<RosterEntry[]>([]);
  const owner = ref('');
  const tiles = shallowRef<Tile[]>([]);
  const me = ref('');
  let mesh: Mesh | null = null;
  let latest: SessionRoster | null = null;

  function refresh(): void {
    tiles.value = mesh ? mesh.tiles() : [];
  }

  function apply(): void {
    const main = call.call.value;
    const socket = call.socket.value;
    const router = call.getRouter();
    if (!main || main.closed || !socket || !router) return;
    if (!mesh || mesh.main !== main) {
      mesh?.close();
      mesh = new Mesh({ socket, router, main, mainVideo: call.remoteVideo.value, onChange: refresh });
      me.value = main.participantId;
    }
    if (latest && latest.session_id === main.sessionId) {
      mesh.update(latest);
      entries.value = latest.participants;
      owner.value = latest.owner;
    }
    refresh();
  }

  function onRoster(msg: SessionRoster): void {
    if (!msg || !Array.isArray(msg.participants)) return;
    latest = msg;
    apply();
  }

  function onPeer(msg: SessionPeer): void {
    if (!mesh || !msg || msg.state !== 'back' || !msg.ice_restart) return;
    const peer = call.getRouter()?.peers.get(msg.participant_id);
    if (peer && !peer.polite) peer.restartIce();
  }

  const wired = new WeakSet<VtaxSocket>();
  watch(
    () => call.socket.value,
    (s) => {
      if (!s || wired.has(s)) return;
      wired.add(s);
      s.on('session:roster', onRoster);
      s.on('session:peer', onPeer);
      s.on('disconnect', (reason) => console.warn('socket disconnected:', reason));
    },
    { immediate: true },
  );
  watch(
    () => call.call.value,
    (c) => {
      if (c) {
        apply();
      } else {
        mesh?.close();
        mesh = null;
        latest = null;
        entries.value = [];
        owner.value = '';
        refresh();
      }
    },
  );
  watch(
    () => call.muted.value,
    (m) => mesh?.setTrackEnabled('audio', !m),
  );
  watch(
    () => call.cameraOff.value,
    (off) => mesh?.setTrackEnabled('video', !off),
  );

  /** Is `participantId` the session's agent now? Am I? */
  const isOwner = (participantId: string) => owner.value === participantId;

  return markRaw({ entries, owner, tiles, me, isOwner, apply });
}

export type UseMesh = ReturnType<typeof useMesh>;
