"""Benchmark of the analytics package: prints the three figures of issue #7.

1. ingestion time against ``pyarrow.json.read_json`` of the same bytes (goal: <= 1.5x);
2. Parquet dataset size against the raw JSONL (goal: <= 10%);
3. each named audit query over N events (goal: < 1 s each at ten million).

Synthetic events are shaped like the reference runtime's (same types, fields, nesting and
the growing message history in startGeneration and checkpoints); real recorded runs from
``--real DIR`` are ingested too. Sizes are flags so that it can run small:

    .venv/bin/python benchmarks/analytics_ingest.py --events 1000000 --query-events 10000000
    .venv/bin/python benchmarks/analytics_ingest.py --events 20000 --query-events 50000

Zero skips a part: ``--events 0`` prints only the query figure, ``--query-events 0`` only
the ingest figures.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.json as pj

from analytics import Dataset, ingest, named_queries, open_catalog, run

DAY_MS = 86_400_000
START_MS = 1_796_000_000_000
TOOLS = [
    ("@perstack/base", "readTextFile", 0.02),
    ("@perstack/base", "writeTextFile", 0.03),
    ("@perstack/base", "listDirectory", 0.01),
    ("@perstack/base", "exec", 0.10),
    ("git", "git_status", 0.02),
    ("git", "git_diff", 0.05),
    ("fetch", "fetch", 0.15),
    ("time", "get_current_time", 0.0),
]
LOREM = (
    "The quick brown fox reads the file, summarises the findings and writes the report "
    "with every figure checked twice before it is handed back to the user. "
)


class Generator:
    """Writes runs of events as JSONL, one run after another, with realistic payloads."""

    def __init__(self, seed: int, prefix: str) -> None:
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.counter = 0

    def new_id(self) -> str:
        self.counter += 1
        return f"{self.prefix}{self.counter:018x}"

    def write(self, out: io.BufferedWriter, events: int) -> int:
        written = 0
        while written < events:
            for line in self.run_lines():
                out.write(line)
                written += 1
        return written

    def run_lines(self) -> list[bytes]:
        rng = self.rng
        job, run = self.new_id(), self.new_id()
        expert = f"expert-{rng.randrange(20)}"
        user = f"user-{rng.randrange(50)}"
        ts = START_MS + rng.randrange(7 * DAY_MS)
        steps = rng.randint(1, 6)
        ending = rng.choices(
            ["completeRun", "stopRunByError", "stopRunByExceededMaxSteps"], [90, 5, 5]
        )[0]
        base = {"jobId": job, "runId": run}
        runev = {**base, "expertKey": expert}
        lines: list[bytes] = []
        messages: list[dict[str, object]] = [
            self.message("instructionMessage", LOREM * 6),
            self.message("userMessage", f"{user} asks: " + LOREM),
        ]

        def emit(kind: str, fields: dict[str, object], step: int | None = None) -> None:
            nonlocal ts
            ts += rng.randint(1, 40)
            event: dict[str, object] = {"type": kind, "id": self.new_id(), "timestamp": ts}
            event.update(base if step is None else {**runev, "stepNumber": step})
            event.update(fields)
            lines.append(json.dumps(event, separators=(",", ":")).encode() + b"\n")

        emit(
            "initializeRuntime",
            {
                "runtimeVersion": "0.0.76",
                "runtime": "local",
                "expertName": expert,
                "experts": [expert],
                "model": rng.choice(["claude-sonnet-4-5", "claude-haiku-4-5"]),
                "maxSteps": 6,
                "maxRetries": 5,
                "timeout": 300000,
                "query": LOREM,
            },
        )
        emit("skillConnected", {"skillName": "@perstack/base", "totalDurationMs": 29})
        emit("startRun", {"initialCheckpoint": self.checkpoint(run, job, expert, 1, [], "init")}, 1)
        for step in range(1, steps + 1):
            last = step == steps
            emit("startGeneration", {"messages": messages[-4:]}, step)
            ts += rng.randint(100, 3000)
            if rng.random() < 0.03:
                emit(
                    "retry",
                    {"reason": "overloaded", "newMessages": [], "usage": self.usage(0)},
                    step,
                )
            for _ in range(2):
                emit("streamReasoning", {"delta": "thinking about it "}, step)
            if last and ending == "stopRunByError":
                ckpt = self.checkpoint(run, job, expert, step, messages, "stoppedByError")
                error = {"name": "APIError", "message": "overloaded", "isRetryable": True}
                emit("stopRunByError", {"checkpoint": ckpt, "step": {}, "error": error}, step)
                break
            calls = self.tool_calls(last and ending == "completeRun")
            expert_message = self.message("expertMessage", LOREM)
            emit(
                "callTools",
                {"newMessage": expert_message, "toolCalls": calls, "usage": self.usage(step)},
                step,
            )
            started = ts
            ts += rng.randint(5, 2000)
            results = [self.result(c) for c in calls]
            if calls[0]["toolName"] == "attemptCompletion":
                emit("attemptCompletion", {"toolResult": results[0]}, step)
                emit("completeStreamingRunResult", {"text": LOREM}, step)
                ckpt = self.checkpoint(run, job, expert, step, messages, "completed")
                step_obj = {"stepNumber": step, "startedAt": started - 500, "finishedAt": ts}
                emit(
                    "completeRun",
                    {
                        "checkpoint": ckpt,
                        "step": step_obj,
                        "text": LOREM,
                        "usage": self.usage(step),
                    },
                    step,
                )
                break
            emit("resolveToolResults", {"toolResults": results}, step)
            tool_message = self.message("toolMessage", LOREM)
            emit("finishToolCall", {"newMessages": [tool_message]}, step)
            messages += [expert_message, tool_message]
            ckpt = self.checkpoint(run, job, expert, step, messages, "proceeding")
            step_obj = {"stepNumber": step, "startedAt": started - 500, "finishedAt": ts}
            if last:
                ckpt["status"] = "stoppedByExceededMaxSteps"
                emit("stopRunByExceededMaxSteps", {"checkpoint": ckpt, "step": step_obj}, step)
                break
            emit(
                "continueToNextStep",
                {
                    "checkpoint": ckpt,
                    "step": step_obj,
                    "nextCheckpoint": {"id": self.new_id(), "status": "proceeding"},
                },
                step,
            )
        emit("skillDisconnected", {"skillName": "@perstack/base"})
        return lines

    def message(self, kind: str, text: str) -> dict[str, object]:
        part = {"type": "textPart", "id": self.new_id(), "text": text}
        return {"type": kind, "id": self.new_id(), "contents": [part]}

    def usage(self, step: int) -> dict[str, int]:
        i, o = 800 + 400 * step + self.rng.randrange(300), 40 + self.rng.randrange(400)
        return {
            "inputTokens": i,
            "outputTokens": o,
            "reasoningTokens": 0,
            "totalTokens": i + o,
            "cachedInputTokens": i // 2,
        }

    def tool_calls(self, complete: bool) -> list[dict[str, object]]:
        if complete:
            return [
                {
                    "id": self.new_id(),
                    "skillName": "@perstack/base",
                    "toolName": "attemptCompletion",
                    "args": {},
                }
            ]
        picks = self.rng.sample(TOOLS, self.rng.choice([1, 1, 1, 2]))
        return [
            {"id": self.new_id(), "skillName": s, "toolName": t, "args": {"path": "notes.txt"}}
            for s, t, _ in picks
        ]

    def result(self, call: dict[str, object]) -> dict[str, object]:
        rate = next((r for s, t, r in TOOLS if t == call["toolName"]), 0.0)
        text = "Error: permission denied" if self.rng.random() < rate else LOREM
        part = {"type": "textPart", "id": self.new_id(), "text": text}
        return {
            "id": call["id"],
            "skillName": call["skillName"],
            "toolName": call["toolName"],
            "result": [part],
        }

    def checkpoint(
        self,
        run: str,
        job: str,
        expert: str,
        step: int,
        messages: list[dict[str, object]],
        status: str,
    ) -> dict[str, object]:
        return {
            "id": self.new_id(),
            "jobId": job,
            "runId": run,
            "expert": {"key": expert, "name": expert, "version": "1.0.0"},
            "stepNumber": step,
            "status": status,
            "messages": list(messages),
            "usage": self.usage(step),
            "contextWindow": 200000,
        }


def generate(path: Path, events: int, seed: int, prefix: str) -> int:
    with open(path, "wb") as out:
        return Generator(seed, prefix).write(out, events)


def dataset_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.parquet") if "_state" not in p.parts)


def bench_ingest(work: Path, events: int, real: Path | None, repeat: int) -> None:
    jsonl = work / "events.jsonl"
    count = generate(jsonl, events, seed=1, prefix="a")
    raw_bytes = jsonl.stat().st_size
    # The reader and the ingest take turns, so that both see the same load; medians are
    # printed. The reader is timed on an Arrow buffer and on a BytesIO (as the first version
    # of this benchmark did); the faster of the two is the baseline.
    readers, copying, ingests, ratios = [], [], [], []
    root = work / "ingest"
    for _ in range(repeat):
        data = jsonl.read_bytes()
        readers.append(_timed(lambda d=data: pj.read_json(pa.BufferReader(pa.py_buffer(d)))))
        copying.append(_timed(lambda d=data: pj.read_json(io.BytesIO(d))))
        data = b""  # let the reader's copy go before ingesting
        shutil.rmtree(root, ignore_errors=True)
        ingests.append(_timed(lambda: ingest([jsonl], root)))
        ratios.append(ingests[-1] / min(readers[-1], copying[-1]))
    reader_s = min(statistics.median(readers), statistics.median(copying))
    ingest_s = statistics.median(ingests)
    parquet = dataset_bytes(root)
    print(f"synthetic events: {count:,} lines, {raw_bytes / 1e6:,.1f} MB of JSONL; {repeat} rounds")
    print(
        f"pyarrow.json.read_json of the same bytes: median {statistics.median(readers):.2f} s "
        f"from an Arrow buffer {_runs(readers)}, {statistics.median(copying):.2f} s "
        f"from a BytesIO {_runs(copying)}"
    )
    print(
        f"ingest (parse, derive, dedupe, write Parquet, catalog): median {ingest_s:.2f} s "
        f"{_runs(ingests)}"
    )
    print(
        f"FIGURE 1 ingest / read_json = {ingest_s / reader_s:.2f}x (goal <= 1.5x; "
        f"per round, against that round's faster reader: {_runs(ratios)})"
    )
    print(
        f"FIGURE 2 Parquet / JSONL = {parquet / 1e6:,.1f} MB / {raw_bytes / 1e6:,.1f} MB = "
        f"{100 * parquet / raw_bytes:.1f}% (goal <= 10%)"
    )
    again = _timed(lambda: ingest([jsonl], root))
    print(f"re-ingest of the same file (skipped as unchanged): {again:.2f} s")
    if real is not None:
        real_root = work / "real"
        real_s = _timed(lambda: ingest([real], real_root))
        real_raw = sum(
            p.stat().st_size
            for p in real.rglob("*")
            if p.is_file() and p.suffix in (".jsonl", ".json")
        )
        print(
            f"real recorded runs from {real}: ingest {real_s:.2f} s; Parquet "
            f"{dataset_bytes(real_root) / 1e3:.0f} kB vs {real_raw / 1e3:.0f} kB of JSON(L)"
        )
    jsonl.unlink()


def bench_queries(work: Path, events: int, chunk: int) -> None:
    root = work / "queries"
    total, part = 0, 0
    while total < events:
        jsonl = work / f"q{part}.jsonl"
        total += generate(jsonl, min(chunk, events - total), seed=100 + part, prefix=f"q{part}x")
        ingest([jsonl], root, refresh=False)
        jsonl.unlink()
        part += 1
    refresh_s = _timed(lambda: ingest([], root))  # views and snapshots, once
    print(f"query dataset: {total:,} events, {dataset_bytes(root) / 1e6:,.1f} MB of Parquet")
    print(f"catalog refresh with snapshots (runs, generations, tool_calls): {refresh_s:.2f} s")
    con = open_catalog(Dataset(root))
    try:
        worst = 0.0
        for name in named_queries():
            run(con, name)  # warm the file cache once, as a repeated audit would be
            seconds = min(_timed(lambda n=name: run(con, n)) for _ in range(2))
            worst = max(worst, seconds)
            print(f"  query {name:<24} {seconds:.3f} s")
        print(f"FIGURE 3 slowest named query over {total:,} events = {worst:.3f} s (goal < 1 s)")
    finally:
        con.close()
    one_run = work / "one-run.jsonl"
    events = generate(one_run, 40, seed=7, prefix="one")
    one_s = _timed(lambda: ingest([one_run], root))
    print(
        f"ingest of one more run ({events} events) into {total:,}, snapshots updated: {one_s:.2f} s"
    )


def _runs(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def _timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events for the ingest figures"
    )
    parser.add_argument(
        "--query-events", type=int, default=10_000_000, help="events for the query figure"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of reader and ingest (medians printed)"
    )
    parser.add_argument("--chunk", type=int, default=1_000_000, help="events per generated file")
    parser.add_argument(
        "--real", type=Path, default=None, help="folder of recorded runs to ingest too"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="scratch folder, kept afterwards (default: a temp dir, removed)",
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="analytics-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.events:
            bench_ingest(work, args.events, args.real, args.repeat)
        if args.query_events:
            bench_queries(work, args.query_events, args.chunk)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
