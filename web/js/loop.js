// The review loop (ask -> handle -> check -> evaluate -> deliver, docs/review.md) as the three
// pages show it: labels, the summary, documents (upload, download with a SHA-256 check, save),
// and small formatting helpers. User data goes in with textContent only (see h()).
import { h, fetchOk, bilingual, findCategory, ApiError } from './common.js';

export const RESULT_LABELS = {
  resolved: '已解决 Resolved',
  follow_up: '需跟进 Follow-up needed',
  transferred: '已转办 Transferred',
};
export const CHECK_LABELS = {
  pending: '待核对 Not checked yet',
  confirmed: '已确认 Confirmed',
  disputed: '有异议 Disputed',
};
export const FOLLOW_UP_LABELS = { none: '无 None', open: '跟进中 Open', done: '已完成 Done' };
export const FLAG_LABELS = { none: '无 None', open: '待处理 Open', done: '已处理 Done' };
export const DELIVERY_LABELS = {
  pending: '待下载 Not downloaded',
  downloaded: '已下载 Downloaded',
  acknowledged: '已签收 Acknowledged',
};
export const OUTCOME_LABELS = {
  waiting: '排队中 Waiting',
  live: '通话中 Live',
  completed: '已完成 Completed',
  dropped: '中断 Dropped',
  transferred: '已转办 Transferred',
  abandoned: '已放弃 Abandoned',
};
export const DIMENSIONS = [
  ['professionalism', '专业 Professionalism'],
  ['attitude', '态度 Attitude'],
  ['efficiency', '效率 Efficiency'],
  ['av_quality', '音视频质量 Audio/video quality'],
];

export function label(map, code) {
  return (code && map[code]) || code || '—';
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function categoryLabel(catalog, code) {
  const c = findCategory(catalog, code);
  return c ? `${bilingual(c.name, code)} (${code})` : code || '—';
}

export function itemLabel(catalog, code) {
  for (const c of catalog?.categories || []) {
    const item = (c.items || []).find((i) => i.code === code);
    if (item) return `${bilingual(item.name, code)} (${code})`;
  }
  return code;
}

/** A <dl> with the agent's summary: asked, category, handled, actions, result, items, due. */
export function summaryFacts(summary, catalog) {
  const dl = h('dl', { class: 'facts summary-facts' });
  const add = (dt, dd, cls) => dl.append(h('dt', { text: dt }), h('dd', { class: cls, text: dd }));
  add('问 Asked', summary.asked, 'asked');
  if (summary.category) add('类别 Category', categoryLabel(catalog, summary.category), 'category');
  add('办 Handled', summary.handled, 'handled');
  if (summary.actions && summary.actions.length) add('措施 Actions', summary.actions.join('\n'), 'actions');
  add('结果 Result', label(RESULT_LABELS, summary.result), 'result');
  if (summary.items && summary.items.length) {
    add('事项 Items', summary.items.map((i) => itemLabel(catalog, i)).join('\n'), 'items');
  }
  if (summary.follow_up_due) add('跟进期限 Follow-up due', summary.follow_up_due, 'due');
  add('版本 Version', `${summary.version} · ${fmtTime(summary.saved_at)}`, 'version');
  return dl;
}

/** The rating as text: "4 / 5 · professionalism 5, ...". */
export function ratingText(rating) {
  if (!rating) return '—';
  const dims = DIMENSIONS.filter(([k]) => rating.dimensions && rating.dimensions[k])
    .map(([k, name]) => `${name} ${rating.dimensions[k]}`)
    .join(', ');
  return `${rating.score} / 5${dims ? ` · ${dims}` : ''}`;
}

/** Upload a document for the taxpayer of a session (agent). Resolves with the Delivery. */
export async function uploadDocument(token, sessionId, file, note) {
  if (!file) throw new ApiError('invalid_payload', '请选择文件 Please choose a file');
  const form = new FormData();
  form.append('file', file, file.name);
  if (note) form.append('note', note);
  const res = await fetchOk('POST', `/api/sessions/${encodeURIComponent(sessionId)}/deliveries`, {
    token,
    body: form,
  });
  return res.json();
}

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Download a delivered document, check its SHA-256 against the delivery's, and hand it to the
 * browser as a file. Resolves with the hex SHA-256; rejects with ApiError when the server
 * refuses it or the bytes do not match.
 */
export async function downloadDocument(token, delivery) {
  const res = await fetchOk('GET', `/api/deliveries/${encodeURIComponent(delivery.id)}/content`, { token });
  const buffer = await res.arrayBuffer();
  const sha = await sha256Hex(buffer);
  const expected = res.headers.get('X-Content-SHA256') || delivery.sha256;
  if (expected && sha !== expected.toLowerCase()) {
    throw new ApiError('hash_mismatch', '文件校验失败，请重新下载 The file did not arrive intact; download it again');
  }
  saveFile(new Blob([buffer], { type: delivery.media_type }), delivery.filename);
  return sha;
}

/** Let the browser download `href` (saved to disk as it arrives) as `filename`. */
export function download(href, filename) {
  const a = h('a', { href, download: filename || 'download', class: 'hidden' });
  document.body.append(a);
  a.click();
  a.remove();
}

/** Offer a Blob to the user as a download named `filename`. */
export function saveFile(blob, filename) {
  const url = URL.createObjectURL(blob);
  download(url, filename);
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

/** A short form of a SHA-256 for people ("3f2a…9c1b"). */
export function shortHash(sha) {
  return sha ? `${sha.slice(0, 8)}…${sha.slice(-8)}` : '—';
}

/** Repeats `fn` every `ms` while `active()` holds; errors go to `onError`. Returns a stop(). */
export function poller(fn, ms, { active = () => true, onError = () => {} } = {}) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    if (active()) {
      try {
        await fn();
      } catch (e) {
        onError(e);
      }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
