"""MCP skills: what starting servers costs, and what perstack.lock saves (issue #3).

Prints:
- time to first LLM call (initializeRuntime → startGeneration) with three stdio skills,
  without and with perstack.lock, each in a fresh `perstack run` process and, with the lock,
  also in-process (goal with the lock: ≤ 5 ms median; the reference reports 1,649 ms without
  and 7 ms with);
- per skill: spawn, handshake and tool-discovery milliseconds from skillConnected, for our
  Python test server, mcp-server-time and (with Node.js) server-everything through npx; and
  for the test server, the handshake beyond the server's own start-up (goal: ≤ 50 ms);
- cold start of `perstack run` with a lock and only MCP skills: process wall time and
  whether the `mcp` SDK was imported (it must not be), next to what importing it costs.

Run: .venv/bin/python -m benchmarks.mcp_startup [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runtime.cli import main as perstack  # noqa: E402
from runtime.config import McpStdioSkill  # noqa: E402
from runtime.events import Event, SkillConnected  # noqa: E402
from runtime.skills.mcp import McpSkill  # noqa: E402

FAKE = REPO / "tests" / "fakes" / "mcp_server.py"
PICKS = (["echo"], ["env"], ["whoami"])  # three servers, no tool name offered twice


def three_skill_config() -> str:
    toml = '[experts."bench"]\ninstruction = "Benchmark."\n'
    for index, pick in enumerate(PICKS):
        toml += (
            f'[experts."bench".skills."server{index}"]\ntype = "mcpStdioSkill"\n'
            f"command = {json.dumps(sys.executable)}\n"
            f"args = {json.dumps([str(FAKE), 'serve'])}\npick = {json.dumps(pick)}\n"
        )
    return toml


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "perstack.toml"
        self.config.write_text(three_skill_config())
        self.script = root / "script.json"
        self.script.write_text('[{"text": "done"}]')

    def args(self) -> list[str]:
        return [
            "run",
            "bench",
            "go",
            "--config",
            str(self.config),
            "--workspace",
            str(self.root / "ws"),
            "--provider",
            "scripted",
            "--script",
            str(self.script),
        ]

    def install(self) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            assert perstack(["install", "--config", str(self.config)]) == 0

    def unlock(self) -> None:
        (self.root / "perstack.lock").unlink(missing_ok=True)


def first_call_ms(stdout: str) -> int:
    events = [json.loads(line) for line in stdout.splitlines()]
    init = next(e for e in events if e["type"] == "initializeRuntime")
    first = next(e for e in events if e["type"] == "startGeneration")
    return int(first["timestamp"] - init["timestamp"])


PROBE = (
    "import contextlib, io, sys\nfrom runtime.cli import main\nout = io.StringIO()\n"
    "with contextlib.redirect_stdout(out):\n    main(sys.argv[1:])\n"
    "sys.stderr.write('MCP_IMPORTED=%s\\n' % ('mcp' in sys.modules))\n"
    "sys.stdout.write(out.getvalue())\n"
)


def cold_run(project: Project) -> tuple[int, float, bool]:
    """(first-call ms, process wall ms, mcp imported) of one fresh `perstack run`."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *project.args()],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    wall = (time.perf_counter() - began) * 1000
    return first_call_ms(done.stdout), wall, "MCP_IMPORTED=True" in done.stderr


def warm_run(project: Project) -> int:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        perstack(project.args())
    return first_call_ms(out.getvalue())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report_first_call(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Project(Path(tmp))
        project.unlock()
        without = [cold_run(project) for _ in range(runs)]
        project.install()
        cold_locked = [cold_run(project) for _ in range(runs)]
        warm_locked = [warm_run(project) for _ in range(max(runs, 20))]
    print("Time to first LLM call (initializeRuntime -> startGeneration), three stdio skills")
    print(
        f"  without lock, fresh process : median {median([r[0] for r in without]):7.1f} ms"
        f"  (min {min(r[0] for r in without)}, max {max(r[0] for r in without)})"
    )
    print(
        f"  with lock, fresh process    : median {median([r[0] for r in cold_locked]):7.1f} ms"
        f"  (min {min(r[0] for r in cold_locked)}, max {max(r[0] for r in cold_locked)})"
    )
    print(
        f"  with lock, in-process       : median {median([float(v) for v in warm_locked]):7.1f}"
        f" ms  (min {min(warm_locked)}, max {max(warm_locked)}; goal <= 5 ms)"
    )
    print("Cold start of `perstack run`, process wall time (scripted model, no tool called)")
    print(
        f"  without lock: median {median([r[1] for r in without]):7.0f} ms,"
        f" mcp imported: {all(r[2] for r in without)}"
    )
    print(
        f"  with lock   : median {median([r[1] for r in cold_locked]):7.0f} ms,"
        f" mcp imported: {any(r[2] for r in cold_locked)}"
    )
    print(f"  importing the mcp SDK alone: {mcp_import_ms():.0f} ms (fresh process)")


def mcp_import_ms() -> float:
    code = (
        "import time; t = time.perf_counter(); import mcp.client.session, mcp_types; "
        "print((time.perf_counter() - t) * 1000)"
    )
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return median(runs)


async def connect_once(config: McpStdioSkill, start_s: float = 120.0) -> SkillConnected:
    from runtime.skills.mcp import McpTimeouts

    events: list[Event] = []
    skill = McpSkill(
        "bench",
        config,
        expert_key="bench",
        job_id="b",
        run_id="b",
        emit=events.append,
        timeouts=McpTimeouts(start_s=start_s),
    )
    try:
        await skill.start()
    finally:
        await skill.close()
    return next(e for e in events if isinstance(e, SkillConnected))


def boot_only_ms() -> float:
    """Spawn to 'built' on stdout: the test server's own start-up, before any protocol."""
    began = time.perf_counter()
    server = subprocess.Popen([sys.executable, str(FAKE), "boot-only"], stdout=subprocess.PIPE)
    assert server.stdout is not None
    server.stdout.readline()
    elapsed = (time.perf_counter() - began) * 1000
    server.wait(timeout=30)
    server.stdout.close()
    return elapsed


async def report_per_skill(runs: int) -> None:
    servers = {
        "test server (Python, MCPServer)": McpStdioSkill(
            type="mcpStdioSkill", command=sys.executable, args=[str(FAKE), "serve"]
        ),
        "mcp-server-time (PyPI)": McpStdioSkill(
            type="mcpStdioSkill", command="mcp-server-time", args=["--local-timezone", "UTC"]
        ),
    }
    if shutil.which("npx"):
        servers["server-everything (npm, npx -y)"] = McpStdioSkill(
            type="mcpStdioSkill",
            command="npx",
            packageName="@modelcontextprotocol/server-everything",
        )
    await connect_once(next(iter(servers.values())))  # the SDK import is paid once, here
    print(
        "Per skill, warm runtime (median of",
        runs,
        "starts): spawn / handshake / discovery / total ms",
    )
    for label, config in servers.items():
        figures = [await connect_once(config) for _ in range(runs)]
        spawn = median([float(f.spawn_duration_ms or 0) for f in figures])
        shake = median([float(f.handshake_duration_ms or 0) for f in figures])
        found = median([float(f.tool_discovery_duration_ms or 0) for f in figures])
        total = median([float(f.total_duration_ms or 0) for f in figures])
        print(f"  {label:34s} {spawn:6.0f} {shake:9.0f} {found:9.0f} {total:7.0f}")
    # Interleaved, so that the machine's load weighs on both sides alike.
    boots: list[float] = []
    beyond_each: list[float] = []
    test_server = next(iter(servers.values()))
    for _ in range(runs):
        boots.append(boot_only_ms())
        figure = await connect_once(test_server)
        shake = float((figure.spawn_duration_ms or 0) + (figure.handshake_duration_ms or 0))
        beyond_each.append(shake - boots[-1])
    beyond = median(beyond_each)
    print(
        f"  test server's own start-up (spawn to 'built' on its stdout): "
        f"{median(boots):.0f} ms; spawn + handshake beyond it: {beyond:.0f} ms (goal <= 50)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    report_first_call(args.runs)
    asyncio.run(report_per_skill(args.runs))


if __name__ == "__main__":
    main()
