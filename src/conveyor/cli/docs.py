"""`conveyor docs [TOPIC]`: the `conveyor.yml` reference shipped with Conveyor, whole or
one section, so a hint can point at it wherever Conveyor is installed (not at a file of
Conveyor's repository).

The reference is docs/configuration.md, bundled into the package as
`conveyor/docs/configuration.md` (pyproject.toml, `force-include`); run from a checkout,
it is read from the repository's docs/ directory. Its topics are its sections (`##`)
and their subsections (`###`), named by their titles in lower case with dashes.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import click

REFERENCE = "configuration.md"


class Section(NamedTuple):
    topic: str
    title: str
    level: int
    """2 for a section (`##`), 3 for a subsection (`###`)."""
    text: str


def reference_text() -> str:
    """The bundled reference's text; an EnvironmentProblem if the installation lost it."""
    from importlib import resources

    from conveyor.errors import EnvironmentProblem

    bundled = resources.files("conveyor").joinpath("docs", REFERENCE)
    if bundled.is_file():
        return bundled.read_text(encoding="utf-8")
    # A checkout (an editable install, PYTHONPATH=src): the repository's own file.
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    checkout = os.path.join(os.path.dirname(os.path.dirname(package)), "docs", REFERENCE)
    try:
        with open(checkout, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        raise EnvironmentProblem(
            "the conveyor.yml reference is missing from this installation",
            hint="reinstall Conveyor",
        ) from None


def topic_of(title: str) -> str:
    """`8. The \\`if:\\` expression language` -> `if-expression-language`."""
    words = re.sub(r"^\d+\.\s*", "", title).replace("`", "").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", words).strip("-")
    return re.sub(r"^(the|a|an)-", "", slug)


def sections(text: str) -> list[Section]:
    """The reference's sections and subsections, in order; a section's text holds its
    subsections. Headings inside code blocks are not headings."""
    lines = text.splitlines()
    heads: list[tuple[int, int, str]] = []  # (line index, level, title)
    fenced = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else re.match(r"^(#{2,4}) (.+)$", line)
        if match:
            heads.append((i, len(match.group(1)), match.group(2).strip()))
    # A section keeps its plain name; a subsection named like one taken before it (the
    # job key `matrix` and the section Matrix) is named by its section too.
    taken = {topic_of(title) for _, level, title in heads if level == 2}
    found: list[Section] = []
    parent = ""
    for n, (start, level, title) in enumerate(heads):
        if level > 3:
            continue
        end = next((s for s, lv, _ in heads[n + 1 :] if lv <= level), len(lines))
        topic = topic_of(title)
        if level == 2:
            parent = topic
        elif topic in taken:
            topic = f"{parent}-{topic}"
        taken.add(topic)
        body = "\n".join(lines[start:end]).rstrip().removesuffix("---").rstrip()
        found.append(Section(topic, title, level, body))
    return found


def find_topic(found: list[Section], topic: str) -> Section:
    """The section `topic` names: exactly, or as the one topic it begins; a usage error
    with the closest topics otherwise."""
    import difflib

    from conveyor.errors import UsageError

    wanted = topic_of(topic)
    by_topic = {s.topic: s for s in found}
    if wanted in by_topic:
        return by_topic[wanted]
    starting = [s for s in found if s.topic.startswith(wanted)] if wanted else []
    if len(starting) == 1:
        return starting[0]
    if starting:
        names = ", ".join(s.topic for s in starting)
        raise UsageError(f"'{topic}' could be any of: {names}", hint="give more of the name")
    close = difflib.get_close_matches(wanted, list(by_topic), n=3, cutoff=0.6)
    hint = (
        f"did you mean {' or '.join(repr(c) for c in close)}?"
        if close
        else "`conveyor docs` lists the topics"
    )
    raise UsageError(f"no topic '{topic}' in the conveyor.yml reference", hint=hint)


@click.command("docs")
@click.argument("topic", required=False)
@click.option("--all", "show_all", is_flag=True, help="Print the whole reference.")
def docs_command(topic: str | None, show_all: bool) -> int:
    """Print the conveyor.yml reference: one TOPIC (a section, such as `matrix` or
    `if`), the whole of it with --all, or without either the list of topics."""
    text = reference_text()
    if show_all:
        click.echo(text.rstrip())
        return 0
    found = sections(text)
    if topic is None:
        click.echo("topics of the conveyor.yml reference (`conveyor docs TOPIC` prints one):")
        for s in found:
            indent = "  " * (s.level - 1)
            click.echo(f"{indent}{s.topic:<{40 - len(indent)}} {s.title.replace('`', '')}")
        return 0
    click.echo(find_topic(found, topic).text)
    return 0
