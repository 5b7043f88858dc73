"""What the SBOM tests share: the real lockfiles of tests/data/deps/sbom laid out as a
workspace, and the judges of a document: cyclonedx-python-lib's and spdx-tools' own
validators, and third-party consumers.

The third-party CycloneDX readers are installed by .ci/run outside the project's
environment (they pin versions of their own): cdx-ev (PyPI cyclonedx-editor-validator,
jsonschema-rs underneath) named by CONVEYOR_CDX_EV, and the CycloneDX organisation's
JavaScript library (@cyclonedx/cyclonedx-library, its JsonStrictValidator on ajv) under
the node_modules named by CONVEYOR_CYCLONEDX_JS. A missing one skips its test; with
CONVEYOR_TESTS_NEED_SBOM_TOOLS=1 (CI) it fails it. pyspdxtools comes with spdx-tools, a
dependency of Conveyor: it is always there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "deps" / "sbom"
PROJECTS = ("npm-app", "npm-web", "poetry-tool", "uv-svc")


def lay_out(dest: Path, project: str, *, under: str | None = None) -> list[str]:
    """Copy a project of tests/data/deps/sbom into `dest` (or `dest/under`), each file
    under its real name; the workspace-relative paths written."""
    source = DATA / project
    written = []
    for path in sorted(source.rglob("*.fixture")):
        relative = path.relative_to(source).as_posix().removesuffix(".fixture")
        if under:
            relative = f"{under}/{relative}"
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(relative)
    return written


def workspace(dest: Path, *projects: str) -> list[str]:
    """A monorepo: each project in its own directory of `dest`; its files."""
    return [f for p in projects or PROJECTS for f in lay_out(dest, p, under=p)]


def cyclonedx_errors(text: str) -> object:
    """cyclonedx-python-lib's strict validator's verdict on a CycloneDX 1.6 JSON text:
    None when valid."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)


def spdx_messages(path: Path) -> list[str]:
    """The SPDX 2.3 JSON file parsed by spdx-tools and its full validation's messages
    (none when valid)."""
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    document = parse_file(str(path))
    return [m.validation_message for m in validate_full_spdx_document(document, "SPDX-2.3")]


def relationships(data: dict[str, Any]) -> set[tuple[str, str, str]]:
    """An SPDX JSON document's relationships as (element, type, related), with each
    package's SPDXID replaced by its purl ('project' for the root)."""
    names = {"SPDXRef-DOCUMENT": "document"}
    for package in data["packages"]:
        purls = [
            r["referenceLocator"]
            for r in package.get("externalRefs", [])
            if r["referenceType"] == "purl"
        ]
        names[package["SPDXID"]] = "project" if package["SPDXID"] == "SPDXRef-Project" else purls[0]
    return {
        (names[r["spdxElementId"]], r["relationshipType"], names[r["relatedSpdxElement"]])
        for r in data["relationships"]
    }


def _missing(what: str) -> None:
    if os.environ.get("CONVEYOR_TESTS_NEED_SBOM_TOOLS") == "1":
        pytest.fail(f"{what} is required (CONVEYOR_TESTS_NEED_SBOM_TOOLS=1)")
    pytest.skip(f"{what} is not installed")


def pyspdxtools(path: Path) -> subprocess.CompletedProcess[str]:
    """spdx-tools' command line reading (and validating) the file."""
    tool = Path(sys.executable).with_name("pyspdxtools")
    argv = [str(tool)] if tool.exists() else [shutil.which("pyspdxtools") or "pyspdxtools"]
    return subprocess.run(
        [*argv, "-i", str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def cdx_ev(path: Path) -> subprocess.CompletedProcess[str]:
    """`cdx-ev validate` (Siemens' cyclonedx-editor-validator) on the file, against the
    CycloneDX schema of the document's own version."""
    tool = os.environ.get("CONVEYOR_CDX_EV") or shutil.which("cdx-ev")
    if not tool or not os.path.exists(tool):
        _missing("cdx-ev (PyPI: cyclonedx-editor-validator; set CONVEYOR_CDX_EV)")
    return subprocess.run(
        [str(tool), "validate", "--schema-type", "default", "--no-filename-validation", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cyclonedx_js(path: Path) -> subprocess.CompletedProcess[str]:
    """The CycloneDX JavaScript library's JsonStrictValidator on the file
    (tests/deps/cyclonedx_validate.cjs)."""
    modules = os.environ.get("CONVEYOR_CYCLONEDX_JS", "")
    node = shutil.which("node")
    library = Path(modules) / "@cyclonedx" / "cyclonedx-library"
    if not modules or node is None or not library.is_dir():
        _missing(
            "@cyclonedx/cyclonedx-library (npm; set CONVEYOR_CYCLONEDX_JS to its node_modules)"
        )
    script = Path(__file__).with_name("cyclonedx_validate.cjs")
    return subprocess.run(
        [str(node), str(script), str(path)],
        env={**os.environ, "NODE_PATH": modules},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    return data
