// Switching the camera in a call (core/camera.ts, Call.replaceCameraTrack): fake tracks,
// senders and devices; the real Call over a fake RTCPeerConnection that keeps its senders.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RosterEntry } from '@/contract';
import { Mesh } from '@/core/mesh';
import { Call, SignalRouter, type CallOptions } from '@/core/rtc';
import { countCameras, facingOf, openCamera, switchCamera, type CameraDevices, type CameraHolder, type Facing } from '@/core/camera';
import { FakePeerConnection, FakeSocket, flush } from './fakes';

let made = 0;

class FakeTrack {
  readonly id = `track-${++made}`;
  enabled = true;
  readyState: MediaStreamTrackState = 'live';
  constructor(
    readonly kind: 'audio' | 'video',
    readonly settings: { deviceId?: string; facingMode?: string } = {},
  ) {}
  stop() {
    this.readyState = 'ended';
  }
  getSettings() {
    return this.settings;
  }
  clone() {
    return new FakeTrack(this.kind, this.settings);
  }
}

class FakeMediaStream {
  tracks: FakeTrack[];
  constructor(tracks: FakeTrack[] = []) {
    this.tracks = [...tracks];
  }
  getTracks() {
    return this.tracks;
  }
  getVideoTracks() {
    return this.tracks.filter((t) => t.kind === 'video');
  }
  getAudioTracks() {
    return this.tracks.filter((t) => t.kind === 'audio');
  }
  addTrack(t: FakeTrack) {
    this.tracks.push(t);
  }
  removeTrack(t: FakeTrack) {
    this.tracks = this.tracks.filter((x) => x !== t);
  }
  clone() {
    return new FakeMediaStream(this.tracks.map((t) => t.clone()));
  }
}

class FakeSender {
  replaced = 0;
  constructor(public track: FakeTrack | null) {}
  async replaceTrack(t: FakeTrack | null) {
    this.replaced += 1;
    this.track = t;
  }
}

/** The fake RTCPeerConnection with a sender per added track (as addTrack makes one). */
class SenderPC extends FakePeerConnection {
  senders: FakeSender[] = [];
  override addTrack(track: { kind: string }) {
    super.addTrack(track);
    this.senders.push(new FakeSender(track as FakeTrack));
  }
  getSenders() {
    return this.senders;
  }
}

/** A phone's cameras: getUserMedia by exact facingMode or deviceId; `oneAtATime` refuses a
 * second open camera (NotReadableError), as many phones do. */
class Phone implements CameraDevices {
  open: FakeTrack[] = [];
  asked: MediaStreamConstraints[] = [];
  oneAtATime = false;
  failNext: string | null = null;
  constructor(readonly cameras: { deviceId: string; facing?: Facing }[]) {}
  async enumerateDevices() {
    return [
      { kind: 'audioinput', deviceId: 'mic', label: '', groupId: '' },
      ...this.cameras.map((c) => ({ kind: 'videoinput', deviceId: c.deviceId, label: '', groupId: '' })),
    ] as unknown as MediaDeviceInfo[];
  }
  async getUserMedia(constraints: MediaStreamConstraints) {
    this.asked.push(constraints);
    const v = constraints.video as { facingMode?: { exact: string }; deviceId?: { exact: string } };
    const cam = v.facingMode
      ? this.cameras.find((c) => c.facing === v.facingMode!.exact)
      : this.cameras.find((c) => c.deviceId === v.deviceId?.exact);
    if (!cam) throw Object.assign(new Error('no such camera'), { name: 'OverconstrainedError' });
    if (this.failNext) {
      const name = this.failNext;
      this.failNext = null;
      throw Object.assign(new Error(name), { name });
    }
    this.open = this.open.filter((t) => t.readyState === 'live');
    if (this.oneAtATime && this.open.length) throw Object.assign(new Error('busy'), { name: 'NotReadableError' });
    const track = new FakeTrack('video', { deviceId: cam.deviceId, ...(cam.facing ? { facingMode: cam.facing } : {}) });
    this.open.push(track);
    return new FakeMediaStream([track]) as unknown as MediaStream;
  }
}

const START = { session_id: 's1', participant_id: 'me', polite: true, ice_servers: [], peer: { participant_id: 'peer' } } as unknown as CallOptions['start'];

async function callWith(phone: Phone, facing: Facing = 'user', socket = new FakeSocket()) {
  const cam = phone.cameras.find((c) => c.facing === facing) ?? phone.cameras[0]!;
  const video = new FakeTrack('video', { deviceId: cam.deviceId, ...(cam.facing ? { facingMode: cam.facing } : {}) });
  phone.open.push(video);
  const audio = new FakeTrack('audio');
  const stream = new FakeMediaStream([audio, video]);
  const localVideo = { muted: false, srcObject: null as unknown } as unknown as HTMLVideoElement;
  const call = new Call({
    socket: socket as unknown as CallOptions['socket'],
    start: START,
    media: { stream: stream as unknown as MediaStream, error: null },
    peerConnection: SenderPC as unknown as CallOptions['peerConnection'],
    localVideo,
    onError: () => {},
  });
  await call.ready;
  const pc = call.pc as unknown as SenderPC;
  return { call, pc, socket, stream, audio, video, localVideo };
}

beforeEach(() => {
  vi.stubGlobal('MediaStream', FakeMediaStream);
  FakePeerConnection.made = [];
});
afterEach(() => vi.unstubAllGlobals());

describe('counting cameras and which way they face', () => {
  it('counts the videoinput devices only, 0 when the browser cannot tell', async () => {
    expect(await countCameras(new Phone([{ deviceId: 'f', facing: 'user' }, { deviceId: 'r', facing: 'environment' }]))).toBe(2);
    expect(await countCameras(new Phone([{ deviceId: 'f' }]))).toBe(1);
    expect(await countCameras(undefined)).toBe(0);
    expect(await countCameras({ enumerateDevices: () => Promise.reject(new Error('no')) } as unknown as CameraDevices)).toBe(0);
  });

  it('reads the facing from the track, front when it does not say', () => {
    expect(facingOf(new FakeTrack('video', { facingMode: 'environment' }) as unknown as MediaStreamTrack)).toBe('environment');
    expect(facingOf(new FakeTrack('video', {}) as unknown as MediaStreamTrack)).toBe('user');
    expect(facingOf(null)).toBe('user');
  });

  it('opens the other camera by facingMode, else the next camera by deviceId', async () => {
    const phone = new Phone([{ deviceId: 'f', facing: 'user' }, { deviceId: 'r', facing: 'environment' }]);
    const rear = await openCamera(phone, 'environment', null, { width: 640 });
    expect(rear.getSettings().deviceId).toBe('r');
    expect(phone.asked.at(-1)).toEqual({ audio: false, video: { width: 640, facingMode: { exact: 'environment' } } });

    const webcams = new Phone([{ deviceId: 'a' }, { deviceId: 'b' }]); // no facing said
    const current = new FakeTrack('video', { deviceId: 'b' }) as unknown as MediaStreamTrack;
    expect((await openCamera(webcams, 'environment', current)).getSettings().deviceId).toBe('a'); // round the list
    await expect(openCamera(new Phone([{ deviceId: 'a' }]), 'environment', new FakeTrack('video', { deviceId: 'a' }) as unknown as MediaStreamTrack)).rejects.toMatchObject({ code: 'camera_switch' });
  });
});

describe('switching the camera in a call', () => {
  it('replaces the video track on the sender without renegotiating and stops the old one', async () => {
    const phone = new Phone([{ deviceId: 'front', facing: 'user' }, { deviceId: 'rear', facing: 'environment' }]);
    const { call, pc, socket, stream, audio, video, localVideo } = await callWith(phone);
    const tracksAdded = pc.tracks.length;
    const signalsBefore = socket.signals().length;
    const followed: MediaStreamTrack[] = [];
    call.cameraListeners.add((t) => followed.push(t));

    expect(await switchCamera(call, 'environment', phone)).toBe('environment');
    await flush();

    const videoSender = pc.senders.find((s) => s.track?.kind === 'video')!;
    const now = videoSender.track!;
    expect(now).not.toBe(video);
    expect(now.getSettings().deviceId).toBe('rear');
    expect(videoSender.replaced).toBe(1);
    expect(video.readyState).toBe('ended');
    expect(stream.getVideoTracks()).toEqual([now]); // the self view's stream has the new camera
    expect(stream.getAudioTracks()).toEqual([audio]);
    expect(localVideo.srcObject).toBe(stream);
    expect(followed).toEqual([now]);
    expect(pc.tracks.length).toBe(tracksAdded); // no addTrack: the m-lines stay
    expect(socket.signals().length).toBe(signalsBefore); // no new offer
    expect(pc.senders.find((s) => s.track?.kind === 'audio')!.replaced).toBe(0);

    expect(await switchCamera(call, 'user', phone)).toBe('user'); // and back
    expect(videoSender.track!.getSettings().deviceId).toBe('front');
    expect(now.readyState).toBe('ended');
  });

  it('keeps mute and camera-off as they were', async () => {
    const phone = new Phone([{ deviceId: 'front', facing: 'user' }, { deviceId: 'rear', facing: 'environment' }]);
    const { call, audio, stream } = await callWith(phone);
    call.setTrackEnabled('audio', false);
    call.setTrackEnabled('video', false);
    await switchCamera(call, 'environment', phone);
    expect(stream.getVideoTracks()[0]!.enabled).toBe(false);
    expect(audio.enabled).toBe(false);
    expect(audio.readyState).toBe('live');
  });

  it('on a phone that opens one camera at a time: the old one let go first', async () => {
    const phone = new Phone([{ deviceId: 'front', facing: 'user' }, { deviceId: 'rear', facing: 'environment' }]);
    phone.oneAtATime = true;
    const { call, pc, video } = await callWith(phone);
    await switchCamera(call, 'environment', phone);
    expect(video.readyState).toBe('ended');
    expect(pc.senders.find((s) => s.track?.kind === 'video')!.track!.getSettings().deviceId).toBe('rear');
  });

  it('when the other camera fails after the old one was let go, the old facing comes back', async () => {
    const phone = new Phone([{ deviceId: 'front', facing: 'user' }, { deviceId: 'rear', facing: 'environment' }]);
    phone.oneAtATime = true;
    const { call, pc } = await callWith(phone);
    const real = phone.getUserMedia.bind(phone);
    let calls = 0;
    phone.getUserMedia = async (c) => {
      calls += 1;
      if (calls === 2) throw Object.assign(new Error('rear broken'), { name: 'NotReadableError' });
      return real(c);
    };
    await expect(switchCamera(call, 'environment', phone)).rejects.toMatchObject({ name: 'NotReadableError' });
    const back = pc.senders.find((s) => s.track?.kind === 'video')!.track!;
    expect(back.getSettings().deviceId).toBe('front');
    expect(back.readyState).toBe('live');
  });

  it('a refusal leaves the call as it was', async () => {
    const phone = new Phone([{ deviceId: 'front', facing: 'user' }, { deviceId: 'rear', facing: 'environment' }]);
    const { call, pc, video } = await callWith(phone);
    phone.failNext = 'NotAllowedError';
    await expect(switchCamera(call, 'environment', phone)).rejects.toMatchObject({ name: 'NotAllowedError' });
    expect(video.readyState).toBe('live');
    expect(pc.senders.find((s) => s.track?.kind === 'video')!.track).toBe(video);
  });

  it('a sender that refuses the track: the new track stopped, the old one kept', async () => {
    const phone = new Phone([{ deviceId: 'front', facing: 'user' }, { deviceId: 'rear', facing: 'environment' }]);
    const { call, pc, video, stream } = await callWith(phone);
    const sender = pc.senders.find((s) => s.track?.kind === 'video')!;
    sender.replaceTrack = () => Promise.reject(Object.assign(new Error('no'), { name: 'InvalidModificationError' }));
    await expect(switchCamera(call, 'environment', phone)).rejects.toMatchObject({ name: 'InvalidModificationError' });
    expect(video.readyState).toBe('live');
    expect(stream.getVideoTracks()).toEqual([video]);
    expect(phone.open.filter((t) => t !== video).every((t) => t.readyState === 'ended')).toBe(true);
  });

  it('no camera in the call: nothing to switch', async () => {
    const holder: CameraHolder = { cameraTrack: () => null, replaceCameraTrack: vi.fn() };
    await expect(switchCamera(holder, 'environment', new Phone([{ deviceId: 'a' }, { deviceId: 'b' }]))).rejects.toMatchObject({ code: 'camera_switch' });
    expect(holder.replaceCameraTrack).not.toHaveBeenCalled();
  });

  it('a renewed RTCPeerConnection (the peer reloaded) sends the switched camera', async () => {
    const phone = new Phone([{ deviceId: 'front', facing: 'user' }, { deviceId: 'rear', facing: 'environment' }]);
    const { call } = await callWith(phone);
    await switchCamera(call, 'environment', phone);
    call.renewPeerConnection('their-new-pc');
    const fresh = call.pc as unknown as SenderPC;
    const sent = fresh.senders.find((s) => s.track?.kind === 'video')!.track!;
    expect(sent.getSettings().deviceId).toBe('rear');
    expect(sent.readyState).toBe('live');
  });

  it('the extra Calls of a call of three send a clone of the new camera', async () => {
    const phone = new Phone([{ deviceId: 'front', facing: 'user' }, { deviceId: 'rear', facing: 'environment' }]);
    const socket = new FakeSocket();
    const { call } = await callWith(phone, 'user', socket);
    const router = new SignalRouter(socket as never);
    router.attach(call);
    const mesh = new Mesh({ socket: socket as never, router, main: call, peerConnection: SenderPC as unknown as CallOptions['peerConnection'] });
    const entry = (id: string, role: RosterEntry['role'], part: RosterEntry['part'] = role): RosterEntry => ({ participant_id: id, role, part, display_name: id, label: '', state: 'connected' });
    mesh.update({ session_id: 's1', owner: 'peer', participants: [entry('me', 'taxpayer'), entry('peer', 'agent'), entry('i', 'agent', 'invitee')] });
    const extra = router.peers.get('i')!;
    await extra.ready;
    const extraPc = extra.pc as unknown as SenderPC;
    const oldCopy = extraPc.senders.find((s) => s.track?.kind === 'video')!.track!;
    expect(oldCopy.getSettings().deviceId).toBe('front');

    await switchCamera(call, 'environment', phone);
    await flush();
    const mainTrack = call.cameraTrack()!;
    const copy = extraPc.senders.find((s) => s.track?.kind === 'video')!.track!;
    expect(copy.getSettings().deviceId).toBe('rear');
    expect(copy).not.toBe(mainTrack); // its own clone: closing that Call stops only the copy
    expect(oldCopy.readyState).toBe('ended');

    mesh.close();
    expect(call.cameraListeners.size).toBe(0);
  });
});
