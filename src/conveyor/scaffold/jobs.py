"""A job as `conveyor init` writes it (`JobSpec`: the keys, and why each choice was made)
and its YAML text. The text is written by hand, not by a YAML library, so that every job
and key can carry the comment that explains it; strings are quoted as JSON, which YAML
reads as double-quoted scalars, so nothing written can be misread (`on`, `3.10`, `*`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

STAGES = ("setup", "lint", "test", "build", "security", "package", "deploy")
"""The stages written: each job also lists its `needs`, so the stages only document
the order (lint and test run side by side, both after setup)."""


@dataclass
class JobSpec:
    """One job to write; `why` is the comment above it, `notes` comments on its keys."""

    name: str
    stage: str
    run: list[str]
    why: str
    needs: list[str] | None = None
    dir: str = "."
    description: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    pass_env: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    caches: list[dict[str, Any]] = field(default_factory=list)
    reports: dict[str, Any] = field(default_factory=dict)
    gates: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] | None = None
    matrix: dict[str, list[str]] = field(default_factory=dict)
    timeout: str | None = None
    allow_failure: bool = False
    cache: bool | None = None
    when: str | None = None
    condition: str | None = None
    notes: dict[str, str] = field(default_factory=dict)
    """A comment for a key, written at the end of its line."""


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_YAML_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"})


def scalar(value: Any) -> str:
    """A value as YAML: plain when it cannot be misread, else a JSON string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def flow(value: Any) -> str:
    """A list or mapping on one line (`[a, b]`, `{max: 0}`)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


def comment(text: str, indent: str) -> list[str]:
    """Comment lines, wrapped at about 88 columns."""
    import textwrap

    width = max(40, 88 - len(indent) - 2)
    return [f"{indent}# {line}" for line in textwrap.wrap(text, width)] if text else []


def render(job: JobSpec) -> list[str]:
    """The job's lines, indented under `jobs:`."""
    out = comment(job.why, "  ")
    out.append(f"  {scalar(job.name)}:")
    key = "    "

    def line(name: str, value: str) -> None:
        note = job.notes.get(name)
        out.append(f"{key}{name}: {value}" + (f"  # {note}" if note else ""))

    if job.description:
        line("description", scalar(job.description))
    line("stage", scalar(job.stage))
    if job.needs is not None:
        line("needs", flow(job.needs))
    if job.condition:
        line("if", scalar(job.condition))
    if job.when:
        line("when", scalar(job.when))
    if job.dir != ".":
        line("dir", scalar(job.dir))
    if job.matrix:
        line("matrix", flow(job.matrix))
    for name, mapping in (("env", job.env),):
        if mapping:
            line(name, flow(mapping))
    if job.pass_env:
        line("pass_env", flow(job.pass_env))
    if job.timeout:
        line("timeout", scalar(job.timeout))
    if job.allow_failure:
        line("allow_failure", "true")
    if job.cache is not None:
        line("cache", scalar(job.cache))
    if job.inputs:
        line("inputs", flow(job.inputs))
    if job.outputs:
        line("outputs", flow(job.outputs))
    if job.caches:
        out.extend(_caches(job))
    if job.reports:
        line("reports", flow(job.reports))
    if job.gates:
        line("gates", flow(job.gates))
    if job.artifacts:
        line("artifacts", flow(job.artifacts))
    if len(job.run) == 1:
        line("run", scalar(job.run[0]))
    else:
        out.append(f"{key}run:")
        out.extend(f"{key}  - {scalar(command)}" for command in job.run)
    return out


def _caches(job: JobSpec) -> list[str]:
    note = job.notes.get("caches")
    out = ["    caches:" + (f"  # {note}" if note else "")]
    for entry in job.caches:
        out.append(f"      - key: {scalar(entry['key'])}")
        if entry.get("restore_keys"):
            out.append(f"        restore_keys: {flow(entry['restore_keys'])}")
        out.append(f"        paths: {flow(entry['paths'])}")
    return out
