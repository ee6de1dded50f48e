"""Prefect flows around the runtime, the launcher and the analytics (issue #6).

Flows (``flows.install``, ``flows.run_expert``, ``flows.batch``, ``flows.ingest``,
``flows.pipeline``) only wire plain functions (``flows.execution``, ``flows.logs``,
``flows.artifacts``, ...); importing this package imports no Prefect.
"""
