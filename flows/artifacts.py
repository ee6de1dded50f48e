"""What the flows publish as Prefect artifacts, built as plain data (tested without
Prefect): a run's markdown summary, the batch table, the lockfile table."""

from __future__ import annotations

from typing import Any

from flows.execution import ExecutionResult
from flows.logs import clip
from runtime.lockfile import Lockfile

# The final answer is shown in full up to this many characters; the workspace has it all.
ANSWER_CHARS = 4000


def run_summary(result: ExecutionResult) -> str:
    """Markdown: how the run ended, its answer, usage and where its files are."""
    usage = result.usage
    answer = result.final_text or "_no final answer_"
    if len(answer) > ANSWER_CHARS:
        answer = answer[:ANSWER_CHARS] + "…"
    lines = [f"# {result.expert} for {result.user}: {result.outcome}", ""]
    if result.mode == "process":
        why = f"no container ({result.fallback})" if result.fallback else "mode process"
        lines += [
            f"> **Not isolated**: ran as a local process on the worker's host, {why}: "
            "no read-only root, limits or network policy.",
            "",
        ]
    lines += [
        f"- **outcome**: {result.outcome} ({result.reason})",
        f"- **stopped by**: {result.stop or 'no stop event'}",
        f"- **ran as**: {result.mode}, {result.run_ms / 1000:.1f} s "
        f"({result.duration_ms / 1000:.1f} s in all), {result.steps} steps",
        f"- **tokens**: {usage.total_tokens} total, {usage.input_tokens} in "
        f"({usage.cached_input_tokens} cached), {usage.output_tokens} out",
        f"- **job**: `{result.job_id}`",
        f"- **workspace**: `{result.workspace}`",
        f"- **events**: `{result.events_path}`",
    ]
    if result.error:
        lines.append(f"- **error**: {clip(result.error, 500)}")
    lines += ["", "## Answer", "", answer]
    return "\n".join(lines)


def result_row(result: ExecutionResult) -> dict[str, Any]:
    return {
        "user": result.user,
        "expert": result.expert,
        "outcome": result.outcome,
        "mode": result.mode,
        "stop": result.stop or "",
        "steps": result.steps,
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "total_tokens": result.usage.total_tokens,
        "run_s": round(result.run_ms / 1000, 2),
        "job_id": result.job_id,
        "error": clip(result.error or "", 120),
    }


def failure_row(user: str, expert: str, message: str) -> dict[str, Any]:
    """A batch row for an execution that produced no result (it could not run at all)."""
    return {
        "user": user,
        "expert": expert,
        "outcome": "notRun",
        "mode": "",
        "stop": "",
        "steps": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "run_s": 0.0,
        "job_id": "",
        "error": clip(message, 120),
    }


def lockfile_rows(lock: Lockfile) -> list[dict[str, Any]]:
    """One row per tool of every Expert's skills (a skill without tools still gets one)."""
    rows: list[dict[str, Any]] = []
    for key, expert in sorted(lock.experts.items()):
        by_skill = lock.tools_by_skill(key) or {}
        for skill in sorted(expert.skills):
            tools = by_skill.get(skill) or []
            rows += [
                {"expert": key, "skill": skill, "tool": t.name, "description": clip(t.description)}
                for t in tools
            ] or [{"expert": key, "skill": skill, "tool": "", "description": ""}]
    return rows
