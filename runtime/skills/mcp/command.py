"""How a `mcpStdioSkill` becomes a command line and an environment.

Command line, the reference's convention: ``args`` when given, else ``[packageName]``
(giving both is an error); ``npx`` gets ``-y`` first so that it never stops to ask. So
``command = "npx", packageName = "@scope/server"`` runs ``npx -y @scope/server`` and
``command = "uvx", packageName = "mcp-server-time"`` runs ``uvx mcp-server-time``. Ours: a
``command`` with neither runs as it is, and a command that is not on ``PATH`` is also looked
for next to the runtime's own Python (its virtualenv's ``bin``).

Environment, least privilege: a small base (``BASE_ENV_NAMES``: locale, home, path, temp
and proxy settings, package-manager caches) plus exactly the variables named in
``requiredEnv``. Everything else in the runtime's environment (API keys above all) is
invisible to the server. Where the runtime names a preload library
(``PERSTACK_SERVER_PRELOAD``, set in the runtime image), the server starts with it: it
marks the server not dumpable, so that the Expert's ``exec`` commands, which run as the
same user, cannot read the server's ``requiredEnv`` from ``/proc/<pid>/environ``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping

from runtime.config import McpStdioSkill
from runtime.errors import ConfigError
from runtime.skills.environment import LOADER_ENV_NAMES, MINIMAL_ENV_NAMES

# The package managers' caches, so that `npx`/`uvx` servers find what they installed.
BASE_ENV_NAMES: tuple[str, ...] = (
    *MINIMAL_ENV_NAMES,
    "XDG_CACHE_HOME",
    "NPM_CONFIG_CACHE",
    "NPM_CONFIG_PREFIX",
    "UV_CACHE_DIR",
)
PROTECTED_ENV_NAMES = LOADER_ENV_NAMES
# Names the library preloaded into every stdio server (docker/preload/undumpable.c).
PRELOAD_ENV = "PERSTACK_SERVER_PRELOAD"


def _where(expert_key: str, skill_name: str) -> str:
    return f'experts."{expert_key}".skills."{skill_name}"'


def server_command(expert_key: str, skill_name: str, config: McpStdioSkill) -> list[str]:
    """The argv that starts the server (command first), per the convention above."""
    if config.package_name and config.args:
        raise ConfigError(
            f"{_where(expert_key, skill_name)}: has both packageName and args; "
            "give packageName (run through the command) or args, not both"
        )
    args = list(config.args) if config.args else []
    if not args and config.package_name:
        args = [config.package_name]
    if os.path.basename(config.command) == "npx" and "-y" not in args and "--yes" not in args:
        args = ["-y", *args]
    return [config.command, *args]


def resolve_executable(command: str, path: str | None) -> str:
    """``command`` as found on ``path``, else next to this Python, else unchanged (the
    spawn then fails with a clear 'not found')."""
    if os.sep in command:
        return command
    found = shutil.which(command, path=path)
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), command)
    if os.access(beside, os.X_OK):
        return beside
    return command


def server_environment(
    expert_key: str,
    skill_name: str,
    required: list[str],
    environ: Mapping[str, str],
) -> dict[str, str]:
    """The base plus ``required``; a missing or protected name is a ConfigError."""
    protected = sorted(name for name in required if name.upper() in PROTECTED_ENV_NAMES)
    if protected:
        raise ConfigError(
            f"{_where(expert_key, skill_name)}: requiredEnv may not name {', '.join(protected)}: "
            "it changes how programs load; remove it"
        )
    missing = [name for name in required if not environ.get(name)]
    if missing:
        raise ConfigError(
            f"{_where(expert_key, skill_name)}: requiredEnv names {', '.join(missing)}, "
            "which is not set; set it in the environment or an env file (--env-path)"
        )
    env = {name: environ[name] for name in BASE_ENV_NAMES if environ.get(name)}
    env.setdefault("PATH", os.defpath)
    env.update({name: environ[name] for name in required})
    preload = environ.get(PRELOAD_ENV)
    if preload:
        if not os.path.isfile(preload):
            raise ConfigError(
                f"{PRELOAD_ENV} names {preload!r}, which is not a file; "
                "build it with docker/build-preload.sh or unset the variable"
            )
        env["LD_PRELOAD"] = preload
    return env
