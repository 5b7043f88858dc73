"""A workflow's `actions/cache` steps as Conveyor's dependency caches (`caches:`)."""

from __future__ import annotations

import re
from typing import Any

from conveyor.interop.github import expr

_CACHE_ACTIONS = ("actions/cache", "actions/cache/restore")


CACHE_STEP = "conveyor-cache"
"""Set on an actions/cache step by the translation: the index of the dependency cache it
became, whose CONVEYOR_CACHE_HIT_<N> gives the step's `cache-hit`."""


def caches_of(job: dict[str, Any], static: expr.Env, jid: Any, notes: list[str]) -> list[Any]:
    """The job's `actions/cache` steps as Conveyor's dependency caches (restored before
    the job, saved after it succeeds, keyed the same way): `${{ runner.os }}`,
    `${{ hashFiles(...) }}` and `${{ matrix.X }}` in the key become Conveyor's
    `{{ os }}`, `{{ hashFiles(...) }}`, `{{ matrix.X }}`; github, inputs and vars are
    filled in now. A key reading anything else (env, steps) is not cached here: a note.
    Each step that became a cache is marked with its index (`CACHE_STEP`)."""
    out: list[Any] = []
    for step in job.get("steps") or []:
        if not isinstance(step, dict):
            continue
        uses = str(step.get("uses", "")).split("@", 1)[0].lower()
        if uses not in _CACHE_ACTIONS:
            continue
        with_ = step.get("with") or {}
        try:
            key = _cache_key(str(with_.get("key", "")), static)
            restore = [
                _cache_key(k, static)
                for k in str(with_.get("restore-keys", "")).splitlines()
                if k.strip()
            ]
        except expr.ExprError:
            notes.append(f"job '{jid}': an actions/cache key reads what is known only later")
            continue
        paths = [p.strip() for p in str(with_.get("path", "")).splitlines() if p.strip()]
        if not key or not paths or any(p.startswith("!") for p in paths):
            notes.append(f"job '{jid}': an actions/cache step without key or plain paths")
            continue
        entry: dict[str, Any] = {"key": key, "paths": paths}
        if restore:
            entry["restore_keys"] = restore
        step[CACHE_STEP] = len(out)
        out.append(entry)
    return out


def _cache_key(text: str, static: expr.Env) -> str:
    def one(m: re.Match[str]) -> str:
        inner = m.group(1).strip()
        node = expr.parse(inner)
        if isinstance(node, expr.Call) and node.func.lower() == "hashfiles":
            return "{{ " + inner + " }}"
        path = expr.path_of(node)
        if path == ["runner", "os"]:
            return "{{ os }}"
        if path == ["runner", "arch"]:
            return "{{ arch }}"
        if path is not None and len(path) == 2 and path[0] == "matrix":
            return "{{ matrix." + path[1] + " }}"
        return expr.text(expr.evaluate(node, static))

    # Conveyor keys are names: what GitHub allows beyond them becomes '-'.
    return re.sub(r"[^A-Za-z0-9_.{}()'\-,* /]", "-", expr.TEMPLATE.sub(one, text)).strip()
