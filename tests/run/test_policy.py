"""What a run is decided to be before it starts (conveyor.run.policy): the jobs it runs,
and the history it records itself in."""

from __future__ import annotations

from conveyor.config import load_pipeline
from conveyor.graph.context import detect
from conveyor.model import Pipeline
from conveyor.run.policy import Selection, select_jobs, shared_history
from tests.conftest import Project


def _two_dirs(project: Project) -> Pipeline:
    """Jobs `a` and `b` in their own directories, `c` needing `b`; `b/` changed in the
    last commit."""
    project.write("a/x.txt", "1\n")
    project.write("b/y.txt", "1\n")
    project.pipeline(
        """
        name: dirs
        jobs:
          a: {dir: a, run: 'true'}
          b: {dir: b, run: 'true'}
          c: {needs: [b], dir: a, run: 'true'}
        """
    )
    project.commit()
    project.write("b/y.txt", "2\n")
    project.commit()
    return load_pipeline(str(project.root / "conveyor.yml"))


def test_the_jobs_affected_since_a_ref_and_those_that_need_them(project: Project) -> None:
    pipeline = _two_dirs(project)
    context = detect(pipeline.root, {})
    assert select_jobs(pipeline, context) == Selection(jobs=())
    assert select_jobs(pipeline, context, ["c", "a"]) == Selection(jobs=("c", "a"))
    assert select_jobs(pipeline, context, affected_since="HEAD~1") == Selection(jobs=("b", "c"))
    assert select_jobs(pipeline, context, ["c"], affected_since="HEAD~1") == Selection(
        jobs=("b", "c")
    ), "c and what it needs, narrowed to what changed"
    assert select_jobs(pipeline, context, ["a"], affected_since="HEAD~1") == Selection(
        jobs=(), nothing_affected=True
    )
    assert select_jobs(pipeline, context, affected_since="HEAD") == Selection(
        jobs=(), nothing_affected=True
    )


def test_a_run_records_itself_only_in_a_database_it_was_given(project: Project) -> None:
    project.pipeline("name: h\njobs:\n  a: {run: 'true'}\n")
    own = load_pipeline(str(project.root / "conveyor.yml"))
    assert shared_history(own, {}) is None, "the workspace's own: filled by the next command"
    assert shared_history(own, {"CONVEYOR_DB_URL": "sqlite:////tmp/x.db"}) == (
        "sqlite:////tmp/x.db"
    )
    project.pipeline(
        "name: h\nhistory: {url: 'postgresql://ci@db/runs'}\njobs:\n  a: {run: 'true'}\n"
    )
    named = load_pipeline(str(project.root / "conveyor.yml"), use_cache=False)
    assert shared_history(named, {}) == "postgresql://ci@db/runs"
    assert shared_history(named, {"CONVEYOR_DB_URL": "sqlite:////tmp/x.db"}) == (
        "sqlite:////tmp/x.db"
    ), "the environment's database over the file's"
