// Staff's pre-review of appointments (agent desk): the bookings waiting for it (requested or
// taken up), each with the taxpayer's no-show strikes; approve, send to an online service
// (with the route to use) or reject (with the reason the taxpayer reads); a block after too
// many no-shows is shown and can be lifted with a reason; each attached file gets a verdict
// (accepted, or needs replacing: then no approval until it is replaced). REST of
// vtax/contract/appointments.py.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { MaterialOut, MaterialVerdictIn, PreReviewIn, StaffBookingOut, StrikesOut } from '@/contract';
import { api } from '@/core/api';
import { ApiError } from '@/core/errors';
import { vtax } from '@/core/hook';

export type Decision = Exclude<PreReviewIn['decision'], 'pre_review'>;

export const usePreReview = defineStore('prereview', () => {
  const token = ref<string | null>(null);
  const bookings = ref<StaffBookingOut[]>([]);
  /** per booking: the decision being written (route, reason, note) */
  const drafts = ref<Record<string, { route: string; reason: string; note: string }>>({});
  const strikes = ref<Record<string, StrikesOut>>({});
  const decided = ref<{ id: string; decision: Decision } | null>(null);

  function draft(id: string) {
    if (!drafts.value[id]) drafts.value[id] = { route: '', reason: '', note: '' };
    return drafts.value[id];
  }

  async function load(tok: string | null = token.value): Promise<void> {
    token.value = tok;
    if (!tok) {
      bookings.value = [];
      return;
    }
    const data = await api('get', '/api/appointments/review', { token: tok, query: { limit: 100 } });
    bookings.value = data.bookings || [];
    for (const b of bookings.value) draft(b.id);
    vtax.prereview = bookings.value.map((b) => b.id);
  }

  async function decide(b: StaffBookingOut, decision: Decision): Promise<void> {
    const d = draft(b.id);
    const body: PreReviewIn = { decision, note: d.note.trim() };
    if (decision === 'redirected_online') {
      if (!d.route.trim()) throw new ApiError('needRoute');
      body.route = d.route.trim();
    }
    if (decision === 'rejected') {
      if (!d.reason.trim()) throw new ApiError('needReason');
      body.reason = d.reason.trim();
    }
    await api('post', '/api/appointments/{booking_id}/review', { token: token.value, path: { booking_id: b.id }, body });
    decided.value = { id: b.id, decision };
    delete drafts.value[b.id];
    await load();
  }

  /** Staff's verdict on one file of the booking; the booking as it now is replaces the old. */
  async function reviewMaterial(b: StaffBookingOut, m: MaterialOut, body: MaterialVerdictIn): Promise<void> {
    const now = await api('post', '/api/appointments/{booking_id}/materials/{material_id}/review', {
      token: token.value,
      path: { booking_id: b.id, material_id: m.id },
      body,
    });
    bookings.value = bookings.value.map((x) => (x.id === now.id ? now : x));
  }

  async function liftBlock(taxpayerId: string, reason: string): Promise<void> {
    if (!reason.trim()) throw new ApiError('needReason');
    const s = await api('post', '/api/appointments/strikes/{taxpayer_id}/lift', {
      token: token.value,
      path: { taxpayer_id: taxpayerId },
      body: { reason: reason.trim() },
    });
    strikes.value[taxpayerId] = s;
    await load();
  }

  return { token, bookings, drafts, strikes, decided, draft, load, decide, reviewMaterial, liftBlock };
});
