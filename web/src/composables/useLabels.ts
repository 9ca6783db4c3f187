// Names for people, in the page language: catalog entries (the server's name in this
// language, else ours by code, else English), error messages by code, dates in the service
// time zone.
import { useI18n } from 'vue-i18n';
import type { CatalogOut } from '@/contract';
import type { ApiError } from '@/core/errors';
import { formatBytes, formatClock, formatDateTime, DEFAULT_TIMEZONE } from '@/i18n/format';

type Kind = 'category' | 'language' | 'channel';

export function useLabels(getCatalog: () => CatalogOut | null) {
  const { t, te, locale } = useI18n();

  function catalogName(kind: Kind, code: string | null | undefined): string {
    if (!code) return '—';
    const c = getCatalog();
    const list = c ? (kind === 'category' ? c.categories : kind === 'language' ? c.languages : c.channels) : [];
    const entry = list.find((e) => e.code === code);
    const own = entry?.name?.[locale.value];
    if (own) return own;
    const key = `catalog.${kind}.${code}`;
    if (te(key)) return t(key);
    return entry?.name?.en || code;
  }

  function itemName(code: string): string {
    for (const cat of getCatalog()?.categories || []) {
      const item = cat.items.find((i) => i.code === code);
      if (!item) continue;
      // one language per page: a page in en or pt falls back to English, not to Chinese
      const own = item.name[locale.value];
      const fallback = locale.value.startsWith('zh') ? item.name['zh-CN'] || item.name.en : item.name.en || item.name['zh-CN'];
      return own || fallback || code;
    }
    return code;
  }

  function timezone(): string {
    return getCatalog()?.timezone || DEFAULT_TIMEZONE;
  }

  function when(iso: string | null | undefined): string {
    return formatDateTime(iso, locale.value, timezone());
  }

  function errorText(e: ApiError | null): string {
    if (!e) return '';
    if (e.code === 'queue_closed' && e.nextOpenAt) return t('errors.queue_closed_next', { at: when(e.nextOpenAt) });
    if (e.code === 'account_locked' && e.retryAfterS) return t('errors.account_locked_for', { minutes: Math.max(1, Math.ceil(e.retryAfterS / 60)) });
    const key = `errors.${e.code}`;
    return te(key) ? t(key) : t('errors.generic');
  }

  function label(group: 'result' | 'check' | 'followUp' | 'delivery' | 'outcome', code: string | null | undefined): string {
    if (!code) return '—';
    const key = `labels.${group}.${code}`;
    return te(key) ? t(key) : code;
  }

  return {
    t,
    locale,
    catalogName,
    itemName,
    when,
    errorText,
    label,
    clock: formatClock,
    bytes: (n: number | null | undefined) => formatBytes(n, locale.value),
  };
}
