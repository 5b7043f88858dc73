"""Reads each finished job's JUnit reports into its run directory (`tests/<job>.json`),
while they are the job's own: a later run may overwrite the files. The history records
them from there."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from conveyor.events import Event, JobFinished
from conveyor.model import JobStatus, Pipeline
from conveyor.reports.junit import ReportError, read_cases, report_files


class TestReportSink:
    events = (JobFinished,)
    __test__ = False  # not a pytest class, despite the name

    def __init__(self, pipeline: Pipeline, run_dir: str, log_name: Callable[[str], str]) -> None:
        self.pipeline = pipeline
        self.jobs = {job.name: job for job in pipeline.jobs if job.reports.junit}
        self.dir = os.path.join(run_dir, "tests")
        self.log_name = log_name
        self.problems: list[str] = []

    def handle(self, event: Event) -> None:
        assert isinstance(event, JobFinished)
        result = event.result
        job = self.jobs.get(result.name)
        if job is None or result.status in (JobStatus.SKIPPED, JobStatus.CANCELLED):
            return
        cases = []
        for path in report_files(self.pipeline.root, job.dir, job.reports.junit):
            try:
                cases += read_cases(path)
            except ReportError as exc:
                self.problems.append(f"{result.name}: {exc}")
        os.makedirs(self.dir, exist_ok=True)
        name = self.log_name(result.name).removesuffix(".log")
        with open(os.path.join(self.dir, f"{name}.json"), "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"job": result.name, "cases": cases}) + "\n")

    def close(self) -> None:
        pass
