"""conveyor.yml written as another CI system's file: `github` (a workflow), `gitlab`
(a .gitlab-ci.yml). What both need of the pipeline is here."""

from __future__ import annotations

from conveyor import model


def bases(pipeline: model.Pipeline) -> dict[str, str]:
    """Each job instance's name -> the job it is an instance of (its matrix's key)."""
    return {job.name: job.base for job in pipeline.jobs}


def has_gates(pipeline: model.Pipeline) -> bool:
    """Whether the pipeline has a gate (which becomes a last job)."""
    return bool(pipeline.gates)
