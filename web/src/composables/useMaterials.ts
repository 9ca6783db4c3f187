// Materials the taxpayer hands in during the call, for both pages: the session's list (from
// REST, so a reload or a resume brings it back), kept current by the pushes `material:new`
// and `material:reviewed`; the upload (a file or a camera still), the agent's review, and
// opening a material with its SHA-256 checked.
import { ref, watch, type Ref } from 'vue';
import type { MaterialView } from '@/contract';
import { api, fetchOk } from '@/core/api';
import { ApiError } from '@/core/errors';
import { vtax } from '@/core/hook';
import { emitAck, type VtaxSocket } from '@/core/socket';

export interface MaterialsSource {
  token: () => string | null;
  sessionId: () => string | null;
  socket: () => VtaxSocket | null;
}

export async function sha256Hex(buffer: ArrayBuffer): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Insert or replace `m` in a list kept in the server's order (oldest first). */
export function upsert(list: MaterialView[], m: MaterialView): MaterialView[] {
  const next = list.filter((x) => x.id !== m.id);
  next.push(m);
  if (m.replaces) {
    const i = next.findIndex((x) => x.id === m.replaces);
    const old = next[i];
    if (old) next[i] = { ...old, replaced_by: m.id };
  }
  return next.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
}

export function useMaterials(src: MaterialsSource) {
  const items: Ref<MaterialView[]> = ref([]);
  /** ids the agent has not opened yet on this page (the "new" mark) */
  const unseen = ref<Set<string>>(new Set());
  let wired: VtaxSocket | null = null;

  function expose(): void {
    vtax.materials = items.value.map((m) => ({ id: m.id, state: m.state, reason: m.reason, source: m.source }));
  }

  function onNew(msg: { session_id: string; material: MaterialView }): void {
    if (msg.session_id !== src.sessionId()) return;
    if (!items.value.some((x) => x.id === msg.material.id)) unseen.value = new Set([...unseen.value, msg.material.id]);
    items.value = upsert(items.value, msg.material);
    expose();
  }
  function onReviewed(msg: { session_id: string; material: MaterialView }): void {
    if (msg.session_id !== src.sessionId()) return;
    items.value = upsert(items.value, msg.material);
    expose();
  }
  const onConnect = () => void refresh().catch(() => {});

  function wire(socket: VtaxSocket | null): void {
    if (socket === wired) return;
    if (wired) {
      wired.off('material:new', onNew);
      wired.off('material:reviewed', onReviewed);
      wired.off('connect', onConnect);
    }
    wired = socket;
    if (socket) {
      socket.on('material:new', onNew);
      socket.on('material:reviewed', onReviewed);
      socket.on('connect', onConnect); // a reconnect may have missed pushes
    }
  }

  async function refresh(): Promise<void> {
    const sid = src.sessionId();
    const token = src.token();
    if (!sid || !token) {
      items.value = [];
      expose();
      return;
    }
    const page = await api('get', '/api/sessions/{session_id}/materials', { token, path: { session_id: sid } });
    if (sid !== src.sessionId()) return;
    items.value = page.materials;
    expose();
  }

  /** Hand in a file or a camera still (`replaces`: the rejected material it replaces). */
  async function upload(blob: Blob, filename: string, source: 'file' | 'camera', replaces: string | null = null): Promise<MaterialView> {
    const sid = src.sessionId();
    const token = src.token();
    if (!sid || !token) throw new ApiError('not_in_session');
    const body = new FormData();
    body.append('file', blob, filename);
    body.append('source', source);
    if (replaces) body.append('replaces', replaces);
    const res = await fetchOk('POST', `/api/sessions/${encodeURIComponent(sid)}/materials`, { token, body });
    const m = (await res.json()) as MaterialView;
    items.value = upsert(items.value, m);
    expose();
    return m;
  }

  /** The agent's decision; over the socket when it is up, else REST. */
  async function review(m: MaterialView, decision: 'accept' | 'reject', reason = ''): Promise<void> {
    const sid = src.sessionId();
    const token = src.token();
    if (!sid || !token) throw new ApiError('not_in_session');
    const socket = src.socket();
    let view: MaterialView;
    if (socket && socket.connected) {
      const payload = decision === 'reject' ? { session_id: sid, material_id: m.id, decision, reason } : { session_id: sid, material_id: m.id, decision };
      view = (await emitAck(socket, 'material:review', payload)).material;
    } else {
      const body = decision === 'reject' ? { decision, reason } : { decision };
      view = await api('post', '/api/sessions/{session_id}/materials/{material_id}/review', {
        token,
        path: { session_id: sid, material_id: m.id },
        body,
      });
    }
    items.value = upsert(items.value, view);
    expose();
  }

  /** The material's bytes as a Blob, after checking them against its SHA-256. */
  async function open(m: MaterialView): Promise<Blob> {
    const sid = src.sessionId();
    const token = src.token();
    if (!sid || !token) throw new ApiError('not_in_session');
    const res = await fetchOk('GET', `/api/sessions/${encodeURIComponent(sid)}/materials/${encodeURIComponent(m.id)}/content`, { token });
    const buffer = await res.arrayBuffer();
    if ((await sha256Hex(buffer)) !== m.sha256.toLowerCase()) throw new ApiError('hash_mismatch');
    const next = new Set(unseen.value);
    next.delete(m.id);
    unseen.value = next;
    return new Blob([buffer], { type: m.media_type });
  }

  watch(src.socket, (s) => wire(s), { immediate: true });
  watch([src.sessionId, src.token], () => void refresh().catch(() => {}), { immediate: true });

  function dispose(): void {
    wire(null);
  }

  return { items, unseen, refresh, upload, review, open, dispose };
}
