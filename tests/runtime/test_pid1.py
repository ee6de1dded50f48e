"""The runtime as its container's init: forwarding, reaping, and its own deadline."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from runtime.pid1 import DEADLINE_ENV, deadline_from_env

# A supervisor in a process of its own (supervise reaps every child of its process).
SUPERVISE = textwrap.dedent(
    """
    import os, signal, sys, time
    from runtime.pid1 import supervise
    child = os.fork()
    if child == 0:
        if sys.argv[1] == "ignore":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(600)
        os._exit(0)
    sys.exit(supervise(child, deadline=0.3, grace=0.5))
    """
)


def supervised(child_mode: str) -> tuple[int, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SUPERVISE, child_mode], timeout=30, check=False)
    return done.returncode, time.monotonic() - started


def test_at_the_deadline_the_runtime_is_sent_sigterm():
    code, seconds = supervised("obey")
    assert code == 128 + 15
    assert seconds < 10


def test_a_runtime_ignoring_the_deadline_ends_with_the_init_after_the_grace_period():
    # Regression: with its launcher killed, a container ran on past every limit.
    code, seconds = supervised("ignore")
    assert code == 137
    assert 0.8 <= seconds < 10


@pytest.mark.parametrize("value", ["", "soon", "-5", "0", "inf", "nan"])
def test_a_deadline_that_is_not_a_positive_number_is_ignored(monkeypatch, value):
    monkeypatch.setenv(DEADLINE_ENV, value)
    assert deadline_from_env() is None


def test_the_deadline_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv(DEADLINE_ENV, "420")
    assert deadline_from_env() == 420.0
