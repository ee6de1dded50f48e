"""Where the flows keep things, and the names they share with the deployments."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "PERSTACK_DATA"  # the root of workspaces, captures and batch files


def data_root() -> Path:
    return Path(os.environ.get(DATA_ENV) or ".data")


def workspaces_root() -> Path:
    return data_root() / "workspaces"


def captures_root() -> Path:
    return data_root() / "captures"


def batches_root() -> Path:
    return data_root() / "batches"


# The Prefect global concurrency limit every execution takes a slot of (created by the
# batch flow, or deployments/setup.py, when missing).
EXECUTION_LIMIT = "perstack-executions"
DEFAULT_CONCURRENCY = 4
# The tag every flow run of ours carries; the alert automation matches it.
PERSTACK_TAG = "perstack"
# Container label naming the flow run an execution belongs to, for cleanup by hooks.
FLOW_RUN_LABEL = "prefect.flow-run-id"
