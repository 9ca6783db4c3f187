import { describe, expect, it } from 'vitest';
import type { MaterialView } from '@/contract';
import { upsert } from '@/composables/useMaterials';
import { messages, LOCALES } from '@/i18n';

function material(id: string, at: string, extra: Partial<MaterialView> = {}): MaterialView {
  return {
    id,
    session_id: 's1',
    filename: `${id}.pdf`,
    media_type: 'application/pdf',
    size_bytes: 10,
    sha256: 'a'.repeat(64),
    source: 'file',
    state: 'submitted',
    reason: null,
    replaces: null,
    replaced_by: null,
    created_at: at,
    reviewed_at: null,
    ...extra,
  };
}

describe('the materials list', () => {
  it('keeps the server order (oldest first) whatever order pushes arrive in', () => {
    let list: MaterialView[] = [];
    list = upsert(list, material('b', '2026-12-03T10:00:02Z'));
    list = upsert(list, material('a', '2026-12-03T10:00:01Z'));
    expect(list.map((m) => m.id)).toEqual(['a', 'b']);
  });

  it('a review replaces the item, never duplicates it', () => {
    let list = [material('a', '2026-12-03T10:00:01Z')];
    list = upsert(list, material('a', '2026-12-03T10:00:01Z', { state: 'rejected', reason: 'blurred' }));
    expect(list).toHaveLength(1);
    expect(list[0]?.state).toBe('rejected');
  });

  it('a replacement marks the rejected one replaced', () => {
    let list = [material('a', '2026-12-03T10:00:01Z', { state: 'rejected', reason: 'blurred' })];
    list = upsert(list, material('c', '2026-12-03T10:00:05Z', { replaces: 'a' }));
    expect(list.map((m) => [m.id, m.replaced_by])).toEqual([
      ['a', 'c'],
      ['c', null],
    ]);
  });

  it('every state and source has words in each language', () => {
    for (const locale of LOCALES) {
      const m = (messages[locale] as unknown as { materials: { state: Record<string, string>; source: Record<string, string> } }).materials;
      for (const s of ['submitted', 'accepted', 'rejected']) expect(m.state[s], `${locale} ${s}`).toBeTruthy();
      for (const s of ['file', 'camera']) expect(m.source[s], `${locale} ${s}`).toBeTruthy();
    }
  });
});
