"""`remote:` in the pipeline file, `--remote` and the CONVEYOR_REMOTE variables: what a
run ends up using, and every mistake located with what would be right."""

from __future__ import annotations

import pytest

from conveyor.config.remote import resolve, target, url_problem
from conveyor.errors import UsageError
from conveyor.model import Remote
from tests.conftest import Project


def test_a_remote_section_becomes_the_pipelines_remote(project: Project) -> None:
    project.pipeline(
        """
        remote:
          url: grpcs://cache.example.com
          instance_name: main
          upload: true
          ca_file: certs/ca.pem
          auth: {header: x-buildbuddy-api-key, env: BB_KEY}
          timeout: 30s
          retries: 5
        jobs:
          a: {run: "true"}
        """
    )
    from conveyor.config import load_pipeline

    pipeline = load_pipeline(str(project.root / "conveyor.yml"))
    assert pipeline.remote == Remote(
        url="grpcs://cache.example.com",
        instance_name="main",
        upload=True,
        ca_file=str(project.root / "certs/ca.pem"),
        auth_header="x-buildbuddy-api-key",
        auth_env="BB_KEY",
        timeout=30.0,
        retries=5,
    )
    assert target(pipeline.remote.url) == ("cache.example.com:443", True)


@pytest.mark.parametrize(
    ("remote", "where", "said"),
    [
        ("url: grpc://cache", "2:8", "a plain grpc:// address needs its port"),
        ("url: http://cache:80", "2:8", "expected grpc://host:port or grpcs://host[:port]"),
        ("url: grpc://cache:99999", "2:8", "port 99999 is out of range"),
        ("url: grpc://cache:80\n  upload: yes", "3:11", "expected true or false"),
        ("url: grpc://cache:80\n  auth: {env: 'Bearer abc'}", "3:15", "never the credential"),
        ("url: grpc://cache:80\n  auth: {env: T, header: Auth}", "3:26", "lower case"),
        ("url: grpcs://cache\n  client_cert: c.pem", "1:1", "give both"),
        ("url: grpc://cache:80\n  ca_file: ca.pem", "1:1", "use a grpcs:// url"),
        ("url: grpc://cache:80\n  retries: 50", "3:12", "must be at most 20"),
        ("url: grpc://cache:80\n  tls: true", "3:3", "unknown key"),
    ],
)
def test_mistakes_in_remote_are_located(
    project: Project, remote: str, where: str, said: str
) -> None:
    project.write("conveyor.yml", f"remote:\n  {remote}\njobs:\n  a: {{run: 'true'}}\n")
    result = project.run("list")
    assert result.code == 2
    assert f"conveyor.yml:{where}: remote" in result.err
    assert said in result.err
    assert "Traceback" not in result.err


def test_the_flag_and_the_variables_win_over_the_file() -> None:
    filed = Remote(url="grpc://file:1", instance_name="ci", upload=False)
    assert resolve(filed, {}) == filed
    assert resolve(filed, {}, url="grpcs://flag") == filed._replace(url="grpcs://flag")
    assert resolve(filed, {"CONVEYOR_REMOTE": "grpc://env:2"}).url == "grpc://env:2"  # type: ignore[union-attr]
    # The flag wins over the variable; --no-remote and `off` over everything.
    assert resolve(None, {"CONVEYOR_REMOTE": "grpc://env:2"}, url="grpc://flag:3") == Remote(
        url="grpc://flag:3"
    )
    assert resolve(filed, {"CONVEYOR_REMOTE": "grpc://env:2"}, off=True) is None
    assert resolve(filed, {"CONVEYOR_REMOTE": "off"}) is None
    # CI turns writing on without another pipeline file, a laptop off.
    assert resolve(filed, {"CONVEYOR_REMOTE_UPLOAD": "1"}).upload is True  # type: ignore[union-attr]
    up = filed._replace(upload=True)
    assert resolve(up, {"CONVEYOR_REMOTE_UPLOAD": "false"}).upload is False  # type: ignore[union-attr]
    assert resolve(None, {"CONVEYOR_REMOTE_UPLOAD": "1"}) is None


def test_bad_values_from_the_flag_or_environment_say_where_they_came_from() -> None:
    with pytest.raises(UsageError, match=r"--remote: .*needs its port"):
        resolve(None, {}, url="grpc://cache")
    with pytest.raises(UsageError, match=r"CONVEYOR_REMOTE: .*expected grpc://"):
        resolve(None, {"CONVEYOR_REMOTE": "cache:8980"})
    with pytest.raises(UsageError, match="CONVEYOR_REMOTE_UPLOAD: expected 1 or 0"):
        resolve(Remote(url="grpc://c:1"), {"CONVEYOR_REMOTE_UPLOAD": "sometimes"})
    assert url_problem("grpc://[::1]:8980") is None
    assert target("grpc://[::1]:8980") == ("[::1]:8980", False)


def test_a_bad_remote_flag_is_a_usage_error_before_anything_runs(project: Project) -> None:
    project.pipeline("jobs:\n  a: {run: 'touch ran'}\n")
    result = project.run("run", "--remote", "cache:8980")
    assert result.code == 2
    assert "--remote: expected grpc://host:port" in result.err
    assert not (project.root / "ran").exists()


def test_executor_and_platform_are_read_per_job(project: Project) -> None:
    project.pipeline(
        """
        remote: {url: "grpc://cache:8980", execute: true}
        jobs:
          build:
            run: make
            inputs: [src/**]
            executor: remote
            platform: {pool: large, OSFamily: linux, cores: 8}
          lint: {run: ruff ., inputs: [src/**], executor: local}
        """
    )
    from conveyor.config import load_pipeline

    pipeline = load_pipeline(str(project.root / "conveyor.yml"))
    assert pipeline.remote is not None
    assert pipeline.remote.execute
    jobs = {job.name: job for job in pipeline.jobs}
    assert jobs["build"].executor == "remote"
    assert jobs["build"].platform == (("OSFamily", "linux"), ("cores", "8"), ("pool", "large"))
    assert jobs["lint"].executor == "local"


@pytest.mark.parametrize(
    ("job", "at", "said"),
    [
        ("{run: make, executor: remote}", "remote", "declares no `inputs:`"),
        ("{run: make, inputs: [a], cache: false, executor: remote}", "remote", "not cached"),
        ("{run: make, inputs: [a], secrets: [TOKEN], executor: remote}", "remote", "uploaded"),
        ("{run: make, inputs: [a], finally: [echo], executor: remote}", "remote", "`finally:`"),
        ("{run: make, executor: elsewhere}", "elsewhere", "'local' or 'remote'"),
        ("{run: make, platform: [pool]}", "[pool]", "mapping"),
    ],
)
def test_a_job_that_cannot_run_remotely_is_refused_where_it_says_so(
    project: Project, job: str, at: str, said: str
) -> None:
    """The error points at the value that is wrong (line 3, its column)."""
    project.write("conveyor.yml", f"remote: {{url: 'grpc://c:1'}}\njobs:\n  a: {job}\n")
    result = project.run("validate")
    assert result.code == 2, result.out
    column = len("  a: ") + job.index(at) + 1
    assert f"conveyor.yml:3:{column}:" in result.err
    assert said in result.err
    assert "Traceback" not in result.err


def test_execute_can_be_turned_on_from_ci_and_the_flag_needs_a_remote(project: Project) -> None:
    filed = Remote(url="grpc://file:1")
    assert resolve(filed, {"CONVEYOR_REMOTE_EXECUTE": "1"}).execute is True  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="CONVEYOR_REMOTE_EXECUTE: expected 1 or 0"):
        resolve(filed, {"CONVEYOR_REMOTE_EXECUTE": "maybe"})
    project.pipeline("jobs:\n  a: {run: 'touch ran', inputs: [conveyor.yml]}\n")
    result = project.run("run", "--remote-execute")
    assert result.code == 2
    assert "--remote-execute needs a remote" in result.err
    assert not (project.root / "ran").exists()


def test_which_jobs_a_remote_runs() -> None:
    from conveyor.config.remote import runs_remotely
    from conveyor.model import Job

    plain = Job(name="a", base="a", run=("make",), shell=("sh", "-c"), inputs=("src/**",))
    remote, executing = Remote(url="grpc://c:1"), Remote(url="grpc://c:1", execute=True)
    assert not runs_remotely(plain, remote)
    assert runs_remotely(plain, executing)
    assert not runs_remotely(plain, None)
    assert not runs_remotely(Job(**{**plain.__dict__, "executor": "local"}), executing)
    assert runs_remotely(Job(**{**plain.__dict__, "executor": "remote"}), remote)
    # With `remote.execute`, a job that cannot go (no inputs) stays here rather than fail.
    assert not runs_remotely(Job(**{**plain.__dict__, "inputs": ()}), executing)
