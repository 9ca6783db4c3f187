// Delivered documents: download with a SHA-256 check, then hand the file to the browser.
import type { DeliveryView, MaterialOut } from '@/contract';
import { apiBlob, fetchOk } from './api';
import { ApiError } from './errors';

/** The hex SHA-256 of some bytes (what the server's `X-Content-SHA256` and `sha256` say). */
export async function sha256Hex(buffer: ArrayBuffer): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** One JPEG frame of a playing video element (a photo of a paper document from the camera,
 * in the call and for a booking); `cameraNotReady` before its first frame, `camera` when the
 * browser cannot draw it (both in the pages' error texts). */
export function grabFrame(video: HTMLVideoElement): Promise<Blob> {
  return new Promise((resolve, reject) => {
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (!w || !h) {
      reject(new ApiError('cameraNotReady', 'the camera has no picture yet'));
      return;
    }
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d');
    if (!ctx) {
      reject(new ApiError('camera', 'no canvas'));
      return;
    }
    ctx.drawImage(video, 0, 0, w, h);
    canvas.toBlob((b) => (b ? resolve(b) : reject(new ApiError('camera', 'no picture'))), 'image/jpeg', 0.9);
  });
}

/** Let the browser save `blob` as `filename`. */
export function saveFile(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename || 'download';
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** Download, check the SHA-256 against the server's, save; resolves with the hex SHA-256. */
export async function downloadDocument(token: string, d: Pick<DeliveryView, 'id' | 'sha256' | 'media_type' | 'filename'>): Promise<string> {
  const res = await fetchOk('GET', `/api/deliveries/${encodeURIComponent(d.id)}/content`, { token });
  const buffer = await res.arrayBuffer();
  const sha = await sha256Hex(buffer);
  const expected = res.headers.get('X-Content-SHA256') || d.sha256;
  if (expected && sha !== expected.toLowerCase()) throw new ApiError('hash_mismatch');
  saveFile(new Blob([buffer], { type: d.media_type }), d.filename);
  return sha;
}

/** A booking's material checked against its SHA-256 (the staff's and the taxpayer's "open"). */
export async function fetchBookingMaterial(token: string | null, bookingId: string, m: MaterialOut): Promise<Blob> {
  const got = await apiBlob('/api/appointments/{booking_id}/materials/{material_id}', { token, path: { booking_id: bookingId, material_id: m.id } });
  const sha = await sha256Hex(got.buffer);
  const expected = (got.sha256 || m.sha256).toLowerCase();
  if (sha !== expected || sha !== m.sha256.toLowerCase()) throw new ApiError('hash_mismatch');
  return new Blob([got.buffer], { type: m.media_type });
}
