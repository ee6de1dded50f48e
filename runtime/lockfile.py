"""perstack.lock: the tool definitions of every Expert, collected once by `perstack install`
so that runs start without asking any MCP server.

Format: the reference's (TOML; ``version = "1"``, ``generatedAt``, ``configPath``, then per
Expert ``[experts.KEY]`` with its skills in full and ``[[experts.KEY.toolDefinitions]]``),
plus ``configHash``, ours: the SHA-256 of the perstack.toml bytes the lock was built from.
A run uses the lock only when that hash matches its config; a lock built from another config
is reported and ignored, or refused with ``--frozen``. Experts, skills and tool definitions
are written in sorted order, and the keys of each tool's input schema too, so that a lock
diffs cleanly; lists keep their order.
TOML has no null: null values inside input schemas are left out.

A lock without a configHash (the reference writes none) is used when it has every Expert of
the config and, skill by skill, the fields that decide which tools a skill offers (type,
command, packageName, args, endpoint, pick, omit, tools) are the config's. Two differences
between the runtimes' locks are not differences of tools: ``@perstack/base`` is built in
here whatever its command says (so only its pick and omit count; the reference writes its
default entry as ``npx -y @perstack/base``, we used to write ``builtin``), and the
reference repeats each interactive tool's key as its ``name``.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runtime.config import BASE_SKILL_NAME, LoadedConfig
from runtime.errors import ConfigError
from runtime.skills.skill import ToolDefinition

logger = logging.getLogger(__name__)

LOCKFILE_NAME = "perstack.lock"
LOCKFILE_VERSION = "1"
# The order the reference writes a skill's keys in; keys it does not know come after, sorted.
_SKILL_KEY_ORDER = (
    "type",
    "name",
    "description",
    "rule",
    "pick",
    "omit",
    "command",
    "packageName",
    "args",
    "requiredEnv",
    "endpoint",
    "lazyInit",
    "allowedDomains",
    "tools",
)


class LockfileError(ConfigError):
    """perstack.lock cannot be used: unreadable, malformed, or built from another config."""


@dataclass(frozen=True)
class LockedExpert:
    key: str
    name: str
    version: str
    instruction: str
    description: str | None = None
    skills: dict[str, dict[str, Any]] = field(default_factory=dict)
    delegates: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    tool_definitions: list[ToolDefinition] = field(default_factory=list)


@dataclass(frozen=True)
class Lockfile:
    generated_at: int
    config_path: str
    experts: dict[str, LockedExpert]
    config_hash: str | None = None

    def tools_by_skill(self, expert_key: str) -> dict[str, list[ToolDefinition]] | None:
        """The locked tool definitions of ``expert_key``'s skills, by skill name."""
        expert = self.experts.get(expert_key)
        if expert is None:
            return None
        by_skill: dict[str, list[ToolDefinition]] = {name: [] for name in expert.skills}
        for definition in expert.tool_definitions:
            by_skill.setdefault(definition.skill_name, []).append(definition)
        return by_skill


def config_hash(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def lockfile_path(loaded: LoadedConfig) -> Path:
    return loaded.root / LOCKFILE_NAME


# --- writing ----------------------------------------------------------------------------


def render(lock: Lockfile) -> str:
    import tomli_w

    document: dict[str, Any] = {
        "version": LOCKFILE_VERSION,
        "generatedAt": lock.generated_at,
        "configPath": lock.config_path,
    }
    if lock.config_hash is not None:
        document["configHash"] = lock.config_hash
    document["experts"] = {key: _expert_table(lock.experts[key]) for key in sorted(lock.experts)}
    return tomli_w.dumps(document)


def write_lockfile(path: Path, lock: Lockfile) -> bool:
    """Write ``lock`` to ``path``; False, and the file left untouched, when it already says
    the same but for ``generatedAt`` (a committed lock stays clean)."""
    previous = _generated_at(path)
    if previous is not None:
        try:
            if render(replace(lock, generated_at=previous)) == path.read_text(encoding="utf-8"):
                return False
        except (OSError, UnicodeDecodeError):
            pass  # unreadable: replaced below
    text = render(lock)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)  # readers never see half a lock
    return True


def _generated_at(path: Path) -> int | None:
    """The ``generatedAt`` of the lock at ``path``; None when there is no readable one."""
    try:
        value = tomllib.loads(path.read_text(encoding="utf-8")).get("generatedAt")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _expert_table(expert: LockedExpert) -> dict[str, Any]:
    table: dict[str, Any] = {"key": expert.key, "name": expert.name, "version": expert.version}
    if expert.description is not None:
        table["description"] = expert.description
    table["instruction"] = expert.instruction
    table["delegates"] = list(expert.delegates)
    table["tags"] = list(expert.tags)
    table["skills"] = {name: _skill_table(expert.skills[name]) for name in sorted(expert.skills)}
    definitions = sorted(expert.tool_definitions, key=lambda d: (d.skill_name, d.name))
    table["toolDefinitions"] = [_definition_table(d) for d in definitions]
    return table


def _skill_table(skill: dict[str, Any]) -> dict[str, Any]:
    ordered = {key: skill[key] for key in _SKILL_KEY_ORDER if key in skill}
    ordered.update({key: skill[key] for key in sorted(skill) if key not in ordered})
    return {key: _without_nulls(value) for key, value in ordered.items() if value is not None}


def _definition_table(definition: ToolDefinition) -> dict[str, Any]:
    table: dict[str, Any] = {"skillName": definition.skill_name, "name": definition.name}
    if definition.description:
        table["description"] = definition.description
    table["inputSchema"] = _sorted_keys(_without_nulls(definition.input_schema))
    return table


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


# --- reading ----------------------------------------------------------------------------


def read_lockfile(path: Path) -> Lockfile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise LockfileError(f"{path}: cannot read: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise LockfileError(f"{path}: not valid TOML: {error}") from error
    if data.get("version") != LOCKFILE_VERSION:
        raise LockfileError(
            f"{path}: version {data.get('version')!r} is not {LOCKFILE_VERSION!r}; "
            "run `perstack install` again"
        )
    try:
        experts = {key: _read_expert(key, table) for key, table in data["experts"].items()}
        return Lockfile(
            generated_at=int(data["generatedAt"]),
            config_path=str(data["configPath"]),
            config_hash=data.get("configHash"),
            experts=experts,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise LockfileError(
            f"{path}: malformed ({type(error).__name__}: {error}); run `perstack install` again"
        ) from error


def _read_expert(key: str, table: dict[str, Any]) -> LockedExpert:
    definitions = [
        ToolDefinition(
            skill_name=str(item["skillName"]),
            name=str(item["name"]),
            description=str(item.get("description", "")),
            input_schema=dict(item["inputSchema"]),
        )
        for item in table.get("toolDefinitions", [])
    ]
    return LockedExpert(
        key=str(table.get("key", key)),
        name=str(table.get("name", key)),
        version=str(table["version"]),
        description=table.get("description"),
        instruction=str(table["instruction"]),
        skills={name: dict(skill) for name, skill in table.get("skills", {}).items()},
        delegates=list(table.get("delegates", [])),
        tags=list(table.get("tags", [])),
        tool_definitions=definitions,
    )


def lock_for_run(loaded: LoadedConfig, *, frozen: bool = False) -> Lockfile | None:
    """The lock a run may use: present, readable and built from this very config. Otherwise
    None with a warning, or LockfileError when ``frozen``."""
    path = lockfile_path(loaded)
    if not path.is_file():
        if frozen:
            raise LockfileError(
                f"{path}: no lockfile, and --frozen requires one; run `perstack install`"
            )
        return None
    try:
        lock = read_lockfile(path)
        if lock.config_hash is None:
            _check_skills_match(path, lock, loaded)
        elif lock.config_hash != config_hash(loaded.raw_bytes):
            raise LockfileError(
                f"{path} was built from another version of {loaded.path.name}; "
                "run `perstack install` to rebuild it"
            )
    except LockfileError as error:
        if frozen:
            raise LockfileError(f"{error} (--frozen)") from error
        logger.warning("%s; ignoring the lockfile: every skill starts with the run", error)
        return None
    return lock


# What decides the tools a skill offers; other fields (rule, lazyInit, …) may differ.
_TOOL_DECIDING_KEYS = (
    "type",
    "command",
    "packageName",
    "args",
    "endpoint",
    "pick",
    "omit",
    "tools",
)


def _check_skills_match(path: Path, lock: Lockfile, loaded: LoadedConfig) -> None:
    """For a lock without configHash: its skills must be the config's, or LockfileError."""
    for key, expert in loaded.config.experts.items():
        locked = lock.experts.get(key)
        if locked is None:
            raise LockfileError(f"{path} has no Expert {key!r}; run `perstack install`")
        configured = {
            name: config.model_dump(mode="json", by_alias=True, exclude_none=True)
            for name, config in expert.effective_skills().items()
        }
        if set(configured) != set(locked.skills):
            raise LockfileError(
                f"{path}: the skills of {key!r} differ from the config's; run `perstack install`"
            )
        for name, table in configured.items():
            field_name = _first_difference(name, table, locked.skills[name])
            if field_name is not None:
                raise LockfileError(
                    f'{path}: experts."{key}".skills."{name}".{field_name} differs from '
                    "the config's; run `perstack install`"
                )


# The built-in skill offers its tools whatever command, package or arguments name it.
_BASE_TOOL_DECIDING_KEYS = ("type", "pick", "omit")


def _first_difference(name: str, configured: dict[str, Any], locked: dict[str, Any]) -> str | None:
    keys = _BASE_TOOL_DECIDING_KEYS if name == BASE_SKILL_NAME else _TOOL_DECIDING_KEYS
    for field_name in keys:
        if _comparable(field_name, configured.get(field_name)) != _comparable(
            field_name, locked.get(field_name)
        ):
            return field_name
    return None


def _comparable(field_name: str, value: Any) -> Any:
    if field_name == "tools" and isinstance(value, dict):
        value = {tool: _without_own_name(tool, spec) for tool, spec in value.items()}
    return None if value in ([], {}, "") else value


def _without_own_name(tool: str, spec: Any) -> Any:
    """An interactive tool as the config has it: the reference's lock adds ``name``, its
    key."""
    if isinstance(spec, dict) and spec.get("name") == tool:
        return {k: v for k, v in spec.items() if k != "name"}
    return spec
