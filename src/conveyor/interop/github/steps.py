"""The runner of one GitHub Actions job's steps, as the job's command
(`python -m conveyor.interop.github.steps`), its instructions in $CONVEYOR_GHA_JOB.

Per step, as GitHub's runner does: `if:` (success() implied), `env` rendered with every
context (github, env, vars, inputs, matrix, needs, steps, runner, secrets, job),
`run` with its `shell` and `working-directory`, `timeout-minutes`,
`continue-on-error` (outcome vs conclusion); the files $GITHUB_OUTPUT, $GITHUB_ENV,
$GITHUB_PATH and $GITHUB_STEP_SUMMARY read after it; the workflow commands
`::set-output`, `::add-mask::`, `::error`/`::warning`/`::notice`, `::group::` in its
output; local composite actions (`uses: ./dir`) and the stand-ins of
`conveyor.interop.github.actions`. The job's `outputs` are written to
$CONVEYOR_OUTPUT, where the jobs needing it read them (`needs.X.outputs.Y`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from conveyor.executor.values import parse as parse_values
from conveyor.interop.github import expr
from conveyor.interop.github.actions import standin_of
from conveyor.interop.github.caching import CACHE_STEP

_COMMAND = re.compile(r"^::([a-zA-Z-]+)(?:\s+([^:]*))?::(.*)$")


DEFAULT_STRATEGY: dict[str, Any] = {
    "fail-fast": True,
    "max-parallel": "",
    "job-index": 0,
    "job-total": 1,
}
"""The `strategy` context of a job whose instructions give none."""


def runtime_github(
    given: Mapping[str, Any], environ: Mapping[str, str], root: str
) -> dict[str, Any]:
    """The `github` context as the job starts: the run's facts (branch or tag, commit,
    run id: Conveyor gives every job them as CONVEYOR_*), this workspace, and what the
    instructions say (event, workflow, the event's payload), which win."""
    event = environ.get("CONVEYOR_EVENT", "")
    tag, branch = environ.get("CONVEYOR_TAG", ""), environ.get("CONVEYOR_BRANCH", "")
    if tag and (event == "tag" or not branch):
        ref, name, kind = f"refs/tags/{tag}", tag, "tag"
    else:
        ref, name, kind = (f"refs/heads/{branch}" if branch else ""), branch, "branch"
    # GitHub's run id is a number; Conveyor's (20261128-185100.496-12fe) gives its digits.
    run_id = re.sub(r"\D", "", environ.get("CONVEYOR_RUN_ID", "").rsplit("-", 1)[0]) or "1"
    github: dict[str, Any] = {
        "event_name": "push",
        "event": {},
        "ref": ref,
        "ref_name": name,
        "ref_type": kind,
        "sha": environ.get("CONVEYOR_COMMIT", ""),
        "repository": f"local/{os.path.basename(root)}",
        "repository_owner": "local",
        "actor": environ.get("USER", "local"),
        "workflow": "",
        "workspace": root,
        "run_id": run_id,
        "run_number": "1",
        "run_attempt": "1",
        "server_url": "https://github.com",
        "api_url": "https://api.github.com",
        "graphql_url": "https://api.github.com/graphql",
        "head_ref": "",
        "base_ref": "",
        "token": "",
        "action": "",
        "job": "",
    }
    github.update(given)
    return github


class Runner:
    def __init__(self, spec: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self.spec = spec
        self.root = os.getcwd()
        self.environ = {k: v for k, v in environ.items() if not k.startswith("CONVEYOR_GHA_")}
        self.masks: list[str] = []
        self.secrets = {n: environ.get(n, "") for n in spec.get("secrets") or []}
        # A called workflow's secrets: named by its caller's `secrets:` (another
        # secret's value, or a literal).
        for name, (kind, value) in (spec.get("secret_from") or {}).items():
            self.secrets[name] = value if kind == "value" else environ.get(value, "")
        self.masks.extend(v for v in self.secrets.values() if v)
        self.temp = tempfile.mkdtemp(prefix="gha-")
        self.path_extra: list[str] = []
        self.status = "success"
        self.stopped: str | None = None
        """The token ending `::stop-commands::` (workflow commands ignored till then)."""
        needs = {}
        for job, how in (spec.get("needs") or {}).items():
            needs[job] = {
                "result": environ.get(how["result"], "") or "success",
                "outputs": {k: environ.get(v, "") for k, v in how["outputs"].items()},
            }
        matrix = {k: _typed(environ.get(v, "")) for k, v in (spec.get("matrix") or {}).items()}
        github = runtime_github(spec.get("github") or {}, environ, self.root)
        github["job"] = spec.get("job", "")
        self.contexts: dict[str, Any] = {
            "github": github,
            "inputs": dict(spec.get("inputs") or {}),
            "vars": dict(spec.get("vars") or {}),
            "secrets": {**self.secrets, "GITHUB_TOKEN": ""},
            "needs": needs,
            "matrix": matrix,
            "strategy": {**DEFAULT_STRATEGY, **(spec.get("strategy") or {})},
            "steps": {},
            "runner": {
                "os": "Linux" if sys.platform.startswith("linux") else "macOS",
                "arch": "X64" if os.uname().machine in ("x86_64", "AMD64") else "ARM64",
                "name": "conveyor",
                "temp": self.temp,
                "tool_cache": os.path.join(self.temp, "tool-cache"),
                "debug": "",
            },
            "job": {"status": "success"},
            "env": {},
        }
        # The workflow's env, then the job's, each rendered as far as it may read.
        env: dict[str, str] = {}
        for level in ("workflow_env", "env"):
            for key, value in (spec.get(level) or {}).items():
                self.contexts["env"] = dict(env)
                env[str(key)] = expr.text(expr.render_value(value, self.eval_env()))
        self.job_env = env
        self.contexts["env"] = dict(env)

    def eval_env(self) -> expr.Env:
        self.contexts["job"] = {"status": self.status}
        return expr.Env(self.contexts, status=self.status, root=self.root)

    def mask(self, text: str) -> str:
        for secret in sorted(self.masks, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "***")
        return text

    def say(self, line: str) -> None:
        sys.stdout.write(self.mask(line) + "\n")
        sys.stdout.flush()

    # -- the job ------------------------------------------------------------------------
    def run(self) -> int:
        if self.spec.get("collect"):
            # The calling job of a reusable workflow: the `jobs` context is its jobs';
            # it fails when one of them did.
            self.contexts["jobs"] = self.contexts["needs"]
            ended = [n["result"] for n in self.contexts["needs"].values()]
            if any(r in ("failure", "cancelled") for r in ended):
                self.status = "failure"
        try:
            self.run_steps(self.spec.get("steps") or [], self.contexts["steps"], self.job_env)
            outputs = {}
            for key, value in (self.spec.get("outputs") or {}).items():
                outputs[str(key)] = expr.text(expr.render_value(value, self.eval_env()))
            out_file = os.environ.get("CONVEYOR_OUTPUT")
            if out_file and outputs:
                with open(out_file, "a", encoding="utf-8") as fh:
                    for key, value in outputs.items():
                        delimiter = f"ghadelimiter_{os.urandom(8).hex()}"
                        fh.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
        except expr.ExprError as exc:
            self.say(f"::error::{exc.message}")
            self.status = "failure"
        finally:
            shutil.rmtree(self.temp, ignore_errors=True)
        return 0 if self.status == "success" else 1

    def run_steps(self, steps: list[Any], record: dict[str, Any], base_env: dict[str, str]) -> None:
        for index, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            sid = str(step.get("id") or f"__{index}")
            label = step.get("name") or step.get("run", "").split("\n")[0] or step.get("uses", "")
            env_now = dict(base_env)
            self.contexts["env"] = env_now
            cond = step.get("if", "success()")
            if isinstance(cond, bool):
                cond = "true" if cond else "false"
            if not expr.check(str(cond), self.eval_env()):
                record[sid] = {"outcome": "skipped", "conclusion": "skipped", "outputs": {}}
                self.say(f"[step] {expr.render(str(label), self.eval_env())}: skipped")
                continue
            for key, value in (step.get("env") or {}).items():
                env_now[str(key)] = expr.text(expr.render_value(value, self.eval_env()))
            self.contexts["env"] = env_now
            shown = self.mask(expr.render(str(label), self.eval_env()))
            self.say(f"[step] {shown}")
            ok, outputs = self.one_step(step, env_now, base_env)
            coe = step.get("continue-on-error", False)
            coe_on = coe is True or (
                isinstance(coe, str) and expr.truthy(expr.render_value(coe, self.eval_env()))
            )
            outcome = "success" if ok else "failure"
            conclusion = "success" if ok or coe_on else "failure"
            record[sid] = {"outcome": outcome, "conclusion": conclusion, "outputs": outputs}
            if not ok:
                self.say(f"[step] {shown}: failed" + (" (continue-on-error)" if coe_on else ""))
            if conclusion == "failure":
                self.status = "failure"
            self.contexts["env"] = base_env

    def one_step(
        self, step: dict[str, Any], env_now: dict[str, str], base_env: dict[str, str]
    ) -> tuple[bool, dict[str, str]]:
        if "uses" in step:
            return self.uses(step, env_now, base_env)
        script = expr.render(str(step.get("run", "")), self.eval_env())
        defaults = self.spec.get("defaults") or {}
        shell = step.get("shell") or defaults.get("shell")
        if shell is not None:
            shell = expr.render(str(shell), self.eval_env())
        workdir = step.get("working-directory") or defaults.get("working-directory") or "."
        workdir = expr.render(str(workdir), self.eval_env())
        timeout = step.get("timeout-minutes")
        seconds = expr.number(expr.render_value(timeout, self.eval_env())) * 60 if timeout else None
        files = {
            name: os.path.join(self.temp, f"{name.lower()}-{os.urandom(4).hex()}")
            for name in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY")
        }
        for path in files.values():
            open(path, "w").close()
        argv, script_path = _shell(shell, script, self.temp)
        proc_env = dict(self.environ)
        proc_env.update(self._github_vars())
        proc_env.update(env_now)
        proc_env.update(files)
        if self.path_extra:
            proc_env["PATH"] = os.pathsep.join([*self.path_extra, proc_env.get("PATH", "")])
        outputs: dict[str, str] = {}
        try:
            proc = subprocess.Popen(
                argv,
                cwd=os.path.join(self.root, workdir),
                env=proc_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            self.say(f"::error::cannot start {argv[0]}: {exc.strerror}")
            return False, outputs
        assert proc.stdout is not None
        import threading

        timer = None
        if seconds:
            timer = threading.Timer(seconds, proc.kill)
            timer.start()
        for line in proc.stdout:
            self.command_line(line.rstrip("\n"), outputs, base_env, proc_env)
        code = proc.wait()
        if timer is not None:
            timer.cancel()
        os.unlink(script_path)
        self.after_step(files, outputs, base_env)
        return code == 0, outputs

    def command_line(
        self, line: str, outputs: dict[str, str], base_env: dict[str, str], env: Mapping[str, str]
    ) -> None:
        m = _COMMAND.match(line)
        if m is None:
            self.say(line)
            return
        command, props, value = m.group(1), m.group(2) or "", m.group(3)
        if self.stopped is not None:
            if command == self.stopped:
                self.stopped = None
            else:
                self.say(line)
            return
        if command == "stop-commands":
            self.stopped = value
            return
        if command in ("set-env", "add-path"):
            # Deprecated as unsafe: honoured only where the workflow allows them, as on
            # GitHub.
            if env.get("ACTIONS_ALLOW_UNSECURE_COMMANDS", "").lower() != "true":
                self.say(
                    f"::error::the `{command}` command is disabled "
                    "(ACTIONS_ALLOW_UNSECURE_COMMANDS)"
                )
                return
            if command == "set-env":
                name = dict(_props(props)).get("name", "")
                if name:
                    base_env[name] = value
            else:
                self.path_extra.insert(0, value)
            return
        if command == "add-mask":
            if value:
                self.masks.append(value)
            return
        if command == "set-output":
            name = dict(_props(props)).get("name", "")
            if name:
                outputs[name] = value
            return
        if command == "debug":
            return
        if command in ("group", "endgroup"):
            self.say(f"▸ {value}" if command == "group" else "")
            return
        self.say(line)

    def after_step(
        self, files: dict[str, str], outputs: dict[str, str], base_env: dict[str, str]
    ) -> None:
        with open(files["GITHUB_OUTPUT"], encoding="utf-8", errors="replace") as fh:
            outputs.update(parse_values(fh.read())[0])
        with open(files["GITHUB_ENV"], encoding="utf-8", errors="replace") as fh:
            base_env.update(parse_values(fh.read())[0])
        with open(files["GITHUB_PATH"], encoding="utf-8", errors="replace") as fh:
            added = [line.strip() for line in fh if line.strip()]
        self.path_extra[:0] = list(reversed(added))
        with open(files["GITHUB_STEP_SUMMARY"], encoding="utf-8", errors="replace") as fh:
            summary = fh.read()
        if summary.strip():
            self.say(summary.rstrip("\n"))

    def _github_vars(self) -> dict[str, str]:
        github = self.contexts["github"]
        out = {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": self.root,
            "RUNNER_TEMP": self.temp,
            "RUNNER_OS": self.contexts["runner"]["os"],
            "RUNNER_ARCH": self.contexts["runner"]["arch"],
            "RUNNER_NAME": "conveyor",
        }
        for key in (
            "event_name",
            "ref",
            "ref_name",
            "ref_type",
            "sha",
            "repository",
            "repository_owner",
            "actor",
            "workflow",
            "run_id",
            "run_number",
            "run_attempt",
            "server_url",
            "api_url",
            "graphql_url",
            "head_ref",
            "base_ref",
            "job",
        ):
            out[f"GITHUB_{key.upper()}"] = str(github.get(key, ""))
        return out

    # -- uses: ---------------------------------------------------------------------------
    def uses(
        self, step: dict[str, Any], env_now: dict[str, str], base_env: dict[str, str]
    ) -> tuple[bool, dict[str, str]]:
        target = str(step["uses"])
        with_ = {
            str(k): expr.text(expr.render_value(v, self.eval_env()))
            for k, v in (step.get("with") or {}).items()
        }
        if target.startswith("./"):
            return self.composite(target, with_, env_now, base_env)
        standin = standin_of(target)
        if standin is None:  # reported before the run; a job with one is not started
            self.say(f"::error::{target} cannot run on this machine")
            return False, {}
        done = standin(with_, self.root, str(self.contexts["github"].get("run_id", "run")))
        if CACHE_STEP in step:  # whether Conveyor restored it with its exact key
            hit = self.environ.get(f"CONVEYOR_CACHE_HIT_{step[CACHE_STEP]}", "false")
            done.outputs["cache-hit"] = hit
            done.message += f"; cache-hit: {hit}"
        if not done.ok and self.spec.get("on_unsupported", "skip") == "skip" and "setup-" in target:
            # This machine's toolchain differs: said, and the job goes on with it.
            self.say(f"::warning::{done.message} (--on-unsupported skip: going on)")
            return True, done.outputs
        self.say(("" if done.ok else "::error::") + done.message)
        return done.ok, done.outputs

    def composite(
        self, target: str, with_: dict[str, str], env_now: dict[str, str], base_env: dict[str, str]
    ) -> tuple[bool, dict[str, str]]:
        from conveyor.config.loader import parse_yaml, read_text

        directory = os.path.join(self.root, target[2:])
        path = next(
            (
                os.path.join(directory, n)
                for n in ("action.yml", "action.yaml")
                if os.path.isfile(os.path.join(directory, n))
            ),
            None,
        )
        if path is None:
            self.say(f"::error::no action.yml in {target}")
            return False, {}
        meta = parse_yaml(read_text(path), path) or {}
        using = str((meta.get("runs") or {}).get("using", ""))
        if using != "composite":
            self.say(f"::error::{target} runs with `{using}`: only composite actions run here")
            return False, {}
        inputs: dict[str, Any] = {}
        for name, decl in (meta.get("inputs") or {}).items():
            decl = decl if isinstance(decl, dict) else {}
            if name in with_:
                inputs[name] = with_[name]
            elif "default" in decl:
                inputs[name] = expr.text(expr.render_value(decl["default"], self.eval_env()))
            else:
                inputs[name] = ""
        for name, value in with_.items():
            inputs.setdefault(name, value)
        saved = {k: self.contexts[k] for k in ("inputs", "steps")}
        saved_status = self.status
        self.contexts["inputs"] = inputs
        self.contexts["steps"] = {}
        inner_env = dict(env_now)
        inner_env.update({f"INPUT_{k.upper().replace(' ', '_')}": v for k, v in with_.items()})
        inner_env["GITHUB_ACTION_PATH"] = directory
        github = self.contexts["github"]
        saved_path = github.get("action_path")
        github["action_path"] = directory
        self.status = "success"
        try:
            self.run_steps(
                (meta.get("runs") or {}).get("steps") or [], self.contexts["steps"], inner_env
            )
            ok = self.status == "success"
            outputs = {
                str(k): expr.text(
                    expr.render_value(
                        (v or {}).get("value", "") if isinstance(v, dict) else v, self.eval_env()
                    )
                )
                for k, v in (meta.get("outputs") or {}).items()
            }
        finally:
            self.contexts.update(saved)
            self.status = saved_status
            github["action_path"] = saved_path
        # What the action wrote to $GITHUB_ENV stays for the job's next steps.
        for key, value in inner_env.items():
            if (
                key != "GITHUB_ACTION_PATH"
                and not key.startswith("INPUT_")
                and env_now.get(key) != value
            ):
                base_env[key] = value
        return ok, outputs


def _typed(value: str) -> Any:
    """A matrix value as the workflow had it (numbers stay numbers for comparisons)."""
    if value in ("true", "false"):
        return value == "true"
    if value[:1] in ("{", "["):  # a mapping or a list, carried as JSON (workflow._scalar)
        try:
            return json.loads(value)
        except ValueError:
            return value
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        return value


def _props(text: str) -> list[tuple[str, str]]:
    out = []
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key.strip():
            out.append((key.strip(), value.strip()))
    return out


def _shell(shell: str | None, script: str, temp: str) -> tuple[list[str], str]:
    """GitHub's shells: bash (-eo pipefail, the default where bash is), sh (-e),
    python, pwsh, or a custom template with {0} for the script file."""
    if shell is None:
        shell = "bash" if shutil.which("bash") else "sh"
    templates = {
        "bash": "bash --noprofile --norc -eo pipefail {0}",
        "sh": "sh -e {0}",
        "python": "python3 {0}",
        "pwsh": "pwsh -command \". '{0}'\"",
    }
    template = templates.get(shell, shell if "{0}" in shell else f"{shell} {{0}}")
    suffix = ".py" if shell == "python" else ".ps1" if shell == "pwsh" else ".sh"
    fd, path = tempfile.mkstemp(prefix="step-", suffix=suffix, dir=temp)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(script)
    import shlex

    return [part.replace("{0}", path) for part in shlex.split(template)], path


def main() -> int:
    raw = os.environ.get("CONVEYOR_GHA_JOB")
    if raw is None:
        sys.stderr.write("conveyor.interop.github.steps: no $CONVEYOR_GHA_JOB\n")
        return 2
    return Runner(json.loads(raw), os.environ).run()


if __name__ == "__main__":
    raise SystemExit(main())
