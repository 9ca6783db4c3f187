// Per-file pre-review in the pages: the staff's verdict form on each material
// (components/BookingMaterialsStaff.vue with `review`), and the taxpayer's side: what is
// wrong with a file, replacing it (taxpayer/bookingMaterials.ts), the notice of a new verdict.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPinia, setActivePinia } from 'pinia';
import { flushPromises, mount } from '@vue/test-utils';
import BookingMaterialsStaff from '@/components/BookingMaterialsStaff.vue';
import { needsReplacing } from '@/components/materialVerdict';
import { makeI18n } from '@/i18n';
import { sha256Hex } from '@/core/documents';
import { canReplace, newlyToReplace, useBookingMaterials } from '@/taxpayer/bookingMaterials';
import type { BookingOut, MaterialOut, MaterialVerdictIn } from '@/contract';

function material(id: string, over: Partial<MaterialOut> = {}): MaterialOut {
  return {
    id, filename: `${id}.pdf`, media_type: 'application/pdf', size_bytes: 10, sha256: 'a'.repeat(64),
    created_at: '2026-12-03T10:00:00+08:00', review: 'pending', review_reason: null, review_note: null,
    reviewed_at: null, revision: 1, replaced_at: null, ...over,
  };
}
function booking(state: BookingOut['state'], materials: MaterialOut[]): BookingOut {
  return {
    id: 'b1', state, slot_id: 's', category: 'invoices', language: 'zh-CN', channel: 'web', starts_at: 'x', ends_at: 'x',
    day: '2026-12-07', items: [], question: 'q', locale: 'en', created_at: 'x', materials,
  } as unknown as BookingOut;
}
function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

beforeEach(() => setActivePinia(createPinia()));
afterEach(() => {
  vi.unstubAllGlobals();
  document.body.innerHTML = '';
});

describe('staff: a verdict on each material', () => {
  function page(materials: MaterialOut[], review?: (m: MaterialOut, body: MaterialVerdictIn) => Promise<void>) {
    return mount(BookingMaterialsStaff, {
      attachTo: document.body,
      props: { token: 't', bookingId: 'b1', materials, catalog: null, review },
      global: { plugins: [makeI18n('en')] },
    });
  }

  it('shows each verdict, with what is wrong and the revision', () => {
    const w = page([
      material('m1', { review: 'accepted' }),
      material('m2', { review: 'needs_replacing', review_reason: 'expired', review_note: 'the 2025 one', revision: 2 }),
    ]);
    const items = w.findAll('.bm-staff-item');
    expect(items[0]?.find('.bm-verdict').text()).toBe('Accepted');
    expect(items[1]?.find('.bm-verdict').text()).toBe('Needs replacing · version 2');
    expect(items[1]?.find('.bm-verdict-why').text()).toContain('It has expired');
    expect(items[1]?.find('.bm-verdict-why').text()).toContain('the 2025 one');
    expect(w.find('.bm-review').exists()).toBe(false); // no `review`: shown, not given
  });

  it('accepts a file, and marks one as needing replacing only with a reason (and a note for "other")', async () => {
    const sent: [string, MaterialVerdictIn][] = [];
    const w = page([material('m1')], async (m, body) => {
      sent.push([m.id, body]);
    });
    await w.find('.bm-accept').trigger('click');
    await flushPromises();
    expect(sent).toEqual([['m1', { verdict: 'accepted' }]]);

    await w.find('.bm-needs-replacing').trigger('click');
    await flushPromises();
    expect(w.find('[role="alert"]').text()).toBe('Choose what is wrong with the file.');
    await w.find('.bm-issue').setValue('other');
    await w.find('.bm-needs-replacing').trigger('click');
    await flushPromises();
    expect(w.find('[role="alert"]').text()).toContain('write a note');
    expect(sent).toHaveLength(1);

    await w.find('.bm-issue').setValue('illegible');
    await w.find('.bm-note').setValue('  too dark  ');
    await w.find('.bm-needs-replacing').trigger('click');
    await flushPromises();
    expect(sent[1]).toEqual(['m1', { verdict: 'needs_replacing', reason: 'illegible', note: 'too dark' }]);
  });

  it('checks a verdict as the server does', () => {
    expect(() => needsReplacing('', 'x')).toThrow(expect.objectContaining({ code: 'needIssue' }));
    expect(() => needsReplacing('other', ' ')).toThrow(expect.objectContaining({ code: 'needNote' }));
    expect(needsReplacing('other', ' see ')).toEqual({ verdict: 'needs_replacing', reason: 'other', note: 'see' });
  });
});

describe('the taxpayer: what is wrong, and replacing the file', () => {
  it('replaces only a marked file while the booking is in pre-review', () => {
    const marked = material('m1', { review: 'needs_replacing', review_reason: 'illegible' });
    expect(canReplace(booking('pre_review', [marked]), marked)).toBe(true);
    expect(canReplace(booking('requested', [marked]), marked)).toBe(true);
    expect(canReplace(booking('approved', [marked]), marked)).toBe(false);
    expect(canReplace(booking('pre_review', [material('m2')]), material('m2'))).toBe(false);
  });

  it('tells of a file newly marked, not of one already known', () => {
    const plain = booking('pre_review', [material('m1')]);
    const marked = booking('pre_review', [material('m1', { review: 'needs_replacing', review_reason: 'expired' })]);
    expect(newlyToReplace(plain, marked)).toBe(true);
    expect(newlyToReplace(marked, marked)).toBe(false);
    expect(newlyToReplace(marked, plain)).toBe(false);
  });

  it('sends the new file to the replace endpoint and checks the stored SHA-256', async () => {
    const calls: string[] = [];
    let corrupt = false;
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init?: RequestInit) => {
        calls.push(`${init?.method} ${url}`);
        const file = (init?.body as FormData).get('file') as File;
        const sha = corrupt ? '0'.repeat(64) : await sha256Hex(await file.arrayBuffer());
        return json(material('m1', { filename: file.name, sha256: sha, revision: 2, replaced_at: 'x' }));
      }),
    );
    const mats = useBookingMaterials();
    mats.limits = { max_bytes: 1000, max_count: 1, media_types: ['application/pdf'] };
    const marked = material('m1', { review: 'needs_replacing', review_reason: 'illegible' });
    const b = booking('pre_review', [marked]);
    const saved: MaterialOut[] = [];
    await mats.replace('t', b, marked, new Blob(['%PDF-1.4 new'], { type: 'application/pdf' }), 'new.pdf', (m) => saved.push(m));
    expect(calls).toEqual(['POST /api/appointments/b1/materials/m1/replace']);
    expect(saved[0]?.revision).toBe(2);
    // the count is full (1 of 1): a replacement does not add one
    await expect(mats.replace('t', b, marked, new Blob([''], { type: 'application/pdf' }), 'e.pdf', () => {})).rejects.toMatchObject({ code: 'materialEmpty' });
    await expect(mats.replace('t', b, marked, new Blob(['x'], { type: 'text/plain' }), 'x.txt', () => {})).rejects.toMatchObject({ code: 'materialType' });
    await expect(mats.replace('t', booking('approved', [marked]), marked, new Blob(['%PDF']), 'a.pdf', () => {})).rejects.toMatchObject({ code: 'invalid_state' });
    corrupt = true;
    await expect(mats.replace('t', b, marked, new Blob(['%PDF-1.4 new'], { type: 'application/pdf' }), 'n.pdf', () => {})).rejects.toMatchObject({ code: 'hash_mismatch' });
    expect(calls).toHaveLength(2);
  });
});
