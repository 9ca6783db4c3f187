// Appointments (预约) and callbacks, the taxpayer's side: book a slot (category, language, day,
// slot, business items, question), see the bookings and their states (pre-review, approved,
// sent to an online service, rejected with the reason ...), cancel or move one within the
// rules, check in from shortly before the time (`appointment:check_in`: the ticket joins the
// queue and the taxpayer store's queue step takes over), and, while waiting, ask to be told
// when the turn is near instead of watching the page (`callback:request`; the place is kept).
// Materials for the pre-review (a file or a photo, in the form and on a booking until check-in)
// are bookingMaterials.ts. REST and events are the contract's (vtax/contract/appointments.py).
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import type { BookingOut, CallbackOut, MaterialOut, SlotOut, SlotsOut, paths } from '@/contract';
import { api } from '@/core/api';
import { ApiError } from '@/core/errors';
import { vtax } from '@/core/hook';
import { emitAck } from '@/core/socket';
import { newlyToReplace, useBookingMaterials, type MaterialSource } from './bookingMaterials';
import { useTaxpayer } from './store';

type PageLocale = 'zh-CN' | 'zh-HK' | 'en' | 'pt';
type SlotQuery = paths['/api/appointments/slots']['get']['query'];

/** Bookings that still hold their time (the taxpayer may cancel, move or check in). */
export const ACTIVE = ['requested', 'pre_review', 'approved', 'reminded', 'checked_in', 'queued'] as const;
/** Bookings the taxpayer may check in with (approved, or reminded of it). */
export const CHECK_IN = ['approved', 'reminded', 'checked_in'] as const;
const PHONE = /^\+[1-9][0-9]{6,14}$/;

export function isActive(b: Pick<BookingOut, 'state'>): boolean {
  return (ACTIVE as readonly string[]).includes(b.state);
}
export function mayCheckIn(b: Pick<BookingOut, 'state'>): boolean {
  return (CHECK_IN as readonly string[]).includes(b.state);
}
/** Slots of one day (YYYY-MM-DD in the service zone: the slot id carries it). */
export function slotsOfDay(slots: SlotOut[], day: string): SlotOut[] {
  const compact = day.replace(/-/g, '');
  return slots.filter((s) => s.id.split('~')[2]?.startsWith(compact));
}

export const useBooking = defineStore('booking', () => {
  const tp = useTaxpayer();
  const mats = useBookingMaterials();
  const bookings = ref<BookingOut[]>([]);
  const slots = shallowRef<SlotsOut | null>(null);
  const form = ref({ category: '', language: '', day: '', slotId: '', items: [] as string[], question: '', phone: '' });
  /** moving this booking to the picked slot instead of booking anew */
  const moving = ref<BookingOut | null>(null);
  const saved = ref<BookingOut | null>(null);
  const callback = shallowRef<CallbackOut | null>(null);
  const callbackTurn = ref<{ ticketId: string; until: string } | null>(null);

  const daySlots = computed(() => (slots.value ? slotsOfDay(slots.value.slots, form.value.day) : []));
  const items = computed(() => tp.catalog?.categories.find((c) => c.code === form.value.category)?.items || []);
  const active = computed(() => bookings.value.filter(isActive));

  tp.onWire((socket) => {
    socket.on('appointment:update', (msg) => {
      if (!msg || !msg.booking) return;
      const before = bookings.value.find((x) => x.id === msg.booking.id);
      upsert(msg.booking);
      vtax.lastBookingUpdate = msg.booking;
      // a file staff newly marked as needing replacing says so; else the state's notice
      tp.notice = { key: newlyToReplace(before, msg.booking) ? 'bookingMaterials.review.notice' : `booking.update.${msg.booking.state}` };
    });
    socket.on('callback:turn', (msg) => {
      if (!msg || msg.ticket_id !== tp.ticketId) return;
      callbackTurn.value = { ticketId: msg.ticket_id, until: msg.window_ends_at };
      vtax.callbackTurn = msg;
    });
  });
  watch(
    () => tp.token,
    (tok) => {
      if (!tok) {
        bookings.value = [];
        saved.value = null;
        moving.value = null;
        mats.reset();
      }
    },
  );
  // A ticket that is no longer waiting (served, left) has no callback any more.
  watch(
    () => tp.ticketId,
    (id) => {
      if (!id || (callback.value && callback.value.ticket_id !== id)) {
        callback.value = null;
        callbackTurn.value = null;
      }
    },
  );

  function upsert(b: BookingOut): void {
    const i = bookings.value.findIndex((x) => x.id === b.id);
    if (i >= 0) bookings.value[i] = b;
    else bookings.value.unshift(b);
  }

  /** Open the appointments step: my bookings and the slots of the chosen category. */
  async function open(category?: string): Promise<void> {
    const c = tp.catalog || (await tp.loadCatalog());
    form.value.category = category && c.categories.some((x) => x.code === category) ? category : form.value.category || tp.form.category;
    form.value.language = form.value.language || tp.form.language;
    saved.value = null;
    moving.value = null;
    tp.step = 'bookings';
    tp.status = { key: 'booking.status' };
    // the socket brings the pre-review's result and reminders while the page is open
    if (tp.token) tp.call.ensureSocket(tp.token).catch(() => {});
    await Promise.all([loadMine(), loadSlots()]);
  }

  async function loadMine(): Promise<void> {
    const data = await api('get', '/api/appointments', { token: tp.token });
    bookings.value = data.bookings || [];
    mats.limits = data.material_limits;
    vtax.bookings = bookings.value;
  }

  /** The latest slots request: the category or language can change while one is on its way
   * (each change asks again), and an older answer arriving last must not replace the list. */
  let slotsAsked = 0;

  async function loadSlots(): Promise<void> {
    if (!form.value.category || !form.value.language) return;
    const mine = ++slotsAsked;
    const data = await api('get', '/api/appointments/slots', {
      token: tp.token,
      query: { category: form.value.category, language: form.value.language } as SlotQuery,
    });
    if (mine !== slotsAsked) return;
    slots.value = data;
    const withRoom = data.days.filter((d) => slotsOfDay(data.slots, d).some((s) => s.remaining > 0));
    if (!withRoom.includes(form.value.day)) form.value.day = withRoom[0] || data.days[0] || '';
    if (!daySlots.value.some((s) => s.id === form.value.slotId && s.remaining > 0)) form.value.slotId = '';
    form.value.items = form.value.items.filter((i) => items.value.some((x) => x.code === i));
  }

  async function book(): Promise<void> {
    const f = form.value;
    if (!f.slotId) throw new ApiError('needSlot');
    if (moving.value) {
      const b = await api('post', '/api/appointments/{booking_id}/reschedule', {
        token: tp.token,
        path: { booking_id: moving.value.id },
        body: { slot_id: f.slotId },
      });
      moving.value = null;
      saved.value = b;
    } else {
      const question = f.question.trim();
      if (!question) throw new ApiError('needQuestion');
      const phone = f.phone.replace(/[\s-]/g, '');
      if (phone && !PHONE.test(phone)) throw new ApiError('badPhone');
      const b = await api('post', '/api/appointments', {
        token: tp.token,
        body: {
          slot_id: f.slotId,
          items: f.items,
          question,
          channel: tp.form.channel as 'web' | 'mobile' | 'kiosk',
          locale: (document.documentElement.lang || 'zh-CN') as PageLocale,
          ...(phone ? { phone } : {}),
        },
      });
      saved.value = b;
      f.question = '';
      f.items = [];
      upsert(b);
      // the booking is made; a file refused now stays on it with its reason and "try again"
      const refused = await mats.sendPending(tp.token, b, (m) => addMaterial(b.id, m));
      f.slotId = '';
      await Promise.all([loadMine(), loadSlots()]);
      if (refused) throw refused;
      return;
    }
    f.slotId = '';
    await Promise.all([loadMine(), loadSlots()]);
  }

  function addMaterial(bookingId: string, m: MaterialOut): void {
    const b = bookings.value.find((x) => x.id === bookingId);
    if (b && !b.materials.some((x) => x.id === m.id)) upsert({ ...b, materials: [...b.materials, m] });
    vtax.bookings = bookings.value;
  }

  /** Replace a file staff marked as needing replacing (during pre-review). */
  async function replaceMaterial(b: BookingOut, m: MaterialOut, blob: Blob, name: string): Promise<void> {
    await mats.replace(tp.token, b, m, blob, name, (out) => {
      const now = bookings.value.find((x) => x.id === b.id);
      if (now) upsert({ ...now, materials: now.materials.map((x) => (x.id === out.id ? out : x)) });
      vtax.bookings = bookings.value;
    });
  }

  /** A file or a photo for a booking already made (until check-in). */
  async function attach(b: BookingOut, blob: Blob, name: string, source: MaterialSource): Promise<void> {
    await mats.attach(tp.token, b, blob, name, source, (m) => addMaterial(b.id, m));
  }

  async function retryMaterial(b: BookingOut, key: number): Promise<void> {
    await mats.retry(tp.token, b, key, (m) => addMaterial(b.id, m));
  }

  async function cancel(b: BookingOut): Promise<void> {
    const out = await api('post', '/api/appointments/{booking_id}/cancel', { token: tp.token, path: { booking_id: b.id }, body: {} });
    upsert(out);
    if (moving.value?.id === b.id) moving.value = null;
    await loadSlots();
  }

  /** Pick a new slot for this booking (same category; the business and approval stay). */
  async function startMove(b: BookingOut): Promise<void> {
    moving.value = b;
    saved.value = null;
    form.value.category = b.category;
    form.value.language = b.language;
    form.value.slotId = '';
    await loadSlots();
  }

  /** At the time: the booking's ticket joins the live queue (ahead of walk-ins when on time). */
  async function checkIn(b: BookingOut): Promise<void> {
    if (!tp.token) throw new ApiError('unauthorized');
    const socket = await tp.call.ensureSocket(tp.token);
    tp.call.preview();
    try {
      const ack = await emitAck(socket, 'appointment:check_in', { booking_id: b.id });
      upsert(ack.booking);
      vtax.checkIn = ack;
      tp.form.category = ack.booking.category;
      tp.form.language = ack.booking.language;
      tp.enterQueue(ack);
      tp.notice = { key: ack.verdict === 'on_time' ? 'booking.checkedInOnTime' : 'booking.checkedInLate' };
    } catch (e) {
      tp.call.releasePreview();
      throw e;
    }
  }

  /** While waiting: be told when the turn is near instead of watching the page. */
  async function requestCallback(phone = ''): Promise<void> {
    const ticketId = tp.ticketId;
    if (!ticketId) throw new ApiError('invalid_state');
    const p = phone.replace(/[\s-]/g, '');
    if (p && !PHONE.test(p)) throw new ApiError('badPhone');
    try {
      callback.value = await emitAck(tp.call.socket.value, 'callback:request', {
        ticket_id: ticketId,
        locale: (document.documentElement.lang || 'zh-CN') as PageLocale,
        ...(p ? { phone: p } : {}),
      });
      vtax.callback = callback.value;
    } catch (e) {
      if (e instanceof ApiError && e.code === 'invalid_state') throw new ApiError('callbackNotOffered');
      throw e;
    }
  }

  /** Back after "your turn is near": the ticket is offered again. */
  async function comeBack(): Promise<void> {
    const ticketId = tp.ticketId;
    if (!ticketId) throw new ApiError('invalid_state');
    const ack = await emitAck(tp.call.socket.value, 'queue:rejoin', { ticket_id: ticketId });
    callback.value = callback.value ? { ...callback.value, state: 'connected' } : null;
    callbackTurn.value = null;
    tp.enterQueue(ack);
  }

  function back(): void {
    moving.value = null;
    saved.value = null;
    tp.backToRequest('status.signedIn');
  }

  return {
    bookings, slots, form, moving, saved, callback, callbackTurn, daySlots, items, active,
    open, loadMine, loadSlots, book, attach, retryMaterial, replaceMaterial, cancel, startMove, checkIn, requestCallback, comeBack, back,
  };
});
