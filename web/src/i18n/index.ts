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

/** One area's strings in the four languages (web/src/i18n/areas/*.ts, one file per area of the
 * pages: the in-call chat, the materials, ...), merged over the base locale files, so that an
 * area's strings live beside each other and areas do not edit one shared file. */
export type AreaMessages = Record<Locale, Record<string, unknown>>;

type Tree = Record<string, unknown>;
function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
/** `base` with `extra` merged in, key by key; a leaf both define is an error (two areas would
 * silently overwrite each other's text). */
export function mergeMessages(base: Tree, extra: Tree, path = ''): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const here = path ? `${path}.${k}` : k;
    const prior = out[k];
    if (prior === undefined) out[k] = v;
    else if (isTree(prior) && isTree(v)) out[k] = mergeMessages(prior, v, here);
    else throw new Error(`i18n: ${here} is defined twice`);
  }
  return out;
}

const AREAS = import.meta.glob<{ default: AreaMessages }>('./areas/*.ts', { eager: true });
const BASE = { en, 'zh-CN': zhCN, 'zh-HK': zhHK, pt } as Record<Locale, typeof en>;

function withAreas(locale: Locale): typeof en {
  let tree = BASE[locale] as unknown as Tree;
  const areas = Object.entries(AREAS).sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [, area] of areas) tree = mergeMessages(tree, area.default[locale]);
  return tree as unknown as typeof en;
}

export const messages = {
  en: withAreas('en'),
  'zh-CN': withAreas('zh-CN'),
  'zh-HK': withAreas('zh-HK'),
  pt: withAreas('pt'),
};

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
