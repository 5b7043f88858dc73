"""`conveyor docs`: the bundled reference, by topic; hints point at it, not at files of
Conveyor's repository."""

from __future__ import annotations

import re
from pathlib import Path

from conveyor.cli.docs import find_topic, reference_text, sections
from tests.conftest import Project

SRC = Path(__file__).resolve().parents[2] / "src" / "conveyor"


def test_without_a_topic_it_lists_the_topics(project: Project) -> None:
    result = project.run("docs")
    assert result.code == 0
    assert "matrix" in result.out.split()
    assert "if-expression-language" in result.out.split()


def test_a_topic_prints_its_section(project: Project) -> None:
    result = project.run("docs", "matrix")
    assert result.code == 0
    assert result.out.startswith("## 6. Matrix")
    assert "### Expansion" in result.out  # its subsections with it
    assert "## 7." not in result.out
    # The job key `matrix` has a name of its own, by its section.
    assert project.run("docs", "job-keys-matrix").out.startswith("### `matrix`")
    # A unique beginning is enough.
    assert project.run("docs", "exit").out.startswith("## 15. Exit codes")


def test_an_unknown_topic_gets_a_did_you_mean(project: Project) -> None:
    result = project.run("docs", "matrx")
    assert result.code == 2
    assert "no topic 'matrx'" in result.err
    assert "did you mean 'matrix'?" in result.err
    result = project.run("docs", "e")
    assert result.code == 2
    assert "could be any of" in result.err
    assert "Traceback" not in result.err


def test_all_prints_the_whole_reference(project: Project) -> None:
    result = project.run("docs", "--all")
    assert result.code == 0
    assert result.out.startswith("# `conveyor.yml` reference")
    assert "## 17. Command-line reference" in result.out


def test_no_hint_points_at_a_file_of_the_repository() -> None:
    # (A module's docstring, for Conveyor's developers, may.)
    naming = [
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if re.search(r"docs/\w+\.md|DESIGN\.md|README", p.read_text().split('"""', 2)[-1])
    ]
    assert naming == []


def test_every_topic_a_hint_names_exists() -> None:
    found = sections(reference_text())
    named = set()
    for path in SRC.rglob("*.py"):
        named |= set(re.findall(r"`conveyor docs ([a-z0-9-]+)`", path.read_text()))
    assert named, "no hint names a topic"
    for topic in named:
        assert find_topic(found, topic).topic == topic


def test_a_missing_file_points_at_the_docs_command(project: Project) -> None:
    result = project.run("-f", "nope.yml", "validate")
    assert result.code == 2
    assert "`conveyor docs complete-example`" in result.err
    assert project.run("docs", "complete-example").code == 0
