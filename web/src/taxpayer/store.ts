// The taxpayer entry's state and flow: identity -> question -> queue -> call -> after the
// call (summary check, rating, documents) -> my sessions. The call itself is useCall's.
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import type {
  CatalogOut,
  DeliveryNew,
  DeliveryView,
  QueueJoin,
  QueueTransferred,
  Queued,
  RecordingState,
  SessionStart,
  SessionView,
  TaxpayerSession,
} from '@/contract';
import { api } from '@/core/api';
import { ApiError, asApiError } from '@/core/errors';
import { actionRunner } from '@/core/action';
import { vtax } from '@/core/hook';
import { downloadDocument } from '@/core/documents';
import { useCall, type Connection } from '@/composables/useCall';
import type { VtaxSocket } from '@/core/socket';
import { emitAck } from '@/core/socket';
import { TaxpayerAuth } from '@/core/taxpayerAuth';

export type Step = 'identity' | 'acting' | 'request' | 'history' | 'bookings' | 'queue' | 'call' | 'after';
/** The mobile regions sign-in codes go to (docs/identity.md). */
export const REGIONS = ['+86', '+852', '+853'] as const;
export type Region = (typeof REGIONS)[number];
export type ActingOption = TaxpayerSession['options'][number];
/** window.vtax.state: what the browser tests wait for (never shown to people). */
export type PageState = 'idle' | 'queued' | 'in_session' | 'connected' | 'resuming' | 'ended' | 'moved';
export interface Msg {
  key: string;
  params?: Record<string, string | number>;
}
export interface Panel {
  sessionId: string;
  view: SessionView | null;
  deliveries: (DeliveryView & { downloadedSha?: string })[];
  /** set when opened from "my sessions": when and what */
  heading: { joinedAt: string; category: string } | null;
}
export const DIMENSIONS = ['professionalism', 'attitude', 'efficiency', 'av_quality'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

const POLL_MS = 5000; // fallback: `session:loop` brings changes at once
const STEP_UP_KEY = 'vtax.stepUp'; // what a step-up retries, kept over the platform's redirect

export const useTaxpayer = defineStore('taxpayer', () => {
  const params = new URLSearchParams(location.search);
  const step = ref<Step>('identity');
  const state = ref<PageState>('idle');
  const status = ref<Msg>({ key: 'status.signedOut' });
  const error = shallowRef<ApiError | null>(null);
  const notice = ref<Msg | null>(null);
  const busy = ref(false);

  const token = ref<string | null>(null);
  const taxpayerId = ref<string | null>(null);
  const name = ref('');
  const catalog = shallowRef<CatalogOut | null>(null);

  // sign-in: the methods this node offers, the SMS code form, the session and whom one acts for
  const methods = ref<string[]>(['sms']);
  const signin = ref({ region: '+86' as Region, phone: '', code: '', sentTo: '', resendAt: 0, expiresAt: 0 });
  const session = shallowRef<TaxpayerSession | null>(null);
  const now = ref(Date.now());
  setInterval(() => {
    if (signin.value.resendAt > now.value || signin.value.expiresAt > now.value) now.value = Date.now();
  }, 1000);
  /** Seconds until another code may be asked for (0: now). */
  const resendIn = computed(() => Math.max(0, Math.ceil((signin.value.resendAt - now.value) / 1000)));

  const form = ref({
    category: '',
    language: '',
    channel: params.get('channel') || 'web',
    question: '',
    /** the catalog item asked for ('' none); a risky one (`step_up`) needs a fresh high sign-in */
    item: '',
  });

  /** What `step_up_required` refused, kept across the trip to the identity platform and
   * retried when the fresh sign-in comes back (docs/identity.md, Step-up). */
  type StepUpRetry =
    | { action: 'join'; form: { category: string; language: string; channel: string; question: string; item: string } }
    | { action: 'ack'; deliveryId: string; sessionId: string };
  const stepUp = ref<StepUpRetry | null>(null);

  /** the declared need (the kiosk's elderly mode): served first within the queue's aging */
  const priority = ref<NonNullable<QueueJoin['priority']>>('normal');
  const ticketId = ref<string | null>(null);
  const position = ref<number | null>(null);
  const etaS = ref<number | null>(null);
  const agentName = ref('');
  const endReason = ref('');

  const recordingState = ref<RecordingState['state'] | null>(null);
  const monitorNotice = ref<string | null>(null); // the session the notice came with
  const consent = ref<{ sessionId: string; onRefusal: 'continue' | 'end' } | null>(null);

  const panel = ref<Panel | null>(null);
  const rating = ref({ score: '' as string, comment: '', dims: Object.fromEntries(DIMENSIONS.map((d) => [d, ''])) as Record<Dimension, string> });
  const ratedNow = ref(false);
  const checkComment = ref('');

  const history = ref<SessionView[]>([]);
  const historyCursor = ref<string | null>(null);

  // ---- test hook mirrors ------------------------------------------------------------------
  vtax.page = 'taxpayer';
  watch(state, (s) => {
    vtax.state = s;
    document.body.dataset.state = s;
  }, { immediate: true });
  watch(position, (p) => (vtax.position = p));

  function setError(e: unknown): void {
    const err = e ? asApiError(e) : null;
    error.value = err;
    if (err) {
      vtax.lastError = { code: err.code || null, message: err.message };
      console.warn('vtax error', err);
    }
  }

  /** Run a user action: clear the error, mark busy, show what fails. */
  const action = actionRunner({ setBusy: (on) => (busy.value = on), setError });

  // ---- the call ---------------------------------------------------------------------------
  const call = useCall('taxpayer', {
    wire,
    onEnded: (reason) => showAfter(reason),
    onMoved: () => {
      state.value = 'moved';
      status.value = { key: 'status.moved' };
      setError(new ApiError('moved'));
    },
    onError: (e) => setError(e),
    onConnection: (c: Connection) => {
      if (state.value === 'ended' || state.value === 'moved' || state.value === 'idle' || state.value === 'queued') return;
      if (c === 'connected') {
        state.value = 'connected';
        status.value = { key: 'status.connected' };
        setError(null);
      } else if (c === 'reconnecting') {
        if (state.value !== 'resuming') state.value = 'in_session';
        status.value = { key: 'status.reconnecting' };
      } else if (c === 'connecting') {
        state.value = 'in_session';
        status.value = { key: 'status.connecting' };
      }
    },
    onRecording: (msg) => {
      recordingState.value = msg.state;
      if (msg.state === 'consent_requested') consent.value = { sessionId: msg.session_id, onRefusal: msg.on_refusal || 'continue' };
      else consent.value = null;
    },
  });

  watch(call.peerState, (p) => {
    if (p === 'reconnecting') notice.value = { key: 'call.peerReconnecting' };
    else if (p === 'left') notice.value = { key: 'call.peerLeft' };
    else if (p === 'back') notice.value = null;
  });

  /** Other parts of the entry (bookings, callbacks) listen on the same socket. */
  const wirers: ((socket: VtaxSocket) => void)[] = [];
  function onWire(fn: (socket: VtaxSocket) => void): void {
    wirers.push(fn);
    if (call.socket.value) fn(call.socket.value);
  }

  function wire(socket: VtaxSocket): void {
    for (const w of wirers) w(socket);
    // the notice that calls may be monitored (every call, monitored or not; src/i18n/areas/monitor.ts)
    socket.on('session:notice', (msg) => {
      if (msg && msg.notice === 'may_be_monitored') monitorNotice.value = msg.session_id;
    });
    socket.on('queue:update', (msg) => {
      if (msg && msg.ticket_id === ticketId.value && state.value === 'queued') showPosition(msg);
    });
    socket.on('queue:left', (msg) => {
      if (msg && msg.ticket_id === ticketId.value && state.value === 'queued') backToRequest('status.leftQueue');
    });
    socket.on('session:start', (msg) => onSessionStart(msg));
    socket.on('queue:transferred', onTransferred);
    socket.on('delivery:new', onDeliveryNew);
    socket.on('session:loop', (msg) => {
      if (msg && panel.value && msg.session_id === panel.value.sessionId) refreshPanel().catch(setError);
    });
    socket.on('disconnect', (reason) => {
      if (socket !== call.socket.value || reason === 'io client disconnect') return;
      if (call.call.value) return; // useCall keeps the call and resumes it
      if (state.value === 'queued' || state.value === 'in_session' || state.value === 'connected') {
        setError(new ApiError('disconnected'));
        backToRequest('status.signedIn');
      }
    });
  }

  // ---- identity ---------------------------------------------------------------------------
  const page = vtax.page === 'kiosk' || location.pathname.startsWith('/kiosk') ? 'kiosk' : 'taxpayer';
  const auth = new TaxpayerAuth(page, {
    onSession: (s) => {
      session.value = s;
      token.value = s.access_token;
      taxpayerId.value = s.person.person_id;
      name.value = s.person.name;
      vtax.taxpayerId = s.person.person_id;
      vtax.acting = s.acting ? { uscc: s.acting.uscc, role: s.acting.role } : null;
      call.setToken(s.access_token);
      const socket = call.socket.value;
      if (socket && socket.connected) emitAck(socket, 'auth:renew', { token: s.access_token }).catch(() => {});
    },
    onEnded: (e) => {
      if (step.value === 'identity') return;
      if (state.value === 'in_session' || state.value === 'connected') return; // the call goes on; its end signs out
      resetSignedOut();
      setError(e.code === 'refresh_reused' ? e : new ApiError('unauthorized'));
    },
  });

  async function loadMethods(): Promise<void> {
    const m = await api('get', '/api/auth/methods');
    methods.value = m.methods;
  }

  function phoneNumber(): string {
    const digits = signin.value.phone.replace(/[\s()\-.]/g, '');
    if (!digits) throw new ApiError('needPhone');
    if (digits.startsWith('+')) return digits;
    return `${signin.value.region}${digits}`;
  }

  async function sendCode(language: string): Promise<void> {
    if (resendIn.value > 0) return;
    const phone = phoneNumber();
    const sent = await api('post', '/api/auth/sms/code', {
      body: { phone, language: language as 'zh-CN' | 'zh-HK' | 'en' | 'pt' },
    });
    const t = Date.now();
    now.value = t;
    signin.value.sentTo = sent.phone;
    signin.value.resendAt = t + sent.resend_in_s * 1000;
    signin.value.expiresAt = t + sent.expires_in_s * 1000;
    signin.value.code = '';
    vtax.codeSent = sent;
  }

  async function verifyCode(): Promise<void> {
    const code = signin.value.code.replace(/\s/g, '');
    if (!/^[0-9]{6}$/.test(code)) throw new ApiError('needCode');
    const s = await api('post', '/api/auth/sms/verify', { body: { phone: phoneNumber(), code } });
    await signedIn(s);
  }

  /** The identity platform (OpenID Connect): off to its sign-in page; it comes back here. */
  async function startOidc(language: string): Promise<void> {
    const r = await api('post', '/api/auth/oidc/start', { body: { language: language as 'zh-CN' | 'zh-HK' | 'en' | 'pt' } });
    location.assign(r.authorization_url);
  }

  /** Back from the platform with `code` and `state` (or its `error`) in the query. A step-up
   * (`verifyAgain`) takes the fresh sign-in and lets the page go on as after a reload (a call
   * resumes), then retries what was refused; anything else is a new sign-in. */
  async function finishOidc(): Promise<boolean> {
    const code = params.get('code');
    const st = params.get('state');
    const failed = params.get('error');
    if (!(st && (code || failed))) return false;
    window.history.replaceState(null, '', location.pathname); // the code works once: not in the history
    const pending = takeStepUp();
    if (failed || !code) throw new ApiError('sign_in_failed');
    const s = await api('post', '/api/auth/oidc/callback', { body: { code, state: st } }).catch((e) => {
      if (pending && asApiError(e).code === 'step_up_refused') stepUp.value = pending;
      throw e;
    });
    if (pending) {
      auth.accept(s);
      stepUp.value = pending;
      retryAfterRestore = true;
      return false;
    }
    await signedIn(s);
    return true;
  }

  let retryAfterRestore = false;

  function takeStepUp(): StepUpRetry | null {
    try {
      const raw = sessionStorage.getItem(STEP_UP_KEY);
      sessionStorage.removeItem(STEP_UP_KEY);
      return raw ? (JSON.parse(raw) as StepUpRetry) : null;
    } catch {
      return null;
    }
  }

  /** "Verify again": off to the identity platform for a fresh sign-in at the step-up level
   * (acr_values, prompt=login, max_age), of the person signed in. */
  async function verifyAgain(language: string): Promise<void> {
    if (!stepUp.value || !token.value) return;
    const r = await api('post', '/api/auth/oidc/start', {
      token: token.value,
      query: { step_up: true },
      body: { language: language as 'zh-CN' | 'zh-HK' | 'en' | 'pt' },
    });
    sessionStorage.setItem(STEP_UP_KEY, JSON.stringify(stepUp.value));
    location.assign(r.authorization_url);
  }

  /** After the fresh sign-in: the refused step again. */
  async function retryStepUp(): Promise<void> {
    const pending = stepUp.value;
    if (!pending) return;
    stepUp.value = null;
    if (pending.action === 'join') {
      form.value = { ...form.value, ...pending.form };
      await startRequest();
      return;
    }
    openPanel(pending.sessionId);
    await api('post', '/api/deliveries/{delivery_id}/ack', { token: token.value, path: { delivery_id: pending.deliveryId }, body: {} });
    notice.value = { key: 'stepUp.acknowledged' };
    await loadDeliveries();
  }

  /** After a sign-in: whom one acts for (when there is a choice), then the question. */
  async function signedIn(s: TaxpayerSession): Promise<void> {
    auth.accept(s);
    signin.value = { ...signin.value, code: '', sentTo: '', resendAt: 0, expiresAt: 0 };
    await loadCatalog();
    if (s.options.length && !s.acting) {
      step.value = 'acting';
      status.value = { key: 'status.signedIn' };
      return;
    }
    await enterRequest();
  }

  async function enterRequest(): Promise<void> {
    step.value = 'request';
    status.value = { key: 'status.signedIn' };
    await remindPending();
  }

  /** Act for an enterprise in a role, or for oneself (null). */
  async function chooseActing(option: ActingOption | null): Promise<void> {
    const current = session.value?.acting;
    const same = option ? current && current.enterprise_id === option.enterprise_id && current.role === option.role : !current;
    if (!same) await auth.actFor(option ? option.enterprise_id : null, option ? option.role : null);
    await enterRequest();
  }

  /** From the question step: choose again whom one acts for. */
  function changeActing(): void {
    setError(null);
    step.value = 'acting';
  }

  async function remindPending(): Promise<void> {
    const data = await api('get', '/api/deliveries', { token: token.value, query: { status: 'pending', limit: 200 } });
    const n = (data.deliveries || []).length;
    vtax.pendingDocuments = n;
    if (n) notice.value = { key: 'documents.pending', params: { n } };
  }

  function resetSignedOut(): void {
    call.clearStored();
    call.disconnect();
    auth.forget();
    session.value = null;
    token.value = null;
    taxpayerId.value = null;
    vtax.taxpayerId = null;
    vtax.acting = null;
    panel.value = null;
    signin.value = { region: signin.value.region, phone: '', code: '', sentTo: '', resendAt: 0, expiresAt: 0 };
    notice.value = null;
    step.value = 'identity';
    state.value = 'idle';
    status.value = { key: 'status.signedOut' };
  }

  /** Sign out at the server (its tokens die at once), then of the platform if it was one. */
  async function signOut(): Promise<void> {
    const providerLogout = await auth.logout();
    resetSignedOut();
    setError(null);
    vtax.signedOut = true;
    if (providerLogout) location.assign(providerLogout);
  }

  /** Page load: a sign-in this tab kept (a reload) comes back through a refresh. */
  async function restoreSignIn(): Promise<boolean> {
    if (!auth.stored()) return false;
    try {
      const s = await auth.refresh();
      await loadCatalog();
      if (s.options.length && !s.acting) step.value = 'acting';
      else await enterRequest();
      status.value = { key: 'status.signedIn' };
      return true;
    } catch {
      return false; // sign in again
    }
  }

  // ---- the question -----------------------------------------------------------------------
  async function loadCatalog(): Promise<CatalogOut> {
    if (!catalog.value) catalog.value = await api('get', '/api/catalog');
    const c = catalog.value;
    const pick = (list: { code: string }[], wanted: string | null, current: string) =>
      [wanted, current].find((v) => v && list.some((x) => x.code === v)) || list[0]?.code || '';
    form.value.category = pick(c.categories, params.get('category'), form.value.category);
    form.value.language = pick(c.languages, params.get('language'), form.value.language);
    form.value.channel = pick(c.channels, params.get('channel'), form.value.channel);
    return c;
  }

  /** The service language follows the page language until the person picks one. */
  function preselectLanguage(code: string): void {
    if (params.get('language')) return;
    if (catalog.value?.languages.some((l) => l.code === code)) form.value.language = code;
  }

  async function startRequest(): Promise<void> {
    vtax.startClickedAt = Date.now();
    const question = form.value.question.trim();
    if (!question) throw new ApiError('needQuestion');
    call.preview();
    try {
      if (!token.value) throw new ApiError('unauthorized');
      const socket = await call.ensureSocket(token.value);
      const ack = await emitAck(socket, 'queue:join', {
        category: form.value.category as QueueJoin['category'],
        language: form.value.language as QueueJoin['language'],
        channel: form.value.channel as QueueJoin['channel'],
        question,
        ...(priority.value !== 'normal' ? { priority: priority.value } : {}),
        ...(form.value.item ? { item: form.value.item as NonNullable<QueueJoin['item']> } : {}),
      });
      stepUp.value = null;
      enterQueue(ack);
    } catch (e) {
      call.releasePreview();
      if (asApiError(e).code === 'step_up_required') stepUp.value = { action: 'join', form: { ...form.value } };
      throw e;
    }
  }

  /** A ticket joined the queue (the form, the assistant's hand-off, a booking's check-in). */
  function enterQueue(q: Pick<Queued, 'ticket_id' | 'position' | 'eta_s'>): void {
    ticketId.value = q.ticket_id;
    if (state.value !== 'in_session' && state.value !== 'connected') {
      showPosition(q);
      step.value = 'queue';
      state.value = 'queued';
      status.value = { key: 'status.queued' };
    }
  }

  function showPosition(q: Pick<Queued, 'position' | 'eta_s'>): void {
    position.value = q.position;
    etaS.value = q.eta_s ?? null;
    vtax.eta_s = q.eta_s;
  }

  async function leaveQueue(): Promise<void> {
    if (ticketId.value) await emitAck(call.socket.value, 'queue:leave', { ticket_id: ticketId.value });
    backToRequest('status.leftQueue');
  }

  function backToRequest(key: string): void {
    ticketId.value = null;
    call.releasePreview();
    step.value = 'request';
    state.value = 'idle';
    status.value = { key };
  }

  function onTransferred(msg: QueueTransferred): void {
    if (!msg || !msg.ticket_id) return;
    if (call.call.value) call.end('transferred');
    ticketId.value = msg.ticket_id;
    showPosition(msg);
    step.value = 'queue';
    state.value = 'queued';
    status.value = { key: 'status.transferred', params: { category: msg.category, note: msg.note || '' } };
  }

  // ---- the call ---------------------------------------------------------------------------
  function onSessionStart(start: SessionStart, { fresh = false } = {}): void {
    ticketId.value = null;
    agentName.value = start.peer?.display_name || '';
    call.persistSession(start, token.value || '', { taxpayerId: taxpayerId.value, name: name.value });
    openPanel(start.session_id);
    notice.value = null;
    step.value = 'call';
    state.value = 'in_session';
    status.value = { key: 'status.connecting' };
    if (!fresh) call.start(start);
  }

  async function hangup(): Promise<void> {
    await call.hangup();
  }

  async function answerConsent(yes: boolean): Promise<void> {
    if (!consent.value) return;
    await call.recording.consent(consent.value.sessionId, yes);
    consent.value = null;
  }

  function showAfter(reason: string): void {
    notice.value = null;
    consent.value = null;
    endReason.value = reason || '';
    state.value = 'ended';
    status.value = { key: 'status.ended' };
    const sid = call.session.value?.session_id || (vtax.sessionId as string | undefined);
    if (sid) openPanel(sid);
    step.value = 'after';
    refreshPanel().catch(setError);
  }

  /** Page load: if this tab has a live (or just ended) session, pick it up; back from a
   * step-up, retry what it was for. */
  async function restore(): Promise<void> {
    await restoreSession();
    if (retryAfterRestore) {
      retryAfterRestore = false;
      await retryStepUp();
    }
  }

  async function restoreSession(): Promise<void> {
    if (await finishOidc()) return;
    const saved = call.load();
    if (!saved || !saved.token || !saved.sessionId) {
      await restoreSignIn();
      return;
    }
    if (auth.stored()) {
      try {
        const s = await auth.refresh(); // a fresh access token for the resume
        saved.token = s.access_token;
      } catch {
        /* the saved token, if it still holds */
      }
    }
    token.value = saved.token;
    taxpayerId.value = (saved.taxpayerId as string) || null;
    name.value = (saved.name as string) || '';
    vtax.taxpayerId = taxpayerId.value;
    vtax.sessionId = saved.sessionId;
    loadCatalog().catch(setError);
    if (saved.ended) {
      openPanel(saved.sessionId);
      showAfter(saved.endReason || '');
      return;
    }
    vtax.restoring = true;
    step.value = 'call';
    state.value = 'resuming';
    status.value = { key: 'status.resuming' };
    try {
      const ack = await call.restore(saved);
      onSessionStart(ack as unknown as SessionStart, { fresh: true });
    } catch (e) {
      const err = asApiError(e);
      if (err.code === 'unauthorized') {
        resetSignedOut();
        setError(err);
      } else {
        openPanel(saved.sessionId);
        call.end(err.code === 'session_ended' ? 'session_ended' : err.code || 'disconnected');
      }
    }
    vtax.restoring = false;
  }

  // ---- after the session: summary check, rating, documents --------------------------------
  function openPanel(sessionId: string, heading: Panel['heading'] = null): void {
    if (panel.value && panel.value.sessionId === sessionId) {
      if (heading) panel.value.heading = heading;
      return;
    }
    panel.value = { sessionId, view: null, deliveries: [], heading };
    vtax.panel = panel.value;
    checkComment.value = '';
    resetRating();
    loadDeliveries().catch(setError);
  }

  async function refreshPanel(): Promise<void> {
    const p = panel.value;
    if (!p || !token.value) return;
    const [view] = await Promise.all([
      api('get', '/api/sessions/{session_id}', { token: token.value, path: { session_id: p.sessionId } }),
      loadDeliveries(),
    ]);
    if (panel.value !== p) return;
    p.view = view;
    vtax.panelView = view;
  }

  async function loadDeliveries(): Promise<void> {
    const p = panel.value;
    if (!p || !token.value) return;
    const data = await api('get', '/api/deliveries', {
      token: token.value,
      query: { session_id: p.sessionId, status: 'all', limit: 200 },
    });
    if (panel.value !== p) return;
    const sha = new Map(p.deliveries.map((d) => [d.id, d.downloadedSha]));
    p.deliveries = (data.deliveries || []).map((d) => {
      const s = sha.get(d.id);
      return s ? { ...d, downloadedSha: s } : d;
    });
  }

  const settled = computed(() => {
    const v = panel.value?.view;
    return Boolean(
      v && v.summary && v.loop.check === 'confirmed' && v.rating && panel.value?.deliveries.every((d) => d.status === 'acknowledged'),
    );
  });
  const sessionOver = computed(() => {
    const v = panel.value?.view;
    return Boolean(v && !['waiting', 'live'].includes(v.outcome));
  });

  /** A loop step of the panel's session: the Socket.IO event if connected, else REST. */
  async function sendCheck(decision: 'confirm' | 'dispute'): Promise<void> {
    const p = panel.value;
    const s = p?.view?.summary;
    if (!p || !s) throw new ApiError('noSummary');
    const comment = checkComment.value.trim();
    if (decision === 'dispute' && !comment) throw new ApiError('needDisputeComment');
    const body = { decision, version: s.version, ...(comment ? { comment } : {}) };
    const socket = call.socket.value;
    if (socket && socket.connected) await emitAck(socket, 'session:check', { session_id: p.sessionId, ...body });
    else await api('post', '/api/sessions/{session_id}/check', { token: token.value, path: { session_id: p.sessionId }, body });
    checkComment.value = '';
    await refreshPanel();
  }

  function resetRating(): void {
    rating.value = { score: '', comment: '', dims: Object.fromEntries(DIMENSIONS.map((d) => [d, ''])) as Record<Dimension, string> };
    ratedNow.value = false;
  }

  async function rate(): Promise<void> {
    const p = panel.value;
    if (!p) throw new ApiError('invalid_state');
    if (!rating.value.score) throw new ApiError('needScore');
    const dims: Record<string, number> = {};
    for (const d of DIMENSIONS) if (rating.value.dims[d]) dims[d] = Number(rating.value.dims[d]);
    const body = {
      score: Number(rating.value.score),
      ...(rating.value.comment.trim() ? { comment: rating.value.comment.trim() } : {}),
      ...(Object.keys(dims).length ? { dimensions: dims } : {}),
    };
    const socket = call.socket.value;
    if (socket && socket.connected) await emitAck(socket, 'session:rate', { session_id: p.sessionId, ...body });
    else await api('post', '/api/sessions/{session_id}/rating', { token: token.value, path: { session_id: p.sessionId }, body });
    const saved = call.load();
    if (saved && saved.sessionId === p.sessionId) call.clearStored(); // the call's work is done
    ratedNow.value = true;
  }

  function newQuestion(): void {
    setError(null);
    call.clearStored();
    panel.value = null;
    form.value.question = '';
    step.value = 'request';
    state.value = 'idle';
    status.value = { key: 'status.signedIn' };
  }

  function onDeliveryNew(msg: DeliveryNew): void {
    if (!msg || !msg.id) return;
    vtax.lastDelivery = msg;
    const p = panel.value;
    if (p && msg.session_id === p.sessionId) {
      if (!p.deliveries.some((d) => d.id === msg.id)) {
        p.deliveries.unshift({
          ...msg,
          media_type: msg.media_type as DeliveryView['media_type'],
          agent_id: '',
          taxpayer_id: taxpayerId.value || '',
          note: '',
          created_at: null,
          first_downloaded_at: null,
          download_count: 0,
          status: 'pending',
          receipt: null,
        });
      }
      loadDeliveries().catch(setError);
    }
    notice.value = { key: 'documents.new', params: { name: msg.filename } };
  }

  async function download(d: Panel['deliveries'][number]): Promise<void> {
    if (!token.value) return;
    d.downloadedSha = await downloadDocument(token.value, d);
    if (d.status === 'pending') d.status = 'downloaded';
    loadDeliveries().catch(setError);
  }

  async function acknowledge(d: Panel['deliveries'][number]): Promise<void> {
    const view = await api('post', '/api/deliveries/{delivery_id}/ack', {
      token: token.value,
      path: { delivery_id: d.id },
      body: d.downloadedSha ? { sha256: d.downloadedSha } : {},
    }).catch((e) => {
      // signing a receipt needs a fresh high sign-in: "verify again" (docs/identity.md)
      if (asApiError(e).code === 'step_up_required') stepUp.value = { action: 'ack', deliveryId: d.id, sessionId: d.session_id };
      throw e;
    });
    const list = panel.value?.deliveries || [];
    const i = list.findIndex((x) => x.id === view.id);
    if (i >= 0) list[i] = d.downloadedSha ? { ...view, downloadedSha: d.downloadedSha } : view;
  }

  // ---- my sessions --------------------------------------------------------------------------
  async function openHistory(): Promise<void> {
    historyCursor.value = null;
    history.value = [];
    step.value = 'history';
    status.value = { key: 'status.history' };
    await loadHistory();
  }

  async function loadHistory(): Promise<void> {
    const data = await api('get', '/api/sessions', {
      token: token.value,
      query: { limit: 20, ...(historyCursor.value ? { before: historyCursor.value } : {}) },
    });
    historyCursor.value = data.next_before;
    history.value = [...history.value, ...(data.sessions || [])];
  }

  async function openFromHistory(s: SessionView): Promise<void> {
    openPanel(s.id, { joinedAt: s.joined_at, category: s.category });
    endReason.value = '';
    step.value = 'after';
    await refreshPanel();
  }

  function backFromHistory(): void {
    setError(null);
    panel.value = null;
    step.value = 'request';
    state.value = 'idle';
    status.value = { key: 'status.signedIn' };
  }

  // ---- the fallback poll while the after-session step is on screen ---------------------------
  setInterval(() => {
    if (panel.value && token.value && step.value === 'after' && !settled.value) refreshPanel().catch(setError);
  }, POLL_MS);

  return {
    step, state, status, error, notice, busy, token, name, catalog, form, priority, ticketId, position, etaS, agentName, endReason,
    recordingState, consent, monitorNotice, panel, rating, ratedNow, checkComment, history, historyCursor, settled, sessionOver,
    methods, signin, session, resendIn, loadMethods, sendCode, verifyCode, startOidc, chooseActing, changeActing,
    stepUp, verifyAgain, retryStepUp,
    call, action, setError, signOut, loadCatalog, preselectLanguage, startRequest, enterQueue, backToRequest, onWire, leaveQueue, hangup,
    answerConsent, restore, sendCheck, rate, newQuestion, download, acknowledge, openHistory, loadHistory,
    openFromHistory, backFromHistory,
  };
});
