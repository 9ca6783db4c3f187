import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPinia, setActivePinia } from 'pinia';
import { addDays, formatDays, parseDays, periodForm, toPlan, totals, usePlanning, zoneToday } from '@/supervisor/planning';
import { ApiError } from '@/core/errors';

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}
const YEAR_2027 = {
  year: 2027, status: 'official', source: 'notice', note: '', days_off: 3, working_weekend_days: 1,
  holidays: [{ code: 'new_year', name: { 'zh-CN': '元旦', 'zh-HK': '元旦', en: "New Year's Day", pt: 'Ano Novo' }, off_first: '2027-01-01', off_last: '2027-01-03', working: ['2027-01-09'] }],
};
let calls: { url: string; method: string; body: unknown }[] = [];
let plan: unknown[] = [];
let years: unknown[] = [];

beforeEach(() => {
  setActivePinia(createPinia());
  calls = [];
  plan = [{ days: 'mon-fri', start: '09:00', end: '12:00', category: 'invoices', language: 'zh-CN', agents: 2 }];
  years = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      const body = init?.body ? JSON.parse(String(init.body)) : null;
      calls.push({ url, method: init?.method || 'GET', body });
      if (url === '/api/appointments/staffing' && init?.method === 'PUT') {
        plan = body.periods;
        return json({ periods: plan });
      }
      if (url === '/api/appointments/staffing') return json({ periods: plan });
      if (url === '/api/appointments/calendar' && init?.method === 'PUT') {
        if (body.year !== 2027) return json({ error: { code: 'invalid_calendar', message: 'year: Input should be less than or equal to 2100' } }, 400);
        years = [YEAR_2027];
        return json(YEAR_2027);
      }
      if (url === '/api/appointments/calendar') return json({ years });
      if (url.startsWith('/api/appointments/figures')) return json({ days: [], callbacks: { asked: 0, told: 0, connected: 0, abandoned: 0 } });
      return json({ error: { code: 'not_found', message: url } }, 404);
    }),
  );
});
afterEach(() => vi.unstubAllGlobals());

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return `${(e as ApiError).code}:${(e as ApiError).message}`;
  }
  return 'ok';
}

describe('weekdays as the server writes them', () => {
  it('reads ranges and lists', () => {
    expect(parseDays('mon-fri')).toEqual(['mon', 'tue', 'wed', 'thu', 'fri']);
    expect(parseDays('sat,sun')).toEqual(['sat', 'sun']);
    expect(parseDays('mon, wed-fri')).toEqual(['mon', 'wed', 'thu', 'fri']);
    expect(() => parseDays('sat-mon')).toThrow(); // as the server: a range runs forward
    expect(() => parseDays('funday')).toThrow();
  });
  it('writes runs of three or more as ranges, and round-trips', () => {
    expect(formatDays(['mon', 'tue', 'wed', 'thu', 'fri'])).toBe('mon-fri');
    expect(formatDays(['mon', 'tue', 'thu'])).toBe('mon,tue,thu');
    expect(formatDays(['mon', 'wed', 'thu', 'fri', 'sun'])).toBe('mon,wed-fri,sun');
    for (const spec of ['mon-fri', 'sat,sun', 'mon,wed-fri,sun', 'tue']) expect(formatDays(parseDays(spec))).toBe(spec);
  });
});

describe('the staffing form', () => {
  it('turns rows into the plan and refuses a bad row by its number and field', () => {
    const weekly = periodForm({ days: 'mon-fri', start: '09:00', end: '12:00', category: 'invoices', language: 'zh-CN', agents: 2 });
    const dated = periodForm({ day: '2026-12-12', start: '14:00', end: '17:30', category: 'invoices', language: 'en', agents: 1 });
    expect(dated.kind).toBe('dated');
    expect(toPlan([weekly, dated])).toEqual([
      { days: 'mon-fri', start: '09:00', end: '12:00', category: 'invoices', language: 'zh-CN', agents: 2 },
      { day: '2026-12-12', start: '14:00', end: '17:30', category: 'invoices', language: 'en', agents: 1 },
    ]);
    expect(codeOf(() => toPlan([weekly, { ...dated, end: '13:00' }]))).toBe('staffRow:2:order');
    expect(codeOf(() => toPlan([{ ...weekly, weekdays: [] }]))).toBe('staffRow:1:days');
    expect(codeOf(() => toPlan([{ ...weekly, agents: '2.5' }]))).toBe('staffRow:1:agents');
    expect(codeOf(() => toPlan([{ ...weekly, agents: '1001' }]))).toBe('staffRow:1:agents');
    expect(codeOf(() => toPlan([{ ...weekly, agents: '' }]))).toBe('staffRow:1:agents');
    expect(toPlan([{ ...weekly, agents: 4 }])[0]?.agents).toBe(4); // a number input's v-model
    expect(codeOf(() => toPlan([{ ...weekly, category: '' }]))).toBe('staffRow:1:category');
    expect(codeOf(() => toPlan([{ ...dated, day: '' }]))).toBe('staffRow:1:day');
    expect(codeOf(() => toPlan([{ ...weekly, start: '9:00' }]))).toBe('staffRow:1:start');
  });

  it('loads the plan, edits a row, adds one and saves the whole plan', async () => {
    const p = usePlanning();
    p.use(() => 'tok', () => 'Asia/Shanghai');
    await p.loadStaffing();
    expect(p.rows).toHaveLength(1);
    (p.rows[0] as { agents: string }).agents = '3';
    p.addRow('invoices', 'en');
    const added = p.rows[1] as { kind: string; day: string };
    added.kind = 'dated';
    added.day = '2026-12-12';
    await p.saveStaffing();
    const put = calls.find((c) => c.method === 'PUT');
    expect(put?.body).toEqual({
      periods: [
        { days: 'mon-fri', start: '09:00', end: '12:00', category: 'invoices', language: 'zh-CN', agents: 3 },
        { day: '2026-12-12', start: '09:00', end: '12:00', category: 'invoices', language: 'en', agents: 1 },
      ],
    });
    expect(p.staffingSaved).toBe(true);
  });

  it('sends nothing when a row is bad', async () => {
    const p = usePlanning();
    p.use(() => 'tok', () => 'Asia/Shanghai');
    p.addRow();
    await expect(p.saveStaffing()).rejects.toMatchObject({ code: 'staffRow', message: '1:category' });
    expect(calls.filter((c) => c.method === 'PUT')).toHaveLength(0);
  });
});

describe('the calendar import', () => {
  const file = (text: string, size?: number) => {
    const f = new File([text], 'calendar-2027.json', { type: 'application/json' });
    if (size !== undefined) Object.defineProperty(f, 'size', { value: size });
    return f;
  };
  it('refuses a missing, too large or non-JSON file before sending', async () => {
    const p = usePlanning();
    await expect(p.importCalendar(null)).rejects.toMatchObject({ code: 'pickFirst' });
    await expect(p.importCalendar(file('{}', 64 * 1024 + 1))).rejects.toMatchObject({ code: 'calendarTooLarge' });
    await expect(p.importCalendar(file('not json'))).rejects.toMatchObject({ code: 'calendarNotJson' });
    await expect(p.importCalendar(file('[1,2]'))).rejects.toMatchObject({ code: 'calendarNotJson' });
    expect(calls).toHaveLength(0);
  });
  it('imports a year and reads the years again; a refused file keeps the server\'s detail', async () => {
    const p = usePlanning();
    p.use(() => 'tok', () => 'Asia/Shanghai');
    await p.importCalendar(file(JSON.stringify({ year: 2027, holidays: [] })));
    expect(p.imported?.year).toBe(2027);
    expect(p.years.map((y) => y.year)).toEqual([2027]);
    expect(p.years[0]?.holidays[0]?.working).toEqual(['2027-01-09']);
    await expect(p.importCalendar(file(JSON.stringify({ year: 3000 })))).rejects.toMatchObject({ code: 'invalid_calendar' });
    expect(p.calendarDetail).toContain('2100');
    expect(p.imported).toBeNull();
  });
});

describe('the figures', () => {
  it('asks for the days around today in the service zone by default', async () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-12-06T17:00:00Z')); // 7 Dec 01:00 in Shanghai
    try {
      expect(zoneToday('Asia/Shanghai')).toBe('2026-12-07');
      expect(zoneToday('UTC')).toBe('2026-12-06');
      const p = usePlanning();
      p.use(() => 'tok', () => 'Asia/Shanghai');
      await p.loadFigures();
      expect(calls.at(-1)?.url).toBe('/api/appointments/figures?from=2026-11-30&to=2026-12-14&on_time_minutes=5');
    } finally {
      vi.useRealTimers();
    }
  });
  it('refuses a range that ends before it starts, or is longer than a year', async () => {
    const p = usePlanning();
    p.range = { from: '2026-12-10', to: '2026-12-01', onTime: '5' };
    await expect(p.loadFigures()).rejects.toMatchObject({ code: 'figuresRange' });
    p.range = { from: '2026-01-01', to: addDays('2026-01-01', 367), onTime: '5' };
    await expect(p.loadFigures()).rejects.toMatchObject({ code: 'figuresRange' });
    p.range = { from: '2026-12-01', to: '2026-12-02', onTime: '300' };
    await expect(p.loadFigures()).rejects.toMatchObject({ code: 'figuresOnTime' });
    expect(calls).toHaveLength(0);
  });
  it('totals the days with rates from the counts', () => {
    const day = (d: string, booked: number, noShow: number, states: Record<string, number>, served: number, onTime: number) => ({
      day: d, booked, states, approved: 0, redirected_online: 1, rejected: 0, no_show: noShow, no_show_rate: null, served, served_on_time: onTime, on_time_rate: null,
    });
    const t = totals({ days: [day('2026-12-01', 4, 1, { served: 3 }, 3, 2), day('2026-12-02', 2, 1, { checked_in: 1 }, 0, 0)], callbacks: { asked: 0, told: 0, connected: 0, abandoned: 0 } });
    expect(t.booked).toBe(6);
    expect(t.redirected_online).toBe(2);
    expect(t.no_show_rate).toBeCloseTo(2 / 6);
    expect(t.on_time_rate).toBeCloseTo(2 / 3);
    expect(totals(null).no_show_rate).toBeNull();
  });
});
