"""The resource limits of one execution, with the reason for every default."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024

# An Expert run is a Python process, an LLM client and a few MCP servers: 1 GiB is ample,
# and small enough that a runaway run cannot starve the host.
DEFAULT_MEMORY_BYTES = 1024 * MIB
# One CPU: the run mostly waits on the LLM; more would only let a runaway loop burn more.
DEFAULT_CPUS = 1.0
# Python, a handful of MCP servers and their threads fit in well under 256; a fork bomb
# is held there.
DEFAULT_PIDS = 256
# The reference's default run timeout is 300 s; the container gets a margin on top.
DEFAULT_WALL_CLOCK_SECONDS = 360.0
# Time for `perstack run` to write its last checkpoint after SIGTERM before SIGKILL.
DEFAULT_GRACE_SECONDS = 10.0
# Checkpoints and events of even long runs stay in the tens of MiB.
DEFAULT_WORKSPACE_BYTES = 512 * MIB
# Files, folders and links: each costs an inode of the host's filesystem whatever its
# size (100,000 empty files are only 2 MB of blocks); a source checkout with its
# dependencies has tens of thousands.
DEFAULT_WORKSPACE_ENTRIES = 500_000
# Folders nested deeper than this are not walked (each level holds a descriptor open
# during the walk); real trees, node_modules included, stay far shallower.
DEFAULT_WORKSPACE_DEPTH = 256
# /tmp is a tmpfs: it counts against memory, so it stays small.
DEFAULT_TMPFS_BYTES = 64 * MIB
# Open files per process: MCP servers and HTTP pools need some, not thousands.
DEFAULT_OPEN_FILES = 1024


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    cpus: float = DEFAULT_CPUS
    pids: int = DEFAULT_PIDS
    wall_clock_seconds: float = DEFAULT_WALL_CLOCK_SECONDS
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES
    workspace_entries: int = DEFAULT_WORKSPACE_ENTRIES
    workspace_depth: int = DEFAULT_WORKSPACE_DEPTH
    tmpfs_bytes: int = DEFAULT_TMPFS_BYTES
    open_files: int = DEFAULT_OPEN_FILES

    def __post_init__(self) -> None:
        for name in (
            "memory_bytes",
            "pids",
            "workspace_bytes",
            "workspace_entries",
            "workspace_depth",
            "tmpfs_bytes",
            "open_files",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"limit {name} must be positive, got {getattr(self, name)!r}")
        if self.cpus <= 0 or self.wall_clock_seconds <= 0 or self.grace_seconds < 0:
            raise ValueError(
                "limits cpus and wall_clock_seconds must be positive and grace_seconds "
                f"not negative, got {self.cpus!r}, {self.wall_clock_seconds!r}, "
                f"{self.grace_seconds!r}"
            )
