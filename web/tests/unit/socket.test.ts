import { describe, expect, it } from 'vitest';
import { emitAck } from '@/core/socket';
import { ApiError } from '@/core/errors';
import { FakeSocket } from './fakes';

describe('emitAck', () => {
  it('resolves with the ok answer', async () => {
    const socket = new FakeSocket();
    socket.answer = () => ({ ok: true, ticket_id: 't1', position: 2, eta_s: 30 });
    const ack = await emitAck(socket, 'queue:join', { category: 'invoices', language: 'en', channel: 'web', question: 'q' });
    expect(ack.ticket_id).toBe('t1');
    expect(socket.emitted[0]?.event).toBe('queue:join');
  });

  it('rejects with the contract error code and next opening', async () => {
    const socket = new FakeSocket();
    socket.answer = () => ({ ok: false, error: { code: 'queue_closed', message: 'closed', next_open_at: '2030-01-01T09:00:00+08:00' } });
    const err = await emitAck(socket, 'queue:leave', { ticket_id: 't' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('queue_closed');
    expect((err as ApiError).nextOpenAt).toBe('2030-01-01T09:00:00+08:00');
  });

  it('rejects with timeout when no answer comes, and not_connected without a socket', async () => {
    const socket = new FakeSocket();
    socket.silent = true;
    await expect(emitAck(socket, 'queue:leave', { ticket_id: 't' })).rejects.toMatchObject({ code: 'timeout' });
    await expect(emitAck(null, 'queue:leave', { ticket_id: 't' })).rejects.toMatchObject({ code: 'not_connected' });
  });
});
