"""Call quality: the samples both pages take of their peer connection's `getStats` and send
at a bounded rate (`call:quality`, token bucket `quality`), and the summary the session record
keeps (docs/review.md, "Call quality"). The estimated MOS and the levels are computed by the
server (vtax/review/call_quality.py), never taken from a client."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from vtax.contract.base import Day, Id, Message, Out, Query, Timestamp, Whole

Level = Literal["good", "fair", "poor"]


def _bounded(hi: float, description: str) -> Any:
    return Field(None, ge=0.0, le=hi, allow_inf_nan=False, strict=True, description=description)


class QualitySampleIn(Message):
    """One sample: what the sender's RTCPeerConnection measured over the last few seconds.
    Every figure is optional (a call without video has no frame rate); all are bounded."""

    rtt_ms: float | None = _bounded(60_000, "round-trip time of the selected candidate pair")
    jitter_ms: float | None = _bounded(60_000, "inbound audio jitter")
    loss_pct: float | None = _bounded(100, "inbound packets lost / expected over the window, %")
    out_kbps: float | None = _bounded(1_000_000, "all outbound RTP, kbit/s")
    in_kbps: float | None = _bounded(1_000_000, "all inbound RTP, kbit/s")
    screen_out_kbps: float | None = _bounded(
        1_000_000, "outbound on the screen transceiver, kbit/s (0 when not sharing)"
    )
    fps: float | None = _bounded(240, "inbound camera video frames decoded per second")
    width: Annotated[int, Field(ge=0, le=16384, strict=True), Whole] | None = None
    height: Annotated[int, Field(ge=0, le=16384, strict=True), Whole] | None = None


class CallQualityIn(Message):
    session_id: Id
    sample: QualitySampleIn


class QualityNoted(Out):
    """The server's reading of the sample."""

    mos: float | None = Field(description="estimated MOS of this sample (1..4.5)")
    level: Level | None


class WorstMinute(Out):
    minute: int = Field(description="minutes after the first sample")
    at: Timestamp
    mos: float
    samples: int


class CallQualitySummary(Out):
    """The session's quality, computed by the server from every sample of both sides."""

    samples: int
    by_role: dict[str, int] = Field(description="samples sent by each side")
    first_at: Timestamp
    last_at: Timestamp
    mos_median: float | None
    mos_min: float | None
    level: Level | None = Field(description="the level of the median MOS")
    worst_minute: WorstMinute | None
    rtt_ms_median: float | None
    jitter_ms_median: float | None
    loss_pct_median: float | None
    out_kbps_median: float | None
    in_kbps_median: float | None
    fps_median: float | None
    poor_share: float | None = Field(description="share of samples whose level is poor")


class CallQualityKpiQuery(Query):
    date_from: Day | None = Field(
        None, alias="from", description="first day of the service time zone; default today"
    )
    date_to: Day | None = Field(None, alias="to", description="last day; default `from`")
    group_by: Literal["day", "agent", "category", "channel"] = "day"


class CallQualityFigures(Out):
    sessions: int = Field(description="sessions that joined in the range")
    measured: int = Field(description="of those, with a call-quality summary")
    mos_mean: float | None = Field(description="mean of the sessions' median MOS")
    poor_sessions: int = Field(description="measured sessions whose level is poor")
    poor_rate: float | None = Field(description="poor / measured")
    av_ratings: int = Field(description="taxpayer ratings with an av_quality score")
    av_quality_mean: float | None = Field(description="mean av_quality score (1..5)")


class CallQualityKpiRow(CallQualityFigures):
    key: str | None


class CallQualityKpi(Out):
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    timezone: str = Field(description="the service time zone (IANA), whose days these are")
    group_by: str
    rows: list[CallQualityKpiRow]
    total: CallQualityFigures
