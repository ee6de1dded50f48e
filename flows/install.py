"""The ``install`` flow: perstack.lock from a perstack.toml, with a table of what it locked.

Every skill of every Expert is started once; one that fails to start fails the flow with
its message, and the existing lock is left as it was."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact

from flows.alerts import notify_failure
from flows.artifacts import lockfile_rows
from flows.run_context import tag_flow_run
from runtime.config import find_config, load_config, load_env_files
from runtime.install import install
from runtime.lockfile import read_lockfile


@flow(name="install", flow_run_name="install {config}", on_failure=[notify_failure])
async def install_flow(config: Path) -> Path:
    """Write perstack.lock next to ``config``; returns its path."""
    logger = get_run_logger()
    await tag_flow_run()
    loaded = load_config(find_config(config))
    load_env_files(loaded)
    path = await install(loaded, progress=lambda line: logger.info("%s", line))
    lock = read_lockfile(path)
    rows = lockfile_rows(lock)
    await acreate_table_artifact(
        key="lockfile",
        table=rows,
        description=f"{path}: {len(lock.experts)} Experts, {len(rows)} tools",
    )
    return path
