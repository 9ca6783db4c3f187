// The confirmation form's composable: reads the form on a session and on every (re)connect,
// shows pushes, never lets a late answer replace a newer version, and decides on exactly the
// version shown (its number and hash).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { effectScope, nextTick, ref, type Ref } from 'vue';
import type { FormVersionView } from '@/contract';
import type { VtaxSocket } from '@/core/socket';
import { useConfirmation } from '@/composables/useConfirmation';
import { FakeSocket } from './fakes';

function version(n: number, state: FormVersionView['state'] = 'proposed'): FormVersionView {
  return {
    session_id: 's1',
    version: n,
    sha256: String(n).repeat(64).slice(0, 64),
    content: { items: [{ code: 'invoices.invoice_collection', values: { quantity: n }, materials: [] }], note: '' },
    author_id: 'a1',
    proposed_at: '2030-01-01T08:00:00+08:00',
    state,
    latest: true,
    complete: true,
    decision: null,
  };
}

const flush = async () => {
  for (let i = 0; i < 5; i++) {
    await Promise.resolve();
    await nextTick();
  }
};

describe('useConfirmation', () => {
  beforeEach(() => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify({ version: 1, items: [] }), { status: 200 })));
  });
  afterEach(() => vi.unstubAllGlobals());

  function setup(answer: (event: string, payload: Record<string, unknown>) => unknown) {
    const socket = new FakeSocket();
    socket.answer = answer;
    const s = ref(socket as unknown as VtaxSocket) as Ref<VtaxSocket | null>;
    const sid = ref<string | null>('s1');
    const scope = effectScope();
    const c = scope.run(() => useConfirmation(s, sid))!;
    return { socket, sid, c, scope };
  }

  it('reads the form for the session, and again after a reconnect', async () => {
    let current = version(1);
    const { socket, c, scope } = setup(() => ({ ok: true, session_id: 's1', form: current }));
    await flush();
    expect(socket.emitted.map((e) => e.event)).toEqual(['confirmation:get']);
    expect(c.form.value?.version).toBe(1);
    current = version(2);
    socket.fire('connect');
    await flush();
    expect(socket.emitted.filter((e) => e.event === 'confirmation:get')).toHaveLength(2);
    expect(c.form.value?.version).toBe(2);
    scope.stop();
  });

  it('shows pushes for its session only, and a late older answer does not replace them', async () => {
    const { socket, c, scope } = setup(() => ({ ok: true, session_id: 's1', form: version(1) }));
    await flush();
    socket.fire('confirmation:form', { session_id: 's1', form: version(3) });
    socket.fire('confirmation:form', { session_id: 'other', form: { ...version(9), session_id: 'other' } });
    expect(c.form.value?.version).toBe(3);
    socket.fire('confirmation:form', { session_id: 's1', form: version(3, 'confirmed') });
    expect(c.form.value?.state).toBe('confirmed');
    socket.fire('connect'); // its answer (version 1) arrives after the push of version 3
    await flush();
    expect(c.form.value?.version).toBe(3);
    // a decided version is not turned back into "proposed" by an answer that crossed it
    socket.fire('confirmation:form', { session_id: 's1', form: version(3, 'proposed') });
    expect(c.form.value?.state).toBe('confirmed');
    scope.stop();
  });

  it('confirms and refuses exactly the version shown', async () => {
    const shown = version(2);
    const { socket, c, scope } = setup((event, p) => {
      if (event === 'confirmation:get') return { ok: true, session_id: 's1', form: shown };
      if (event === 'confirmation:refuse') return { ok: false, error: { code: 'form_version_stale', message: 'stale' } };
      return { ok: true, session_id: 's1', form: { ...shown, state: 'confirmed', version: p.version } };
    });
    await flush();
    await c.confirm();
    expect(socket.emitted.at(-1)).toEqual({ event: 'confirmation:confirm', payload: { session_id: 's1', version: 2, sha256: shown.sha256 } });
    expect(c.form.value?.state).toBe('confirmed');
    await c.refuse('too many');
    expect(socket.emitted.at(-1)?.payload).toMatchObject({ version: 2, reason: 'too many' });
    expect(c.error.value?.code).toBe('form_version_stale');
    scope.stop();
  });
});
