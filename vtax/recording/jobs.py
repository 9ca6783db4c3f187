"""Recording jobs: what a signaling node asks a recorder worker to do, and how it gets there.

Embedded default: the node pushes a job over Socket.IO (`recording:job`) to the connected
worker with the most free capacity. Scaled out (VTAX_REDIS_URL): the node pushes the job onto
a Redis list and idle workers block-pop it, so one job is taken by exactly one worker (BRPOP
is atomic) and a worker takes jobs only while it has capacity.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


# Redis keys (all of them; one module, one comment on each shape). `p` is VTAX_REDIS_PREFIX.
def jobs_key(p: str) -> str:
    """LIST of RecordingJob JSON: nodes LPUSH, idle workers BRPOP (each job to one worker)."""
    return f"{p}recording:jobs"


def state_key(p: str, session_id: str) -> str:
    """STRING, JSON of a live session's recording state (consent, current job, recorder),
    shared by the nodes; expires a day after its last write."""
    return f"{p}recording:state:{session_id}"


class RecordingJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(default_factory=lambda: "j-" + uuid.uuid4().hex[:16])
    session_id: str
    node_url: str = ""  # the signaling node that holds the live session ("" = the one I'm on)
    started_at: str  # ISO time the session started (names the yyyy/mm folder)
    consent: dict[str, str] = Field(default_factory=dict)  # {at, taxpayer_id}
    ice_servers: list[dict[str, Any]] = Field(default_factory=list)
    expires_at: float = 0.0  # unix time; an unclaimed job after this is dropped

    def expired(self, now: float | None = None) -> bool:
        return bool(self.expires_at) and (now or time.time()) > self.expires_at


async def push_redis(redis: Any, prefix: str, job: RecordingJob) -> None:
    await redis.lpush(jobs_key(prefix), job.model_dump_json())


async def pop_redis(redis: Any, prefix: str, timeout_s: float = 1.0) -> RecordingJob | None:
    """Take one job (atomically, so no other worker gets it); None on timeout."""
    item = await redis.brpop([jobs_key(prefix)], timeout=timeout_s)
    if item is None:
        return None
    return RecordingJob.model_validate_json(item[1])
