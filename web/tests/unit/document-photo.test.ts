// The photo of a paper document (composables/useDocumentPhoto.ts) that the call's materials
// and a booking's materials share: the document camera it opens is stopped once the still is
// taken or the panel closed; the call's own camera, a still is only grabbed from.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { effectScope } from 'vue';
import { ApiError } from '@/core/errors';

const frames: HTMLVideoElement[] = [];
vi.mock('@/core/documents', async (importOriginal) => ({
  ...(await importOriginal<typeof import('@/core/documents')>()),
  // happy-dom draws no canvas: a frame is a small JPEG-typed blob
  grabFrame: vi.fn(async (video: HTMLVideoElement) => {
    frames.push(video);
    return new Blob([`frame ${frames.length}`], { type: 'image/jpeg' });
  }),
}));

const { useDocumentPhoto } = await import('@/composables/useDocumentPhoto');
const { DOCUMENT_CAMERA, openDocumentCamera } = await import('@/core/camera');

class Track {
  readyState = 'live';
  stop() {
    this.readyState = 'ended';
  }
}
class Stream {
  tracks = [new Track()];
  getTracks() {
    return this.tracks;
  }
}

let asked: MediaStreamConstraints[] = [];
let opened: Stream[] = [];
let refuse: Error | null = null;
const devices = {
  getUserMedia: async (c: MediaStreamConstraints) => {
    asked.push(c);
    if (refuse) throw refuse;
    const s = new Stream();
    opened.push(s);
    return s as unknown as MediaStream;
  },
};

/** A video element as far as the photo uses one (happy-dom's takes no fake stream). */
function video(): HTMLVideoElement {
  return { srcObject: null, play: async () => {} } as unknown as HTMLVideoElement;
}

function photo() {
  const scope = effectScope();
  return scope.run(() => useDocumentPhoto())!;
}

beforeEach(() => {
  asked = [];
  opened = [];
  refuse = null;
  frames.length = 0;
  Object.defineProperty(navigator, 'mediaDevices', { value: devices, configurable: true });
});
afterEach(() => {
  Object.defineProperty(navigator, 'mediaDevices', { value: undefined, configurable: true });
});

describe('useDocumentPhoto', () => {
  it('opens the rear camera into the preview, and stops it once the still is taken', async () => {
    const p = photo();
    const v = video();
    await p.open(() => v);
    expect(asked).toEqual([DOCUMENT_CAMERA]);
    expect(v.srcObject).toBe(opened[0]);
    expect(p.shown.value).toBe(true);
    expect(opened[0]!.tracks[0]!.readyState).toBe('live');
    await p.snap(v);
    expect(frames).toEqual([v]);
    expect(p.still.value?.type).toBe('image/jpeg');
    expect(p.stillUrl.value).toMatch(/^blob:/);
    expect(opened[0]!.tracks[0]!.readyState).toBe('ended');
  });

  it('a still of a video it did not open leaves that camera running', async () => {
    const p = photo();
    const callCamera = new Stream();
    const v = video();
    v.srcObject = callCamera as unknown as MediaStream;
    await p.snap(v);
    await p.snap(v); // a retake
    expect(frames).toHaveLength(2);
    expect(callCamera.tracks[0]!.readyState).toBe('live');
    expect(asked).toEqual([]);
  });

  it('a new still revokes the old one’s URL; close drops it, stops the camera and hides the panel', async () => {
    const revoked: string[] = [];
    const revoke = vi.spyOn(URL, 'revokeObjectURL').mockImplementation((u) => void revoked.push(u));
    try {
      const p = photo();
      const v = video();
      await p.snap(v);
      const first = p.stillUrl.value;
      await p.snap(v);
      expect(revoked).toEqual([first]);
      const second = p.stillUrl.value;
      await p.open(() => v); // take it again: the still is dropped
      expect(revoked).toEqual([first, second]);
      expect(p.still.value).toBeNull();
      p.close();
      expect(opened[0]!.tracks[0]!.readyState).toBe('ended');
      expect(p.shown.value).toBe(false);
      expect(p.stillUrl.value).toBe('');
    } finally {
      revoke.mockRestore();
    }
  });

  it('opening again stops the camera it had open first', async () => {
    const p = photo();
    const v = video();
    await p.open(() => v);
    await p.open(() => v);
    expect(opened.map((s) => s.tracks[0]!.readyState)).toEqual(['ended', 'live']);
  });

  it('no camera, or one refused, is the `camera` error; no video to take from is too', async () => {
    const p = photo();
    refuse = Object.assign(new Error('denied'), { name: 'NotAllowedError' });
    await expect(p.open(() => video())).rejects.toMatchObject({ code: 'camera' });
    expect(p.shown.value).toBe(false);
    Object.defineProperty(navigator, 'mediaDevices', { value: undefined, configurable: true }); // plain http
    await expect(p.open(() => video())).rejects.toMatchObject({ code: 'camera' });
    await expect(openDocumentCamera({} as never)).rejects.toBeInstanceOf(ApiError);
    await expect(p.snap(null)).rejects.toMatchObject({ code: 'camera' });
  });
});
