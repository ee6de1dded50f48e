"""A batch of 20 executions of the example Expert with the scripted model, 4 at a time,
through the Prefect flows (issue #6).

Prints:
- the batch's wall time against the sum of the containers' own times (container start to
  exit), and the ideal wall time at that concurrency (the sum divided by it);
- Prefect's overhead per execution: each run-expert flow run's duration as Prefect
  recorded it, minus the time the plain execution took inside it;
- the launcher's share per execution (create, start, remove around the container's time).

Containers when a Docker engine is reachable (with the project image built by
.ci/setup-docker.sh), local processes otherwise (it says so). Prefect runs on a
temporary local server in a fresh PREFECT_HOME; its ~15 s start is not counted.

Run: .venv/bin/python -m benchmarks.flows_batch [--executions 20] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "support-report"


def _environment(root: Path) -> None:
    os.environ.update(
        {
            "PREFECT_HOME": str(root / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PERSTACK_DATA": str(root / "data"),
        }
    )


async def _flow_run_seconds() -> list[float]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["run-expert"])), limit=200
        )
    return [r.total_run_time.total_seconds() for r in runs]


async def _main(executions: int, concurrency: int, root: Path) -> None:
    from flows.batch import batch
    from flows.batch_input import BatchItem
    from flows.execution import choose_mode

    mode, why_not = choose_mode("auto")
    print(f"mode: {mode}" + (f" (no Docker engine: {why_not})" if why_not else ""))
    items = [BatchItem(user=f"user{i:02d}", query="Triage the tickets") for i in range(executions)]
    options = {
        "mode": mode,
        "provider": "scripted",
        "script": EXAMPLE / "script.json",
        "config": EXAMPLE / "perstack.toml",
        "seed": EXAMPLE / "workspace",
        "workspaces": root / "workspaces",
        "ingest": False,
        "timeout_seconds": 120.0,
    }
    # Warm-up: starts the temporary server and imports, so the timed batch excludes them.
    # Its concurrency is the timed batch's: the first batch may create the global limit.
    await batch("support-analyst", items=items[:1], concurrency=concurrency, **options)
    began = time.perf_counter()
    summary = await batch("support-analyst", items=items, concurrency=concurrency, **options)
    wall = time.perf_counter() - began
    _report(summary.results, wall, concurrency, await _flow_run_seconds())


def _report(results: list, wall: float, concurrency: int, flow_runs: list[float]) -> None:
    completed = sum(1 for r in results if r.ok)
    own = [r.run_ms / 1000 for r in results]
    plain = [r.duration_ms / 1000 for r in results]
    # The last len(results) run-expert runs are the timed batch's (the warm-up's is older).
    flow_seconds = sorted(flow_runs)[-len(results) :] if flow_runs else []
    print(f"executions: {len(results)} ({completed} completed), concurrency {concurrency}")
    print(f"batch wall time:                      {wall:7.2f} s")
    print(f"sum of the containers' own times:     {sum(own):7.2f} s")
    print(f"ideal wall time (sum / concurrency):  {sum(own) / concurrency:7.2f} s")
    print(f"wall / ideal:                         {wall / (sum(own) / concurrency):7.2f}")
    print(f"container own time, median:           {statistics.median(own):7.2f} s")
    launcher = [p - o for p, o in zip(plain, own, strict=True)]
    print(f"launcher overhead per execution:      {statistics.median(launcher):7.2f} s median")
    if len(flow_seconds) == len(plain):
        overhead = [f - p for f, p in zip(sorted(flow_seconds), sorted(plain), strict=True)]
        print(
            f"Prefect overhead per execution:       {statistics.median(overhead):7.2f} s median,"
            f" {max(overhead):.2f} s max (flow-run time minus the execution inside it)"
        )
    beyond_ideal = (wall - sum(own) / concurrency) * concurrency / len(results)
    print(
        f"Prefect + batch overhead per execution: {beyond_ideal:.2f} s "
        "((wall - ideal) x concurrency / executions)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="perstack-flows-bench-") as tmp:
        _environment(Path(tmp))
        sys.path.insert(0, str(REPO))
        asyncio.run(_main(args.executions, args.concurrency, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
