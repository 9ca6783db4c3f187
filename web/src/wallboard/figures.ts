// What the wallboard shows, computed from one pushed `queue:stats` (framework-free, unit
// tested): totals, the day's service level over all queues, and the alerts.
import type { QueueStats } from '@/contract';

export interface Totals {
  waiting: number;
  longestWaitS: number;
  serviceLevel: number | null;
  available: number;
  busy: number;
}

export type Alert =
  | { kind: 'level'; queue: string; value: number; target: number }
  | { kind: 'wait'; queue: string; waitS: number; limitS: number };

/**
 * The pushed payload as the contract declares it. A server older than the contract sends only
 * {at, day, queues}: agents and sessions are then empty and `targets` null (no target lines,
 * no service-level alerts) rather than made up.
 */
export type Board = Omit<QueueStats, 'targets' | 'agents' | 'sessions' | 'timezone'> & {
  targets: QueueStats['targets'] | null;
  agents: QueueStats['agents'];
  sessions: QueueStats['sessions'];
  timezone: string | null;
  /** agents and sessions were in the payload */
  hasPeople: boolean;
};

export function normalize(raw: Partial<QueueStats> & Pick<QueueStats, 'at' | 'day' | 'queues'>): Board {
  return {
    at: raw.at,
    day: raw.day,
    queues: raw.queues || {},
    timezone: raw.timezone ?? null,
    targets: raw.targets ?? null,
    agents: raw.agents ?? [],
    sessions: raw.sessions ?? [],
    hasPeople: Array.isArray(raw.agents) && Array.isArray(raw.sessions),
  };
}

export function totals(s: Board): Totals {
  let waiting = 0;
  let longest = 0;
  let answered = 0;
  let within = 0;
  for (const q of Object.values(s.queues)) {
    waiting += q.waiting;
    longest = Math.max(longest, q.longest_wait_s);
    if (q.today.service_level !== null && q.today.answered > 0) {
      answered += q.today.answered;
      within += q.today.service_level * q.today.answered;
    }
  }
  const available = s.agents.filter((a) => a.status === 'available').length;
  const busy = s.agents.filter((a) => a.status === 'busy' || a.status === 'wrap_up' || a.status === 'reserved').length;
  return { waiting, longestWaitS: longest, serviceLevel: answered ? within / answered : null, available, busy };
}

/** A queue below the service-level target (once it answered someone today), or a wait past the alert. */
export function alerts(s: Board): Alert[] {
  const out: Alert[] = [];
  if (!s.targets) return out;
  for (const [queue, q] of Object.entries(s.queues)) {
    const sl = q.today.service_level;
    if (sl !== null && q.today.answered > 0 && sl < s.targets.service_level) {
      out.push({ kind: 'level', queue, value: sl, target: s.targets.service_level });
    }
    if (q.waiting > 0 && q.longest_wait_s > s.targets.longest_wait_alert_s) {
      out.push({ kind: 'wait', queue, waitS: q.longest_wait_s, limitS: s.targets.longest_wait_alert_s });
    }
  }
  return out;
}

/** Seconds since an ISO time, against `now` (ms). */
export function secondsSince(iso: string, now: number): number {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : Math.max(0, (now - t) / 1000);
}
