// What supervisors plan for appointments (预约): the staffing plan the slots are made from
// (periods of agents with a skill and a language, every week or on one date; replaced as a
// whole), the working-day calendar (the years in force with their holidays and adjusted
// working weekends 调休; a year's file imported over the shipped one) and the appointment
// figures (bookings per day, pre-review outcomes, no-shows, on-time starts, callbacks).
// The forms check their input first, so refusals are in the page language; the server checks
// again. REST: appointment_staffing, appointment_set_staffing, appointment_calendar_years,
// appointment_calendar, appointment_figures (docs/appointments.md).
import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import type { CalendarYearOut, FiguresOut, StaffingPeriod } from '@/contract';
import { api } from '@/core/api';
import { ApiError } from '@/core/errors';
import { vtax } from '@/core/hook';
import { DEFAULT_TIMEZONE } from '@/i18n/format';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];
/** the server's limit for one calendar file (signaling/appointments_api.py, CALENDAR_MAX) */
export const CALENDAR_MAX_BYTES = 64 * 1024;
/** the server's limit of periods in one plan (StaffingPlanIn) */
export const MAX_PERIODS = 300;
const CLOCK = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
/** booking states that count as "came" (vtax/appointments/figures.py, CAME) */
const CAME = ['checked_in', 'queued', 'served'] as const;

/** One period as the form edits it (strings as typed). */
export interface PeriodForm {
  key: number;
  kind: 'weekly' | 'dated';
  weekdays: Weekday[];
  day: string;
  start: string;
  end: string;
  category: string;
  language: string;
  agents: string | number;
}

/** `mon-fri`, `sat,sun`, `mon,wed-fri` -> the weekdays, in week order. */
export function parseDays(spec: string): Weekday[] {
  const out = new Set<Weekday>();
  for (const part of spec.toLowerCase().split(',').map((p) => p.trim()).filter(Boolean)) {
    const [a, b] = part.split('-').map((x) => x.trim()) as [string, string | undefined];
    const i = WEEKDAYS.indexOf(a as Weekday);
    const j = b === undefined ? i : WEEKDAYS.indexOf(b as Weekday);
    // a range runs forward (vtax/queue/queues.py, _day_set)
    if (i < 0 || j < i) throw new ApiError('badDays', spec);
    for (let k = i; k <= j; k++) out.add(WEEKDAYS[k] as Weekday);
  }
  return WEEKDAYS.filter((d) => out.has(d));
}

/** The weekdays as the server writes them: runs of three or more as ranges (`mon-fri`). */
export function formatDays(days: readonly Weekday[]): string {
  const idx = WEEKDAYS.map((d, i) => (days.includes(d) ? i : -1)).filter((i) => i >= 0);
  const parts: string[] = [];
  for (let n = 0; n < idx.length; ) {
    let m = n;
    while (m + 1 < idx.length && (idx[m + 1] as number) === (idx[m] as number) + 1) m++;
    const a = WEEKDAYS[idx[n] as number] as string;
    const b = WEEKDAYS[idx[m] as number] as string;
    if (m - n >= 2) parts.push(`${a}-${b}`);
    else for (let k = n; k <= m; k++) parts.push(WEEKDAYS[idx[k] as number] as string);
    n = m + 1;
  }
  return parts.join(',');
}

let keys = 0;
export function periodForm(p?: StaffingPeriod): PeriodForm {
  return {
    key: ++keys,
    kind: p?.day ? 'dated' : 'weekly',
    weekdays: p?.days ? parseDays(p.days) : p?.day ? [] : ['mon', 'tue', 'wed', 'thu', 'fri'],
    day: p?.day || '',
    start: p?.start || '09:00',
    end: p?.end || '12:00',
    category: p?.category || '',
    language: p?.language || '',
    agents: p ? String(p.agents) : '1',
  };
}

/** The form's rows as the plan the server takes; a bad row is refused with its number and
 * field (`ApiError('staffRow', '<n>:<field>')`). */
export function toPlan(rows: PeriodForm[]): StaffingPeriod[] {
  if (rows.length > MAX_PERIODS) throw new ApiError('tooManyPeriods', String(MAX_PERIODS));
  return rows.map((r, i) => {
    const bad = (field: string) => new ApiError('staffRow', `${i + 1}:${field}`);
    if (!r.category) throw bad('category');
    if (!r.language) throw bad('language');
    if (!CLOCK.test(r.start)) throw bad('start');
    if (!CLOCK.test(r.end)) throw bad('end');
    if (r.start >= r.end) throw bad('order');
    // a number input's v-model hands a number, an emptied one ''
    const agents = String(r.agents).trim();
    if (!/^\d{1,4}$/.test(agents) || Number(agents) > 1000) throw bad('agents');
    const base = { start: r.start, end: r.end, category: r.category, language: r.language, agents: Number(agents) };
    if (r.kind === 'dated') {
      if (!DAY.test(r.day)) throw bad('day');
      return { ...base, day: r.day };
    }
    if (!r.weekdays.length) throw bad('days');
    return { ...base, days: formatDays(r.weekdays) };
  });
}

/** Today in the service time zone (YYYY-MM-DD). */
export function zoneToday(zone: string, now: Date = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
}
/** `day` moved by `n` days (calendar dates, no zone involved). */
export function addDays(day: string, n: number): string {
  const d = new Date(`${day}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** The figures' totals over the days of the answer (rates recomputed from the counts). */
export function totals(f: FiguresOut | null) {
  const t = { booked: 0, approved: 0, redirected_online: 0, rejected: 0, no_show: 0, served: 0, served_on_time: 0, came: 0 };
  for (const d of f?.days || []) {
    t.booked += d.booked;
    t.approved += d.approved;
    t.redirected_online += d.redirected_online;
    t.rejected += d.rejected;
    t.no_show += d.no_show;
    t.served += d.served;
    t.served_on_time += d.served_on_time;
    // "came" as the server counts it (vtax/appointments/figures.py, CAME)
    for (const st of CAME) t.came += d.states[st] ?? 0;
  }
  return {
    ...t,
    no_show_rate: t.no_show + t.came ? t.no_show / (t.no_show + t.came) : null,
    on_time_rate: t.served ? t.served_on_time / t.served : null,
  };
}

export const usePlanning = defineStore('planning', () => {
  let tokenOf: () => string | null = () => null;
  let zoneOf: () => string = () => DEFAULT_TIMEZONE;
  const rows = ref<PeriodForm[]>([]);
  const staffingSaved = ref(false);
  const years = shallowRef<CalendarYearOut[]>([]);
  const imported = shallowRef<CalendarYearOut | null>(null);
  /** the server's own words about a refused calendar file (a technical detail, English) */
  const calendarDetail = ref('');
  const figures = shallowRef<FiguresOut | null>(null);
  const range = ref<{ from: string; to: string; onTime: string | number }>({ from: '', to: '', onTime: '5' });

  /** The page's sign-in and service zone, read through these. */
  function use(token: () => string | null, zone: () => string): void {
    tokenOf = token;
    zoneOf = zone;
  }

  async function loadStaffing(): Promise<void> {
    const plan = await api('get', '/api/appointments/staffing', { token: tokenOf() });
    rows.value = plan.periods.map((p) => periodForm(p));
    vtax.staffing = plan.periods;
  }
  function addRow(category = '', language = ''): void {
    const r = periodForm();
    r.category = category;
    r.language = language;
    rows.value.push(r);
    staffingSaved.value = false;
  }
  function removeRow(key: number): void {
    rows.value = rows.value.filter((r) => r.key !== key);
    staffingSaved.value = false;
  }
  async function saveStaffing(): Promise<void> {
    staffingSaved.value = false;
    const periods = toPlan(rows.value);
    const plan = await api('put', '/api/appointments/staffing', { token: tokenOf(), body: { periods } });
    rows.value = plan.periods.map((p) => periodForm(p));
    vtax.staffing = plan.periods;
    staffingSaved.value = true;
  }

  async function loadCalendar(): Promise<void> {
    const data = await api('get', '/api/appointments/calendar', { token: tokenOf() });
    years.value = data.years;
    vtax.calendarYears = data.years.map((y) => ({ year: y.year, status: y.status, holidays: y.holidays.length, working: y.working_weekend_days }));
  }
  /** Import one year's file (vtax/data/calendar-YYYY.json's shape), replacing that year. */
  async function importCalendar(file: File | null | undefined): Promise<void> {
    imported.value = null;
    calendarDetail.value = '';
    if (!file) throw new ApiError('pickFirst');
    if (file.size > CALENDAR_MAX_BYTES) throw new ApiError('calendarTooLarge');
    let data: unknown;
    try {
      data = JSON.parse(await file.text());
    } catch {
      throw new ApiError('calendarNotJson');
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ApiError('calendarNotJson');
    try {
      imported.value = await api('put', '/api/appointments/calendar', { token: tokenOf(), body: data as Record<string, unknown> });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'invalid_calendar') calendarDetail.value = e.message;
      throw e;
    }
    vtax.calendarImported = imported.value;
    await loadCalendar();
  }

  function defaultRange(): void {
    if (range.value.from && range.value.to) return;
    const today = zoneToday(zoneOf());
    range.value = { from: addDays(today, -7), to: addDays(today, 7), onTime: range.value.onTime === '' ? '5' : range.value.onTime };
  }
  async function loadFigures(): Promise<void> {
    defaultRange();
    const { from, to, onTime } = range.value;
    if (!DAY.test(from) || !DAY.test(to)) throw new ApiError('figuresRange');
    if (to < from || addDays(from, 366) < to) throw new ApiError('figuresRange');
    const minutes = Number(onTime);
    if (!/^\d{1,3}$/.test(String(onTime).trim()) || minutes > 240) throw new ApiError('figuresOnTime');
    figures.value = await api('get', '/api/appointments/figures', { token: tokenOf(), query: { from, to, on_time_minutes: minutes } });
    vtax.appointmentFigures = figures.value;
  }

  async function loadAll(): Promise<void> {
    await Promise.all([loadStaffing(), loadCalendar(), loadFigures()]);
  }

  function reset(): void {
    rows.value = [];
    years.value = [];
    imported.value = null;
    figures.value = null;
    staffingSaved.value = false;
    calendarDetail.value = '';
  }

  return {
    rows, staffingSaved, years, imported, calendarDetail, figures, range,
    use, loadStaffing, addRow, removeRow, saveStaffing, loadCalendar, importCalendar, loadFigures, loadAll, reset,
  };
});
