"""Container start to the first LLM request, against a bare `docker run python3 -c pass`.

The execution runs the image's `perstack run` (the example Expert, Anthropic SDK) in the
hardened container under the allow-list policy; the fake Messages API answers behind a
TLS front on the egress network's gateway, reached only through the proxy. Figures:

  bare docker run          `docker run --rm --entrypoint python3 IMAGE -c pass`, wall time
  runtime start -> request  runtime container started -> first request at the fake
  create -> request         runtime container create call -> first request (comparable to
                            the bare run, which creates and starts a container too)
  launch -> request         launch() called -> first request (adds network + proxy)
  image sizes

Goal: the runtime adds at most 1 s to the bare container (create -> request minus bare).
Measured +0.34 s (image 161 MB) once the provider stopped importing the anthropic SDK,
which alone took ~1.5 s inside the container (+1.3 s to +1.65 s and 180 MB before).

    .venv/bin/python benchmarks/container_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flows.launcher import (  # noqa: E402
    LaunchSpec,
    Limits,
    NetworkPolicy,
    connect,
    ensure_egress_network,
    launch,
    remove_leftovers,
)
from tests.fakes import FakeMessagesAPI  # noqa: E402
from tests.flows.conftest import TLS_HOST, TlsFront  # noqa: E402

IMAGE = "perstack-runtime:latest"
LABEL = {"benchmark": "container_start"}
EGRESS = "perstack-egress-benchmark"


def bare_run_seconds() -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "python3",
            IMAGE,
            "-c",
            "pass",
        ],
        check=True,
    )
    return time.perf_counter() - started


def one_execution(client, gateway: str, root: Path) -> dict[str, float]:
    workspace = root / "workspaces" / "bench"
    (workspace / ".tls").mkdir(parents=True)
    marks: dict[str, float] = {}

    def on_event(event: dict) -> None:
        if event.get("type") == "dockerContainerStatus" and event.get("service") == "runtime":
            marks.setdefault(event["status"], time.time())

    with FakeMessagesAPI([{"text": "Nothing to triage."}], repeat=True) as api:
        front = TlsFront(gateway, api.port, workspace / ".tls")
        try:
            spec = LaunchSpec.for_expert(
                "support-analyst",
                "Say hello",
                runtime_args=("--provider", "anthropic"),
                workspace=workspace,
                capture_dir=root / "captures",
                env={
                    "ANTHROPIC_API_KEY": "benchmark-key",
                    "ANTHROPIC_BASE_URL": f"https://{TLS_HOST}:{front.port}",
                    "SSL_CERT_FILE": "/workspace/.tls/front.pem",
                },
                network=NetworkPolicy.allow(
                    [TLS_HOST], proxy_hosts={TLS_HOST: gateway}, egress_network=EGRESS
                ),
                labels=LABEL,
                limits=Limits(wall_clock_seconds=120),
            )
            called = time.time()
            result = launch(spec, on_event=on_event, client=client)
        finally:
            front.close()
        first = api.first_request_at
    if first is None or result.outcome.value != "completed":
        raise SystemExit(f"the run made no LLM request ({result.outcome}: {result.reason})")
    return {
        "launch_to_request": first - called,
        "create_to_request": first - marks["starting"],
        "start_to_request": first - marks["running"],
        "total": result.timings.total_ms / 1000,
    }


def image_size(client, name: str) -> str:
    return f"{client.images.get(name).attrs['Size'] / 1e6:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    client = connect()
    try:
        network = ensure_egress_network(client, EGRESS, LABEL)
        network.reload()
        gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
        bare_run_seconds()  # warm the page cache once, for both sides
        bare = [bare_run_seconds() for _ in range(runs)]
        figures = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as root:
                figures.append(one_execution(client, gateway, Path(root)))
        median = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
        bare_median = statistics.median(bare)
        print(f"runs                          {runs}")
        print(
            f"bare docker run python3 -c pass   median {bare_median:.3f} s "
            f"(min {min(bare):.3f}, max {max(bare):.3f})"
        )
        for key, label in (
            ("start_to_request", "runtime start -> first request"),
            ("create_to_request", "runtime create -> first request"),
            ("launch_to_request", "launch() -> first request (+proxy)"),
            ("total", "launch() total, teardown included"),
        ):
            values = [f[key] for f in figures]
            print(
                f"{label:34} median {median[key]:.3f} s "
                f"(min {min(values):.3f}, max {max(values):.3f})"
            )
        added = median["create_to_request"] - bare_median
        print(f"runtime adds to the bare container  {added:+.3f} s (goal: at most +1.000 s)")
        for name in (IMAGE, "perstack-proxy:latest", "perstack-base:bookworm"):
            print(f"image {name:30} {image_size(client, name)}")
    finally:
        remove_leftovers(client, LABEL)
        client.close()


if __name__ == "__main__":
    main()
