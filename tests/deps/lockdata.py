"""The lockfiles of tests/deps/data (written by the real tools, or by hand in their
documented formats; origins in its SOURCES.md), as a reader is given them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from conveyor.deps.components import Component
from conveyor.deps.inventory import LockSource

DATA = Path(__file__).parent / "data"


def text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def source(path: str, body: str, siblings: Mapping[str, str] | None = None) -> LockSource:
    """A LockSource for `body` at the workspace-relative `path`, with these siblings
    (name beside the lockfile -> text)."""
    known = dict(siblings or {})
    return LockSource(path, body, known.get)


def line_of(body: str, component: Component) -> str:
    """The text of the line a component says its entry starts on."""
    assert component.line is not None, component
    return body.splitlines()[component.line - 1]


def by_name(components: list[Component]) -> dict[str, Component]:
    found: dict[str, Component] = {}
    for component in components:
        found.setdefault(component.name, component)
    return found
