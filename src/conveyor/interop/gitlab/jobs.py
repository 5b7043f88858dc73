"""Each job GitLab would create, as a job of conveyor.yml: its script (`before_script`
then `script`) as `run`, `after_script` as `finally`, its variables as `env`, its rules
decided now (`when`, `allow_failure`, rule variables and needs), `needs` or the stage
order, `parallel` as a matrix, `cache` as `caches`, `artifacts:reports` as `reports`.
"""

from __future__ import annotations

import glob
import itertools
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import ConfigError
from conveyor.interop.gitlab import expiry, rules

Where = tuple[str | int, ...]
_NAME = re.compile(r"[^A-Za-z0-9_.:/-]")
_WHEN = ("on_success", "on_failure", "always", "manual", "delayed", "never")


@dataclass
class Context:
    data: dict[str, Any]
    root: str
    stages: list[str]
    predefined: dict[str, str]
    globals: dict[str, str]
    given: dict[str, str]
    names: dict[str, str]
    opts: Any
    notes: list[str]
    said: set[str] = field(default_factory=set)
    instances: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    """Each kept job's matrix instances (their variables) that the pipeline has: those
    its rules keep."""
    splits: dict[str, list[tuple[str, list[dict[str, str]]]]] = field(default_factory=dict)
    """A matrix job whose rules treat its instances differently (`when`,
    `allow_failure`, variables, needs), which is one Conveyor job per treatment: each
    job's Conveyor name and its instances."""

    def conveyor_jobs(self, name: str) -> list[str]:
        """The Conveyor jobs GitLab's job `name` became (one, unless split)."""
        return [c for c, _ in self.splits[name]] if name in self.splits else [self.names[name]]

    def once(self, key: str, note: str) -> None:
        if key not in self.said:
            self.said.add(key)
            self.notes.append(note)


@dataclass
class Outcome:
    when: str = "on_success"
    allow_failure: Any = None
    variables: dict[str, str] = field(default_factory=dict)
    needs: Any = None


_AFTER_STATUS = (
    'case "$CONVEYOR_JOB_STATUS" in success) CI_JOB_STATUS=success;; '
    "cancelled) CI_JOB_STATUS=canceled;; *) CI_JOB_STATUS=failed;; esac; export CI_JOB_STATUS"
)
"""`after_script`'s CI_JOB_STATUS (GitLab's words) from `finally:`'s CONVEYOR_JOB_STATUS."""


def conveyor_names(names: Sequence[str]) -> dict[str, str]:
    """GitLab job names as Conveyor job names (GitLab allows spaces, brackets...)."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        new = _NAME.sub("_", name.strip())
        if not new or not re.match(r"[A-Za-z0-9_]", new):
            new = "_" + new
        base, n = new, 2
        while new in taken:
            new, n = f"{base}_{n}", n + 1
        taken.add(new)
        out[name] = new
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _changed(root: str, compare_to: str | None) -> list[str] | None:
    """Files changed by the last commit (or since `compare_to`), and not committed yet;
    None when there is nothing to compare with (GitLab then says `changes` is true)."""
    from conveyor.workspace import git

    ref = compare_to or "HEAD~1"
    try:
        if not git.is_commit(root, ref):
            return None
        return git.changed_since(root, ref) + git.untracked(root)
    except git.GitError:
        return None


def _matches_any(patterns: Sequence[str], files: Sequence[str]) -> bool:
    from conveyor.workspace.globs import glob_regex

    regexes = [glob_regex(str(p).lstrip("/")) for p in patterns]
    return any(r.fullmatch(f) for r in regexes for f in files)


def rules_outcome(spec: Any, scope: Mapping[str, str], root: str, where: Where) -> Outcome | None:
    """The first rule that matches, as GitLab picks it (None: none does)."""
    if not isinstance(spec, list):
        raise ConfigError("rules: must be a list", path=where)
    for i, rule in enumerate(spec):
        if not isinstance(rule, dict):
            raise ConfigError("a rule must be a mapping", path=(*where, i))
        if "if" in rule:
            try:
                if not rules.evaluate(str(rule["if"]), scope):
                    continue
            except rules.RuleError as exc:
                raise ConfigError(f"rules:if: {exc}", path=(*where, i, "if")) from None
        if "exists" in rule:
            exists = rule["exists"]
            paths = exists.get("paths") if isinstance(exists, dict) else exists
            if not any(
                glob.glob(rules.expand(str(p), scope).lstrip("/"), root_dir=root, recursive=True)
                for p in _as_list(paths)
            ):
                continue
        if "changes" in rule:
            changes = rule["changes"]
            paths = changes.get("paths") if isinstance(changes, dict) else changes
            compare = changes.get("compare_to") if isinstance(changes, dict) else None
            files = _changed(root, compare)
            if files is not None and not _matches_any(_as_list(paths), files):
                continue
        when = str(rule.get("when", ""))
        if when and when not in _WHEN:
            raise ConfigError(f"rules: unknown when: {when}", path=(*where, i, "when"))
        return Outcome(
            when=when,
            allow_failure=rule.get("allow_failure"),
            variables={
                k: rules.expand(v, scope)
                for k, v in _variables(rule.get("variables"), (*where, i, "variables")).items()
            },
            needs=rule.get("needs"),
        )
    return None


def _variables(spec: Any, where: Where) -> dict[str, str]:
    from conveyor.interop.gitlab.pipeline import variables_of

    return variables_of(spec, where)


def _only_except(job: Mapping[str, Any], scope: Mapping[str, str], root: str, where: Where) -> bool:
    """Whether `only:`/`except:` let the job into the pipeline."""

    def holds(spec: Any, key: str) -> bool:
        if isinstance(spec, dict):
            results = []
            if "refs" in spec:
                results.append(
                    any(rules.ref_matches(str(r), scope) for r in _as_list(spec["refs"]))
                )
            if "variables" in spec:
                try:
                    results.append(
                        any(rules.evaluate(str(v), scope) for v in _as_list(spec["variables"]))
                    )
                except rules.RuleError as exc:
                    raise ConfigError(f"{key}:variables: {exc}", path=(*where, key)) from None
            if "changes" in spec:
                files = _changed(root, None)
                results.append(files is None or _matches_any(_as_list(spec["changes"]), files))
            return all(results) if key == "only" else any(results)
        return any(rules.ref_matches(str(r), scope) for r in _as_list(spec))

    only = job.get("only", None if "except" in job or "rules" in job else ["branches", "tags"])
    if only is not None and not holds(only, "only"):
        return False
    return not ("except" in job and holds(job["except"], "except"))


def _duration(text: Any) -> float | None:
    """GitLab's `1h 30m`, `3 hours`, `90 minutes`, `3600` (seconds) in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total = 0.0
    found = False
    for m in re.finditer(r"(\d+(?:\.\d+)?)\s*([a-z]*)", str(text).lower()):
        unit = m.group(2)
        if unit.startswith("mo") or (unit and unit[0] not in units):
            return None
        total += float(m.group(1)) * units[unit[0] if unit else "s"]
        found = True
    return total if found else None


def _script(value: Any, where: Where) -> list[str]:
    lines: list[str] = []
    for item in _as_list(value):
        if isinstance(item, list):  # nested lists (from !reference or anchors) are flattened
            lines.extend(_script(item, where))
        elif isinstance(item, dict | bool) or item is None:
            raise ConfigError("a script line must be a string", path=where)
        else:
            lines.append(str(item))
    return lines


def _inherits(ctx: Context, job: Mapping[str, Any], key: str) -> bool:
    """Whether the job takes `default:`'s `key` (`inherit:default`)."""
    inherit = (job.get("inherit") or {}).get("default", True)
    return not (inherit is False or (isinstance(inherit, list) and key not in inherit))


def _job_key(ctx: Context, job: Mapping[str, Any], key: str) -> Any:
    """A job's key, else `default:`'s (or the old top-level one), as `inherit` allows."""
    if key in job:
        return job[key]
    inherit = (job.get("inherit") or {}).get("default", True)
    if inherit is False or (isinstance(inherit, list) and key not in inherit):
        return None
    default = ctx.data.get("default") or {}
    if key in default:
        return default[key]
    return ctx.data.get(key)


def translate_jobs(ctx: Context) -> dict[str, Any]:
    """conveyor.yml's `jobs:` for the GitLab jobs that this pipeline creates."""
    kept: dict[str, tuple[dict[str, Any], Outcome, str]] = {}
    only: dict[str, list[dict[str, str]]] = {}
    """The matrix instances rules keep, for a job whose rules drop some."""
    extra: dict[str, list[tuple[str, Outcome, list[dict[str, str]]]]] = {}
    """The other Conveyor jobs of a split matrix job (`Context.splits`)."""
    for name, _conveyor in ctx.names.items():
        job = ctx.data[name]
        where: Where = (name,)
        if "script" not in job and "trigger" not in job:
            raise ConfigError(
                f"job '{name}' has no `script:` (or `trigger:`)",
                path=where,
                hint="give it a script, or start its name with '.' to make it a template",
            )
        stage = str(job.get("stage", "test"))
        if stage not in ctx.stages:
            raise ConfigError(
                f"job '{name}': chosen stage {stage} does not exist; available stages are "
                + ", ".join(ctx.stages),
                path=(*where, "stage"),
            )
        scope = _scope(ctx, job, name, stage, where)
        combos = _combos(job.get("parallel"))
        if "rules" in job and combos:
            # A rule may read a matrix variable: GitLab decides each instance on its own.
            decided = [
                (
                    combo,
                    rules_outcome(job["rules"], {**scope, **combo}, ctx.root, (*where, "rules")),
                )
                for combo in combos
            ]
            runs: list[tuple[dict[str, str], Outcome]] = [
                (c, o) for c, o in decided if o is not None and o.when != "never"
            ]
            if not runs:
                continue
            parts = _treatments(job, runs)
            outcome, first = parts[0]
            if len(runs) < len(combos) or len(parts) > 1:
                only[name] = first
            if len(parts) > 1:
                _split(ctx, name, parts, extra)
            ctx.instances[name] = [c for c, _ in runs]
        elif "rules" in job:
            found = rules_outcome(job["rules"], scope, ctx.root, (*where, "rules"))
            if found is None or found.when == "never":
                continue
            outcome = found
            if not outcome.when:  # a rule without `when` takes the job's
                outcome.when = str(job.get("when", "on_success"))
        else:
            if not _only_except(job, scope, ctx.root, where):
                continue
            outcome = Outcome(when=str(job.get("when", "on_success")))
            if outcome.when not in _WHEN:
                raise ConfigError(f"unknown when: {outcome.when}", path=(*where, "when"))
            if outcome.when == "never":
                continue
        kept[name] = (job, outcome, stage)
        ctx.instances.setdefault(name, combos)
    out: dict[str, Any] = {}
    for name, (job, outcome, stage) in kept.items():
        out[ctx.names[name]] = _one(ctx, name, job, outcome, stage, kept, only.get(name))
        for conveyor, other, part in extra.get(name, []):
            out[conveyor] = _one(ctx, name, job, other, stage, kept, part, conveyor)
    _dotenv(ctx, kept, out)
    return out


def _treatments(
    job: Mapping[str, Any], runs: list[tuple[dict[str, str], Outcome]]
) -> list[tuple[Outcome, list[dict[str, str]]]]:
    """A matrix job's instances grouped by what its rules made of each (when,
    allow_failure, variables, needs), in the order of their first instance."""
    groups: dict[str, tuple[Outcome, list[dict[str, str]]]] = {}
    for combo, outcome in runs:
        if not outcome.when:  # a rule without `when` takes the job's
            outcome.when = str(job.get("when", "on_success"))
        key = repr(
            (outcome.when, outcome.allow_failure, sorted(outcome.variables.items()), outcome.needs)
        )
        groups.setdefault(key, (outcome, []))[1].append(combo)
    return list(groups.values())


def _split(
    ctx: Context,
    name: str,
    parts: list[tuple[Outcome, list[dict[str, str]]]],
    extra: dict[str, list[tuple[str, Outcome, list[dict[str, str]]]]],
) -> None:
    """One Conveyor job per treatment of a matrix job's instances (a Conveyor job's
    instances share `when` and the rest): the first keeps the job's name, the others are
    named for what differs ('deploy.manual')."""
    base = ctx.names[name]
    first = parts[0][0]
    taken = set(ctx.names.values())
    groups = [(base, parts[0][1])]
    for i, (outcome, combos) in enumerate(parts[1:], 2):
        if outcome.when != first.when:
            label = outcome.when
        elif outcome.allow_failure != first.allow_failure:
            label = "allow_failure"
        else:
            label = str(i)
        conveyor, n = f"{base}.{label}", 2
        while conveyor in taken:
            conveyor, n = f"{base}.{label}{n}", n + 1
        taken.add(conveyor)
        groups.append((conveyor, combos))
        extra.setdefault(name, []).append((conveyor, outcome, combos))
    ctx.splits[name] = groups
    shown = "; ".join(
        f"'{c}': " + ", ".join(" ".join(f"{k}={v}" for k, v in combo.items()) for combo in combos)
        for c, combos in groups
    )
    ctx.notes.append(
        f"job '{name}': its rules treat its matrix instances differently (when, allow_failure, "
        f"variables or needs): one job for each here ({shown})"
    )


def _scope(
    ctx: Context, job: Mapping[str, Any], name: str, stage: str, where: Where
) -> dict[str, str]:
    inherit = (job.get("inherit") or {}).get("variables", True)
    globals_ = ctx.globals
    if inherit is False:
        globals_ = {}
    elif isinstance(inherit, list):
        globals_ = {k: v for k, v in globals_.items() if k in inherit}
    known = {**ctx.predefined, "CI_JOB_NAME": name, "CI_JOB_STAGE": stage, **globals_}
    from conveyor.interop.gitlab.pipeline import expand_all

    own = expand_all(_variables(job.get("variables"), (*where, "variables")), known)
    return {**known, **own, **ctx.given}


def _one(
    ctx: Context,
    name: str,
    job: dict[str, Any],
    outcome: Outcome,
    stage: str,
    kept: Mapping[str, tuple[dict[str, Any], Outcome, str]],
    only: list[dict[str, str]] | None = None,
    conveyor: str | None = None,
) -> dict[str, Any]:
    """GitLab's job `name` as Conveyor's job (`conveyor`, when it is one of several the
    job became: `_split`)."""
    where: Where = (name,)
    scope = {**_scope(ctx, job, name, stage, where), **outcome.variables, **ctx.given}
    out: dict[str, Any] = {"stage": stage, "cache": False}
    problems = []
    if _job_key(ctx, job, "services"):
        problems.append("`services:` (containers)")
    if "trigger" in job:
        problems.append("`trigger:` (a downstream pipeline)")
    if _job_key(ctx, job, "image"):
        ctx.once("image", "`image:` is ignored: jobs run in this machine's shell")
    if problems:
        ctx.notes.append(f"job '{name}' cannot run on this machine: {'; '.join(problems)}")
        if ctx.opts.on_unsupported == "fail":
            message = shlex.quote("not runnable locally: " + "; ".join(problems))
            out["run"] = [f"echo {message} >&2; exit 1"]
        else:
            out["run"] = ["true"]
            out["if"] = "false"
        out["needs"] = _needs(ctx, name, job, outcome, stage, kept, where)
        return out
    script = _script(_job_key(ctx, job, "before_script"), (*where, "before_script"))
    script += _script(job.get("script"), (*where, "script"))
    matrix, exports = _parallel(
        job.get("parallel"), (*where, "parallel"), name, conveyor or ctx.names[name]
    )
    if matrix and only is not None:
        if "include" in matrix:
            matrix["include"] = [c for c in matrix["include"] if c in only]
        else:  # parallel: N
            matrix["CI_NODE_INDEX"] = [
                i for i in matrix["CI_NODE_INDEX"] if {"CI_NODE_INDEX": str(i)} in only
            ]
    if matrix:
        out["matrix"] = matrix
    out["run"] = exports + script or ["true"]
    after = _script(_job_key(ctx, job, "after_script"), (*where, "after_script"))
    if after:
        out["finally"] = [_AFTER_STATUS, *exports, *after]
    # GitLab's CI_JOB_STATUS: 'running' in the script, how it ended in after_script.
    env = {**scope, "CI_JOB_STATUS": "running"}
    if matrix:
        # A variable naming a matrix variable takes each instance's value, as GitLab
        # expands it: Conveyor fills `${{ matrix.X }}` in env values per instance.
        axes = _axes(matrix)
        for key, value in env.items():
            env[key] = _matrix_refs(value, axes)
    out["env"] = env
    needs = _needs(ctx, name, job, outcome, stage, kept, where)
    if needs is not None:
        out["needs"] = needs
    when = outcome.when
    if when == "delayed":
        ctx.notes.append(f"job '{name}': when: delayed runs without its delay here")
        when = "on_success"
    if when != "on_success":
        out["when"] = when
    allow = (
        outcome.allow_failure
        if outcome.allow_failure is not None
        else job.get("allow_failure", when == "manual")
    )
    if isinstance(allow, dict):
        codes = allow.get("exit_codes")
        codes = [codes] if isinstance(codes, int) else codes
        if not isinstance(codes, list) or not codes:
            raise ConfigError(
                "allow_failure: expected exit_codes: a code or a list of codes",
                path=(*where, "allow_failure"),
            )
        out["allow_failure"] = {"exit_codes": codes}
    elif allow is True:
        out["allow_failure"] = True
    if "timeout" in job:
        seconds = _duration(job["timeout"])
        if seconds is None:
            raise ConfigError(f"timeout: cannot read {job['timeout']!r}", path=(*where, "timeout"))
        out["timeout"] = f"{seconds:g}s"
    retry = _job_key(ctx, job, "retry")
    if retry:
        count = retry.get("max", 0) if isinstance(retry, dict) else retry
        if isinstance(count, int) and count > 0:
            out["retries"] = count
    group = job.get("resource_group")
    if group:
        out["resource_group"] = _NAME.sub("_", rules.expand(str(group), scope))
    caches = _caches(ctx, _job_key(ctx, job, "cache"), scope, (*where, "cache"))
    if caches:
        out["caches"] = caches
    artifacts = job.get("artifacts")
    if artifacts is None and _inherits(ctx, job, "artifacts"):
        artifacts = (ctx.data.get("default") or {}).get("artifacts")
    _artifacts(ctx, name, artifacts, out, (*where, "artifacts"), scope, matrix)
    return out


def _needs(
    ctx: Context,
    name: str,
    job: Mapping[str, Any],
    outcome: Outcome,
    stage: str,
    kept: Mapping[str, tuple[dict[str, Any], Outcome, str]],
    where: Where,
) -> list[str] | None:
    spec = outcome.needs if outcome.needs is not None else job.get("needs")
    if spec is None:
        return None
    out: list[str] = []
    for i, need in enumerate(_as_list(spec)):
        optional = False
        selector: Any = None
        if isinstance(need, dict):
            if "project" in need or "pipeline" in need:
                ctx.notes.append(
                    f"{name}.needs[{i}] ignored: needs of another project or "
                    "pipeline are not supported here"
                )
                continue
            optional = bool(need.get("optional"))
            selector = need.get("parallel")
            need = need.get("job")
        target = str(need)
        if target not in kept:
            if optional:
                continue
            if target in ctx.names:
                raise ConfigError(
                    f"job '{name}' needs '{target}', which is not in this pipeline (its "
                    "rules leave it out)",
                    path=(*where, "needs", i),
                    hint="make the need `optional: true`, or give both the same rules",
                )
            raise ConfigError(
                f"job '{name}' needs '{target}', which is not a job of the file",
                path=(*where, "needs", i),
            )
        if ctx.stages.index(kept[target][2]) > ctx.stages.index(stage):
            raise ConfigError(
                f"job '{name}' needs '{target}', which is in a later stage "
                f"({kept[target][2]} after {stage})",
                path=(*where, "needs", i),
            )
        picked = need_instances(ctx, name, target, selector, optional, (*where, "needs", i))
        out.extend(ctx.conveyor_jobs(target) if picked is None else picked)
    return out


def need_instances(
    ctx: Context, name: str, target: str, selector: Any, optional: bool, where: Where
) -> list[str] | None:
    """The instances of `target` a need's `parallel: matrix:` selects, as Conveyor
    instance names (every instance, for a need without one: None). As GitLab: an entry
    selects the instances whose variables agree with every key it gives, so a partial
    entry selects several."""
    if selector is None:
        return None
    entries = selector.get("matrix") if isinstance(selector, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(
            "needs:parallel: expected `matrix:`, a list of mappings of variables to values",
            path=(*where, "parallel"),
        )
    wanted = [
        dict(combo)
        for entry in entries
        for combo in itertools.product(
            *[[(str(k), _text(v)) for v in _as_list(vals)] for k, vals in entry.items()]
        )
    ]
    if not wanted:
        raise ConfigError(
            "needs:parallel:matrix: lists no variable values", path=(*where, "parallel")
        )
    have = ctx.instances.get(target, [])
    picked = [c for c in have if any(w.items() <= c.items() for w in wanted)]
    if not picked:
        if optional:
            return []
        shown = "; ".join(", ".join(f"{k}={v}" for k, v in w.items()) for w in wanted)
        raise ConfigError(
            f"job '{name}' needs '{target}' with {shown}, which no instance of it has",
            path=(*where, "parallel", "matrix", 0, next(iter(entries[0]), 0)),
            hint="its instances: "
            + ("; ".join(", ".join(f"{k}={v}" for k, v in c.items()) for c in have) or "none"),
        )
    holder = {repr(c): conveyor for conveyor, combos in ctx.splits.get(target, []) for c in combos}
    return [instance_name(holder.get(repr(c), ctx.names[target]), c) for c in picked]


def instance_name(job: str, combo: Mapping[str, str]) -> str:
    """A matrix instance's name in conveyor.yml ('build (ARCH=x64, OS=mac)')."""
    return f"{job} ({', '.join(f'{k}={v}' for k, v in combo.items())})"


def _parallel(
    spec: Any, where: Where, name: str, conveyor: str
) -> tuple[dict[str, Any], list[str]]:
    """`parallel: N` or `parallel: matrix` as a Conveyor matrix, and the script lines
    that give the instance's values their GitLab names, and its CI_NODE_INDEX and
    CI_JOB_NAME as GitLab gives them ('test 2/3', 'build: [x64, mac]')."""
    if spec is None:
        return {}, []
    if isinstance(spec, int):
        if not 1 <= spec <= 200:
            raise ConfigError("parallel: a number from 1 to 200", path=where)
        exports = [
            'export CI_NODE_INDEX="$CONVEYOR_MATRIX_CI_NODE_INDEX"',
            f"export CI_NODE_TOTAL={spec}",
            f'export CI_JOB_NAME="{_dq(name)} $CI_NODE_INDEX/{spec}"',
        ]
        return {"CI_NODE_INDEX": list(range(1, spec + 1))}, exports
    entries = spec.get("matrix") if isinstance(spec, dict) else None
    if not isinstance(entries, list):
        raise ConfigError("parallel: a number or `matrix:` (a list of mappings)", path=where)
    include: list[dict[str, Any]] = []
    keys: list[str] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError("parallel:matrix: entries are mappings", path=(*where, "matrix", i))
        axes = [[(str(k), _text(v)) for v in _as_list(values)] for k, values in entry.items()]
        for combo in itertools.product(*axes):
            include.append(dict(combo))
        keys.extend(str(k) for k in entry if str(k) not in keys)
    exports = [
        f'if [ -n "${{{_matrix_env(k)}+x}}" ]; then export {k}="${_matrix_env(k)}"; fi'
        for k in keys
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k)
    ]
    exports += [f"export CI_NODE_TOTAL={len(include)}"]
    # Which instance this is, by the name Conveyor gives it: its index and GitLab name.
    cases = []
    for i, values in enumerate(include, 1):
        gitlab_name = f"{name}: [{', '.join(values.values())}]"
        cases.append(
            f"{shlex.quote(instance_name(conveyor, values))}) export CI_NODE_INDEX={i} "
            f"CI_JOB_NAME={shlex.quote(gitlab_name)};;"
        )
    exports.append(f'case "$CONVEYOR_JOB" in {" ".join(cases)} esac')
    return {"include": include}, exports


def _dq(text: str) -> str:
    """`text` inside a shell's double quotes, as itself."""
    return re.sub(r'([\\"$`])', r"\\\1", text)


def _axes(matrix: Mapping[str, Any]) -> set[str]:
    """The names of a translated matrix's variables."""
    return {k for entry in matrix.get("include", []) for k in entry} | {
        k for k in matrix if k != "include"
    }


def _matrix_refs(text: str, axes: set[str]) -> str:
    """`$KEY` and `${KEY}` of a matrix variable as Conveyor's `${{ matrix.KEY }}`."""
    return re.sub(
        r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)",
        lambda m: (
            "${{ matrix." + (m.group(1) or m.group(2)) + " }}"
            if (m.group(1) or m.group(2)) in axes
            else m.group(0)
        ),
        text,
    )


def _combos(spec: Any) -> list[dict[str, str]]:
    """Each instance's variables of `parallel:` (none for a job without it, or one
    written wrong: `_parallel` says what is wrong with it)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return [{"CI_NODE_INDEX": str(i)} for i in range(1, spec + 1)] if spec >= 1 else []
    entries = spec.get("matrix") if isinstance(spec, dict) else None
    if not isinstance(entries, list):
        return []
    out: list[dict[str, str]] = []
    for entry in entries:
        if isinstance(entry, dict):
            axes = [[(str(k), _text(v)) for v in _as_list(vals)] for k, vals in entry.items()]
            out.extend(dict(combo) for combo in itertools.product(*axes))
    return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _matrix_env(key: str) -> str:
    return f"CONVEYOR_MATRIX_{key.upper().replace('-', '_')}"


def _caches(ctx: Context, spec: Any, scope: Mapping[str, str], where: Where) -> list[Any]:
    out = []
    for i, cache in enumerate(_as_list(spec)):
        if not isinstance(cache, dict) or not cache.get("paths"):
            continue
        key = cache.get("key", "default")
        if isinstance(key, dict):
            files = ", ".join(repr(str(f)) for f in _as_list(key.get("files")))
            prefix = rules.expand(str(key.get("prefix", "")), scope)
            text = f"{prefix}-{{{{ hashFiles({files}) }}}}" if files else prefix or "default"
        else:
            text = rules.expand(str(key), scope)
        text = re.sub(r"[^A-Za-z0-9_.{}()'\-, ]", "_", text)
        restore = [
            re.sub(r"[^A-Za-z0-9_.\-]", "_", rules.expand(str(k), scope))
            for k in _as_list(cache.get("fallback_keys"))
        ]
        paths = [rules.expand(str(p), scope).rstrip("/") or "." for p in _as_list(cache["paths"])]
        if any(glob.has_magic(p) for p in paths):
            ctx.once("cache-glob", "cache paths with wildcards are not cached here")
            continue
        entry: dict[str, Any] = {"key": f"gitlab-{text}", "paths": paths}
        if restore:
            entry["restore_keys"] = restore
        out.append(entry)
        del i
    return out


def _artifacts(
    ctx: Context,
    name: str,
    spec: Any,
    out: dict[str, Any],
    where: Where,
    scope: Mapping[str, str] | None = None,
    matrix: Mapping[str, Any] | None = None,
) -> None:
    if not isinstance(spec, dict):
        return
    axes = _axes(matrix or {})

    def path(value: Any) -> str:
        """GitLab expands variables in artifact paths: a matrix variable per instance."""
        return rules.expand(_matrix_refs(str(value), axes), scope or {})

    reports = spec.get("reports") or {}
    mine: dict[str, list[str]] = {}
    for kind, value in reports.items() if isinstance(reports, dict) else ():
        if kind == "junit":
            mine.setdefault("junit", []).extend(path(v) for v in _as_list(value))
        elif kind in ("coverage_report", "cobertura"):
            where_to = value.get("path") if isinstance(value, dict) else value
            mine.setdefault("coverage", []).extend(path(v) for v in _as_list(where_to))
        elif kind == "codequality":
            # The same Code Climate JSON GitLab shows on a merge request: its issues are
            # findings here, for the findings gates of a conveyor.yml made from this file.
            mine.setdefault("codequality", []).extend(path(v) for v in _as_list(value))
        elif kind in ("sast", "dependency_scanning", "container_scanning"):
            continue
        elif kind != "dotenv":
            ctx.once(f"report-{kind}", f"artifacts:reports:{kind} is not read here")
    if mine:
        out["reports"] = mine
    paths = [path(p) for p in _as_list(spec.get("paths"))]
    when = spec.get("when", "on_success")
    if paths and when in ("on_success", "on_failure", "always"):
        try:
            kept = expiry.retention(spec)
        except ValueError as exc:
            raise ConfigError(f"artifacts:expire_in: {exc}", path=(*where, "expire_in")) from None
        out["artifacts"] = {"paths": paths, "when": when, **kept}


def _dotenv(
    ctx: Context,
    kept: Mapping[str, tuple[dict[str, Any], Outcome, str]],
    out: dict[str, Any],
) -> None:
    """`artifacts:reports:dotenv`: the variables a job writes there reach the jobs after
    it (by needs, or by stage order), as GitLab passes them; here every job shares the
    workspace, so the later job reads the file before its script."""
    writers: list[tuple[str, str, list[str]]] = []
    for name, (job, _, stage) in kept.items():
        reports = (job.get("artifacts") or {}).get("reports") or {}
        files = (
            [str(f) for f in _as_list(reports.get("dotenv"))] if isinstance(reports, dict) else []
        )
        if files:
            writers.append((name, stage, files))
            # A file from an earlier run must not pass for this run's.
            first = [f"rm -f {shlex.quote(f)}" for f in files]
            for conveyor in ctx.conveyor_jobs(name):
                out[conveyor]["run"] = first + out[conveyor]["run"]
    if not writers:
        return
    for name, (_job, _, stage) in kept.items():
        for conveyor in ctx.conveyor_jobs(name):
            needs = out[conveyor].get("needs")
            reads = []
            for writer, writer_stage, files in writers:
                if writer == name:
                    continue
                before = (
                    any(_is_of(n, ctx.conveyor_jobs(writer)) for n in needs)
                    if needs is not None
                    else ctx.stages.index(writer_stage) < ctx.stages.index(stage)
                )
                if before:
                    reads.extend(files)
            if reads:
                lines = [
                    f"if [ -f {shlex.quote(f)} ]; then set -a; . ./{shlex.quote(f)}; set +a; fi"
                    for f in reads
                ]
                out[conveyor]["run"] = lines + out[conveyor]["run"]


def _is_of(need: str, jobs: Sequence[str]) -> bool:
    """Whether a Conveyor need names one of `jobs` or one of their matrix instances."""
    return any(need == job or need.startswith(job + " (") for job in jobs)


__all__ = ["Context", "Outcome", "conveyor_names", "rules_outcome", "translate_jobs"]
