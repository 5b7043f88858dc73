"""The one declarative schema of `conveyor.yml`, as strict, frozen pydantic models.

These models describe the file as written (before `extends` is merged and matrices
are expanded); `conveyor.config.build` turns them into `conveyor.model` objects.
Fields that later features consume (inputs, outputs, reports, gates, artifacts,
caches, tools, requires) are validated here too, so the schema is designed once.
"""

from __future__ import annotations

import contextlib
import math
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from conveyor.units import parse_duration, parse_size, version_spec


def _one_or_many(value: Any) -> Any:
    """Accept a single string where a list of strings is meant."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        from conveyor.config.errors_map import describe

        raise ValueError(f"expected a string or a list of strings, got {describe(value)}")
    return value


def _scalar_to_str(value: Any) -> Any:
    """Env values may be written as numbers or booleans; they are strings to a process."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return ""
    return value


def _version_spec(value: Any) -> Any:
    """`node: 18` means the version 18; but `python: 3.10` is the number 3.1 to YAML, so
    a fractional number is refused with the fix rather than read as the wrong version."""
    if isinstance(value, bool):
        return value  # refused below as not a string
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(
            f"expected a quoted string: YAML read this as the number {value} (and 3.10 as "
            '3.1); write the range in quotes, e.g. ">=3.10"'
        )
    if isinstance(value, str):
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            SpecifierSet(version_spec(value))
        except InvalidSpecifier:
            raise ValueError(
                f"invalid version specifier {value!r}: write one such as '>=18', "
                "'>=3.11,<4', '==4.3.*' or a bare version such as '18' (meaning >=18)"
            ) from None
    return value


def _duration(value: Any) -> float:
    return parse_duration(value)


def _size(value: Any) -> int:
    return parse_size(value)


def _percent(value: Any) -> Any:
    if isinstance(value, str) and value.strip().endswith("%"):
        with contextlib.suppress(ValueError):
            value = float(value.strip()[:-1])
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("expected a percentage from 0 to 100, got NaN")
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _number(value: Any) -> Any:
    """An integer where a float is meant is fine (strict mode would refuse it)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


StrList = Annotated[list[str], BeforeValidator(_one_or_many)]
EnvValue = Annotated[str, BeforeValidator(_scalar_to_str)]
Duration = Annotated[float, BeforeValidator(_duration)]
Size = Annotated[int, BeforeValidator(_size)]
Percent = Annotated[float, BeforeValidator(_percent), Field(ge=0, le=100)]
Level = Literal["error", "warn"]
Name = Annotated[str, Field(min_length=1)]


def _group(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("a resource group needs a name")
        if len(value) > 200:
            raise ValueError(f"a resource group's name is at most 200 characters, got {len(value)}")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(f"a resource group's name must not hold control characters: {value!r}")
    return value


GroupName = Annotated[str, BeforeValidator(_group)]
VersionSpec = Annotated[str, BeforeValidator(_version_spec)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class RetryFile(Strict):
    max: Annotated[int, Field(ge=0, le=100)] = 0
    delay: Duration = 1.0
    backoff: Annotated[float, BeforeValidator(_number), Field(ge=1, le=100)] = 2.0
    max_delay: Duration = 60.0


def _retries(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return {"max": value}
    if not isinstance(value, dict):
        from conveyor.config.errors_map import describe

        raise ValueError(
            "expected a number of retries or a mapping (max, delay, backoff, max_delay), "
            f"got {describe(value)}"
        )
    return value


Retries = Annotated[RetryFile, BeforeValidator(_retries)]
Shell = Annotated[list[str], BeforeValidator(_one_or_many), Field(min_length=1)]


class Defaults(Strict):
    shell: Shell | None = None
    timeout: Duration | None = None
    retries: Retries | None = None


class ReportsFile(Strict):
    junit: StrList = Field(default_factory=list)
    coverage: StrList = Field(default_factory=list)
    sarif: StrList = Field(default_factory=list)
    codequality: StrList = Field(default_factory=list)


Count = Annotated[int, Field(ge=0, le=1_000_000_000)]


class TestsGateFile(Strict):
    max_failures: Count = 0
    level: Level = "error"


class CoverageGateFile(Strict):
    line: Percent | None = None
    branch: Percent | None = None
    diff: Percent | None = None
    diff_base: str | None = None
    level: Level = "error"


Severity = Literal["critical", "high", "medium", "low", "note"]


class FindingsGateFile(Strict):
    max: dict[Severity, Count] = Field(default_factory=dict)
    baseline: str | None = None
    level: Level = "error"
    severity: dict[str, Severity] = Field(default_factory=dict)
    """Overrides of the severity a tool reports: `{ruff: low, "ruff/S105": high}`."""

    @field_validator("severity")
    @classmethod
    def _severity_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            tool, sep, rule = key.partition("/")
            if not tool.strip():
                raise ValueError(
                    f"{key!r}: expected a tool name, or tool/rule (e.g. ruff or ruff/S105)"
                )
            if sep and not rule.strip():
                raise ValueError(
                    f"{key!r}: a rule is missing after '/' (e.g. {tool}/S105, or {tool} "
                    "for every rule of the tool)"
                )
        return value


VulnerabilitySeverity = Literal["critical", "high", "medium", "low", "none", "unknown"]


class VulnerabilitiesGateFile(Strict):
    """Known vulnerabilities of the lockfiles' packages, per severity (CVSS's ratings,
    and `unknown` for advisories that give none)."""

    max: dict[VulnerabilitySeverity, Count] = Field(default_factory=dict)
    baseline: str | None = None
    """A file of the vulnerabilities known (`conveyor gates --write-baseline`): only
    new ones count."""
    level: Level = "error"


class SizesGateFile(Strict):
    files: dict[str, Size] = Field(default_factory=dict)
    total: Size | None = None
    level: Level = "error"


class TimeGateFile(Strict):
    max: Duration
    level: Level = "error"


class CommandGateFile(Strict):
    run: str
    level: Level = "error"


class GatesFile(Strict):
    tests: TestsGateFile | None = None
    coverage: CoverageGateFile | None = None
    findings: FindingsGateFile | None = None
    sizes: SizesGateFile | None = None
    time: TimeGateFile | None = None
    commands: dict[str, CommandGateFile] = Field(default_factory=dict)
    vulnerabilities: VulnerabilitiesGateFile | None = None


class LicensesGateFile(Strict):
    """The workspace's dependencies judged by the `deps.licenses` policy."""

    level: Level = "error"


class PipelineGatesFile(GatesFile):
    """The pipeline's `gates:`: a job's, where the flaky tests' quarantine list is, and
    the gates on the workspace as a whole (its dependencies' licenses)."""

    quarantine: str | None = None
    licenses: LicensesGateFile | None = None


def _artifact_version(value: Any) -> Any:
    """`version: 2` is the version '2'; but `version: 1.10` is the number 1.1 to YAML,
    so a fractional number is refused with the fix. A mapping is validated here, so that
    its own error is said rather than "expected a string"."""
    if isinstance(value, bool):
        return value  # refused below
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(
            f"expected a quoted string: YAML read this as the number {value}; write the "
            "version in quotes, e.g. '1.10'"
        )
    if isinstance(value, dict):
        from pydantic import ValidationError

        try:
            return ArtifactVersionFile.model_validate(value)
        except ValidationError as exc:
            errors = exc.errors()
            first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
            where = ".".join(str(p) for p in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            if first["type"] == "extra_forbidden":
                message = "unknown key (valid keys: from, template)"
            elif first["type"] == "missing":
                message = "missing: say where the version comes from"
            raise ValueError(f"{where}: {message}" if where else message) from None
    return value


def _version_template(value: str) -> str:
    from conveyor.config.versions import check

    return check(value)


class ArtifactVersionFile(Strict):
    """`version: {from: git | pyproject.toml | package.json | Cargo.toml | PATH, template}`:
    the version taken from a source, `{{ version }}` in the template naming it."""

    from_: str = Field(alias="from")
    template: str = "{{ version }}"

    @field_validator("from_")
    @classmethod
    def _source(cls, value: str) -> str:
        from conveyor.config.versions import check_source

        return check_source(value)

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        from conveyor.config.versions import check

        return check(value, with_version=True)


class ArtifactKeepFile(Strict):
    """`keep: {last: N, per: branch}`: the newest N versions of the artifact (on each
    branch) are kept, older ones go when the store is pruned. `keep: {latest: true}`:
    the newest version on each branch outlives its `expire_in` (GitLab's "keep the
    artifacts of the most recent successful job")."""

    last: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    per: Literal["branch"] | None = None
    latest: bool = False

    @model_validator(mode="after")
    def _something(self) -> ArtifactKeepFile:
        if self.last is None and not self.latest:
            raise ValueError("keep needs `last: N` (the newest N are kept) or `latest: true`")
        if self.per is not None and self.last is None:
            raise ValueError("`per: branch` counts `last: N` per branch: give `last` too")
        return self


class ArtifactsFile(Strict):
    paths: StrList
    name: str | None = None
    version: Annotated[str | ArtifactVersionFile, BeforeValidator(_artifact_version)] | None = None
    keep: ArtifactKeepFile | None = None
    expire_in: Duration | None = None
    when: Literal["on_success", "on_failure", "always"] = "on_success"
    type: Literal[
        "application",
        "library",
        "package",
        "container",
        "deployment-manifest",
        "documentation",
        "report",
        "other",
    ] = "application"

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | ArtifactVersionFile | None) -> str | ArtifactVersionFile | None:
        if isinstance(value, str):
            return _version_template(value)
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        from conveyor.config.versions import NAME

        if value is not None and "${{" not in value and not NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an artifact name: letters, digits and . _ - (at most "
                "128, starting with a letter or digit)"
            )
        return value


class ArtifactStoreFile(Strict):
    """The pipeline's `artifacts:`: where versions are stored, and which channels keep a
    version for good."""

    dir: str | None = None
    protected_channels: StrList = Field(default_factory=lambda: ["prod"])
    signing_key: str | None = None

    @field_validator("protected_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", name):
                raise ValueError(
                    f"{name!r} is not a channel name: lower-case letters, digits and _ . -"
                )
        return value


def _artifacts(value: Any) -> Any:
    if isinstance(value, str | list):
        return {"paths": value}
    return value


class CacheFile(Strict):
    key: Name
    paths: Annotated[StrList, Field(min_length=1)]
    restore_keys: StrList = Field(default_factory=list)


def _exit_codes(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    return value


class AllowFailureFile(Strict):
    """`allow_failure`: `true`, or `{exit_codes: [137, 255]}` (only those allowed)."""

    allowed: bool = True
    exit_codes: Annotated[
        list[Annotated[int, Field(ge=1, le=255)]], BeforeValidator(_exit_codes)
    ] = Field(default_factory=list)


def _allow_failure(value: Any) -> Any:
    if isinstance(value, bool):
        return {"allowed": value}
    if (
        isinstance(value, dict)
        and "allowed" not in value
        and value.get("exit_codes")
        not in (
            None,
            [],
        )
    ):
        return value
    from conveyor.config.errors_map import describe

    raise ValueError(
        "expected true, false or a mapping {exit_codes: CODE or [CODE, ...]} (1-255), "
        f"got {describe(value)}"
    )


AllowFailure = Annotated[AllowFailureFile, BeforeValidator(_allow_failure)]


class JobFile(Strict):
    """One entry under `jobs:`; every key is optional here because a job may get it
    from the template it `extends` (checked after merging)."""

    description: str | None = None
    extends: StrList = Field(default_factory=list)
    run: Annotated[StrList, Field(min_length=1)] | None = None
    shell: Shell | None = None
    stage: str | None = None
    needs: StrList | None = None
    matrix: dict[str, Any] | None = None
    if_: str | None = Field(default=None, alias="if")
    when: Literal["on_success", "on_failure", "always", "manual"] | None = None
    finally_: Annotated[StrList, Field(min_length=1)] | None = Field(default=None, alias="finally")
    env: dict[str, EnvValue] = Field(default_factory=dict)
    pass_env: StrList = Field(default_factory=list)
    secrets: StrList = Field(default_factory=list)
    dir: str | None = None
    timeout: Duration | None = None
    retries: Retries | None = None
    allow_failure: AllowFailure = AllowFailureFile(allowed=False)
    inputs: StrList = Field(default_factory=list)
    outputs: StrList = Field(default_factory=list)
    reports: ReportsFile | None = None
    gates: GatesFile | None = None
    artifacts: Annotated[ArtifactsFile, BeforeValidator(_artifacts)] | None = None
    caches: list[CacheFile] = Field(default_factory=list)
    tools: dict[str, str] = Field(default_factory=dict)
    # None: not said. A job with `secrets:` then talks to the outside world (a deploy, a
    # publish) and is not cached behind the user's back (issue 10); see config.build.
    cache: bool | None = None
    requires: dict[str, VersionSpec] = Field(default_factory=dict)
    resource_group: GroupName | None = None
    executor: Literal["local", "remote"] | None = None
    """Where the job runs: here, or on the remote's workers (REAPI Execute); unset, as
    `remote.execute` says."""
    platform: dict[str, EnvValue] = Field(default_factory=dict)
    """REAPI platform properties a remote worker must have (OSFamily, container-image,
    pool...)."""


class HistoryFile(Strict):
    url: str | None = None
    keep_runs: Annotated[int, Field(ge=1, le=1_000_000_000)] = 200

    @field_validator("url")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(sqlite|postgresql)(\+\w+)?://", value):
            raise ValueError(
                f"expected a database URL (postgresql+psycopg://user@host/db or "
                f"sqlite:///path), got {value!r}"
            )
        return value


class SecretsCheckFile(Strict):
    baseline: str | None = None
    exclude: StrList = Field(default_factory=list)
    level: Level = "error"


def _secrets(value: Any) -> Any:
    if value is True:
        return {}
    if value is False or isinstance(value, dict):
        return value
    from conveyor.config.errors_map import describe

    raise ValueError(
        f"expected true, false or a mapping (baseline, exclude, level), got {describe(value)}"
    )


def _manifests(value: Any) -> Any:
    if isinstance(value, bool | str | list):
        return value
    from conveyor.config.errors_map import describe

    raise ValueError(f"expected true, false or a list of globs, got {describe(value)}")


class AfterChecksFile(Strict):
    required: StrList = Field(default_factory=list)
    forbidden: StrList = Field(default_factory=list)
    max_size: dict[str, Size] = Field(default_factory=dict)
    report: str | None = None
    level: Level = "error"


class ChecksFile(Strict):
    """`checks:`: what is verified before the first job starts, and after the last."""

    disk: Size | None = None
    env: StrList = Field(default_factory=list)
    manifests: Annotated[bool | StrList, BeforeValidator(_manifests)] = False
    lockfiles: bool = False
    secrets: Annotated[SecretsCheckFile | Literal[False], BeforeValidator(_secrets)] | None = None
    after: AfterChecksFile | None = None


MATRIX_LIMIT = 10_000
"""Instances one job's matrix may expand to, unless `limits: {matrix: N}` says otherwise."""


class LimitsFile(Strict):
    """`limits:`: how large the file may make things, for files generated by programs."""

    matrix: Annotated[int, Field(ge=1, le=1_000_000)] = MATRIX_LIMIT


class RemoteAuthFile(Strict):
    header: str = "authorization"
    """gRPC metadata keys are lower case."""
    env: str
    """The variable holding the header's value (e.g. "Bearer ..."), never the value."""

    @field_validator("header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", value) or value.endswith("-bin"):
            raise ValueError(
                f"expected a gRPC metadata key in lower case (authorization, "
                f"x-buildbuddy-api-key), got {value!r}"
            )
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(
                f"expected the name of the environment variable holding the credential "
                f"(e.g. REMOTE_CACHE_TOKEN), got {value!r}: never the credential itself"
            )
        return value


class RemoteFile(Strict):
    """`remote:`: a REAPI cache shared by the team (BuildGrid, Buildbarn, BuildBuddy)."""

    url: str
    instance_name: str = ""
    upload: bool = False
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    auth: RemoteAuthFile | None = None
    timeout: Annotated[Duration, Field(gt=0, le=3600)] = 60.0
    retries: Annotated[int, Field(ge=0, le=20)] = 3
    execute: bool = False
    """Run every job that can on the server's workers (a job's `executor:` overrides)."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        from conveyor.config.remote import url_problem

        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _tls(self) -> RemoteFile:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together (mutual TLS): give both")
        if self.url.startswith("grpc://") and (self.ca_file or self.client_cert):
            raise ValueError("ca_file and client_cert need TLS: use a grpcs:// url")
        return self


class DepsIgnoreFile(Strict):
    """One advisory set aside by `deps audit` and the vulnerabilities gate, and why."""

    id: Name
    """The advisory (any of its aliases: GHSA-..., PYSEC-..., CVE-...)."""
    reason: Name
    until: date | None = None
    """After this day the advisory counts again (an exception that expires)."""


class DepsLicensesFile(Strict):
    allow: StrList = Field(default_factory=list)
    """SPDX license identifiers allowed; when given, any other license fails the gate."""
    deny: StrList = Field(default_factory=list)
    """SPDX license identifiers refused, whatever `allow` says."""
    overrides: dict[str, str] = Field(default_factory=dict)
    """Package name -> the SPDX expression to use for it: for a package whose metadata
    names no license, or names it wrongly (`{left-pad: MIT}`)."""

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expression in value.items():
            if not name.strip():
                raise ValueError("expected a package name as the key")
            if not expression.strip():
                raise ValueError(
                    f"{name!r}: expected an SPDX license expression (e.g. MIT, or "
                    "MIT OR Apache-2.0)"
                )
        return value


class DepsRegistriesFile(Strict):
    pypi: str | None = None
    """A PyPI-compatible index: its simple API (`.../simple`, as pip's index-url), or a
    base URL that offers the JSON API (`<url>/pypi/<name>/json`)."""
    npm: str | None = None
    """An npm-compatible registry (`<url>/<name>`)."""


class DepsFile(Strict):
    """`deps:`: the policy of `conveyor deps` and of the vulnerabilities and licenses
    gates."""

    ignore: list[DepsIgnoreFile] = Field(default_factory=list)
    licenses: DepsLicensesFile = DepsLicensesFile()
    registries: DepsRegistriesFile = DepsRegistriesFile()


class PipelineFile(Strict):
    version: Literal[1] = 1
    name: str = ""
    env: dict[str, EnvValue] = Field(default_factory=dict)
    vars: dict[str, EnvValue] = Field(default_factory=dict)
    """Plain configuration for `${{ vars.NAME }}`; `conveyor run --var NAME=VALUE` overrides."""
    defaults: Defaults = Defaults()
    stages: list[Name] = Field(default_factory=list)
    jobs: dict[str, dict[str, Any]]
    gates: PipelineGatesFile | None = None
    requires: dict[str, VersionSpec] = Field(default_factory=dict)
    history: HistoryFile | None = None
    remote: RemoteFile | None = None
    checks: ChecksFile | None = None
    limits: LimitsFile = LimitsFile()
    deps: DepsFile | None = None
    artifacts: ArtifactStoreFile | None = None


def model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The schema model that a (job-relative or top-level) location falls in, if any.

    Used to list the valid keys next to an 'unknown key' error.
    """
    import typing

    cls: Any = JobFile if loc and loc[0] == "<job>" else PipelineFile
    parts = loc[1:] if loc and loc[0] == "<job>" else loc
    for part in parts:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return None
        if not isinstance(part, str):
            return None
        field = next((f for n, f in cls.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        ann: Any = field.annotation
        # Peel Optional/Annotated/containers down to a model class if there is one.
        for _ in range(6):
            origin = typing.get_origin(ann)
            if origin is None:
                break
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if origin is typing.Annotated:
                ann = args[0]
            elif origin is dict:
                ann = args[-1]
            elif args:
                ann = args[0]
            else:
                break
        cls = ann
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def keys_of(cls: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in cls.model_fields.items()]
