"""Runs as their directories hold them (`.conveyor/runs/<id>/`), turned into records.

A finished run has `summary.json`; a run that is still going, or was killed, has only
`run.json` (written when it started) and `events.jsonl`. One whose process is gone
(SIGKILL, a power cut) is recorded as `interrupted`, with the jobs its event log says
finished.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from conveyor.history.location import NO_HISTORY
from conveyor.history.record import (
    CaseRow,
    GateRow,
    JobRow,
    OutputRow,
    RunRecord,
    RunRow,
    ValueRow,
)

if TYPE_CHECKING:
    from conveyor.history.store import HistoryStore


def read_run(run_dir: str) -> RunRecord | None:
    """The run in `run_dir` as a record, or None (still running, or nothing to read)."""
    meta = _json(os.path.join(run_dir, "run.json")) or {}
    summary = _json(os.path.join(run_dir, "summary.json"))
    if summary is not None:
        results = summary.get("jobs", [])
        return _record(meta, summary, results, summary.get("status", "failed"), run_dir)
    if not meta or _alive(meta):
        return None
    finished = []
    try:
        with open(os.path.join(run_dir, "events.jsonl"), encoding="utf-8") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    break  # a line cut short by the kill
                if event.get("type") == "job_finished":
                    finished.append(event["result"])
    except OSError:
        pass
    return _record(meta, {}, finished, "interrupted", run_dir)


def _tests(run_dir: str) -> tuple[CaseRow, ...]:
    """The test cases the run read from its jobs' JUnit reports: `reports.jsonl` (a line
    per job), or `tests/<job>.json` as runs before it kept them."""
    try:
        with open(os.path.join(run_dir, "reports.jsonl"), encoding="utf-8") as fh:
            lines = fh.readlines()
    except OSError:
        lines = []
    seen: dict[str, list[CaseRow]] = {}
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue  # cut short by a kill
        if isinstance(data, dict) and data.get("scope") != "pipeline":
            cases = data.get("tests")
            if isinstance(cases, list):
                seen[str(data.get("scope"))] = [
                    row for c in cases if isinstance(c, dict) and (row := _case(c)) is not None
                ]
    if lines:
        return tuple(row for cases in seen.values() for row in cases)
    base = os.path.join(run_dir, "tests")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return ()
    out: list[CaseRow] = []
    for name in names:
        data = _json(os.path.join(base, name))
        if not data or not isinstance(data.get("cases"), list):
            continue
        job = str(data.get("job", name.removesuffix(".json")))
        out += [
            row
            for case in data["cases"]
            if isinstance(case, dict) and (row := _case({**case, "job": job})) is not None
        ]
    return tuple(out)


def _case(case: dict[str, Any]) -> CaseRow | None:
    """A test case as the report reader wrote it; None for one that names no test (not
    written by any version of Conveyor)."""
    try:
        return CaseRow(
            job=case["job"],
            suite=case.get("suite") or "",
            name=case["name"],
            status=case["status"],
            duration=case.get("duration"),
            message=case.get("message") or "",
        )
    except KeyError:
        return None


def ingest(store: HistoryStore, root: str) -> int:
    """Record every run of the workspace not recorded yet (or recorded while running);
    returns how many were recorded."""
    base = os.path.join(root, ".conveyor", "runs")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return 0
    known = store.statuses()
    count = 0
    for name in names:
        if known.get(name, "running") != "running":
            continue
        run_dir = os.path.join(base, name)
        if os.path.exists(os.path.join(run_dir, NO_HISTORY)):
            continue
        record = read_run(run_dir)
        if record is not None:
            store.record(record)
            count += 1
    return count


def record_missing(store: HistoryStore, root: str) -> int:
    """Record the workspace's runs the shared history lacks: those killed outright (a
    shared history is written by each run as it ends, which a killed run never reaches)
    and those whose own recording failed (the database was down). One query for all the
    run directories the workspace keeps (at most `history.keep_runs` and a tenth)."""
    base = os.path.join(root, ".conveyor", "runs")
    try:
        names = [
            n for n in os.listdir(base) if not os.path.exists(os.path.join(base, n, NO_HISTORY))
        ]
    except OSError:
        return 0
    if not names:
        return 0
    known = store.statuses_of(names)
    count = 0
    for name in sorted(names):
        if known.get(name, "running") != "running":
            continue
        record = read_run(os.path.join(base, name))
        if record is not None:
            store.record(record)
            count += 1
    return count


def _record(
    meta: dict[str, Any],
    summary: dict[str, Any],
    results: list[dict[str, Any]],
    status: str,
    run_dir: str,
) -> RunRecord | None:
    """The run's rows from what its directory holds: `run.json` (meta), `summary.json`
    and the job results (the summary's, or the event log's for a run cut short). These
    are free-form JSON from whichever version wrote them; this is where they are read."""
    run_id = summary.get("run_id") or meta.get("run_id")
    if not run_id:
        return None
    context = summary.get("context") or meta.get("context") or {}
    machine = meta.get("machine") or {}
    critical = tuple(summary.get("critical_path") or ())
    by_name = {r["name"]: r for r in results}
    critical_time = sum(by_name[n].get("duration") or 0.0 for n in critical if n in by_name)
    started = summary.get("started_at") or meta.get("started_at") or 0.0
    finished_at = summary.get("finished_at")
    if finished_at is None and results:
        finished_at = max((r.get("finished_at") or started) for r in results)
    run = RunRow(
        id=run_id,
        pipeline=summary.get("pipeline") or meta.get("pipeline") or "",
        workspace=summary.get("workspace") or meta.get("workspace") or "",
        commit=context.get("commit"),
        branch=context.get("branch"),
        tag=context.get("tag"),
        event=context.get("event"),
        trigger=meta.get("trigger") or context.get("ci") or "local",
        host=meta.get("host") or "",
        conveyor_version=meta.get("conveyor_version") or "",
        started_at=started,
        finished_at=finished_at,
        status=status,
        wall_time=(finished_at - started) if finished_at is not None else None,
        critical_path=critical,
        critical_path_time=critical_time if critical else None,
        jobs_total=len(results),
        jobs_cached=sum(1 for r in results if r.get("cached")),
        run_dir=summary.get("run_dir") or meta.get("run_dir"),
        pipeline_file=summary.get("pipeline_file") or meta.get("pipeline_file"),
        cpus=machine.get("cpus"),
        memory_bytes=machine.get("memory_bytes"),
        platform=machine.get("platform"),
        parallelism=summary.get("parallelism") or meta.get("parallelism"),
        checks_time=summary.get("checks_time"),
    )
    return RunRecord(
        run,
        tuple(_job(r) for r in results),
        _tests(run_dir),
        gates=_gates(results, summary),
        outputs=_outputs(results),
        values=_values(results),
    )


def _job(result: dict[str, Any]) -> JobRow:
    queued, began = result.get("queued_at"), result.get("started_at")
    return JobRow(
        name=result["name"],
        status=result.get("status", "failed"),
        reason=result.get("reason") or "",
        cached=bool(result.get("cached")),
        action_digest=result.get("action_digest"),
        queued_at=queued,
        started_at=began,
        finished_at=result.get("finished_at"),
        # Written since the timeline has phases; before, the wait until started.
        queue_time=result["queue_time"]
        if "queue_time" in result
        else (began - queued)
        if began is not None and queued is not None
        else None,
        duration=result.get("duration"),
        attempts=result.get("attempts") or 0,
        exit_code=result.get("exit_code"),
        cpu_time=result.get("cpu_time"),
        peak_rss=result.get("peak_rss"),
        saved=result.get("saved"),
        log_path=result.get("log_path"),
        check_time=result.get("check_time"),
        restore_time=result.get("restore_time"),
        run_time=result.get("run_time"),
        store_time=result.get("store_time"),
        allowed_failure=bool(result.get("allowed_failure")),
        cache_tier=result.get("cache_tier"),
        worker=result.get("worker"),
    )


def _outputs(results: list[dict[str, Any]]) -> tuple[OutputRow, ...]:
    """Each job's files, once each: (path, sha256, size, artifact type) as written."""
    files = []
    for r in results:
        seen = set()
        for entry in r.get("outputs") or ():
            try:
                path, sha, size, artifact = entry
            except (TypeError, ValueError):
                continue  # written by another version: the rest of the run still counts
            if path not in seen:
                seen.add(path)
                files.append(
                    OutputRow(job=r["name"], path=path, sha256=sha, size=size, artifact=artifact)
                )
    return tuple(files)


def _values(results: list[dict[str, Any]]) -> tuple[ValueRow, ...]:
    """Each job's values, by name (none in the run directories of older versions)."""
    rows = []
    for r in results:
        written = r.get("values")
        if isinstance(written, dict):
            rows += [
                ValueRow(job=r["name"], name=str(k), value=str(v))
                for k, v in sorted(written.items())
            ]
    return tuple(rows)


def _gates(results: list[dict[str, Any]], summary: dict[str, Any]) -> tuple[GateRow, ...]:
    """The jobs' gates then the pipeline's, the last verdict of each (scope, gate)."""
    verdicts: dict[tuple[str, str], GateRow] = {}
    for g in [*(g for r in results for g in r.get("gates") or ()), *(summary.get("gates") or ())]:
        try:
            key = (str(g["scope"]), str(g["gate"]))
            verdicts[key] = GateRow(
                scope=key[0],
                gate=key[1],
                level=str(g["level"]),
                passed=bool(g["passed"]),
                measured=str(g["measured"]),
                threshold=str(g["threshold"]),
                detail=str(g.get("detail") or ""),
            )
        except (KeyError, TypeError):
            continue  # written by another version: the rest of the run still counts
    return tuple(verdicts.values())


def running(run_dir: str) -> bool:
    """Whether the run in `run_dir` is still going: no summary yet, and the process that
    started it still there (see `_alive`)."""
    if os.path.exists(os.path.join(run_dir, "summary.json")):
        return False
    meta = _json(os.path.join(run_dir, "run.json"))
    return meta is None or _alive(meta)


def _alive(meta: dict[str, Any]) -> bool:
    """Whether the process that started the run is still running it (on this host; a
    run started elsewhere is taken as alive: only its own host can tell)."""
    if meta.get("host") != os.uname().nodename:
        return True
    pid = meta.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a pid reused by another program is not the run
        with open(f"/proc/{pid}/stat", "rb") as fh:
            ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])
        began = _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
        return bool(abs(began - float(meta["started_at"])) < 60)
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return True


def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise ValueError("no btime")


def _json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
