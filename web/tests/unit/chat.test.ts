// The in-call chat's composable over a fake socket: order by seq with duplicates kept once,
// the unread count and when it clears, catching up after a resume, a message that could not
// be sent going again with the same client id, refusals taken out, and what a reload keeps.
import { beforeEach, describe, expect, it } from 'vitest';
import { nextTick, ref, shallowRef } from 'vue';
import type { ChatMessageView, SessionStart } from '@/contract';
import { merge, unreadCount } from '@/core/chat';
import { useChat } from '@/composables/useChat';
import type { VtaxSocket } from '@/core/socket';
import { FakeSocket } from './fakes';

const SID = 's-1';
const ME = 'p-me';
const THEM = 'p-them';

function msg(seq: number, from = THEM, text = `m${seq}`, clientId = `c${seq}`): ChatMessageView {
  return { session_id: SID, seq, client_id: clientId, from, role: from === ME ? 'taxpayer' : 'agent', name: '', text, sent_at: '2026-12-03T03:00:00+00:00' };
}

function start(): SessionStart {
  return { session_id: SID, participant_id: ME, role: 'taxpayer', polite: true, peer: { participant_id: THEM, role: 'agent', display_name: 'A' }, ice_servers: [], ticket: null } as unknown as SessionStart;
}

const flush = async () => {
  for (let i = 0; i < 6; i += 1) await Promise.resolve();
  await nextTick();
};

/** A fake server: the stored thread, `chat:history` after a seq, `chat:send` by client id. */
function server(socket: FakeSocket, stored: ChatMessageView[]) {
  socket.answer = (event, p) => {
    if (event === 'chat:history') return { ok: true, messages: stored.filter((m) => m.seq > (p.after_seq as number)), more: false };
    if (event === 'chat:send') {
      const known = stored.find((m) => m.client_id === p.client_id && m.from === ME);
      if (known) return { ok: true, message: known, duplicate: true };
      if ((p.text as string).length > 5) return { ok: false, error: { code: 'message_too_long', message: 'too long' } };
      const m = msg(stored.length + 1, ME, p.text as string, p.client_id as string);
      stored.push(m);
      return { ok: true, message: m, duplicate: false };
    }
    return { ok: true };
  };
}

function setup() {
  const socket = new FakeSocket();
  const source = { socket: shallowRef<VtaxSocket | null>(socket as unknown as VtaxSocket), session: shallowRef<SessionStart | null>(null), resumed: ref(0) };
  let visible = true;
  const chat = useChat(source, { visible: () => visible });
  return { socket, source, chat, setVisible: (v: boolean) => (visible = v) };
}

beforeEach(() => sessionStorage.clear());

describe('the thread', () => {
  it('keeps the server order and each seq once', () => {
    let t = merge([], msg(2), ME);
    t = merge(t, msg(1), ME);
    t = merge(t, msg(2), ME);
    t = merge(t, msg(3), ME);
    expect(t.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(unreadCount(t, 1)).toBe(2);
  });
});

describe('useChat', () => {
  it('catches up at the start, counts unread until the panel is open and visible', async () => {
    const { socket, source, chat, setVisible } = setup();
    const stored = [msg(1), msg(2)];
    server(socket, stored);
    source.session.value = start();
    await flush();
    expect(chat.entries.value.map((e) => e.seq)).toEqual([1, 2]);
    expect(chat.unread.value).toBe(2);
    socket.fire('chat:message', msg(3));
    socket.fire('chat:message', msg(3)); // a re-send arrives again: kept once
    socket.fire('chat:message', { ...msg(9), session_id: 'another' });
    expect(chat.entries.value.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(chat.unread.value).toBe(3);
    expect(chat.incoming.value?.text).toBe('m3');
    setVisible(false);
    chat.setOpen(true);
    expect(chat.unread.value).toBe(3); // open but the page is hidden: not seen
    setVisible(true);
    chat.setOpen(true);
    expect(chat.unread.value).toBe(0);
    socket.fire('chat:message', msg(4));
    expect(chat.unread.value).toBe(0); // arrives while seen
    chat.setOpen(false);
    socket.fire('chat:message', msg(5));
    expect(chat.unread.value).toBe(1);
  });

  it('sends, and after a resume asks only for what it missed', async () => {
    const { socket, source, chat } = setup();
    const stored: ChatMessageView[] = [];
    server(socket, stored);
    source.session.value = start();
    await flush();
    expect(await chat.send('  hi  ')).toBeNull();
    expect(chat.entries.value.map((e) => [e.seq, e.text, e.mine, e.state])).toEqual([[1, 'hi', true, 'sent']]);
    stored.push(msg(2), msg(3));
    source.resumed.value += 1;
    await flush();
    const asked = socket.emitted.filter((e) => e.event === 'chat:history').map((e) => e.payload.after_seq);
    expect(asked).toEqual([0, 1]);
    expect(chat.entries.value.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(chat.unread.value).toBe(2);
  });

  it('a message that could not be sent goes again with the same client id', async () => {
    const { socket, source, chat } = setup();
    const stored: ChatMessageView[] = [];
    server(socket, stored);
    source.session.value = start();
    await flush();
    socket.silent = true; // the connection is gone: no answer
    expect((await chat.send('later'))?.code).toBe('timeout');
    expect(chat.entries.value.map((e) => [e.seq, e.state])).toEqual([[null, 'failed']]);
    const clientId = chat.entries.value[0]?.clientId;
    // a reload keeps it
    expect(JSON.parse(sessionStorage.getItem(`vtax.chat.${SID}`) || '{}').unsent).toEqual([{ clientId, text: 'later' }]);
    socket.silent = false;
    source.resumed.value += 1;
    await flush();
    const sends = socket.emitted.filter((e) => e.event === 'chat:send').map((e) => e.payload.client_id);
    expect(sends).toEqual([clientId, clientId]);
    expect(chat.entries.value.map((e) => [e.seq, e.state, e.clientId])).toEqual([[1, 'sent', clientId]]);
    expect(JSON.parse(sessionStorage.getItem(`vtax.chat.${SID}`) || '{}').unsent).toEqual([]);
  });

  it('a refused message is taken out and the refusal is kept to show', async () => {
    const { socket, source, chat } = setup();
    server(socket, []);
    source.session.value = start();
    await flush();
    expect((await chat.send('much too long'))?.code).toBe('message_too_long');
    expect(chat.entries.value).toEqual([]);
    expect(chat.error.value?.code).toBe('message_too_long');
  });

  it('after a reload: what was read stays read, unsent messages are sent', async () => {
    sessionStorage.setItem(`vtax.chat.${SID}`, JSON.stringify({ lastRead: 2, unsent: [{ clientId: 'u-1', text: 'again' }] }));
    const { socket, source, chat } = setup();
    const stored = [msg(1), msg(2), msg(3)];
    server(socket, stored);
    source.session.value = start();
    await flush();
    await flush();
    expect(chat.entries.value.map((e) => [e.seq, e.text])).toEqual([
      [1, 'm1'],
      [2, 'm2'],
      [3, 'm3'],
      [4, 'again'],
    ]);
    expect(chat.unread.value).toBe(1);
  });
});
