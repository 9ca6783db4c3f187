// Resume handling shared by the taxpayer and agent pages (docs/protocol.md, "Session end,
// drops and resume"): what a page stores to pick its live session up after a reload, the
// resume after a socket reconnect (same RTCPeerConnection), the retrying resume after a page
// reload (new RTCPeerConnection), and the peer/disconnect notices during a call.
// A page passes its state object `st` ({token, socket, router, session, call, resuming}) and
// callbacks for what differs between pages (which cards to show, how a call ends).
import { vtax, clearError, isDraining, resumeStore, setState, showError, showNotice, ApiError } from './common.js';

/** Resume errors after which there is nothing to resume. */
export const RESUME_FINAL = new Set(['session_ended', 'not_in_session', 'unauthorized', 'forbidden']);
/** A reloaded page keeps trying this long: beyond the server's reconnect grace. */
const RESTORE_DEADLINE_MS = 45000;

export class SessionResume {
  /**
   * @param {object} o
   * @param {string} o.key        the resumeStore key ('taxpayer', 'agent')
   * @param {object} o.st         the page state
   * @param {(reason: string) => void} o.endCall   end the call on this page
   * @param {() => void} o.onMoved  hide the call controls (another window took the call over)
   * @param {string} o.peerLeftText  the error shown when the peer's grace ran out
   */
  constructor({ key, st, endCall, onMoved, peerLeftText }) {
    this.key = key;
    this.st = st;
    this.endCall = endCall;
    this.onMoved = onMoved;
    this.peerLeftText = peerLeftText;
    this.persistSeq = this.persistSeq.bind(this); // SignalRouter's onSeq
  }

  /** Store what a reload needs to resume `start` (plus the page's own fields). */
  persistSession(start, extra = {}) {
    const st = this.st;
    resumeStore.save(this.key, {
      token: st.token,
      ...extra,
      sessionId: start.session_id,
      participantId: start.participant_id,
      peerId: start.peer ? start.peer.participant_id : null,
      lastSeq: st.router ? st.router.lastSeq(start.session_id) : 0,
    });
  }

  persistSeq(sessionId, seq) {
    const saved = resumeStore.load(this.key);
    if (saved && !saved.ended && saved.sessionId === sessionId && seq > (saved.lastSeq || 0)) {
      resumeStore.update(this.key, { lastSeq: seq });
    }
  }

  /** The call ended: no more resuming; a reload still shows the after-call step. */
  markEnded(reason) {
    resumeStore.update(this.key, { ended: true, endReason: reason || '' });
  }

  load() {
    return resumeStore.load(this.key);
  }

  clear() {
    resumeStore.clear(this.key);
  }

  /** `session:peer` about the call peer (not e.g. the recorder). */
  onPeer(msg) {
    const st = this.st;
    if (!st.session || !msg || msg.session_id !== st.session.session_id) return;
    const peer = st.session.peer && st.session.peer.participant_id;
    if (msg.participant_id && peer && msg.participant_id !== peer) return; // e.g. the recorder
    vtax.peerState = msg.state;
    if (msg.state === 'reconnecting') {
      showNotice('对方重新连接中 peer reconnecting');
    } else if (msg.state === 'back') {
      showNotice('');
      // The impolite side restarts ICE so media recovers on the other side's new network path.
      if (st.call && msg.ice_restart && !st.call.polite) st.call.restartIce();
    } else if (msg.state === 'left') {
      showNotice(this.peerLeftText.notice);
      showError(new ApiError('peer_left', this.peerLeftText.error));
    }
  }

  /**
   * The socket dropped. During a call: keep it (socket.io-client reconnects, then 'connect'
   * resumes) unless the server disconnected us because another window took over. Returns
   * true when it handled the drop.
   */
  onDisconnect(socket, reason) {
    const st = this.st;
    if (!(st.call && st.session)) return false;
    if (reason === 'io server disconnect' && !isDraining(socket)) {
      this.continuedElsewhere();
    } else {
      setState('in_session', 'reconnecting 重新连接中');
    }
    return true;
  }

  /** The socket reconnected during the call: same RTCPeerConnection, resume the session. */
  async resumeLive() {
    const st = this.st;
    if (st.resuming || !st.call || !st.session) return;
    const id = st.session.session_id;
    const socket = st.socket;
    st.resuming = true;
    setState('in_session', 'resuming 正在恢复');
    try {
      await st.router.resume(id);
      clearError();
      if (st.call && st.call.pc.connectionState === 'connected') {
        setState('connected', 'video connected 视频已连接');
      } else {
        setState('in_session', 'reconnecting 重新连接中');
      }
    } catch (e) {
      if (!st.session || st.session.session_id !== id) return;
      if (RESUME_FINAL.has(e.code)) {
        this.endCall(e.code === 'session_ended' ? 'session_ended' : e.code);
      } else {
        showError(e);
        setTimeout(() => {
          if (socket === st.socket && socket.connected) this.resumeLive();
        }, 1000);
      }
    } finally {
      st.resuming = false;
    }
  }

  /** Another window took this session over (the server disconnected us): stop here. */
  continuedElsewhere() {
    const st = this.st;
    this.clear();
    if (st.router) st.router.detach();
    st.call = null;
    showNotice('');
    this.onMoved();
    showError(new ApiError('moved', '通话已在其他窗口继续 The call continues in another window'));
    setState('moved', 'continued in another window');
  }

  /**
   * After a page reload: connect (`connect()`), resume `saved.sessionId` with a fresh
   * RTCPeerConnection, retrying with backoff until the deadline. Resolves with the resume
   * ack, or rejects with the final error (the page decides what to show).
   */
  async restore(saved, connect) {
    const st = this.st;
    const deadline = Date.now() + RESTORE_DEADLINE_MS;
    for (let attempt = 0; ; attempt += 1) {
      try {
        await connect();
        st.router.setLastSeq(saved.sessionId, saved.lastSeq);
        return await st.router.resume(saved.sessionId, { fresh: true });
      } catch (e) {
        if (RESUME_FINAL.has(e.code) || Date.now() > deadline) throw e;
        showError(e);
        await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt, 4000)));
      }
    }
  }
}
