import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPinia, setActivePinia } from 'pinia';
import { useTaxpayer } from '@/taxpayer/store';
import { vtax } from '@/core/hook';
import { authRoute, ENTERPRISE, signInBySms, taxpayerSession } from './fakes';

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
let session: () => unknown = () => taxpayerSession();

beforeEach(() => {
  setActivePinia(createPinia());
  sessionStorage.clear();
  calls = [];
  session = () => taxpayerSession();
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      calls.push({ url, init });
      const body = init?.body ? JSON.parse(String(init.body)) : {};
      if (url === '/api/auth/act-for') {
        return json(taxpayerSession(2, { acting: body.enterprise_id ? ENTERPRISE : null, options: [{ ...ENTERPRISE, functions: [], valid_until: null }] }));
      }
      if (url === '/api/auth/refresh') {
        if (body.refresh_token.startsWith('rt9')) return json({ error: { code: 'refresh_reused', message: 'reused' } }, 401);
        return json(taxpayerSession(3));
      }
      const auth = authRoute(url, init, session);
      if (auth) return auth;
      if (url === '/api/catalog') return json(CATALOG);
      if (url.startsWith('/api/deliveries')) return json({ deliveries: [{ id: 'd1' }, { id: 'd2' }], next_before: null });
      return json({ error: { code: 'not_found', message: url } }, 404);
    }),
  );
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

const bodyOf = (url: string) => JSON.parse(String(calls.filter((c) => c.url === url).at(-1)?.init?.body));

describe('the taxpayer store', () => {
  it('signs in by SMS code: the number with its region, the countdown, the code; then the question', async () => {
    const s = useTaxpayer();
    s.signin.region = '+852';
    s.signin.phone = ' 9123 4567 ';
    await s.action(() => s.sendCode('zh-HK'));
    expect(s.error).toBeNull();
    expect(bodyOf('/api/auth/sms/code')).toEqual({ phone: '+85291234567', language: 'zh-HK' });
    expect(s.signin.sentTo).toBe('+86138****8000');
    expect(s.resendIn).toBeGreaterThan(55);
    await s.action(() => s.sendCode('zh-HK')); // during the countdown: nothing is sent
    expect(calls.filter((c) => c.url === '/api/auth/sms/code')).toHaveLength(1);
    s.signin.code = '123456';
    await s.action(s.verifyCode);
    expect(bodyOf('/api/auth/sms/verify')).toEqual({ phone: '+85291234567', code: '123456' });
    expect(s.step).toBe('request');
    expect(s.token).toBe('tok');
    expect(s.name).toBe('Wang Fang');
    expect(vtax.taxpayerId).toBe('tp1');
    expect(s.status.key).toBe('status.signedIn');
    expect(s.form.category).toBe('registration');
    expect(s.notice).toEqual({ key: 'documents.pending', params: { n: 2 } });
    const pending = calls.find((c) => c.url.startsWith('/api/deliveries'));
    expect(pending?.url).toContain('status=pending');
    expect((pending?.init?.headers as Record<string, string>).Authorization).toBe('Bearer tok');
    expect(JSON.parse(sessionStorage.getItem('vtax.auth.taxpayer') || '{}').refresh_token).toMatch(/^rt1/);
  });

  it('shows a refused code by its code and stays on the identity step; checks what it can first', async () => {
    const s = useTaxpayer();
    await s.action(() => s.sendCode('en'));
    expect(s.error?.code).toBe('needPhone');
    s.signin.phone = '13800138000';
    await s.action(() => s.sendCode('en'));
    s.signin.code = '12345';
    await s.action(s.verifyCode);
    expect(s.error?.code).toBe('needCode');
    s.signin.code = '000000';
    await s.action(s.verifyCode);
    expect(s.error?.code).toBe('invalid_code');
    expect(vtax.lastError?.code).toBe('invalid_code');
    expect(s.step).toBe('identity');
    expect(s.token).toBeNull();
  });

  it('with enterprise grants: chooses whom to act for before the question', async () => {
    session = () => taxpayerSession(1, { options: [{ ...ENTERPRISE, functions: [], valid_until: null }] });
    const s = useTaxpayer();
    await signInBySms(s);
    expect(s.step).toBe('acting');
    const option = s.session?.options[0] ?? null;
    await s.action(() => s.chooseActing(option));
    expect(bodyOf('/api/auth/act-for')).toEqual({ refresh_token: `rt1-${'x'.repeat(20)}`, enterprise_id: 'e1', role: 'legal_representative' });
    expect(s.step).toBe('request');
    expect(s.token).toBe('tok2');
    expect(s.session?.acting?.uscc).toBe(ENTERPRISE.uscc);
    s.changeActing();
    expect(s.step).toBe('acting');
    await s.action(() => s.chooseActing(null)); // back to oneself: a switch without an enterprise
    expect(bodyOf('/api/auth/act-for')).toEqual({ refresh_token: `rt2-${'x'.repeat(20)}` });
  });

  it('refreshes the access token before it expires, rotating the refresh token', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const s = useTaxpayer();
    await signInBySms(s);
    expect(calls.some((c) => c.url === '/api/auth/refresh')).toBe(false);
    await vi.advanceTimersByTimeAsync(900 * 0.75 * 1000 + 10);
    expect(bodyOf('/api/auth/refresh')).toEqual({ refresh_token: `rt1-${'x'.repeat(20)}` });
    expect(s.token).toBe('tok3');
    expect(JSON.parse(sessionStorage.getItem('vtax.auth.taxpayer') || '{}').refresh_token).toMatch(/^rt3/);
  });

  it('a reload stays signed in through the stored refresh token; a refused refresh signs out', async () => {
    sessionStorage.setItem('vtax.auth.taxpayer', JSON.stringify({ refresh_token: `rt1-${'x'.repeat(20)}` }));
    const s = useTaxpayer();
    await s.restore();
    expect(s.step).toBe('request');
    expect(s.token).toBe('tok3');
    setActivePinia(createPinia());
    sessionStorage.setItem('vtax.auth.taxpayer', JSON.stringify({ refresh_token: `rt9-${'x'.repeat(20)}` }));
    const again = useTaxpayer();
    await again.restore();
    expect(again.step).toBe('identity');
    expect(again.token).toBeNull();
    expect(sessionStorage.getItem('vtax.auth.taxpayer')).toBeNull();
  });

  it('preselects the service language from the page language, and refuses an empty question', async () => {
    const s = useTaxpayer();
    await signInBySms(s);
    s.preselectLanguage('yue');
    expect(s.form.language).toBe('yue');
    s.preselectLanguage('pt'); // not in this catalog: unchanged
    expect(s.form.language).toBe('yue');
    s.form.question = '   ';
    await s.action(s.startRequest);
    expect(s.error?.code).toBe('needQuestion');
    expect(s.state).toBe('idle');
  });

  it('signing out ends the sign-in at the server and forgets the person', async () => {
    const s = useTaxpayer();
    await signInBySms(s);
    await s.action(s.signOut);
    const out = calls.find((c) => c.url === '/api/auth/logout');
    expect((out?.init?.headers as Record<string, string>).Authorization).toBe('Bearer tok');
    expect(bodyOf('/api/auth/logout')).toEqual({ refresh_token: `rt1-${'x'.repeat(20)}` });
    expect(s.token).toBeNull();
    expect(s.signin.phone).toBe('');
    expect(s.step).toBe('identity');
    expect(s.notice).toBeNull();
    expect(sessionStorage.getItem('vtax.auth.taxpayer')).toBeNull();
  });
});
