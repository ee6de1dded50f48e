from pathlib import Path

import pytest

from tests.runtime.harness import WORKER_TOML, Project, make_project


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSTACK_RETRY_BASE_DELAY_MS", "10")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path, WORKER_TOML)
