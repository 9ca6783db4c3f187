import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPinia, setActivePinia } from 'pinia';
import { useTaxpayer } from '@/taxpayer/store';
import { vtax } from '@/core/hook';

const CATALOG = {
  version: 1,
  timezone: 'Asia/Shanghai',
  categories: [
    { code: 'registration', name: { 'zh-CN': '税务登记', en: 'Registration' }, items: [] },
    { code: 'invoices', name: { 'zh-CN': '发票办理', en: 'Invoices' }, items: [] },
  ],
  languages: [
    { code: 'zh-CN', name: { en: 'Mandarin' } },
    { code: 'yue', name: { en: 'Cantonese' } },
  ],
  channels: [{ code: 'web', name: { en: 'Web' } }],
};

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

let calls: { url: string; init: RequestInit | undefined }[] = [];

beforeEach(() => {
  setActivePinia(createPinia());
  calls = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      calls.push({ url, init });
      if (url === '/api/auth/taxpayer') {
        const body = JSON.parse(String(init?.body));
        if (body.id_number === 'BAD') return json({ error: { code: 'invalid_id', message: 'bad check character' } }, 400);
        return json({ token: 'tok', taxpayer_id: 'tp1', role: 'taxpayer', expires_in_s: 3600 });
      }
      if (url === '/api/catalog') return json(CATALOG);
      if (url.startsWith('/api/deliveries')) return json({ deliveries: [{ id: 'd1' }, { id: 'd2' }], next_before: null });
      return json({ error: { code: 'not_found', message: url } }, 404);
    }),
  );
});
afterEach(() => vi.unstubAllGlobals());

describe('the taxpayer store', () => {
  it('signs in: upper-cases the id, loads the catalog, reminds of pending documents', async () => {
    const s = useTaxpayer();
    s.form.idNumber = ' 91350100m000100y43 ';
    s.form.name = 'Test Co.';
    await s.action(s.signIn);
    expect(s.error).toBeNull();
    const auth = calls.find((c) => c.url === '/api/auth/taxpayer');
    expect(JSON.parse(String(auth?.init?.body))).toEqual({ id_type: 'uscc', id_number: '91350100M000100Y43', name: 'Test Co.' });
    expect(s.step).toBe('request');
    expect(s.status.key).toBe('status.signedIn');
    expect(s.form.category).toBe('registration');
    expect(s.notice).toEqual({ key: 'documents.pending', params: { n: 2 } });
    const pending = calls.find((c) => c.url.startsWith('/api/deliveries'));
    expect(pending?.url).toContain('status=pending');
    expect((pending?.init?.headers as Record<string, string>).Authorization).toBe('Bearer tok');
  });

  it('shows a refused sign-in by its code and stays on the identity step', async () => {
    const s = useTaxpayer();
    s.form.idNumber = 'bad';
    await s.action(s.signIn);
    expect(s.error?.code).toBe('invalid_id');
    expect(vtax.lastError?.code).toBe('invalid_id');
    expect(s.step).toBe('identity');
  });

  it('preselects the service language from the page language, and refuses an empty question', async () => {
    const s = useTaxpayer();
    s.form.idNumber = '91350100M000100Y43';
    await s.action(s.signIn);
    s.preselectLanguage('yue');
    expect(s.form.language).toBe('yue');
    s.preselectLanguage('pt'); // not in this catalog: unchanged
    expect(s.form.language).toBe('yue');
    s.form.question = '   ';
    await s.action(s.startRequest);
    expect(s.error?.code).toBe('needQuestion');
    expect(s.state).toBe('idle');
  });

  it('signing out forgets the person', async () => {
    const s = useTaxpayer();
    s.form.idNumber = '91350100M000100Y43';
    await s.action(s.signIn);
    s.signOut();
    expect(s.token).toBeNull();
    expect(s.form.idNumber).toBe('');
    expect(s.step).toBe('identity');
    expect(s.notice).toBeNull();
  });
});
