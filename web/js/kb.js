// Supervisor page, knowledge base of the assistant (docs/assistant.md): list the entries (by
// category, retired too), edit one as its draft (JSON: key, category, items, texts per
// language with question, alternatives, answer and links, validity days) with the version it
// was read at (a conflicting edit is refused, nothing is lost), create, retire, history;
// export the file and import one (check first: every problem with its place). Below: the
// consultation figures and the questions the assistant could not answer. The token is the
// page's sign-in (supervisor.js, window.vtax.st). All user data goes in with textContent.
import { $, vtax, api, action, bilingual, fetchOk, getCatalog, h, show, ApiError } from './common.js';
import { saveFile } from './loop.js';

const kb = { entries: [], editing: null }; // editing: null (new) or the KbEntryView
vtax.kb = kb;
const token = () => (vtax.st && vtax.st.token) || null;
const call = (method, path, body) => api(method, path, { body, token: token() });

function draftOf(e) {
  return { key: e.key, category: e.category, items: e.items, texts: e.texts, valid_from: e.valid_from, valid_until: e.valid_until };
}

async function loadEntries() {
  const q = new URLSearchParams();
  if ($('kb-category').value) q.set('category', $('kb-category').value);
  if ($('kb-retired').checked) q.set('include_retired', 'true');
  const data = await call('GET', `/api/kb/entries${q.toString() ? `?${q}` : ''}`);
  kb.entries = data.entries || [];
  $('kb-revision').textContent = `修订 revision ${data.revision} · ${kb.entries.length} 条 entries`;
  const body = $('kb-entries').tBodies[0];
  body.replaceChildren(
    ...kb.entries.map((e) => {
      const zh = (e.texts['zh-CN'] || {}).question || '';
      return h(
        'tr',
        { 'data-key': e.key },
        h('td', { class: 'mono', text: e.key }),
        h('td', { text: e.category }),
        h('td', { text: zh }),
        h('td', { text: Object.keys(e.texts).join(' ') }),
        h('td', { class: 'num', text: String(e.version) }),
        h('td', { text: `${e.updated_by} · ${e.updated_at}` }),
        h('td', { text: e.retired ? '已停用 retired' : '' }),
        h('td', {}, h('button', { type: 'button', class: 'kb-edit', text: '编辑 Edit', onclick: () => edit(e) })),
      );
    }),
  );
}

function edit(e) {
  kb.editing = e;
  $('kb-draft').value = JSON.stringify(e ? draftOf(e) : {
    key: '', category: $('kb-category').value || 'invoices', items: [], valid_from: null, valid_until: null,
    texts: { 'zh-CN': { question: '', alternatives: [], answer: '', links: [] } },
  }, null, 2);
  $('kb-editing').textContent = e ? `${e.key} · 版本 version ${e.version}` : '新条目 new entry';
  $('kb-saved').textContent = '';
  show('kb-retire', Boolean(e && !e.retired));
  show('kb-editor', true);
  $('kb-history').replaceChildren();
  $('kb-draft').focus();
}

function parsedDraft() {
  try {
    return JSON.parse($('kb-draft').value);
  } catch (e) {
    throw new ApiError('invalid_payload', `不是有效的 JSON Not valid JSON: ${e.message}`);
  }
}

async function save() {
  const draft = parsedDraft();
  const e = kb.editing;
  const view = e
    ? await call('PUT', `/api/kb/entries/${encodeURIComponent(e.key)}`, { expected_version: e.version, entry: draft })
    : await call('POST', '/api/kb/entries', draft);
  kb.editing = view;
  $('kb-editing').textContent = `${view.key} · 版本 version ${view.version}`;
  $('kb-saved').textContent = `已保存 Saved: ${view.key}, 版本 version ${view.version}`;
  show('kb-retire', !view.retired);
  await loadEntries();
}

async function retire() {
  const e = kb.editing;
  if (!e) return;
  const view = await call('POST', `/api/kb/entries/${encodeURIComponent(e.key)}/retire`, { expected_version: e.version });
  kb.editing = view;
  $('kb-saved').textContent = `已停用 Retired: ${view.key}, 版本 version ${view.version}`;
  show('kb-retire', false);
  await loadEntries();
}

async function history() {
  const e = kb.editing;
  if (!e) return;
  const data = await call('GET', `/api/kb/entries/${encodeURIComponent(e.key)}/history`);
  $('kb-history').replaceChildren(
    ...data.versions.map((v) => h('li', { text: `${v.version} · ${v.change} · ${v.changed_by} · ${v.changed_at}` })),
  );
}

async function exportFile() {
  const res = await fetchOk('GET', '/api/kb/export', { token: token() });
  saveFile(await res.blob(), 'vtax-kb.json');
}

async function importFile(dryRun) {
  const file = $('kb-file').files[0];
  if (!file) throw new ApiError('chooseFile', '请选择文件 Please choose a file');
  const q = new URLSearchParams({ dry_run: String(dryRun), retire_missing: String($('kb-retire-missing').checked) });
  let out;
  try {
    const res = await fetchOk('POST', `/api/kb/import?${q}`, {
      token: token(),
      body: await file.text(),
      headers: { 'Content-Type': 'application/json' },
    });
    out = await res.json();
  } catch (e) {
    if (!(e instanceof ApiError) || !e.details) throw e;
    out = { problems: e.details.map((d) => ({ where: d.field || d.where || '', message: d.message || '' })) };
  }
  const lines = [];
  if (out.problems && out.problems.length) {
    lines.push(`问题 Problems (${out.problems.length}):`, ...out.problems.map((p) => `  ${p.where}: ${p.message}`));
  } else {
    lines.push(
      `${out.dry_run ? '检查通过（未更改） Checked, nothing changed' : '已导入 Imported'}: ${out.entries}`,
      `新建 created ${out.created.length} · 更新 updated ${out.updated.length} · 未变 unchanged ${out.unchanged.length} · 停用 retired ${out.retired.length}`,
    );
  }
  $('kb-import-result').textContent = lines.join('\n');
  if (!dryRun) await loadEntries();
}

const KPI_ROWS = [
  ['conversations', '对话 Conversations'], ['contained', '智能解决 Contained'], ['containment_rate', '智能解决率 Containment'],
  ['handoffs', '转人工 Hand-offs'], ['handoff_rate', '转人工率 Hand-off rate'], ['answers', '回答 Answers'],
  ['no_answers', '未能回答 No answer'], ['helpful_votes', '有帮助 Helpful'], ['not_helpful_votes', '没帮助 Not helpful'],
  ['acceptance_rate', '认可率 Acceptance'], ['recontact_7d', '7日内再咨询 Re-contact (7 d)'], ['recontact_rate', '再咨询率 Re-contact rate'],
];
const pct = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)} %`);

async function figures() {
  const q = new URLSearchParams();
  if ($('cs-from').value) q.set('from', $('cs-from').value);
  if ($('cs-to').value) q.set('to', $('cs-to').value);
  const qs = q.toString() ? `?${q}` : '';
  const [k, un] = await Promise.all([call('GET', `/api/stats/consultations${qs}`), call('GET', `/api/consultations/unanswered${qs}`)]);
  vtax.consultationKpi = k;
  const rows = KPI_ROWS.map(([f, name]) => h('tr', {}, h('th', { scope: 'row', text: name }), h('td', { class: 'num', 'data-field': f, text: f.endsWith('rate') ? pct(k[f]) : String(k[f]) })));
  for (const [reason, n] of Object.entries(k.handoffs_by_reason || {})) {
    rows.push(h('tr', {}, h('th', { scope: 'row', text: `转人工 Hand-offs: ${reason}` }), h('td', { class: 'num', text: `${n} (${pct(k.handoff_rate_by_reason[reason])})` })));
  }
  $('cs-kpi').tBodies[0].replaceChildren(...rows);
  $('unanswered').tBodies[0].replaceChildren(
    ...un.questions.map((u) => h('tr', {}, h('td', { text: u.at }), h('td', { text: u.language }), h('td', { text: u.question }), h('td', { class: 'mono', text: u.best_key || '—' }), h('td', { class: 'num', text: u.confidence === null ? '—' : u.confidence.toFixed(2) }))),
  );
}

$('kb-load').addEventListener('click', () => action($('kb-load'), loadEntries));
$('kb-new').addEventListener('click', () => edit(null));
$('kb-save').addEventListener('click', () => action($('kb-save'), save));
$('kb-retire').addEventListener('click', () => action($('kb-retire'), retire));
$('kb-history-load').addEventListener('click', () => action($('kb-history-load'), history));
$('kb-close').addEventListener('click', () => show('kb-editor', false));
$('kb-export').addEventListener('click', () => action($('kb-export'), exportFile));
$('kb-check').addEventListener('click', () => action($('kb-check'), () => importFile(true)));
$('kb-import').addEventListener('click', () => action($('kb-import'), () => importFile(false)));
$('cs-load').addEventListener('click', () => action($('cs-load'), figures));

getCatalog()
  .then((c) => {
    $('kb-category').append(...c.categories.map((cat) => h('option', { value: cat.code, text: bilingual(cat.name, cat.code) })));
  })
  .catch(() => {});
