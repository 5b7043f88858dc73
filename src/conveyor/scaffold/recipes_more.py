"""The jobs of Go, Rust, Java (Maven, Gradle), .NET, Ruby and PHP projects (see
`recipes` for Python and Node, and the `Recipe` they all return)."""

from __future__ import annotations

from conveyor.scaffold.detect import Project
from conveyor.scaffold.jobs import JobSpec
from conveyor.scaffold.recipes import JUNIT, Recipe, hash_key, key_files, rel, tests_gate


def go(project: Project) -> Recipe:
    """Modules downloaded into ~/go/pkg/mod, cached on go.sum; gofmt, go vet and
    golangci-lint when configured; go test; binaries built into dist/."""
    go_sum = project.path("go.sum")  # a module without dependencies has none
    files = key_files(project, *([go_sum] if project.facts.get("go.sum") else []))
    recipe = Recipe()
    recipe.setup = JobSpec(
        "setup",
        "setup",
        ["go mod download"],
        f"Modules ({project.manifest}), cached on {', '.join(files)}.",
        inputs=files,
        pass_env=["GOPROXY", "GOPRIVATE", "GOFLAGS"],
        caches=[{"key": hash_key("go", files), "paths": ["~/go/pkg/mod"]}],
    )
    lint = ['test -z "$(gofmt -l .)" || { gofmt -l .; exit 1; }', "go vet ./..."]
    why = "gofmt and go vet (Go's own)"
    if (golangci := project.tool("golangci-lint")) is not None:
        lint.append("golangci-lint run")
        why += f", golangci-lint ({golangci.source})"
    recipe.checks.append(
        JobSpec("lint", "lint", lint, f"Lint: {why}.", inputs=["**/*.go", "go.mod"])
    )
    if project.tool("go test") is not None:
        recipe.test = JobSpec(
            "test", "test", ["go test ./..."], "Tests: go test over every package."
        )
    recipe.build = JobSpec(
        "build",
        "build",
        ["go build -o dist/ ./..."],
        "Every main package built into dist/ (a library builds to nothing, and that checks "
        "it compiles).",
        outputs=["dist/"],
    )
    return recipe


def rust(project: Project) -> Recipe:
    """Crates fetched into ~/.cargo, cached on Cargo.lock; rustfmt, clippy, cargo test,
    a release build. target/ is cargo's own incremental cache, not an output."""
    files = key_files(project)
    locked = " --locked" if project.lockfile else ""
    scope = " --workspace" if project.members else ""
    recipe = Recipe()
    recipe.setup = JobSpec(
        "setup",
        "setup",
        [f"cargo fetch{locked}"],
        f"Crates ({project.manifest}), cached on {', '.join(files)}.",
        inputs=files,
        caches=[{"key": hash_key("cargo", files), "paths": ["~/.cargo/registry", "~/.cargo/git"]}],
        # Without a Cargo.lock, fetching writes one: it is this job's output.
        outputs=[] if project.lockfile else ["Cargo.lock"],
    )
    fmt, clippy = project.tool("rustfmt"), project.tool("clippy")
    recipe.checks.append(
        JobSpec(
            "lint",
            "lint",
            [
                "cargo fmt --all --check",
                f"cargo clippy{scope} --all-targets{locked} -- -D warnings",
            ],
            f"Format and lint: rustfmt ({fmt.source if fmt else ''}), "
            f"clippy ({clippy.source if clippy else ''}).",
        )
    )
    recipe.test = JobSpec("test", "test", [f"cargo test{scope}{locked}"], "Tests: cargo test.")
    recipe.build = JobSpec(
        "build", "build", [f"cargo build{scope} --release{locked}"], "A release build."
    )
    for job in recipe.jobs():  # where rustup keeps its toolchains, when not in ~
        job.pass_env = ["CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"]
    return recipe


def java(project: Project) -> Recipe:
    """Maven or Gradle: dependencies cached on the build files, checkstyle/spotless when
    configured, the tests' JUnit reports read by the tests gate, the jars as artifacts."""
    if project.manager == "maven":
        return _maven(project)
    gradle = project.facts.get("gradle", "gradle")
    build_files = sorted({rel(project, p) for p in [project.manifest]} | {"**/*.gradle*"})
    recipe = Recipe()
    recipe.setup = JobSpec(
        "setup",
        "setup",
        [f"{gradle} --no-daemon dependencies"],
        f"Dependencies with Gradle ({project.manifest}), cached on the build files.",
        caches=[
            {
                "key": hash_key("gradle", build_files),
                "paths": ["~/.gradle/caches", "~/.gradle/wrapper"],
            }
        ],
    )
    tasks = [
        t
        for t, tool in (("checkstyleMain", "checkstyle"), ("spotlessCheck", "spotless"))
        if project.tool(tool)
    ]
    if tasks:
        recipe.checks.append(
            JobSpec(
                "lint",
                "lint",
                [f"{gradle} --no-daemon {' '.join(tasks)}"],
                "Lint: " + ", ".join(tasks) + ".",
            )
        )
    recipe.test = JobSpec(
        "test",
        "test",
        [f"{gradle} --no-daemon test"],
        "Tests, their JUnit reports read by the tests gate.",
    )
    recipe.test.reports["junit"] = _each_path(project, "build/test-results/test/*.xml")
    tests_gate(recipe.test)
    jars = _each_path(project, "build/libs/*.jar")
    recipe.build = JobSpec(
        "build",
        "build",
        [f"{gradle} --no-daemon assemble"],
        "The jars, kept as artifacts.",
        outputs=jars,
        artifacts={"paths": jars, "type": "application"},
    )
    return recipe


def _maven(project: Project) -> Recipe:
    mvn = project.facts.get("maven", "mvn") + " -B"
    files = sorted({"pom.xml", *(f"{m}/pom.xml" for m in project.members)})
    recipe = Recipe()
    recipe.setup = JobSpec(
        "setup",
        "setup",
        [f"{mvn} dependency:go-offline"],
        f"Dependencies with Maven ({project.manifest}), cached on the poms.",
        inputs=files,
        caches=[{"key": hash_key("maven", files), "paths": ["~/.m2/repository"]}],
    )
    goals = [
        g
        for g, tool in (("checkstyle:check", "checkstyle"), ("spotless:check", "spotless"))
        if project.tool(tool)
    ]
    if goals:
        recipe.checks.append(
            JobSpec("lint", "lint", [f"{mvn} {' '.join(goals)}"], "Lint: " + ", ".join(goals) + ".")
        )
    recipe.test = JobSpec(
        "test",
        "test",
        [f"{mvn} test"],
        "Tests (Surefire), their JUnit reports read by the tests gate.",
    )
    recipe.test.reports["junit"] = _each_path(project, "target/surefire-reports/TEST-*.xml")
    tests_gate(recipe.test)
    jars = _each_path(project, "target/*.jar")
    recipe.build = JobSpec(
        "build",
        "build",
        [f"{mvn} -DskipTests package"],
        "The jars, kept as artifacts.",
        outputs=jars,
        artifacts={"paths": jars, "type": "application"},
    )
    return recipe


def dotnet(project: Project) -> Recipe:
    """NuGet packages restored into ~/.nuget/packages, cached on the project files;
    dotnet format, dotnet test, a release build."""
    locked = " --locked-mode" if project.lockfile else ""
    recipe = Recipe()
    recipe.setup = JobSpec(
        "setup",
        "setup",
        [f"dotnet restore{locked}"],
        f"NuGet packages ({project.manifest}), cached on the project files.",
        caches=[
            {
                "key": hash_key("nuget", ["**/*.csproj", "**/*.fsproj", "**/packages.lock.json"]),
                "paths": ["~/.nuget/packages"],
            }
        ],
    )
    if project.tool("dotnet format") is not None:
        recipe.checks.append(
            JobSpec(
                "lint",
                "lint",
                ["dotnet format --verify-no-changes"],
                "Format: dotnet format (.editorconfig).",
            )
        )
    if project.tool("dotnet test") is not None:
        recipe.test = JobSpec("test", "test", ["dotnet test --no-restore"], "Tests: dotnet test.")
        if project.tool("junit-logger") is not None:
            recipe.test.run = [f'dotnet test --no-restore --logger "junit;LogFilePath=../{JUNIT}"']
            recipe.test.reports["junit"] = JUNIT
            tests_gate(recipe.test)
    recipe.build = JobSpec(
        "build", "build", ["dotnet build --no-restore -c Release"], "A release build."
    )
    return recipe


def ruby(project: Project) -> Recipe:
    """Gems installed into vendor/bundle, cached on Gemfile.lock; rubocop or standard;
    rspec or rake test."""
    files = key_files(project)
    env = {"BUNDLE_PATH": "vendor/bundle"}
    recipe = Recipe()
    recipe.setup = JobSpec(
        "setup",
        "setup",
        ["bundle install --jobs 4"],
        f"Gems with Bundler ({project.manifest}) into vendor/bundle, cached on {', '.join(files)}.",
        env=dict(env),
        inputs=files,
        caches=[{"key": hash_key("bundler", files), "paths": ["vendor/bundle"]}],
    )
    for name in ("rubocop", "standard"):
        if (tool := project.tool(name)) is not None:
            command = "bundle exec rubocop" if name == "rubocop" else "bundle exec standardrb"
            recipe.checks.append(
                JobSpec("lint", "lint", [command], f"Lint: {name} ({tool.source}).", env=dict(env))
            )
    if project.tool("rspec") is not None:
        recipe.test = JobSpec("test", "test", ["bundle exec rspec"], "Tests: rspec.", env=dict(env))
        if project.tool("rspec-junit") is not None:
            recipe.test.run = [
                f"bundle exec rspec --format progress --format RspecJunitFormatter --out {JUNIT}"
            ]
            recipe.test.reports["junit"] = JUNIT
            tests_gate(recipe.test)
    elif project.tool("rake test") is not None:
        recipe.test = JobSpec(
            "test", "test", ["bundle exec rake test"], "Tests: rake test.", env=dict(env)
        )
    return recipe


def php(project: Project) -> Recipe:
    """Packages installed into vendor/, cached on composer.lock; phpstan/psalm,
    php-cs-fixer/phpcs, phpunit with its JUnit report."""
    files = key_files(project)
    recipe = Recipe()
    recipe.setup = JobSpec(
        "setup",
        "setup",
        ["composer install --no-interaction --no-progress --prefer-dist"],
        f"Packages with Composer ({project.manifest}), cached on {', '.join(files)}.",
        inputs=files,
        caches=[{"key": hash_key("composer", files), "paths": ["vendor"]}],
    )
    commands = {
        "phpstan": "vendor/bin/phpstan analyse --no-progress",
        "psalm": "vendor/bin/psalm --no-progress",
        "php-cs-fixer": "vendor/bin/php-cs-fixer fix --dry-run --diff",
        "phpcs": "vendor/bin/phpcs",
    }
    lint = [(commands[t.name], t) for t in project.tools if t.name in commands]
    if lint:
        recipe.checks.append(
            JobSpec(
                "lint",
                "lint",
                [c for c, _ in lint],
                "Static checks: " + ", ".join(f"{t.name} ({t.source})" for _, t in lint) + ".",
            )
        )
    if project.tool("phpunit") is not None:
        recipe.test = JobSpec(
            "test",
            "test",
            [f"vendor/bin/phpunit --log-junit {JUNIT}"],
            "Tests: phpunit, its JUnit report read by the tests gate.",
        )
        recipe.test.reports["junit"] = JUNIT
        tests_gate(recipe.test)
    return recipe


def _each_path(project: Project, path: str) -> list[str]:
    """A path in the project and in each of its modules (no leading `**`: it could
    reach .git, which a path a job writes may not)."""
    return [path, *(f"{m}/{path}" for m in project.members)]
