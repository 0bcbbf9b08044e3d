"""Chain verification started from the console: a background thread with visible progress.

Verifying a long chain takes seconds to minutes, longer than a request should. A POST starts a
:class:`VerificationJob` in a thread and redirects to a page that refreshes itself (a meta refresh,
no script) until the job is done. The result is appended to the audit trail as a
``chain_verified`` event, so the last result survives restarts and is the same for every gateway
process; the job table only holds running jobs of this process for their progress bars. Behind a
load balancer the page may ask another process: it then waits for the ``chain_verified`` event
carrying the job's id (ids start with their start time, so the waiting ends after ten minutes).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from casebridge.consent.audit import AuditTrail, VerifyResult
from casebridge.db import Database
from casebridge.gateway.console.data import VERIFIED_KIND
from casebridge.logging import get_logger

log = get_logger(__name__)
_MAX_JOBS = 32


@dataclass
class VerificationJob:
    """One verification run: progress while it runs, the result when done."""

    id: str
    by: str
    started_at: datetime
    checked: int = 0
    total: int = 0
    result: VerifyResult | None = None
    event_seq: int | None = None
    failed: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def percent(self) -> int:
        """Progress in percent (100 when done)."""
        if self.done.is_set():
            return 100
        return min(99, self.checked * 100 // self.total) if self.total else 0


def started_recently(job_id: str, *, within: timedelta = timedelta(minutes=10)) -> bool:
    """Whether a job id (``<unix time>-<random>``) was issued less than ``within`` ago."""
    stamp, _, _rest = job_id.partition("-")
    if not stamp.isdigit():
        return False
    return datetime.now(UTC) - datetime.fromtimestamp(int(stamp), UTC) < within


class Verifications:
    """The verification jobs of one gateway process (at most one runs at a time)."""

    def __init__(self, db: Database, *, batch: int = 20000) -> None:
        self.db = db
        self.batch = batch
        self._jobs: dict[str, VerificationJob] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> VerificationJob | None:
        """A job of this process, or None."""
        with self._lock:
            return self._jobs.get(job_id)

    def start(self, by: str) -> VerificationJob:
        """Start a verification (or return the one already running)."""
        with self._lock:
            for job in self._jobs.values():
                if not job.done.is_set():
                    return job
            if len(self._jobs) >= _MAX_JOBS:
                oldest = min(self._jobs.values(), key=lambda j: j.started_at)
                del self._jobs[oldest.id]
            now = datetime.now(UTC)
            job = VerificationJob(f"{int(now.timestamp())}-{secrets.token_urlsafe(9)}", by, now)
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name="console-verify", daemon=True).start()
        return job

    def _run(self, job: VerificationJob) -> None:
        trail = AuditTrail(self.db)

        def progress(checked: int, total: int) -> None:
            job.checked, job.total = checked, total

        try:
            result = trail.verify(batch=self.batch, progress=progress)
            job.result = result
            job.checked = result.checked
            event = trail.append_event(
                VERIFIED_KIND, at=datetime.now(UTC), stage="dpo",
                details={"ok": result.ok, "checked": result.checked, "last_seq": result.last_seq,
                         "first_broken_seq": result.first_broken_seq,
                         "problem": (result.problem or None) and result.problem[:300],
                         "by": job.by, "job": job.id},
            )
            job.event_seq = event.seq
            log.info("console_chain_verified", status="ok" if result.ok else "broken",
                     count=result.checked)
        except Exception as exc:  # noqa: BLE001 - a failed run is shown, not lost in a thread
            job.failed = True
            log.error("console_verification_failed", exc_type=type(exc).__name__)
        finally:
            job.done.set()
