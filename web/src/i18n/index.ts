// One language at a time: zh-CN, zh-HK, en, pt. A first visit follows the browser's
// languages; the switcher's choice is remembered (localStorage `vtax.lang`).
import { createI18n } from 'vue-i18n';
import en from './locales/en';
import zhCN from './locales/zh-CN';
import zhHK from './locales/zh-HK';
import pt from './locales/pt';

export const LOCALES = ['zh-CN', 'zh-HK', 'en', 'pt'] as const;
export type Locale = (typeof LOCALES)[number];
/** Each language's own name, for the switcher. */
export const LOCALE_NAMES: Record<Locale, string> = { 'zh-CN': '简体中文', 'zh-HK': '繁體中文', en: 'English', pt: 'Português' };
/** The service language of the call preselected for each page language (catalog codes). */
export const SERVICE_LANGUAGE: Record<Locale, string> = { 'zh-CN': 'zh-CN', 'zh-HK': 'yue', en: 'en', pt: 'pt' };
const STORE_KEY = 'vtax.lang';

/** Map one BCP 47 tag to a supported page language, or null. */
export function matchLocale(tag: string): Locale | null {
  const t = tag.toLowerCase();
  if (t.startsWith('zh')) {
    if (/^zh-(hk|mo|tw)\b/.test(t) || t.includes('hant') || t.startsWith('yue')) return 'zh-HK';
    return 'zh-CN';
  }
  if (t.startsWith('yue')) return 'zh-HK';
  if (t.startsWith('en')) return 'en';
  if (t.startsWith('pt')) return 'pt';
  return null;
}

/** The stored choice, else the first of the browser's languages that we speak, else zh-CN. */
export function detectLocale(languages: readonly string[] = navigator.languages || [navigator.language]): Locale {
  try {
    const stored = localStorage.getItem(STORE_KEY);
    if (stored && (LOCALES as readonly string[]).includes(stored)) return stored as Locale;
  } catch {
    /* no storage */
  }
  for (const tag of languages) {
    const m = matchLocale(tag);
    if (m) return m;
  }
  return 'zh-CN';
}

export const messages = { en, 'zh-CN': zhCN, 'zh-HK': zhHK, pt };

export function makeI18n(locale: Locale = detectLocale()) {
  const i18n = createI18n({
    legacy: false,
    locale,
    fallbackLocale: 'en',
    messages,
    missingWarn: false,
    fallbackWarn: false,
  });
  applyDocumentLang(locale);
  return i18n;
}

export function applyDocumentLang(locale: Locale): void {
  if (typeof document !== 'undefined') document.documentElement.lang = locale;
}

export function rememberLocale(locale: Locale): void {
  applyDocumentLang(locale);
  try {
    localStorage.setItem(STORE_KEY, locale);
  } catch {
    /* no storage */
  }
}
