// The call behind a composable: one Socket.IO connection (typed by the contract), the
// SignalRouter, the current Call, recording, and resume (socket reconnect: same
// RTCPeerConnection; page reload: a new one). The framework-free core lives in src/core/;
// this adds Vue state the pages render (connection, peer, quality, mute) and the lifecycle.
import { markRaw, ref, shallowRef, type Ref } from 'vue';
import type { RecordingState, Resumed, SessionPeer, SessionStart } from '@/contract';
import { ApiError, asApiError } from '@/core/errors';
import { vtax } from '@/core/hook';
import { Recording } from '@/core/recording';
import { resumeStore, type StoredSession } from '@/core/resumeStore';
import { Call, MEDIA_CONSTRAINTS, SignalRouter, getLocalMedia, stopStream, type LocalMedia, type RouterSocket } from '@/core/rtc';
import { countCameras, facingOf, otherFacing, switchCamera as switchCameraOf, type CameraDevices, type Facing } from '@/core/camera';
import { connectSocket, emitAck, isDraining, type VtaxSocket } from '@/core/socket';
import { SAMPLE_MS, SEND_EVERY, StatsSampler, sampleLevel, type Sample } from '@/core/quality';

/** Resume errors after which there is nothing to resume. */
export const RESUME_FINAL = new Set(['session_ended', 'not_in_session', 'unauthorized', 'forbidden']);
/** A hang-up the server answered with one of these is sent again (HANGUP_RETRIES times). */
export const HANGUP_RETRY = new Set(['unavailable', 'timeout', 'internal']);
export const HANGUP_RETRIES = 4;
/** How long media may be stopped before the page asks the server where the call is. */
export const MEDIA_CHECK_MS = 4000;
/** A reloaded page keeps trying this long: beyond the server's reconnect grace. */
const RESTORE_DEADLINE_MS = 45000;

export type Connection = 'idle' | 'connecting' | 'connected' | 'reconnecting';
export type Quality = 'waiting' | 'good' | 'fair' | 'poor' | 'lost';

export interface CallHooks {
  /** page-specific socket events, wired once per new socket */
  wire: (socket: VtaxSocket) => void;
  /** the call ended on this page (hang-up, the server's session:end, a final resume error) */
  onEnded: (reason: string) => void;
  /** another window took the call over */
  onMoved: () => void;
  /** something to tell the person (translated by the page from the code) */
  onError: (e: ApiError) => void;
  /** the connection state changed (the page mirrors it in window.vtax.state) */
  onConnection?: (c: Connection) => void;
  /** a recording state arrived */
  onRecording?: (msg: RecordingState) => void;
}

export function useCall(storeKey: string, hooks: CallHooks) {
  const socket = shallowRef<VtaxSocket | null>(null);
  const call = shallowRef<Call | null>(null);
  const session = shallowRef<SessionStart | Resumed | null>(null);
  const connection = ref<Connection>('idle');
  const peerState = ref<SessionPeer['state'] | null>(null);
  const quality = ref<Quality>('waiting');
  /** the latest getStats sample (the badge's numbers; docs/review.md, Call quality) */
  const qualitySample = shallowRef<Sample | null>(null);
  const muted = ref(false);
  const cameraOff = ref(false);
  /** cameras on this device (a phone's front and rear: the switch button shows for 2+) */
  const cameras = ref(0);
  /** the way the call's camera faces; null while the call has no camera track */
  const facing = ref<Facing | null>(null);
  const switchingCamera = ref(false);
  /** resumes of the live call on a reconnected socket (the chat catches up on each) */
  const resumed = ref(0);
  const localVideo: Ref<HTMLVideoElement | null> = ref(null);
  const remoteVideo: Ref<HTMLVideoElement | null> = ref(null);
  const recording = new Recording();
  let router: SignalRouter | null = null;
  let media: Promise<LocalMedia> | null = null;
  let resuming = false;
  let qualityTimer: ReturnType<typeof setInterval> | undefined;
  let mediaCheckTimer: ReturnType<typeof setTimeout> | undefined;
  /** the session `end` ran for (it runs once per session) */
  let endedSessionId: string | null = null;

  function setConnection(c: Connection): void {
    connection.value = c;
    if (c === 'connected' && (quality.value === 'waiting' || quality.value === 'lost')) quality.value = 'good';
    else if (c === 'reconnecting') quality.value = 'lost';
    hooks.onConnection?.(c);
  }

  // ---- local preview --------------------------------------------------------------------

  /** Start the camera early (a preview while waiting; the call starts faster). */
  function preview(): void {
    if (!media) media = getLocalMedia();
    void media.then(({ stream }) => {
      if (stream && !call.value && localVideo.value) localVideo.value.srcObject = stream;
    });
  }

  function releasePreview(): void {
    if (media && !call.value) {
      void media.then(({ stream }) => stopStream(stream));
      if (localVideo.value) localVideo.value.srcObject = null;
    }
    media = null;
  }

  // ---- the socket -----------------------------------------------------------------------

  async function ensureSocket(token: string): Promise<VtaxSocket> {
    if (socket.value && socket.value.connected) return socket.value;
    if (socket.value) socket.value.disconnect();
    const s = await connectSocket(token);
    socket.value = s;
    router = new SignalRouter(s as unknown as RouterSocket, { onSeq: persistSeq });
    recording.bind(s as never, {
      getCall: () => call.value,
      onState: (msg) => hooks.onRecording?.(msg),
      onEnd: () => {},
    });
    s.on('session:end', (msg) => {
      if (session.value && msg && msg.session_id === session.value.session_id) end(msg.reason);
    });
    s.on('session:peer', onPeer);
    s.on('session:resync', (msg) => {
      // the node missed what other nodes sent (a Redis outage): the replay fills the gap
      if (session.value && msg && msg.session_id === session.value.session_id) void resumeLive();
    });
    s.on('disconnect', (reason) => {
      if (s !== socket.value || reason === 'io client disconnect') return;
      if (!(call.value && session.value)) return;
      if (reason === 'io server disconnect' && !isDraining(s)) continuedElsewhere();
      else setConnection('reconnecting');
    });
    s.on('connect', () => {
      if (s === socket.value && call.value && session.value) void resumeLive();
    });
    hooks.wire(s);
    return s;
  }

  /** A refreshed access token: the socket's next (re)connect and a reload's resume use it. */
  function setToken(token: string): void {
    const s = socket.value as unknown as { auth?: unknown } | null;
    if (s) s.auth = { token };
    const saved = resumeStore.load(storeKey);
    if (saved && saved.token !== token) resumeStore.update(storeKey, { token });
  }

  function disconnect(): void {
    if (socket.value) socket.value.disconnect();
    socket.value = null;
    router = null;
  }

  // ---- resume bookkeeping ---------------------------------------------------------------

  function persistSession(start: SessionStart | Resumed, token: string, extra: Record<string, unknown>): void {
    resumeStore.save(storeKey, {
      token,
      ...extra,
      sessionId: start.session_id,
      participantId: start.participant_id,
      peerId: start.peer ? start.peer.participant_id : null,
      lastSeq: router ? router.lastSeq(start.session_id) : 0,
    });
  }

  function persistSeq(sessionId: string, seq: number): void {
    const saved = resumeStore.load(storeKey);
    if (saved && !saved.ended && saved.sessionId === sessionId && seq > (saved.lastSeq || 0)) {
      resumeStore.update(storeKey, { lastSeq: seq });
    }
  }

  // ---- the call -------------------------------------------------------------------------

  /** `session:start` (or a resume ack after a reload, `fresh`): make the Call. */
  function start(startMsg: SessionStart | Resumed, { fresh = false }: { fresh?: boolean } = {}): void {
    if (!socket.value || !router) throw new ApiError('not_connected');
    if (call.value) router.detach();
    session.value = startMsg;
    vtax.sessionId = startMsg.session_id;
    peerState.value = null;
    vtax.peerState = undefined;
    muted.value = false;
    cameraOff.value = false;
    const m = media || getLocalMedia();
    media = null;
    setConnection('connecting');
    const c = new Call({
      socket: socket.value,
      start: startMsg,
      media: m,
      freshResume: fresh,
      localVideo: localVideo.value,
      remoteVideo: remoteVideo.value,
      onConnectionState: (s) => {
        if (connection.value === 'idle') return;
        // Chromium reports `new` when the peer closed its end (DTLS close_notify)
        const lost = s === 'disconnected' || s === 'failed' || (s === 'new' && connection.value === 'connected');
        if (s === 'connected') setConnection('connected');
        else if (lost) setConnection('reconnecting');
        watchMedia(lost);
      },
      onError: (e) => {
        console.warn('call error', e);
        if (e instanceof Error && e.name === 'NotAllowedError') hooks.onError(new ApiError('camera'));
      },
    });
    call.value = c;
    router.attach(c);
    watchQuality();
    facing.value = null;
    void c.ready.then(() => {
      if (call.value !== c) return;
      const track = c.cameraTrack();
      facing.value = track ? facingOf(track) : null;
      void refreshCameras();
    });
  }

  // ---- switching the camera (core/camera.ts) -------------------------------------------------

  const devices = (): (CameraDevices & Partial<Pick<MediaDevices, 'addEventListener'>>) | undefined => globalThis.navigator?.mediaDevices;

  /** Count the cameras again (after the permission, and when one is plugged in or out). */
  async function refreshCameras(): Promise<void> {
    cameras.value = await countCameras(devices());
    vtax.cameras = cameras.value;
  }
  devices()?.addEventListener?.('devicechange', () => void refreshCameras());

  /** Front <-> rear: the other camera's track in the call, the old one stopped; mute, camera
   * off and the recording consent as they were. Throws (the page shows it) if it fails. */
  async function switchCamera(): Promise<void> {
    const c = call.value;
    const media = devices();
    if (!c || !media || switchingCamera.value) return;
    switchingCamera.value = true;
    try {
      const base = typeof MEDIA_CONSTRAINTS.video === 'object' ? MEDIA_CONSTRAINTS.video : {};
      const now = await switchCameraOf(c, otherFacing(facing.value ?? 'user'), media, base);
      if (call.value === c) facing.value = now;
      vtax.cameraSwitches = Number(vtax.cameraSwitches || 0) + 1;
    } catch (e) {
      throw e instanceof ApiError ? e : new ApiError('camera_switch', e instanceof Error ? e.message : String(e));
    } finally {
      switchingCamera.value = false;
    }
  }

  /** Hang up: `session:end`, then end here. */
  async function hangup(): Promise<void> {
    const s = session.value;
    if (!s) return;
    const body = { session_id: s.session_id, reason: 'hangup' } as const;
    let failed: ApiError | null = null;
    try {
      await emitAck(socket.value, 'session:end', body);
    } catch (e) {
      failed = asApiError(e);
    } finally {
      if (session.value && session.value.session_id === s.session_id) end('hangup');
    }
    // The call is over here at once; the server must hear it too, or the other side stays
    // in a call with nobody: a Redis outage answers `unavailable`, a lost ack `timeout`; a
    // socket that reconnected meanwhile (the hang-up waited in its buffer) is a new
    // connection the session does not know, `not_in_session`: resume on it, then hang up.
    for (let attempt = 0; failed && attempt < HANGUP_RETRIES; attempt += 1) {
      const code: string = failed.code;
      if (!HANGUP_RETRY.has(code) && code !== 'not_in_session') return;
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      const sock = socket.value;
      try {
        if (code === 'not_in_session') {
          try {
            await emitAck(sock, 'session:resume', { session_id: s.session_id, last_seq: 0 });
          } catch (e) {
            const err = asApiError(e);
            if (!HANGUP_RETRY.has(err.code)) return; // over, or truly not ours
            throw err;
          }
        }
        await emitAck(sock, 'session:end', body);
        failed = null;
      } catch (e) {
        failed = asApiError(e);
      }
    }
  }

  /** The call is over on this page; a reload still shows the after-call step. Once per
   * session: a hang-up ends it both when the server's `session:end` arrives and when the
   * hang-up's ack does, and a second `onEnded` would take the page back to the after-call
   * step from wherever the person went meanwhile (a new question). */
  function end(reason: string): void {
    const sid = session.value?.session_id ?? null;
    if (sid !== null && sid === endedSessionId) return;
    endedSessionId = sid;
    if (router) router.detach();
    call.value = null;
    clearInterval(qualityTimer);
    clearTimeout(mediaCheckTimer);
    releasePreview();
    if (connection.value !== 'idle') setConnection('idle');
    // No more resuming; a reload still shows the after-call step until the rating is given.
    resumeStore.update(storeKey, { ended: true, endReason: reason || '' });
    hooks.onEnded(reason);
  }

  function setMuted(v: boolean): void {
    muted.value = v;
    call.value?.setTrackEnabled('audio', !v);
  }

  function setCameraOff(v: boolean): void {
    cameraOff.value = v;
    call.value?.setTrackEnabled('video', !v);
  }

  /**
   * The call-quality badge: a getStats sample every SAMPLE_MS (core/quality.ts), its level
   * from the estimated MOS; one sample in SEND_EVERY goes to the server (`call:quality`).
   */
  function watchQuality(): void {
    clearInterval(qualityTimer);
    quality.value = 'waiting';
    qualitySample.value = null;
    let sampler: StatsSampler | null = null;
    let pc: RTCPeerConnection | null = null;
    let taken = 0;
    qualityTimer = setInterval(async () => {
      const c = call.value;
      if (!c || c.closed) return;
      if (connection.value !== 'connected') {
        quality.value = connection.value === 'reconnecting' ? 'lost' : 'waiting';
        return;
      }
      try {
        if (pc !== c.pc || !sampler) {
          pc = c.pc; // a new RTCPeerConnection: counters start again
          sampler = new StatsSampler(() => c.screenTransceiver?.mid ?? null);
        }
        const sample = sampler.sample(await c.pc.getStats(), Date.now());
        qualitySample.value = sample;
        quality.value = sampleLevel(sample) ?? 'waiting';
        vtax.quality = { level: quality.value, sample }; // for the browser tests
        taken += 1;
        if (taken % SEND_EVERY === 0 && socket.value?.connected) {
          emitAck(socket.value, 'call:quality', { session_id: c.sessionId, sample }).catch((e) => console.warn('call:quality', e));
        }
      } catch {
        /* closed meanwhile */
      }
    }, SAMPLE_MS);
  }

  // ---- peers, drops and resume ----------------------------------------------------------

  function onPeer(msg: SessionPeer): void {
    const s = session.value;
    if (!s || !msg || msg.session_id !== s.session_id) return;
    const peer = s.peer && s.peer.participant_id;
    if (msg.participant_id && peer && msg.participant_id !== peer) return; // e.g. the recorder
    peerState.value = msg.state;
    vtax.peerState = msg.state;
    if (msg.state === 'back' && call.value && msg.ice_restart && !call.value.polite) call.value.restartIce();
    if (msg.state === 'left') hooks.onError(new ApiError('peer_left'));
  }

  /** The socket reconnected during the call: same RTCPeerConnection, resume the session. */
  /**
   * Media stopped (the peer connection `disconnected`, `failed`, or `new` again) while the socket is up: if
   * it has not come back after MEDIA_CHECK_MS, ask the server where the call is (a resume on
   * this socket). What the page may have missed comes in the replay, and a call that ended
   * meanwhile answers `session_ended`: a lost `session:end` (a node deaf to the others for a
   * moment) cannot leave the page in a call with nobody.
   */
  function watchMedia(lost: boolean): void {
    clearTimeout(mediaCheckTimer);
    if (!lost) return;
    const c = call.value;
    mediaCheckTimer = setTimeout(() => {
      const s = socket.value;
      if (c !== call.value || !c || !s || !s.connected) return; // a socket resume does it
      if (!['connected', 'connecting'].includes(c.pc.connectionState)) void resumeLive();
    }, MEDIA_CHECK_MS);
  }

  async function resumeLive(): Promise<void> {
    if (resuming || !call.value || !session.value || !router) return;
    const id = session.value.session_id;
    const s = socket.value;
    resuming = true;
    setConnection('reconnecting');
    try {
      await router.resume(id);
      resumed.value += 1;
      if (call.value && call.value.pc.connectionState === 'connected') setConnection('connected');
    } catch (e) {
      const err = asApiError(e);
      if (!session.value || session.value.session_id !== id) return;
      if (RESUME_FINAL.has(err.code)) {
        end(err.code);
      } else {
        hooks.onError(err);
        setTimeout(() => {
          if (s === socket.value && s && s.connected) void resumeLive();
        }, 1000);
      }
    } finally {
      resuming = false;
    }
  }

  function continuedElsewhere(): void {
    resumeStore.clear(storeKey);
    if (router) router.detach();
    call.value = null;
    clearInterval(qualityTimer);
    setConnection('idle');
    hooks.onMoved();
  }

  /**
   * After a page reload: connect, resume `saved.sessionId` with a fresh RTCPeerConnection,
   * retrying with backoff until the deadline; then start the call from the ack.
   */
  async function restore(saved: StoredSession): Promise<Resumed> {
    const deadline = Date.now() + RESTORE_DEADLINE_MS;
    preview();
    setConnection('reconnecting');
    for (let attempt = 0; ; attempt += 1) {
      try {
        await ensureSocket(saved.token);
        if (!router) throw new ApiError('not_connected');
        router.setLastSeq(saved.sessionId, saved.lastSeq);
        const ack = await router.resume(saved.sessionId, { fresh: true });
        start(ack, { fresh: true });
        return ack;
      } catch (e) {
        const err = asApiError(e);
        if (RESUME_FINAL.has(err.code) || Date.now() > deadline) {
          releasePreview();
          setConnection('idle');
          throw err;
        }
        hooks.onError(err);
        await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 4000)));
      }
    }
  }

  // Raw: a store that returns this must not wrap the Call, its RTCPeerConnection or the
  // socket in reactive proxies (native objects refuse proxied `this`).
  return markRaw({
    socket,
    call,
    session,
    connection,
    peerState,
    quality,
    qualitySample,
    muted,
    cameraOff,
    cameras,
    facing,
    switchingCamera,
    switchCamera,
    resumed,
    localVideo,
    remoteVideo,
    recording,
    preview,
    releasePreview,
    ensureSocket,
    setToken,
    disconnect,
    persistSession,
    start,
    hangup,
    end,
    setMuted,
    setCameraOff,
    restore,
    resumeLive,
    load: () => resumeStore.load(storeKey),
    /** the SignalRouter of the current socket (the mesh attaches its Calls to it) */
    getRouter: () => router,
    clearStored: () => resumeStore.clear(storeKey),
  });
}

export type UseCall = ReturnType<typeof useCall>;
