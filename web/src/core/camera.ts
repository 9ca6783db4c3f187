// Switching the camera during a call (a phone's front and rear cameras). The new camera's
// track replaces the old one on the call's video sender (`RTCRtpSender.replaceTrack`: no
// renegotiation, the other side keeps its receiver), in the local stream (so the self view,
// a new RTCPeerConnection after the peer's reload, the recorder's peer connection and the
// extra Calls of a call of three follow it), and the old track is stopped. Mute and camera
// off stay as they were (the new track takes the old one's `enabled`); the recording consent
// is the session's, untouched.
//
// A camera is asked for by `facingMode` (user: the front one, environment: the rear one);
// where no camera says which way it faces (desktop webcams, Chromium's fake devices), the
// next camera by deviceId. A phone that opens one camera at a time (NotReadableError while
// the other is open) gets the old one stopped first, and the old facing back if the new one
// still fails.
import { ApiError } from './errors';

export type Facing = 'user' | 'environment';

/** The part of `navigator.mediaDevices` the switch uses (a fake in the unit tests). */
export interface CameraDevices {
  enumerateDevices(): Promise<MediaDeviceInfo[]>;
  getUserMedia(constraints: MediaStreamConstraints): Promise<MediaStream>;
}

/** What is switched: the call's local camera (core/rtc.ts `Call`). */
export interface CameraHolder {
  /** the local camera track now, null without one (audio only, receive only) */
  cameraTrack(): MediaStreamTrack | null;
  /** put this track in the old one's place everywhere; the old one is stopped */
  replaceCameraTrack(track: MediaStreamTrack): Promise<void>;
}

export function otherFacing(f: Facing): Facing {
  return f === 'user' ? 'environment' : 'user';
}

/** The way a camera track faces, as the browser says; front when it does not say. */
export function facingOf(track: MediaStreamTrack | null | undefined): Facing {
  const f = track && typeof track.getSettings === 'function' ? track.getSettings().facingMode : undefined;
  return f === 'environment' ? 'environment' : 'user';
}

/** How many cameras the device has (0 when it cannot tell). Labels and ids need the
 * permission, the count does not. */
export async function countCameras(devices: CameraDevices | undefined = globalThis.navigator?.mediaDevices): Promise<number> {
  if (!devices || typeof devices.enumerateDevices !== 'function') return 0;
  try {
    return (await devices.enumerateDevices()).filter((d) => d.kind === 'videoinput').length;
  } catch {
    return 0;
  }
}

function errorName(e: unknown): string {
  return e instanceof Error || (typeof e === 'object' && e !== null && 'name' in e) ? String((e as { name: unknown }).name) : '';
}

/** A constraint no camera meets (no camera says it faces that way). */
const UNMET = new Set(['OverconstrainedError', 'NotFoundError']);
/** The camera is busy: this device opens one at a time. */
const BUSY = new Set(['NotReadableError', 'AbortError', 'TrackStartError']);

async function videoTrack(devices: CameraDevices, video: MediaTrackConstraints): Promise<MediaStreamTrack> {
  const stream = await devices.getUserMedia({ audio: false, video });
  const [track, ...rest] = stream.getVideoTracks();
  for (const t of rest) t.stop();
  if (!track) throw new ApiError('camera_switch', 'no video track');
  return track;
}

/**
 * Open the camera facing `facing` (else another camera than `current`'s), with `base`
 * (the call's size and frame rate).
 */
export async function openCamera(
  devices: CameraDevices,
  facing: Facing,
  current: MediaStreamTrack | null,
  base: MediaTrackConstraints = {},
): Promise<MediaStreamTrack> {
  try {
    return await videoTrack(devices, { ...base, facingMode: { exact: facing } });
  } catch (e) {
    if (!UNMET.has(errorName(e))) throw e;
  }
  const currentId = current && typeof current.getSettings === 'function' ? current.getSettings().deviceId : undefined;
  const cameras = (await devices.enumerateDevices()).filter((d) => d.kind === 'videoinput' && d.deviceId);
  const at = cameras.findIndex((d) => d.deviceId === currentId);
  // the next one after the current camera, round the list
  const next = cameras.length > 1 ? cameras[(at + 1) % cameras.length] : undefined;
  if (!next || next.deviceId === currentId) throw new ApiError('camera_switch', 'no other camera');
  return videoTrack(devices, { ...base, deviceId: { exact: next.deviceId } });
}

/**
 * Switch `holder`'s camera to face `to`: the new track in place of the old, the old stopped.
 * Resolves with the facing now in use (the camera's own word, else `to`); throws (the old camera kept, or reopened) if the
 * new one cannot be had.
 */
export async function switchCamera(
  holder: CameraHolder,
  to: Facing,
  devices: CameraDevices,
  base: MediaTrackConstraints = {},
): Promise<Facing> {
  const old = holder.cameraTrack();
  if (!old || old.readyState === 'ended') throw new ApiError('camera_switch', 'no camera in the call');
  let track: MediaStreamTrack;
  try {
    track = await openCamera(devices, to, old, base);
  } catch (e) {
    if (!BUSY.has(errorName(e))) throw e;
    // one camera at a time: let go of this one, then open the other
    old.stop();
    try {
      track = await openCamera(devices, to, old, base);
    } catch (again) {
      const back = await openCamera(devices, otherFacing(to), null, base).catch(() => null);
      if (back) await holder.replaceCameraTrack(back);
      throw again;
    }
  }
  try {
    await holder.replaceCameraTrack(track);
  } catch (e) {
    track.stop();
    throw e;
  }
  const said = typeof track.getSettings === 'function' ? track.getSettings().facingMode : undefined;
  return said === 'user' || said === 'environment' ? said : to;
}

/** What a photo of a paper document asks for: a phone's rear camera (a laptop has only the
 * one it has), sharp enough to read. */
export const DOCUMENT_CAMERA: MediaStreamConstraints = {
  video: { facingMode: { ideal: 'environment' }, width: { ideal: 1920 }, height: { ideal: 1080 } },
  audio: false,
};

/** The camera for a photo of a paper document (the materials of a call and of a booking);
 * `camera` (the pages' error text) when the browser has none or refuses it. */
export async function openDocumentCamera(devices: Pick<CameraDevices, 'getUserMedia'> | undefined = globalThis.navigator?.mediaDevices): Promise<MediaStream> {
  if (!devices || typeof devices.getUserMedia !== 'function') throw new ApiError('camera', 'no camera access');
  try {
    return await devices.getUserMedia(DOCUMENT_CAMERA);
  } catch (e) {
    throw new ApiError('camera', e instanceof Error ? e.message : String(e));
  }
}
