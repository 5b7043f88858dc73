"""Where a cached result came from, as a hit says it: the run, and the machine when it
is not this one (a result from the team's remote cache), or another client's name."""

from __future__ import annotations

import pytest
from buildgrid.common.protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2

from conveyor.cache.results import origin_of


@pytest.mark.parametrize(
    ("worker", "said"),
    [
        (
            "conveyor@ci-runner-7 run 20261128-101010.000-abcd",
            "run 20261128-101010.000-abcd on ci-runner-7",
        ),
        ("conveyor@laptop run 20261128-101010.000-abcd", "run 20261128-101010.000-abcd"),
        ("buildbox-casd@worker-3", "buildbox-casd@worker-3 (another client of the cache)"),
        ("", "an earlier run with the same inputs"),
    ],
)
def test_a_hit_says_which_run_and_which_machine(worker: str, said: str) -> None:
    result = re_pb2.ActionResult()
    result.execution_metadata.worker = worker
    assert origin_of(result, "laptop") == said
