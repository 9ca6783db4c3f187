// The in-call chat behind a composable, over the call's socket and session (useCall): the
// thread (src/core/chat.ts), sending with a client id (a message that could not be sent is
// sent again with the same id once the call is back: stored once), catching up with
// `chat:history` after a session start, a resume or a reload, and the unread count (the
// others' messages after the last one seen with the panel open and the page visible).
import { computed, ref, shallowRef, watch, type Ref, type ShallowRef } from 'vue';
import type { ChatMessage, Resumed, SessionStart } from '@/contract';
import { chatStore, lastSeq, merge, newClientId, unreadCount, type ChatEntry } from '@/core/chat';
import { ApiError, asApiError } from '@/core/errors';
import { vtax } from '@/core/hook';
import { emitAck, type VtaxSocket } from '@/core/socket';

/** Sending failed in a way a later attempt may fix (kept, sent again when the call is back). */
const RETRY_LATER = new Set(['timeout', 'not_connected', 'not_in_session', 'internal', 'unavailable', 'bad_ack']);
/** The server's own limit is VTAX_CHAT_MAX_CHARS (2,000 by default); the page stops there. */
export const CHAT_MAX_CHARS = 2000;

export interface ChatSource {
  socket: ShallowRef<VtaxSocket | null>;
  session: ShallowRef<SessionStart | Resumed | null>;
  /** counts resumes of the live session on a reconnected socket (useCall) */
  resumed: Ref<number>;
}

export function useChat(source: ChatSource, { visible = () => typeof document === 'undefined' || document.visibilityState === 'visible' } = {}) {
  const entries = shallowRef<ChatEntry[]>([]);
  const open = ref(false);
  const lastRead = ref(0);
  /** the newest message of the others that arrived live (for the aria-live announcement) */
  const incoming = shallowRef<ChatEntry | null>(null);
  const error = shallowRef<ApiError | null>(null);
  const wired = new WeakSet<object>();
  let sessionId: string | null = null;
  let catchingUp: Promise<void> | null = null;

  const unread = computed(() => unreadCount(entries.value, lastRead.value));
  const selfId = () => source.session.value?.participant_id ?? null;

  function keep(): void {
    if (!sessionId) return;
    const unsent = entries.value.filter((e) => e.seq === null).map((e) => ({ clientId: e.clientId, text: e.text }));
    chatStore.save(sessionId, { lastRead: lastRead.value, unsent });
  }

  function set(next: ChatEntry[]): void {
    entries.value = next;
    vtax.chatUnread = unreadCount(next, lastRead.value);
    markReadIfSeen();
  }

  function markReadIfSeen(): void {
    const top = lastSeq(entries.value);
    if (open.value && visible() && top > lastRead.value) {
      lastRead.value = top;
      vtax.chatUnread = 0;
    }
    keep();
  }

  function onMessage(m: ChatMessage): void {
    if (!m || m.session_id !== sessionId) return;
    const before = entries.value;
    set(merge(before, m, selfId()));
    if (entries.value !== before && m.from !== selfId()) incoming.value = entries.value.find((e) => e.seq === m.seq) || null;
  }

  /** A new session on this page (start, or the resume after a reload): its own thread. */
  function begin(id: string): void {
    sessionId = id;
    const kept = chatStore.load(id);
    lastRead.value = kept.lastRead;
    incoming.value = null;
    error.value = null;
    const me = selfId() || '';
    entries.value = kept.unsent.map((u) => ({
      key: `${me}:${u.clientId}`,
      seq: null,
      clientId: u.clientId,
      from: me,
      role: (source.session.value?.role || 'taxpayer') as ChatEntry['role'],
      name: '',
      text: u.text,
      sentAt: null,
      mine: true,
      state: 'failed',
    }));
  }

  /** What this page missed (all of it after a reload), then the messages it could not send. */
  function catchUp(): Promise<void> {
    if (!catchingUp) {
      catchingUp = (async () => {
        try {
          for (let page = 0; page < 100; page += 1) {
            const id = sessionId;
            if (!id) return;
            const ack = await emitAck(source.socket.value, 'chat:history', { session_id: id, after_seq: lastSeq(entries.value) });
            if (id !== sessionId) return;
            let next = entries.value;
            for (const m of ack.messages) next = merge(next, m, selfId());
            set(next);
            if (!ack.more) break;
          }
          for (const e of entries.value.filter((x) => x.seq === null && x.state === 'failed')) await deliver(e.clientId, e.text);
        } catch {
          /* not back in the session yet: the next resume catches up */
        } finally {
          catchingUp = null;
        }
      })();
    }
    return catchingUp;
  }

  function setState(clientId: string, state: ChatEntry['state']): void {
    set(entries.value.map((e) => (e.seq === null && e.clientId === clientId ? { ...e, state } : e)));
  }

  async function deliver(clientId: string, text: string): Promise<ApiError | null> {
    const id = sessionId;
    if (!id) return new ApiError('not_connected');
    setState(clientId, 'sending');
    try {
      const ack = await emitAck(source.socket.value, 'chat:send', { session_id: id, client_id: clientId, text });
      if (id === sessionId) set(merge(entries.value, ack.message, selfId()));
      error.value = null;
      return null;
    } catch (e) {
      const err = asApiError(e);
      if (RETRY_LATER.has(err.code)) setState(clientId, 'failed');
      else set(entries.value.filter((x) => !(x.seq === null && x.clientId === clientId)));
      error.value = err;
      return err;
    }
  }

  /** Send a message; null when stored, else the refusal (a message the server refused is
   * taken out of the thread; one that could not reach it stays and is sent again). */
  async function send(raw: string): Promise<ApiError | null> {
    const text = raw.trim();
    if (!text) return null;
    if (!sessionId) return new ApiError('not_connected');
    const clientId = newClientId();
    const me = selfId() || '';
    const pending: ChatEntry = {
      key: `${me}:${clientId}`,
      seq: null,
      clientId,
      from: me,
      role: (source.session.value?.role || 'taxpayer') as ChatEntry['role'],
      name: '',
      text,
      sentAt: null,
      mine: true,
      state: 'sending',
    };
    set([...entries.value, pending]);
    return deliver(clientId, text);
  }

  /** Send again the messages that could not be sent (the person's "try again"). */
  function retry(): Promise<void> {
    return catchUp();
  }

  function setOpen(v: boolean): void {
    open.value = v;
    markReadIfSeen();
  }

  watch(
    source.socket,
    (s) => {
      if (s && !wired.has(s)) {
        wired.add(s);
        s.on('chat:message', onMessage);
      }
    },
    { immediate: true },
  );
  watch(
    source.session,
    (s) => {
      if (!s) return;
      if (s.session_id !== sessionId) begin(s.session_id);
      void catchUp();
    },
    { immediate: true },
  );
  watch(source.resumed, () => void catchUp());
  if (typeof document !== 'undefined') document.addEventListener('visibilitychange', markReadIfSeen);

  return {
    entries,
    open,
    unread,
    lastRead,
    incoming,
    error,
    send,
    retry,
    setOpen,
    catchUp,
    sessionId: () => sessionId,
  };
}

export type UseChat = ReturnType<typeof useChat>;
