import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPinia, setActivePinia } from 'pinia';
import { checkMaterial, mediaTypeOf, takesMaterials, useBookingMaterials } from '@/taxpayer/bookingMaterials';
import { useBooking } from '@/taxpayer/booking';
import { useTaxpayer } from '@/taxpayer/store';
import { fetchBookingMaterial, sha256Hex } from '@/core/documents';
import { ApiError } from '@/core/errors';
import type { MaterialOut } from '@/contract';
import { authRoute, signInBySms } from './fakes';

const LIMITS = { max_bytes: 1000, max_count: 3, media_types: ['application/pdf', 'image/png', 'image/jpeg', 'image/webp'] };
const CATALOG = {
  version: 1,
  timezone: 'Asia/Shanghai',
  categories: [{ code: 'invoices', name: { en: 'Invoices' }, items: [] }],
  languages: [{ code: 'zh-CN', name: { en: 'Mandarin' } }],
  channels: [{ code: 'web', name: { en: 'Web' } }],
};
const SLOTS = {
  timezone: 'Asia/Shanghai',
  days: ['2026-12-07'],
  provisional_days: [],
  slots: [{ id: 'invoices~zh-CN~20261207T0900', category: 'invoices', language: 'zh-CN', starts_at: '2026-12-07T09:00:00+08:00', ends_at: '2026-12-07T09:30:00+08:00', capacity: 2, remaining: 2 }],
};
type Material = MaterialOut;
const UNREVIEWED = { review: 'pending', review_reason: null, review_note: null, reviewed_at: null, revision: 1, replaced_at: null } as const;
function booking(id: string, state = 'requested', materials: Material[] = []) {
  return { id, state, slot_id: 'invoices~zh-CN~20261207T0900', category: 'invoices', language: 'zh-CN', channel: 'web', starts_at: '2026-12-07T09:00:00+08:00', ends_at: '2026-12-07T09:30:00+08:00', day: '2026-12-07', items: [], question: 'q', locale: 'en', created_at: 'x', materials };
}
function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}
const PDF = () => new Blob(['%PDF-1.4 test'], { type: 'application/pdf' });
const JPEG = () => new Blob([new Uint8Array([0xff, 0xd8, 0xff, 1, 2, 3])], { type: 'image/jpeg' });

let stored: Material[] = [];
let uploads: { url: string; name: string; size: number }[] = [];
let refuseNext: string | null = null;
let corrupt = false;
let bytes: Record<string, ArrayBuffer> = {};

beforeEach(() => {
  setActivePinia(createPinia());
  stored = [];
  uploads = [];
  refuseNext = null;
  corrupt = false;
  bytes = {};
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      const m = url.match(/^\/api\/appointments\/(\w+)\/materials$/);
      if (m && init?.method === 'POST') {
        const file = (init.body as FormData).get('file') as File;
        uploads.push({ url, name: file.name, size: file.size });
        if (refuseNext) {
          const code = refuseNext;
          refuseNext = null;
          return json({ error: { code, message: 'no' } }, code === 'unsupported_media_type' ? 415 : 409);
        }
        const buf = await file.arrayBuffer();
        const id = `m${uploads.length}`;
        bytes[id] = buf;
        const out = { id, filename: file.name, media_type: file.type, size_bytes: file.size, sha256: corrupt ? '0'.repeat(64) : await sha256Hex(buf), created_at: '2026-12-03T10:00:00+08:00', ...UNREVIEWED };
        stored.push(out);
        return json(out, 201);
      }
      const g = url.match(/^\/api\/appointments\/(\w+)\/materials\/(\w+)$/);
      if (g) {
        const buf = bytes[g[2] as string] as ArrayBuffer;
        return new Response(buf, { status: 200, headers: { 'Content-Type': 'application/pdf', 'X-Content-SHA256': await sha256Hex(buf) } });
      }
      const auth = authRoute(url, init);
      if (auth) return auth;
      if (url === '/api/catalog') return json(CATALOG);
      if (url.startsWith('/api/appointments/slots')) return json(SLOTS);
      if (url === '/api/appointments' && init?.method === 'POST') return json(booking('b1'), 201);
      if (url === '/api/appointments') return json({ bookings: [booking('b1', 'requested', [...stored])], material_limits: LIMITS });
      return json({ error: { code: 'not_found', message: url } }, 404);
    }),
  );
});
afterEach(() => vi.unstubAllGlobals());

async function opened() {
  const tp = useTaxpayer();
  await signInBySms(tp);
  (tp.call as unknown as Record<string, unknown>).ensureSocket = async () => ({});
  const b = useBooking();
  await b.open('invoices');
  return { tp, b, mats: useBookingMaterials() };
}

describe('the checks the server makes, before sending', () => {
  it('knows a type by its name when the browser gives none', () => {
    expect(mediaTypeOf({ name: 'scan.PDF', type: '' })).toBe('application/pdf');
    expect(mediaTypeOf({ name: 'a.jpeg', type: '' })).toBe('image/jpeg');
    expect(mediaTypeOf({ name: 'a.docx', type: '' })).toBe('');
    expect(mediaTypeOf({ name: 'x', type: 'image/png' })).toBe('image/png');
  });
  it('refuses empty, too large, other types and one too many', () => {
    const code = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return (e as ApiError).code;
      }
      return 'ok';
    };
    expect(code(() => checkMaterial({ name: 'a.pdf', size: 0, type: 'application/pdf' }, LIMITS, 0))).toBe('materialEmpty');
    expect(code(() => checkMaterial({ name: 'a.pdf', size: 1001, type: 'application/pdf' }, LIMITS, 0))).toBe('materialTooLarge');
    expect(code(() => checkMaterial({ name: 'a.pdf', size: 1000, type: 'application/pdf' }, LIMITS, 0))).toBe('ok');
    expect(code(() => checkMaterial({ name: 'a.gif', size: 10, type: 'image/gif' }, LIMITS, 0))).toBe('materialType');
    expect(code(() => checkMaterial({ name: 'a.png', size: 10, type: 'image/png' }, LIMITS, 3))).toBe('too_many_materials');
    expect(code(() => checkMaterial({ name: 'a.gif', size: 10, type: 'image/gif' }, null, 9))).toBe('ok'); // the server decides
  });
  it('takes materials until check-in', () => {
    expect(takesMaterials({ state: 'approved' })).toBe(true);
    expect(takesMaterials({ state: 'reminded' })).toBe(true);
    expect(takesMaterials({ state: 'checked_in' })).toBe(false);
    expect(takesMaterials({ state: 'cancelled' })).toBe(false);
  });
});

describe('materials of a booking', () => {
  it('reads the limits with the bookings and sends the form\'s files once the booking is made', async () => {
    const { b, mats } = await opened();
    expect(mats.limits).toEqual(LIMITS);
    mats.addPending(PDF(), 'tax-return.pdf', 'file');
    mats.addPending(JPEG(), 'photo-1.jpg', 'camera');
    expect(() => mats.addPending(new Blob(['x'], { type: 'text/plain' }), 'notes.txt', 'file')).toThrow();
    expect(mats.formError?.code).toBe('materialType');
    expect(mats.pending).toHaveLength(2);
    expect(uploads).toHaveLength(0); // nothing is sent before the booking exists
    b.form.slotId = 'invoices~zh-CN~20261207T0900';
    b.form.question = 'invoices';
    await b.book();
    expect(uploads.map((u) => [u.url, u.name])).toEqual([
      ['/api/appointments/b1/materials', 'tax-return.pdf'],
      ['/api/appointments/b1/materials', 'photo-1.jpg'],
    ]);
    expect(mats.pending).toHaveLength(0);
    expect(mats.received).toEqual(['m1', 'm2']);
    expect(b.bookings[0]?.materials.map((m) => m.filename)).toEqual(['tax-return.pdf', 'photo-1.jpg']);
  });

  it('keeps the booking when a file is refused, with the reason and a retry', async () => {
    const { b, mats } = await opened();
    mats.addPending(PDF(), 'a.pdf', 'file');
    refuseNext = 'unsupported_media_type'; // the content is not what the name says
    b.form.slotId = 'invoices~zh-CN~20261207T0900';
    b.form.question = 'q';
    await expect(b.book()).rejects.toMatchObject({ code: 'unsupported_media_type' });
    expect(b.saved?.id).toBe('b1');
    const failed = mats.sendsOf('b1');
    expect(failed.map((s) => [s.name, s.state, s.error?.code])).toEqual([['a.pdf', 'failed', 'unsupported_media_type']]);
    await b.retryMaterial(b.bookings[0] as never, (failed[0] as { key: number }).key);
    expect(mats.sendsOf('b1')).toHaveLength(0);
    expect(b.bookings[0]?.materials.map((m) => m.filename)).toEqual(['a.pdf']);
  });

  it('attaches to a booking afterwards, counts what is there, refuses after check-in', async () => {
    const { b, mats } = await opened();
    const bk = b.bookings[0] as never as ReturnType<typeof booking>;
    await b.attach(bk as never, PDF(), 'one.pdf', 'file');
    await b.attach(b.bookings[0] as never, PDF(), 'two.pdf', 'file');
    await b.attach(b.bookings[0] as never, JPEG(), 'three.jpg', 'camera');
    await expect(b.attach(b.bookings[0] as never, PDF(), 'four.pdf', 'file')).rejects.toMatchObject({ code: 'too_many_materials' });
    expect(uploads).toHaveLength(3);
    await expect(b.attach({ ...booking('b1', 'checked_in') } as never, PDF(), 'late.pdf', 'file')).rejects.toMatchObject({ code: 'invalid_state' });
    expect(uploads).toHaveLength(3);
    expect(mats.received).toHaveLength(3);
  });

  it('a stored SHA-256 that differs from the page\'s is not "received"', async () => {
    const { b, mats } = await opened();
    corrupt = true;
    await expect(b.attach(b.bookings[0] as never, PDF(), 'x.pdf', 'file')).rejects.toMatchObject({ code: 'hash_mismatch' });
    expect(mats.received).toHaveLength(0);
    expect(mats.sendsOf('b1')[0]?.state).toBe('failed');
  });

  it('opens a material checked against its SHA-256, and refuses one that does not match', async () => {
    const { b } = await opened();
    await b.attach(b.bookings[0] as never, PDF(), 'x.pdf', 'file');
    const m = stored[0] as Material;
    const blob = await fetchBookingMaterial('tok', 'b1', m);
    expect(await blob.text()).toBe('%PDF-1.4 test');
    await expect(fetchBookingMaterial('tok', 'b1', { ...m, sha256: 'f'.repeat(64) })).rejects.toMatchObject({ code: 'hash_mismatch' });
  });
});
