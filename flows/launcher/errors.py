"""Errors of the container launcher.

Anything the Docker SDK raises is translated here, at the boundary, so callers catch
``LauncherError`` alone.
"""

from __future__ import annotations


class LauncherError(Exception):
    """The launcher could not do what was asked (not: the execution failed)."""


class EngineUnavailableError(LauncherError):
    """No Docker engine answers on the configured socket."""


class ImageMissingError(LauncherError):
    """The image to run is not in the local engine (no registry is reachable to pull it)."""

    def __init__(self, image: str) -> None:
        super().__init__(
            f"image {image!r} is not in the local Docker engine; build it with "
            "`.ci/setup-docker.sh` (no registry is reachable to pull it)"
        )
        self.image = image


class InvalidSpecError(LauncherError, ValueError):
    """A launch request that would weaken isolation or cannot work, with what to change."""


class ProxyStartError(LauncherError):
    """The egress proxy did not become ready."""
