"""What the deployments need on a Prefect server besides themselves, created idempotently:
the work pools, the executions' concurrency limit, and, when PERSTACK_ALERT_WEBHOOK_URL
is set, the alert webhook block and the automation that notifies it of deployed runs that
fail, crash or time out.

Run from the repository's root, against the server in PREFECT_API_URL:

    .venv/bin/python -m deployments.setup [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from flows.defaults import DEFAULT_CONCURRENCY, EXECUTION_LIMIT, PERSTACK_TAG

WEBHOOK_ENV = "PERSTACK_ALERT_WEBHOOK_URL"
ALERT_BLOCK = "perstack-alerts"  # a custom-webhook block: flows.alerts' default
AUTOMATION = "perstack: deployed run failed"
POOLS = {"perstack-process": "process", "perstack-docker": "docker"}
FAILED_EVENTS = {"prefect.flow-run.Failed", "prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}
BODY = (
    "Flow run {{ flow_run.name }} of {{ flow.name }} (deployment {{ deployment.name }}) "
    "ended {{ flow_run.state.name }}: {{ flow_run.state.message }}"
)


async def ensure_pools() -> None:
    async with get_client() as client:
        for name, kind in POOLS.items():
            try:
                await client.create_work_pool(WorkPoolCreate(name=name, type=kind))
                print(f"work pool {name} ({kind}) created")
            except ObjectAlreadyExists:
                print(f"work pool {name} exists")


async def ensure_limit(slots: int) -> None:
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name(EXECUTION_LIMIT, slots)
    print(f"concurrency limit {EXECUTION_LIMIT}: {slots} executions at a time")


async def ensure_alerts(url: str) -> None:
    block = CustomWebhookNotificationBlock(
        name=ALERT_BLOCK,
        url=url,
        json_data={"subject": "{{subject}}", "text": "{{body}}"},
    )
    block_id = await block.save(ALERT_BLOCK, overwrite=True)
    try:
        existing = await Automation.aread(name=AUTOMATION)
    except (ValueError, ObjectNotFound):
        existing = None
    if existing is not None and existing.id is not None:
        async with get_client() as client:
            await client.delete_automation(existing.id)
    automation = Automation(
        name=AUTOMATION,
        description="Deployed Perstack flow runs that fail, crash or time out.",
        trigger=EventTrigger(
            expect=FAILED_EVENTS,
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=[
                {"prefect.resource.role": "deployment"},
                {
                    "prefect.resource.role": "tag",
                    "prefect.resource.id": f"prefect.tag.{PERSTACK_TAG}",
                },
            ],
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="Perstack: {{ flow_run.name }} {{ flow_run.state.name }}",
                body=BODY,
            )
        ],
    )
    await automation.acreate()
    print(f"alerts: block custom-webhook/{ALERT_BLOCK} and automation {AUTOMATION!r}")


async def main_async(slots: int) -> None:
    await ensure_pools()
    await ensure_limit(slots)
    url = os.environ.get(WEBHOOK_ENV)
    if url:
        await ensure_alerts(url)
    else:
        print(f"alerts: off (set {WEBHOOK_ENV} to a webhook URL to turn them on)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    args = parser.parse_args()
    asyncio.run(main_async(args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
