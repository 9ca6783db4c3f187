// What a page needs to resume its live session after a reload, in sessionStorage (this tab
// only) under `vtax.resume.<page>`: the token, session and participant ids, last_seq and the
// page's own fields. Written at session start, marked `ended` when the call ends, cleared
// when the session's work is done.
const PREFIX = 'vtax.resume.';

export interface StoredSession {
  token: string;
  sessionId: string;
  participantId?: string;
  peerId?: string | null;
  lastSeq?: number;
  ended?: boolean;
  endReason?: string;
  savedAt?: number;
  [key: string]: unknown;
}

export const resumeStore = {
  load(page: string): StoredSession | null {
    try {
      const raw = sessionStorage.getItem(PREFIX + page);
      const data: unknown = raw ? JSON.parse(raw) : null;
      return data && typeof data === 'object' ? (data as StoredSession) : null;
    } catch {
      return null;
    }
  },
  save(page: string, data: StoredSession): void {
    try {
      sessionStorage.setItem(PREFIX + page, JSON.stringify({ ...data, savedAt: Date.now() }));
    } catch (e) {
      console.warn('sessionStorage unavailable', e);
    }
  },
  update(page: string, patch: Partial<StoredSession>): void {
    const current = this.load(page);
    if (current) this.save(page, { ...current, ...patch });
  },
  clear(page: string): void {
    try {
      sessionStorage.removeItem(PREFIX + page);
    } catch {
      /* nothing stored */
    }
  },
};
