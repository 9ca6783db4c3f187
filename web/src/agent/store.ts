// The agent desk's state and flow: sign in -> status -> offers (with a countdown) -> the
// call -> the summary beside it -> ready for next; documents during and after the session;
// recent sessions with their follow-ups. The call itself is useCall's.
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import type {
  MonitorAgentNotice,
  AgentStatusChanged,
  CatalogOut,
  DeliveryView,
  OfferNew,
  SessionStart,
  SessionTransfer,
  SessionView,
  StaffRef,
  StaffToken,
  TicketView,
} from '@/contract';
import { api, fetchOk } from '@/core/api';
import { ApiError, asApiError } from '@/core/errors';
import { actionRunner } from '@/core/action';
import { vtax } from '@/core/hook';
import { emitAck, type VtaxSocket } from '@/core/socket';
import { AgentMonitorLink } from '@/core/monitor';
import { draftFrom, summaryBody, type SummaryDraft } from '@/core/summary';
import { useCall, type Connection } from '@/composables/useCall';

export type AgentStatus = AgentStatusChanged['status'];
export type PageState = 'idle' | 'offered' | 'in_session' | 'connected' | 'resuming' | 'ended' | 'moved';
export interface Msg {
  key: string;
  params?: Record<string, string | number>;
}
type Ticket = Partial<TicketView>;

const POLL_MS = 5000; // fallback: `session:loop` brings changes at once

export const useAgent = defineStore('agent', () => {
  const state = ref<PageState>('idle');
  const status = ref<Msg>({ key: 'agent.page.signedOut' });
  const error = shallowRef<ApiError | null>(null);
  const busy = ref(false);
  const token = ref<string | null>(null);
  const user = ref<Pick<StaffRef, 'username' | 'display_name'> | null>(null);
  const catalog = shallowRef<CatalogOut | null>(null);
  /** this sign-in used the authenticator's code (StaffFactorSetup shows it is on) */
  const signedInWithCode = ref(false);

  const agentStatus = ref<AgentStatus>('offline');
  const statusReason = ref<string>('');
  const offer = shallowRef<OfferNew | null>(null);
  const offerLeft = ref(0);
  let offerTimer: ReturnType<typeof setInterval> | undefined;

  const ticket = ref<Ticket>({});
  const peerName = ref('');
  const callStartedAt = ref<number | null>(null);
  const now = ref(Date.now());
  setInterval(() => (now.value = Date.now()), 1000);
  const transfer = ref({ category: '', note: '' });
  const recordingState = ref<string | null>(null);
  // monitor and whisper (src/core/monitor.ts): the leg's connection; what the desk shows
  const monitorLink = new AgentMonitorLink();
  const monitorState = shallowRef<MonitorAgentNotice | null>(null);

  const showCall = ref(false);
  const showSummary = ref(false);
  const endReason = ref('');
  const summary = ref<SummaryDraft>(draftFrom({}));
  const summaryVersion = ref<number | null>(null);
  const summaryCheck = shallowRef<{ view: SessionView; disputeComment: string | null } | null>(null);

  const deliverFor = ref<string | null>(null);
  const deliverAbout = ref<Msg | null>(null);
  const deliveries = ref<DeliveryView[]>([]);
  const docNote = ref('');

  const recent = ref<SessionView[]>([]);
  const recentOpenOnly = ref(false);
  const showRecent = ref(false);

  vtax.page = 'agent';
  watch(
    state,
    (s) => {
      vtax.state = s;
      document.body.dataset.state = s;
    },
    { immediate: true },
  );
  watch(agentStatus, (s) => (vtax.agentStatus = s), { immediate: true });

  function setError(e: unknown): void {
    const err = e ? asApiError(e) : null;
    error.value = err;
    if (err) {
      vtax.lastError = { code: err.code || null, message: err.message };
      console.warn('vtax error', err);
    }
  }

  const action = actionRunner({ setBusy: (on) => (busy.value = on), setError });

  // ---- the call -----------------------------------------------------------------------------
  const call = useCall('agent', {
    wire,
    onEnded: (reason) => onEnded(reason),
    onMoved: () => {
      showCall.value = false;
      state.value = 'moved';
      status.value = { key: 'agent.page.moved' };
      setError(new ApiError('moved'));
    },
    onError: (e) => setError(e),
    onConnection: (c: Connection) => {
      if (!['in_session', 'connected', 'resuming'].includes(state.value)) return;
      if (c === 'connected') {
        state.value = 'connected';
        status.value = { key: 'agent.page.connected' };
      } else if (c === 'reconnecting') {
        if (state.value !== 'resuming') state.value = 'in_session';
        status.value = { key: 'agent.page.reconnecting' };
      }
    },
    onRecording: (msg) => (recordingState.value = msg.state),
  });

  const peerNotice = computed<Msg | null>(() => {
    const p = call.peerState.value;
    if (p === 'reconnecting') return { key: 'agent.call.peerReconnecting' };
    if (p === 'left') return { key: 'agent.call.peerLeft' };
    return null;
  });

  function setAgentStatus(s: AgentStatus, reason = ''): void {
    agentStatus.value = s;
    statusReason.value = reason;
  }

  function wire(socket: VtaxSocket): void {
    monitorLink.bind(socket as never, { getCall: () => call.call.value, onState: (m) => (monitorState.value = m) });
    socket.on('agent:status', (msg) => {
      if (msg && msg.status) setAgentStatus(msg.status, msg.reason);
    });
    socket.on('offer:new', onOffer);
    socket.on('offer:revoked', (msg) => {
      if (offer.value && msg && msg.offer_id === offer.value.offer_id) {
        hideOffer();
        if (!call.call.value) call.releasePreview();
        statusReason.value = 'withdrawn';
      }
    });
    socket.on('session:start', (msg) => onSessionStart(msg));
    socket.on('session:loop', (msg) => {
      if (!msg) return;
      const sid = sessionId();
      if ((msg.step === 'check' || msg.step === 'rating') && msg.session_id === sid) refreshCheck().catch(setError);
      if (msg.step === 'delivery_ack' && msg.session_id === deliverFor.value) loadDeliveries().catch(setError);
    });
    socket.on('disconnect', (reason) => {
      if (socket !== call.socket.value || reason === 'io client disconnect') return;
      hideOffer();
      setAgentStatus('offline', 'disconnected');
      if (!call.call.value) setError(new ApiError('disconnected'));
    });
    // After an automatic reconnect the server sees a fresh, offline agent.
    socket.io.on('reconnect', () => {
      setError(null);
      setAgentStatus('offline', 'reconnected');
    });
  }

  // ---- sign in --------------------------------------------------------------------------------
  async function loadCatalog(): Promise<void> {
    try {
      catalog.value = await api('get', '/api/catalog');
    } catch (e) {
      setError(new ApiError(asApiError(e).code, 'catalog'));
    }
  }

  /** After the sign-in form (StaffLogin): an agent's token. */
  async function signedIn(res: StaffToken, how: { withCode: boolean } = { withCode: false }): Promise<void> {
    // The desk shows (token set) only once the socket is up: its buttons emit at once.
    await call.ensureSocket(res.token);
    token.value = res.token;
    signedInWithCode.value = how.withCode;
    user.value = res.user;
    await loadCatalog();
    state.value = 'idle';
    status.value = { key: 'agent.page.signedIn' };
    await loadRecent();
  }

  function resetDesk(): void {
    token.value = null;
    signedInWithCode.value = false;
    user.value = null;
    hideOffer();
    showCall.value = false;
    showSummary.value = false;
    deliverFor.value = null;
    showRecent.value = false;
    setAgentStatus('offline');
    state.value = 'idle';
    status.value = { key: 'agent.page.signedOut' };
  }

  async function signOut(): Promise<void> {
    if (call.call.value) throw new ApiError('in_session');
    call.clearStored();
    try {
      await emitAck(call.socket.value, 'agent:status', { status: 'offline' }, { timeoutMs: 3000 });
    } catch {
      /* disconnecting makes the agent offline anyway */
    }
    call.disconnect();
    resetDesk();
  }

  async function sendStatus(s: 'available' | 'away' | 'offline'): Promise<void> {
    // After a resume the server may think a busy agent is offline: no offers mid-call.
    if (call.call.value && s === 'available') throw new ApiError('in_session');
    const ack = await emitAck(call.socket.value, 'agent:status', { status: s });
    setAgentStatus(ack.status || s);
  }

  // ---- offers ---------------------------------------------------------------------------------
  function onOffer(o: OfferNew): void {
    if (!o || !o.offer_id) return;
    offer.value = o;
    vtax.offer = o;
    const deadline = performance.now() + Number(o.expires_in_s || 0) * 1000;
    clearInterval(offerTimer);
    const tick = (): void => {
      offerLeft.value = Math.max(0, Math.ceil((deadline - performance.now()) / 1000));
      if (offerLeft.value <= 0) clearInterval(offerTimer); // the server revokes it
    };
    tick();
    offerTimer = setInterval(tick, 250);
    state.value = 'offered';
    status.value = { key: 'agent.page.offered' };
  }

  function hideOffer(): void {
    clearInterval(offerTimer);
    offer.value = null;
    vtax.offer = null;
    if (state.value === 'offered') {
      state.value = 'idle';
      status.value = { key: 'agent.page.signedIn' };
    }
  }

  async function accept(): Promise<void> {
    const o = offer.value;
    if (!o) return;
    vtax.acceptClickedAt = Date.now();
    call.preview(); // the camera starts while the accept travels to the server
    try {
      const ack = await emitAck(call.socket.value, 'offer:accept', { offer_id: o.offer_id });
      vtax.acceptedSessionId = ack.session_id;
    } catch (e) {
      if (!call.call.value) call.releasePreview();
      throw e;
    } finally {
      if (offer.value === o) hideOffer();
    }
  }

  async function reject(): Promise<void> {
    const o = offer.value;
    if (!o) return;
    try {
      await emitAck(call.socket.value, 'offer:reject', { offer_id: o.offer_id, reason: 'rejected' });
    } finally {
      if (offer.value === o) hideOffer();
    }
  }

  // ---- the call -------------------------------------------------------------------------------
  function onSessionStart(start: SessionStart, { fresh = false } = {}): void {
    hideOffer();
    ticket.value = start.ticket || {};
    peerName.value = start.peer?.display_name || '';
    call.persistSession(start, token.value || '', { user: user.value, ticket: start.ticket || null });
    openDeliveries(start.session_id, { key: 'agent.deliver.thisCall' });
    showCall.value = true;
    callStartedAt.value = Date.now();
    vtax.sessionId = start.session_id;
    currentSession.value = start.session_id;
    openSummary('');
    transfer.value = { category: start.ticket?.category || catalog.value?.categories[0]?.code || '', note: '' };
    state.value = 'in_session';
    status.value = { key: 'agent.page.connecting' };
    if (!fresh) call.start(start);
  }

  async function hangup(): Promise<void> {
    await call.hangup();
  }

  async function doTransfer(): Promise<void> {
    const s = call.session.value;
    if (!s) return;
    const note = transfer.value.note.trim();
    await emitAck(call.socket.value, 'session:transfer', {
      session_id: s.session_id,
      category: transfer.value.category as SessionTransfer['category'],
      ...(note ? { note } : {}),
    });
    transfer.value.note = '';
    if (call.session.value && call.session.value.session_id === s.session_id) call.end('transferred');
  }

  function onEnded(reason: string): void {
    state.value = 'ended';
    status.value = { key: 'agent.page.ended' };
    showCall.value = false;
    callStartedAt.value = null;
    openSummary(reason);
  }

  const callElapsedS = computed(() =>
    callStartedAt.value ? Math.max(0, (now.value - callStartedAt.value) / 1000) : null,
  );

  // ---- summary --------------------------------------------------------------------------------
  /** The session on this desk: the live call's, then the one whose summary is due. */
  const currentSession = ref<string | null>(null);
  function sessionId(): string | null {
    return currentSession.value;
  }

  /** The summary form beside the call: filled from the ticket when the call starts, kept (with
   * what the agent typed meanwhile) when it ends. */
  let summaryFor: string | null = null;

  function openSummary(reason: string): void {
    const sid = sessionId();
    endReason.value = reason;
    showSummary.value = true;
    if (sid && sid === summaryFor) {
      if (sid) openDeliveries(sid, { key: 'agent.deliver.thisSession' });
      return;
    }
    summaryFor = sid;
    summary.value = draftFrom(ticket.value);
    summaryVersion.value = null;
    summaryCheck.value = null;
    if (sid && state.value === 'ended') openDeliveries(sid, { key: 'agent.deliver.thisSession' });
  }


  async function saveSummary(): Promise<void> {
    const sid = sessionId();
    if (!sid) throw new ApiError('invalid_state');
    const body = summaryBody(summary.value, ticket.value.category);
    const saved = await api('post', '/api/sessions/{session_id}/summary', {
      token: token.value,
      path: { session_id: sid },
      body,
    });
    call.clearStored(); // the session's work is done
    summaryVersion.value = saved.version;
    await refreshCheck();
  }

  /** The taxpayer's check and rating of the saved summary (a dispute asks for a revision). */
  async function refreshCheck(): Promise<void> {
    const sid = sessionId();
    if (!sid || !token.value) return;
    const view = await api('get', '/api/sessions/{session_id}', { token: token.value, path: { session_id: sid } });
    if (!view.summary) return;
    let disputeComment: string | null = null;
    if (view.loop.check === 'disputed') {
      const { checks } = await api('get', '/api/sessions/{session_id}/checks', {
        token: token.value,
        path: { session_id: sid },
      });
      disputeComment = checks.filter((c) => c.decision === 'disputed').pop()?.comment ?? null;
    }
    summaryCheck.value = { view, disputeComment };
    vtax.summaryView = view;
  }

  async function ready(): Promise<void> {
    await sendStatus('available');
    showSummary.value = false;
    summaryFor = null;
    deliverFor.value = null;
    await loadRecent();
    state.value = 'idle';
    status.value = { key: 'agent.page.ready' };
  }

  // ---- deliver --------------------------------------------------------------------------------
  function openDeliveries(sid: string, about: Msg): void {
    deliverAbout.value = about;
    if (deliverFor.value !== sid) {
      deliverFor.value = sid;
      deliveries.value = [];
      docNote.value = '';
    }
    loadDeliveries().catch(setError);
  }

  async function loadDeliveries(): Promise<void> {
    const sid = deliverFor.value;
    if (!sid || !token.value) return;
    const data = await api('get', '/api/deliveries', {
      token: token.value,
      query: { session_id: sid, status: 'all', limit: 200 },
    });
    if (deliverFor.value !== sid) return;
    deliveries.value = data.deliveries || [];
    vtax.deliveries = deliveries.value;
  }

  async function deliver(file: File | null | undefined): Promise<void> {
    const sid = deliverFor.value;
    if (!sid) throw new ApiError('invalid_state');
    if (!file) throw new ApiError('chooseFile');
    const form = new FormData();
    form.append('file', file, file.name);
    const note = docNote.value.trim();
    if (note) form.append('note', note);
    const res = await fetchOk('POST', `/api/sessions/${encodeURIComponent(sid)}/deliveries`, {
      token: token.value,
      body: form,
    });
    const view = (await res.json()) as DeliveryView;
    docNote.value = '';
    deliveries.value = [view, ...deliveries.value.filter((d) => d.id !== view.id)];
  }

  // ---- recent sessions ------------------------------------------------------------------------
  async function loadRecent(): Promise<void> {
    if (!token.value) return;
    const data = await api('get', '/api/sessions', {
      token: token.value,
      query: { limit: 20, ...(recentOpenOnly.value ? { follow_up: 'open' as const } : {}) },
    });
    recent.value = data.sessions || [];
    showRecent.value = true;
  }

  async function followUpDone(s: SessionView): Promise<void> {
    await api('post', '/api/sessions/{session_id}/follow-up', {
      token: token.value,
      path: { session_id: s.id },
      body: {},
    });
    await loadRecent();
  }

  function documentsFor(s: SessionView): void {
    if (call.call.value) throw new ApiError('in_session');
    openDeliveries(s.id, { key: 'agent.deliver.forSession', params: { when: s.joined_at, category: s.category } });
  }

  // ---- page load: resume a live (or just ended) session ------------------------------------------
  async function restore(): Promise<void> {
    const saved = call.load();
    if (!saved || !saved.token || !saved.sessionId) return;
    token.value = saved.token;
    user.value = (saved.user as StaffRef) || { username: '', display_name: '' };
    vtax.sessionId = saved.sessionId;
    currentSession.value = saved.sessionId;
    ticket.value = (saved.ticket as Ticket) || {};
    await loadCatalog();
    loadRecent().catch(setError);
    if (saved.ended) {
      try {
        await call.ensureSocket(saved.token);
      } catch (e) {
        restoreFailed(e);
        return;
      }
      onEnded(saved.endReason || '');
      return;
    }
    vtax.restoring = true;
    showCall.value = true;
    state.value = 'resuming';
    status.value = { key: 'agent.page.resuming' };
    try {
      const ack = await call.restore(saved);
      onSessionStart(ack as unknown as SessionStart, { fresh: true });
    } catch (e) {
      const err = asApiError(e);
      if (err.code === 'unauthorized') restoreFailed(err);
      else call.end(err.code === 'session_ended' ? 'session_ended' : err.code || 'disconnected');
    }
    vtax.restoring = false;
  }

  function restoreFailed(e: unknown): void {
    call.clearStored();
    call.releasePreview();
    call.disconnect();
    resetDesk();
    setError(e);
  }

  // Delivery receipts and the taxpayer's check come back while the cards are on screen.
  setInterval(() => {
    if (deliverFor.value && deliveries.value.some((d) => d.status !== 'acknowledged')) loadDeliveries().catch(setError);
    if (showSummary.value && summaryVersion.value !== null) refreshCheck().catch(setError);
  }, POLL_MS);

  return {
    state, status, error, busy, token, user, catalog, signedInWithCode, agentStatus, statusReason, offer, offerLeft, ticket,
    peerName, transfer, recordingState, showCall, showSummary, endReason, summary, summaryVersion, summaryCheck,
    deliverFor, deliverAbout, deliveries, docNote, recent, recentOpenOnly, showRecent, callElapsedS,
    peerNotice, monitorState, call, action, setError, signedIn, signOut, sendStatus, accept, reject, hangup, doTransfer,
    saveSummary, ready, deliver, loadRecent, followUpDone, documentsFor, restore,
    currentSession, // the confirmation form's record beside the summary
    onSessionStart, // multiparty: an accepted invitation starts the call as `session:start` does
  };
});
