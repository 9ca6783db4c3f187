// Two small page harnesses (the form, the set-up card), each a component around the one tested.
/* eslint-disable vue/one-component-per-file */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defineComponent, h, nextTick, shallowRef } from 'vue';
import { flushPromises, mount } from '@vue/test-utils';
import StaffLogin from '@/components/StaffLogin.vue';
import StaffFactorSetup from '@/components/StaffFactorSetup.vue';
import { makeI18n } from '@/i18n';
import { actionRunner } from '@/core/action';
import { asApiError, type ApiError } from '@/core/errors';
import { useLabels } from '@/composables/useLabels';
import type { StaffToken } from '@/contract';

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

let logins: Record<string, unknown>[] = [];
let totp = '';
let locked = false;
let enrolled = false;
let confirmed: { code: string; auth: string | null }[] = [];

beforeEach(() => {
  logins = [];
  totp = '';
  locked = false;
  enrolled = false;
  confirmed = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      const auth = new Headers(init?.headers).get('Authorization');
      if (url === '/api/staff/totp') {
        if (enrolled) return json({ error: { code: 'invalid_state', message: 'already on' } }, 409);
        return json({ secret: 'JBSWY3DPEHPK3PXPJBSWY3DP', provisioning_uri: 'otpauth://totp/V-Tax:agent1?secret=JBSWY3DPEHPK3PXPJBSWY3DP' });
      }
      if (url === '/api/staff/totp/confirm') {
        const { code } = JSON.parse(String(init?.body)) as { code: string };
        confirmed.push({ code, auth });
        if (code !== '246810') return json({ error: { code: 'invalid_code', message: 'no match' } }, 400);
        enrolled = true;
        return new Response(null, { status: 204 });
      }
      if (url !== '/api/auth/login') return json({ error: { code: 'not_found', message: url } }, 404);
      const body = JSON.parse(String(init?.body)) as { username: string; password: string; code?: string };
      logins.push(body);
      if (locked) return json({ error: { code: 'account_locked', message: 'locked' } }, 423, { 'Retry-After': '840' });
      if (body.password !== 'pw') return json({ error: { code: 'invalid_credentials', message: 'wrong' } }, 401);
      if (totp && !body.code) return json({ error: { code: 'second_factor_required', message: 'code' } }, 401);
      if (totp && body.code !== totp) return json({ error: { code: 'invalid_credentials', message: 'wrong' } }, 401);
      const role = body.username.startsWith('agent') ? 'agent' : 'supervisor';
      return json({ token: `tok-${body.username}`, role, user: { id: 'u1', username: body.username, display_name: 'One' }, expires_in_s: 3600 });
    }),
  );
});
afterEach(() => {
  vi.unstubAllGlobals();
  document.body.innerHTML = '';
});

/** A page around the form: its own error alert (by code, as the pages' L.errorText) and
 * what it does after the sign-in. */
function page(role: 'agent' | 'supervisor') {
  const error = shallowRef<ApiError | null>(null);
  const busy = shallowRef(false);
  const signedIn = vi.fn(async (_res: StaffToken, _how: { withCode: boolean }) => {});
  const action = actionRunner({ setBusy: (on) => (busy.value = on), setError: (e) => (error.value = e ? asApiError(e) : null) });
  const Page = defineComponent({
    setup() {
      const L = useLabels(() => null);
      return () => [
        h('div', { id: 'error' }, L.errorText(error.value)),
        h(StaffLogin, { role, busy: busy.value, action, signedIn }),
      ];
    },
  });
  const w = mount(Page, { attachTo: document.body, global: { plugins: [makeI18n('en')] } });
  return { w, error, signedIn };
}

async function submit(w: ReturnType<typeof mount>) {
  await w.find('#login-form').trigger('submit');
  await flushPromises();
  await nextTick();
}

describe('StaffLogin (the staff sign-in of the desk, the review pages and the wallboard)', () => {
  it('signs in with name and password and hands the token to the page', async () => {
    const { w, error, signedIn } = page('agent');
    await w.find('#username').setValue('  agent1 ');
    await w.find('#password').setValue('pw');
    await submit(w);
    expect(error.value).toBeNull();
    expect(logins).toEqual([{ username: 'agent1', password: 'pw' }]);
    expect(signedIn).toHaveBeenCalledTimes(1);
    expect(signedIn.mock.calls[0]![0].token).toBe('tok-agent1');
    expect(signedIn.mock.calls[0]![1]).toEqual({ withCode: false });
    expect((w.find('#password').element as HTMLInputElement).value).toBe('');
    expect(w.find('#totp-code').exists()).toBe(false);
  });

  it('asks for the authenticator code once the password is right, checks it is six digits, then sends it', async () => {
    totp = '123456';
    const { w, error, signedIn } = page('supervisor');
    await w.find('#username').setValue('sup1');
    await w.find('#password').setValue('pw');
    await submit(w);
    expect(error.value?.code).toBe('second_factor_required');
    expect(w.find('#error').text()).toContain('six-digit code');
    const code = w.find('#totp-code');
    expect(code.exists()).toBe(true);
    expect(document.activeElement?.id).toBe('totp-code');
    expect(w.find('#username').attributes('readonly')).toBeDefined();
    expect(w.find('#password').attributes('readonly')).toBeDefined();

    await code.setValue('12a');
    await submit(w);
    expect(error.value?.code).toBe('needCode');
    expect(logins).toHaveLength(1); // a malformed code is not sent

    await code.setValue('654321');
    await submit(w);
    expect(error.value?.code).toBe('invalid_credentials');
    expect(w.find('#totp-code').exists()).toBe(true); // still asked

    await w.find('#totp-code').setValue('123456');
    await submit(w);
    expect(error.value).toBeNull();
    expect(logins.at(-1)).toEqual({ username: 'sup1', password: 'pw', code: '123456' });
    expect(signedIn).toHaveBeenCalledTimes(1);
    expect(signedIn.mock.calls[0]![1]).toEqual({ withCode: true });
    expect(w.find('#totp-code').exists()).toBe(false);
  });

  it('"use another account" goes back to name and password, nothing secret kept', async () => {
    totp = '123456';
    const { w } = page('supervisor');
    await w.find('#username').setValue('sup1');
    await w.find('#password').setValue('pw');
    await submit(w);
    await w.find('#login-restart').trigger('click');
    await nextTick();
    expect(w.find('#totp-code').exists()).toBe(false);
    expect((w.find('#password').element as HTMLInputElement).value).toBe('');
    expect(w.find('#username').attributes('readonly')).toBeUndefined();
  });

  it('refuses the other role and does not sign the page in', async () => {
    const { w, error, signedIn } = page('supervisor');
    await w.find('#username').setValue('agent1');
    await w.find('#password').setValue('pw');
    await submit(w);
    expect(error.value?.code).toBe('forbidden');
    expect(signedIn).not.toHaveBeenCalled();
  });

  it('says for how long a locked account stays locked (Retry-After)', async () => {
    locked = true;
    const { w, error } = page('agent');
    await w.find('#username').setValue('agent1');
    await w.find('#password').setValue('pw');
    await submit(w);
    expect(error.value?.code).toBe('account_locked');
    expect(error.value?.retryAfterS).toBe(840);
    expect(w.find('#error').text()).toBe('Too many failed sign-ins: the account is locked. Try again in 14 min, or ask a supervisor to unlock it.');
  });

  it('a failure in what the page does next shows as the page error and keeps the form', async () => {
    const { w, error, signedIn } = page('agent');
    signedIn.mockRejectedValueOnce(new Error('socket down'));
    await w.find('#username').setValue('agent1');
    await w.find('#password').setValue('pw');
    await submit(w);
    expect(error.value?.message).toBe('socket down');
    expect((w.find('#password').element as HTMLInputElement).value).toBe('pw');
  });
});

function setupPage(signedInWithCode = false) {
  const error = shallowRef<ApiError | null>(null);
  const busy = shallowRef(false);
  const action = actionRunner({ setBusy: (on) => (busy.value = on), setError: (e) => (error.value = e ? asApiError(e) : null) });
  const Page = defineComponent({
    setup() {
      const L = useLabels(() => null);
      return () => [
        h('div', { id: 'error' }, L.errorText(error.value)),
        h(StaffFactorSetup, { token: 'tok-agent1', busy: busy.value, action, signedInWithCode }),
      ];
    },
  });
  const w = mount(Page, { attachTo: document.body, global: { plugins: [makeI18n('en')] } });
  return { w, error };
}

describe('StaffFactorSetup (the authenticator set up after a sign-in)', () => {
  it('shows the secret once in groups, checks the code, turns it on with the first right one', async () => {
    const { w, error } = setupPage();
    await w.find('#totp-setup').trigger('click');
    await flushPromises();
    expect(w.find('#totp-secret').text()).toBe('JBSW Y3DP EHPK 3PXP JBSW Y3DP');
    expect(document.activeElement?.id).toBe('totp-confirm-code');

    await w.find('#totp-confirm-code').setValue('12a');
    await w.find('#totp-form').trigger('submit');
    await flushPromises();
    expect(error.value?.code).toBe('needCode');
    expect(confirmed).toHaveLength(0);

    await w.find('#totp-confirm-code').setValue('135791');
    await w.find('#totp-form').trigger('submit');
    await flushPromises();
    expect(error.value?.code).toBe('totpWrongCode');
    expect(w.find('#error').text()).toBe('The code does not match: enter the next code your app shows.');
    expect(w.find('#totp-secret').exists()).toBe(true);

    await w.find('#totp-confirm-code').setValue('246 810');
    await w.find('#totp-form').trigger('submit');
    await flushPromises();
    expect(error.value).toBeNull();
    expect(confirmed.at(-1)).toEqual({ code: '246810', auth: 'Bearer tok-agent1' });
    expect(w.find('#totp-secret').exists()).toBe(false);
    expect(w.find('#totp-state').text()).toContain('is on');
  });

  it('cancel drops the secret; an account set up already just says it is on', async () => {
    const { w } = setupPage();
    await w.find('#totp-setup').trigger('click');
    await flushPromises();
    await w.find('#totp-cancel').trigger('click');
    await nextTick();
    expect(w.find('#totp-secret').exists()).toBe(false);
    enrolled = true;
    await w.find('#totp-setup').trigger('click');
    await flushPromises();
    expect(w.find('#totp-state').exists()).toBe(true);
    expect(w.find('#error').text()).toBe('');
  });

  it('a sign-in with the code: on, nothing to set up', () => {
    const { w } = setupPage(true);
    expect(w.find('#totp-state').exists()).toBe(true);
    expect(w.find('#totp-setup').exists()).toBe(false);
  });
});
