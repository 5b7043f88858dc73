"""Manifests and config files that must parse: real files, errors at file:line:col."""

from __future__ import annotations

from pathlib import Path

from conveyor.checks.manifests import (
    MANIFEST_PATTERNS,
    check_manifests,
    select_manifests,
)
from tests.checks.conftest import only, write


def test_valid_and_invalid_package_json(tmp_path: Path) -> None:
    write(tmp_path, "package.json", '{"name": "app", "dependencies": {"lodash": "^4.17.21"}}\n')
    write(tmp_path, "web/package.json", '{\n  "name": "web"\n    "version": "1.0.0"\n}\n')
    good, bad = check_manifests(str(tmp_path), ["package.json", "web/package.json"])
    assert good.ok
    assert good.check == "manifest package.json"
    assert not bad.ok
    assert bad.check == "manifest web/package.json"
    assert bad.location == "web/package.json:3:5"
    assert bad.expected == "valid JSON"
    assert bad.found.startswith("Expecting ',' delimiter")
    assert "web/package.json:3:5" in bad.hint


def test_package_json_must_be_an_object(tmp_path: Path) -> None:
    write(tmp_path, "package.json", '["not", "an", "object"]\n')
    result = only(check_manifests(str(tmp_path), ["package.json"]))
    assert not result.ok
    assert result.found == "a JSON array"
    assert result.expected == "a JSON object ({...}) at the top level"
    assert result.location == "package.json"


def test_invalid_pyproject_toml(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nname = "app"\nversion = \n')
    result = only(check_manifests(str(tmp_path), ["pyproject.toml"]))
    assert not result.ok
    assert result.expected == "valid TOML"
    assert result.location == "pyproject.toml:3:11"
    assert result.found == "Invalid value"  # the position is in the location


def test_pyproject_project_needs_a_name(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[project]\nversion = "1.0"\n')
    result = only(check_manifests(str(tmp_path), ["pyproject.toml"]))
    assert not result.ok
    assert result.found == "no `name` in [project]"
    assert 'name = "your-package"' in result.hint


def test_yaml_manifests(tmp_path: Path) -> None:
    write(tmp_path, ".github/workflows/ci.yml", "on: push\njobs:\n  test: runs-on: x\n")
    # GitLab's !reference tag is valid YAML that the safe loader cannot construct.
    write(
        tmp_path,
        ".gitlab-ci.yml",
        """
        .setup:
          script: [echo hi]
        test:
          script:
            - !reference [.setup, script]
        """,
    )
    bad, gitlab = check_manifests(str(tmp_path), [".github/workflows/ci.yml", ".gitlab-ci.yml"])
    assert not bad.ok
    assert bad.expected == "valid YAML"
    assert bad.location == ".github/workflows/ci.yml:3:16"
    assert "mapping values are not allowed" in bad.found
    assert gitlab.ok


def test_yaml_duplicate_key_does_not_show_values(tmp_path: Path) -> None:
    write(tmp_path, "pnpm-workspace.yaml", "token: first-value\ntoken: second-value\n")
    result = only(check_manifests(str(tmp_path), ["pnpm-workspace.yaml"]))
    assert not result.ok
    assert result.location == "pnpm-workspace.yaml:2:1"
    assert "duplicate key" in result.found
    assert "first-value" not in repr(result)
    assert "second-value" not in repr(result)


def test_tsconfig_allows_comments_and_trailing_commas(tmp_path: Path) -> None:
    write(
        tmp_path,
        "tsconfig.json",
        """
        {
          // TypeScript accepts comments
          "compilerOptions": {
            "strict": true, /* and trailing commas */
          },
        }
        """,
    )
    write(tmp_path, "app/tsconfig.json", '{\n  /* a comment */ "a": 1,\n  "b": ]\n}\n')
    good, bad = check_manifests(str(tmp_path), ["tsconfig.json", "app/tsconfig.json"])
    assert good.ok
    assert not bad.ok
    assert bad.location == "app/tsconfig.json:3:8"


def test_setup_cfg_duplicate_option(tmp_path: Path) -> None:
    write(tmp_path, "setup.cfg", "[metadata]\npassword = hunter2\npassword = hunter3\n")
    result = only(check_manifests(str(tmp_path), ["setup.cfg"]))
    assert not result.ok
    assert result.expected == "valid INI"
    assert result.location == "setup.cfg:3"
    assert "hunter" not in repr(result)


def test_select_manifests() -> None:
    files = [
        "package.json",
        "web/package.json",
        "web/tsconfig.build.json",
        ".github/workflows/ci.yml",
        "tests/fixtures/data.json",
        "docs/mkdocs.yml",
        "go.mod",
    ]
    assert select_manifests(files) == [
        "package.json",
        "web/package.json",
        "web/tsconfig.build.json",
        ".github/workflows/ci.yml",
    ]
    assert "*.json" not in MANIFEST_PATTERNS
