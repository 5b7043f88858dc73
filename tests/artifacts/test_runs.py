"""Real `conveyor run`s storing artifacts, and the `conveyor artifacts` commands on what
they stored: versions from every source, immutability, verification that names a
tampered byte, fetch, promotion, retention, the SBOM and the build-output hand-off."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.artifacts.archive import safe_extract
from tests.conftest import Project


def _versions(project: Project, *args: str) -> list[dict[str, Any]]:
    listed = project.run("artifacts", "list", "--json", *args)
    assert listed.code == 0, listed.err
    return list(json.loads(listed.out)["versions"])


def _show(project: Project, ref: str) -> dict[str, Any]:
    shown = project.run("artifacts", "show", ref, "--json")
    assert shown.code == 0, shown.err
    return dict(json.loads(shown.out))


BUILD = """
    name: shop
    jobs:
      build:
        run:
          - mkdir -p dist && echo "wheel $BUILD_SALT" > dist/shop-1.0-py3-none-any.whl
          - echo doc > dist/README.md
        pass_env: [BUILD_SALT]
        artifacts:
          paths: [dist/]
          name: shop
          version: "1.0.{{ run_number }}"
"""


def test_a_run_stores_its_artifacts_as_a_version(project: Project) -> None:
    project.pipeline(BUILD)
    project.commit()
    first = project.run("run", "--plain")
    assert first.code == 0, first.err
    assert "conveyor: artifact shop@1.0.1 stored: 2 files" in first.out
    v = _show(project, "shop@1.0.1")
    commit = project.git("rev-parse", "HEAD")
    assert (v["name"], v["version"], v["channel"], v["type"]) == (
        "shop",
        "1.0.1",
        "dev",
        "application",
    )
    assert (v["pipeline"], v["job"], v["branch"], v["commit"], v["build_number"]) == (
        "shop",
        "build",
        "main",
        commit,
        1,
    )
    assert v["run_id"] == project.runs()[-1].name
    assert v["metadata"]["version_source"] == "template 1.0.{{ run_number }}"
    files = {f["path"]: f for f in v["files"]}
    wheel = (project.root / "dist" / "shop-1.0-py3-none-any.whl").read_bytes()
    import hashlib

    assert files["dist/shop-1.0-py3-none-any.whl"]["sha256"] == hashlib.sha256(wheel).hexdigest()
    assert files["dist/shop-1.0-py3-none-any.whl"]["size"] == len(wheel)
    assert (
        files["dist/shop-1.0-py3-none-any.whl"]["media_type"] == "application/vnd.python.wheel+zip"
    )
    assert files["dist/README.md"]["media_type"] == "text/markdown"
    assert v["digest"].startswith("sha256:")
    store = project.root / ".conveyor" / "artifacts"
    assert Path(files["dist/README.md"]["blob"]).parent.parent == store / "blobs" / "sha256"

    # A cache hit restores the files and stores them as the next version: the same bytes,
    # stored once.
    import shutil

    shutil.rmtree(project.root / "dist")
    second = project.run("run", "--plain")
    assert second.code == 0
    assert "cached" in second.out
    assert "conveyor: artifact shop@1.0.2 stored" in second.out
    again = _show(project, "shop@1.0.2")
    assert again["digest"] == v["digest"]
    assert len(list((store / "blobs" / "sha256").rglob("*"))) - 2 == 2, "two blobs, two fan dirs"
    listed = project.run("artifacts", "list")
    assert listed.code == 0
    assert [line.split()[0] for line in listed.out.splitlines()] == [
        "ARTIFACT",
        "shop@1.0.1",
        "shop@1.0.2",
    ]
    assert ".conveyor" not in project.git("status", "--porcelain"), "the store is ignored by git"


def test_a_version_is_immutable_and_the_run_says_both_digests(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.pipeline(BUILD.replace('"1.0.{{ run_number }}"', "2.0.0"))
    project.commit()
    monkeypatch.setenv("BUILD_SALT", "one")
    assert project.run("run").code == 0
    stored = _show(project, "shop@2.0.0")["digest"]
    monkeypatch.setenv("BUILD_SALT", "one")
    same = project.run("run", "--plain", "--no-cache")
    assert same.code == 0, "the same bytes again: nothing to refuse"
    assert "shop@2.0.0 was stored before with the same bytes" in same.out
    monkeypatch.setenv("BUILD_SALT", "two")
    other = project.run("run", "--plain")
    assert other.code == 1
    said = other.out + other.err
    assert "artifact shop@2.0.0 is already stored" in said
    assert stored in said
    offered = [w for w in said.split() if w.startswith("sha256:") and w.rstrip(",") != stored]
    assert offered, "the refused bytes' digest is named too"
    assert _show(project, "shop@2.0.0")["digest"] == stored, "the stored version is untouched"
    assert [v["version"] for v in _versions(project)] == ["2.0.0"]


def test_versions_from_every_source(project: Project) -> None:
    project.write("pyproject.toml", '[project]\nname = "shop"\nversion = "3.1.4"\n')
    project.write("web/package.json", '{"name": "web", "version": "5.0.0-beta.2"}\n')
    project.write(
        "crates/core/Cargo.toml",
        '[package]\nname = "core"\nversion.workspace = true\n',
    )
    project.write("crates/Cargo.toml", '[workspace]\n[workspace.package]\nversion = "0.9.1"\n')
    project.pipeline(
        """
        name: shop
        jobs:
          literal:
            run: echo a > a.txt
            artifacts: {paths: [a.txt], version: "7.7.7"}
          described:
            run: echo b > b.txt
            artifacts: {paths: [b.txt], version: {from: git}}
          python:
            run: echo c > c.txt
            artifacts: {paths: [c.txt], version: {from: pyproject.toml}}
          node:
            dir: web
            run: echo d > d.txt
            artifacts:
              paths: [d.txt]
              version: {from: package.json, template: "{{ version }}+{{ short_commit }}"}
          rust:
            dir: crates/core
            run: echo e > e.txt
            artifacts: {paths: [e.txt], version: {from: Cargo.toml}}
          templated:
            run: echo f > f.txt
            artifacts: {paths: [f.txt], version: "{{ date }}.{{ branch }}.{{ run_number }}"}
          default:
            run: echo g > g.txt
            artifacts: [g.txt]
        """
    )
    project.commit()
    project.git("tag", "v1.2.0")
    project.git("commit", "-q", "--allow-empty", "-m", "after the tag")
    project.git("checkout", "-q", "-b", "feature/login")
    done = project.run("run", "--plain")
    assert done.code == 0, done.out + done.err
    short = project.git("rev-parse", "--short=12", "HEAD")
    described = project.git("describe", "--tags", "--always")
    assert described.startswith("v1.2.0-1-g")
    today = time.strftime("%Y%m%d", time.gmtime())
    got = {v["name"]: (v["version"], v["metadata"]["version_source"]) for v in _versions(project)}
    assert got == {
        "literal": ("7.7.7", "literal"),
        "described": (described, "git describe"),
        "python": ("3.1.4", "pyproject.toml"),
        "node": (f"5.0.0-beta.2+{short}", "package.json"),
        "rust": ("0.9.1", "Cargo.toml"),
        "templated": (
            f"{today}.feature-login.1",
            "template {{ date }}.{{ branch }}.{{ run_number }}",
        ),
        "default": ("1", "build number"),
    }


def test_a_source_without_a_version_fails_the_job_with_the_reason(project: Project) -> None:
    project.write(
        "pyproject.toml",
        '[project]\nname = "shop"\ndynamic = ["version"]\n',
    )
    project.pipeline(
        """
        jobs:
          build:
            run: echo c > c.txt
            artifacts: {paths: [c.txt], version: {from: pyproject.toml}}
        """
    )
    project.commit()
    done = project.run("run", "--plain")
    assert done.code == 1
    assert "pyproject.toml states no version ([project] version is dynamic" in done.out
    assert _versions(project) == []


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (
            '"1.{{ run_numbr }}"',
            "unknown field {{ run_numbr }} in the version template (did you mean 'run_number'?)",
        ),
        ('"1.{{ run_number"', "unbalanced braces"),
        ('"1.0 beta"', "is not a version"),
        ("{from: setup.py}", "from: unknown version source 'setup.py'"),
        ('{from: git, template: "{{ nope }}"}', "template: unknown field {{ nope }}"),
        ("{form: git}", "form: unknown key (valid keys: from, template)"),
        ('"{{ version }}"', "{{ version }} names the version taken from a source"),
        ("1.10", "expected a quoted string"),
    ],
)
def test_a_bad_version_is_a_located_config_error(
    project: Project, version: str, message: str
) -> None:
    project.pipeline(
        f"""
        jobs:
          build:
            run: echo a > a.txt
            artifacts:
              paths: [a.txt]
              version: {version}
        """
    )
    checked = project.run("validate")
    assert checked.code == 2
    assert checked.err.startswith("conveyor.yml:6:")
    assert "jobs.build.artifacts.version" in checked.err
    assert message in checked.err


def test_artifacts_follow_when(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          tests:
            run: echo report > report.xml && exit 3
            allow_failure: true
            artifacts: {paths: [report.xml], when: on_failure, type: report}
          lint:
            run: echo lint > lint.txt && exit 1
            allow_failure: true
            artifacts: {paths: [lint.txt]}
          docs:
            run: echo docs > docs.txt
            artifacts: {paths: [docs.txt], when: always}
          coverage:
            run: echo c > cov.txt
            artifacts: {paths: [cov.txt], when: on_failure}
        """
    )
    project.commit()
    done = project.run("run", "--plain")
    assert done.code == 0, done.out
    stored = {v["name"]: v["type"] for v in _versions(project)}
    assert stored == {"tests": "report", "docs": "application"}


def test_verify_names_a_tampered_byte(project: Project) -> None:
    project.pipeline(BUILD)
    project.commit()
    assert project.run("run").code == 0
    ok = project.run("artifacts", "verify", "shop@1.0.1")
    assert ok.code == 0
    assert "✔ shop@1.0.1: 2 digest(s) match their bytes" in ok.out
    wheel = next(f for f in _show(project, "shop@1.0.1")["files"] if f["path"].endswith(".whl"))
    blob = Path(wheel["blob"])
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[0] ^= 0x20
    blob.write_bytes(bytes(data))
    import hashlib

    bad = project.run("artifacts", "verify", "shop@1.0.1")
    assert bad.code == 1
    assert "✘ shop@1.0.1: 1 problem(s)" in bad.out
    line = next(line for line in bad.out.splitlines() if "dist/shop-1.0-py3-none-any.whl" in line)
    assert wheel["sha256"] in line
    assert hashlib.sha256(bytes(data)).hexdigest() in line
    as_json = json.loads(project.run("artifacts", "verify", "--json").out)
    assert not as_json["ok"]
    assert (
        as_json["versions"][0]["problems"][0]["actual"] == hashlib.sha256(bytes(data)).hexdigest()
    )
    # Fetching a tampered version writes nothing; promoting it is refused.
    out = project.root.parent / "fetched"
    fetched = project.run("artifacts", "fetch", "shop@1.0.1", "--to", str(out))
    assert fetched.code == 1
    assert not out.exists()
    assert project.run("artifacts", "promote", "shop@1.0.1", "--to", "prod").code == 1
    assert _show(project, "shop@1.0.1")["channel"] == "dev"


def test_fetch_copies_a_verified_version_and_never_overwrites(project: Project) -> None:
    project.pipeline(
        BUILD.replace(
            "echo doc > dist/README.md",
            "printf '#!/bin/sh\\n' > dist/run.sh && chmod +x dist/run.sh",
        )
    )
    project.commit()
    assert project.run("run").code == 0
    out = project.root.parent / "deploy"
    fetched = project.run("artifacts", "fetch", "shop@1.0.1", "--to", str(out))
    assert fetched.code == 0, fetched.err
    assert "✔ shop@1.0.1: 2 file(s) verified and written to" in fetched.out
    assert (out / "dist" / "run.sh").read_bytes() == b"#!/bin/sh\n"
    assert os.stat(out / "dist" / "run.sh").st_mode & 0o111, "executable bits kept"
    assert (out / "dist" / "shop-1.0-py3-none-any.whl").read_bytes() == (
        project.root / "dist" / "shop-1.0-py3-none-any.whl"
    ).read_bytes()
    again = project.run("artifacts", "fetch", "shop@1.0.1", "--to", str(out))
    assert again.code == 2
    assert "not overwritten" in again.err
    assert project.run("artifacts", "fetch", "shop@1.0.1", "--to", str(out), "--force").code == 0
    for suffix in (".zip", ".tar.gz"):
        archive = project.root.parent / f"shop{suffix}"
        made = project.run("artifacts", "fetch", "shop", "--archive", str(archive))
        assert made.code == 0, made.err
        unpacked = project.root.parent / f"unpacked{suffix}"
        assert sorted(safe_extract(str(archive), str(unpacked))) == [
            "dist/run.sh",
            "dist/shop-1.0-py3-none-any.whl",
        ]
        assert os.stat(unpacked / "dist" / "run.sh").st_mode & 0o111
    missing = project.run("artifacts", "fetch", "shop@9", "--to", str(out))
    assert missing.code == 2
    assert "no version '9' of artifact 'shop'" in missing.err
    both = project.run("artifacts", "fetch", "shop@1.0.1")
    assert both.code == 2
    assert "--to DIR or --archive FILE" in both.err


def test_promote_prune_and_retention(project: Project) -> None:
    project.pipeline(
        """
        name: shop
        artifacts: {protected_channels: [prod, staging]}
        jobs:
          build:
            run: echo "$RANDOM$RANDOM" > app.bin
            cache: false
            artifacts:
              paths: [app.bin]
              name: app
              version: "0.{{ run_number }}"
              keep: {last: 2, per: branch}
        """
    )
    project.commit()
    for _ in range(2):
        assert project.run("run").code == 0
    assert project.run("artifacts", "promote", "app@0.1", "--to", "staging").code == 0
    promoted = project.run("artifacts", "promote", "app@0.1", "--to", "prod")
    assert promoted.code == 0
    assert "✔ app@0.1: staging -> prod (protected" in promoted.out
    v = _show(project, "app@0.1")
    assert v["channel"] == "prod"
    assert [p["to"] for p in v["promotions"]] == ["staging", "prod"]
    project.git("checkout", "-q", "-b", "topic")
    assert project.run("run").code == 0
    project.git("checkout", "-q", "main")
    for _ in range(2):
        done = project.run("run", "--plain")
        assert done.code == 0
    # main had 0.1 (prod), 0.2, 0.4, 0.5: the run pruned 0.2 as it ended.
    assert "artifacts: 1 version(s) removed by retention (app@0.2)" in done.err
    assert [(v["version"], v["branch"]) for v in _versions(project)] == [
        ("0.1", "main"),
        ("0.3", "topic"),
        ("0.4", "main"),
        ("0.5", "main"),
    ]
    assert _versions(project, "--branch", "topic")[0]["version"] == "0.3"
    assert [v["version"] for v in _versions(project, "--channel", "prod")] == ["0.1"]
    dry = project.run("artifacts", "prune", "--dry-run")
    assert dry.code == 0
    assert "would remove 0 version(s)" in dry.out


def test_prune_dry_run_says_what_expires(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: echo x > x.txt
            artifacts: {paths: [x.txt], expire_in: 1s}
        """
    )
    project.commit()
    assert project.run("run").code == 0
    assert _versions(project)[0]["expires"] is not None
    time.sleep(1.2)
    dry = project.run("artifacts", "prune", "--dry-run")
    assert dry.code == 0
    assert "would remove build@1: expired" in dry.out
    assert "would remove 1 version(s) and 1 blob(s)" in dry.out
    assert len(_versions(project)) == 1
    real = project.run("artifacts", "prune", "--json")
    assert json.loads(real.out)["removed"][0]["ref"] == "build@1"
    assert _versions(project) == []
    blobs = project.root / ".conveyor" / "artifacts" / "blobs" / "sha256"
    assert [p for p in blobs.rglob("*") if p.is_file()] == []


def test_the_sbom_is_attached_and_drawn_once(project: Project) -> None:
    project.write("requirements.txt", "requests==2.31.0\nidna==3.6\n")
    project.pipeline(
        """
        jobs:
          build:
            run: echo x > x.txt
            artifacts: {paths: [x.txt], version: "1.{{ run_number }}"}
        """
    )
    project.commit()
    assert project.run("run").code == 0
    v = _show(project, "build@1.1")
    (sbom,) = [a for a in v["attachments"] if a["kind"] == "sbom"]
    assert sbom["name"] == "sbom.cdx.json"
    doc = json.loads(Path(sbom["blob"]).read_text())
    assert doc["bomFormat"] == "CycloneDX"
    assert doc["specVersion"] == "1.6"
    assert {c["name"] for c in doc["components"]} >= {"requests", "idna"}
    assert project.run("run").code == 0
    again = _show(project, "build@1.2")
    assert [a["sha256"] for a in again["attachments"]] == [sbom["sha256"]], "the cached SBOM"
    shown = project.run("artifacts", "show", "build@1.2")
    assert "sbom" in shown.out
    assert sbom["blob"] in shown.out
    project.write("requirements.txt", "requests==2.32.0\nidna==3.6\n")
    assert project.run("run").code == 0
    changed = _show(project, "build@1.3")["attachments"][0]["sha256"]
    assert changed != sbom["sha256"], "new lockfiles: a new SBOM"
    assert project.run("artifacts", "verify", "build@1.3").code == 0


def test_build_output_lists_the_versions_a_run_stored(project: Project) -> None:
    project.write("requirements.txt", "idna==3.6\n")
    project.pipeline(BUILD)
    project.commit()
    assert project.run("run").code == 0
    shown = project.run("show", "--format", "build-output", "--json")
    assert shown.code == 0, shown.err
    doc = json.loads(shown.out)["build_output"]
    (version,) = doc["artifact_versions"]
    stored = _show(project, "shop@1.0.1")
    assert version["ref"] == "shop@1.0.1"
    assert version["digest"] == stored["digest"]
    assert {f["path"]: f["sha256"] for f in version["files"]} == {
        f["path"]: f["sha256"] for f in stored["files"]
    }
    assert all(os.path.isfile(f["blob"]) for f in version["files"])
    assert version["sbom"]
    assert os.path.isfile(version["sbom"])
    assert version["signatures"] == []
    assert version["provenance"] == []
    assert version["published"] == []
    by_location = {a["location"]: a for a in doc["artifacts"]}
    assert by_location["dist/README.md"]["metadata"]["artifact_version"] == "shop@1.0.1"
    as_yaml = project.run("show", "--format", "build-output")
    assert f"digest: {stored['digest']}" in as_yaml.out


def test_matrix_instances_are_artifacts_of_their_own(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            matrix: {os: [linux, mac]}
            run: mkdir -p out-${{ matrix.os }} && echo ${{ matrix.os }} > out-${{ matrix.os }}/bin
            artifacts: {paths: ["out-${{ matrix.os }}/"], version: "1.0.0"}
        """
    )
    project.commit()
    assert project.run("run").code == 0
    assert sorted(v["ref"] for v in _versions(project)) == ["build-linux@1.0.0", "build-mac@1.0.0"]


def test_no_store_yet_and_unknown_names(project: Project) -> None:
    project.pipeline(BUILD)
    project.commit()
    empty = project.run("artifacts", "list")
    assert empty.code == 0
    assert "no artifact versions in" in empty.out
    assert project.run("artifacts", "verify").code == 0
    assert project.run("artifacts", "prune", "--dry-run").code == 0
    assert project.run("run").code == 0
    unknown = project.run("artifacts", "show", "shpo")
    assert unknown.code == 2
    assert "did you mean 'shop'" in unknown.err
    no_version = project.run("artifacts", "promote", "shop", "--to", "prod")
    assert no_version.code == 2
    assert "name the version" in no_version.err
    bad_channel = project.run("artifacts", "promote", "shop@1.0.1", "--to", "Prod!")
    assert bad_channel.code == 2
    assert "not a channel name" in bad_channel.err


def test_a_configured_store_directory(project: Project, tmp_path: Path) -> None:
    store = tmp_path / "elsewhere"
    project.pipeline(
        BUILD.replace("name: shop\n", f"name: shop\n    artifacts: {{dir: {store}}}\n", 1)
    )
    project.commit()
    assert project.run("run").code == 0
    assert (store / "index" / "shop" / "1.0.1.json").is_file()
    assert not (project.root / ".conveyor" / "artifacts").exists()
    assert [v["ref"] for v in _versions(project)] == ["shop@1.0.1"]
