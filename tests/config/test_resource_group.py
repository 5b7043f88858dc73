"""`resource_group:` on a job: validated, and filled in from the matrix."""

from __future__ import annotations

import pytest

from tests.conftest import Project


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('""', "a resource group needs a name"),
        ('"  "', "a resource group needs a name"),
        ('"a\\tb"', "must not hold control characters"),
        ("[a, b]", "expected a string"),
        ('"deploy-${{ matrix.env }}"', "unknown matrix value 'matrix.env'"),
    ],
)
def test_a_bad_resource_group_is_located(project: Project, value: str, message: str) -> None:
    project.pipeline(f"jobs:\n  deploy:\n    run: 'true'\n    resource_group: {value}\n")
    result = project.run("validate")
    assert result.code == 2
    assert result.err.startswith("conveyor.yml:4:"), result.err
    assert "jobs.deploy.resource_group" in result.err
    assert message in result.err
    assert "Traceback" not in result.err


def test_github_concurrency_points_at_resource_group(project: Project) -> None:
    project.pipeline("jobs:\n  deploy:\n    run: 'true'\n    concurrency: prod\n")
    result = project.run("validate")
    assert result.code == 2
    assert "unknown key 'concurrency' (did you mean 'resource_group'?)" in result.err


def test_matrix_values_name_the_group(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          deploy:
            matrix:
              env: [staging, prod]
            resource_group: deploy-${{ matrix.env }}
            run: 'true'
        """
    )
    assert project.run("validate").code == 0
    from conveyor.config import load_pipeline

    jobs = load_pipeline(str(project.root / "conveyor.yml")).jobs
    assert sorted(j.resource_group or "" for j in jobs) == ["deploy-prod", "deploy-staging"]
