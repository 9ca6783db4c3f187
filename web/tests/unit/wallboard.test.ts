import { describe, expect, it } from 'vitest';
import type { QueueFigures, QueueStats } from '@/contract';
import { alerts, normalize, secondsSince, totals } from '@/wallboard/figures';

function queue(over: Partial<QueueFigures> & { sl?: number | null; answered?: number }): QueueFigures {
  return {
    waiting: 0,
    longest_wait_s: 0,
    agents: {},
    offers: { made: 0, accepted: 0, rejected: 0, expired: 0 },
    today: {
      joined: 0, refused: 0, answered: over.answered ?? 0, abandoned: 0, timed_out: 0,
      service_level: over.sl ?? null, service_level_with_abandoned: null, asa_s: null, abandonment_rate: null, aht_s: null,
    },
    service_level_s: 30,
    strategy: 'longest_idle',
    open: true,
    ...over,
  };
}

const full = (queues: Record<string, QueueFigures>): QueueStats => ({
  at: '2030-01-01T08:00:00+08:00',
  day: '2030-01-01',
  timezone: 'Asia/Shanghai',
  queues,
  agents: [
    { agent_id: 'a', display_name: 'A', status: 'available', reason: '', since: '2030-01-01T07:59:00+08:00', session_id: null },
    { agent_id: 'b', display_name: 'B', status: 'busy', reason: '', since: '2030-01-01T07:58:00+08:00', session_id: 's' },
    { agent_id: 'c', display_name: 'C', status: 'wrap_up', reason: '', since: '2030-01-01T07:59:30+08:00', session_id: null },
  ],
  sessions: [],
  targets: { service_level: 0.8, longest_wait_alert_s: 120 },
});

const stats = (queues: Record<string, QueueFigures>) => normalize(full(queues));

describe('wallboard figures', () => {
  it('takes a payload without agents, sessions and targets as empty, and raises no level alert', () => {
    const b = normalize({ at: 'x', day: 'd', queues: { a: queue({ sl: 0.1, answered: 5, waiting: 1, longest_wait_s: 999 }) } });
    expect(b.hasPeople).toBe(false);
    expect(b.agents).toEqual([]);
    expect(alerts(b)).toEqual([]);
    expect(totals(b).waiting).toBe(1);
    expect(stats({}).hasPeople).toBe(true);
  });

  it('adds the queues up, weighting service level by answered calls', () => {
    const t = totals(stats({ a: queue({ waiting: 2, longest_wait_s: 40, sl: 1, answered: 3 }), b: queue({ waiting: 1, longest_wait_s: 90, sl: 0, answered: 1 }) }));
    expect(t).toEqual({ waiting: 3, longestWaitS: 90, serviceLevel: 0.75, available: 1, busy: 2 });
  });

  it('has no service level before anyone was answered', () => {
    expect(totals(stats({ a: queue({ waiting: 1 }) })).serviceLevel).toBeNull();
  });

  it('alerts on a service level under target and on a wait past the limit', () => {
    const a = alerts(stats({
      ok: queue({ sl: 0.9, answered: 10, waiting: 1, longest_wait_s: 10 }),
      low: queue({ sl: 0.5, answered: 4 }),
      long: queue({ waiting: 2, longest_wait_s: 200 }),
    }));
    expect(a).toEqual([
      { kind: 'level', queue: 'low', value: 0.5, target: 0.8 },
      { kind: 'wait', queue: 'long', waitS: 200, limitS: 120 },
    ]);
  });

  it('times in state', () => {
    expect(secondsSince('2030-01-01T00:00:00Z', Date.parse('2030-01-01T00:01:30Z'))).toBe(90);
    expect(secondsSince('not a time', 0)).toBe(0);
  });
});
