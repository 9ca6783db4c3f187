// A taxpayer's sign-in on a page (docs/identity.md): the session the identity endpoints answer
// (access + refresh token, person, acting, options), kept in sessionStorage (this tab only)
// under `vtax.auth.<page>` so that a reload stays signed in, and refreshed before the access
// token expires. Each refresh rotates the refresh token (a rotated token used again revokes
// the whole sign-in), so only one refresh runs at a time. Framework-free: the store wraps it.
import type { TaxpayerSession } from '@/contract';
import { api } from './api';
import { ApiError, asApiError } from './errors';

const PREFIX = 'vtax.auth.';
/** Refresh when this share of the access token's life has passed. */
const REFRESH_AT = 0.75;

export interface AuthHooks {
  /** a new session (sign-in, enterprise chosen, refresh): the new access token is in it */
  onSession: (s: TaxpayerSession) => void;
  /** the sign-in ended (refused refresh, revoked elsewhere): sign in again */
  onEnded: (e: ApiError) => void;
}

export class TaxpayerAuth {
  session: TaxpayerSession | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private refreshing: Promise<TaxpayerSession> | null = null;

  constructor(
    private readonly page: string,
    private readonly hooks: AuthHooks,
  ) {}

  get accessToken(): string | null {
    return this.session ? this.session.access_token : null;
  }

  /** Take a session the server answered: remember it, schedule its refresh. */
  accept(s: TaxpayerSession): TaxpayerSession {
    this.session = s;
    try {
      sessionStorage.setItem(PREFIX + this.page, JSON.stringify({ refresh_token: s.refresh_token }));
    } catch {
      /* no storage: the sign-in lasts as long as the page */
    }
    this.schedule(s.expires_in_s);
    this.hooks.onSession(s);
    return s;
  }

  private schedule(expiresInS: number): void {
    if (this.timer) clearTimeout(this.timer);
    const ms = Math.max(5, expiresInS * REFRESH_AT) * 1000;
    this.timer = setTimeout(() => {
      this.refresh().catch(() => {
        /* onEnded said so */
      });
    }, ms);
  }

  /** The refresh token stored by this tab (a reload), if any. */
  stored(): string | null {
    try {
      const raw = sessionStorage.getItem(PREFIX + this.page);
      const data = raw ? (JSON.parse(raw) as { refresh_token?: unknown }) : null;
      return data && typeof data.refresh_token === 'string' ? data.refresh_token : null;
    } catch {
      return null;
    }
  }

  /** A new access token (and a rotated refresh token); one at a time. */
  refresh(refreshToken: string | null = null): Promise<TaxpayerSession> {
    if (this.refreshing) return this.refreshing;
    const token = refreshToken || (this.session && this.session.refresh_token) || this.stored();
    if (!token) return Promise.reject(new ApiError('unauthorized'));
    this.refreshing = api('post', '/api/auth/refresh', { body: { refresh_token: token } })
      .then((s) => this.accept(s))
      .catch((e: unknown) => {
        const err = asApiError(e);
        if (err.code !== 'network' && err.code !== 'timeout' && err.code !== 'unavailable') {
          this.forget();
          this.hooks.onEnded(err);
        } else if (this.session) {
          this.schedule(30); // try again shortly
        }
        throw err;
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  /** Act for an enterprise in a role (one of `session.options`), or for oneself (nulls). */
  async actFor(enterpriseId: string | null, role: TaxpayerSession['options'][number]['role'] | null): Promise<TaxpayerSession> {
    if (!this.session) throw new ApiError('unauthorized');
    if (this.refreshing) await this.refreshing;
    const body = enterpriseId && role
      ? { refresh_token: this.session.refresh_token, enterprise_id: enterpriseId, role }
      : { refresh_token: this.session.refresh_token };
    return this.accept(await api('post', '/api/auth/act-for', { body }));
  }

  /** Sign out at the server (this sign-in, or `everywhere`); the provider's logout URL, if any. */
  async logout(everywhere = false): Promise<string | null> {
    const s = this.session;
    this.forget();
    if (!s) return null;
    try {
      const out = await api('post', '/api/auth/logout', {
        token: s.access_token,
        body: { refresh_token: s.refresh_token, ...(everywhere ? { everywhere: true } : {}) },
      });
      return out.provider_logout_url;
    } catch {
      return null; // signed out here either way: the tokens are forgotten
    }
  }

  /** Forget the sign-in on this page (no server call). */
  forget(): void {
    this.session = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    try {
      sessionStorage.removeItem(PREFIX + this.page);
    } catch {
      /* nothing stored */
    }
  }
}
