import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createPinia, setActivePinia } from 'pinia';
import type { KbEntryView, KpiReport, KpiRow, QueueStats } from '@/contract';
import { FakeSocket, flush } from './fakes';

const sockets: FakeSocket[] = [];
vi.mock('@/core/socket', () => ({
  connectSocket: vi.fn(async () => {
    const s = new FakeSocket() as FakeSocket & { disconnect: () => void };
    s.disconnect = () => {
      s.connected = false;
    };
    sockets.push(s);
    return s;
  }),
}));

const { useSupervisor, toQuery } = await import('@/supervisor/store');
const { useKb, blankForm, draftOf, formOf, filledLanguages } = await import('@/supervisor/kb');
const { kpiSeries } = await import('@/supervisor/kpi');
const { vtax } = await import('@/core/hook');
const { useStaffLogin } = await import('@/composables/useStaffLogin');

const CATALOG = { version: 1, timezone: 'Asia/Shanghai', categories: [{ code: 'invoices', name: { en: 'Invoices' }, items: [] }], languages: [], channels: [] };
const QUALITY = { items: [{ code: 'greeting', label: 'Greeting', max: 10 }, { code: 'accuracy', label: 'Accuracy', max: 30 }], max_total: 40 };

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}
const stats = (waiting: number): QueueStats => ({
  at: '2030-01-01T08:00:00+08:00', day: '2030-01-01', timezone: 'Asia/Shanghai', agents: [], sessions: [],
  targets: { service_level: 0.8, longest_wait_alert_s: 120 },
  queues: {
    invoices: {
      waiting, longest_wait_s: 0, agents: {}, offers: { made: 0, accepted: 0, rejected: 0, expired: 0 },
      today: { joined: waiting, refused: 0, answered: 0, abandoned: 0, timed_out: 0, service_level: null, service_level_with_abandoned: null, asa_s: null, abandonment_rate: null, aht_s: null },
      service_level_s: 20, strategy: 'longest_idle', open: true,
    },
  },
});

let calls: { method: string; url: string; body: unknown }[] = [];
let route: (method: string, url: string, body: unknown) => Response | null = () => null;
let kbVersion = 1;

beforeEach(() => {
  setActivePinia(createPinia());
  calls = [];
  sockets.length = 0;
  kbVersion = 1;
  route = () => null;
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      const method = init?.method || 'GET';
      const body = init?.body && typeof init.body === 'string' && init.body.startsWith('{') ? JSON.parse(init.body) : init?.body;
      calls.push({ method, url, body });
      const own = route(method, url, body);
      if (own) return own;
      if (url === '/api/auth/login') {
        if (body.password !== 'pw') return json({ error: { code: 'invalid_credentials', message: 'wrong' } }, 401);
        const role = body.username === 'agent1' ? 'agent' : 'supervisor';
        return json({ token: 'tok', role, user: { id: 'u1', username: body.username, display_name: 'Sup One' }, expires_in_s: 3600 });
      }
      if (url === '/api/catalog') return json(CATALOG);
      if (url === '/api/review/agents') return json({ agents: [{ id: 'a1', username: 'agent1', display_name: 'Agent One' }] });
      if (url === '/api/review/quality-form') return json(QUALITY);
      if (url === '/api/stats/live') return json(stats(0));
      if (url.startsWith('/api/sessions?')) return json({ sessions: [{ id: 's1' }], next_before: url.includes('before=') ? null : 'c1' });
      return json({ error: { code: 'not_found', message: url } }, 404);
    }),
  );
});
afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

async function signedIn() {
  const s = useSupervisor();
  const login = useStaffLogin('supervisor');
  login.form.value.username = 'sup1';
  login.form.value.password = 'pw';
  await s.action(async () => s.signedIn(await login.signIn()));
  expect(s.error).toBeNull();
  return s;
}

describe('the supervisor store', () => {
  it('signs in, loads the choices, paints the live figures once and lists the first page', async () => {
    const s = await signedIn();
    expect(s.token).toBe('tok');
    expect(s.agents.map((a) => a.id)).toEqual(['a1']);
    expect(s.qualityForm?.max_total).toBe(40);
    expect(calls.filter((c) => c.url === '/api/stats/live')).toHaveLength(1);
    expect(s.sessions).toHaveLength(1);
    expect(s.state).toBe('loaded');
    expect(calls.find((c) => c.url.startsWith('/api/sessions?'))?.url).toBe('/api/sessions?limit=50');
  });

  it('finds a person by document in the body, disables and enables them with a reason', async () => {
    const account = (disabled: boolean) => ({
      person_id: 'p1', name: 'Wang Fang', document_type: 'resident_id', document: '1101**********002X', disabled,
      last_change: disabled ? { state: 'disabled', at: '2030-01-01T00:00:00+00:00', by_role: 'supervisor', by: 'u1', reason: 'case 1' } : null,
    });
    route = (method, url) => {
      if (url === '/api/people/lookup' && method === 'POST') return json(account(false));
      if (url === '/api/people/p1/disable') return json(account(true));
      if (url === '/api/people/p1/enable') return json(account(false));
      if (url === '/api/people/p2/access') return json({ error: { code: 'not_found', message: 'no such person' } }, 404);
      return null;
    };
    const s = await signedIn();
    await expect(s.findPerson('resident_id', '  ')).rejects.toMatchObject({ code: 'needDocument' });
    expect(calls.some((c) => c.url.startsWith('/api/people'))).toBe(false);
    await s.findPerson('resident_id', ' 11010519491231002x ');
    const lookup = calls.find((c) => c.url === '/api/people/lookup');
    expect(lookup?.body).toEqual({ document_type: 'resident_id', document: '11010519491231002x' });
    expect(s.person?.person_id).toBe('p1');
    await expect(s.setPersonAccess(true, ' ')).rejects.toMatchObject({ code: 'needReason' });
    expect(calls.some((c) => c.url.endsWith('/disable'))).toBe(false);
    await s.setPersonAccess(true, ' case 1 ');
    expect(calls.at(-1)).toMatchObject({ method: 'POST', url: '/api/people/p1/disable', body: { reason: 'case 1' } });
    expect(s.person?.disabled).toBe(true);
    await s.setPersonAccess(false, 'checked');
    expect(calls.at(-1)).toMatchObject({ method: 'POST', url: '/api/people/p1/enable', body: { reason: 'checked' } });
    expect(s.person?.disabled).toBe(false);
    await expect(s.loadPerson('p2')).rejects.toMatchObject({ code: 'not_found' });
    expect(s.person).toBeNull();
    s.signOut();
    expect(s.person).toBeNull();
  });

  it('turns the filter form into the query, ratings included', () => {
    const f = { from: '2030-01-01', to: '', agent: 'a1', category: 'invoices', askedCategory: '', channel: 'web', language: '', rating: 'low', flag: 'open', outcome: '', check: '', followUp: 'open' };
    expect(toQuery(f)).toEqual({ from: '2030-01-01', agent: 'a1', category: 'invoices', channel: 'web', flag: 'open', follow_up: 'open', max_rating: 2 });
    expect(toQuery({ ...f, rating: 'unrated' }).rated).toBe(false);
    expect(toQuery({ ...f, rating: '4' }).rating).toBe(4);
  });

  it('walks the pages with the cursor and back to the first; the hook names the request shown', async () => {
    const s = await signedIn();
    s.filters.flag = 'open';
    await s.applyFilters();
    expect(s.nextBefore).toBe('c1');
    await s.nextPage();
    expect(calls.at(-1)?.url).toBe('/api/sessions?flag=open&limit=50&before=c1');
    expect(s.page).toBe(2);
    expect(s.nextBefore).toBeNull();
    const st = vtax.st as { gen: number; cursor: string | null; filters: { toString(): string } };
    expect(vtax.listed).toEqual({ gen: st.gen, filters: 'flag=open', cursor: 'c1' });
    expect(st.filters.toString()).toBe('flag=open');
    await s.firstPage();
    expect(s.page).toBe(1);
    expect(s.cursor).toBeNull();
  });

  it('shows only the latest of overlapping list requests', async () => {
    const s = await signedIn();
    let release: (r: Response) => void = () => {};
    const slow = new Promise<Response>((r) => (release = r));
    vi.mocked(fetch).mockImplementationOnce(async () => slow);
    const first = s.refresh();
    s.filters.flag = 'done';
    await s.applyFilters(); // answered at once
    release(json({ sessions: [{ id: 'old' }, { id: 'older' }], next_before: null }));
    await first;
    expect(s.sessions.map((x) => x.id)).toEqual(['s1']);
  });

  it('refreshes the list when a push changes the counts or the loop, once for a burst, never on a timer', async () => {
    vi.useFakeTimers();
    const s = await signedIn();
    const lists = () => calls.filter((c) => c.url.startsWith('/api/sessions?')).length;
    const before = lists();
    const sock = sockets[0]!;
    sock.fire('queue:stats', stats(0)); // same counts as the first paint
    await vi.advanceTimersByTimeAsync(2000);
    expect(lists()).toBe(before);
    sock.fire('queue:stats', stats(1));
    sock.fire('session:loop', { session_id: 's1' });
    await vi.advanceTimersByTimeAsync(600);
    expect(lists()).toBe(before + 1);
    expect(s.live?.queues.invoices?.waiting).toBe(1);
    s.autoRefresh = false;
    sock.fire('session:loop', { session_id: 's1' });
    await vi.advanceTimersByTimeAsync(10000);
    expect(lists()).toBe(before + 1);
  });

  it('checks every quality score before sending, then reloads the detail', async () => {
    const s = await signedIn();
    route = (m, url) => {
      if (url === '/api/review/sessions/s1') return json({ session: { id: 's1' }, checks: [], deliveries: [], quality_reviews: [], audit: [], participants: [], confirmation: null, messages: [], call_quality: null });
      if (url === '/api/sessions/s1/materials') return json({ materials: [] });
      if (m === 'POST' && url === '/api/review/sessions/s1/quality') return json({ id: 1 });
      return null;
    };
    await s.openDetail('s1');
    expect(s.detail?.materials).toEqual([]);
    await s.action(() => s.submitQuality({ greeting: 5, accuracy: '' }, ''));
    expect(s.error?.code).toBe('qualityScore');
    expect(s.error?.message).toBe('accuracy');
    await s.action(() => s.submitQuality({ greeting: 11, accuracy: 3 }, ''));
    expect(s.error?.message).toBe('greeting');
    expect(calls.some((c) => c.url.endsWith('/quality'))).toBe(false);
    await s.action(() => s.submitQuality({ greeting: 10, accuracy: '30' }, ' fine '));
    expect(s.error).toBeNull();
    expect(calls.find((c) => c.url.endsWith('/quality'))?.body).toEqual({ scores: { greeting: 10, accuracy: 30 }, comment: 'fine' });
  });

  it('refuses a KPI range that ends before it starts, and fills empty days from the report', async () => {
    const s = await signedIn();
    s.kpiForm.from = '2030-01-02';
    s.kpiForm.to = '2030-01-01';
    await s.action(s.loadKpi);
    expect(s.error?.code).toBe('kpiRange');
    route = (_m, url) => (url.startsWith('/api/stats/kpi') ? json({ from: '2030-01-05', to: '2030-01-05', timezone: 'UTC', group_by: 'agent', threshold_s: 30, rows: [], total: {} }) : null);
    s.kpiForm.from = '';
    s.kpiForm.to = '';
    s.kpiForm.groupBy = 'agent';
    s.kpiForm.threshold = '30';
    s.kpiForm.channel = 'web';
    await s.action(s.loadKpi);
    expect(calls.at(-1)?.url).toBe('/api/stats/kpi?group_by=agent&threshold_s=30&channel=web');
    expect([s.kpiForm.from, s.kpiForm.to]).toEqual(['2030-01-05', '2030-01-05']);
  });

  it('an expired sign-in goes back to the form', async () => {
    const s = await signedIn();
    route = (_m, url) => (url.startsWith('/api/sessions?') ? json({ error: { code: 'unauthorized', message: 'expired' } }, 401) : null);
    await s.action(s.refresh);
    expect(s.error?.code).toBe('unauthorized');
    expect(s.token).toBeNull();
    expect(sockets[0]!.connected).toBe(false);
  });
});

describe('the KPI chart series', () => {
  it('keeps a figure the server could not compute as a gap, rates in percent', () => {
    const row = (key: string, sl: number | null): KpiRow => ({
      key, label: null, sessions: 1, answered: 1, abandoned: 0, handled: 1, service_level: sl, service_level_with_abandoned: sl,
      asa_s: 12.4, aht_s: 300.6, talk_s: 1, wrap_up_s: 1, abandonment_rate: 0, ratings: 0, csat: null, summarised: 1, fcr: 0.5, occupancy: null,
    });
    const report = { from: 'a', to: 'b', timezone: 'UTC', group_by: 'day', threshold_s: 20, rows: [row('2030-01-01', 0.8333), row('2030-01-02', null)], total: row('x', 1) } as KpiReport;
    const x = kpiSeries(report, (r) => `day ${r.key}`);
    expect(x.labels).toEqual(['day 2030-01-01', 'day 2030-01-02']);
    expect(x.serviceLevel).toEqual([83.3, null]);
    expect(x.asa).toEqual([12, 12]);
    expect(x.aht).toEqual([301, 301]);
    expect(x.csat).toEqual([null, null]);
    expect(x.fcr).toEqual([50, 50]);
  });
});

const ENTRY: KbEntryView = {
  key: 'void-invoice', category: 'invoices', items: ['invoices.void'], valid_from: '2030-01-01', valid_until: null, version: 1, retired: false,
  updated_by: 'sup1', updated_at: '2030-01-01T00:00:00+00:00',
  texts: {
    'zh-CN': { question: '如何作废？', alternatives: [], answer: '开红字发票。', links: [] },
    en: { question: 'How to void?', alternatives: ['cancel', 'void'], answer: 'Red letter.', links: [{ title: 'Guide', url: 'https://x.org' }] },
  },
};

describe('the knowledge-base form', () => {
  it('round-trips an entry through the form', () => {
    const f = formOf(ENTRY);
    expect(f.texts.en.alternatives).toBe('cancel\nvoid');
    expect(filledLanguages(f)).toEqual(['zh-CN', 'en']);
    const { key, category, items, texts, valid_from, valid_until } = ENTRY;
    expect(draftOf(f)).toEqual({ key, category, items, texts, valid_from, valid_until });
  });

  it('drops empty lines and links, refuses half a language, no zh-CN and a reversed validity', () => {
    const f = blankForm('invoices');
    expect(() => draftOf(f)).toThrow(expect.objectContaining({ code: 'kbNeedZhCN' }));
    f.key = ' k1 ';
    f.texts['zh-CN'] = { question: '问题？', alternatives: '', answer: '答案。', links: [] };
    f.texts.pt.question = 'Pergunta?';
    expect(() => draftOf(f)).toThrow(expect.objectContaining({ code: 'kbNeedQuestionAnswer', message: 'pt' }));
    f.texts.pt.answer = 'Resposta.';
    f.texts.pt.alternatives = ' a \n\n b';
    f.texts.pt.links = [{ title: '', url: '' }, { title: 'T', url: ' https://y.org ' }];
    const d = draftOf(f);
    expect(d.key).toBe('k1');
    expect(d.texts.pt).toEqual({ question: 'Pergunta?', alternatives: ['a', 'b'], answer: 'Resposta.', links: [{ title: 'T', url: 'https://y.org' }] });
    f.validFrom = '2030-02-01';
    f.validUntil = '2030-01-01';
    expect(() => draftOf(f)).toThrow(expect.objectContaining({ code: 'kbValidity' }));
  });
});

describe('the knowledge-base store', () => {
  beforeEach(() => {
    route = (m, url, body) => {
      if (m === 'GET' && url.startsWith('/api/kb/entries?') || url === '/api/kb/entries') {
        if (m === 'GET') return json({ revision: 7, entries: [ENTRY] });
      }
      if (m === 'PUT' && url === '/api/kb/entries/void-invoice') {
        const b = body as { expected_version: number };
        if (b.expected_version !== kbVersion) return json({ error: { code: 'kb_version_conflict', message: 'changed' } }, 409);
        kbVersion += 1;
        return json({ ...ENTRY, version: kbVersion });
      }
      if (m === 'GET' && url === '/api/kb/entries/void-invoice') return json({ ...ENTRY, version: kbVersion, updated_by: 'other', texts: { 'zh-CN': { question: '他们的', answer: '他们的答案' }, en: { question: 'THEIRS', answer: 'theirs' } } });
      return null;
    };
  });

  it('lists, edits and saves at the version read', async () => {
    const kb = useKb();
    kb.useToken(() => 'tok');
    kb.category = 'invoices';
    await kb.load();
    expect(calls.at(-1)?.url).toBe('/api/kb/entries?category=invoices');
    expect(kb.revision).toBe(7);
    kb.edit(kb.entries[0]!);
    kb.form.texts.en.answer = 'Mine.';
    await kb.save();
    const put = calls.find((c) => c.method === 'PUT');
    expect(put?.body).toMatchObject({ expected_version: 1, entry: { texts: { en: { answer: 'Mine.' } } } });
    expect(kb.saved).toEqual({ key: 'void-invoice', version: 2, retired: false });
    expect(kb.editing?.version).toBe(2);
  });

  it('keeps what was typed on a conflict and shows the version that won; overwrite or take theirs', async () => {
    const kb = useKb();
    kb.useToken(() => 'tok');
    kb.edit(ENTRY);
    kbVersion = 3; // someone saved twice meanwhile
    kb.form.texts.en.answer = 'Mine.';
    await expect(kb.save()).rejects.toMatchObject({ code: 'kb_version_conflict' });
    expect(kb.conflict?.theirs.version).toBe(3);
    expect(kb.conflict?.theirs.updated_by).toBe('other');
    expect(kb.form.texts.en.answer).toBe('Mine.');
    await kb.save(true); // mine over theirs: sent with the version that won
    expect(calls.filter((c) => c.method === 'PUT').at(-1)?.body).toMatchObject({ expected_version: 3 });
    expect(kb.conflict).toBeNull();
    expect(kb.editing?.version).toBe(4);

    kb.edit(kb.editing);
    kbVersion = 9;
    await expect(kb.save()).rejects.toMatchObject({ code: 'kb_version_conflict' });
    kb.takeTheirs();
    expect(kb.form.texts.en.question).toBe('THEIRS');
    expect(kb.editing?.version).toBe(9);
    expect(kb.conflict).toBeNull();
  });

  it('imports a file: a dry run first, problems listed with their place', async () => {
    const kb = useKb();
    kb.useToken(() => 'tok');
    await expect(kb.importFile(null, true, false)).rejects.toMatchObject({ code: 'chooseFile' });
    route = (m, url) =>
      m === 'POST' && url.startsWith('/api/kb/import')
        ? json({ dry_run: true, entries: 0, problems: [{ where: 'entry 1, key', message: 'bad key' }], created: [], updated: [], unchanged: [], retired: [] })
        : null;
    await kb.importFile(new File(['{"entries": []}'], 'kb.json'), true, true);
    expect(calls.at(-1)?.url).toBe('/api/kb/import?dry_run=true&retire_missing=true');
    expect(kb.importResult?.problems).toEqual([{ where: 'entry 1, key', message: 'bad key' }]);
    await flush();
  });
});
