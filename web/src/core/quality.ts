// Call quality, browser side (docs/review.md, "Call quality"), framework-free:
// - `StatsSampler` turns two successive `getStats()` reports into one sample: round-trip time
//   (the selected candidate pair), inbound audio jitter, inbound packet loss over the window,
//   outbound / inbound bitrate (all RTP; the screen transceiver's outbound apart), the camera's
//   inbound frame rate and resolution;
// - `estimatedMos` / `levelOf`: the simplified E-model of vtax/review/call_quality.py, for the
//   badge (the server computes its own for the record; the two must agree, both are tested on
//   the same points);
// - the page sends a sample to the server every SEND_EVERY samples (`call:quality`, bucket
//   `quality`: 3 at once, then one per 5 s).
import type { QualitySampleIn } from '@/contract';

export type Level = 'good' | 'fair' | 'poor';
export type Sample = QualitySampleIn;

/** Sample every SAMPLE_MS; send one in SEND_EVERY to the server (every 10 s). */
export const SAMPLE_MS = 2000;
export const SEND_EVERY = 5;
export const GOOD_MOS = 4.0;
export const FAIR_MOS = 3.6;

/** The simplified E-model's R (0..100) from RTT, jitter (ms) and loss (%). */
export function rFactor(rttMs: number, jitterMs = 0, lossPct = 0): number {
  const latency = rttMs / 2 + 2 * jitterMs + 10;
  let r = latency < 160 ? 93.2 - latency / 40 : 93.2 - (latency - 120) / 10;
  r -= 2.5 * lossPct;
  return Math.min(Math.max(r, 0), 100);
}

/** Estimated MOS (1..4.5, two decimals); null without an RTT. */
export function estimatedMos(rttMs: number | null | undefined, jitterMs?: number | null, lossPct?: number | null): number | null {
  if (rttMs === null || rttMs === undefined) return null;
  const r = rFactor(rttMs, jitterMs ?? 0, lossPct ?? 0);
  const mos = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r);
  return Math.round(Math.min(Math.max(mos, 1), 4.5) * 100) / 100;
}

export function levelOf(mos: number | null): Level | null {
  if (mos === null) return null;
  return mos >= GOOD_MOS ? 'good' : mos >= FAIR_MOS ? 'fair' : 'poor';
}

interface Counters {
  at: number;
  lost: number;
  received: number;
  bytesOut: number;
  bytesIn: number;
  screenOut: number;
  frames: number;
}

type Stat = Record<string, unknown> & { type: string; id: string };
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const round1 = (v: number): number => Math.round(v * 10) / 10;

/**
 * Successive `getStats()` reports of one RTCPeerConnection to samples. `screenMid` names the
 * screen transceiver's mid (its outbound bytes are counted apart, its inbound frames are not
 * the camera's). A new RTCPeerConnection: a new sampler (its counters start at 0).
 */
export class StatsSampler {
  private last: Counters | null = null;

  constructor(private readonly screenMid: () => string | null = () => null) {}

  sample(report: RTCStatsReport | Map<string, unknown>, now: number): Sample {
    const stats: Stat[] = [];
    report.forEach((value) => stats.push(value as Stat));
    const screen = this.screenMid();
    let rtt: number | null = null;
    let jitter: number | null = null;
    let width: number | null = null;
    let height: number | null = null;
    const c: Counters = { at: now, lost: 0, received: 0, bytesOut: 0, bytesIn: 0, screenOut: 0, frames: 0 };
    const selected = new Set(stats.filter((s) => s.type === 'transport' && typeof s.selectedCandidatePairId === 'string').map((s) => s.selectedCandidatePairId));
    for (const s of stats) {
      if (s.type === 'candidate-pair' && typeof s.currentRoundTripTime === 'number') {
        const chosen = selected.size ? selected.has(s.id) : s.nominated === true && s.state === 'succeeded';
        if (chosen) rtt = s.currentRoundTripTime * 1000;
      } else if (s.type === 'inbound-rtp') {
        c.lost += num(s.packetsLost);
        c.received += num(s.packetsReceived);
        c.bytesIn += num(s.bytesReceived);
        if (s.kind === 'audio' && typeof s.jitter === 'number') jitter = s.jitter * 1000;
        if (s.kind === 'video' && (screen === null || s.mid !== screen)) {
          c.frames += num(s.framesDecoded);
          if (typeof s.frameWidth === 'number') width = s.frameWidth;
          if (typeof s.frameHeight === 'number') height = s.frameHeight;
        }
      } else if (s.type === 'outbound-rtp') {
        c.bytesOut += num(s.bytesSent);
        if (screen !== null && s.mid === screen) c.screenOut += num(s.bytesSent);
      }
    }
    const prev = this.last;
    this.last = c;
    const out: Sample = {
      rtt_ms: rtt === null ? null : round1(rtt),
      jitter_ms: jitter === null ? null : round1(jitter),
      width,
      height,
    };
    const dt = prev ? (c.at - prev.at) / 1000 : 0;
    if (prev && dt > 0) {
      const lost = Math.max(c.lost - prev.lost, 0);
      const received = Math.max(c.received - prev.received, 0);
      out.loss_pct = lost + received > 0 ? round1((100 * lost) / (lost + received)) : 0;
      const kbps = (bytes: number) => round1((Math.max(bytes, 0) * 8) / dt / 1000);
      out.out_kbps = kbps(c.bytesOut - prev.bytesOut);
      out.in_kbps = kbps(c.bytesIn - prev.bytesIn);
      out.screen_out_kbps = kbps(c.screenOut - prev.screenOut);
      out.fps = round1(Math.max(c.frames - prev.frames, 0) / dt);
    }
    return out;
  }
}

/** The badge's level of a sample (null: not measurable yet). */
export function sampleLevel(s: Sample): Level | null {
  return levelOf(estimatedMos(s.rtt_ms, s.jitter_ms, s.loss_pct));
}
