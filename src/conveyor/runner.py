"""One `conveyor run`, start to end: plan, preflight, run directory, scheduler, sinks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conveyor import graph
from conveyor.errors import EnvironmentProblem
from conveyor.events import EventBus, RunFinished, Sink
from conveyor.executor.local import LocalExecutor
from conveyor.graph import Plan
from conveyor.model import Pipeline, RunContext
from conveyor.runstore import (
    EventLogSink,
    JobLogSink,
    LogNames,
    SummarySink,
    create_run_dir,
    new_run_id,
)
from conveyor.scheduler import RunOptions, Scheduler


@dataclass
class RunOutcome:
    finished: RunFinished
    summary: dict[str, object]
    run_dir: str
    sink_errors: list[str]


def check_secrets(plan: Plan, environ: Mapping[str, str]) -> None:
    """Every secret a running job declares must be set; checked before anything starts."""
    for pj in plan.runnable:
        for name in pj.job.secrets:
            if not environ.get(name):
                raise EnvironmentProblem(
                    f"job '{pj.name}' needs the secret {name}, which is not set in the environment",
                    hint=f"export {name}=... before `conveyor run` (its value is never printed)",
                )


def run_pipeline(
    pipeline: Pipeline,
    context: RunContext,
    environ: Mapping[str, str],
    *,
    selected: Sequence[str] = (),
    parallelism: int,
    keep_going: bool = False,
    sinks: Sequence[Sink] = (),
    kill_grace: float = 5.0,
) -> RunOutcome:
    plan = graph.plan(pipeline, context, selected)
    check_secrets(plan, environ)
    run_id = new_run_id()
    try:
        run_dir = create_run_dir(pipeline.root, run_id)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot create the run directory in {pipeline.root}/.conveyor: {exc.strerror}",
            hint="Conveyor keeps each run's logs and summary there; make it writable",
        ) from None
    summary = SummarySink(run_dir, pipeline.path)
    bus = EventBus([JobLogSink(), EventLogSink(run_dir), summary, *sinks])
    scheduler = Scheduler(
        plan,
        LocalExecutor(grace=kill_grace),
        bus,
        context,
        environ,
        RunOptions(
            run_id=run_id,
            run_dir=run_dir,
            parallelism=parallelism,
            keep_going=keep_going,
            log_name=LogNames(),
        ),
    )
    try:
        finished = scheduler.run()
    finally:
        bus.close()
    return RunOutcome(finished, summary.summary or {}, run_dir, bus.errors)
