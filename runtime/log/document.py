"""`perstack log --json`: one JSON object, the reference's shape.

``{"job", "events", "summary"}`` always; ``checkpoint`` with --checkpoint (ours: also with
--messages), ``checkpoints`` when --job alone names the job, ``isLatestJob`` when no job
was named, ``storagePath``, ``totalEventsBeforeLimit`` (matches before paging) and
``matchedAfterPagination`` (matches on this page). Events and checkpoints are the objects
as stored. Ours: ``jobSummary`` with --summary, and ``skippedFiles`` when files could not
be read.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.log.summary import event_summary, job_summary
from runtime.log.view import LogView


def log_document(view: LogView, *, summary: bool) -> dict[str, Any]:
    result = view.result
    data: dict[str, Any] = {
        "job": view.log.job.to_wire(),
        "events": [e.data for e in result.events],
        "summary": event_summary(result.events),
    }
    if view.checkpoint is not None:
        data["checkpoint"] = view.checkpoint.data
    if view.include_checkpoints and view.log.checkpoints:
        data["checkpoints"] = [c.data for c in view.log.checkpoints]
    if view.is_latest_job:
        data["isLatestJob"] = True
    data["storagePath"] = str(view.storage_path)
    data["totalEventsBeforeLimit"] = result.matched
    data["matchedAfterPagination"] = result.shown
    if summary:
        data["jobSummary"] = job_summary(view.log).to_wire()
    if view.log.skipped_files:
        data["skippedFiles"] = [str(p) for p in view.log.skipped_files]
    return data


def render_json(view: LogView, *, pretty: bool, summary: bool) -> str:
    data = log_document(view, summary=summary)
    if pretty:
        return json.dumps(data, ensure_ascii=False, indent=2)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
