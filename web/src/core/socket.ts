// The Socket.IO connection, typed by the contract (src/contract/events.ts): `emitAck` sends a
// client event and resolves with its `{ok: true, ...}` answer, rejecting with ApiError on
// `{ok: false, error}` or no answer in time. `connectSocket` follows a node's drain.
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '@/contract';
import { ApiError } from './errors';
import { vtax } from './hook';

export type VtaxSocket = Socket<ServerToClientEvents, ClientToServerEvents> & { vtaxDrainingUntil?: number };
export type ClientEvent = keyof ClientToServerEvents & string;
export type PayloadOf<E extends ClientEvent> = Parameters<ClientToServerEvents[E]>[0];
type AnswerOf<E extends ClientEvent> = Parameters<Parameters<ClientToServerEvents[E]>[1]>[0];
export type OkOf<E extends ClientEvent> = Extract<AnswerOf<E>, { ok: true }>;

/** What emitAck needs of a socket (a fake in the unit tests). */
export interface AckEmitter {
  timeout(ms: number): { emit(event: string, payload: unknown, cb: (err: unknown, ack: unknown) => void): unknown };
}

/** A typed socket.io-client Socket, or anything with the same acked emit. */
export type AckTarget = AckEmitter | VtaxSocket;

export function emitAck<E extends ClientEvent>(
  target: AckTarget | null | undefined,
  event: E,
  payload: PayloadOf<E>,
  { timeoutMs = 10000 }: { timeoutMs?: number } = {},
): Promise<OkOf<E>> {
  return new Promise((resolve, reject) => {
    if (!target) {
      reject(new ApiError('not_connected', 'Not connected'));
      return;
    }
    const socket = target as unknown as AckEmitter;
    socket.timeout(timeoutMs).emit(event, payload, (err, ack) => {
      if (err) {
        reject(new ApiError('timeout', `No answer from the server for ${event}`));
        return;
      }
      const a = ack as { ok?: boolean; error?: { code?: string; message?: string; details?: never; next_open_at?: string } } | null;
      if (a && a.ok) {
        resolve(a as OkOf<E>);
      } else {
        const e = a?.error || {};
        reject(new ApiError(e.code || 'bad_ack', e.message || `${event} failed`, e.details, e.next_open_at));
      }
    });
  });
}

/** True while a drain announced by the server may still cut this socket off. */
export function isDraining(socket: VtaxSocket | null | undefined): boolean {
  return Boolean(socket && socket.vtaxDrainingUntil && Date.now() < socket.vtaxDrainingUntil);
}

/**
 * `server:draining {within_s}`: move now (close the transport after a jitter; socket.io-client
 * reconnects through the balancer), and reconnect if the node still cuts us off.
 */
function followDrain(socket: VtaxSocket): void {
  socket.on('server:draining', (msg) => {
    const within = Math.max(0, Number(msg && msg.within_s) || 0);
    socket.vtaxDrainingUntil = Date.now() + within * 1000 + 15000;
    vtax.draining = true;
    const delay = Math.random() * Math.min(within * 500, 2000);
    setTimeout(() => {
      if (socket.connected && socket.io.engine) socket.io.engine.close();
    }, delay);
  });
  socket.on('disconnect', (reason) => {
    if (reason === 'io server disconnect' && isDraining(socket)) {
      setTimeout(() => socket.connect(), 200 + Math.random() * 800);
    }
  });
}

/** Connect with the bearer token; resolves once connected, rejects on a refused token. */
export function connectSocket(token: string, { timeoutMs = 10000 }: { timeoutMs?: number } = {}): Promise<VtaxSocket> {
  const socket: VtaxSocket = io({ auth: { token }, transports: ['websocket', 'polling'] });
  vtax.socket = socket;
  followDrain(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      socket.disconnect();
      reject(new ApiError('timeout', 'Could not connect to the server'));
    }, timeoutMs);
    const onConnect = (): void => {
      cleanup();
      resolve(socket);
    };
    const onError = (err: Error & { data?: { code?: string; message?: string } }): void => {
      const data = err && err.data;
      if (data && data.code) {
        cleanup();
        socket.disconnect();
        reject(new ApiError(data.code, data.message || err.message));
      }
    };
    function cleanup(): void {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
    }
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
}
