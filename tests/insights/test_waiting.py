"""What a job that waited was waiting for, as `conveyor stats` advises on it: a free slot
(more `-j` helps) or something else with slots free (a resource group, the scheduler
serving a cache hit), where more `-j` would not help."""

from __future__ import annotations

import json

import pytest

from conveyor.history.record import JobRow
from conveyor.insights.waiting import full_share, slots_in_use, waits
from tests.conftest import Project


def row(
    name: str,
    queued: float,
    started: float,
    *,
    check_time: float | None = None,
    restore_time: float | None = None,
    run_time: float | None = None,
) -> JobRow:
    own = sum(p or 0.0 for p in (check_time, restore_time, run_time))
    return JobRow(
        name=name,
        status="success",
        reason="",
        cached=run_time is None,
        queued_at=queued,
        started_at=started,
        finished_at=started + own,
        attempts=1,
        check_time=check_time,
        restore_time=restore_time,
        run_time=run_time,
    )


def test_waits_are_before_the_first_phase_and_between_phases() -> None:
    # Checked at 1.0 (0.1 s), then waited for a slot until 3.0, ran 2 s, stored 0.5 s.
    job = JobRow(
        name="j",
        status="success",
        reason="",
        cached=False,
        queued_at=0.0,
        started_at=1.0,
        finished_at=5.5,
        check_time=0.1,
        restore_time=0.0,
        run_time=2.0,
        store_time=0.5,
        attempts=1,
    )
    assert waits(job) == [(0.0, 1.0), (pytest.approx(1.1), 3.0)]
    assert [p for p, _, _ in job.phases()] == ["check", "restore", "run", "store"]


def test_full_share_counts_only_the_time_every_slot_was_busy() -> None:
    # Two jobs executing from 0 to 4 and from 2 to 6; two slots: both busy from 2 to 4.
    a = row("a", 0.0, 0.0, run_time=4.0)
    b = row("b", 0.0, 2.0, run_time=4.0)
    times, counts = slots_in_use([a, b])
    assert (times, counts) == ([0.0, 2.0, 4.0, 6.0], [1, 2, 1, 0])
    assert full_share([(1.0, 5.0)], times, counts, 2) == (2.0, 4.0)
    assert full_share([(1.0, 5.0)], times, counts, 1) == (4.0, 4.0)
    # A hit restoring its outputs holds a slot while it does.
    hit = row("hit", 0.0, 0.0, check_time=0.1, restore_time=5.0)
    times, counts = slots_in_use([hit])
    assert times == pytest.approx([0.1, 5.1])
    assert counts == [1, 0]


def advice(project: Project) -> list[str]:
    stats = project.run("stats", "--json")
    assert stats.code == 0, stats.err
    return [a["message"] for a in json.loads(stats.out)["advice"] if a["kind"] == "queue"]


def test_a_job_waiting_for_the_only_slot_is_told_to_raise_parallelism(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          long: {run: sleep 1.3, cache: false}
          short: {run: "true", cache: false}
        """
    )
    assert project.run("run", "-q", "-j", "1").code == 0
    [said] = advice(project)
    assert said.startswith("jobs waited for a free slot after they were ready: short")
    figures = json.loads(project.run("stats", "--json").out)
    short = next(j for j in figures["jobs"] if j["job"] == "short")
    assert short["slot_bound"] > 0.8  # all but the moments before its own check


def test_a_job_waiting_with_slots_free_is_not_told_to_raise_parallelism(
    project: Project,
) -> None:
    # Two slots, one job running: the other waits for its resource group, not a slot.
    project.pipeline(
        """
        jobs:
          deploy-a: {run: sleep 1.3, cache: false, resource_group: prod}
          deploy-b: {run: "true", cache: false, resource_group: prod, needs: []}
        """
    )
    assert project.run("run", "-q", "-j", "2").code == 0
    [said] = advice(project)
    assert said.startswith("jobs waited with slots free after they were ready: deploy-")
    assert "more `-j` would not help" in said
