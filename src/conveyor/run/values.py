"""Values between jobs: what a job writes to `$CONVEYOR_OUTPUT`, and the jobs that need
it reading them as `${{ needs.JOB.values.NAME }}` in their `run`, `env`, `dir` and `if:`.

The file has GitHub's `$GITHUB_OUTPUT` format: `NAME=value` lines, and multi-line values
as `NAME<<DELIMITER`, the lines, then `DELIMITER` alone on a line. A line that is neither
is a warning in the job's log naming it, never a failure. A value that contains one of
the job's secrets (in any of the forms masking knows) is withheld, as GitHub does: the
jobs after it read an empty string, and it is never stored, shown or cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import posixpath
import re
from collections.abc import Mapping, Sequence

from conveyor.executor.values import MAX_BYTES, decode
from conveyor.model import Job, Pairs, Pipeline, RunContext

_REF = re.compile(r"\$\{\{\s*(needs\.[^}]*?)\s*\}\}")
_RESULT_REF = re.compile(r"needs\.(\S+?)\.result")
"""`needs.JOB.result` as written inside `${{ }}`."""


def values_path(run_dir: str, log_name: str) -> str:
    """The file a job's `$CONVEYOR_OUTPUT` names, in the run directory."""
    return os.path.join(run_dir, "values", log_name)


def fresh_file(path: str) -> None:
    """An empty values file for the next attempt (what an earlier one wrote is gone)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb"):
        pass


def read(path: str, secrets: Sequence[str]) -> tuple[Pairs, list[str]]:
    """A job's values after it ran, and the lines to add to its log (malformed lines,
    values withheld because they hold a secret); the file is removed."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
        # Read once: what it holds is in the result (and summary.json) from now on, and
        # a value withheld for holding a secret must not stay behind in the run directory.
        os.unlink(path)
    except OSError:
        return (), []
    if not data:
        return (), []
    values, notes = decode(data)
    if secrets and values:
        from conveyor.executor.masking import Masker

        masker = Masker(secrets)
        for name in [n for n, v in values.items() if masker.mask(v) != v]:
            del values[name]
            notes.append(
                f"conveyor: value '{name}' is not passed on: it contains a secret "
                "(the jobs reading it get an empty string)"
            )
    return tuple(values.items()), notes


def digest(outputs_digest: str, values: Pairs) -> str:
    """What a dependent's key holds for a job it needs: its outputs' digest, and its
    values when it wrote any (a changed value misses, the same value hits; a job that
    writes none is keyed as before values existed)."""
    if not values:
        return outputs_digest
    text = json.dumps(sorted(values), separators=(",", ":")).encode()
    return f"{outputs_digest}+values:{hashlib.sha256(text).hexdigest()}"


class Resolved:
    """A job with the values of its needs filled in, or why it cannot run."""

    def __init__(
        self,
        job: Job,
        notes: list[str],
        *,
        skip: str | None = None,
        error: str | None = None,
    ) -> None:
        self.job = job
        self.notes = notes
        """Lines for the job's log (values read that no job wrote)."""
        self.skip = skip
        """Its `if:` is false: why (the job does not run)."""
        self.error = error
        """It cannot run as written (a `dir` outside the workspace, fromJSON of no JSON)."""


def resolve(
    job: Job,
    written: Mapping[str, Pairs],
    pipeline: Pipeline,
    context: RunContext,
    results: Mapping[str, str] | None = None,
    absent: frozenset[str] = frozenset(),
) -> Resolved:
    """`job` with each `${{ needs.JOB.values.NAME }}` replaced by what JOB wrote (an
    empty string and a note when it wrote nothing by that name), each
    `${{ needs.JOB.result }}` by how JOB ended (`results`: success, failure, cancelled
    or skipped), and its `if:` decided when it reads values. `written`: the values of
    each job key it needs; `absent`: the job keys it needs that the run left out."""
    # Here: most runs have no job reading values, and need no expression language.
    from conveyor import expressions

    known = {name: dict(pairs) for name, pairs in written.items()}
    notes: list[str] = []

    def value(job_name: str, key: str) -> str:
        got = known.get(job_name, {}).get(key)
        if got is None:
            why = (
                "is not in this run (--only)"
                if job_name in absent
                else "did not write it to $CONVEYOR_OUTPUT"
            )
            note = f"conveyor: needs.{job_name}.values.{key} is empty: '{job_name}' {why}"
            if note not in notes:
                notes.append(note)
            return ""
        return got

    def sub(text: str) -> str:
        if "${{" not in text:
            return text

        def repl(m: re.Match[str]) -> str:
            ref = expressions.VALUE_REF.fullmatch(m.group(1))
            if ref:
                return value(ref.group(1), ref.group(2))
            ended = _RESULT_REF.fullmatch(m.group(1))
            if ended and results is not None:
                return results.get(ended.group(1), "")
            return m.group(0)

        return _REF.sub(repl, text)

    # A job whose `if:` also reads how the run goes (success(), needs.X.result) had it
    # decided with all of that already (run.conditions): evaluated here again without
    # the status, `success() && needs.X.values.Y` was always false.
    if job.condition is not None and "needs" in job.condition and not job.late:
        node = expressions.parse(job.condition)
        if expressions.reads_needs(node):
            for name in expressions.names_used(node):
                if name.scope == "needs":
                    job_name, _, key = name.name.rpartition(".values.")
                    value(job_name, key)
            from conveyor.graph.plan import condition_scope, explain_condition

            scope = dataclasses.replace(condition_scope(job, pipeline, context), needs=known)
            try:
                passed = expressions.truthy(expressions.evaluate(node, scope))
            except expressions.EvaluationError as exc:
                return Resolved(job, notes, error=f"if: {exc}")
            if not passed:
                secrets = frozenset(s for j in pipeline.jobs for s in j.secrets)
                return Resolved(job, notes, skip=explain_condition(job, scope, secrets))
    directory = sub(job.dir)
    if directory != job.dir:
        norm = posixpath.normpath(directory)
        if directory.startswith("/") or norm == ".." or norm.startswith("../"):
            return Resolved(
                job, notes, error=f"dir {directory!r} is not a relative path inside the workspace"
            )
        if norm.split("/", 1)[0] in (".git", ".conveyor"):
            return Resolved(job, notes, error=f"dir {directory!r} is inside {norm.split('/')[0]}")
        directory = norm
    resolved = dataclasses.replace(
        job,
        run=tuple(sub(cmd) for cmd in job.run),
        env=tuple((k, sub(v)) for k, v in job.env),
        dir=directory,
    )
    return Resolved(resolved, notes)
