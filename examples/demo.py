"""The main job, runnable on a fresh machine: the whole pipeline on the support-report
example, through the Prefect flows.

1. perstack.lock from the example's perstack.toml (the ``install`` flow);
2. two users' executions, each in a fresh hardened container (a local process when no
   Docker engine is reachable, and it says so), as one ``batch`` of ``run-expert`` runs;
3. what they left ingested into the Parquet dataset;
4. an audit table (tokens and cost per user) printed at the end.

Claude when ANTHROPIC_API_KEY is set, otherwise the offline scripted model, and it says
which. Prefect runs on a temporary local server (about 15 s to start). Everything goes
under .data/demo/, fresh each time (Prefect's database is kept to start faster).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent / "support-report"
DEMO_ROOT = Path(".data") / "demo"
EXPERT = "support-analyst"
QUERY = "Triage the support tickets in tickets/."
USERS = ("alice", "bob")
# Prefect's settings are read when it is imported: these come first.
PREFECT_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no network here, and no telemetry
    "DO_NOT_TRACK": "1",
    "PREFECT_HOME": str((DEMO_ROOT / "prefect").resolve()),
    "PREFECT_LOGGING_LEVEL": "WARNING",  # the run logs are in Prefect; the demo tells the story
    "PERSTACK_DATA": str(DEMO_ROOT.resolve()),
}


def say(text: str) -> None:
    sys.stderr.write(f"demo: {text}\n")
    sys.stderr.flush()


def fresh_config() -> Path:
    """A copy of the example's config, so that the lock the demo writes is its own."""
    for name in ("workspaces", "captures", "batches", "audit", "config"):
        shutil.rmtree(DEMO_ROOT / name, ignore_errors=True)
    config = DEMO_ROOT / "config" / "perstack.toml"
    config.parent.mkdir(parents=True)
    shutil.copyfile(EXAMPLE / "perstack.toml", config)
    return config


def model_choice() -> tuple[str | None, Path | None]:
    if os.environ.get("ANTHROPIC_API_KEY"):
        say("ANTHROPIC_API_KEY is set: using Claude")
        return None, None
    say("no ANTHROPIC_API_KEY: using the offline scripted model")
    return "scripted", EXAMPLE / "script.json"


async def run_pipeline() -> int:
    from prefect.settings import get_current_settings

    from analytics.cli import main as audit
    from flows.batch_input import BatchItem
    from flows.execution import choose_mode
    from flows.pipeline import pipeline

    config = fresh_config()
    provider, script = model_choice()
    _, why_not = choose_mode("auto")  # to say it here; each run decides and says so too
    if why_not is None:
        say("Docker engine reachable: each execution runs in a fresh hardened container")
    else:
        say(f"no container ({why_not}): running the executions as local processes")
    server = get_current_settings().api.url  # the environment's, else the profile's
    if server:
        say(f"using the Prefect server at {server} (PREFECT_API_URL)")
    else:
        say("starting Prefect's temporary server (about 15 s)...")
    began = time.perf_counter()
    summary = await pipeline(
        config=config,
        expert=EXPERT,
        items=[BatchItem(user=user, query=QUERY) for user in USERS],
        mode="auto",  # the demo runs anywhere; the deployments insist on containers
        provider=provider,
        script=script,
        seed=EXAMPLE / "workspace",
        workspaces=DEMO_ROOT / "workspaces",
        dataset=DEMO_ROOT / "audit",
        timeout_seconds=300.0,
    )
    say(f"lockfile: {summary.lockfile}")
    for result in summary.batch.results:
        say(
            f"{result.user}: {result.outcome} in {result.run_ms / 1000:.1f} s "
            f"({result.mode}), {result.usage.total_tokens} tokens, "
            f"report: {Path(result.workspace) / 'report.md'}"
        )
        say(f"  answer: {result.final_text}")
    say(f"pipeline done in {time.perf_counter() - began:.1f} s; audit ({summary.audit_query}):")
    sys.stdout.flush()
    code = audit(["--data", str(DEMO_ROOT / "audit"), "query", summary.audit_query])
    failed = summary.batch.failed
    if failed:
        say(f"{failed} execution(s) did not complete; see the table above and the logs")
    return 1 if failed or code else 0


def main() -> int:
    os.environ.update(PREFECT_ENV)
    DEMO_ROOT.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run_pipeline())


if __name__ == "__main__":
    sys.exit(main())
