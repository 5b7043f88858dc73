"""Environment variables before the build: set, empty or missing, and secret values
never shown."""

from __future__ import annotations

from conveyor.checks.environment import check_env
from tests.checks.conftest import only


def test_env_set_empty_missing() -> None:
    long_value = "x" * 60
    environ = {"AWS_REGION": "eu-west-1", "EMPTY": "", "LONG": long_value}
    region, empty, missing, long = check_env(["AWS_REGION", "EMPTY", "MISSING", "LONG"], environ)
    assert region.ok
    assert region.check == "env AWS_REGION"
    assert region.found == "set: 'eu-west-1'"
    assert not empty.ok
    assert empty.found == "set but empty"
    assert not missing.ok
    assert missing.found == "not set"
    assert missing.expected == "MISSING set and non-empty"
    assert missing.hint.startswith("export MISSING=...")
    assert "CI's variables" in missing.hint
    assert long.ok
    assert long_value not in long.found
    assert long.found == f"set: '{'x' * 37}...'"


def test_env_secret_values_are_never_shown() -> None:
    environ = {"DEPLOY_KEY": "s3cr3t-deploy-value", "GITHUB_TOKEN": "ghp_notreallyatoken123"}
    results = check_env(
        ["DEPLOY_KEY", "GITHUB_TOKEN", "NPM_TOKEN"], environ, secret_names=["DEPLOY_KEY"]
    )
    declared, looks_secret, missing = results
    assert declared.found == "set (value hidden)"
    assert looks_secret.found == "set (value hidden)"
    assert missing.found == "not set"
    assert "secrets" in missing.hint
    # AUTHOR is not AUTH: an ordinary name's value is shown.
    author = only(check_env(["GIT_AUTHOR_NAME"], {"GIT_AUTHOR_NAME": "Ada"}))
    assert author.found == "set: 'Ada'"
    for result in results:
        assert "s3cr3t" not in repr(result)
        assert "ghp_" not in repr(result)
