import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPinia, setActivePinia } from 'pinia';
import { useAssistant } from '@/taxpayer/assistant';
import { useTaxpayer } from '@/taxpayer/store';
import { authRoute, FakeSocket, signInBySms } from './fakes';

const CATALOG = {
  version: 1,
  timezone: 'Asia/Shanghai',
  categories: [
    { code: 'registration', name: { en: 'Registration' }, items: [] },
    { code: 'invoices', name: { en: 'Invoices' }, items: [] },
  ],
  languages: [{ code: 'zh-CN', name: { en: 'Mandarin' } }, { code: 'en', name: { en: 'English' } }],
  channels: [{ code: 'web', name: { en: 'Web' } }],
};
const ENTRY = { key: 'inv-check', question: 'Is my invoice genuine?', category: 'invoices', confidence: 0.9, score: 7, answer: 'Use the platform.', links: [] };
const TICKET = { category: 'invoices', language: 'en', channel: 'web', question: 'summary' };

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

let socket: FakeSocket;

async function signedIn() {
  const tp = useTaxpayer();
  await signInBySms(tp);
  const call = tp.call as unknown as Record<string, unknown>;
  call.ensureSocket = async () => socket;
  call.preview = vi.fn();
  call.releasePreview = vi.fn();
  return { tp, a: useAssistant() };
}

beforeEach(() => {
  setActivePinia(createPinia());
  socket = new FakeSocket();
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      const auth = authRoute(url, init);
      if (auth) return auth;
      if (url === '/api/catalog') return json(CATALOG);
      if (url.startsWith('/api/deliveries')) return json({ deliveries: [], next_before: null });
      return json({ error: { code: 'not_found', message: url } }, 404);
    }),
  );
});
afterEach(() => vi.unstubAllGlobals());

describe('the assistant store', () => {
  it('opens the conversation in the page language, asks, shows the answer and votes', async () => {
    const { tp, a } = await signedIn();
    socket.answer = (event, p) => {
      if (event === 'consultation:start') return { ok: true, conversation_id: 'c1', language: p.language, channel: p.channel, state: 'open', message: 'Hello' };
      if (event === 'consultation:ask') return { ok: true, conversation_id: 'c1', seq: 3, kind: 'answer', message: 'Here it is', entry: ENTRY, alternatives: [], ask_feedback: true, offer_person: true };
      if (event === 'consultation:feedback') return { ok: true, conversation_id: 'c1', seq: p.seq, helpful: p.helpful, handoff: null };
      return { ok: false, error: { code: 'invalid_payload' } };
    };
    a.locale = 'en';
    a.draft = '  is my invoice real?  ';
    await tp.action(() => a.ask());
    expect(tp.error).toBeNull();
    expect(socket.emitted.map((e) => e.event)).toEqual(['consultation:start', 'consultation:ask']);
    expect(socket.emitted[0]?.payload).toEqual({ language: 'en', channel: 'web' });
    expect(socket.emitted[1]?.payload).toEqual({ conversation_id: 'c1', text: 'is my invoice real?' });
    expect(a.turns.map((t) => t.speaker)).toEqual(['assistant', 'taxpayer', 'assistant']);
    expect(a.draft).toBe('');
    expect(a.questions).toBe(1);
    expect(a.detectedCategory).toBe('invoices');
    const answer = a.turns[2]!;
    await tp.action(() => a.vote(answer, false));
    expect(socket.emitted[2]?.payload).toEqual({ conversation_id: 'c1', seq: 3, helpful: false });
    expect(a.turns[2]?.helpful).toBe(false);
  });

  it('refuses an empty question without a round trip', async () => {
    const { tp, a } = await signedIn();
    a.draft = '   ';
    await tp.action(() => a.ask());
    expect(tp.error?.code).toBe('needQuestion');
    expect(socket.emitted).toEqual([]);
  });

  it('hands over with the corrected category and joins the queue', async () => {
    const { tp, a } = await signedIn();
    socket.answer = (event, p) => {
      if (event === 'consultation:start') return { ok: true, conversation_id: 'c1', language: 'en', channel: 'web', state: 'open', message: 'Hello' };
      if (event === 'consultation:handoff')
        return { ok: true, conversation_id: 'c1', reason: 'customer_request', route: 'queue', requested_at: '2026-12-03T10:00:00+08:00', message: 'Connecting', ticket: { ...TICKET, category: p.category }, queued: { ticket_id: 't1', position: 2, eta_s: 60 } };
      return { ok: false, error: { code: 'invalid_payload' } };
    };
    a.openHandoff();
    expect(a.handoffOpen).toBe(true);
    a.handoffForm.category = 'invoices';
    a.handoffForm.language = 'en';
    await tp.action(() => a.handOver());
    expect(tp.error).toBeNull();
    expect(socket.emitted[1]?.payload).toEqual({ conversation_id: 'c1', category: 'invoices', language: 'en' });
    expect(tp.step).toBe('queue');
    expect(tp.state).toBe('queued');
    expect(tp.ticketId).toBe('t1');
    expect(tp.position).toBe(2);
    expect(a.handoffOpen).toBe(false);
    // back on the question step (left the queue): the next question is a new conversation
    tp.backToRequest('status.leftQueue');
    await Promise.resolve();
    expect(a.conversationId).toBeNull();
    expect(a.turns).toEqual([]);
  });

  it('out of hours: stays with the assistant and says when the service opens', async () => {
    const { tp, a } = await signedIn();
    socket.answer = (event) => {
      if (event === 'consultation:start') return { ok: true, conversation_id: 'c1', language: 'en', channel: 'web', state: 'open', message: 'Hello' };
      return { ok: true, conversation_id: 'c1', reason: 'customer_request', route: 'callback', requested_at: '2026-12-03T22:00:00+08:00', next_open_at: '2026-12-04T09:00:00+08:00', message: 'Closed now', ticket: TICKET, queued: null };
    };
    a.handoffForm.category = 'invoices';
    await tp.action(() => a.handOver());
    expect(tp.step).toBe('request');
    expect(tp.state).toBe('idle');
    expect(a.handoff?.next_open_at).toBe('2026-12-04T09:00:00+08:00');
    expect(a.turns.at(-1)?.text).toBe('Closed now');
    expect(tp.call.releasePreview).toHaveBeenCalled();
  });

  it('a second hand-over of a handed-over conversation starts a new one', async () => {
    const { tp, a } = await signedIn();
    let n = 0;
    socket.answer = (event) => {
      if (event === 'consultation:start') return { ok: true, conversation_id: `c${++n}`, language: 'en', channel: 'web', state: 'open', message: 'Hello' };
      const last = socket.emitted.at(-1)?.payload as { conversation_id: string };
      if (last.conversation_id === 'c1') return { ok: false, error: { code: 'invalid_state', message: 'the conversation is handed_off' } };
      return { ok: true, conversation_id: last.conversation_id, reason: 'customer_request', route: 'queue', requested_at: 'x', message: 'ok', ticket: TICKET, queued: { ticket_id: 't9', position: 0, eta_s: 0 } };
    };
    a.handoffForm.category = 'invoices';
    await a.begin('en');
    await tp.action(() => a.handOver());
    expect(tp.error).toBeNull();
    expect(a.conversationId).toBe('c2');
    expect(tp.ticketId).toBe('t9');
  });

  it('"talk to a person" typed with no business known asks for the category', async () => {
    const { tp, a } = await signedIn();
    socket.answer = (event) => {
      if (event === 'consultation:start') return { ok: true, conversation_id: 'c1', language: 'en', channel: 'web', state: 'open', message: 'Hello' };
      return { ok: false, error: { code: 'category_required', message: 'choose' } };
    };
    a.draft = 'talk to a person';
    await tp.action(() => a.ask());
    expect(tp.error?.code).toBe('category_required');
    expect(a.handoffOpen).toBe(true);
  });

  it('signing out forgets the conversation', async () => {
    const { tp, a } = await signedIn();
    socket.answer = () => ({ ok: true, conversation_id: 'c1', language: 'en', channel: 'web', state: 'open', message: 'Hello' });
    await a.begin('en');
    expect(a.turns.length).toBe(1);
    await tp.signOut();
    await Promise.resolve();
    expect(a.conversationId).toBeNull();
    expect(a.turns).toEqual([]);
  });
});
