"""Every mistake in conveyor.yml gives one exact, located message, exit 2, nothing run."""

from __future__ import annotations

import pytest

from tests.conftest import Project

CASES = [
    pytest.param(
        """
        jobs:
          build:
            run: make
          test:
            needs: [biuld]
            run: pytest
        """,
        "conveyor.yml:5:13: jobs.test.needs[0]: unknown job 'biuld' (did you mean 'build'?)",
        id="unknown-needs",
    ),
    pytest.param(
        """
        jobs:
          build:
            rnu: make
        """,
        "conveyor.yml:3:5: jobs.build.rnu: unknown key 'rnu' (did you mean 'run'?)",
        id="unknown-job-key",
    ),
    pytest.param(
        """
        version: 1
        job:
          build:
            run: make
        """,
        "conveyor.yml:2:1: job: unknown key 'job' (did you mean 'jobs'?)",
        id="missing-jobs",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
        stagse: [a]
        """,
        "conveyor.yml:4:1: stagse: unknown key 'stagse' (did you mean 'stages'?)",
        id="unknown-top-key",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            cache: "yes"
        """,
        "conveyor.yml:4:12: jobs.build.cache: expected true or false, got the string 'yes'",
        id="wrong-type-bool",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            allow_failure: "yes"
        """,
        "conveyor.yml:4:20: jobs.build.allow_failure: expected true, false or a mapping "
        "{exit_codes: CODE or [CODE, ...]} (1-255), got the string 'yes'",
        id="wrong-type-allow-failure",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: 5
        """,
        "conveyor.yml:3:10: jobs.build.run: expected a string or a list of strings, "
        "got the number 5",
        id="wrong-type-run",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            needs: [test]
          test:
            run: pytest
            needs: [build]
        """,
        "conveyor.yml:4:13: jobs.build.needs[0]: needs form a cycle: build -> test -> build",
        id="cycle",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            needs: [build]
        """,
        "conveyor.yml:4:13: jobs.build.needs[0]: needs form a cycle: build -> build",
        id="self-cycle",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            timeout: 10 minutes
        """,
        "conveyor.yml:4:14: jobs.build.timeout: invalid duration '10 minutes': expected a number "
        "with a unit (ms, s, m, h, d), such as '90s', '10m' or '1h30m'",
        id="bad-duration",
    ),
    pytest.param(
        """
        jobs:
          test:
            run: pytest
            matrix:
              python: "3.12"
        """,
        "conveyor.yml:5:15: jobs.test.matrix.python: a matrix axis must be a list of values, "
        "got the string '3.12'",
        id="bad-matrix-axis",
    ),
    pytest.param(
        """
        jobs:
          test:
            run: pytest
            matrix:
              python: ["3.11"]
              exclude:
                - pyhton: "3.11"
        """,
        "conveyor.yml:7:11: jobs.test.matrix.exclude[0].pyhton: exclude names unknown axis "
        "'pyhton' (did you mean 'python'?)",
        id="bad-matrix-exclude",
    ),
    pytest.param(
        """
        jobs:
          test:
            run: pytest
            matrix:
              python: ["3.11"]
              exclude:
                - python: "3.11"
        """,
        "conveyor.yml:4:5: jobs.test.matrix: the matrix produces no combinations "
        "(every one is excluded)",
        id="empty-matrix",
    ),
    pytest.param(
        """
        jobs:
          test:
            run: echo ${{ matrix.pyhton }}
            matrix:
              python: ["3.11"]
        """,
        "conveyor.yml:3:26: jobs.test.run[0]: unknown matrix value 'matrix.pyhton' (axes: python)",
        id="bad-matrix-reference",
    ),
    pytest.param(
        """
        jobs:
          deploy:
            run: ./deploy
            if: branch == 'main' && evnt == 'tag'
        """,
        "conveyor.yml:4:29: jobs.deploy.if: invalid expression: unknown name 'evnt' "
        "(did you mean 'event'?); known: branch, tag, commit, event, ci, matrix.NAME, env.NAME, "
        "vars.NAME, run.NAME, needs.JOB.values.NAME, needs.JOB.result, or a quoted string",
        id="bad-expression-name",
    ),
    pytest.param(
        """
        jobs:
          deploy:
            run: ./deploy
            if: "branch == 'main' &&"
        """,
        "conveyor.yml:4:29: jobs.deploy.if: invalid expression: expected a value, found end of "
        "expression",
        id="bad-expression-syntax",
    ),
    pytest.param(
        """
        jobs:
          deploy:
            run: ./deploy
            if: tag =~ 'v[0-9'
        """,
        "conveyor.yml:4:16: jobs.deploy.if: invalid expression: invalid regular expression "
        "'v[0-9': missing ]: [0-9",
        id="bad-expression-regex",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
          notify:
            needs: [build]
            when: on_success
            if: failure()
            run: ./notify
        """,
        "conveyor.yml:6:11: jobs.notify.when: 'when: on_success' and failure() in 'if:' both "
        "say when the job runs",
        id="when-and-status-function",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
          notify:
            needs: [build]
            if: needs.biuld.result == 'failure'
            run: ./notify
        """,
        "conveyor.yml:6:15: jobs.notify.if: invalid expression: 'biuld' is not among the jobs "
        "this one needs (did you mean 'build'?): only the values and results of jobs listed "
        "in `needs:` can be read (needs: build)",
        id="needs-result-of-a-job-not-needed",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
          notify:
            needs: [build]
            if: needs.build.status == 'failure'
            run: ./notify
        """,
        "conveyor.yml:6:21: jobs.notify.if: invalid expression: unknown field 'status' of "
        "needs.build; known: result, values.NAME",
        id="needs-unknown-field",
    ),
    pytest.param(
        """
        jobs:
          deploy:
            run: ./deploy
            when: sometimes
        """,
        "conveyor.yml:4:11: jobs.deploy.when: expected 'on_success', 'on_failure', 'always' or "
        "'manual', got the string 'sometimes'",
        id="when-unknown",
    ),
    pytest.param(
        """
        jobs:
          deploy:
            run: ./deploy
            if: falure()
        """,
        "conveyor.yml:4:9: jobs.deploy.if: invalid expression: unknown function 'falure' (did "
        "you mean 'failure'?); known: startsWith, endsWith, contains, matches, fromJSON, "
        "success, failure, always, cancelled",
        id="status-function-typo",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: [make
          test:
            run: pytest
        """,
        "conveyor.yml:4:7: invalid YAML: did not find expected ',' or ']'",
        id="yaml-syntax",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
          build:
            run: make again
        """,
        'conveyor.yml:4:3: invalid YAML: duplicate key "build"',
        id="yaml-duplicate-key",
    ),
    pytest.param(
        """
        stages: [build, test]
        jobs:
          build:
            stage: biuld
            run: make
        """,
        "conveyor.yml:4:12: jobs.build.stage: unknown stage 'biuld' (did you mean 'build'?)",
        id="unknown-stage",
    ),
    pytest.param(
        """
        jobs:
          test:
            extends: .bsae
            run: pytest
          .base:
            env: {A: "1"}
        """,
        "conveyor.yml:3:14: jobs.test.extends: extends unknown job '.bsae' (did you mean '.base'?)",
        id="unknown-extends",
    ),
    pytest.param(
        """
        jobs:
          .a:
            extends: .b
          .b:
            extends: .a
          test:
            extends: .a
            run: pytest
        """,
        "conveyor.yml:5:14: jobs..b.extends: extends form a cycle: .b -> .a -> .b",
        id="extends-cycle",
    ),
    pytest.param(
        """
        jobs:
          .base:
            timeout: 5x
          test:
            extends: .base
            run: pytest
        """,
        "conveyor.yml:3:14: jobs..base.timeout: invalid duration '5x': expected a number with a "
        "unit (ms, s, m, h, d), such as '90s', '10m' or '1h30m'",
        id="error-in-template",
    ),
    pytest.param(
        """
        jobs:
          test:
            env:
              A: 1
        """,
        "conveyor.yml:2:3: jobs.test: missing 'run': every job needs a command (a string or a "
        "list of strings)",
        id="missing-run",
    ),
    pytest.param(
        """
        jobs:
          test:
            run: pytest
            retries: {max: -1}
        """,
        "conveyor.yml:4:20: jobs.test.retries.max: must be at least 0, got the number -1",
        id="negative-retries",
    ),
    pytest.param(
        """
        jobs:
          test:
            run: pytest
            dir: sub/../..
        """,
        "conveyor.yml:4:10: jobs.test.dir: dir must be a relative path inside the workspace, "
        "got 'sub/../..'",
        id="dir-escapes",
    ),
    pytest.param(
        """
        jobs:
          test:
            run: pytest
            matrix: {d: [ok, /etc]}
            dir: ${{ matrix.d }}
        """,
        "conveyor.yml:5:10: jobs.test.dir: dir must be a relative path inside the workspace, "
        "got '/etc'",
        id="dir-escapes-through-matrix",
    ),
    pytest.param(
        """
        defaults:
          timeout: 0
        jobs:
          test:
            run: pytest
        """,
        "conveyor.yml:2:12: defaults.timeout: timeout must be more than 0",
        id="zero-default-timeout",
    ),
    pytest.param(
        """
        env:
          PY: ${{ matrix.python }}
        jobs:
          test:
            run: pytest
        """,
        "conveyor.yml:2:18: env.PY: unknown matrix value 'matrix.python' (axes: none: the job "
        "has no matrix)",
        id="top-level-env-matrix-reference",
    ),
    pytest.param(
        """
        jobs:
          test:
            run: pytest
            matrix: {}
        """,
        "conveyor.yml:4:13: jobs.test.matrix: a matrix needs at least one axis (name: [values]) "
        "or an include entry",
        id="empty-matrix-mapping",
    ),
    pytest.param(
        """
        jobs:
          test:
            run: pytest
            retries: {max: 2, backoff: "150%"}
        """,
        "conveyor.yml:4:32: jobs.test.retries.backoff: expected a number, got the string '150%'",
        id="backoff-not-a-percentage",
    ),
    pytest.param(
        "",
        "conveyor.yml:1:1: the file is empty",
        id="empty-file",
    ),
    pytest.param(
        """
        - build
        - test
        """,
        "conveyor.yml:1:1: expected a mapping at the top level (version, name, env, defaults, "
        "stages, jobs), got a list",
        id="top-level-list",
    ),
    pytest.param(
        """
        requires: {python: 3.10}
        jobs: {a: {run: make}}
        """,
        "conveyor.yml:1:20: requires.python: expected a quoted string: YAML read this as the "
        'number 3.1 (and 3.10 as 3.1); write the range in quotes, e.g. ">=3.10"',
        id="requires-float-version",
    ),
    pytest.param(
        """
        checks: {secrets: yes}
        jobs: {a: {run: make}}
        """,
        "conveyor.yml:1:19: checks.secrets: expected true, false or a mapping (baseline, "
        "exclude, level), got the string 'yes'",
        id="checks-secrets-yes",
    ),
    pytest.param(
        """
        checks: {manifests: 3}
        jobs: {a: {run: make}}
        """,
        "conveyor.yml:1:21: checks.manifests: expected true, false or a list of globs, got "
        "the number 3",
        id="checks-manifests-number",
    ),
    pytest.param(
        """
        checks:
          after: {max_size: {"dist/*.js": big}}
        jobs: {a: {run: make}}
        """,
        "conveyor.yml:2:35: checks.after.max_size.dist/*.js: invalid size 'big': expected a "
        "number with a unit (B, KB, MB, GB, KiB, MiB, GiB), such as '500KB' or '5MB'",
        id="checks-after-size",
    ),
    # Paths a job writes: a cache hit writes them back, so only inside the workspace,
    # outside .git and .conveyor/, and never the workspace itself (issue 10).
    pytest.param(
        """
        jobs:
          build:
            run: make
            outputs: [dist/, /tmp/out]
        """,
        "conveyor.yml:4:22: jobs.build.outputs[1]: output '/tmp/out' is an absolute path: "
        "give a path relative to the job's dir, inside the workspace",
        id="output-absolute",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            outputs: [../out]
        """,
        "conveyor.yml:4:15: jobs.build.outputs[0]: output '../out' leads outside the "
        "workspace: give a path inside it, relative to the job's dir",
        id="output-escapes-from-the-root",
    ),
    pytest.param(
        """
        jobs:
          build:
            dir: web
            run: make
            outputs:
              - ../dist
              - ../../dist
        """,
        "conveyor.yml:7:9: jobs.build.outputs[1]: output '../../dist' leads outside the "
        "workspace (from the job's dir 'web'): give a path inside it, relative to the job's dir",
        id="output-escapes-from-a-dir",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            outputs: [.git/hooks/x]
        """,
        "conveyor.yml:4:15: jobs.build.outputs[0]: output '.git/hooks/x' is in .git, git's own "
        "files, which a cache hit would overwrite: give a path outside it",
        id="output-in-git",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            outputs: ["dist/**/*.whl", ".g*/config"]
        """,
        "conveyor.yml:4:32: jobs.build.outputs[1]: output '.g*/config' may be in .git, git's "
        "own files, which a cache hit would overwrite: give a path outside it",
        id="output-glob-may-be-in-git",
    ),
    pytest.param(
        """
        jobs:
          test:
            run: pytest
            reports:
              junit: .conveyor/x
        """,
        "conveyor.yml:5:14: jobs.test.reports.junit[0]: report '.conveyor/x' is in .conveyor/, "
        "Conveyor's own state: give a path outside it, e.g. 'reports/junit.xml'",
        id="report-in-conveyor-state",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            outputs: ["."]
        """,
        "conveyor.yml:4:15: jobs.build.outputs[0]: output '.' is the whole workspace: name the "
        "files or directories the job writes, e.g. 'dist/'",
        id="output-is-the-workspace",
    ),
    pytest.param(
        """
        jobs:
          build:
            dir: web
            run: make
            outputs: [./.., "dist/**/*.whl"]
        """,
        "conveyor.yml:5:15: jobs.build.outputs[0]: output './..' is the whole workspace (from "
        "the job's dir 'web'): name the files or directories the job writes, e.g. 'dist/'",
        id="output-is-the-workspace-from-a-dir",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            artifacts: {paths: [dist/, ../x]}
        """,
        "conveyor.yml:4:32: jobs.build.artifacts.paths[1]: artifact path '../x' leads outside "
        "the workspace: give a path inside it, relative to the job's dir",
        id="artifact-escapes",
    ),
    pytest.param(
        """
        jobs:
          install:
            run: pip install -r requirements.txt
            caches:
              - key: pip
                paths: [~/.cache/pip, /tmp/x]
        """,
        "conveyor.yml:6:31: jobs.install.caches[0].paths[1]: cache path '/tmp/x' is an "
        "absolute path: give a path relative to the job's dir, inside the workspace, or '~/...' "
        "under the home directory",
        id="cache-absolute",
    ),
    pytest.param(
        """
        jobs:
          install:
            run: pip install -r requirements.txt
            caches:
              - key: pip
                paths: [~/../shared]
        """,
        "conveyor.yml:6:17: jobs.install.caches[0].paths[0]: cache path '~/../shared' leads "
        "outside the home directory: give a path under it, e.g. '~/.cache/pip', or inside the "
        "workspace",
        id="cache-escapes-home",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            outputs: [~/out]
        """,
        "conveyor.yml:4:15: jobs.build.outputs[0]: output '~/out' is in the home directory: "
        "give a path inside the workspace, relative to the job's dir (only `caches:` paths may "
        "be '~/...')",
        id="output-in-home",
    ),
    # Inputs are only read, but from the workspace: `../x` may leave the job's dir only.
    pytest.param(
        """
        jobs:
          build:
            run: make
            inputs: [src/**, /usr/include/*.h]
        """,
        "conveyor.yml:4:22: jobs.build.inputs[1]: input '/usr/include/*.h' is an absolute "
        "path: inputs are files of the workspace, so give a glob relative to the job's dir",
        id="input-absolute",
    ),
    pytest.param(
        """
        jobs:
          build:
            dir: web
            run: make
            inputs: [../shared/**, ../../x/**]
        """,
        "conveyor.yml:5:28: jobs.build.inputs[1]: input '../../x/**' leads outside the "
        "workspace (from the job's dir 'web'): give a glob inside it, relative to the job's dir "
        "('../x' may leave the dir, not the workspace)",
        id="input-escapes",
    ),
    # Hostile input and rough edges (issue 12): each crashed, hung or was accepted before.
    pytest.param(
        """
        jobs: !!omap
          - build:
              run: make
              rnu: x
        """,
        "conveyor.yml:1:7: invalid YAML: the tag '!!omap' is not supported: Conveyor reads "
        "plain YAML (mappings, lists, strings, numbers, booleans, null); remove the tag",
        id="tag-omap",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: !!python/object/apply:os.system ["echo pwned"]
        """,
        "conveyor.yml:3:10: invalid YAML: the tag '!!python/object/apply:os.system' is not "
        "supported: Conveyor reads plain YAML (mappings, lists, strings, numbers, booleans, "
        "null); remove the tag",
        id="tag-python",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: !shell make
        """,
        "conveyor.yml:3:10: invalid YAML: the tag '!shell' is not supported: Conveyor reads "
        "plain YAML (mappings, lists, strings, numbers, booleans, null); remove the tag",
        id="tag-custom",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            timeout: !!int ten
        """,
        "conveyor.yml:4:14: invalid YAML: cannot read 'ten' as !!int",
        id="tag-standard-wrong-value",
    ),
    pytest.param(
        """
        name: demo
        jbos:
          build:
            run: make
        """,
        "conveyor.yml:2:1: jbos: unknown key 'jbos' (did you mean 'jobs'?)",
        id="jobs-misspelt-and-missing",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            matrix:
              a: &values [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
              b: *values
              c: *values
              d: *values
              e: *values
              exclude:
                - {a: 1}
              include:
                - {a: 1, extra: x}
        """,
        "conveyor.yml:4:5: jobs.build.matrix: the matrix would expand to 100,001 instances "
        "(a 10 x b 10 x c 10 x d 10 x e 10 = 100,000 + 1 include entries; the 1 exclude "
        "entries apply to the expanded product), more than the limit of 10,000 per job",
        id="matrix-over-the-limit",
    ),
    pytest.param(
        """
        limits:
          matrix: 50
        jobs:
          build:
            run: make
            matrix:
              a: [1, 2, 3, 4, 5, 6, 7, 8]
              b: [1, 2, 3, 4, 5, 6, 7, 8]
        """,
        "conveyor.yml:6:5: jobs.build.matrix: the matrix would expand to 64 instances "
        "(a 8 x b 8 = 64), more than the limit of 50 per job",
        id="matrix-over-a-configured-limit",
    ),
    pytest.param(
        """
        limits:
          matrix: 0
        jobs:
          build:
            run: make
        """,
        "conveyor.yml:2:11: limits.matrix: must be at least 1, got the number 0",
        id="matrix-limit-zero",
    ),
    pytest.param(
        """
        jobs:
          .t0: {env: {A: "0"}}
          .t1: {extends: .t0}
          .t2: {extends: .t1}
          .t3: {extends: .t2}
          .t4: {extends: .t3}
          .t5: {extends: .t4}
          .t6: {extends: .t5}
          .t7: {extends: .t6}
          .t8: {extends: .t7}
          .t9: {extends: .t8}
          .t10: {extends: .t9}
          .t11: {extends: .t10}
          build:
            extends: .t11
            run: make
        """,
        "conveyor.yml:15:14: jobs.build.extends: extends more than 11 levels deep: build -> .t11 "
        "-> .t10 -> .t9 -> .t8 -> .t7 -> .t6 -> .t5 -> .t4 -> .t3 -> .t2 -> .t1 -> .t0",
        id="extends-too-deep",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            timeout: 1e300
        """,
        "conveyor.yml:4:14: jobs.build.timeout: duration 1e+300 is too long: at most 3650d "
        "(ten years), such as '90s' or '2h'",
        id="duration-1e300",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            timeout: 99999999999999999999d
        """,
        "conveyor.yml:4:14: jobs.build.timeout: duration 99999999999999999999d is too long: "
        "at most 3650d (ten years), such as '90s' or '2h'",
        id="duration-20-digit-days",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            retries: {max: 2, delay: .nan}
        """,
        "conveyor.yml:4:30: jobs.build.retries.delay: expected a duration such as '90s', "
        "'10m' or '1h30m', got NaN",
        id="duration-nan",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            retries: {max: 2, backoff: 1e300}
        """,
        "conveyor.yml:4:32: jobs.build.retries.backoff: must be at most 100, got the number 1e+300",
        id="backoff-huge",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            retries: {max: 2, max_delay: -5}
        """,
        "conveyor.yml:4:34: jobs.build.retries.max_delay: a duration cannot be negative",
        id="duration-negative",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
        gates:
          findings:
            severity: {ruff: urgent}
        """,
        "conveyor.yml:6:22: gates.findings.severity.ruff: expected 'critical', 'high', "
        "'medium', 'low' or 'note', got the string 'urgent'",
        id="findings-severity-value",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
        gates:
          findings:
            severity: {"ruff/": low}
        """,
        "conveyor.yml:6:15: gates.findings.severity: 'ruff/': a rule is missing after '/' "
        "(e.g. ruff/S105, or ruff for every rule of the tool)",
        id="findings-severity-key",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            gates:
              findings: {severity: {ruff: low}}
        """,
        "conveyor.yml:5:18: jobs.build.gates.findings.severity: severity overrides are the "
        "pipeline's, not a job's",
        id="findings-severity-in-a-job",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
        gates:
          quarantine: ../shared/quarantine.json
        """,
        "conveyor.yml:5:15: gates.quarantine: '../shared/quarantine.json': expected a path "
        "inside the workspace (the list is committed with it)",
        id="quarantine-outside",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            gates:
              quarantine: q.json
        """,
        "conveyor.yml:5:7: jobs.build.gates.quarantine: unknown key 'quarantine'",
        id="quarantine-in-a-job",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            gates:
              sizes: {total: 99999999999999999999999TB}
        """,
        "conveyor.yml:5:22: jobs.build.gates.sizes.total: size 99999999999999999999999TB is "
        "too large: at most 8EiB (2**63-1 bytes)",
        id="size-huge",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
            gates:
              coverage: {line: .nan}
        """,
        "conveyor.yml:5:24: jobs.build.gates.coverage.line: expected a percentage from 0 to "
        "100, got NaN",
        id="percent-nan",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
        history:
          keep_runs: 100000000000000000000000000
        """,
        "conveyor.yml:5:14: history.keep_runs: must be at most 1000000000, got the number "
        "100000000000000000000000000",
        id="keep-runs-huge",
    ),
    pytest.param(
        """
        requires:
          node: ">>18"
        jobs:
          build:
            run: make
        """,
        "conveyor.yml:2:9: requires.node: invalid version specifier '>>18': write one such as "
        "'>=18', '>=3.11,<4', '==4.3.*' or a bare version such as '18' (meaning >=18)",
        id="requires-bad-specifier",
    ),
    pytest.param(
        """
        jobs:
          deploy:
            run: ./deploy
            if: branch =~ '^(?!main$)'
        """,
        "conveyor.yml:4:19: jobs.deploy.if: invalid expression: invalid regular expression "
        "'^(?!main$)': invalid perl operator: (?! (regular expressions run on RE2, in time "
        "linear in the text: no backreferences, lookahead or lookbehind)",
        id="regex-lookahead",
    ),
    pytest.param(
        """
        jobs:
          deploy:
            run: ./deploy
            if: DEEP
        """.replace("DEEP", "(" * 200 + "true" + ")" * 200),
        "conveyor.yml:4:73: jobs.deploy.if: invalid expression: expression nested too deeply "
        "(more than 64 levels of parentheses, '!', calls, lists or chained operators): split "
        "the condition",
        id="expression-too-deep",
    ),
    pytest.param(
        """
        jobs:
          build:
            run: make
          test:
            <<: {timeout: 3 parsecs, run: make test}
        """,
        # At the value the merge key brings in, not at the `<<`.
        "conveyor.yml:5:19: jobs.test.timeout: invalid duration '3 parsecs': expected a number "
        "with a unit (ms, s, m, h, d), such as '90s', '10m' or '1h30m'",
        id="merged-key",
    ),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_config_error_is_exact_and_located(project: Project, text: str, message: str) -> None:
    project.pipeline(text)
    for command in (["validate"], ["run"]):
        result = project.run(*command)
        assert result.code == 2
        assert result.err.splitlines()[0] == message
        assert "Traceback" not in result.err
        assert result.out == ""
    assert project.runs() == [], "nothing may run after a config error"


def test_missing_file_names_it_and_exits_2(project: Project) -> None:
    result = project.run("-f", "nope.yml", "validate")
    assert result.code == 2
    assert result.err.splitlines()[0] == "nope.yml: file not found"
    assert "hint:" in result.err


def test_unknown_key_lists_the_valid_keys(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: make
            artifacts:
              pahts: [dist/]
        """
    )
    result = project.run("validate")
    assert result.err.splitlines()[0] == (
        "conveyor.yml:5:7: jobs.build.artifacts.pahts: unknown key 'pahts' (did you mean 'paths'?)"
    )
    assert result.err.splitlines()[1] == (
        "  hint: valid keys here: paths, name, version, keep, expire_in, when, type"
    )


def test_stage_cycle_through_explicit_needs(project: Project) -> None:
    project.pipeline(
        """
        stages: [build, test]
        jobs:
          build:
            stage: build
            needs: [test]
            run: make
          test:
            stage: test
            run: pytest
        """
    )
    result = project.run("validate")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "conveyor.yml:5:13: jobs.build.needs[0]: needs form a cycle: build -> test -> build"
    )


def test_unknown_job_on_the_command_line(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: make
        """
    )
    result = project.run("run", "biuld")
    assert result.code == 2
    assert result.err.splitlines()[0] == "error: unknown job 'biuld' (did you mean 'build'?)"
    assert project.runs() == []


def test_later_feature_keys_are_validated_now(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: make
            gates:
              coverage: {line: 120}
        """
    )
    result = project.run("validate")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "conveyor.yml:5:24: jobs.build.gates.coverage.line: must be at most 100, got the number 120"
    )


def test_history_url_must_be_a_database_url(project: Project) -> None:
    project.pipeline(
        """
        history:
          url: https://history.example.com/acme
        jobs:
          build:
            run: make
        """
    )
    result = project.run("validate")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "conveyor.yml:2:8: history.url: expected a database URL "
        "(postgresql+psycopg://user@host/db or sqlite:///path), "
        "got 'https://history.example.com/acme'"
    )


def test_paths_inside_the_workspace_and_home_caches_are_accepted(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          .py:
            outputs: [../dist/]
          install:
            run: pip install -r requirements.txt
            caches:
              - key: pip
                paths: [~/.cache/pip, .venv, ../shared/vendor]
            dir: app
          build:
            extends: .py
            dir: app
            inputs: [../shared/**, "!../shared/tmp/**", "**/*.py"]
            outputs: [dist/**/*.whl, build, .gitignore-out/x, sub/.conveyor/x]
            reports: {junit: reports/junit.xml}
            artifacts: ../dist/
            run: make
        """
    )
    result = project.run("validate")
    assert result.code == 0, result.err
    assert result.out == "conveyor.yml: valid: 2 job(s)\n"


def test_a_refused_path_hints_why(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          build:
            run: make
            outputs: [/tmp/out]
        """
    )
    result = project.run("validate")
    assert result.err.splitlines()[1] == (
        "  hint: a cache hit writes what a job wrote back to the same paths, so they must be "
        "inside the workspace"
    )


def test_a_path_from_a_template_is_located_where_it_is_written(project: Project) -> None:
    project.pipeline(
        """
        jobs:
          .out:
            outputs: [/tmp/out]
          build:
            extends: .out
            run: make
        """
    )
    result = project.run("validate")
    assert result.err.splitlines()[0] == (
        "conveyor.yml:3:15: jobs.build.outputs[0]: output '/tmp/out' is an absolute path: "
        "give a path relative to the job's dir, inside the workspace"
    )
