// Materials attached to a booking (预约材料) for the staff's pre-review: picked in the booking
// form (sent once the booking exists) or added to a booking afterwards, until check-in (the
// server's CHANGEABLE states). Each file is checked here against the limits the server
// announces with the bookings (`BookingsOut.material_limits`: size, count, types), so a file
// that would be refused is refused before it is sent, in the page language; the server checks
// the same again by the file's content. A sent file counts as received when the SHA-256 the
// server stored equals the one computed here. A file staff marked as needing replacing (the
// per-file pre-review) is replaced during pre-review, with the same checks. REST:
// appointment_attach, appointment_replace_material (opening one is
// core/documents.ts, fetchBookingMaterial, shared with the staff's pages).
import { defineStore } from 'pinia';
import { markRaw, ref, shallowRef } from 'vue';
import type { BookingOut, MaterialLimitsOut, MaterialOut } from '@/contract';
import { api } from '@/core/api';
import { sha256Hex } from '@/core/documents';
import { ApiError, asApiError } from '@/core/errors';
import { vtax } from '@/core/hook';

/** Booking states that still take materials (vtax/appointments/states.py, CHANGEABLE). */
export const TAKES_MATERIALS = ['requested', 'pre_review', 'approved', 'reminded'] as const;
export type MaterialSource = 'file' | 'camera';

const BY_EXTENSION: Record<string, string> = {
  pdf: 'application/pdf',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
};

export function takesMaterials(b: Pick<BookingOut, 'state'>): boolean {
  return (TAKES_MATERIALS as readonly string[]).includes(b.state);
}

/** Booking states in which a file staff marked is replaced (states.py, MATERIALS_REVIEWABLE). */
export const REPLACES_MATERIALS = ['requested', 'pre_review'] as const;

/** The taxpayer may replace this file now: staff marked it, the booking is in pre-review. */
export function canReplace(b: Pick<BookingOut, 'state'>, m: Pick<MaterialOut, 'review'>): boolean {
  return m.review === 'needs_replacing' && (REPLACES_MATERIALS as readonly string[]).includes(b.state);
}

/** A file of `after` is marked as needing replacing that was not so in `before`. */
export function newlyToReplace(before: Pick<BookingOut, 'materials'> | undefined, after: Pick<BookingOut, 'materials'>): boolean {
  return after.materials.some((m) => {
    if (m.review !== 'needs_replacing') return false;
    const was = before?.materials.find((x) => x.id === m.id);
    return !was || was.review !== 'needs_replacing' || was.revision !== m.revision;
  });
}

/** The file's type as the browser names it, else by its extension ('' when unknown). */
export function mediaTypeOf(f: { name: string; type: string }): string {
  if (f.type) return f.type === 'image/jpg' ? 'image/jpeg' : f.type;
  const ext = f.name.toLowerCase().split('.').pop() || '';
  return BY_EXTENSION[ext] || '';
}

/** Refuse what the server would refuse: empty, too large, not a PDF or picture, one too many.
 * `count`: the booking's materials already there or on their way. */
export function checkMaterial(f: { name: string; size: number; type: string }, limits: MaterialLimitsOut | null, count: number): void {
  if (f.size <= 0) throw new ApiError('materialEmpty');
  if (!limits) return; // not known yet: the server decides
  if (!limits.media_types.includes(mediaTypeOf(f))) throw new ApiError('materialType');
  if (f.size > limits.max_bytes) throw new ApiError('materialTooLarge');
  if (count >= limits.max_count) throw new ApiError('too_many_materials');
}

/** A file picked in the booking form, sent once the booking is made. */
export interface PendingMaterial {
  key: number;
  blob: Blob;
  name: string;
  source: MaterialSource;
}

/** A file on its way to a booking, or refused (kept for "try again"). */
export interface MaterialSend extends PendingMaterial {
  bookingId: string;
  state: 'sending' | 'failed';
  error: ApiError | null;
}

export const useBookingMaterials = defineStore('bookingMaterials', () => {
  const limits = shallowRef<MaterialLimitsOut | null>(null);
  const pending = ref<PendingMaterial[]>([]);
  const sends = ref<MaterialSend[]>([]);
  /** ids of materials whose stored SHA-256 equals the one computed before sending */
  const received = ref<string[]>([]);
  /** the form's last refusal (a file that was not added) */
  const formError = shallowRef<ApiError | null>(null);
  let keys = 0;

  function expose(): void {
    vtax.bookingMaterials = {
      pending: pending.value.map((p) => ({ name: p.name, source: p.source, size: p.blob.size })),
      sends: sends.value.map((s) => ({ bookingId: s.bookingId, name: s.name, state: s.state, error: s.error?.code || null })),
      received: [...received.value],
    };
  }

  function sendsOf(bookingId: string): MaterialSend[] {
    return sends.value.filter((s) => s.bookingId === bookingId);
  }

  /** Pick a file for the booking not made yet (checked now; sent by `sendPending`). */
  function addPending(blob: Blob, name: string, source: MaterialSource): void {
    formError.value = null;
    try {
      checkMaterial({ name, size: blob.size, type: blob.type }, limits.value, pending.value.length);
    } catch (e) {
      formError.value = asApiError(e);
      throw e;
    }
    // a Blob stays raw: a reactive proxy of one is not a Blob to FormData
    pending.value.push({ key: ++keys, blob: markRaw(blob), name, source });
    expose();
  }

  function removePending(key: number): void {
    pending.value = pending.value.filter((p) => p.key !== key);
    expose();
  }

  async function send(token: string | null, booking: BookingOut, item: MaterialSend, onSaved: (m: MaterialOut) => void): Promise<void> {
    item.state = 'sending';
    item.error = null;
    expose();
    try {
      const local = await sha256Hex(await item.blob.arrayBuffer());
      const form = new FormData();
      // a File of the name to show (a camera still is a bare Blob)
      form.append('file', new File([item.blob], item.name, { type: item.blob.type }), item.name);
      const m = await api('post', '/api/appointments/{booking_id}/materials', { token, path: { booking_id: booking.id }, body: form });
      if (m.sha256.toLowerCase() !== local) throw new ApiError('hash_mismatch');
      received.value = [...received.value, m.id];
      sends.value = sends.value.filter((s) => s.key !== item.key);
      onSaved(m);
      expose();
    } catch (e) {
      const found = sends.value.find((s) => s.key === item.key);
      if (found) {
        found.state = 'failed';
        found.error = asApiError(e);
      }
      expose();
      throw e;
    }
  }

  /** Attach a file or a photo to an existing booking (checked here first). */
  async function attach(token: string | null, booking: BookingOut, blob: Blob, name: string, source: MaterialSource, onSaved: (m: MaterialOut) => void): Promise<void> {
    if (!takesMaterials(booking)) throw new ApiError('invalid_state');
    const onTheWay = sendsOf(booking.id).filter((s) => s.state === 'sending').length;
    checkMaterial({ name, size: blob.size, type: blob.type }, limits.value, booking.materials.length + onTheWay);
    sends.value.push({ key: ++keys, blob: markRaw(blob), name, source, bookingId: booking.id, state: 'sending', error: null });
    const item = sends.value[sends.value.length - 1] as MaterialSend;
    await send(token, booking, item, onSaved);
  }

  /** Replace a file staff marked as needing replacing: the same checks as a new file (the
   * count stays), sent to appointment_replace_material, received when the SHA-256 matches. */
  async function replace(token: string | null, booking: BookingOut, m: MaterialOut, blob: Blob, name: string, onSaved: (m: MaterialOut) => void): Promise<void> {
    if (!canReplace(booking, m)) throw new ApiError('invalid_state');
    checkMaterial({ name, size: blob.size, type: blob.type }, limits.value, 0);
    const local = await sha256Hex(await blob.arrayBuffer());
    const form = new FormData();
    form.append('file', new File([blob], name, { type: blob.type }), name);
    const out = await api('post', '/api/appointments/{booking_id}/materials/{material_id}/replace', {
      token,
      path: { booking_id: booking.id, material_id: m.id },
      body: form,
    });
    if (out.sha256.toLowerCase() !== local) throw new ApiError('hash_mismatch');
    received.value = [...received.value.filter((id) => id !== out.id), out.id];
    onSaved(out);
    expose();
  }

  /** After booking: send the files picked in the form; a refused one stays on the booking
   * with its reason and "try again" (the booking itself is made). */
  async function sendPending(token: string | null, booking: BookingOut, onSaved: (m: MaterialOut) => void): Promise<ApiError | null> {
    const picked = pending.value;
    pending.value = [];
    let first: ApiError | null = null;
    for (const p of picked) {
      sends.value.push({ ...p, blob: markRaw(p.blob), bookingId: booking.id, state: 'sending', error: null });
      const item = sends.value[sends.value.length - 1] as MaterialSend;
      try {
        await send(token, booking, item, onSaved);
      } catch (e) {
        first = first || asApiError(e);
      }
    }
    expose();
    return first;
  }

  async function retry(token: string | null, booking: BookingOut, key: number, onSaved: (m: MaterialOut) => void): Promise<void> {
    const item = sends.value.find((s) => s.key === key && s.bookingId === booking.id);
    if (!item) return;
    if (!takesMaterials(booking)) throw new ApiError('invalid_state');
    await send(token, booking, item, onSaved);
  }

  function dismiss(key: number): void {
    sends.value = sends.value.filter((s) => s.key !== key);
    expose();
  }

  function reset(): void {
    pending.value = [];
    sends.value = [];
    received.value = [];
    formError.value = null;
    expose();
  }

  return { limits, pending, sends, received, formError, sendsOf, addPending, removePending, attach, replace, sendPending, retry, dismiss, reset };
});
