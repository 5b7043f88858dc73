"""The requirements hand-off (`build_requirements:`, the build orchestrator's input format)
read into typed values, each remembering where it was written; a mistake is one
`file:line:col` error with what would be right (config.loader places it)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from conveyor.config.loader import locate, parse_yaml, read_text, relpath
from conveyor.errors import ConfigError, ConfigPath

PROJECT_TYPES = (
    "web_app",
    "api",
    "mobile",
    "microservices",
    "library",
    "cli",
    "service",
    "desktop",
)
KEYS = (
    "project",
    "project_type",
    "tech_stack",
    "languages",
    "frameworks",
    "tools",
    "targets",
    "performance_targets",
    "quality_gates",
    "environments",
    "deployment_targets",
)
_STACK_KEYS = ("languages", "frameworks", "tools")
PERCENT_GATES = frozenset(
    {"test_coverage", "coverage", "code_coverage", "line_coverage", "test_pass_rate", "tests"}
)
SIZE_GATES = frozenset({"bundle_size", "artifact_size", "max_size"})
_SIZE = re.compile(r"\s*(?:<=|<|max)?\s*(\d+(?:\.\d+)?\s*[KMGT]?i?B)\s*", re.IGNORECASE)
_TIME = re.compile(
    r"\s*(?:<=|<|under|within|max(?:imum)?)?\s*(\d+(?:\.\d+)?)\s*"
    r"(ms|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\s*",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"\s*(?:>=|>|at least|min(?:imum)?)?\s*(\d+(?:\.\d+)?)\s*%?\s*", re.I)


@dataclass(frozen=True)
class Item:
    """One value of the file and where it is (its config path, placed on error)."""

    value: Any
    path: ConfigPath


@dataclass
class Requirements:
    """The hand-off: every list keeps each item's place, for the report."""

    file: str
    text: str
    project: str | None = None
    project_type: Item | None = None
    languages: list[Item] = field(default_factory=list)
    frameworks: list[Item] = field(default_factory=list)
    tools: list[Item] = field(default_factory=list)
    targets: list[Item] = field(default_factory=list)
    performance: dict[str, Item] = field(default_factory=dict)
    quality: dict[str, Item] = field(default_factory=dict)
    environments: list[Item] = field(default_factory=list)

    def where(self, path: ConfigPath) -> str:
        """'file:line:col' of a value, for the report."""
        err = locate(ConfigError("", path=path), self.text, self.file)
        return f"{err.file}:{err.line}:{err.col}"


def load(path: str) -> Requirements:
    """The hand-off at `path`; ConfigError located in it when it is not one."""
    import os

    shown = relpath(os.path.abspath(path))
    if not os.path.isfile(path):
        raise ConfigError(
            "file not found",
            file=shown,
            hint="give the requirements hand-off: a YAML file with a top-level "
            "'build_requirements' mapping",
        )
    text = read_text(os.path.abspath(path), shown)
    try:
        return _read(parse_yaml(text, shown), shown, text)
    except ConfigError as exc:
        raise locate(exc, text, shown) from None


def _read(data: Any, file: str, text: str) -> Requirements:
    if not isinstance(data, dict) or "build_requirements" not in data:
        raise ConfigError(
            "expected a mapping with a top-level 'build_requirements' key",
            hint="the hand-off format: build_requirements: {project_type, tech_stack, "
            "performance_targets, quality_gates, environments}",
        )
    body = data["build_requirements"]
    top: ConfigPath = ("build_requirements",)
    if not isinstance(body, dict):
        raise ConfigError("expected a mapping", path=top)
    out = Requirements(file=file, text=text)
    for key, value in body.items():
        here = (*top, str(key))
        if key not in KEYS:
            raise ConfigError(
                f"unknown key {key!r}{_did_you_mean(str(key), KEYS)}",
                path=here,
                at_key=True,
                hint="valid keys here: " + ", ".join(KEYS),
            )
        _field(out, str(key), value, here)
    return out


def _field(out: Requirements, key: str, value: Any, here: ConfigPath) -> None:
    if key == "project":
        out.project = _text(value, here)
    elif key == "project_type":
        name = _text(value, here)
        if name not in PROJECT_TYPES:
            raise ConfigError(
                f"unknown project type {name!r}{_did_you_mean(name, PROJECT_TYPES)}",
                path=here,
                hint="one of " + ", ".join(PROJECT_TYPES),
            )
        out.project_type = Item(name, here)
    elif key == "tech_stack":
        if isinstance(value, dict):
            for sub, items in value.items():
                if sub not in _STACK_KEYS:
                    raise ConfigError(
                        f"unknown key {sub!r}{_did_you_mean(str(sub), _STACK_KEYS)}",
                        path=(*here, str(sub)),
                        at_key=True,
                        hint="valid keys here: " + ", ".join(_STACK_KEYS),
                    )
                getattr(out, str(sub)).extend(_texts(items, (*here, str(sub))))
        else:
            # A flat list mixes languages, frameworks and tools: `plan` sorts them.
            out.tools.extend(_texts(value, here))
    elif key in ("languages", "frameworks", "tools", "targets"):
        getattr(out, key).extend(_texts(value, here))
    elif key in ("environments", "deployment_targets"):
        names = list(value) if isinstance(value, dict) else value
        items = _texts(names, here)
        for item in items:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", item.value):
                raise ConfigError(
                    f"environment name {item.value!r}: use letters, digits and _ . -",
                    path=item.path,
                )
        out.environments.extend(items)
    elif key == "performance_targets":
        for name, v in _mapping(value, here).items():
            out.performance[name] = Item(v, (*here, name))
            duration(out.performance[name])  # every target is a time: checked here
    elif key == "quality_gates":
        for name, v in _mapping(value, here).items():
            item = out.quality[name] = Item(v, (*here, name))
            if name.lower() in PERCENT_GATES:
                percentage(item)
            elif name.lower() in SIZE_GATES:
                size(item)


def _text(value: Any, path: ConfigPath) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"expected a non-empty string, got {_kind(value)}", path=path)
    return value.strip()


def _texts(value: Any, path: ConfigPath) -> list[Item]:
    if isinstance(value, str):
        return [Item(value.strip(), path)]
    if not isinstance(value, list):
        raise ConfigError(f"expected a list of strings, got {_kind(value)}", path=path)
    return [Item(_text(v, (*path, i)), (*path, i)) for i, v in enumerate(value)]


def _mapping(value: Any, path: ConfigPath) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"expected a mapping, got {_kind(value)}", path=path)
    return {str(k): v for k, v in value.items()}


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return "a list" if isinstance(value, list) else "a mapping"


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def duration(item: Item) -> str:
    """'<10 minutes', '5m', '90 s', 600 as a Conveyor duration ('10m'); ConfigError at
    the value otherwise."""
    value = item.value
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return f"{value:g}s"
    m = _TIME.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ConfigError(
            f"expected a time limit such as '<10 minutes' or '90s', got {_kind(value)}",
            path=item.path,
        )
    unit = m.group(2).lower()
    short = "ms" if unit == "ms" else unit[0]
    return f"{m.group(1)}{short}"


def percentage(item: Item) -> float:
    """'>90%', '90', 85.5 as a percentage; ConfigError at the value otherwise."""
    value = item.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        m = _PERCENT.fullmatch(value) if isinstance(value, str) else None
        if m is None:
            raise ConfigError(
                f"expected a percentage such as '>90%', got {_kind(value)}", path=item.path
            )
        number = float(m.group(1))
    if not 0 <= number <= 100:
        raise ConfigError(f"{number:g}% is not between 0 and 100", path=item.path)
    return number


def size(item: Item) -> str:
    """'<500KB', '5 MB' as a Conveyor size ('500KB'); ConfigError at the value otherwise."""
    from conveyor.units import parse_size

    m = _SIZE.fullmatch(item.value) if isinstance(item.value, str) else None
    if m is None:
        raise ConfigError(
            f"expected a size such as '<500KB', got {_kind(item.value)}", path=item.path
        )
    text = m.group(1).replace(" ", "")
    try:
        parse_size(text)
    except ValueError as exc:
        raise ConfigError(str(exc), path=item.path) from None
    return text
