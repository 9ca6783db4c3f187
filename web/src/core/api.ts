// JSON over HTTP, typed by the generated `paths` table of the contract (src/contract/rest.ts).
import type { ErrorOut, paths } from '@/contract';
import { ApiError } from './errors';

type Method = 'get' | 'post' | 'put';
type PathsWith<M extends Method> = { [P in keyof paths & string]: paths[P] extends Record<M, unknown> ? P : never }[keyof paths & string];
type Op<P extends keyof paths, M extends Method> = paths[P] extends Record<M, infer O> ? O : never;
type BodyOf<O> = O extends { body: infer B } ? B : never;
type ResponseOf<O> = O extends { response: infer R } ? R : never;
type PathParams<O> = O extends { path: infer A } ? A : never;
type QueryOf<O> = O extends { query: infer Q } ? Q : never;

export interface CallOptions<O> {
  token?: string | null;
  body?: BodyOf<O>;
  path?: PathParams<O>;
  query?: QueryOf<O>;
}

/** `/api/sessions/{session_id}` with {session_id: 'x'} -> `/api/sessions/x` (encoded). */
export function fillPath(template: string, params?: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = params?.[k];
    if (v === undefined) throw new ApiError('client', `missing path parameter ${k}`);
    return encodeURIComponent(v);
  });
}

export function queryString(query?: Record<string, unknown>): string {
  if (!query) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: Partial<ErrorOut> = {};
  try {
    body = (await res.json()) as Partial<ErrorOut>;
  } catch {
    /* not JSON */
  }
  const e = body.error;
  const header = Number(res.headers.get('Retry-After'));
  const retryAfter = e?.retry_after_s ?? (Number.isFinite(header) && header > 0 ? header : undefined);
  return new ApiError(e?.code || `http_${res.status}`, e?.message || `HTTP ${res.status}`, e?.details, e?.next_open_at, retryAfter);
}

/** A bearer-authenticated request; resolves with the 2xx Response, rejects with ApiError. */
export async function fetchOk(
  method: string,
  url: string,
  { token, body, headers = {} }: { token?: string | null; body?: BodyInit; headers?: Record<string, string> } = {},
): Promise<Response> {
  const h: Record<string, string> = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(url, { method, headers: h, body: body ?? null, cache: 'no-store' });
  } catch (e) {
    throw new ApiError('network', e instanceof Error ? e.message : String(e));
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

function urlOf(path: string, opts: { path?: unknown; query?: unknown }): string {
  return fillPath(path, opts.path as Record<string, string> | undefined) + queryString(opts.query as Record<string, unknown> | undefined);
}

/** A call to an endpoint of the contract; JSON answers parsed. A `FormData` or `Blob` body (an
 * upload) goes as it is (the browser sets the multipart boundary), any other as JSON. */
export async function api<M extends Method, P extends PathsWith<M>>(
  method: M,
  path: P,
  opts: CallOptions<Op<P, M>> = {},
): Promise<ResponseOf<Op<P, M>>> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const init: { token?: string | null; headers: Record<string, string>; body?: BodyInit } = { token: opts.token ?? null, headers };
  const body: unknown = opts.body;
  if (body instanceof FormData || body instanceof Blob) init.body = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetchOk(method.toUpperCase(), urlOf(path, opts), init);
  const text = await res.text();
  return (text ? JSON.parse(text) : null) as ResponseOf<Op<P, M>>;
}

type BlobPaths = { [P in PathsWith<'get'>]: ResponseOf<Op<P, 'get'>> extends Blob ? P : never }[PathsWith<'get'>];

/** The bytes of an endpoint that answers a file (its `response` is `Blob` in the contract),
 * with the server's `X-Content-SHA256` when it sends one. */
export async function apiBlob<P extends BlobPaths>(
  path: P,
  opts: CallOptions<Op<P, 'get'>> = {},
): Promise<{ buffer: ArrayBuffer; type: string; sha256: string | null }> {
  const res = await fetchOk('GET', urlOf(path, opts), { token: opts.token ?? null });
  return { buffer: await res.arrayBuffer(), type: res.headers.get('Content-Type') || '', sha256: res.headers.get('X-Content-SHA256') };
}
