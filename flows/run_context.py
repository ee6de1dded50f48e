"""What a flow reads from and writes to its own flow run: its tags, and the parameters its
deployment pins (to tell them from those given for this run)."""

from __future__ import annotations

import json
from typing import Any

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.runtime import flow_run as current_flow_run
from pydantic_core import to_jsonable_python

from flows.defaults import PERSTACK_TAG


async def tag_flow_run(expert: str | None = None) -> None:
    """Tag the flow run ``perstack`` (and ``expert:<key>``), however it was started (a
    deployment, a parent flow, a call): the alert automation and the UI's filters match
    them."""
    run_id = current_flow_run.id
    if run_id is None:
        return
    tags = set(current_flow_run.tags or ())
    wanted = tags | {PERSTACK_TAG} | ({f"expert:{expert}"} if expert else set())
    if wanted != tags:
        async with get_client() as client:
            await client.update_flow_run(run_id, tags=sorted(wanted))


async def deployment_defaults() -> dict[str, Any]:
    """The parameters the flow run's deployment pins ({} for a run of no deployment)."""
    context = FlowRunContext.get()
    flow_run = context.flow_run if context is not None else None
    if flow_run is None or flow_run.deployment_id is None:
        return {}
    async with get_client() as client:
        deployment = await client.read_deployment(flow_run.deployment_id)
    return dict(deployment.parameters or {})


async def given_for_this_run(first: tuple[str, Any], second: tuple[str, Any]) -> tuple[Any, Any]:
    """``prefer_given`` with the flow run's deployment defaults, saying what it dropped."""
    chosen = prefer_given(first, second, await deployment_defaults())
    for (name, value), kept in zip((first, second), chosen, strict=True):
        if value is not None and kept is None:
            get_run_logger().info(
                "the deployment's default %s is not used: this run gives the other one", name
            )
    return chosen


def prefer_given(
    first: tuple[str, Any], second: tuple[str, Any], pinned: dict[str, Any]
) -> tuple[Any, Any]:
    """The values of two parameters of which one is to be given (``query`` and
    ``query_file``, say). When both are set and one of them is only its deployment's
    default, the one given for this run wins and the default is dropped (None): a run of
    a deployment that pins ``query`` may give ``query_file`` instead."""
    (first_name, first_value), (second_name, second_value) = first, second
    if first_value is None or second_value is None:
        return first_value, second_value
    first_pinned = _is_pinned(first_name, first_value, pinned)
    second_pinned = _is_pinned(second_name, second_value, pinned)
    if first_pinned and not second_pinned:
        return None, second_value
    if second_pinned and not first_pinned:
        return first_value, None
    return first_value, second_value


def _is_pinned(name: str, value: Any, pinned: dict[str, Any]) -> bool:
    return name in pinned and _same(pinned[name], value)


def _same(left: Any, right: Any) -> bool:
    def plain(value: Any) -> str:
        return json.dumps(to_jsonable_python(value), sort_keys=True)

    return plain(left) == plain(right)
