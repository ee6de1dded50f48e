"""Where the flows keep things, and the names they share with the deployments.

Every path here is absolute: a relative ``$PERSTACK_DATA`` (or the default ``.data``) is
taken from the working directory once, so that logs and artifacts name the files wherever
they are read (the UI is not on the worker's machine, nor in its checkout)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "PERSTACK_DATA"  # the root of workspaces, captures and batch files


def data_root() -> Path:
    return Path(os.environ.get(DATA_ENV) or ".data").absolute()


def workspaces_root() -> Path:
    return data_root() / "workspaces"


def captures_root() -> Path:
    return data_root() / "captures"


def batches_root() -> Path:
    return data_root() / "batches"


def process_records_root() -> Path:
    """Records of the local runtime processes under way, one folder per flow run."""
    return data_root() / "processes"


def dataset_root(dataset: Path | None = None) -> Path:
    """The audit dataset: ``dataset``, else $PERSTACK_AUDIT_DATA, else ./.data/audit."""
    from analytics import default_root  # pyarrow and duckdb: only for those who ingest

    return (dataset or default_root()).absolute()


# The Prefect global concurrency limit every execution takes a slot of (created by
# deployments/setup.py, or by a batch when missing; a batch never changes it).
EXECUTION_LIMIT = "perstack-executions"
DEFAULT_CONCURRENCY = 4
# The tag every flow run of ours carries; the alert automation matches it.
PERSTACK_TAG = "perstack"
# Container label naming the flow run an execution belongs to, for cleanup by hooks.
FLOW_RUN_LABEL = "prefect.flow-run-id"
