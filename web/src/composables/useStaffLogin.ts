// Staff sign-in (agents and supervisors, docs/identity.md): the password, then, for an
// account with an authenticator, its six-digit TOTP code. The server answers
// `second_factor_required` when the password was right and a code is needed: the form then
// keeps the name and password (read-only) and asks for the code. `account_locked` (with its
// wait) and `invalid_credentials` are shown by the page from the thrown ApiError.
import { ref, shallowRef } from 'vue';
import type { StaffToken, TotpEnrolment } from '@/contract';
import { api } from '@/core/api';
import { ApiError } from '@/core/errors';

export type StaffRole = StaffToken['role'];

export const TOTP_CODE = /^[0-9]{6}$/;

export function useStaffLogin(role: StaffRole) {
  const form = ref({ username: '', password: '', code: '' });
  /** the account has an authenticator: its code is asked for */
  const needCode = ref(false);

  /** One attempt: the token of a member of `role`, else an ApiError (`forbidden` for
   * another role, `needCode` for a malformed code, else the server's code). */
  async function signIn(): Promise<StaffToken> {
    const username = form.value.username.trim();
    const body: { username: string; password: string; code?: string } = { username, password: form.value.password };
    if (needCode.value) {
      const code = form.value.code.replace(/\s/g, '');
      if (!TOTP_CODE.test(code)) throw new ApiError('needCode');
      body.code = code;
    }
    let res: StaffToken;
    try {
      res = await api('post', '/api/auth/login', { body });
    } catch (e) {
      // the password was right: now the authenticator's code
      if (e instanceof ApiError && e.code === 'second_factor_required') needCode.value = true;
      if (e instanceof ApiError && e.code === 'account_locked') reset();
      throw e;
    }
    if (res.role !== role) throw new ApiError('forbidden', `${role}s only`);
    return res;
  }

  /** Back to name and password, nothing secret kept: after a sign-in, a lockout, or for
   * another account. */
  function reset(): void {
    form.value.password = '';
    form.value.code = '';
    needCode.value = false;
  }

  return { form, needCode, signIn, reset };
}

/** Setting up the authenticator after a sign-in (POST /api/staff/totp, then .../confirm with
 * its first code): the secret shows once; from the next sign-in on the code is asked. */
export function useStaffFactor() {
  const enrolment = shallowRef<TotpEnrolment | null>(null);
  const code = ref('');
  /** the account's authenticator is on (set up here, or signed in with its code) */
  const on = ref(false);

  async function begin(token: string | null): Promise<void> {
    try {
      enrolment.value = await api('post', '/api/staff/totp', { token });
    } catch (e) {
      // set up already (on another device, or before this page knew): nothing to do
      if (e instanceof ApiError && e.code === 'invalid_state') {
        on.value = true;
        return;
      }
      throw e;
    }
    code.value = '';
  }

  async function confirm(token: string | null): Promise<void> {
    const c = code.value.replace(/\s/g, '');
    if (!TOTP_CODE.test(c)) throw new ApiError('needCode');
    try {
      await api('post', '/api/staff/totp/confirm', { token, body: { code: c } });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'invalid_code') throw new ApiError('totpWrongCode', e.message);
      throw e;
    }
    enrolment.value = null;
    code.value = '';
    on.value = true;
  }

  function cancel(): void {
    enrolment.value = null;
    code.value = '';
  }

  return { enrolment, code, on, begin, confirm, cancel };
}

/** A base32 secret in groups of four, as authenticator apps show and accept it. */
export function groupedSecret(secret: string): string {
  return (secret.replace(/\s/g, '').match(/.{1,4}/g) || []).join(' ');
}
