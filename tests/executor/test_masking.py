"""Secrets never leave masked form (issue 10): a job's secret, and the encoded copies of
it a job prints (base64 at every alignment, URL-encoded, JSON-escaped), never reach
anything Conveyor stores or shows: its output, its reports as Conveyor reads them, the
run directory, the report memo, the history and everything drawn from it, and the
output of a command gate. Too short a secret is refused before anything runs."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from conveyor.errors import ConfigError
from conveyor.executor.masking import MASK, MIN_SECRET_LENGTH, Masker, encoded_forms, too_short
from tests.conftest import Project

PY = sys.executable

# '/', ' ', '+', '?' and a non-ASCII letter: its URL-encoded and JSON-escaped forms differ
# from the value, and its base64 has '/' (so the URL-safe alphabet differs too). Nothing
# XML or HTML would escape: a copy of it in gates.xml or the HTML report is found as is.
TOKEN = "s3cr3t/Välue 1234+567?"
PREFIXES = ("u:", "us:", "use:")
"""Before the value in a larger base64 blob: one of each byte alignment (2, 3, 4 bytes)."""


def _own_chars(prefix: bytes, value: bytes, suffix: bytes) -> tuple[str, str]:
    """A base64 blob of prefix + value + suffix, and the part of it made of the value's
    bits only (6 bits a character): what must not be readable in it."""
    blob = base64.b64encode(prefix + value + suffix).decode()
    first = -(-8 * len(prefix) // 6)
    last = 8 * (len(prefix) + len(value)) // 6
    return blob, blob[first:last]


def _forbidden(value: str) -> dict[str, str]:
    """Every form of `value` that must never appear, by name."""
    data = value.encode()
    forms = {
        "raw": value,
        "base64": base64.b64encode(data).decode(),
        "base64 unpadded": base64.b64encode(data).decode().rstrip("="),
        "base64url": base64.urlsafe_b64encode(data).decode(),
        "quote": quote(value),
        "quote safe=''": quote(value, safe=""),
        "quote_plus": quote_plus(value),
        "json": json.dumps(value)[1:-1],
        "json unicode": json.dumps(value, ensure_ascii=False)[1:-1],
    }
    for head in PREFIXES:
        blob, own = _own_chars(head.encode(), data, b":tail")
        forms[f"blob after {head!r}"] = blob
        forms[f"value's part of the blob after {head!r}"] = own
    return forms


EMIT = (
    f"HEADS = {PREFIXES!r}\n"
    + """
import base64, json, os, urllib.parse
import xml.etree.ElementTree as ET

token = os.environ["API_TOKEN"]
data = token.encode()
print("raw:", token)
print("base64:", base64.b64encode(data).decode())
print("base64url:", base64.urlsafe_b64encode(data).decode())
print("url:", urllib.parse.quote(token), urllib.parse.quote(token, safe=""))
print("form:", urllib.parse.quote_plus(token))
print("json:", json.dumps({"token": token}), json.dumps(token, ensure_ascii=False))
for head in HEADS:
    print("blob:", base64.b64encode(f"{head}{token}:tail".encode()).decode())

os.makedirs("reports", exist_ok=True)
suites = ET.Element("testsuites")
suite = ET.SubElement(suites, "testsuite", name="suite", tests="2", failures="1")
ET.SubElement(suite, "testcase", classname="t", name="test_ok", time="0.1")
case = ET.SubElement(suite, "testcase", classname="t", name=f"test_auth[{token}]", time="0.2")
failure = ET.SubElement(case, "failure", message=f"login with {token} refused")
failure.text = f"AssertionError: {token} != expected"
ET.SubElement(case, "system-out").text = f"sent Authorization: Bearer {token}"
ET.ElementTree(suites).write("reports/junit.xml", encoding="utf-8")

coverage = ET.Element("coverage", version="7")
classes = ET.SubElement(ET.SubElement(ET.SubElement(coverage, "packages"), "package"), "classes")
cls = ET.SubElement(classes, "class", name="leak", filename=f"src/{token}.py")
line = ET.SubElement(ET.SubElement(cls, "lines"), "line", number="1", hits="1")
ET.ElementTree(coverage).write("reports/coverage.xml", encoding="utf-8")

sarif = {
    "version": "2.1.0",
    "runs": [{
        "tool": {"driver": {"name": "leaky-scanner", "rules": [{"id": "R1"}]}},
        "results": [{
            "ruleId": "R1",
            "level": "error",
            "message": {"text": f"hard-coded token {token}"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": "emit.py"}, "region": {"startLine": 1}}}],
        }],
    }],
}
with open("reports/findings.sarif", "w", encoding="utf-8") as fh:
    json.dump(sarif, fh)
"""
)

PIPELINE = f"""
name: leaky
jobs:
  leak:
    secrets: [API_TOKEN]
    run: {json.dumps(f"{PY} emit.py")}
    inputs: [emit.py]
    cache: true
    reports:
      junit: reports/junit.xml
      coverage: reports/coverage.xml
      sarif: reports/findings.sarif
    gates:
      tests: {{max_failures: 0, level: warn}}
      findings: {{max: {{high: 0}}, level: warn}}
      coverage: {{line: 100%, level: warn}}
      commands:
        echo-token: {{run: 'echo "gate says $API_TOKEN" && exit 1', level: warn}}
gates:
  commands:
    reads-a-report: {{run: 'grep -ho "Bearer.*<" reports/junit.xml && exit 1', level: warn}}
"""


def _leaks(text: str, where: str) -> list[str]:
    return [f"{name} in {where}" for name, form in _forbidden(TOKEN).items() if form in text]


def test_a_secret_and_its_encodings_reach_nothing_conveyor_keeps_or_shows(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("API_TOKEN", TOKEN)
    project.write("emit.py", EMIT)
    project.pipeline(PIPELINE)
    project.commit()
    outputs: dict[str, str] = {}
    first = project.run("run", "--plain")
    assert first.code == 0, first.out + first.err
    outputs["run"] = first.out + first.err
    # Again, served from the cache and the report memo, as JSON.
    again = project.run("run", "--plain", "--json")
    assert again.code == 0, again.out + again.err
    outputs["run again"] = again.out + again.err
    assert '"cached": true' in again.out, again.out

    # The job's own reports are its outputs: left as it wrote them.
    assert TOKEN in (project.root / "reports" / "junit.xml").read_text()

    for args in (
        ("history",),
        ("history", "--json"),
        ("show",),
        ("show", "--json"),
        ("gates",),
        ("flaky",),
        ("metrics",),
        ("report", "--html", str(tmp_path / "scan.html")),
        ("trace", "--chrome", str(tmp_path / "trace.json")),
        ("metrics", "--textfile", str(tmp_path / "metrics.prom")),
    ):
        result = project.run(*args)
        assert result.code in (0, 1), (args, result.out, result.err)
        outputs[" ".join(args[:2])] = result.out + result.err
    for name in ("scan.html", "trace.json", "metrics.prom"):
        outputs[name] = (tmp_path / name).read_text()

    leaks = [leak for where, text in outputs.items() for leak in _leaks(text, where)]
    files = sorted(p for p in (project.root / ".conveyor").rglob("*") if p.is_file())
    assert any(p.suffix == ".db" for p in files), "the history database was written"
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        leaks += _leaks(text, str(path.relative_to(project.root)))
    assert leaks == []

    # What was masked is there, masked: each place was looked at with the secret in it.
    run_dir = project.runs()[0]
    log = (run_dir / "logs" / "leak.log").read_text().splitlines()
    assert log[0] == f"raw: {MASK}"
    assert log[1:4] == [f"base64: {MASK}", f"base64url: {MASK}", f"url: {MASK} {MASK}"]
    assert log[4:6] == [f"form: {MASK}", f'json: {{"token": "{MASK}"}} "{MASK}"']
    assert all(line.startswith("blob: ") and MASK in line for line in log[6:9])
    reports = [json.loads(line) for line in (run_dir / "reports.jsonl").read_text().splitlines()]
    job = next(r for r in reports if r["scope"] == "leak")
    failed = next(c for c in job["tests"] if c["status"] == "failed")
    assert (failed["name"], failed["message"]) == (
        f"t.test_auth[{MASK}]",
        f"login with {MASK} refused",
    )
    assert list(job["coverage"]["files"]) == [f"src/{MASK}.py"]
    assert job["findings"][0]["message"] == f"hard-coded token {MASK}"
    gates_xml = (run_dir / "gates.xml").read_text()
    assert f"gate says {MASK}" in gates_xml
    assert f"Bearer {MASK}&lt;" in gates_xml, "a pipeline gate masks every job's secrets"
    memo = (project.root / ".conveyor" / "cache" / "reports.json").read_text()
    assert f"login with {MASK} refused" in memo
    assert f"t.test_auth[{MASK}]" in outputs["show --json"]


def test_the_report_memo_never_serves_an_entry_unmasked(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry read while the value was not a secret is masked when it becomes one."""
    project.write("emit.py", EMIT)
    project.pipeline(PIPELINE.replace("    secrets: [API_TOKEN]\n", ""))
    project.commit()
    monkeypatch.setenv("API_TOKEN", TOKEN)
    # Passed to the job without being declared: nothing masks it, the memo keeps it.
    project.pipeline(
        (project.root / "conveyor.yml")
        .read_text()
        .replace("    reports:", "    pass_env: [API_TOKEN]\n    reports:", 1)
    )
    assert project.run("run", "--plain").code == 0
    memo = project.root / ".conveyor" / "cache" / "reports.json"
    assert f"login with {json.dumps(TOKEN)[1:-1]} refused" in memo.read_text()
    # Declared a secret now: the cached job's reports are not re-parsed...
    project.pipeline(
        (project.root / "conveyor.yml")
        .read_text()
        .replace("pass_env: [API_TOKEN]", "secrets: [API_TOKEN]")
    )
    result = project.run("run", "--plain", "--json")
    assert result.code == 0, result.out + result.err
    run_dir = project.runs()[-1]
    kept = (run_dir / "reports.jsonl").read_text()
    assert f"login with {MASK} refused" in kept
    assert _leaks(kept, "reports.jsonl") == []
    assert _leaks(memo.read_text(), "the memo") == []


def test_a_short_secret_is_refused_before_anything_runs(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIN", "1234")
    monkeypatch.setenv("API_TOKEN", TOKEN)
    project.pipeline(
        """
        jobs:
          first:
            run: touch ran
          deploy:
            extends: .with-secrets
            run: touch deployed
          .with-secrets:
            secrets:
              - API_TOKEN
              - PIN
        """
    )
    result = project.run("run")
    assert result.code == 2
    assert result.err.splitlines() == [
        f"conveyor.yml:10:9: jobs.deploy.secrets[1]: the secret PIN is shorter than "
        f"{MIN_SECRET_LENGTH} characters: too short to be masked in the job's output",
        f"  hint: use a value of at least {MIN_SECRET_LENGTH} characters, or pass a value "
        "that is not secret with pass_env",
    ]
    assert "1234" not in result.out + result.err
    assert not (project.root / "ran").exists()
    assert not (project.root / "deployed").exists()


def test_a_command_gate_runs_as_its_job_does(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its job's shell, directory and environment, and its output masked."""
    monkeypatch.setenv("API_TOKEN", TOKEN)
    project.write("sub/keep", "")
    project.pipeline(
        """
        jobs:
          build:
            dir: sub
            shell: [bash, -c]
            secrets: [API_TOKEN]
            env: {OWN: own}
            run: "true"
            gates:
              commands:
                probe:
                  run: 'echo "$(basename "$PWD") $OWN $BASH_VERSINFO $API_TOKEN" && exit 3'
        """
    )
    project.commit()
    result = project.run("run", "--plain")
    assert result.code == 1
    summary = json.loads((project.runs()[-1] / "summary.json").read_text())
    gate = next(
        g for j in summary["jobs"] for g in j.get("gates") or [] if g["gate"] == "command:probe"
    )
    assert gate["measured"] == "exit 3"
    words = gate["detail"].split()
    assert words[:2] == ["sub", "own"]
    assert words[2].isdigit(), "bash, the job's shell"
    assert words[3:] == [MASK]
    assert TOKEN not in result.out + result.err


# --- Masker -------------------------------------------------------------------------


def test_every_encoded_form_is_masked() -> None:
    masker = Masker([TOKEN])
    for name, form in _forbidden(TOKEN).items():
        masked = masker.mask(f"<{form}>")
        if "blob" in name:  # the characters with bits of what surrounds it stay
            assert _leaks(masked, name) == [], masked
        else:
            assert masked == f"<{MASK}>", (name, masked)
    # Base64 of the value anywhere in a blob: all three alignments, anything around.
    for head in ("", "a", "ab", "abc", "abcd"):
        for tail in ("", "x", "xy", "xyz"):
            blob, own = _own_chars(head.encode(), TOKEN.encode(), tail.encode())
            masked = masker.mask(f"blob {blob} end")
            assert own not in masked, (head, tail, masked)
            assert masked.startswith("blob "), masked
            assert masked.endswith(" end"), masked
            assert MASK in masked
    assert masker.mask("nothing secret here") == "nothing secret here"


def test_a_secret_that_starts_another_never_leaks_its_tail() -> None:
    short, long = "prefix-secret", "prefix-secret-and-more"
    for order in ([short, long], [long, short]):
        masker = Masker(order)
        assert masker.mask(f"a {long} b {short} c") == f"a {MASK} b {MASK} c"
        assert masker.mask(f"{long}{short}") == MASK
    # Overlapping values: every character of both is masked, as one run.
    masker = Masker(["abcdefgh12", "xyzabcdefgh"])
    assert masker.mask("[xyzabcdefgh12]") == f"[{MASK}]"
    assert masker.mask("aaaaaaaaaa") == "aaaaaaaaaa"
    assert Masker(["aaaaaaaa"]).mask("aaaaaaaaaaa!") == f"{MASK}!"


def test_multi_line_secrets_are_masked_line_by_line_but_not_their_short_lines() -> None:
    key = "-----BEGIN KEY-----\nMIIEowIBAAKCAQEAx4Vb\n}\n-----END KEY-----\n"
    masker = Masker([key])
    assert masker.mask("line MIIEowIBAAKCAQEAx4Vb here") == f"line {MASK} here"
    assert masker.mask("-----END KEY-----") == MASK
    assert masker.mask(json.dumps({"key": key})) == json.dumps({"key": MASK})
    assert masker.mask("a } b") == "a } b", "a line too short to mask is not masked alone"


def test_masking_data_masks_every_string_but_fingerprints() -> None:
    masker = Masker([TOKEN])
    data = {
        "tests": [{"name": f"t[{TOKEN}]", "duration": 1.5}],
        "files": {f"src/{TOKEN}.py": {"lines": {"1": 1}}},
        "fingerprint": TOKEN,
    }
    assert masker.mask_data(data) == {
        "tests": [{"name": f"t[{MASK}]", "duration": 1.5}],
        "files": {f"src/{MASK}.py": {"lines": {"1": 1}}},
        "fingerprint": MASK,
    }
    assert masker.mask_data(data, keep=frozenset({"fingerprint"}))["fingerprint"] == TOKEN
    assert not Masker([])
    assert Masker([]).mask(TOKEN) == TOKEN


def test_too_short_and_the_encoded_forms() -> None:
    assert too_short("1234567")
    assert too_short("  1234567  ")
    assert not too_short("12345678")
    forms = encoded_forms("12345678")
    assert {"12345678", "MTIzNDU2Nzg=", "MTIzNDU2Nzg"} <= forms
    assert all(len(f) >= MIN_SECRET_LENGTH for f in forms)


def test_the_short_secret_error_is_located_by_the_config_path(tmp_path: Path) -> None:
    from conveyor.config import load_pipeline
    from conveyor.graph.plan import plan
    from conveyor.model import RunContext
    from conveyor.run.compose import check_secrets

    (tmp_path / "conveyor.yml").write_text(
        "jobs:\n  deploy:\n    secrets: [LONG_ENOUGH, SHORT]\n    run: 'true'\n"
    )
    pipeline = load_pipeline(str(tmp_path / "conveyor.yml"), use_cache=False)
    environ = {"LONG_ENOUGH": "long enough", "SHORT": "short"}
    with pytest.raises(ConfigError) as caught:
        check_secrets(
            plan(pipeline, RunContext(branch="main", tag=None, commit=None, event="push"), []),
            environ,
        )
    error = caught.value
    assert (error.path, error.line, error.col) == (("jobs", "deploy", "secrets", 1), 3, 28)
    assert error.file is not None
    assert error.file.endswith("conveyor.yml")


def test_a_memo_entry_is_masked_again_as_it_is_taken(tmp_path: Path) -> None:
    """An entry stored masked for one set of secrets, taken for a job with one more: the
    new secret is masked too, though the entry's key is the same."""
    import hashlib

    from conveyor.gates.measure import ReportMemo, measure
    from conveyor.model import Job, JobResult, JobStatus, OutputFile, Reports

    first, second = "first-secret-value", "second-secret-value"
    report = tmp_path / "junit.xml"
    report.write_text(
        '<testsuite name="s"><testcase classname="t" name="test_x">'
        f'<failure message="{first} and {second}"/></testcase></testsuite>'
    )
    sha = hashlib.sha256(report.read_bytes()).hexdigest()
    job = Job(
        name="j", base="j", run=("true",), shell=("sh", "-c"), reports=Reports(("junit.xml",))
    )
    result = JobResult("j", JobStatus.SUCCESS, outputs=(OutputFile("junit.xml", sha, 1),))
    path = str(tmp_path / "memo.json")

    memo = ReportMemo(path)
    stored = measure(str(tmp_path), job, result, memo, Masker([first]))
    memo.save()
    assert stored.tests[0]["message"] == f"{MASK} and {second}"
    report.write_text("not read again: the memo serves it")

    taken = measure(str(tmp_path), job, result, ReportMemo(path), Masker([first, second]))
    assert taken.reports == {"junit": 1}
    assert taken.tests[0]["message"] == f"{MASK} and {MASK}"
    plain = measure(str(tmp_path), job, result, ReportMemo(path), None)
    assert plain.problems, "a job without secrets is not served a masked entry: parsed again"
