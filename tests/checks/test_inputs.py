"""Input patterns that match no file: found exactly as inputs are selected, with a
did-you-mean, except what a needed job writes; `conveyor validate` warns and exits 0."""

from __future__ import annotations

from conveyor.checks.inputs import (
    Unmatched,
    pipeline_unmatched,
    produced_by,
    unmatched_inputs,
    unmatched_message,
    workspace_pool,
)
from conveyor.model import Job, Pipeline
from tests.conftest import Project

POOL = sorted(
    [
        "README.md",
        "pyproject.toml",
        "src/app/__init__.py",
        "src/app/main.py",
        "src/app/util.py",
        "services/api/handler.py",
        "services/api/requirements.txt",
        "docs/index.md",
    ]
)


def job(*inputs: str, name: str = "build", dir: str = ".", outputs: tuple[str, ...] = ()) -> Job:
    return Job(
        name=name,
        base=name,
        run=("true",),
        shell=("sh", "-c"),
        inputs=inputs,
        dir=dir,
        outputs=outputs,
    )


def test_patterns_that_match_are_not_reported() -> None:
    assert (
        unmatched_inputs(
            job("src/**/*.py", "pyproject.toml", "docs", "docs/", "src/*/main.py", "*.md"), POOL
        )
        == []
    )


def test_a_typo_in_a_file_name_gets_the_closest_path() -> None:
    found = unmatched_inputs(job("src/**/*.py", "src/app/mian.py"), POOL)
    assert found == [
        Unmatched("build", "src/app/mian.py", "src/app/main.py", ("jobs", "build", "inputs", 1))
    ]
    assert unmatched_message(found[0]) == (
        "'src/app/mian.py' matches no file (did you mean 'src/app/main.py'?)"
    )


def test_a_file_in_another_directory_is_found_by_its_basename() -> None:
    # Too far as a path, but a file of that name exists elsewhere.
    (found,) = unmatched_inputs(job("build/ci/legacy/config/requirement.txt"), POOL)
    assert found.suggestion == "services/api/requirements.txt"


def test_a_directory_typo_in_a_glob_suggests_the_glob_under_the_right_directory() -> None:
    (found,) = unmatched_inputs(job("scr/**/*.py"), POOL)
    assert found.suggestion == "src/**/*.py"
    (found,) = unmatched_inputs(job("servics/"), POOL)
    assert found.suggestion == "services/", "a directory pattern gets a directory, as written"


def test_nothing_close_means_no_suggestion() -> None:
    (found,) = unmatched_inputs(job("zzzzzz/qqq.rs"), POOL)
    assert found.suggestion is None
    assert unmatched_message(found) == "'zzzzzz/qqq.rs' matches no file"
    (found,) = unmatched_inputs(job("src/**/*.rs"), POOL)
    assert found.suggestion is None, "the directory exists: no guess at the file part"


def test_patterns_are_relative_to_the_job_dir_and_so_are_suggestions() -> None:
    assert unmatched_inputs(job("handler.py", "../../src/**", dir="services/api"), POOL) == []
    (found,) = unmatched_inputs(job("../../src/app/utils.py", dir="services/api"), POOL)
    assert found.suggestion == "../../src/app/util.py"
    (found,) = unmatched_inputs(job("hadnler.py", dir="services/api"), POOL)
    assert found.suggestion == "handler.py"


def test_excludes_are_not_checked_and_prefixes_are_not_matches() -> None:
    assert unmatched_inputs(job("src/**", "!src/nothing/**"), POOL) == []
    # `src/app/main` is a prefix of a file, not a file or a directory of the pool.
    (found,) = unmatched_inputs(job("src/app/main"), POOL)
    assert found.pattern == "src/app/main"
    assert found.suggestion == "src/app/main.py"


def test_what_a_needed_job_writes_is_not_reported_even_transitively() -> None:
    gen = job(name="gen", outputs=("gen/",))
    wheel = job(name="wheel", dir="py", outputs=("dist/*.whl",))
    mid = job(name="mid")
    build = job(
        "gen/version.txt",
        "gen",
        "gen/**/*.txt",
        "py/dist/app-1.0.whl",
        "py/dist/*.whl",
        "out/x.txt",
        name="build",
    )
    jobs = {j.name: j for j in (gen, wheel, mid, build)}
    needs = {"build": ["mid"], "mid": ["gen", "wheel"], "gen": [], "wheel": []}
    found = unmatched_inputs(build, POOL, produced_by(build, jobs, needs))
    assert [u.pattern for u in found] == ["out/x.txt"]
    # Without the needs, every one of them is reported.
    assert len(unmatched_inputs(build, POOL, produced_by(build, jobs, {}))) == 6


def test_a_pipeline_reports_a_matrix_pattern_once(project: Project) -> None:
    instances = tuple(
        Job(
            name=f"test (py={v})",
            base="test",
            run=("true",),
            shell=("sh", "-c"),
            matrix=(("py", v),),
            inputs=("src/app/mian.py",),
        )
        for v in ("3.11", "3.12")
    )
    pipeline = Pipeline(path="conveyor.yml", root=str(project.root), jobs=instances)
    assert [u.job for u in pipeline_unmatched(pipeline, POOL)] == ["test (py=3.11)"]


def test_the_pool_is_tracked_and_untracked_not_ignored_files(project: Project) -> None:
    project.write("kept.txt", "k\n")
    project.write("gone.txt", "g\n")
    project.write(".gitignore", "ignored/\n")
    project.commit()
    project.write("new.txt", "n\n")
    project.write("ignored/x.txt", "i\n")
    (project.root / "gone.txt").unlink()
    assert workspace_pool(str(project.root)) == [".gitignore", "kept.txt", "new.txt"]


def test_validate_warns_with_the_place_and_exits_0(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          gen:
            run: mkdir -p gen && echo 1 > gen/version.txt
            outputs: [gen/]
          build:
            needs: [gen]
            inputs:
              - src/**/*.py
              - src/mian.py
              - gen/version.txt
              - "!src/nothing.py"
            run: "true"
        """
    )
    project.write("src/main.py", "print('hi')\n")
    project.write(".gitignore", "gen/\n")
    project.commit()
    result = project.run("validate")
    assert result.code == 0
    assert result.out == "conveyor.yml: valid: 2 job(s)\n"
    assert result.err.splitlines() == [
        "conveyor.yml:9:9: warning: jobs.build.inputs[1]: 'src/mian.py' matches no file "
        "(did you mean 'src/main.py'?)"
    ]


def test_validate_without_inputs_warns_about_nothing(project: Project) -> None:
    project.pipeline("jobs:\n  a:\n    run: 'true'\n")
    result = project.run("validate")
    assert (result.code, result.err) == (0, "")
