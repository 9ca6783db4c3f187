// A photo of a paper document for the materials (of a call and of a booking): the document
// camera (core/camera.ts) playing in a preview video until the still is taken, then stopped;
// the still as a Blob and an object URL for its <img> (a new still revokes the old URL). A
// still of a video the page does not own (the call's own camera on a kiosk or a laptop) is
// only grabbed: that camera is never stopped here.
import { ref, shallowRef } from 'vue';
import { openDocumentCamera } from '@/core/camera';
import { grabFrame } from '@/core/documents';
import { ApiError } from '@/core/errors';
import { stopStream } from '@/core/rtc';

export function useDocumentPhoto() {
  /** the camera panel shows */
  const shown = ref(false);
  const still = shallowRef<Blob | null>(null);
  const stillUrl = ref('');
  /** the document camera while it is open (ours to stop) */
  let stream: MediaStream | null = null;

  function setStill(blob: Blob | null): void {
    if (stillUrl.value) URL.revokeObjectURL(stillUrl.value);
    still.value = blob;
    stillUrl.value = blob ? URL.createObjectURL(blob) : '';
  }

  function stopCamera(): void {
    stopStream(stream);
    stream = null;
  }

  /** Open the document camera and play it in `video` (the still dropped, the panel shown);
   * throws `camera` when there is none. */
  async function open(video: () => HTMLVideoElement | null): Promise<void> {
    setStill(null);
    stopCamera();
    stream = await openDocumentCamera();
    shown.value = true;
    const v = video();
    if (v) {
      v.srcObject = stream;
      await v.play().catch(() => {});
    }
  }

  /** The still: one frame of `video`, then the document camera (if open) stopped. */
  async function snap(video: HTMLVideoElement | null): Promise<void> {
    if (!video) throw new ApiError('camera');
    setStill(await grabFrame(video));
    stopCamera();
  }

  /** Put it all away: the camera stopped, the still and its URL dropped, the panel hidden. */
  function close(): void {
    stopCamera();
    setStill(null);
    shown.value = false;
  }

  return { shown, still, stillUrl, open, snap, close };
}
