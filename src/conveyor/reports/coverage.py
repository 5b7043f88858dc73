"""Code coverage reports (Cobertura XML and LCOV) as hit counts per executable line and
branch counts per file, for the coverage gates and the run history.

The format is told from the content, not the file name: an XML document whose root is
`<coverage>` is Cobertura (what `coverage xml`, gcovr, JaCoCo converters and most other
tools write); `TN:`/`SF:` ... `end_of_record` records are LCOV (`coverage lcov`,
geninfo, Jest/istanbul, c8, grcov). XML is parsed with defusedxml only: a report is
input written by whatever a job ran, and one declaring entities is refused.

Source paths are made workspace-relative ('/'-separated) when the file is inside the
workspace, so that reports of different jobs (and of different checkouts) agree.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.reports.junit import ReportError

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element


@dataclass
class FileCoverage:
    """One source file: hits per executable line, and its branches."""

    path: str
    """Workspace-relative ('/'-separated) when inside the workspace, else absolute."""
    lines: dict[int, int]
    """Executable line number -> hit count (0: never executed)."""
    branches_covered: int = 0
    branches_total: int = 0

    @property
    def lines_covered(self) -> int:
        return sum(1 for hits in self.lines.values() if hits > 0)


@dataclass
class Coverage:
    """A whole report (or several merged): the files it covers, keyed by their path."""

    files: dict[str, FileCoverage] = field(default_factory=dict)

    @property
    def lines_total(self) -> int:
        return sum(len(f.lines) for f in self.files.values())

    @property
    def lines_covered(self) -> int:
        return sum(f.lines_covered for f in self.files.values())

    @property
    def branches_total(self) -> int:
        return sum(f.branches_total for f in self.files.values())

    @property
    def branches_covered(self) -> int:
        return sum(f.branches_covered for f in self.files.values())

    @property
    def line_rate(self) -> float | None:
        """Covered lines as a percentage (0..100); None when there is no executable line."""
        total = self.lines_total
        return 100.0 * self.lines_covered / total if total else None

    @property
    def branch_rate(self) -> float | None:
        """Covered branches as a percentage (0..100); None when the report has no branch
        data (measured without branch coverage, or no branch in the code)."""
        total = self.branches_total
        return 100.0 * self.branches_covered / total if total else None

    def merged(self, other: Coverage) -> Coverage:
        """The union of two reports of the same code (e.g. unit and integration jobs):
        hits of a line are summed. Branches are only counted per file, so which ones each
        report took is unknown: the count with more branches wins (the other report
        measured less of the file), and of two equal counts the better covered one."""
        files = {path: _copy(f) for path, f in self.files.items()}
        for path, theirs in other.files.items():
            mine = files.get(path)
            if mine is None:
                files[path] = _copy(theirs)
                continue
            for line, hits in theirs.lines.items():
                mine.lines[line] = mine.lines.get(line, 0) + hits
            mine.lines = dict(sorted(mine.lines.items()))
            if theirs.branches_total > mine.branches_total:
                mine.branches_covered = theirs.branches_covered
                mine.branches_total = theirs.branches_total
            elif theirs.branches_total == mine.branches_total:
                mine.branches_covered = max(mine.branches_covered, theirs.branches_covered)
        return Coverage(dict(sorted(files.items())))

    def to_json(self) -> dict[str, Any]:
        return {
            "files": {
                path: {
                    "lines": {str(line): hits for line, hits in f.lines.items()},
                    "branches_covered": f.branches_covered,
                    "branches_total": f.branches_total,
                }
                for path, f in self.files.items()
            }
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Coverage:
        """What `to_json` wrote (JSON object keys are strings: line numbers become ints)."""
        try:
            return cls(
                {
                    path: FileCoverage(
                        path,
                        {int(line): int(hits) for line, hits in f["lines"].items()},
                        int(f.get("branches_covered", 0)),
                        int(f.get("branches_total", 0)),
                    )
                    for path, f in data["files"].items()
                }
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReportError(f"not a coverage record ({type(exc).__name__}: {exc})") from None


def read_coverage(path: str, workspace: str, base_dir: str) -> Coverage:
    """One Cobertura XML or LCOV file. `base_dir` is the absolute directory of the job
    that wrote it: relative source paths are resolved against it."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return _read_cobertura(path, data, workspace, base_dir)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{path}: neither Cobertura XML nor LCOV (not text)") from None
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first.startswith(("TN:", "SF:")):
        return _read_lcov(path, text, workspace, base_dir)
    what = "empty" if not first else f"starts with {first[:40]!r}"
    raise ReportError(f"{path}: neither Cobertura XML nor LCOV ({what})")


_CONDITION = re.compile(r"\((\d+)/(\d+)\)")


def _read_cobertura(path: str, data: bytes, workspace: str, base_dir: str) -> Coverage:
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    try:
        root = SafeET.fromstring(data)
    except DefusedXmlException as exc:
        raise ReportError(f"{path}: XML declaring entities is refused ({exc})") from None
    except SafeET.ParseError as exc:
        raise ReportError(f"{path}: not XML ({exc})") from None
    if root.tag != "coverage":
        raise ReportError(f"{path}: root element is <{root.tag}>, not Cobertura's <coverage>")
    sources = [
        os.path.normpath(os.path.join(base_dir, s.text.strip()))
        for s in root.findall("sources/source")
        if s.text and s.text.strip()
    ]
    resolved: dict[str, str] = {}
    # One run counted a line once: a line listed by several <class> elements of the
    # same file (inner classes, generated code) keeps its highest count, not a sum.
    hits: dict[str, dict[int, int]] = {}
    branches: dict[str, dict[int, tuple[int, int]]] = {}
    for cls in root.iter("class"):
        filename = cls.get("filename")
        if not filename:
            raise ReportError(f"{path}: <class name={cls.get('name')!r}> without a filename")
        if filename not in resolved:
            resolved[filename] = _workspace_path(
                _cobertura_source(filename, sources, base_dir), workspace
            )
        key = resolved[filename]
        file_hits = hits.setdefault(key, {})
        file_branches = branches.setdefault(key, {})
        # Only <class><lines>: <methods> repeat the same lines.
        for line in cls.findall("lines/line"):
            number, count = _cobertura_line(path, line)
            file_hits[number] = max(file_hits.get(number, 0), count)
            if line.get("branch") == "true" and line.get("condition-coverage"):
                match = _CONDITION.search(line.get("condition-coverage", ""))
                if match is None:
                    raise ReportError(
                        f"{path}: <line number={number}> has condition-coverage "
                        f"{line.get('condition-coverage')!r}, expected e.g. '50% (1/2)'"
                    )
                pair = (int(match[1]), int(match[2]))
                file_branches[number] = max(file_branches.get(number, (0, 0)), pair, key=_by_total)
    files = {}
    for key in sorted(hits):
        taken = branches[key].values()
        files[key] = FileCoverage(
            key,
            dict(sorted(hits[key].items())),
            sum(covered for covered, _ in taken),
            sum(total for _, total in taken),
        )
    return Coverage(files)


def _by_total(pair: tuple[int, int]) -> tuple[int, int]:
    return pair[1], pair[0]


def _cobertura_line(path: str, line: Element) -> tuple[int, int]:
    number, count = line.get("number"), line.get("hits")
    try:
        result = int(number or ""), int(count or "")
    except ValueError:
        result = (0, -1)
    if result[0] < 1 or result[1] < 0:
        raise ReportError(
            f"{path}: <line number={number!r} hits={count!r}>: expected a line number "
            "and a hit count"
        )
    return result


def _cobertura_source(filename: str, sources: list[str], base_dir: str) -> str:
    """The absolute path of a <class filename>: relative to the first <source> under
    which it exists (coverage.py writes the absolute source directories there)."""
    if os.path.isabs(filename):
        return os.path.normpath(filename)
    for source in sources:
        candidate = os.path.normpath(os.path.join(source, filename))
        if os.path.exists(candidate):
            return candidate
    return os.path.normpath(os.path.join(sources[0] if sources else base_dir, filename))


def _read_lcov(path: str, text: str, workspace: str, base_dir: str) -> Coverage:
    # A file in several records (tracefiles of several runs concatenated) adds up, as
    # `lcov --add-tracefile` does; a branch is known by (line, block, branch).
    hits: dict[str, dict[int, int]] = {}
    taken: dict[str, dict[tuple[int, str, str], int]] = {}
    current: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        record = raw.strip()
        where = f"{path}:{lineno}"
        if record.startswith("SF:"):
            source = record[3:].strip()
            if not source:
                raise ReportError(f"{where}: SF without a file name")
            absolute = os.path.normpath(os.path.join(base_dir, source))
            current = _workspace_path(absolute, workspace)
            hits.setdefault(current, {})
            taken.setdefault(current, {})
        elif record == "end_of_record":
            current = None
        elif record.startswith(("DA:", "BRDA:")):
            if current is None:
                raise ReportError(f"{where}: {record.split(':')[0]} outside an SF record")
            fields = record.split(":", 1)[1].split(",")
            if record.startswith("DA:"):
                if len(fields) < 2:
                    raise ReportError(f"{where}: expected DA:<line>,<hits>, got {record!r}")
                line = _lcov_number(where, record, fields[0], minimum=1)
                count = _lcov_number(where, record, fields[1], minimum=0)
                hits[current][line] = hits[current].get(line, 0) + count
            else:
                if len(fields) < 4:
                    raise ReportError(
                        f"{where}: expected BRDA:<line>,<block>,<branch>,<taken>, got {record!r}"
                    )
                line = _lcov_number(where, record, fields[0], minimum=1)
                # coverage.py writes a description ("jump to line 3") as the branch.
                branch = (line, fields[1], ",".join(fields[2:-1]))
                count = 0 if fields[-1] == "-" else _lcov_number(where, record, fields[-1], 0)
                taken[current][branch] = taken[current].get(branch, 0) + count
        # TN, FN, FNDA, FNF, FNH, LF, LH, BRF, BRH, VER...: totals are computed here.
    return Coverage(
        {
            key: FileCoverage(
                key,
                dict(sorted(hits[key].items())),
                sum(1 for count in taken[key].values() if count > 0),
                len(taken[key]),
            )
            for key in sorted(hits)
        }
    )


def _lcov_number(where: str, record: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise ReportError(f"{where}: {value.strip()!r} is not a valid number in {record!r}")
    return number


def _copy(f: FileCoverage) -> FileCoverage:
    return FileCoverage(f.path, dict(f.lines), f.branches_covered, f.branches_total)


def _workspace_path(path: str, workspace: str) -> str:
    """`path` (absolute) relative to the workspace, '/'-separated, when it is inside;
    else as given. Symlinks are resolved only if needed: tools such as coverage.py
    write real paths, while the workspace may have been given through a link."""
    for candidate, root in (
        (os.path.normpath(path), os.path.normpath(workspace)),
        (os.path.realpath(path), os.path.realpath(workspace)),
    ):
        rel = os.path.relpath(candidate, root)
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep) and not os.path.isabs(rel):
            return rel.replace(os.sep, "/")
    # A report written in another checkout (restored from the cache in a fresh clone, or
    # made on another runner) names that checkout's files: the same file here is the
    # longest tail of its path that exists in this workspace.
    parts = os.path.normpath(path).split(os.sep)
    for i in range(1, len(parts)):
        tail = parts[i:]
        if os.path.isfile(os.path.join(workspace, *tail)):
            return "/".join(tail)
    return os.path.normpath(path)
