"""The grammar of an artifact's `version:` (conveyor.yml's `artifacts.version`), shared by
the file's validation (a bad template is a located error before anything runs) and by
`conveyor.artifacts.versioning`, which renders it when a job's artifacts are stored.

A version is a literal (`1.4.0`) or a template whose `{{ name }}` fields are filled in
from the run: `1.4.{{ run_number }}`, `{{ date }}-{{ short_commit }}`. Conveyor's own
`${{ ... }}` expressions are another thing, filled in when the run is planned; they are
left alone here. `version: {from: SOURCE}` takes the version from git (`git describe`)
or the project's own metadata (pyproject.toml, package.json, Cargo.toml), then
`{{ version }}` in its `template` names it.
"""

from __future__ import annotations

import re

FIELDS: dict[str, str] = {
    "run_number": "the build number (the CI's run number, else the workspace's counter)",
    "build_number": "the same as run_number",
    "commit": "the commit's full id",
    "short_commit": "its first 12 characters",
    "branch": "the branch (a '/' becomes '-')",
    "tag": "the tag the commit has, if any",
    "date": "the day the version is stored, UTC: 20261128",
    "timestamp": "the time the version is stored, UTC: 20261128T213618Z",
    "pipeline": "the pipeline's name",
    "job": "the job's name",
}
"""What a template may name, and what each is."""

SOURCES = ("git", "pyproject.toml", "package.json", "Cargo.toml")
"""Where `version: {from: ...}` may take a version: `git describe --tags --always`, or
a manifest's version field (a path to one ending in that name, relative to the job's
directory)."""

ALLOWED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
"""A version as stored (it is a file name in the store's index): letters, digits and
`. _ + -`, at most 128 characters, not starting with a punctuation mark."""

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""An artifact's name: letters, digits and `. _ -`."""

_FIELD = re.compile(r"(?<!\$)\{\{(.*?)\}\}", re.S)
_CONVEYOR_EXPR = re.compile(r"\$\{\{.*?\}\}", re.S)


def parse(text: str, *, with_version: bool = False) -> list[tuple[bool, str]]:
    """The template as (is_field, text) parts: literal text, and field names. ValueError
    saying what is wrong (an unknown field, an unclosed `{{`) when it is not one."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    known = [*FIELDS, "version"] if with_version else list(FIELDS)
    for m in _FIELD.finditer(text):
        parts.append((False, text[pos : m.start()]))
        name = m.group(1).strip()
        if name not in known:
            close = [k for k in known if k.startswith(name[:3])] if name else []
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            if name == "version":
                raise ValueError(
                    "{{ version }} names the version taken from a source: use it in "
                    "`version: {from: git | pyproject.toml | package.json | Cargo.toml, "
                    "template: ...}`"
                )
            raise ValueError(
                f"unknown field {{{{ {name} }}}} in the version template{hint}; "
                f"known: {', '.join(known)}"
            )
        parts.append((True, name))
        pos = m.end()
    rest = text[pos:]
    if "{{" in _CONVEYOR_EXPR.sub("", rest) or "}}" in _CONVEYOR_EXPR.sub("", rest):
        raise ValueError(
            f"unbalanced braces in the version template {text!r}: write fields as "
            "{{ run_number }}"
        )
    parts.append((False, rest))
    return [p for p in parts if p[1] or p[0]]


def check(text: str, *, with_version: bool = False) -> str:
    """`text` when it is a valid version or template (ValueError otherwise): a template
    parses, and a literal (or the literal parts of a template) is made of the characters
    a version may hold."""
    if not text.strip():
        raise ValueError("expected a version or a template, e.g. '1.4.{{ run_number }}'")
    parts = parse(text, with_version=with_version)
    if "${{" in text:
        return text  # filled in when the run is planned; checked when stored
    literal = "".join(t for is_field, t in parts if not is_field)
    if not any(is_field for is_field, _ in parts):
        if not ALLOWED.fullmatch(text):
            raise ValueError(f"{text!r} is not a version: {describe_allowed()}")
    elif literal and not re.fullmatch(r"[A-Za-z0-9._+-]*", literal):
        raise ValueError(f"{text!r}: a version holds only {describe_allowed()}")
    return text


def check_source(value: str) -> str:
    """`value` when it names a version source (ValueError otherwise)."""
    base = value.rstrip("/").rsplit("/", 1)[-1]
    if value == "git" or (base in SOURCES[1:] and not value.startswith("/")):
        if ".." in value.split("/"):
            raise ValueError(f"{value!r}: expected a path inside the workspace")
        return value
    raise ValueError(
        f"unknown version source {value!r}: use git, pyproject.toml, package.json, "
        "Cargo.toml, or a path to one of those files"
    )


def describe_allowed() -> str:
    return "letters, digits and . _ + - (at most 128, starting with a letter or digit)"
