// Dates, numbers and durations for people: in the page language and the service time zone
// (the catalog's `timezone`, default Asia/Shanghai).
export const DEFAULT_TIMEZONE = 'Asia/Shanghai';

const INTL_LOCALE: Record<string, string> = { 'zh-CN': 'zh-CN', 'zh-HK': 'zh-HK', en: 'en-GB', pt: 'pt-PT' };

export function intlLocale(locale: string): string {
  return INTL_LOCALE[locale] || locale;
}

/** A date and time in the service zone ("2030-01-31 09:05" style per language). */
export function formatDateTime(iso: string | null | undefined, locale: string, timeZone = DEFAULT_TIMEZONE): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return new Intl.DateTimeFormat(intlLocale(locale), { dateStyle: 'medium', timeStyle: 'short', timeZone }).format(d);
}

/** A duration in seconds as m:ss (or h:mm:ss). */
export function formatClock(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return '—';
  const total = Math.max(0, Math.round(Number(seconds)));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export function formatBytes(n: number | null | undefined, locale: string): string {
  if (n === null || n === undefined) return '—';
  const nf = (v: number) => new Intl.NumberFormat(intlLocale(locale), { maximumFractionDigits: 1 }).format(v);
  if (n < 1024) return `${nf(n)} B`;
  if (n < 1024 * 1024) return `${nf(n / 1024)} KB`;
  return `${nf(n / 1024 / 1024)} MB`;
}

/** YYYYMMDD-HHMMSS in the service zone, for a file's name (what the officer's clock says). */
export function fileStamp(d: Date, timeZone?: string | null): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: timeZone || DEFAULT_TIMEZONE,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(d);
  const get = (type: string) => parts.find((p) => p.type === type)?.value || '00';
  return `${get('year')}${get('month')}${get('day')}-${get('hour')}${get('minute')}${get('second')}`;
}
