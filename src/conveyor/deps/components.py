"""The two things a dependency file says: a manifest's `Requirement` (a name and the
range asked for) and a lockfile's `Component` (a name and the exact version pinned)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Ecosystem(StrEnum):
    """A package ecosystem, spelled as OSV spells it (so a component can be looked up in
    the vulnerability database without translation)."""

    NPM = "npm"
    PYPI = "PyPI"
    CARGO = "crates.io"
    GO = "Go"


@dataclass(frozen=True)
class Requirement:
    """One dependency a manifest declares.

    `name` as written in the manifest (a Cargo rename resolved to the crate's name);
    `spec` the range asked for ('^4.17.21', '>=2,<3', 'v1.9.1'), '' when none is given;
    `section` where it is declared, in the manifest's own terms ('devDependencies',
    'project.optional-dependencies.test', 'dev-packages', 'require'); `manifest` the
    workspace-relative path; `line` 1-based, when the format lets it be known."""

    name: str
    spec: str
    section: str
    manifest: str
    ecosystem: Ecosystem
    line: int | None = None

    @property
    def declared(self) -> str:
        """'manifest:line', or the manifest alone when the line is not known."""
        return self.manifest if self.line is None else f"{self.manifest}:{self.line}"


@dataclass(frozen=True)
class Component:
    """One package a lockfile pins.

    `version` the exact version installed, None when the lockfile records none (an npm
    link to a workspace member); `lockfile` the workspace-relative file it was read from;
    `direct` True when the project itself asks for it, False when only another package
    does, None when the file does not say (poetry.lock, Pipfile.lock, npm's lockfile
    version 1); `declared` where a direct dependency is declared ('go.mod:7',
    'package.json'), when the file says; `local` for the workspace's own packages (a Cargo
    workspace member, uv's project, an npm workspace link), which are not third-party
    code."""

    name: str
    version: str | None
    ecosystem: Ecosystem
    lockfile: str
    direct: bool | None = None
    declared: str | None = None
    local: bool = False
