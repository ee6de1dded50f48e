"""Runtime speed, LLM and tool time excluded (issue: the runtime package).

Prints:
- time to first LLM call: initializeRuntime → startGeneration, built-in skill only
  (goal: ≤ 5 ms median; the reference reports 7 ms);
- runtime overhead per step with a 100-message history: everything a step costs besides
  the model and the tool (events to stdout and disk, checkpoint, bookkeeping) (goal: ≤ 2 ms);
- cold start of `perstack run`: process start to the first request reaching the fake
  Messages API server, and how much of it is imports.

Run: .venv/bin/python -m benchmarks.runtime_overhead [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "support-report"
sys.path.insert(0, str(REPO))

from runtime.budget import StepBudget  # noqa: E402
from runtime.checkpoint import Checkpoint  # noqa: E402
from runtime.cli import main as perstack  # noqa: E402
from runtime.eventbus import EventBus  # noqa: E402
from runtime.eventfiles import EventFileWriter  # noqa: E402
from runtime.generation import RetryPolicy  # noqa: E402
from runtime.messages import (  # noqa: E402
    ExpertMessage,
    InstructionMessage,
    TextPart,
    ToolCallPart,
    ToolMessage,
    ToolResultPart,
    UserMessage,
)
from runtime.providers.script import parse_script  # noqa: E402
from runtime.providers.scripted import ScriptedProvider  # noqa: E402
from runtime.run import RunLoop, RunParams  # noqa: E402
from runtime.skills.builtin.skill import BuiltinSkill  # noqa: E402
from runtime.skills.manager import SkillManager  # noqa: E402
from runtime.storage import WorkspaceStore  # noqa: E402

BUILTIN_ONLY = """
[experts."bench"]
instruction = "Benchmark."
"""


def first_llm_call_ms(runs: int) -> list[float]:
    figures = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "perstack.toml"
            config.write_text(BUILTIN_ONLY)
            script = Path(tmp) / "script.json"
            script.write_text('[{"text": "done"}]')
            out = io.StringIO()
            stdout, sys.stdout = sys.stdout, out
            try:
                perstack(
                    [
                        "run",
                        "bench",
                        "go",
                        "--config",
                        str(config),
                        "--workspace",
                        tmp,
                        "--provider",
                        "scripted",
                        "--script",
                        str(script),
                    ]
                )
            finally:
                sys.stdout = stdout
            events = [json.loads(line) for line in out.getvalue().splitlines()]
            init = next(e for e in events if e["type"] == "initializeRuntime")
            first = next(e for e in events if e["type"] == "startGeneration")
            figures.append(first["timestamp"] - init["timestamp"])
    return figures


def _history(size: int) -> list[object]:
    messages: list[object] = [
        InstructionMessage(contents=[TextPart(text="You are a benchmark. " * 200)], cache=True),
        UserMessage(contents=[TextPart(text="start")]),
    ]
    while len(messages) < size:
        n = len(messages)
        call = ToolCallPart(tool_call_id=f"toolu_{n}", tool_name="healthCheck", args={})
        messages.append(ExpertMessage(contents=[call]))
        messages.append(
            ToolMessage(
                contents=[
                    ToolResultPart(
                        tool_call_id=f"toolu_{n}",
                        tool_name="healthCheck",
                        contents=[TextPart(text='{"status":"ok","detail":"' + "x" * 300 + '"}')],
                    )
                ]
            )
        )
    return messages[:size]


async def step_overhead_ms(steps: int, history: int) -> tuple[float, float]:
    """(per-step wall time, per-step time spent in the provider and the tool)."""
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        store = WorkspaceStore(workspace)
        sink = io.StringIO()
        bus = EventBus(stdout=sink, files=EventFileWriter(store))
        turn = {"tool_use": [{"name": "healthCheck", "input": {}}]}
        provider = ScriptedProvider(parse_script([turn] * steps))
        skill = BuiltinSkill(workspace)
        manager = SkillManager([skill], emit=bus.emit, job_id="job", run_id="run")
        await manager.start_eager(lambda s: True)
        outside = 0.0

        original_stream, original_call = provider.stream, manager.call

        async def timed_stream(request):  # type: ignore[no-untyped-def]
            nonlocal outside
            began = time.perf_counter()
            async for item in original_stream(request):
                outside += time.perf_counter() - began
                yield item
                began = time.perf_counter()
            outside += time.perf_counter() - began

        async def timed_call(name, args):  # type: ignore[no-untyped-def]
            nonlocal outside
            began = time.perf_counter()
            try:
                return await original_call(name, args)
            finally:
                outside += time.perf_counter() - began

        provider.stream = timed_stream  # type: ignore[method-assign]
        manager.call = timed_call  # type: ignore[method-assign]
        budget = StepBudget(steps)
        loop = RunLoop(
            RunParams(
                job_id="job",
                run_id="run",
                expert_key="bench",
                expert_name="bench",
                expert_version="1.0.0",
                model="scripted",
                timeout_s=60,
                retry=RetryPolicy(max_retries=0),
            ),
            provider=provider,
            skills=manager,
            emit=bus.emit,
            save_checkpoint=store.write_checkpoint,
            steps=budget,
        )
        checkpoint = Checkpoint(
            job_id="job",
            run_id="run",
            status="proceeding",
            step_number=0,
            expert={"key": "bench", "name": "bench", "version": "1.0.0"},
            messages=_history(history),
        )
        began = time.perf_counter()
        outcome = await loop.resume(
            checkpoint, [UserMessage(contents=[TextPart(text="go")])], first_step=budget.take()
        )
        wall = time.perf_counter() - began
        bus.close()
        assert outcome.status == "stoppedByExceededMaxSteps", outcome.status
        return wall / steps * 1000, outside / steps * 1000


def cold_start(runs: int) -> tuple[list[float], float]:
    from tests.fakes import FakeMessagesAPI

    figures = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp, FakeMessagesAPI([{"text": "hi"}]) as api:
            shutil.copytree(EXAMPLE / "workspace", Path(tmp) / "ws")
            env = {**os.environ, "ANTHROPIC_API_KEY": "sk-bench", "ANTHROPIC_BASE_URL": api.url_v1}
            began = time.time()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "runtime.cli",
                    "run",
                    "support-analyst",
                    "hi",
                    "--config",
                    str(EXAMPLE / "perstack.toml"),
                    "--workspace",
                    str(Path(tmp) / "ws"),
                ],
                env=env,
                cwd=REPO,
                check=True,
                capture_output=True,
            )
            assert api.first_request_at is not None
            figures.append((api.first_request_at - began) * 1000)
    code = (
        "import time; t=time.perf_counter(); import runtime.cli, runtime.executor, "
        "runtime.providers.anthropic, httpx; print((time.perf_counter()-t)*1000)"
    )
    imports = float(
        subprocess.run(
            [sys.executable, "-X", "frozen_modules=on", "-c", code],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    return figures, imports


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()

    firsts = first_llm_call_ms(args.runs)
    print(
        f"time to first LLM call (initializeRuntime→startGeneration), built-in skill only: "
        f"median {statistics.median(firsts):.1f} ms, max {max(firsts):.1f} ms "
        f"over {args.runs} runs (goal ≤ 5 ms)"
    )
    # Ten steps at a time from a fresh 100-message history, so the history stays near 100.
    samples = [asyncio.run(step_overhead_ms(10, 100)) for _ in range(args.steps // 10)]
    overheads = [wall - outside for wall, outside in samples]
    print(
        f"runtime overhead per step with a 100-message history (provider and tool time "
        f"excluded): median {statistics.median(overheads):.2f} ms, max "
        f"{max(overheads):.2f} ms over {len(samples)}×10 steps (goal ≤ 2 ms)"
    )
    colds, imports = cold_start(max(3, args.runs // 4))
    print(
        f"cold start, process start → first request at the fake server: median "
        f"{statistics.median(colds):.0f} ms; imports of the CLI, executor, provider "
        f"and httpx alone: {imports:.0f} ms"
    )


if __name__ == "__main__":
    main()
