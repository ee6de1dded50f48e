"""Alerts for failed and crashed flow runs, and clean-up of runs that were torn down.

Two paths, so that a failure is told once:
- runs started outside a deployment (a script, a test, the demo) notify from the flow's
  state hooks through the notification block named by $PERSTACK_ALERT_BLOCK
  (``<block-type-slug>/<name>``, default ``custom-webhook/perstack-alerts``), if it exists;
- deployed runs are covered by the automation ``deployments/setup.py`` creates, which also
  sees runs whose process died before any hook could run (OOM, SIGKILL).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.client.schemas.objects import FlowRun, State

from flows.defaults import FLOW_RUN_LABEL, process_records_root
from flows.launcher import EngineUnavailableError, connect, remove_leftovers
from flows.process_records import end_recorded

logger = logging.getLogger(__name__)

ALERT_BLOCK_ENV = "PERSTACK_ALERT_BLOCK"
DEFAULT_ALERT_BLOCK = "custom-webhook/perstack-alerts"
# A local runtime told to stop by the hook gets as long as after its wall clock
# (flows.execution.GRACE_SECONDS) to write its last checkpoint.
HOOK_GRACE_SECONDS = 10.0


def alert_block_name() -> str:
    return os.environ.get(ALERT_BLOCK_ENV) or DEFAULT_ALERT_BLOCK


def alert_text(flow_name: str, run_name: str, state: State[Any]) -> tuple[str, str]:
    """(subject, body) of the notification for a run that ended in ``state``."""
    subject = f"Perstack: {flow_name} run {run_name!r} {state.name}"
    body = f"Flow run {run_name!r} of {flow_name} ended {state.name}: {state.message or ''}"
    return subject, body.strip()


async def load_alert_block() -> NotificationBlock | None:
    name = alert_block_name()
    try:
        block = await Block.aload(name)
    except ValueError:
        logger.debug("no notification block %r: alerts are off", name)
        return None
    if not isinstance(block, NotificationBlock):
        logger.warning("block %r is not a notification block; no alert sent", name)
        return None
    return block


async def notify_failure(flow: Any, flow_run: FlowRun, state: State[Any]) -> None:
    """State hook: tell the alert block about a failed or crashed run (not a deployed
    one: the deployments' automation, which matches runs of a deployment, does that)."""
    if flow_run.deployment_id is not None:
        return
    block = await load_alert_block()
    if block is None:
        return
    subject, body = alert_text(flow.name, flow_run.name, state)
    await block.anotify(body=body, subject=subject)  # type: ignore[attr-defined]


async def cleanup_after_abort(flow: Any, flow_run: FlowRun, state: State[Any]) -> None:
    """State hook for cancelled and crashed runs: nothing they started may outlive them.
    The execution's own cancellation path stops its container or process; this catches
    the rest, from whichever process Prefect runs it in (a worker runs it in one of its
    own, so everything is found from outside: containers by label, local processes by
    their records)."""
    records = process_records_root() / str(flow_run.id)
    await asyncio.to_thread(end_recorded, records, HOOK_GRACE_SECONDS)
    await asyncio.to_thread(_remove_containers, str(flow_run.id))


def _remove_containers(flow_run_id: str) -> None:
    try:
        client = connect()
    except EngineUnavailableError:
        return
    try:
        removed = remove_leftovers(client, {FLOW_RUN_LABEL: flow_run_id})
    finally:
        client.close()
    if removed:
        logger.warning("removed %d containers left by flow run %s", removed, flow_run_id)
