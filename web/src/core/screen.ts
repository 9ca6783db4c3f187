// Screen share and the pointer, browser side (docs/protocol.md, "Screen share"),
// framework-free. The media is the Call's screen transceiver (rtc.ts `setScreenTrack`); this
// captures the screen (getDisplayMedia: desktop browsers; phones have none, so they show no
// share button and only watch the agent's screen), says who shares (`screen:share` ->
// `screen:state`), and carries the pointer (`screen:pointer`, normalized coordinates over
// the shared picture). After a resume the sharer says it again (`session:peer` back); a page
// reloaded says it does not share (a reload ends a capture).
import type { ScreenPointed, ScreenState, SessionPeer } from '@/contract';
import { ApiError } from './errors';
import type { Call } from './rtc';
import { emitAck, type AckEmitter } from './socket';

export interface ScreenSocket extends AckEmitter {
  on(event: 'screen:state', fn: (msg: ScreenState) => void): unknown;
  on(event: 'screen:pointer', fn: (msg: ScreenPointed) => void): unknown;
  on(event: 'session:peer', fn: (msg: SessionPeer) => void): unknown;
}

/** getDisplayMedia's request: a few frames a second of the screen, no audio. */
export const DISPLAY_CONSTRAINTS: DisplayMediaStreamOptions = {
  video: { frameRate: { ideal: 5, max: 10 } },
  audio: false,
};
/** A marker fades after this long without a new point. */
export const POINTER_SHOWN_MS = 4000;
/** The viewer sends at most one point per this long (the server's bucket allows 10 a second). */
export const POINTER_MIN_GAP_MS = 150;

export function canShareScreen(nav: Navigator | undefined = typeof navigator === 'undefined' ? undefined : navigator): boolean {
  return Boolean(nav && nav.mediaDevices && typeof nav.mediaDevices.getDisplayMedia === 'function');
}

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Where the picture is inside an element that shows it with `object-fit: contain`
 * (letterboxed), in the element's coordinates.
 */
export function contentBox(element: { width: number; height: number }, picture: { width: number; height: number }): Box {
  const { width: ew, height: eh } = element;
  const { width: pw, height: ph } = picture;
  if (!ew || !eh || !pw || !ph) return { left: 0, top: 0, width: ew, height: eh };
  const scale = Math.min(ew / pw, eh / ph);
  const width = pw * scale;
  const height = ph * scale;
  return { left: (ew - width) / 2, top: (eh - height) / 2, width, height };
}

/** A point in an element (offsetX/Y) to coordinates over the picture (0..1), or null outside it. */
export function toPicture(x: number, y: number, box: Box): { x: number; y: number } | null {
  if (!box.width || !box.height) return null;
  const px = (x - box.left) / box.width;
  const py = (y - box.top) / box.height;
  if (px < 0 || px > 1 || py < 0 || py > 1) return null;
  return { x: Math.round(px * 10000) / 10000, y: Math.round(py * 10000) / 10000 };
}

/** Coordinates over the picture back to the element's (for drawing the marker). */
export function fromPicture(p: { x: number; y: number }, box: Box): { x: number; y: number } {
  return { x: box.left + p.x * box.width, y: box.top + p.y * box.height };
}

export interface ScreenView {
  /** this page shares its screen */
  sharing: boolean;
  /** the other side shares its screen */
  peerSharing: boolean;
  peerRole: 'taxpayer' | 'agent' | null;
  /** the latest point the other side made on our shared screen (null: none shown) */
  pointer: { x: number; y: number; at: number } | null;
  /** points this page sent */
  pointsSent: number;
}

export interface ScreenHooks {
  getCall: () => Call | null;
  onChange: (view: ScreenView) => void;
  onError: (e: ApiError) => void;
}

export class ScreenShare {
  readonly view: ScreenView = { sharing: false, peerSharing: false, peerRole: null, pointer: null, pointsSent: 0 };
  private socket: ScreenSocket | null = null;
  private stream: MediaStream | null = null;
  private lastPointAt = 0;
  private hooks: ScreenHooks;

  constructor(hooks: ScreenHooks) {
    this.hooks = hooks;
  }

  private changed(): void {
    this.hooks.onChange({ ...this.view });
  }

  /** Attach to a page's socket (again after a new socket). */
  bind(socket: ScreenSocket): void {
    if (this.socket === socket) return;
    this.socket = socket;
    socket.on('screen:state', (msg) => {
      const call = this.hooks.getCall();
      if (!msg || !call || msg.session_id !== call.sessionId) return;
      this.view.peerSharing = msg.sharing;
      this.view.peerRole = msg.role;
      this.changed();
    });
    socket.on('screen:pointer', (msg) => {
      const call = this.hooks.getCall();
      if (!msg || !call || msg.session_id !== call.sessionId || !this.view.sharing) return;
      this.view.pointer = msg.kind === 'clear' ? null : { x: msg.x, y: msg.y, at: Date.now() };
      this.changed();
    });
    socket.on('session:peer', (msg) => {
      const call = this.hooks.getCall();
      if (!msg || !call || msg.session_id !== call.sessionId) return;
      if (msg.state === 'back' && this.view.sharing) void this.announce(true);
      if (msg.state === 'left') this.peerStopped();
    });
  }

  /** Say who shares; refusals are told to the person, never thrown. */
  private async announce(sharing: boolean): Promise<void> {
    const call = this.hooks.getCall();
    if (!call || call.closed) return;
    const surface = (this.stream?.getVideoTracks()[0]?.getSettings().displaySurface as 'monitor' | 'window' | 'browser' | undefined) ?? 'unknown';
    try {
      await emitAck(this.socket, 'screen:share', { session_id: call.sessionId, sharing, surface: sharing ? surface : 'unknown' });
    } catch (e) {
      console.warn('screen:share', e);
    }
  }

  /** Capture a screen (the browser asks which) and share it on the call. */
  async start(): Promise<void> {
    const call = this.hooks.getCall();
    if (!call || call.closed || this.view.sharing) return;
    if (!canShareScreen()) throw new ApiError('screen_unavailable');
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia(DISPLAY_CONSTRAINTS);
    } catch (e) {
      if (e instanceof Error && e.name === 'NotAllowedError') return; // the person said no
      throw new ApiError('screen_unavailable', e instanceof Error ? e.message : String(e));
    }
    const track = stream.getVideoTracks()[0];
    if (!track) return;
    this.stream = stream;
    track.addEventListener('ended', () => void this.stop()); // the browser's own "Stop sharing"
    await call.setScreenTrack(track);
    this.view.sharing = true;
    this.view.pointer = null;
    this.changed();
    await this.announce(true);
  }

  /** Stop sharing (the transceiver stays, with no track). */
  async stop(): Promise<void> {
    if (!this.view.sharing && !this.stream) return;
    const call = this.hooks.getCall();
    const stream = this.stream;
    this.stream = null;
    this.view.sharing = false;
    this.view.pointer = null;
    this.changed();
    if (call && !call.closed) await call.setScreenTrack(null);
    for (const t of stream?.getTracks() || []) t.stop();
    await this.announce(false);
  }

  /** The local screen being shared (for the preview with the marker). */
  get localStream(): MediaStream | null {
    return this.stream;
  }

  /** Point at (x, y) of the other side's shared screen (rate-limited here too). */
  async point(x: number, y: number, kind: 'point' | 'clear' = 'point'): Promise<boolean> {
    const call = this.hooks.getCall();
    if (!call || call.closed || !this.view.peerSharing) return false;
    const now = Date.now();
    if (kind === 'point' && now - this.lastPointAt < POINTER_MIN_GAP_MS) return false;
    this.lastPointAt = now;
    try {
      await emitAck(this.socket, 'screen:pointer', { session_id: call.sessionId, x, y, kind });
      this.view.pointsSent += 1;
      return true;
    } catch (e) {
      console.warn('screen:pointer', e);
      return false;
    }
  }

  /** A page reloaded mid-call: whatever it shared before is gone; say so. */
  async afterReload(): Promise<void> {
    await this.announce(false);
  }

  /** The other side is gone or the call ended: nothing is shared to us. */
  peerStopped(): void {
    this.view.peerSharing = false;
    this.view.peerRole = null;
    this.changed();
  }

  /** The call ended on this page. */
  reset(): void {
    for (const t of this.stream?.getTracks() || []) t.stop();
    this.stream = null;
    Object.assign(this.view, { sharing: false, peerSharing: false, peerRole: null, pointer: null });
    this.changed();
  }
}
