// The in-call chat's thread, framework-free: stored messages in the server's order (`seq`,
// each once: a re-sent message may arrive twice), then this page's messages still on their
// way (by `client_id`), the last message read, and what a reload keeps (sessionStorage
// `vtax.chat.<session id>`: the last read seq and the unsent messages, which go again with
// the same client id, so the server stores each once).
import type { ChatMessageView } from '@/contract';

export type EntryState = 'sent' | 'sending' | 'failed';

export interface ChatEntry {
  /** a stable key for the list: the client id (unique per sender) with the sender */
  key: string;
  seq: number | null;
  clientId: string;
  from: string;
  role: ChatMessageView['role'];
  name: string;
  text: string;
  sentAt: string | null;
  mine: boolean;
  state: EntryState;
}

export interface Kept {
  lastRead: number;
  unsent: { clientId: string; text: string }[];
}

const PREFIX = 'vtax.chat.';

export function newClientId(): string {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function entryOf(m: ChatMessageView, selfId: string | null): ChatEntry {
  return {
    key: `${m.from}:${m.client_id}`,
    seq: m.seq,
    clientId: m.client_id,
    from: m.from,
    role: m.role,
    name: m.name,
    text: m.text,
    sentAt: m.sent_at,
    mine: selfId !== null && m.from === selfId,
    state: 'sent',
  };
}

/** The thread with `m` in its place: stored entries by seq (a seq already there is kept
 * once), and a pending entry of this page with the same client id replaced by it. */
export function merge(entries: readonly ChatEntry[], m: ChatMessageView, selfId: string | null): ChatEntry[] {
  if (entries.some((e) => e.seq === m.seq)) return entries as ChatEntry[];
  const entry = entryOf(m, selfId);
  const rest = entries.filter((e) => !(e.seq === null && e.mine && e.clientId === m.client_id));
  const stored = rest.filter((e) => e.seq !== null);
  const pending = rest.filter((e) => e.seq === null);
  let at = stored.length;
  while (at > 0 && ((stored[at - 1]?.seq as number) ?? 0) > m.seq) at -= 1;
  stored.splice(at, 0, entry);
  return [...stored, ...pending];
}

export function lastSeq(entries: readonly ChatEntry[]): number {
  let max = 0;
  for (const e of entries) if (e.seq !== null && e.seq > max) max = e.seq;
  return max;
}

/** Messages of the others after the last one read. */
export function unreadCount(entries: readonly ChatEntry[], lastRead: number): number {
  return entries.filter((e) => !e.mine && e.seq !== null && e.seq > lastRead).length;
}

export const chatStore = {
  load(sessionId: string): Kept {
    try {
      const raw = sessionStorage.getItem(PREFIX + sessionId);
      const data = raw ? (JSON.parse(raw) as Partial<Kept>) : {};
      return {
        lastRead: typeof data.lastRead === 'number' ? data.lastRead : 0,
        unsent: Array.isArray(data.unsent)
          ? data.unsent.filter((u) => u && typeof u.clientId === 'string' && typeof u.text === 'string')
          : [],
      };
    } catch {
      return { lastRead: 0, unsent: [] };
    }
  },
  save(sessionId: string, kept: Kept): void {
    try {
      sessionStorage.setItem(PREFIX + sessionId, JSON.stringify(kept));
    } catch {
      /* no storage: a reload forgets what was read */
    }
  },
};
