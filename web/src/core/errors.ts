// An error carrying the contract's {code, message}: pages show it translated by `code`
// (src/i18n, `errors.<code>`), never the server's English `message`.
import type { ErrorDetail } from '@/contract';

export class ApiError extends Error {
  readonly code: string;
  readonly details: ErrorDetail[] | undefined;
  /** queue_closed: when the queue opens next (ISO 8601) */
  readonly nextOpenAt: string | undefined;
  /** rate_limited, account_locked: seconds to wait (the body's `retry_after_s` or the
   * Retry-After header) */
  readonly retryAfterS: number | undefined;

  constructor(code: string, message?: string, details?: ErrorDetail[], nextOpenAt?: string, retryAfterS?: number) {
    super(message || code);
    this.name = 'ApiError';
    this.code = code;
    this.details = details;
    this.nextOpenAt = nextOpenAt;
    this.retryAfterS = retryAfterS;
  }
}

/** Any thrown value as an ApiError (a browser error keeps its name as the code). */
export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof Error) return new ApiError(e.name === 'Error' ? 'client' : e.name, e.message);
  return new ApiError('client', String(e));
}
