// The `window.vtax` test and diagnostics hook: the browser suite (tests/e2e) reads the page's
// state, its RTCPeerConnection, the call's counters and the socket from here.
export interface CallInfo {
  sessionId: string;
  polite: boolean;
  createdAt: number;
  firstFrameAt: number | null;
  firstFrameRenderedAt: number | null;
  signalsIn: number;
  signalsOut: number;
  signalsDropped: number;
  pcId: string;
  renewals: number;
  resumes: number;
  freshResume: boolean;
  offersAvoided: number;
  iceWatchdogRestarts: number;
}

export interface RecordingInfo {
  state: string | null;
  recorderId: string | null;
  connectionState: string | null;
  offers: number;
  consent: boolean | null;
  sessionId: string | null;
}

export interface VtaxHook {
  page?: string;
  state: string;
  pc?: RTCPeerConnection | null;
  lastPc?: RTCPeerConnection | null;
  call?: CallInfo;
  recording?: RecordingInfo;
  recorderPc?: RTCPeerConnection | null;
  socket?: unknown;
  draining?: boolean;
  notice?: string;
  peerState?: string;
  lastError?: { code: string | null; message: string };
  [key: string]: unknown;
}

declare global {
  interface Window {
    vtax?: VtaxHook;
  }
}

function init(): VtaxHook {
  const w = typeof window === 'undefined' ? ({} as Window) : window;
  w.vtax = w.vtax || { state: 'idle' };
  w.vtax.state = w.vtax.state || 'idle';
  return w.vtax;
}

export const vtax: VtaxHook = init();
