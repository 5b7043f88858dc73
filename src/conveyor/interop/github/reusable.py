"""Local reusable workflows (`uses: ./.github/workflows/x.yml` on a job): the called
workflow's jobs translated under the calling job's name, and the calling job itself
giving their outputs and result."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from conveyor.errors import ConfigError
from conveyor.interop.github import expr
from conveyor.interop.github.workflow import (
    SPEC_ENV,
    Options,
    _strategy,
    _triggers,
    given_github,
    spec_text,
    translate_job,
)


def outputs_of(data: dict[str, Any], root: str) -> dict[str, list[str]]:
    """Each job's output names: its `outputs:`, or, for a job calling a local reusable
    workflow, that workflow's `on.workflow_call.outputs`."""
    out: dict[str, list[str]] = {}
    for jid, job in data["jobs"].items():
        if not isinstance(job, dict):
            continue
        uses = job.get("uses")
        if isinstance(uses, str) and uses.startswith("./"):
            from conveyor.config.loader import parse_yaml, read_text

            path = os.path.join(root, uses[2:].split("@", 1)[0])
            try:
                called = parse_yaml(read_text(path), path)
                call = _triggers(called).get("workflow_call") or {}
            except (ConfigError, AttributeError):
                call = {}  # said where the job is translated
            out[str(jid)] = [str(k) for k in (call.get("outputs") or {})]
        else:
            out[str(jid)] = [str(k) for k in (job.get("outputs") or {})]
    return out


_INHERIT = "inherit"
"""`secrets: inherit`: the called workflow gets the caller's secrets."""

MAX_CALL_DEPTH = 4
"""Reusable workflows calling reusable workflows: GitHub's limit."""


def called(
    jid: Any,
    job: dict[str, Any],
    where: tuple[str | int, ...],
    needs: Sequence[str],
    opts: Options,
    static: expr.Env,
    python: str,
    root: str,
    notes: list[str],
    jobs: dict[str, Any],
    prefix: str,
    after: Sequence[str],
    depth: int,
) -> None:
    """A job calling a local reusable workflow (`uses: ./.github/workflows/x.yml`): the
    called workflow's jobs, named `job.inner`, waiting for the job's needs; its
    `inputs` from `with:` (defaults, required, booleans and numbers typed), its secrets
    from `secrets:` (a mapping, or `inherit`); and one more job under the calling job's
    name that waits for them all and gives the jobs needing it the workflow's `outputs`
    and its result (failure if one of them failed)."""
    from conveyor.config.loader import parse_yaml, read_text

    target = str(job["uses"])
    if depth >= MAX_CALL_DEPTH:
        raise ConfigError(
            f"reusable workflows nested more than {MAX_CALL_DEPTH} deep", path=(*where, "uses")
        )
    path = os.path.join(root, target[2:].split("@", 1)[0])
    if not os.path.isfile(path):
        raise ConfigError(f"no reusable workflow at {target}", path=(*where, "uses"))
    data = parse_yaml(read_text(path), os.path.relpath(path, root))
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        raise ConfigError(f"{target} has no `jobs:`", path=(*where, "uses"))
    on = _triggers(data)
    if "workflow_call" not in on:
        raise ConfigError(
            f"{target} is not a reusable workflow (its `on:` has no workflow_call)",
            path=(*where, "uses"),
        )
    call = on["workflow_call"] or {}
    given = {str(k): expr.render_value(v, static) for k, v in (job.get("with") or {}).items()}
    inputs: dict[str, Any] = {}
    for name, spec in (call.get("inputs") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        value = given.pop(str(name), spec.get("default"))
        if value is None and spec.get("required"):
            raise ConfigError(
                f"{target} requires the input '{name}'", path=(*where, "with"), at_key=True
            )
        kind = spec.get("type", "string")
        if kind == "boolean":
            value = value is True or str(value).lower() == "true"
        elif kind == "number" and value is not None:
            value = expr.number(value)
        inputs[str(name)] = "" if value is None else value
    if given:
        raise ConfigError(
            f"{target} has no input '{next(iter(given))}'", path=(*where, "with"), at_key=True
        )
    outer = static.contexts.get("__secret_from", {})
    given_secrets = job.get("secrets")
    secret_from: dict[str, Any] = {}
    if given_secrets == _INHERIT:
        secret_from = dict(outer)
    elif isinstance(given_secrets, dict):
        for name, value in given_secrets.items():
            text = str(value)
            m = re.fullmatch(r"\s*\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}\s*", text)
            if m:
                secret_from[str(name)] = outer.get(m.group(1), ["env", m.group(1)])
            else:
                secret_from[str(name)] = ["value", text]
    inner = expr.Env({**static.contexts, "inputs": inputs, "__secret_from": secret_from}, root=root)
    outputs_by_job = outputs_of(data, root)
    caller = prefix + str(jid)
    waits = [prefix + n for n in needs] + list(after)
    for ijid, ijob in data["jobs"].items():
        translate_job(
            ijid,
            ijob,
            ("jobs", str(ijid)),
            data,
            opts,
            inner,
            outputs_by_job,
            python,
            root,
            notes,
            jobs,
            f"{caller}.",
            waits,
            depth + 1,
        )
    env: dict[str, str] = {}
    results: dict[str, Any] = {}
    for i, ijid in enumerate(data["jobs"]):
        env[f"CONVEYOR_GHA_N{i}"] = f"${{{{ needs.{caller}.{ijid}.result }}}}"
        outs = {}
        for j, key in enumerate(outputs_by_job.get(str(ijid), [])):
            env[f"CONVEYOR_GHA_N{i}_{j}"] = f"${{{{ needs.{caller}.{ijid}.values.{key} }}}}"
            outs[key] = f"CONVEYOR_GHA_N{i}_{j}"
        results[str(ijid)] = {"result": f"CONVEYOR_GHA_N{i}", "outputs": outs}
    outputs = {
        str(k): (v.get("value", "") if isinstance(v, dict) else v)
        for k, v in (call.get("outputs") or {}).items()
    }
    spec = {
        "job": caller,
        "collect": True,
        "needs": results,
        "outputs": outputs,
        "steps": [],
        "github": given_github(static.contexts["github"]),
        "inputs": inputs,
        "vars": static.contexts["vars"],
        "secrets": [],
        "matrix": {},
        "strategy": _strategy(None),
        "on_unsupported": opts.on_unsupported,
    }
    env[SPEC_ENV] = spec_text(spec)
    jobs[caller] = {
        "needs": [f"{caller}.{i}" for i in data["jobs"]] + waits,
        "if": "always()",
        "cache": False,
        "env": env,
        "run": [f"{python} -m conveyor.interop.github.steps"],
    }
