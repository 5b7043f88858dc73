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
