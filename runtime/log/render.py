"""`perstack log` for a person: a header, then one line per event (time, step, type, gist),
and with --verbose the full details under each line. Times are UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from runtime.checkpoint import Job, Usage
from runtime.log.filters import FilterResult
from runtime.log.gist import (
    LINE_CHARS,
    TEXT_CHARS,
    cut,
    event_details,
    event_gist,
    message_details,
    message_gist,
)
from runtime.log.stored import LoggedCheckpoint, LoggedEvent
from runtime.log.summary import JobSummary, event_summary, job_summary
from runtime.log.view import LogView

RULE = "─" * 72
# Widest event type name (completeStreamingReasoning) plus a space.
TYPE_WIDTH = 27
# Streamed deltas say little one by one: consecutive ones of a run and step share a line
# (unless --verbose); the full text is in the completeStreaming… event that follows.
STREAM_DELTA_TYPES = frozenset({"streamReasoning", "streamRunResult"})
# Expert keys longer than this are cut in the expert column of multi-Expert jobs.
EXPERT_WIDTH = 20


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%H:%M:%S.") + f"{ms % 1000:03d}"


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _tokens(usage: Usage) -> str:
    text = f"{usage.input_tokens} in, {usage.output_tokens} out, {usage.total_tokens} total"
    if usage.reasoning_tokens:
        text += f", {usage.reasoning_tokens} reasoning"
    if usage.cached_input_tokens:
        text += f", {usage.cached_input_tokens} cached"
    return text


def _job_header(job: Job, runs: int) -> list[str]:
    lines = [
        f"Job: {job.id} ({job.status})",
        f"Expert: {job.coordinator_expert_key}",
        f"Started: {_when(job.started_at)}",
        f"Steps: {job.total_steps}",
        f"Runs: {runs}",
    ]
    if job.finished_at:
        lines.append(f"Finished: {_when(job.finished_at)}")
    return lines


def _checkpoint_header(logged: LoggedCheckpoint) -> list[str]:
    checkpoint = logged.checkpoint
    lines = [
        f"Checkpoint: {checkpoint.id}",
        f"Status: {checkpoint.status}",
        f"Step: {checkpoint.step_number}",
        f"Expert: {checkpoint.expert.key}",
        f"Run: {checkpoint.run_id}",
        f"Tokens: {_tokens(checkpoint.usage)}",
    ]
    if checkpoint.error is not None:
        lines.append(f"Error: {checkpoint.error.name}: {checkpoint.error.message}")
    if checkpoint.delegated_by is not None:
        lines.append(f"Delegated by: {checkpoint.delegated_by.expert.key}")
    return lines


def _messages(logged: LoggedCheckpoint, verbose: bool) -> list[str]:
    lines = [f"Messages ({len(logged.checkpoint.messages)}):"]
    for message in logged.checkpoint.messages:
        if verbose:
            lines.append(f"  [{message.type}]")
            lines += [f"    {line}" for line in message_details(message)]
        else:
            lines.append(f"  [{message.type}] {message_gist(message)}")
    return lines


def _summary(summary: JobSummary, result: FilterResult) -> list[str]:
    lines = [
        "Summary:",
        f"  Status: {summary.status}",
        f"  Steps: {summary.total_steps}",
        f"  Tokens: {_tokens(summary.usage)}",
        f"  Duration: {_duration(summary.duration_ms)}",
        f"  Runs: {len(summary.runs)}",
    ]
    for run in summary.runs:
        steps = f"steps {run.steps[0]}-{run.steps[1]}" if run.steps else "no steps"
        by = f", delegated by {run.delegated_by}" if run.delegated_by else ""
        lines.append(
            f"    {run.run_id}  {run.expert_key or '?'}  {run.status or '-'}  {steps}, "
            f"{run.event_count} events{by}"
        )
    if summary.error:
        lines.append(f"  Error: {cut(summary.error, LINE_CHARS)}")
    if summary.final_text is not None:
        lines.append(f"  Final text: {cut(summary.final_text, LINE_CHARS)}")
    # Every match, whatever the page: --take and --offset limit only the events listed.
    counts = event_summary(result.matches)
    lines.append(
        f"  Events: {counts['totalEvents']} ({counts['errorCount']} errors, "
        f"{counts['toolCallCount']} tool events, {counts['delegationCount']} delegations)"
    )
    if "stepRange" in counts:
        lines.append(f"  Step range: {counts['stepRange']['min']} - {counts['stepRange']['max']}")
    return lines


def _groups(events: Sequence[LoggedEvent], *, collapse: bool) -> list[list[LoggedEvent]]:
    groups: list[list[LoggedEvent]] = []
    for event in events:
        last = groups[-1][-1] if groups else None
        same_stream = (
            collapse
            and last is not None
            and event.type in STREAM_DELTA_TYPES
            and (event.type, event.run_id, event.step) == (last.type, last.run_id, last.step)
        )
        if same_stream:
            groups[-1].append(event)
        else:
            groups.append([event])
    return groups


def _gist(group: Sequence[LoggedEvent]) -> str:
    if len(group) == 1:
        return event_gist(group[0])
    text = "".join(str(e.data.get("delta", "")) for e in group)
    return f'×{len(group)} "{cut(text, TEXT_CHARS)}"'


def _event_line(group: Sequence[LoggedEvent], expert: str | None, expert_width: int) -> str:
    event = group[0]
    step = f"{event.step:>4}" if event.step is not None else "   -"
    column = f"{cut(expert or '-', expert_width):<{expert_width}}  " if expert_width else ""
    head = f"{_clock(event.timestamp)} {step}  {column}{event.type:<{TYPE_WIDTH}}"
    return (head + _gist(group)).rstrip()


def _events(view: LogView, verbose: bool) -> list[str]:
    result = view.result
    if not result.events:
        if result.matched > 0:
            return [f"({result.matched} events match; this --offset is past them)"]
        return ["(no events match)"]
    # Runtime events carry no expertKey: they belong to their run's Expert.
    expert_of_run = {r.run_id: r.expert_key for r in view.log.runs}
    experts = set(expert_of_run.values())
    width = min(EXPERT_WIDTH, max(len(e or "-") for e in experts)) if len(experts) > 1 else 0
    lines = ["Events:", RULE]
    for group in _groups(result.events, collapse=not verbose):
        expert = group[0].expert_key or expert_of_run.get(group[0].run_id)
        lines.append(_event_line(group, expert, width))
        if verbose:
            lines += [f"      {line}" for line in event_details(group[0])]
        for event in group:
            event.forget()
    lines.append(RULE)
    if result.matched > result.shown:
        extra = len(result.events) - result.shown
        context = f" (+{extra} context)" if extra > 0 else ""
        lines.append(f"(showing {result.shown} of {result.matched} matched events{context})")
        lines.append("Use --take and --offset to page, or --take 0 for all")
    return lines


# TODO(#4): the reference colours its terminal output; this view is plain text.
def render_text(view: LogView, *, verbose: bool, messages: bool, summary: bool) -> str:
    lines: list[str] = []
    if view.is_latest_job:
        lines += ["(showing latest job)", ""]
    lines += [f"Storage: {view.storage_path}", ""]
    lines += [*_job_header(view.log.job, len(view.log.runs)), ""]
    if view.checkpoint is not None and (view.checkpoint_asked or messages):
        lines += [*_checkpoint_header(view.checkpoint), ""]
        if messages:
            lines += [*_messages(view.checkpoint, verbose), ""]
    if summary:
        lines += _summary(job_summary(view.log), view.result)
    else:
        lines += _events(view, verbose)
    return "\n".join(lines)
