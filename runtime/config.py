"""perstack.toml: the models, discovery, env files, and errors a person can act on.

Keys are exactly as written in the files (camelCase). Unknown keys are errors that name the
file, the key path and the closest known key, except for the few slips and newer keys of
the reference's own configs that ``runtime.config_compat`` accepts with a warning.

``delegates`` may name Experts the file does not define (the reference resolves them from
its registry, which this runtime does not): that is an error only when such an Expert would
be run, so the other Experts of the file still load and run.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from runtime.config_compat import tolerate_reference_keys
from runtime.errors import ConfigError

logger = logging.getLogger(__name__)

CONFIG_FILE_NAME = "perstack.toml"
BASE_SKILL_NAME = "@perstack/base"
DEFAULT_MAX_STEPS = 100
DEFAULT_MAX_RETRIES = 5
DEFAULT_TIMEOUT_MS = 300_000
DEFAULT_ENV_PATHS = (".env", ".env.local")
DEFAULT_EXPERT_VERSION = "1.0.0"
# Matches the reference's domain patterns: an exact name or a `*.` wildcard prefix.
_DOMAIN_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"
DOMAIN_PATTERN = rf"^(\*\.)?{_DOMAIN_LABEL}(\.{_DOMAIN_LABEL})*\.?$"


class _ConfigModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        # `maxSteps = "5"` or `= true` is a mistake to report, not a value to guess.
        strict=True,
    )


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """HTTPS anywhere, plain HTTP only to a loopback host (local gateways and tests)."""
    parsed = urlparse(url)
    if parsed.scheme == "https" and parsed.hostname:
        return url
    if parsed.scheme == "http" and parsed.hostname and _is_loopback_host(parsed.hostname):
        return url
    raise ValueError(
        f"{url!r} must be an https:// URL (plain http:// is allowed only to localhost/127.0.0.1)"
    )


class ProviderSetting(_ConfigModel):
    base_url: str | None = None
    headers: dict[str, str] | None = None
    # Ours, for the offline `scripted` provider: the script file, relative to the config.
    script: str | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url_is_safe(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)


ProviderName = Literal[
    "anthropic",
    "scripted",
    "google",
    "openai",
    "ollama",
    "azure-openai",
    "amazon-bedrock",
    "google-vertex",
    "deepseek",
]
SUPPORTED_PROVIDERS: tuple[str, ...] = ("anthropic", "scripted")


class ProviderTable(_ConfigModel):
    provider_name: ProviderName
    # Other providers' settings have keys of their own (region, project, …): keep them
    # loadable; only anthropic's and scripted's are used, and checked by `parse_config`
    # (there, so that errors name `provider.setting.<key>`).
    setting: dict[str, Any] | None = None

    def typed_setting(self) -> ProviderSetting:
        return ProviderSetting.model_validate(self.setting or {})


class _SkillCommon(_ConfigModel):
    description: str | None = None
    rule: str | None = None
    pick: list[str] = Field(default_factory=list)
    omit: list[str] = Field(default_factory=list)
    allowed_domains: list[Annotated[str, Field(pattern=DOMAIN_PATTERN)]] = Field(
        default_factory=list
    )
    lazy_init: bool = True


class McpStdioSkill(_SkillCommon):
    type: Literal["mcpStdioSkill"]
    command: str
    package_name: str | None = None
    args: list[str] = Field(default_factory=list)
    required_env: list[str] = Field(default_factory=list)


class McpSseSkill(_SkillCommon):
    type: Literal["mcpSseSkill"]
    endpoint: str

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_safe(cls, value: str) -> str:
        return check_base_url(value)


class InteractiveTool(_ConfigModel):
    description: str | None = None
    input_json_schema: str


class InteractiveSkill(_ConfigModel):
    type: Literal["interactiveSkill"]
    description: str | None = None
    rule: str | None = None
    tools: dict[str, InteractiveTool]


SkillConfig = Annotated[McpStdioSkill | McpSseSkill | InteractiveSkill, Field(discriminator="type")]


def _whole_number(value: Any) -> Any:
    """The reference's numbers are JSON numbers: `maxSteps = 10.0` means 10 (10.5 stays an
    error)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]


def default_base_skill() -> McpStdioSkill:
    return McpStdioSkill(
        type="mcpStdioSkill",
        description="Base skill",
        command="npx",
        args=["-y", BASE_SKILL_NAME],
        lazy_init=False,
    )


class ExpertConfig(_ConfigModel):
    version: str = DEFAULT_EXPERT_VERSION
    min_runtime_version: str | None = None
    description: str | None = None
    instruction: str
    skills: dict[str, SkillConfig] | None = None
    delegates: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    def effective_skills(self) -> dict[str, SkillConfig]:
        """The skills table, or `@perstack/base` alone when the Expert declares none, in
        the reference's words (its expertSchema default), so that a lock either runtime
        builds has the same entry; ours runs built in whatever the command says."""
        if self.skills is None:
            return {BASE_SKILL_NAME: default_base_skill()}
        return dict(self.skills)


ReasoningBudget = int | Literal["none", "minimal", "low", "medium", "high"]
REASONING_BUDGET_TOKENS: dict[str, int | None] = {
    "none": None,
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 32768,
}
# The most tokens one generation may write (thinking included): the runtime's max_tokens.
MAX_OUTPUT_TOKENS = 64_000
# The Messages API refuses a thinking budget below this.
MIN_REASONING_BUDGET = 1024


def check_reasoning_budget(value: object) -> object:
    """A level name, 0 (no extended thinking), or a token count the API accepts: at least
    MIN_REASONING_BUDGET and less than the generation's MAX_OUTPUT_TOKENS."""
    if value is None or (isinstance(value, str) and value in REASONING_BUDGET_TOKENS):
        return value
    value = _whole_number(value)  # 2048.0 is 2048, as for the other numbers
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(_budget_rule())
    if value == 0 or MIN_REASONING_BUDGET <= value < MAX_OUTPUT_TOKENS:
        return value
    raise ValueError(_budget_rule())


def _budget_rule() -> str:
    levels = ", ".join(f'"{name}"' for name in REASONING_BUDGET_TOKENS)
    return (
        f"must be one of {levels}, or a number of tokens from {MIN_REASONING_BUDGET} to "
        f"{MAX_OUTPUT_TOKENS - 1} (the most one generation may write is {MAX_OUTPUT_TOKENS}); "
        "0 turns extended thinking off"
    )


class PerstackConfig(_ConfigModel):
    model: str | None = None
    reasoning_budget: ReasoningBudget | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    runtime: str | None = None
    max_steps: WholeNumber | None = Field(default=None, ge=1)
    max_retries: WholeNumber | None = Field(default=None, ge=0)
    # ms per generation; 0 is the reference's too: every generation times out at once.
    timeout: WholeNumber | None = Field(default=None, ge=0)
    env_path: list[str] | None = None
    provider: ProviderTable | None = None
    experts: dict[str, ExpertConfig] = Field(default_factory=dict)
    perstack_api_base_url: str | None = None
    perstack_base_skill_command: list[str] | None = None

    @field_validator("reasoning_budget", mode="before")
    @classmethod
    def _budget_is_usable(cls, value: object) -> object:
        return check_reasoning_budget(value)


class LoadedConfig(BaseModel):
    """A parsed config and where it came from (relative paths in it resolve against ``root``)."""

    model_config = ConfigDict(frozen=True)

    path: Path
    config: PerstackConfig
    raw_bytes: bytes

    @property
    def root(self) -> Path:
        return self.path.parent

    def expert(self, key: str) -> ExpertConfig:
        try:
            return self.config.experts[key]
        except KeyError:
            known = ", ".join(sorted(self.config.experts)) or "none"
            raise ConfigError(
                f"{self.path}: no Expert named {key!r} (experts defined: {known}); "
                f'add an [experts."{key}"] table or pick one of those'
            ) from None

    def check_delegates(self, expert_key: str) -> None:
        """ConfigError when ``expert_key`` or an Expert it may delegate to, at any depth,
        names a delegate this file does not define."""
        pending, seen = [expert_key], set()
        while pending:
            key = pending.pop()
            if key in seen:
                continue
            seen.add(key)
            for delegate in self.expert(key).delegates:
                if delegate not in self.config.experts:
                    raise ConfigError(
                        f'{self.path}: experts."{key}".delegates names {delegate!r}, which is '
                        "not defined in this file (this runtime has no Expert registry); "
                        f'define [experts."{delegate}"] or remove it from delegates'
                    )
                pending.append(delegate)


def find_config(explicit: str | os.PathLike[str] | None, cwd: Path | None = None) -> Path:
    """``--config`` if given, else the nearest perstack.toml from the working directory up."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found; check the --config path")
        return path.resolve()
    start = (cwd or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILE_NAME} found in {start} or any parent folder; "
        "create one or pass --config PATH"
    )


def load_config(path: Path) -> LoadedConfig:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config: {error.strerror}") from error
    return parse_config(raw, path)


def parse_config(raw: bytes, path: Path) -> LoadedConfig:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason}); save it as UTF-8") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error
    data = tolerate_reference_keys(data, path)
    try:
        config = PerstackConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(path, error, data)) from error
    _check_provider_setting(path, config, data)
    return LoadedConfig(path=path, config=config, raw_bytes=raw)


def _check_provider_setting(path: Path, config: PerstackConfig, data: Any) -> None:
    """The [provider.setting] of a provider this runtime speaks, typed."""
    table = config.provider
    if table is None or table.provider_name not in SUPPORTED_PROVIDERS:
        return
    try:
        table.typed_setting()
    except ValidationError as error:
        prefix = ("provider", "setting")
        raise ConfigError(describe_validation_error(path, error, data, prefix)) from error


_SKILL_TAGS = {"mcpStdioSkill", "mcpSseSkill", "interactiveSkill"}
# Tables whose keys are user-chosen names, quoted in messages as in the file.
_TABLES_OF_NAMES = {"experts", "skills", "tools", "headers"}


def _key_path(loc: tuple[int | str, ...]) -> tuple[str, list[int | str]]:
    """Render a pydantic location as TOML keys, dropping union tags that pydantic inserts."""
    parts: list[int | str] = [p for p in loc if not (isinstance(p, str) and p in _SKILL_TAGS)]
    rendered: list[str] = []
    previous: int | str | None = None
    for part in parts:
        if isinstance(part, int):
            rendered.append(f"[{part}]")
        elif previous in _TABLES_OF_NAMES or not part.isidentifier():
            rendered.append(("." if rendered else "") + f'"{part}"')
        else:
            rendered.append(("." if rendered else "") + part)
        previous = part
    return "".join(rendered) or "(top level)", parts


def _known_keys(data: Any, parts: list[int | str]) -> list[str]:
    """The keys the model accepts at the parent of ``parts`` (for 'did you mean')."""
    model: Any = PerstackConfig
    node: Any = data
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node.get(part)
        if model is None:
            return []
        model = _child_model(model, part, node)
    if model is None or not hasattr(model, "model_fields"):
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _child_model(model: Any, part: int | str, node: Any) -> Any:
    mapping: dict[Any, Any] = {
        (PerstackConfig, "experts"): "EXPERTS",
        (PerstackConfig, "provider"): ProviderTable,
        (ProviderTable, "setting"): ProviderSetting,
    }
    if model == "EXPERTS":
        return ExpertConfig
    if model is ExpertConfig and part == "skills":
        return "SKILLS"
    if model == "SKILLS":
        tag = node.get("type") if isinstance(node, dict) else None
        return {
            "mcpStdioSkill": McpStdioSkill,
            "mcpSseSkill": McpSseSkill,
            "interactiveSkill": InteractiveSkill,
        }.get(str(tag))
    return mapping.get((model, part))


def describe_validation_error(
    path: Path, error: ValidationError, data: Any, prefix: tuple[str, ...] = ()
) -> str:
    """One line per error; ``prefix`` is where the validated table sits in the file."""
    lines = []
    for item in error.errors():
        where, parts = _key_path((*prefix, *item["loc"]))
        kind = item["type"]
        if kind == "extra_forbidden":
            key = str(parts[-1])
            parent, _ = _key_path(tuple(parts[:-1]))
            close = difflib.get_close_matches(key, _known_keys(data, parts), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else "; remove it"
            lines.append(f"{path}: {parent}: unknown key {key!r}{hint}")
        elif kind == "missing":
            lines.append(f"{path}: {where}: required key is missing; add it")
        elif kind == "union_tag_invalid" or kind == "union_tag_not_found":
            lines.append(
                f"{path}: {where}: skill 'type' must be one of "
                "mcpStdioSkill, mcpSseSkill, interactiveSkill"
            )
        else:
            value = item.get("input")
            shown = f" (got {value!r})" if not isinstance(value, dict | list) else ""
            message = item["msg"].removeprefix("Value error, ")  # our own validators' text
            lines.append(f"{path}: {where}: {message}{shown}")
    return "\n".join(lines)


def load_env_files(loaded: LoadedConfig, extra: list[str] | None = None) -> list[Path]:
    """Load ``envPath`` files (default .env, .env.local; relative to the config's folder),
    then any given with ``--env-path`` (relative to the working directory, as any path on
    a command line). Variables already set in the environment are never overridden."""
    from dotenv import dotenv_values

    files = [
        (loaded.root / name, False) for name in loaded.config.env_path or DEFAULT_ENV_PATHS
    ] + [(Path(name).absolute(), True) for name in extra or []]
    loaded_paths = []
    for env_file, named_on_command_line in files:
        if not env_file.is_file():
            if named_on_command_line:
                raise ConfigError(f"{env_file}: env file not found; check --env-path")
            continue
        try:
            values = dotenv_values(env_file)
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"{env_file}: cannot read the env file ({error}); save it as UTF-8 text"
            ) from error
        for key, value in values.items():
            if value is not None and key not in os.environ:
                os.environ[key] = value
        loaded_paths.append(env_file)
        logger.debug("loaded env file %s", env_file)
    return loaded_paths
