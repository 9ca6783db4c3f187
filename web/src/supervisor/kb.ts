// The assistant's knowledge base for supervisors (docs/assistant.md): the entries (by category,
// retired too); one entry edited as a form (key, category, catalog items, the question, its
// other phrasings, the answer and links in each of the four languages, validity days) with the
// version it was read at: a conflicting save is refused by the server and shown with the
// version that won, nothing typed is lost; create, retire, history; export and import of the
// file (check first: every problem with its place). Below it: the consultation figures and
// the questions the assistant could not answer.
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type {
  ConsultationKpiView,
  EntryDraft,
  EntryText,
  KbEntryView,
  KbImportView,
  KbVersionView,
  UnansweredView,
  paths,
} from '@/contract';
import { api, fetchOk } from '@/core/api';
import { ApiError } from '@/core/errors';
import { vtax } from '@/core/hook';
import { LOCALES, type Locale } from '@/i18n';

type Category = NonNullable<NonNullable<paths['/api/kb/entries']['get']['query']>['category']>;

/** One language of the form: alternatives one per line, links as rows. */
export interface TextForm {
  question: string;
  alternatives: string;
  answer: string;
  links: { title: string; url: string }[];
}

export interface EntryForm {
  key: string;
  category: string;
  items: string[];
  validFrom: string;
  validUntil: string;
  texts: Record<Locale, TextForm>;
}

/** The version that won a conflict: what the server has now. */
export interface Conflict {
  theirs: KbEntryView;
}

const blankText = (): TextForm => ({ question: '', alternatives: '', answer: '', links: [] });

export function blankForm(category = ''): EntryForm {
  return {
    key: '',
    category,
    items: [],
    validFrom: '',
    validUntil: '',
    texts: { 'zh-CN': blankText(), 'zh-HK': blankText(), en: blankText(), pt: blankText() },
  };
}

/** An entry as the form shows it. */
export function formOf(e: KbEntryView): EntryForm {
  const f = blankForm(e.category);
  f.key = e.key;
  f.items = [...e.items];
  f.validFrom = e.valid_from || '';
  f.validUntil = e.valid_until || '';
  for (const lang of LOCALES) {
    const t = e.texts[lang] as Partial<EntryText> | undefined;
    if (!t) continue;
    f.texts[lang] = {
      question: t.question || '',
      alternatives: (t.alternatives || []).join('\n'),
      answer: t.answer || '',
      links: (t.links || []).map((l) => ({ title: l.title, url: l.url })),
    };
  }
  return f;
}

/** The languages of a form someone wrote something in. */
export function filledLanguages(f: EntryForm): Locale[] {
  return LOCALES.filter((l) => {
    const t = f.texts[l];
    return Boolean(t.question.trim() || t.answer.trim() || t.alternatives.trim() || t.links.some((x) => x.title.trim() || x.url.trim()));
  });
}

/** The form as the draft the server takes. A language is either left empty or has its
 * question and answer; zh-CN is always there (the server checks the rest). */
export function draftOf(f: EntryForm): EntryDraft {
  const texts: Record<string, EntryText> = {};
  const langs = filledLanguages(f);
  if (!langs.includes('zh-CN')) throw new ApiError('kbNeedZhCN'); // the server's rule: every entry has zh-CN
  for (const l of langs) {
    const t = f.texts[l];
    if (!t.question.trim() || !t.answer.trim()) throw new ApiError('kbNeedQuestionAnswer', l);
    texts[l] = {
      question: t.question.trim(),
      alternatives: t.alternatives.split('\n').map((s) => s.trim()).filter(Boolean),
      answer: t.answer.trim(),
      links: t.links.filter((x) => x.title.trim() || x.url.trim()).map((x) => ({ title: x.title.trim(), url: x.url.trim() })),
    };
  }
  if (f.validFrom && f.validUntil && f.validUntil < f.validFrom) throw new ApiError('kbValidity');
  return {
    key: f.key.trim(),
    category: f.category,
    items: [...f.items],
    texts,
    valid_from: f.validFrom || null,
    valid_until: f.validUntil || null,
  };
}

export const useKb = defineStore('kb', () => {
  const entries = shallowRef<KbEntryView[]>([]);
  const revision = ref<number | null>(null);
  const category = ref('');
  const includeRetired = ref(false);
  /** the entry the form edits (null: a new one), at the version it was read */
  const editing = shallowRef<KbEntryView | null>(null);
  const open = ref(false);
  const form = ref<EntryForm>(blankForm());
  const saved = shallowRef<{ key: string; version: number; retired: boolean } | null>(null);
  const conflict = shallowRef<Conflict | null>(null);
  const history = shallowRef<KbVersionView[] | null>(null);
  const importResult = shallowRef<KbImportView | null>(null);
  const figures = shallowRef<ConsultationKpiView | null>(null);
  const unanswered = shallowRef<UnansweredView[]>([]);
  const figuresRange = ref({ from: '', to: '' });
  let tokenOf: () => string | null = () => null;

  /** The store reads the supervisor's sign-in through this (the page's one token). */
  function useToken(fn: () => string | null): void {
    tokenOf = fn;
  }

  async function load(): Promise<void> {
    const query: NonNullable<paths['/api/kb/entries']['get']['query']> = {};
    if (category.value) query.category = category.value as Category;
    if (includeRetired.value) query.include_retired = true;
    const data = await api('get', '/api/kb/entries', { token: tokenOf(), query });
    entries.value = data.entries || [];
    revision.value = data.revision;
  }

  function edit(e: KbEntryView | null): void {
    editing.value = e;
    form.value = e ? formOf(e) : blankForm(category.value);
    saved.value = null;
    conflict.value = null;
    history.value = null;
    open.value = true;
  }

  function close(): void {
    open.value = false;
    conflict.value = null;
  }

  /** Save the form: a new entry, or the edited one at the version it was read. A conflict
   * keeps the form as typed and shows the version that won. */
  async function save(overwrite = false): Promise<void> {
    const draft = draftOf(form.value);
    const e = editing.value;
    let view: KbEntryView;
    try {
      if (e) {
        const expected = overwrite && conflict.value ? conflict.value.theirs.version : e.version;
        view = await api('put', '/api/kb/entries/{key}', { token: tokenOf(), path: { key: e.key }, body: { expected_version: expected, entry: draft } });
      } else {
        view = await api('post', '/api/kb/entries', { token: tokenOf(), body: draft });
      }
    } catch (err) {
      if (err instanceof ApiError && err.code === 'kb_version_conflict' && e) {
        const theirs = await api('get', '/api/kb/entries/{key}', { token: tokenOf(), path: { key: e.key } });
        conflict.value = { theirs };
      }
      throw err;
    }
    conflict.value = null;
    editing.value = view;
    saved.value = { key: view.key, version: view.version, retired: view.retired };
    await load();
  }

  /** Drop what was typed and take the version that won the conflict. */
  function takeTheirs(): void {
    const c = conflict.value;
    if (!c) return;
    edit(c.theirs);
  }

  async function retire(): Promise<void> {
    const e = editing.value;
    if (!e) return;
    const view = await api('post', '/api/kb/entries/{key}/retire', { token: tokenOf(), path: { key: e.key }, body: { expected_version: e.version } });
    editing.value = view;
    saved.value = { key: view.key, version: view.version, retired: true };
    await load();
  }

  async function loadHistory(): Promise<void> {
    const e = editing.value;
    if (!e) return;
    const data = await api('get', '/api/kb/entries/{key}/history', { token: tokenOf(), path: { key: e.key } });
    history.value = data.versions;
  }

  /** The whole base as the file (the same format import takes). */
  async function exportFile(): Promise<Blob> {
    const res = await fetchOk('GET', '/api/kb/export', { token: tokenOf() });
    return res.blob();
  }

  /** Import a file (dry run: check only). Problems come back with their place. */
  async function importFile(file: File | null, dryRun: boolean, retireMissing: boolean): Promise<void> {
    if (!file) throw new ApiError('chooseFile');
    const url = `/api/kb/import?dry_run=${dryRun}&retire_missing=${retireMissing}`;
    let out: KbImportView;
    try {
      const res = await fetchOk('POST', url, { token: tokenOf(), body: await file.text(), headers: { 'Content-Type': 'application/json' } });
      out = (await res.json()) as KbImportView;
    } catch (e) {
      if (!(e instanceof ApiError) || !e.details) throw e;
      out = {
        dry_run: dryRun, entries: 0, created: [], updated: [], unchanged: [], retired: [],
        problems: e.details.map((d) => ({ where: d.loc, message: d.msg })),
      };
    }
    importResult.value = out;
    if (!dryRun && !out.problems.length) await load();
  }

  async function loadFigures(): Promise<void> {
    const query: { from?: string; to?: string } = {};
    if (figuresRange.value.from) query.from = figuresRange.value.from;
    if (figuresRange.value.to) query.to = figuresRange.value.to;
    const [k, un] = await Promise.all([
      api('get', '/api/stats/consultations', { token: tokenOf(), query }),
      api('get', '/api/consultations/unanswered', { token: tokenOf(), query }),
    ]);
    figures.value = k;
    unanswered.value = un.questions;
    vtax.consultationKpi = k;
  }

  const languagesFilled = computed(() => filledLanguages(form.value));

  // The browser suite reads (and, to play a stale editor, replaces) the entry being edited.
  vtax.kb = {
    get editing() {
      return editing.value;
    },
    set editing(e: KbEntryView | null) {
      editing.value = e;
    },
    get entries() {
      return entries.value;
    },
  };

  return {
    entries, revision, category, includeRetired, editing, open, form, saved, conflict, history, importResult,
    figures, unanswered, figuresRange, languagesFilled,
    useToken, load, edit, close, save, takeTheirs, retire, loadHistory, exportFile, importFile, loadFigures,
  };
});
