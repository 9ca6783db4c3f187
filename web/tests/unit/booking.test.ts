import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPinia, setActivePinia } from 'pinia';
import { isActive, mayCheckIn, slotsOfDay, useBooking } from '@/taxpayer/booking';
import { usePreReview } from '@/agent/prereview';
import { useTaxpayer } from '@/taxpayer/store';
import { authRoute, FakeSocket, signInBySms } from './fakes';

const CATALOG = {
  version: 1,
  timezone: 'Asia/Shanghai',
  categories: [{ code: 'invoices', name: { en: 'Invoices' }, items: [{ code: 'invoices.invoice_collection', name: { en: 'Collection' } }] }],
  languages: [{ code: 'zh-CN', name: { en: 'Mandarin' } }],
  channels: [{ code: 'web', name: { en: 'Web' } }],
};
function slot(id: string, remaining: number) {
  return { id, category: 'invoices', language: 'zh-CN', starts_at: '2026-12-04T09:00:00+08:00', ends_at: '2026-12-04T09:30:00+08:00', capacity: 2, remaining };
}
const SLOTS = {
  timezone: 'Asia/Shanghai',
  days: ['2026-12-04', '2026-12-07'],
  provisional_days: [],
  slots: [slot('invoices~zh-CN~20261204T0900', 0), slot('invoices~zh-CN~20261207T0900', 2), slot('invoices~zh-CN~20261207T0930', 1)],
};
function booking(id: string, state: string) {
  return { id, state, slot_id: 'invoices~zh-CN~20261207T0900', category: 'invoices', language: 'zh-CN', channel: 'web', starts_at: '2026-12-07T09:00:00+08:00', ends_at: '2026-12-07T09:30:00+08:00', day: '2026-12-07', items: [], question: 'q', locale: 'en', created_at: 'x', materials: [] };
}
function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

let calls: { url: string; method: string; body: unknown }[] = [];
let socket: FakeSocket;

beforeEach(() => {
  setActivePinia(createPinia());
  calls = [];
  socket = new FakeSocket();
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      const body = init?.body ? JSON.parse(String(init.body)) : null;
      calls.push({ url, method: init?.method || 'GET', body });
      const auth = authRoute(url, init);
      if (auth) return auth;
      if (url === '/api/catalog') return json(CATALOG);
      if (url.startsWith('/api/deliveries')) return json({ deliveries: [], next_before: null });
      if (url.startsWith('/api/appointments/slots')) return json(SLOTS);
      if (url === '/api/appointments' && init?.method === 'POST') return json(booking('b1', 'requested'), 201);
      if (url === '/api/appointments') return json({ bookings: [booking('b1', 'requested')] });
      if (url === '/api/appointments/b1/reschedule') return json({ ...booking('b2', 'requested'), rescheduled_from: 'b1' });
      if (url === '/api/appointments/b1/cancel') return json({ error: { code: 'cancellation_closed', message: 'too late' } }, 409);
      if (url.startsWith('/api/appointments/review')) return json({ bookings: [{ ...booking('b1', 'requested'), taxpayer_id: 'tp1', strikes: 3, blocked: true }] });
      if (url === '/api/appointments/b1/review') return json({ ...booking('b1', body.decision), taxpayer_id: 'tp1', strikes: 0, blocked: false });
      if (url === '/api/appointments/strikes/tp1/lift') return json({ taxpayer_id: 'tp1', month: '2026-12', strikes: 3, forgiven: 3, limit: 3, blocked: false });
      return json({ error: { code: 'not_found', message: url } }, 404);
    }),
  );
});
afterEach(() => vi.unstubAllGlobals());

async function signedIn() {
  const tp = useTaxpayer();
  await signInBySms(tp);
  const call = tp.call as unknown as Record<string, unknown>;
  call.ensureSocket = async () => socket;
  call.preview = vi.fn();
  call.releasePreview = vi.fn();
  call.socket = { value: socket };
  return { tp, b: useBooking() };
}

describe('booking helpers', () => {
  it('knows the active and check-in states and the slots of a day', () => {
    expect(isActive({ state: 'approved' })).toBe(true);
    expect(isActive({ state: 'rescheduled' })).toBe(false);
    expect(mayCheckIn({ state: 'reminded' })).toBe(true);
    expect(mayCheckIn({ state: 'requested' })).toBe(false);
    expect(slotsOfDay(SLOTS.slots, '2026-12-07').map((s) => s.id)).toEqual(['invoices~zh-CN~20261207T0900', 'invoices~zh-CN~20261207T0930']);
  });
});

describe('the booking store', () => {
  it('opens on the first day with room, books with the business and a phone', async () => {
    const { tp, b } = await signedIn();
    await tp.action(() => b.open('invoices'));
    expect(tp.step).toBe('bookings');
    expect(b.form.day).toBe('2026-12-07'); // the 4th is full
    const q = calls.find((c) => c.url.startsWith('/api/appointments/slots'));
    expect(q?.url).toContain('category=invoices');
    await tp.action(b.book);
    expect(tp.error?.code).toBe('needSlot');
    b.form.slotId = 'invoices~zh-CN~20261207T0900';
    b.form.items = ['invoices.invoice_collection'];
    b.form.question = 'collect invoices';
    b.form.phone = '12345';
    await tp.action(b.book);
    expect(tp.error?.code).toBe('badPhone');
    b.form.phone = '+86 138 0013 8000';
    await tp.action(b.book);
    expect(tp.error).toBeNull();
    const post = calls.find((c) => c.url === '/api/appointments' && c.method === 'POST');
    expect(post?.body).toMatchObject({ slot_id: 'invoices~zh-CN~20261207T0900', items: ['invoices.invoice_collection'], question: 'collect invoices', phone: '+8613800138000', channel: 'web' });
    expect(b.saved?.id).toBe('b1');
    expect(b.form.question).toBe('');
    expect(b.form.items).toEqual([]);
  });

  it('shows the slots of the latest choice when an older answer arrives last', async () => {
    const { tp, b } = await signedIn();
    await tp.action(() => b.open('invoices'));
    // Two changes in a row: the first answer (another language's slots) is held back and
    // arrives after the second.
    let release: (r: Response) => void = () => {};
    const held = new Promise<Response>((r) => (release = r));
    const real = globalThis.fetch;
    const other = { ...SLOTS, slots: [{ ...slot('invoices~en~20261207T0900', 2), language: 'en' }] };
    let n = 0;
    vi.stubGlobal('fetch', (url: string, init?: RequestInit) =>
      url.startsWith('/api/appointments/slots') && n++ === 0 ? held : real(url, init),
    );
    b.form.language = 'en';
    const first = b.loadSlots();
    b.form.language = 'zh-CN';
    await b.loadSlots();
    release(json(other));
    await first;
    expect(b.slots?.slots.map((s) => s.id)).toContain('invoices~zh-CN~20261207T0900');
    expect(b.slots?.slots.map((s) => s.id)).not.toContain('invoices~en~20261207T0900');
  });

  it('moves a booking with the reschedule route; a refusal is shown by its code', async () => {
    const { tp, b } = await signedIn();
    await tp.action(() => b.open('invoices'));
    await tp.action(() => b.cancel(b.bookings[0]!));
    expect(tp.error?.code).toBe('cancellation_closed');
    await tp.action(() => b.startMove(b.bookings[0]!));
    expect(b.moving?.id).toBe('b1');
    b.form.slotId = 'invoices~zh-CN~20261207T0930';
    await tp.action(b.book);
    const move = calls.find((c) => c.url === '/api/appointments/b1/reschedule');
    expect(move?.body).toEqual({ slot_id: 'invoices~zh-CN~20261207T0930' });
    expect(tp.error).toBeNull();
    expect(b.moving).toBeNull();
    expect(b.saved?.id).toBe('b2');
  });

  it('checks in into the queue and hears pushes about its bookings', async () => {
    const { tp, b } = await signedIn();
    await tp.action(() => b.open('invoices'));
    socket.answer = (event) =>
      event === 'appointment:check_in'
        ? { ok: true, booking: booking('b1', 'queued'), verdict: 'on_time', joined_at: '2026-12-07T09:00:00+08:00', ticket_id: 't1', position: 0, eta_s: 30 }
        : { ok: true };
    await tp.action(() => b.checkIn(b.bookings[0]!));
    expect(tp.error).toBeNull();
    expect(tp.state).toBe('queued');
    expect(tp.ticketId).toBe('t1');
    expect(tp.notice?.key).toBe('booking.checkedInOnTime');
    expect(b.bookings[0]?.state).toBe('queued');
    socket.fire('appointment:update', { booking: booking('b1', 'served') });
    expect(b.bookings[0]?.state).toBe('served');
    expect(tp.notice?.key).toBe('booking.update.served');
    socket.fire('callback:turn', { ticket_id: 'other', window_ends_at: 'x' });
    expect(b.callbackTurn).toBeNull(); // not this page's ticket
    socket.fire('callback:turn', { ticket_id: 't1', window_ends_at: '2026-12-07T09:02:00+08:00' });
    expect(b.callbackTurn).toEqual({ ticketId: 't1', until: '2026-12-07T09:02:00+08:00' });
  });

  it('a callback keeps the place; a refusal of a short wait says so', async () => {
    const { tp, b } = await signedIn();
    tp.enterQueue({ ticket_id: 't1', position: 3, eta_s: 600 });
    socket.answer = () => ({ ok: false, error: { code: 'invalid_state', message: 'short wait' } });
    await tp.action(() => b.requestCallback());
    expect(tp.error?.code).toBe('callbackNotOffered');
    socket.answer = (event, p) =>
      event === 'callback:request' ? { ok: true, ticket_id: p.ticket_id, state: 'waiting', attempts: 0 } : { ok: true, ticket_id: 't1', position: 0, eta_s: 0 };
    await tp.action(() => b.requestCallback('+85291234567'));
    expect(socket.emitted.at(-1)?.payload).toMatchObject({ ticket_id: 't1', phone: '+85291234567' });
    expect(b.callback?.state).toBe('waiting');
    b.callbackTurn = { ticketId: 't1', until: '2026-12-07T09:02:00+08:00' };
    await tp.action(b.comeBack);
    expect(socket.emitted.at(-1)).toEqual({ event: 'queue:rejoin', payload: { ticket_id: 't1' } });
    expect(b.callbackTurn).toBeNull();
    expect(tp.state).toBe('queued');
  });
});

describe('the pre-review store', () => {
  it('lists, refuses a decision without its reason or route, decides, lifts a block', async () => {
    const p = usePreReview();
    await p.load('stafftok');
    expect(p.bookings[0]?.blocked).toBe(true);
    const b = p.bookings[0]!;
    await expect(p.decide(b, 'rejected')).rejects.toMatchObject({ code: 'needReason' });
    await expect(p.decide(b, 'redirected_online')).rejects.toMatchObject({ code: 'needRoute' });
    p.draft(b.id).route = ' https://etax.example/ ';
    await p.decide(b, 'redirected_online');
    const review = calls.find((c) => c.url === '/api/appointments/b1/review');
    expect(review?.body).toEqual({ decision: 'redirected_online', note: '', route: 'https://etax.example/' });
    expect(p.decided).toEqual({ id: 'b1', decision: 'redirected_online' });
    await expect(p.liftBlock('tp1', ' ')).rejects.toMatchObject({ code: 'needReason' });
    await p.liftBlock('tp1', 'phoned, was ill');
    expect(p.strikes.tp1?.blocked).toBe(false);
  });
});
