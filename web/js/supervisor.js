// Supervisor page: sign in; live queues; the session list with filters and keyset pages
// (GET /api/sessions), refreshed when the server pushes a change (`queue:stats` with other
// counts, `session:loop`), never on a timer; a session's whole loop with its audit log,
// deliveries and recording, the quality review, the flag and follow-up; CSV export; KPIs.
// All user data goes in with textContent (see h()); nothing is parsed as HTML.
import {
  $,
  vtax,
  api,
  action,
  bilingual,
  clearError,
  connectSocket,
  fillSelect,
  getCatalog,
  h,
  setState,
  show,
  showError,
  ApiError,
} from './common.js';
import {
  CHECK_LABELS,
  DELIVERY_LABELS,
  FLAG_LABELS,
  FOLLOW_UP_LABELS,
  categoryLabel,
  download,
  fmtBytes,
  fmtTime,
  label,
  ratingText,
  shortHash,
  summaryFacts,
} from './loop.js';

const REFRESH_GAP_MS = 500; // pushes that come together refresh the list once
// `?page_size=N` (1..200) preselects the page size, e.g. for a wall display.
const PAGE_SIZE_PARAM = Number(new URLSearchParams(location.search).get('page_size'));
const CARDS = ['live-card', 'sessions-card', 'kpi-card', 'kb-card']; // kb-card: js/kb.js
const st = {
  token: null,
  user: null,
  timer: null,
  gen: 0, // the latest list request
  catalog: null,
  agents: [],
  filters: new URLSearchParams(), // the applied filters
  pageSize: '50',
  cursor: null, // `before` of the page on screen (null: the first page)
  cursors: [], // the cursors of the pages before it
  nextBefore: null,
  detail: null, // the review detail on screen
  qualityForm: null,
};
vtax.page = 'supervisor';
vtax.st = st;

// ---- sign in ----------------------------------------------------------------------------

$('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('login'), async () => {
    const res = await api('POST', '/api/auth/login', {
      body: { username: $('username').value.trim(), password: $('password').value },
    });
    if (res.role !== 'supervisor') {
      throw new ApiError('forbidden', `此页面仅供督导使用 This page is for supervisors (you are ${res.role})`);
    }
    st.token = res.token;
    st.user = res.user || { username: $('username').value.trim() };
    $('password').value = '';
    $('me').textContent = `· ${st.user.display_name || st.user.username}`;
    show('login-card', false);
    for (const id of CARDS) show(id, true);
    setState('idle', 'signed in 已登录');
    await loadChoices();
    await refresh();
    await follow();
  });
});

$('signout').addEventListener('click', signOut);

function signOut() {
  clearTimeout(st.timer);
  st.timer = null;
  if (st.socket) st.socket.disconnect();
  st.socket = null;
  st.token = null;
  st.detail = null;
  $('sessions').tBodies[0].replaceChildren();
  $('me').textContent = '';
  for (const id of [...CARDS, 'detail-card']) show(id, false);
  show('login-card', true);
  setState('idle');
}

/** A JSON call with the supervisor's token; an expired sign-in goes back to the form. */
async function call(method, path, body) {
  try {
    return await api(method, path, { token: st.token, body });
  } catch (e) {
    if (e.code === 'unauthorized') {
      signOut();
      throw new ApiError(e.code, `登录已过期 Please sign in again (${e.message})`);
    }
    throw e;
  }
}

/** Filter choices: the catalog's categories, channels, languages; the agents. */
async function loadChoices() {
  const [catalog, agents, form] = await Promise.all([
    getCatalog(),
    call('GET', '/api/review/agents'),
    call('GET', '/api/review/quality-form'),
  ]);
  st.catalog = catalog;
  st.agents = agents.agents || [];
  st.qualityForm = form;
  const any = { value: '', label: '全部 Any' };
  const named = (list) => (list || []).map((x) => ({ value: x.code, label: bilingual(x.name, x.code) }));
  const agentChoices = st.agents.map((a) => ({ value: a.id, label: `${a.display_name} (${a.username})` }));
  for (const [prefix, lists] of [
    ['f', { category: 'categories', 'asked-category': 'categories', channel: 'channels', language: 'languages' }],
    ['k', { category: 'categories', channel: 'channels', language: 'languages' }], // KPI filters
  ]) {
    for (const [field, list] of Object.entries(lists)) {
      fillSelect($(`${prefix}-${field}`), [any, ...named(catalog[list])]);
    }
    fillSelect($(`${prefix}-agent`), [any, ...agentChoices]);
  }
  buildQualityForm();
  const today = new Date().toISOString().slice(0, 10);
  if (!$('k-from').value) $('k-from').value = today;
  if (!$('k-to').value) $('k-to').value = today;
}

/** A staff member's name for people: an agent, me, or a short id. */
function staffName(id) {
  if (!id) return '';
  if (st.user && st.user.id === id) return st.user.display_name || st.user.username;
  const a = st.agents.find((x) => x.id === id);
  return a ? a.display_name || a.username : id.slice(0, 8);
}

// ---- filters, pages, refresh ---------------------------------------------------------------

/** The filter form as query parameters of GET /api/sessions and the CSV export. */
function readFilters() {
  const q = new URLSearchParams();
  const put = (name, id) => {
    const v = $(id).value.trim();
    if (v) q.set(name, v);
  };
  put('from', 'f-from');
  put('to', 'f-to');
  put('agent', 'f-agent');
  put('category', 'f-category');
  put('asked_category', 'f-asked-category');
  put('channel', 'f-channel');
  put('language', 'f-language');
  put('flag', 'f-flag');
  put('outcome', 'f-outcome');
  put('check', 'f-check');
  put('follow_up', 'f-follow-up');
  const rating = $('f-rating').value;
  if (rating === 'low') q.set('max_rating', '2');
  else if (rating === 'unrated') q.set('rated', 'false');
  else if (rating) q.set('rating', rating);
  return q;
}

$('filters').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('apply-filters'), async () => {
    st.filters = readFilters();
    st.pageSize = $('f-page-size').value;
    st.cursor = null;
    st.cursors = [];
    await refresh();
  });
});

$('clear-filters').addEventListener('click', () => {
  $('filters').reset();
  action($('clear-filters'), async () => {
    st.filters = new URLSearchParams();
    $('f-page-size').value = st.pageSize; // the page size is not a filter
    st.cursor = null;
    st.cursors = [];
    await refresh();
  });
});

// action() enables its button again when done: the pager buttons are set after it.
$('next-page').addEventListener('click', async () => {
  await action($('next-page'), async () => {
    if (!st.nextBefore) return;
    st.cursors.push(st.cursor);
    st.cursor = st.nextBefore;
    await refresh();
  });
  syncPager();
});

$('first-page').addEventListener('click', async () => {
  await action($('first-page'), async () => {
    st.cursor = null;
    st.cursors = [];
    await refresh();
  });
  syncPager();
});

function syncPager() {
  $('next-page').disabled = !st.nextBefore;
  $('first-page').disabled = !st.cursor;
}

$('refresh').addEventListener('click', () => action($('refresh'), refresh));
$('auto-refresh').addEventListener('change', schedule);

/**
 * Follow the server's pushes: `queue:stats` (every VTAX_STATS_PUSH_S) redraws the live queues
 * and, when its counts moved (a join, an answer, an end), refreshes the session list;
 * `session:loop` (a summary, a check, a rating...) refreshes it too. No polling.
 */
async function follow() {
  const socket = await connectSocket(st.token);
  st.socket = socket;
  socket.on('queue:stats', (stats) => {
    renderLive(stats);
    const counts = JSON.stringify(
      Object.values(stats.queues || {}).map((q) => [q.waiting, q.today && q.today.joined, q.today && q.today.answered, q.today && q.today.abandoned]),
    );
    if (st.counts !== undefined && counts !== st.counts) schedule();
    st.counts = counts;
  });
  socket.on('session:loop', () => schedule());
}

function schedule() {
  if (!st.token || !$('auto-refresh').checked || st.timer) return;
  st.timer = setTimeout(async () => {
    st.timer = null;
    try {
      await refresh();
    } catch (e) {
      showError(e);
    }
  }, REFRESH_GAP_MS);
}

/**
 * Load the page on screen with the applied filters (and the live queues). Requests may
 * overlap (auto-refresh, a click): only the answer to the latest one is shown.
 */
async function refresh() {
  if (!st.token) return;
  const gen = (st.gen = (st.gen || 0) + 1);
  const filters = st.filters.toString();
  const q = new URLSearchParams(st.filters);
  q.set('limit', st.pageSize);
  if (st.cursor) q.set('before', st.cursor);
  const [data] = await Promise.all([call('GET', `/api/sessions?${q}`), refreshLive()]);
  if (gen !== st.gen) return;
  const sessions = data.sessions || [];
  render(sessions);
  st.nextBefore = data.next_before;
  vtax.sessions = sessions;
  vtax.listed = { gen, filters, cursor: st.cursor };
  vtax.refreshedAt = Date.now();
  syncPager();
  $('page-info').textContent = `第 ${st.cursors.length + 1} 页 Page ${st.cursors.length + 1} · ${sessions.length} sessions`;
  $('updated').textContent = `更新于 updated ${new Date().toLocaleTimeString()}`;
  clearError();
  setState('loaded', `${sessions.length} sessions`);
}

// ---- the session table ---------------------------------------------------------------------

function fmtNum(v) {
  return v === null || v === undefined ? '—' : Number(v).toFixed(1);
}

function cell(text, cls) {
  return h('td', { class: cls, text: text ?? '' });
}

function ratingCell(r) {
  if (!r) return cell('—', 'rating');
  const td = h('td', { class: 'rating text' });
  td.append(h('strong', { class: 'score', text: `${r.score} / 5` }));
  if (r.comment) td.append(h('br'), h('span', { class: 'comment', text: r.comment }));
  return td;
}

function summaryCell(s) {
  if (!s) return cell('—', 'summary');
  const td = h('td', { class: 'summary text' });
  td.append(
    h('div', { class: 'asked' }, h('strong', { text: '问 Asked: ' }), s.asked || ''),
    h('div', { class: 'handled' }, h('strong', { text: '办 Handled: ' }), s.handled || ''),
    h('div', { class: 'result' }, h('strong', { text: '结果 Result: ' }), s.result || ''),
  );
  if (Array.isArray(s.items) && s.items.length) {
    td.append(h('div', { class: 'items' }, h('strong', { text: '事项 Items: ' }), s.items.join(', ')));
  }
  return td;
}

function flagText(flag) {
  if (!flag || flag.status === 'none') return '—';
  return `${label(FLAG_LABELS, flag.status)}${flag.reasons && flag.reasons.length ? ` (${flag.reasons.join(', ')})` : ''}`;
}

/** The category asked at join, and the agent's refinement when it differs (each through
 * `name`: the code as it is by default). */
function categoryChange(s, name = (code) => code) {
  return s.final_category && s.final_category !== s.category
    ? `${name(s.category)} → ${name(s.final_category)}`
    : name(s.category);
}

function render(sessions) {
  const rows = sessions.map((s) => {
    const agent = s.agent ? s.agent.display_name || s.agent.username : '—';
    const outcome = s.end_reason ? `${s.outcome} (${s.end_reason})` : s.outcome;
    const open = h('button', { type: 'button', class: 'open secondary', text: '详情 Details' });
    open.addEventListener('click', () => action(open, () => openDetail(s.id)));
    const flag = cell(flagText(s.loop.flag), 'flag');
    flag.dataset.flag = s.loop.flag ? s.loop.flag.status : '';
    return h(
      'tr',
      { 'data-session-id': s.id, class: st.detail && st.detail.session.id === s.id ? 'selected' : '' },
      cell(fmtTime(s.joined_at)),
      cell(fmtNum(s.wait_s), 'num'),
      cell(fmtNum(s.duration_s), 'num'),
      cell(agent),
      cell(categoryChange(s)),
      cell(s.channel),
      cell(s.language),
      cell(outcome),
      ratingCell(s.rating),
      summaryCell(s.summary),
      cell(s.summary ? label(CHECK_LABELS, s.loop.check) : '—', 'check'),
      flag,
      h('td', {}, open),
    );
  });
  $('sessions').tBodies[0].replaceChildren(...rows);
}

// ---- CSV export ------------------------------------------------------------------------------

$('export-csv').addEventListener('click', () =>
  action($('export-csv'), async () => {
    // A navigation cannot send the bearer token: the server signs a one-minute link for these
    // exact filters (POST /api/review/export-links), and the browser downloads it natively,
    // streaming the file to disk however large the export is (nothing held in memory here).
    const q = readFilters();
    const link = await call('POST', `/api/review/export-links?${q}`);
    download(link.url, 'sessions.csv');
    vtax.exported = { query: q.toString(), url: link.url, expires_at: link.expires_at };
  }),
);

// ---- the session detail ----------------------------------------------------------------------

$('close-detail').addEventListener('click', () => {
  st.detail = null;
  show('detail-card', false);
});
$('reload-detail').addEventListener('click', () =>
  action($('reload-detail'), () => st.detail && openDetail(st.detail.session.id)),
);

async function openDetail(sessionId) {
  const detail = await call('GET', `/api/review/sessions/${encodeURIComponent(sessionId)}`);
  const changed = !st.detail || st.detail.session.id !== sessionId;
  st.detail = detail;
  vtax.detail = detail;
  renderDetail(detail, changed);
  show('detail-card', true);
  for (const tr of $('sessions').tBodies[0].rows) {
    tr.classList.toggle('selected', tr.dataset.sessionId === sessionId);
  }
  if (changed) $('detail-card').scrollIntoView({ block: 'start' });
}

function renderDetail(d, changed) {
  const s = d.session;
  $('detail-id').textContent = s.id;
  const facts = $('detail-facts');
  facts.replaceChildren();
  const add = (dt, dd, cls) => facts.append(h('dt', { text: dt }), h('dd', { class: cls, text: dd ?? '—' }));
  add('纳税人 Taxpayer', `${s.taxpayer.name || '—'} · ${s.taxpayer.id_type} ${s.taxpayer.id_number_masked}`);
  add('坐席 Agent', s.agent ? `${s.agent.display_name} (${s.agent.username})` : '—');
  add('类别 Category', categoryChange(s, (code) => categoryLabel(st.catalog, code)));
  add('语言 / 渠道 Language / channel', `${s.language} · ${s.channel}`);
  add('问题 Question', s.question, 'question');
  add('进入 Joined', fmtTime(s.joined_at));
  add('接听 Answered', fmtTime(s.answered_at));
  add('结束 Ended', fmtTime(s.ended_at));
  add('等待 / 通话 / 整理 Wait / talk / wrap-up (s)', `${fmtNum(s.wait_s)} / ${fmtNum(s.duration_s)} / ${fmtNum(s.wrap_up_s)}`);
  add('结果 Outcome', s.end_reason ? `${s.outcome} (${s.end_reason})` : s.outcome, 'outcome');
  add('环节 Loop stage', s.loop.stage, 'stage');

  $('detail-summary').replaceChildren(
    s.summary ? summaryFacts(s.summary, st.catalog) : h('p', { text: '尚无小结 No summary yet' }),
  );
  $('detail-checks').replaceChildren(
    ...(d.checks.length
      ? d.checks.map((c) =>
          h('li', {
            text: `${fmtTime(c.at)} · ${label(CHECK_LABELS, c.decision)} · 版本 version ${c.summary_version}${c.comment ? ` · ${c.comment}` : ''}`,
          }),
        )
      : [h('li', { text: `${label(CHECK_LABELS, s.loop.check)}` })]),
  );
  $('detail-rating').textContent = s.rating
    ? `${ratingText(s.rating)}${s.rating.comment ? ` · “${s.rating.comment}”` : ''} · ${fmtTime(s.rating.rated_at)}`
    : '尚未评价 Not rated';

  $('detail-deliveries').tBodies[0].replaceChildren(
    ...d.deliveries.map((x) => {
      const status = h('td', { class: 'status', text: label(DELIVERY_LABELS, x.status) });
      status.dataset.status = x.status;
      const receipt = x.receipt
        ? `${fmtTime(x.receipt.acknowledged_at)} · ${x.receipt.taxpayer.name || ''} ${x.receipt.taxpayer.id_number_masked} · SHA-256 ${shortHash(x.receipt.sha256)}`
        : '—';
      return h(
        'tr',
        { 'data-delivery-id': x.id },
        h('td', { class: 'text', text: x.note ? `${x.filename}\n${x.note}` : x.filename }),
        cell(fmtBytes(x.size_bytes), 'num'),
        cell(fmtTime(x.created_at)),
        status,
        cell(String(x.download_count), 'num'),
        h('td', { class: 'receipt text', text: receipt }),
      );
    }),
  );

  const fu = s.loop.follow_up;
  $('detail-follow-up').textContent =
    `服务跟进 Service follow-up: ${label(FOLLOW_UP_LABELS, fu.status)}` +
    `${fu.due ? ` · 期限 due ${fu.due}` : ''}${fu.done_at ? ` · 完成 done ${fmtTime(fu.done_at)}` : ''}`;
  show('close-follow-up', fu.status === 'open');
  const flag = s.loop.flag || { status: 'none', reasons: [] };
  let flagLine = `督办 Flag: ${flagText(flag)}`;
  if (flag.status === 'done') {
    flagLine += ` · ${fmtTime(flag.done_at)} · ${staffName(flag.done_by) || ''}${flag.note ? ` · ${flag.note}` : ''}`;
  }
  $('detail-flag').textContent = flagLine;
  $('detail-flag').dataset.flag = flag.status;
  show('flag-form', flag.status === 'open');

  $('detail-recording').textContent = s.recording_url ? '有录像 A recording exists' : '无录像 No recording';
  show('load-recording', Boolean(s.recording_url));
  if (changed) $('recording-files').replaceChildren();

  $('detail-quality-reviews').replaceChildren(
    ...d.quality_reviews.map((r) => {
      const items = Object.entries(r.scores)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      return h('li', {
        text: `${fmtTime(r.created_at)} · ${r.total} / ${r.max_total} · ${items}${r.comment ? ` · ${r.comment}` : ''}`,
      });
    }),
  );
  const ended = !['waiting', 'live'].includes(s.outcome);
  show('quality-form', ended && s.outcome !== 'abandoned');
  if (changed) resetQualityForm();

  $('audit').tBodies[0].replaceChildren(
    ...d.audit.map((e) =>
      h(
        'tr',
        { 'data-kind': e.kind },
        cell(fmtTime(e.at)),
        cell(`${e.actor.role}${e.actor.id ? ` ${e.actor.role === 'taxpayer' ? e.actor.id.slice(0, 8) : staffName(e.actor.id)}` : ''}`),
        cell(e.kind, 'kind'),
        cell(Object.keys(e.data || {}).length ? JSON.stringify(e.data) : '', 'data'),
      ),
    ),
  );
}

$('close-follow-up').addEventListener('click', () =>
  action($('close-follow-up'), async () => {
    const id = st.detail.session.id;
    await call('POST', `/api/sessions/${encodeURIComponent(id)}/follow-up`, {});
    await openDetail(id);
  }),
);

$('flag-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('resolve-flag'), async () => {
    const note = $('flag-note').value.trim();
    if (!note) throw new ApiError('invalid_payload', '请填写处理说明 Please write what was done');
    const id = st.detail.session.id;
    await call('POST', `/api/review/sessions/${encodeURIComponent(id)}/flag/resolve`, { note });
    $('flag-note').value = '';
    await openDetail(id);
    await refresh();
  });
});

$('load-recording').addEventListener('click', () =>
  action($('load-recording'), async () => {
    const id = st.detail.session.id;
    const manifest = await call('GET', `/api/recordings/${encodeURIComponent(id)}`);
    const segments = manifest.segments || [];
    if (!segments.length) {
      // The recorder writes the files when the call ends: there may be none yet.
      $('recording-files').replaceChildren(h('li', { text: '尚无文件，请稍后再试 No files yet (still being saved); try again shortly' }));
      return;
    }
    $('recording-files').replaceChildren(
      ...segments.map((seg) =>
        h(
          'li',
          {},
          h('a', { href: seg.url, target: '_blank', rel: 'noopener', text: seg.file }),
          ` · ${seg.duration_s ?? '—'} s · ${fmtBytes(seg.bytes)}`,
        ),
      ),
    );
  }),
);

// ---- the quality review ------------------------------------------------------------------

function buildQualityForm() {
  const items = (st.qualityForm && st.qualityForm.items) || [];
  $('quality-items').replaceChildren(
    ...items.map((it) =>
      h(
        'div',
        {},
        h('label', { htmlFor: `q-${it.code}`, text: `${it.label} (0-${it.max})` }),
        h('input', { id: `q-${it.code}`, type: 'number', min: '0', max: String(it.max), step: '1', required: true }),
      ),
    ),
  );
  for (const it of items) $(`q-${it.code}`).addEventListener('input', showQualityTotal);
}

function resetQualityForm() {
  for (const it of (st.qualityForm && st.qualityForm.items) || []) $(`q-${it.code}`).value = '';
  $('quality-comment').value = '';
  showQualityTotal();
}

function showQualityTotal() {
  const form = st.qualityForm;
  if (!form) return;
  const total = form.items.reduce((sum, it) => sum + (Number($(`q-${it.code}`).value) || 0), 0);
  $('quality-total').textContent = `合计 Total: ${total} / ${form.max_total}`;
}

$('quality-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('submit-quality'), async () => {
    const scores = {};
    for (const it of st.qualityForm.items) {
      const raw = $(`q-${it.code}`).value;
      const n = Number(raw);
      if (raw === '' || !Number.isInteger(n) || n < 0 || n > it.max) {
        throw new ApiError('invalid_payload', `${it.label}: 0-${it.max}`);
      }
      scores[it.code] = n;
    }
    const body = { scores };
    const comment = $('quality-comment').value.trim();
    if (comment) body.comment = comment;
    const id = st.detail.session.id;
    await call('POST', `/api/review/sessions/${encodeURIComponent(id)}/quality`, body);
    resetQualityForm();
    await openDetail(id);
  });
});

// ---- KPIs ---------------------------------------------------------------------------------

function pct(v) {
  return v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)} %`;
}

function kpiCells(key, f) {
  return [
    cell(key),
    cell(String(f.sessions), 'num'),
    cell(String(f.answered), 'num'),
    cell(String(f.abandoned), 'num'),
    cell(pct(f.service_level), 'num'),
    cell(pct(f.service_level_with_abandoned), 'num'),
    cell(fmtNum(f.asa_s), 'num'),
    cell(fmtNum(f.aht_s), 'num'),
    cell(pct(f.abandonment_rate), 'num'),
    cell(pct(f.csat), 'num'),
    cell(pct(f.fcr), 'num'),
    cell(pct(f.occupancy), 'num'),
  ];
}

$('kpi-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  action($('load-kpi'), async () => {
    const q = new URLSearchParams({ group_by: $('k-group-by').value });
    if ($('k-from').value) q.set('from', $('k-from').value);
    if ($('k-to').value) q.set('to', $('k-to').value);
    if ($('k-threshold').value) q.set('threshold_s', $('k-threshold').value);
    for (const name of ['agent', 'category', 'channel', 'language']) {
      if ($(`k-${name}`).value) q.set(name, $(`k-${name}`).value);
    }
    const report = await call('GET', `/api/stats/kpi?${q}`);
    vtax.kpi = report;
    $('kpi').tBodies[0].replaceChildren(
      ...report.rows.map((r) => {
        const key = r.key === null ? '未分配 unassigned' : r.label || r.key;
        return h('tr', { 'data-key': r.key ?? '' }, ...kpiCells(key, r));
      }),
    );
    $('kpi').tFoot.replaceChildren(h('tr', { class: 'total' }, ...kpiCells('合计 Total', report.total)));
  });
});

// ---- live queues ----------------------------------------------------------------------------

async function refreshLive() {
  let live;
  try {
    live = await call('GET', '/api/stats/live');
  } catch (e) {
    if (e.code === 'not_found' || e.code === 'http_404') return; // no live stats on this node
    throw e;
  }
  renderLive(live);
}

function renderLive(live) {
  vtax.live = live;
  $('live-at').textContent = `${live.day || ''} · ${fmtTime(live.at)}`;
  $('live-stats').tBodies[0].replaceChildren(
    ...Object.entries(live.queues || {}).map(([code, q]) => {
      const agents = Object.entries(q.agents || {})
        .filter(([, n]) => n)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      const today = q.today || {};
      return h(
        'tr',
        { 'data-category': code },
        cell(categoryLabel(st.catalog, code)),
        cell(String(q.waiting ?? 0), 'num'),
        cell(fmtNum(q.longest_wait_s), 'num'),
        cell(agents || '—'),
        cell(String(today.answered ?? 0), 'num'),
        cell(String(today.abandoned ?? 0), 'num'),
        cell(`${pct(today.service_level)} (${q.service_level_s ?? '—'} s)`, 'num'),
        cell(fmtNum(today.asa_s), 'num'),
      );
    }),
  );
}

if (Number.isInteger(PAGE_SIZE_PARAM) && PAGE_SIZE_PARAM >= 1 && PAGE_SIZE_PARAM <= 200) {
  const value = String(PAGE_SIZE_PARAM);
  if (![...$('f-page-size').options].some((o) => o.value === value)) {
    $('f-page-size').prepend(h('option', { value, text: value }));
  }
  $('f-page-size').value = value;
  st.pageSize = value;
}
setState('idle');
