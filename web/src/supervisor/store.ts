// The supervisor's review pages (/supervisor): staff sign-in (with the authenticator's code
// when the account has one), the live queues from the pushed `queue:stats`, the session list
// with its filters and keyset pages, refreshed when the server pushes a change (`queue:stats`
// with other counts, `session:loop`), never on a timer; a session's whole loop; the quality
// review, the flag and the follow-up; the CSV export; KPIs.
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type {
  CatalogOut,
  KpiReport,
  MaterialView,
  IdentityAuditRow,
  PersonAccount,
  PersonLookup,
  QualityForm,
  QueueStats,
  RecordingSegment,
  ReviewDetail,
  SessionView,
  StaffRef,
  StaffToken,
  paths,
} from '@/contract';
import { api, queryString } from '@/core/api';
import { ApiError, asApiError } from '@/core/errors';
import { actionRunner } from '@/core/action';
import { vtax } from '@/core/hook';
import { connectSocket, type VtaxSocket } from '@/core/socket';
import { DEFAULT_TIMEZONE } from '@/i18n/format';

export type SessionQuery = NonNullable<paths['/api/sessions']['get']['query']>;
export type KpiQuery = NonNullable<paths['/api/stats/kpi']['get']['query']>;
export type GroupBy = NonNullable<KpiQuery['group_by']>;
type Category = NonNullable<SessionQuery['category']>;
type Channel = NonNullable<SessionQuery['channel']>;
type Language = NonNullable<SessionQuery['language']>;

/** The filter form as people fill it in (every field a string, '' = any). */
export interface FilterForm {
  from: string;
  to: string;
  agent: string;
  category: string;
  askedCategory: string;
  channel: string;
  language: string;
  rating: string; // '', 'low', '1'..'5', 'unrated'
  flag: string;
  outcome: string;
  check: string;
  followUp: string;
}

export interface KpiForm {
  from: string;
  to: string;
  groupBy: GroupBy;
  agent: string;
  category: string;
  channel: string;
  language: string;
  threshold: string;
}

export const PAGE_SIZES = [10, 20, 50, 100, 200] as const;
const REFRESH_GAP_MS = 500; // pushes that come together refresh the list once

const emptyFilters = (): FilterForm => ({
  from: '', to: '', agent: '', category: '', askedCategory: '', channel: '', language: '',
  rating: '', flag: '', outcome: '', check: '', followUp: '',
});

/** The filter form as the query of GET /api/sessions and of the CSV export. */
export function toQuery(f: FilterForm): SessionQuery {
  const q: SessionQuery = {};
  if (f.from) q.from = f.from;
  if (f.to) q.to = f.to;
  if (f.agent) q.agent = f.agent;
  if (f.category) q.category = f.category as Category;
  if (f.askedCategory) q.asked_category = f.askedCategory as Category;
  if (f.channel) q.channel = f.channel as Channel;
  if (f.language) q.language = f.language as Language;
  if (f.flag) q.flag = f.flag as SessionQuery['flag'];
  if (f.outcome) q.outcome = f.outcome as SessionQuery['outcome'];
  if (f.check) q.check = f.check as SessionQuery['check'];
  if (f.followUp) q.follow_up = f.followUp as SessionQuery['follow_up'];
  if (f.rating === 'low') q.max_rating = 2;
  else if (f.rating === 'unrated') q.rated = false;
  else if (f.rating) q.rating = Number(f.rating);
  return q;
}

/** What the live queues' counts are; a change means the list may have changed too. */
function countsOf(stats: QueueStats): string {
  return JSON.stringify(Object.values(stats.queues || {}).map((q) => [q.waiting, q.today?.joined, q.today?.answered, q.today?.abandoned]));
}

/** Let the browser download `href` natively (streamed to disk) as `filename`. */
export function download(href: string, filename: string): void {
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
}

export const useSupervisor = defineStore('supervisor', () => {
  const state = ref<'idle' | 'loaded'>('idle');
  const error = shallowRef<ApiError | null>(null);
  const busy = ref(false);
  const token = ref<string | null>(null);
  const user = shallowRef<StaffRef | null>(null);
  /** this sign-in used the authenticator's code (StaffFactorSetup shows it is on) */
  const signedInWithCode = ref(false);
  const catalog = shallowRef<CatalogOut | null>(null);
  const agents = shallowRef<StaffRef[]>([]);
  const qualityForm = shallowRef<QualityForm | null>(null);

  const filters = ref<FilterForm>(emptyFilters());
  const applied = shallowRef<SessionQuery>({});
  const pageSize = ref<number>(50);
  const cursor = ref<string | null>(null);
  const cursors = ref<(string | null)[]>([]);
  const nextBefore = ref<string | null>(null);
  const sessions = shallowRef<SessionView[]>([]);
  const gen = ref(0);
  const updatedAt = ref<string | null>(null);
  const autoRefresh = ref(true);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let socket: VtaxSocket | null = null;
  let lastCounts: string | undefined;

  const live = shallowRef<QueueStats | null>(null);
  const detail = shallowRef<(ReviewDetail & { materials: MaterialView[] }) | null>(null);
  const recordingFiles = shallowRef<RecordingSegment[] | null>(null);
  const kpiForm = ref<KpiForm>({ from: '', to: '', groupBy: 'day', agent: '', category: '', channel: '', language: '', threshold: '20' });
  const kpi = shallowRef<KpiReport | null>(null);
  /** the person whose access is shown (found by document, or a session's taxpayer) */
  const person = shallowRef<PersonAccount | null>(null);
  /** The shown person's identity audit rows (newest first), once asked for; the next cursor. */
  const personHistory = shallowRef<IdentityAuditRow[] | null>(null);
  const personHistoryNext = ref<number | null>(null);

  const timezone = computed(() => live.value?.timezone || catalog.value?.timezone || DEFAULT_TIMEZONE);
  const page = computed(() => cursors.value.length + 1);
  const appliedString = computed(() => queryString(applied.value as Record<string, unknown>).replace(/^\?/, ''));

  function setError(e: unknown): void {
    error.value = e ? asApiError(e) : null;
    if (error.value) vtax.lastError = { code: error.value.code, message: error.value.message };
  }

  /** Run a user action: one at a time per button (the caller disables it), errors shown. */
  const action = actionRunner({ setBusy: (on) => (busy.value = on), setError });

  /** A call with the supervisor's token; an expired sign-in goes back to the form. */
  async function call<T>(fn: (tok: string | null) => Promise<T>): Promise<T> {
    try {
      return await fn(token.value);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'unauthorized') signOut();
      throw e;
    }
  }

  /** After the sign-in form (StaffLogin): a supervisor's token. */
  async function signedIn(res: StaffToken, how: { withCode: boolean } = { withCode: false }): Promise<void> {
    token.value = res.token;
    // the server says whether the sign-in used the code (recordings and exports need it)
    signedInWithCode.value = res.second_factor || how.withCode;
    user.value = res.user;
    await loadChoices();
    await follow();
    await refresh();
  }

  function signOut(): void {
    if (timer) clearTimeout(timer);
    timer = null;
    socket?.disconnect();
    socket = null;
    token.value = null;
    user.value = null;
    signedInWithCode.value = false;
    detail.value = null;
    sessions.value = [];
    live.value = null;
    kpi.value = null;
    person.value = null;
    personHistory.value = null;
    personHistoryNext.value = null;
    lastCounts = undefined;
    state.value = 'idle';
    vtax.state = 'idle';
  }

  /** Filter choices: the catalog, the agents, the quality form. */
  async function loadChoices(): Promise<void> {
    const [cat, staff, form] = await Promise.all([
      api('get', '/api/catalog'),
      call((t) => api('get', '/api/review/agents', { token: t })),
      call((t) => api('get', '/api/review/quality-form', { token: t })),
    ]);
    catalog.value = cat;
    agents.value = staff.agents || [];
    qualityForm.value = form;
  }

  /** A staff member's name for people: an agent, me, or a short id. */
  function staffName(id: string | null | undefined): string {
    if (!id) return '';
    if (user.value?.id === id) return user.value.display_name || user.value.username;
    const a = agents.value.find((x) => x.id === id);
    return a ? a.display_name || a.username : id.slice(0, 8);
  }

  /**
   * Follow the server's pushes: `queue:stats` redraws the live queues and, when its counts
   * moved (a join, an answer, an end), refreshes the list; `session:loop` (a summary, a check,
   * a rating...) refreshes it too. One GET paints the live figures first; no polling.
   */
  async function follow(): Promise<void> {
    try {
      const first = (await call((t) => api('get', '/api/stats/live', { token: t }))) as QueueStats;
      live.value = first;
      lastCounts = countsOf(first);
    } catch (e) {
      if (!(e instanceof ApiError && (e.code === 'not_found' || e.code === 'http_404'))) throw e;
    }
    const tok = token.value;
    if (!tok) return;
    socket = await connectSocket(tok);
    vtax.statsPushed = 0;
    socket.on('queue:stats', (stats) => {
      vtax.statsPushed = Number(vtax.statsPushed || 0) + 1;
      live.value = stats;
      vtax.live = stats;
      const counts = countsOf(stats);
      if (lastCounts !== undefined && counts !== lastCounts) schedule();
      lastCounts = counts;
    });
    socket.on('session:loop', () => schedule());
  }

  function schedule(): void {
    if (!token.value || !autoRefresh.value || timer) return;
    timer = setTimeout(async () => {
      timer = null;
      try {
        await refresh();
        if (detail.value) await openDetail(detail.value.session.id, false);
      } catch (e) {
        setError(e);
      }
    }, REFRESH_GAP_MS);
  }

  /** Load the page on screen with the applied filters. Requests may overlap (a push, a
   * click): only the answer to the latest one is shown. */
  async function refresh(): Promise<void> {
    if (!token.value) return;
    const mine = ++gen.value;
    const filtersNow = appliedString.value;
    const cursorNow = cursor.value;
    const query: SessionQuery = { ...applied.value, limit: pageSize.value };
    if (cursorNow) query.before = cursorNow;
    const data = await call((t) => api('get', '/api/sessions', { token: t, query }));
    if (mine !== gen.value) return;
    sessions.value = data.sessions || [];
    nextBefore.value = data.next_before;
    updatedAt.value = new Date().toISOString();
    vtax.sessions = sessions.value;
    vtax.listed = { gen: mine, filters: filtersNow, cursor: cursorNow };
    vtax.refreshedAt = Date.now();
    state.value = 'loaded';
    vtax.state = 'loaded';
  }

  async function applyFilters(): Promise<void> {
    applied.value = toQuery(filters.value);
    cursor.value = null;
    cursors.value = [];
    await refresh();
  }

  async function clearFilters(): Promise<void> {
    filters.value = emptyFilters();
    await applyFilters();
  }

  async function nextPage(): Promise<void> {
    if (!nextBefore.value) return;
    cursors.value.push(cursor.value);
    cursor.value = nextBefore.value;
    await refresh();
  }

  async function firstPage(): Promise<void> {
    cursor.value = null;
    cursors.value = [];
    await refresh();
  }

  /** The CSV of the applied filters: a one-minute signed link the browser downloads natively
   * (a navigation cannot carry the bearer token; nothing is held in the page). */
  async function exportCsv(): Promise<void> {
    const query = toQuery(filters.value);
    const link = await call((t) => api('post', '/api/review/export-links', { token: t, query }));
    download(link.url, 'sessions.csv');
    vtax.exported = { query: queryString(query as Record<string, unknown>), url: link.url, expires_at: link.expires_at };
  }

  async function openDetail(sessionId: string, fresh = true): Promise<void> {
    const path = { session_id: sessionId };
    const [d, m] = await Promise.all([
      call((t) => api('get', '/api/review/sessions/{session_id}', { token: t, path })),
      call((t) => api('get', '/api/sessions/{session_id}/materials', { token: t, path })),
    ]);
    if (fresh && detail.value?.session.id !== sessionId) recordingFiles.value = null;
    detail.value = { ...d, materials: m.materials };
    vtax.detail = detail.value;
  }

  function closeDetail(): void {
    detail.value = null;
    recordingFiles.value = null;
  }

  async function reloadDetail(): Promise<void> {
    if (detail.value) await openDetail(detail.value.session.id);
  }

  async function loadRecording(): Promise<void> {
    const d = detail.value;
    if (!d) return;
    const manifest = await call((t) => api('get', '/api/recordings/{session_id}', { token: t, path: { session_id: d.session.id } }));
    recordingFiles.value = manifest.segments || [];
  }

  async function closeFollowUp(): Promise<void> {
    const d = detail.value;
    if (!d) return;
    await call((t) => api('post', '/api/sessions/{session_id}/follow-up', { token: t, path: { session_id: d.session.id }, body: {} }));
    await openDetail(d.session.id);
  }

  async function resolveFlag(note: string): Promise<void> {
    const d = detail.value;
    if (!d) return;
    const text = note.trim();
    if (!text) throw new ApiError('needFlagNote');
    await call((t) => api('post', '/api/review/sessions/{session_id}/flag/resolve', { token: t, path: { session_id: d.session.id }, body: { note: text } }));
    await openDetail(d.session.id);
    await refresh();
  }

  /** The quality review: every item scored from 0 to its maximum (refused with the item's
   * code when a score is missing or out of range). */
  async function submitQuality(scores: Record<string, string | number>, comment: string): Promise<void> {
    const d = detail.value;
    const form = qualityForm.value;
    if (!d || !form) return;
    const out: Record<string, number> = {};
    for (const it of form.items) {
      const raw = String(scores[it.code] ?? '').trim(); // a number input's v-model gives numbers
      const n = Number(raw);
      if (raw === '' || !Number.isInteger(n) || n < 0 || n > it.max) throw new ApiError('qualityScore', it.code);
      out[it.code] = n;
    }
    const body: paths['/api/review/sessions/{session_id}/quality']['post']['body'] = {
      scores: out as unknown as paths['/api/review/sessions/{session_id}/quality']['post']['body']['scores'],
    };
    if (comment.trim()) body.comment = comment.trim();
    await call((t) => api('post', '/api/review/sessions/{session_id}/quality', { token: t, path: { session_id: d.session.id }, body }));
    await openDetail(d.session.id);
  }

  async function findPerson(documentType: PersonLookup['document_type'], document: string): Promise<void> {
    person.value = null;
    personHistory.value = null;
    personHistoryNext.value = null;
    const body = { document_type: documentType, document: document.trim() };
    if (!body.document) throw new ApiError('needDocument');
    person.value = await call((t) => api('post', '/api/people/lookup', { token: t, body }));
  }

  /** The shown person's audit trail, a page at a time (`more`: the next, older page). */
  async function loadPersonHistory(more = false): Promise<void> {
    const p = person.value;
    if (!p) return;
    const query: { subject: string; limit: number; before?: number } = { subject: p.person_id, limit: 20 };
    if (more && personHistoryNext.value !== null) query.before = personHistoryNext.value;
    const page = await call((t) => api('get', '/api/identity/audit', { token: t, query }));
    if (person.value?.person_id !== p.person_id) return;
    personHistory.value = more && personHistory.value ? [...personHistory.value, ...page.rows] : page.rows;
    personHistoryNext.value = page.next_before;
  }

  async function loadPerson(personId: string): Promise<void> {
    person.value = null;
    personHistory.value = null;
    personHistoryNext.value = null;
    person.value = await call((t) => api('get', '/api/people/{person_id}/access', { token: t, path: { person_id: personId } }));
  }

  /** Disable or enable the shown person (a reason is required; the server audits it). */
  async function setPersonAccess(disabled: boolean, reason: string): Promise<void> {
    const p = person.value;
    if (!p) return;
    const text = reason.trim();
    if (!text) throw new ApiError('needReason');
    const path = { person_id: p.person_id };
    const body = { reason: text };
    person.value = disabled
      ? await call((t) => api('post', '/api/people/{person_id}/disable', { token: t, path, body }))
      : await call((t) => api('post', '/api/people/{person_id}/enable', { token: t, path, body }));
    if (personHistory.value) await loadPersonHistory(); // the change is its newest row
  }

  async function loadKpi(): Promise<void> {
    const f = kpiForm.value;
    if (f.from && f.to && f.to < f.from) throw new ApiError('kpiRange', 'the last day is before the first');
    const query: KpiQuery = { group_by: f.groupBy };
    if (f.from) query.from = f.from;
    if (f.to) query.to = f.to;
    if (f.threshold) query.threshold_s = Number(f.threshold);
    if (f.agent) query.agent = f.agent;
    if (f.category) query.category = f.category as Category;
    if (f.channel) query.channel = f.channel as Channel;
    if (f.language) query.language = f.language as Language;
    const report = await call((t) => api('get', '/api/stats/kpi', { token: t, query }));
    kpi.value = report;
    vtax.kpi = report;
    // Empty days are the server's today, in the zone its days are cut (the report says which).
    if (!f.from) f.from = report.from;
    if (!f.to) f.to = report.to;
  }

  // The browser suite's view of the list (tests/e2e/test_review_loop.py): which request the
  // table shows, the agents and the quality form.
  vtax.page = 'supervisor';
  vtax.st = {
    get token() {
      return token.value;
    },
    get gen() {
      return gen.value;
    },
    get cursor() {
      return cursor.value;
    },
    get filters() {
      return { toString: () => appliedString.value };
    },
    get agents() {
      return agents.value;
    },
    get qualityForm() {
      return qualityForm.value;
    },
  };

  return {
    state, error, busy, token, user, signedInWithCode, catalog, agents, qualityForm,
    filters, applied, pageSize, cursor, cursors, nextBefore, sessions, gen, updatedAt, autoRefresh, page,
    live, detail, recordingFiles, kpiForm, kpi, timezone, person,
    setError, action, signedIn, signOut, staffName, schedule, refresh, applyFilters, clearFilters, nextPage, firstPage,
    exportCsv, openDetail, closeDetail, reloadDetail, loadRecording, closeFollowUp, resolveFlag, submitQuality, loadKpi,
    findPerson, loadPerson, setPersonAccess, personHistory, personHistoryNext, loadPersonHistory,
  };
});
