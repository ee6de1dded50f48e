"""Continuing a Job: which checkpoint a new Run goes on from, and what it adds first.

``--continue``/``--continue-job`` go on from the coordinator's latest checkpoint,
``--resume-from`` from the one named. The query is the next user message or, with ``-i``,
the answer to the interactive tool calls the Job is waiting for.

A checkpoint file that cannot be read (cut short, garbage, a FIFO…) does not block the Job
when it cannot be the latest: when job.json says the Job stopped cleanly with the outcome
of the coordinator's latest readable checkpoint, or when the file was written before that
checkpoint, it is skipped with a warning. Otherwise it may be the Job's real latest state,
so the Job is not silently continued from an older one: the error names the file and both
ways out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from runtime.checkpoint import JOB_STATUS, Checkpoint, Job
from runtime.errors import ConfigError, StorageError
from runtime.events import InteractiveToolCallInput
from runtime.messages import AnyMessage, TextPart, ToolMessage, ToolResultPart, UserMessage
from runtime.storage import CheckpointScan, WorkspaceStore

logger = logging.getLogger(__name__)


@dataclass
class Resume:
    checkpoint: Checkpoint
    messages: list[AnyMessage]
    answers_pending_calls: bool
    interactive: InteractiveToolCallInput | None = None


@dataclass(frozen=True)
class ResumeRequest:
    job: Job
    expert_key: str
    query: str
    resume_from: str | None = None
    interactive_answer: bool = False


def resume_point(store: WorkspaceStore, scan: CheckpointScan, asked: ResumeRequest) -> Resume:
    """Where the new Run starts and the messages it adds; ConfigError when it cannot."""
    checkpoint = _checkpoint_to_resume(store, scan, asked)
    for bad in scan.unreadable:
        logger.warning("skipping a checkpoint that cannot be read: %s", bad.reason)
    job_id = asked.job.id
    if checkpoint.expert.key != asked.expert_key:
        raise ConfigError(
            f"job {job_id} was run by Expert {checkpoint.expert.key!r}, not "
            f"{asked.expert_key!r}; continue it with that Expert"
        )
    waiting = checkpoint.status == "stoppedByInteractiveTool"
    if not asked.interactive_answer and waiting:
        names = ", ".join(c.tool_name for c in checkpoint.pending_tool_calls or [])
        raise ConfigError(
            f"job {job_id} is waiting for an answer to {names}; pass -i to give the query "
            "as that answer"
        )
    if not asked.interactive_answer:
        query = UserMessage(contents=[TextPart(text=asked.query)])
        return Resume(checkpoint, [query], answers_pending_calls=False)
    return _answer(checkpoint, asked)


def _answer(checkpoint: Checkpoint, asked: ResumeRequest) -> Resume:
    pending = checkpoint.pending_tool_calls or []
    if checkpoint.status != "stoppedByInteractiveTool" or not pending:
        raise ConfigError(
            f"checkpoint {checkpoint.id} of job {asked.job.id} is not waiting for an "
            f"interactive answer (status {checkpoint.status}); drop -i to continue with a "
            "new query"
        )
    first = pending[0]
    return Resume(
        checkpoint,
        [ToolMessage(contents=_result_parts(checkpoint, asked.query))],
        answers_pending_calls=True,
        interactive=InteractiveToolCallInput(
            tool_call_id=first.id,
            tool_name=first.tool_name,
            skill_name=first.skill_name,
            text=asked.query,
        ),
    )


def _result_parts(checkpoint: Checkpoint, answer: str) -> list[ToolResultPart]:
    """The last turn's calls, in order: the results given before the stop, and the
    answer for the calls that were waiting for it."""
    answered = {r.id: r for r in checkpoint.partial_tool_results or []}
    parts = []
    for call in checkpoint.messages[-1].contents if checkpoint.messages else []:
        call_id = getattr(call, "tool_call_id", None)
        if call_id is None:
            continue
        if call_id in answered:
            r = answered[call_id]
            parts.append(
                ToolResultPart(
                    tool_call_id=r.id,
                    tool_name=r.tool_name,
                    contents=list(r.result),
                    is_error=r.is_error,
                )
            )
        else:
            parts.append(
                ToolResultPart(
                    tool_call_id=call_id,
                    tool_name=getattr(call, "tool_name", ""),
                    contents=[TextPart(text=answer)],
                )
            )
    return parts


def _checkpoint_to_resume(
    store: WorkspaceStore, scan: CheckpointScan, asked: ResumeRequest
) -> Checkpoint:
    job = asked.job
    if asked.resume_from:
        try:
            return store.read_checkpoint(job.id, asked.resume_from)
        except StorageError as error:
            raise ConfigError(
                f"--resume-from {asked.resume_from}: {error}; name another checkpoint of job "
                f"{job.id} (perstack log --job {job.id} lists them)"
            ) from error
    coordinator = [
        s
        for s in scan.stored
        if s.checkpoint.delegated_by is None
        and s.checkpoint.expert.key == job.coordinator_expert_key
    ]
    if not coordinator:
        unreadable = f" ({len(scan.unreadable)} checkpoint file(s) unreadable)"
        raise ConfigError(
            f"job {job.id} has no checkpoint of its coordinator to continue"
            + (unreadable if scan.unreadable else " (it stopped before its first step ended)")
            + "; start a new job instead"
        )
    latest = coordinator[-1]
    if _closed_at(job, latest.checkpoint):
        return latest.checkpoint
    for bad in scan.unreadable:
        if bad.mtime_ns >= latest.mtime_ns:
            raise ConfigError(
                f"{bad.reason}; it was written after checkpoint {latest.checkpoint.id}, the "
                "latest readable one of the coordinator, so it may hold the job's latest "
                f"state: remove it to continue from {latest.checkpoint.id}, or keep it and "
                f"pass --continue-job {job.id} --resume-from {latest.checkpoint.id}"
            )
    return latest.checkpoint


def _closed_at(job: Job, checkpoint: Checkpoint) -> bool:
    """Whether job.json says the Job stopped cleanly with this checkpoint's outcome: job.json
    is written after the coordinator's last checkpoint, and a later process would have
    marked it running, so no later checkpoint can be among the unreadable files."""
    return job.status != "running" and JOB_STATUS.get(checkpoint.status) == job.status
