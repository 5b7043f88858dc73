"""Secrets committed to the repository (keys, tokens, passwords), found with Yelp's
detect-secrets library before the build publishes anything built from them.

detect-secrets' default plugins and filters apply, including its inline allowlist
(`# pragma: allowlist secret`); a detect-secrets baseline lists reviewed false
positives. Findings carry the secret's type, file, line and a fingerprint built from
detect-secrets' SHA-1 of the secret: never the secret itself.

Files Conveyor itself writes or keeps in the workspace are not scanned
(`conveyor_files`): baselines hold fingerprints and build reports hold digests, which
the entropy plugins take for secrets, and a job's declared outputs and reports are what
it built, not what was committed (issue 10).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from conveyor.fsutil import atomic_write
from conveyor.model import CheckResult, Finding, GateLevel, Pipeline
from conveyor.reports.findings import with_index
from conveyor.units import first_few

TOOL = "conveyor-secrets"
MAX_FILE_SIZE = 1_000_000
"""Bytes; larger files are data or build outputs, slow to scan and rarely hand-written."""
BASELINE_NAME = ".secrets.baseline"
_SHOWN = 5


def conveyor_files(pipeline: Pipeline) -> tuple[str, ...]:
    """What the secrets check leaves out as Conveyor's own (workspace-relative paths and
    globs, as `exclude` takes them): the findings gates' baselines (lists of SHA-256
    fingerprints), the build report of the checks after the build (digests, commit ids),
    and every job's declared outputs and reports (what the job writes, relative to its
    `dir`; its reports are among its outputs)."""
    own: list[str] = []
    gates = [pipeline.gates, *(job.gates for job in pipeline.jobs)]
    own += [g.findings.baseline for g in gates if g.findings is not None and g.findings.baseline]
    after = pipeline.checks.after
    if after is not None and after.report:
        own.append(after.report)
    for job in pipeline.jobs:
        # A directory (`dist` or `dist/`) names its whole tree, as `exclude` reads it.
        own += [posixpath.normpath(posixpath.join(job.dir, p)) for p in job.outputs]
    return tuple(dict.fromkeys(p.replace(os.sep, "/").removeprefix("./") for p in own))


def scan_secrets(
    root: str,
    files: Sequence[str],
    *,
    baseline: str | None = None,
    exclude: Sequence[str] = (),
    cache_file: str | None = None,
    identities: Mapping[str, str | None] | None = None,
) -> list[Finding]:
    """The secrets detect-secrets finds in `files` (workspace-relative), ordered by path
    and line, minus those listed in `baseline` (workspace-relative or absolute path of a
    detect-secrets baseline). Raises ValueError when the baseline is missing or invalid.
    `cache_file`: where to keep each file's results by its content, so an unchanged file
    is not scanned again (detect-secrets takes seconds over a few hundred files).
    `identities`: what names a file's content without reading it (a git blob id of a file
    git says is unchanged); others are read and hashed."""
    allowed: set[tuple[str, str]] = set()
    baseline_rel: str | None = None
    if baseline is not None:
        baseline_path = baseline if os.path.isabs(baseline) else os.path.join(root, baseline)
        allowed = _read_baseline(baseline_path, baseline)
        rel = os.path.relpath(os.path.abspath(baseline_path), os.path.abspath(root))
        baseline_rel = rel.replace(os.sep, "/")

    selected = []
    for path in files:
        path = path.replace("\\", "/").removeprefix("./")
        # A baseline holds the hashes of secrets, which the entropy plugins would flag.
        if path == baseline_rel or posixpath.basename(path) == BASELINE_NAME:
            continue
        if _excluded(path, exclude):
            continue
        selected.append(path)
    if not selected:
        return []

    found = _scan(root, selected, cache_file, identities or {})
    findings: list[Finding] = []
    for path, kind, hashed, line in found:
        if (path, hashed) in allowed:
            continue
        # The secret's own hash, not its line: a secret is the same wherever it moves.
        fingerprint = hashlib.sha256(f"{path}\0{hashed}\0{kind}".encode()).hexdigest()[:32]
        findings.append(
            Finding(
                tool=TOOL,
                rule=kind,
                severity="critical" if kind == "Private Key" else "high",
                message=f"{kind} committed in {path}",
                path=path,
                line=line or None,
                fingerprint=fingerprint,
            )
        )
    findings.sort(key=lambda f: (f.path or "", f.line or 0, f.rule))
    # The shape of every finding's fingerprint (conveyor.reports.findings, "hash:index").
    prints = with_index((f.path, f.fingerprint) for f in findings)
    return [f._replace(fingerprint=p) for f, p in zip(findings, prints, strict=True)]


_Hit = tuple[str, str, str, int]
"""(path, secret type, detect-secrets' hash of the secret, line)."""
_CACHE_VERSION = 1


def _scan(
    root: str,
    paths: Sequence[str],
    cache_file: str | None,
    identities: Mapping[str, str | None],
) -> list[_Hit]:
    """Every file's secrets: from the cache when its content is unchanged, else scanned."""
    stamp = f"{_CACHE_VERSION}:{_detector_version()}"
    known: dict[str, Any] = {}
    if cache_file is not None:
        try:
            with open(cache_file, encoding="utf-8") as fh:
                data = json.load(fh)
            if isinstance(data, dict) and data.get("stamp") == stamp:
                known = data.get("files") or {}
        except (OSError, ValueError):
            pass
    digests: dict[str, str] = {}
    for path in paths:
        blob = identities.get(path)
        if blob is not None:
            digests[path] = f"git:{blob}"
            continue
        try:
            with open(os.path.join(root, path), "rb") as fh:
                digests[path] = hashlib.sha256(fh.read()).hexdigest()
        except OSError:
            continue
    hits: dict[str, list[list[Any]]] = {}
    missing = []
    for path, digest in digests.items():
        entry = known.get(path)
        if isinstance(entry, list) and len(entry) == 2 and entry[0] == digest:
            hits[path] = entry[1]
        else:
            missing.append(path)
    fresh = bool(missing) or set(known) != set(digests)
    # Binary and large files are not scanned: known as such, they cost nothing next time.
    for path in [p for p in missing if not _scannable(os.path.join(root, p))]:
        hits[path] = []
        missing.remove(path)
    if missing:
        # Imported here: detect-secrets loads its plugins on import, which most runs of
        # Conveyor (no secrets check configured, or nothing changed) do not need.
        from detect_secrets.core.secrets_collection import SecretsCollection
        from detect_secrets.settings import default_settings

        # default_settings() is a transient_settings() context: the plugin and filter
        # configuration, global in detect-secrets, is restored on exit. The collection's
        # root keeps paths relative without changing this process's working directory.
        collection = SecretsCollection(root=root)
        with default_settings():
            for path in missing:
                collection.scan_file(path)
        for path in missing:
            hits[path] = []
        for path, secrets in collection.data.items():
            hits[path.replace(os.sep, "/")] = [
                [str(s.type), str(s.secret_hash), int(s.line_number)] for s in secrets
            ]
    if cache_file is not None and fresh:
        files = {p: [digests[p], hits.get(p, [])] for p in digests}
        try:
            data = json.dumps({"stamp": stamp, "files": files}, separators=(",", ":"))
            atomic_write(cache_file, data, makedirs=True)
        except OSError:
            pass  # an unwritable cache only costs the next scan its time
    return [(p, kind, hashed, line) for p in paths for kind, hashed, line in hits.get(p, [])]


def _detector_version() -> str:
    """detect-secrets' version, read from its package without importing it (or
    importlib.metadata, 20 ms): a newer detector may find more, so results are redone."""
    import importlib.util

    spec = importlib.util.find_spec("detect_secrets")
    if spec is None or spec.origin is None:
        return "?"
    try:
        with open(os.path.join(os.path.dirname(spec.origin), "__version__.py")) as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def secrets_check(findings: Sequence[Finding], level: GateLevel) -> CheckResult:
    """The scan as one check: passed when nothing was found."""
    if not findings:
        return CheckResult(
            check="secrets",
            ok=True,
            expected="no secrets committed",
            found="no secrets found",
            level=level,
        )
    places = first_few([f"{f.rule} in {_where(f)}" for f in findings], _SHOWN)
    count = len(findings)
    return CheckResult(
        check="secrets",
        ok=False,
        expected="no secrets committed",
        found=f"{count} secret{'' if count == 1 else 's'}: {places}",
        hint="remove them from the repository and its history, rotate them, or list "
        "reviewed false positives in a baseline (detect-secrets scan > .secrets.baseline)",
        location=_where(findings[0]),
        level=level,
    )


def _where(finding: Finding) -> str:
    path = finding.path or "?"
    return f"{path}:{finding.line}" if finding.line else path


def _excluded(path: str, patterns: Sequence[str]) -> bool:
    for pattern in patterns:
        pattern = pattern.removeprefix("./")
        # 'vendor/' or 'vendor' excludes the directory's whole tree, as in .gitignore.
        directory = pattern.rstrip("/")
        if fnmatchcase(path, pattern) or fnmatchcase(path, directory + "/*"):
            return True
    return False


def _scannable(path: str) -> bool:
    """A regular text file of at most MAX_FILE_SIZE bytes."""
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_FILE_SIZE:
            return False
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except OSError:
        return False
    return b"\0" not in head


def _read_baseline(path: str, shown: str) -> set[tuple[str, str]]:
    """(file, hashed_secret) pairs a detect-secrets baseline lists."""
    try:
        with open(path, encoding="utf-8") as fh:
            data: Any = json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"secrets baseline {shown} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read secrets baseline {shown}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"secrets baseline {shown} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg})"
        ) from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise ValueError(
            f'secrets baseline {shown} has no "results" object: not a detect-secrets baseline'
        )
    allowed: set[tuple[str, str]] = set()
    for filename, entries in results.items():
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("hashed_secret"), str):
                allowed.add((str(filename).replace("\\", "/"), entry["hashed_secret"]))
    return allowed
