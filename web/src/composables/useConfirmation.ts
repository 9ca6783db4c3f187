// The confirmation form (业务办理服务确认单) of the call on this page: the latest version (pushed
// by `confirmation:form`, read again with `confirmation:get` whenever the socket or the session
// changes, so a reload or a resume brings it back), the items' field definitions
// (GET /api/catalog/forms), and the three steps: the agent proposes, the taxpayer confirms or
// refuses the version shown (named by number and hash, so a stale one is refused).
import { shallowRef, watch, type Ref } from 'vue';
import type { FormDefinitions, FormItemIn, FormVersionView, ItemFormView } from '@/contract';
import { api } from '@/core/api';
import { ApiError, asApiError } from '@/core/errors';
import { vtax } from '@/core/hook';
import { emitAck, type VtaxSocket } from '@/core/socket';
import { useAction } from '@/composables/useAction';

/** The items' fields and materials (GET /api/catalog/forms, public and small). */
export function loadDefinitions(): Promise<FormDefinitions> {
  return api('get', '/api/catalog/forms');
}

export function useConfirmation(socket: Ref<VtaxSocket | null>, sessionId: Ref<string | null>) {
  const form = shallowRef<FormVersionView | null>(null);
  const items = shallowRef<Record<string, ItemFormView>>({});
  // the three steps; loading the form and its definitions report into `error` too
  const { busy, error, action: run } = useAction();
  const wired = new WeakSet<VtaxSocket>();

  function show(f: FormVersionView | null): void {
    const now = form.value;
    // an answer that crossed a newer push never replaces it
    if (f && now && f.session_id === now.session_id) {
      if (f.version < now.version) return;
      if (f.version === now.version && now.state !== 'proposed' && f.state === 'proposed') return;
    }
    form.value = f;
    vtax.confirmation = f ? { version: f.version, state: f.state, sha256: f.sha256 } : null;
  }

  async function refresh(): Promise<void> {
    const sid = sessionId.value;
    const s = socket.value;
    if (!sid || !s || !s.connected) return;
    try {
      const ack = await emitAck(s, 'confirmation:get', { session_id: sid });
      if (sessionId.value === sid) show(ack.form);
    } catch (e) {
      error.value = asApiError(e);
    }
  }

  function wire(s: VtaxSocket): void {
    if (wired.has(s)) return;
    wired.add(s);
    s.on('confirmation:form', (msg) => {
      if (msg && msg.session_id === sessionId.value) show(msg.form);
    });
    s.on('connect', () => void refresh());
  }

  watch(
    [socket, sessionId],
    ([s, sid], old) => {
      if (s) wire(s);
      if (!old || sid !== old[1]) {
        if (!form.value || form.value.session_id !== sid) form.value = null;
      }
      void refresh();
    },
    { immediate: true },
  );

  void loadDefinitions()
    .then((d) => (items.value = Object.fromEntries(d.items.map((i) => [i.code, i]))))
    .catch((e) => (error.value = asApiError(e)));

  function need(): { s: VtaxSocket; sid: string } {
    const s = socket.value;
    const sid = sessionId.value;
    if (!s || !sid) throw new ApiError('not_connected');
    return { s, sid };
  }

  const propose = (formItems: FormItemIn[], note: string) =>
    run(async () => {
      const { s, sid } = need();
      const ack = await emitAck(s, 'confirmation:propose', { session_id: sid, items: formItems, note });
      show(ack.form);
    });

  const confirm = () =>
    run(async () => {
      const { s, sid } = need();
      const f = form.value;
      if (!f) throw new ApiError('not_found');
      const ack = await emitAck(s, 'confirmation:confirm', { session_id: sid, version: f.version, sha256: f.sha256 });
      show(ack.form);
    });

  const refuse = (reason: string) =>
    run(async () => {
      const { s, sid } = need();
      const f = form.value;
      if (!f) throw new ApiError('not_found');
      const ack = await emitAck(s, 'confirmation:refuse', { session_id: sid, version: f.version, sha256: f.sha256, reason });
      show(ack.form);
    });

  return { form, items, error, busy, refresh, propose, confirm, refuse };
}
