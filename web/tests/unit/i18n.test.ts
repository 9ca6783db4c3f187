import { describe, expect, it } from 'vitest';
import { messages, detectLocale, matchLocale, LOCALES } from '@/i18n';
import { fileStamp, formatClock, formatDateTime } from '@/i18n/format';
import { ERROR_CODES } from '@/contract';

type Tree = { [k: string]: string | Tree };

function flatten(tree: Tree, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string') out.set(key, v);
    else for (const [kk, vv] of flatten(v, key)) out.set(kk, vv);
  }
  return out;
}

const placeholders = (s: string) => [...new Set([...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]))].sort();
const HAN = /[\u4e00-\u9fff]/;
const LATIN_WORD = /[A-Za-z]{3,}/;

describe('message catalogs', () => {
  const reference = flatten(messages.en as unknown as Tree);

  for (const locale of LOCALES) {
    it(`${locale} has every key of en, no more, none empty, same placeholders`, () => {
      const flat = flatten(messages[locale] as unknown as Tree);
      expect([...flat.keys()].sort()).toEqual([...reference.keys()].sort());
      for (const [k, v] of flat) {
        expect(v.trim(), k).not.toBe('');
        expect(placeholders(v), k).toEqual(placeholders(reference.get(k) || ''));
      }
    });

    it(`${locale} prints one language per string (no "下一步 Next")`, () => {
      for (const [k, v] of flatten(messages[locale] as unknown as Tree)) {
        const text = v.replace(/\{\w+\}/g, '').replace(/V-Tax/g, '').replace(/\bAlt\+[A-Z]\b|\bPDF\b/g, ''); // key and format names stay
        if (locale.startsWith('zh')) expect(LATIN_WORD.test(text), `${k}: ${v}`).toBe(false);
        else expect(HAN.test(text), `${k}: ${v}`).toBe(false);
      }
    });
  }

  it('has a message for every error code a taxpayer can meet', () => {
    const errs = messages.en.errors as Record<string, string>;
    const taxpayerCodes = ERROR_CODES.filter((c) =>
      ['invalid_payload', 'invalid_id', 'queue_closed', 'queue_full', 'wait_too_long', 'no_agents', 'already_queued', 'in_session', 'session_ended', 'already_rated', 'rate_limited', 'hash_mismatch'].includes(c),
    );
    for (const c of taxpayerCodes) expect(errs[c], c).toBeTruthy();
  });
});

describe('language detection', () => {
  it('follows the browser languages', () => {
    localStorage.removeItem('vtax.lang');
    expect(detectLocale(['en-US', 'zh-CN'])).toBe('en');
    expect(detectLocale(['zh-TW'])).toBe('zh-HK');
    expect(detectLocale(['zh-Hant-MO'])).toBe('zh-HK');
    expect(detectLocale(['zh'])).toBe('zh-CN');
    expect(detectLocale(['pt-BR'])).toBe('pt');
    expect(detectLocale(['fr-FR'])).toBe('zh-CN');
    expect(matchLocale('de')).toBeNull();
  });

  it('a remembered choice wins', () => {
    localStorage.setItem('vtax.lang', 'pt');
    expect(detectLocale(['en-US'])).toBe('pt');
    localStorage.removeItem('vtax.lang');
  });
});

describe('formatting', () => {
  it('shows times in the service time zone', () => {
    // 00:30 UTC is 08:30 in Asia/Shanghai
    expect(formatDateTime('2030-01-31T00:30:00Z', 'en')).toContain('08:30');
    expect(formatDateTime('2030-01-31T00:30:00Z', 'en', 'UTC')).toContain('00:30');
  });
  it('durations', () => {
    expect(formatClock(65)).toBe('1:05');
    expect(formatClock(3725)).toBe('1:02:05');
    expect(formatClock(null)).toBe('—');
  });
  it("a photo's file name stamp, in the service time zone (none given: the default one)", () => {
    const at = new Date('2030-01-31T16:05:09Z');
    expect(fileStamp(at)).toBe('20300201-000509');
    expect(fileStamp(at, 'Europe/Lisbon')).toBe('20300131-160509');
    expect(fileStamp(at, '')).toBe('20300201-000509');
  });
});

describe('area message files', () => {
  it('merge key by key and refuse a leaf defined twice', async () => {
    const { mergeMessages } = await import('@/i18n');
    expect(mergeMessages({ a: { b: 'x' } }, { a: { c: 'y' } })).toEqual({ a: { b: 'x', c: 'y' } });
    expect(() => mergeMessages({ a: { b: 'x' } }, { a: { b: 'z' } })).toThrow('a.b is defined twice');
  });
});
