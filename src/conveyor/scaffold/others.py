"""Go modules (and go.work), Cargo (and its workspaces), Maven and Gradle (modules,
multi-project builds), .NET (NuGet), Bundler and Composer projects: each one's manager,
lockfile, members, tools and toolchain version."""

from __future__ import annotations

import posixpath
import re

from conveyor.scaffold import versions
from conveyor.scaffold.detect import Files, Project, Toolchain, first_existing, mentions

GO = ("go.mod",)
RUST = ("Cargo.toml",)
JVM = ("pom.xml", "build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts")
DOTNET = ("*.sln", "*.csproj", "*.fsproj", "*.vbproj")
RUBY = ("Gemfile",)
PHP = ("composer.json",)


def read_go(files: Files, directory: str) -> Project | None:
    """A Go module; go.work beside it makes the modules it uses members."""
    manifest = f"{directory}/go.mod" if directory != "." else "go.mod"
    project = Project("go", directory, manifest, "go", manifest, lockfile=manifest)
    if first_existing(files, directory, ("go.sum",)):
        project.facts["go.sum"] = "yes"
    text = files.text(manifest) or ""
    m = re.search(r"^go\s+(\S+)", text, re.MULTILINE)
    if m and (spec := versions.floor(m.group(1))):
        project.toolchains.append(Toolchain("go", spec, f"{manifest} go directive"))
    work = first_existing(files, directory, ("go.work",))
    if work:
        for use in re.findall(r"^\s*(?:use\s+)?(\./[\w./-]+)\s*$", files.text(work) or "", re.M):
            member = posixpath.normpath(use)
            if member != ".":
                project.members.append(member)
        project.members_source = work
    lint = first_existing(files, directory, (".golangci.yml", ".golangci.yaml", ".golangci.toml"))
    if lint:
        project.add("golangci-lint", "lint", lint)
    project.add("gofmt", "format", f"{manifest} (Go's own formatter)")
    project.add("go vet", "lint", f"{manifest} (Go's own checker)")
    if any(p.endswith("_test.go") for p in files.under(directory)):
        project.add("go test", "test", "*_test.go files")
    return project


def read_rust(files: Files, directory: str) -> Project | None:
    """A crate, or a Cargo workspace with its members."""
    manifest = f"{directory}/Cargo.toml" if directory != "." else "Cargo.toml"
    data = files.data(manifest)
    project = Project("rust", directory, manifest, "cargo", manifest)
    project.lockfile = first_existing(files, directory, ("Cargo.lock",))
    workspace = data.get("workspace")
    if isinstance(workspace, dict) and isinstance(workspace.get("members"), list):
        for pattern in workspace["members"]:
            if isinstance(pattern, str):
                for member in files.glob_dirs(directory, pattern):
                    project.members.append(
                        member if directory == "." else member[len(directory) + 1 :]
                    )
        project.members_source = f"{manifest} [workspace]"
    package = data.get("package")
    rust_version = package.get("rust-version") if isinstance(package, dict) else None
    if isinstance(workspace, dict) and isinstance(workspace.get("package"), dict):
        rust_version = rust_version or workspace["package"].get("rust-version")
    toolchain = first_existing(files, directory, ("rust-toolchain.toml", "rust-toolchain"))
    channel = None
    if toolchain:
        text = files.text(toolchain) or ""
        m = re.search(r'channel\s*=\s*"([^"]+)"', text) or re.fullmatch(r"\s*(\S+)\s*", text)
        channel = m.group(1) if m else None
    if channel and (spec := versions.from_pin(channel)) and channel[0].isdigit():
        project.toolchains.append(Toolchain("rustc", spec, toolchain or manifest))
    elif isinstance(rust_version, str) and (spec := versions.floor(rust_version)):
        project.toolchains.append(Toolchain("rustc", spec, f"{manifest} rust-version"))
    clippy = first_existing(files, directory, ("clippy.toml", ".clippy.toml"))
    project.add("clippy", "lint", clippy or f"{manifest} (cargo's own linter)")
    fmt = first_existing(files, directory, ("rustfmt.toml", ".rustfmt.toml"))
    project.add("rustfmt", "format", fmt or f"{manifest} (cargo's own formatter)")
    project.add("cargo test", "test", manifest)
    return project


def read_jvm(files: Files, directory: str) -> Project | None:
    """A Maven build (its modules) or a Gradle build (its subprojects, its wrapper)."""
    pom = first_existing(files, directory, ("pom.xml",))
    if pom is not None:
        return _maven(files, directory, pom)
    settings = first_existing(files, directory, ("settings.gradle.kts", "settings.gradle"))
    build = first_existing(files, directory, ("build.gradle.kts", "build.gradle"))
    manifest = settings or build
    assert manifest is not None
    project = Project("java", directory, manifest, "gradle", manifest)
    project.lockfile = first_existing(files, directory, ("gradle.lockfile",))
    if first_existing(files, directory, ("gradlew",)):
        project.facts["gradle"] = "./gradlew"
    if settings:
        text = files.text(settings) or ""
        for group in re.findall(r"\binclude\b(?!Build)\s*\(?([^\n)]*)\)?", text):
            for name in re.findall(r"['\"]:?([\w:.-]+)['\"]", group):
                project.members.append(name.replace(":", "/"))
        project.members_source = settings
    sources = [p for p in (build, settings) if p]
    gradle_text = "\n".join(files.text(p) or "" for p in sources)
    for plugin, name, role in (
        ("checkstyle", "checkstyle", "lint"),
        ("spotless", "spotless", "format"),
        ("jacoco", "jacoco", "coverage"),
    ):
        if plugin in gradle_text:
            project.add(name, role, build or manifest)
    m = re.search(
        r"JavaLanguageVersion\.of\((\d+)\)|sourceCompatibility\s*=\s*['\"]?(?:JavaVersion\.VERSION_)?(\d+)",
        gradle_text,
    )
    if m and (spec := versions.floor(m.group(1) or m.group(2))):
        project.toolchains.append(Toolchain("java", spec, build or manifest))
    project.add("gradle test", "test", build or manifest)
    return project


def _maven(files: Files, directory: str, pom: str) -> Project:
    project = Project("java", directory, pom, "maven", pom, lockfile=pom)
    text = files.text(pom) or ""
    project.members = re.findall(r"<module>\s*([^<\s]+)\s*</module>", text)
    if project.members:
        project.members_source = f"{pom} <modules>"
    for plugin, name, role in (
        ("maven-checkstyle-plugin", "checkstyle", "lint"),
        ("spotless-maven-plugin", "spotless", "format"),
        ("jacoco-maven-plugin", "jacoco", "coverage"),
    ):
        if plugin in text:
            project.add(name, role, pom)
    m = re.search(
        r"<(?:maven\.compiler\.release|maven\.compiler\.source|java\.version|release)>\s*"
        r"(?:1\.)?(\d+)\s*<",
        text,
    )
    if m and (spec := versions.floor(m.group(1))):
        project.toolchains.append(Toolchain("java", spec, pom))
    if first_existing(files, directory, ("mvnw",)):
        project.facts["maven"] = "./mvnw"
    project.add("surefire", "test", pom)
    return project


def read_dotnet(files: Files, directory: str) -> Project | None:
    """A .NET solution or project; a solution's projects are its members."""
    here = [
        p
        for p in files.under(directory)
        if posixpath.dirname(p) == (directory if directory != "." else "")
    ]
    sln = sorted(p for p in here if p.endswith(".sln"))
    projects = sorted(p for p in here if p.endswith((".csproj", ".fsproj", ".vbproj")))
    manifest = (sln or projects)[0]
    project = Project("dotnet", directory, manifest, "dotnet", manifest)
    project.lockfile = first_existing(files, directory, ("packages.lock.json",))
    if sln:
        for path in re.findall(r'"([^"]+\.(?:cs|fs|vb)proj)"', files.text(sln[0]) or ""):
            member = posixpath.dirname(path.replace("\\", "/"))
            if member and member not in project.members:
                project.members.append(member)
        project.members_source = sln[0]
    global_json = first_existing(files, directory, ("global.json",)) or first_existing(
        files, ".", ("global.json",)
    )
    if global_json:
        sdk = files.data(global_json).get("sdk")
        version = sdk.get("version") if isinstance(sdk, dict) else None
        if isinstance(version, str) and (spec := versions.floor(version)):
            project.toolchains.append(Toolchain("dotnet", spec, global_json))
    csprojs = [p for p in files.under(directory) if p.endswith((".csproj", ".fsproj"))]
    if any(mentions(files, p, "Microsoft.NET.Test.Sdk") for p in csprojs):
        project.add(
            "dotnet test",
            "test",
            next(p for p in csprojs if mentions(files, p, "Microsoft.NET.Test.Sdk")),
        )
    junit = next((p for p in csprojs if mentions(files, p, "JunitXml.TestLogger")), None)
    if junit:
        project.add("junit-logger", "test", junit)
    if any(mentions(files, p, "coverlet") for p in csprojs):
        project.add(
            "coverlet", "coverage", next(p for p in csprojs if mentions(files, p, "coverlet"))
        )
    editorconfig = first_existing(files, directory, (".editorconfig",)) or first_existing(
        files, ".", (".editorconfig",)
    )
    if editorconfig:
        project.add("dotnet format", "format", editorconfig)
    return project


def read_ruby(files: Files, directory: str) -> Project | None:
    """A Bundler project: rspec or minitest, rubocop or standard."""
    manifest = f"{directory}/Gemfile" if directory != "." else "Gemfile"
    project = Project("ruby", directory, manifest, "bundler", manifest)
    project.lockfile = first_existing(files, directory, ("Gemfile.lock", "gems.locked"))
    text = files.text(manifest) or ""
    gems = set(re.findall(r"^\s*gem\s+['\"]([\w-]+)['\"]", text, re.MULTILINE))
    rubocop = first_existing(files, directory, (".rubocop.yml",))
    if rubocop or "rubocop" in gems:
        project.add("rubocop", "lint", rubocop or manifest)
    elif "standard" in gems:
        project.add("standard", "lint", manifest)
    rspec = first_existing(files, directory, (".rspec",))
    if rspec or "rspec" in gems or "rspec-rails" in gems:
        project.add("rspec", "test", rspec or manifest)
        if "rspec_junit_formatter" in gems:
            project.add("rspec-junit", "test", manifest)
    elif "minitest" in gems or first_existing(files, directory, ("Rakefile",)):
        project.add("rake test", "test", manifest)
    if "simplecov" in gems:
        project.add("simplecov", "coverage", manifest)
    pinned = first_existing(files, directory, (".ruby-version",))
    m = re.search(r"^\s*ruby\s+['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    spec = versions.from_pin(files.text(pinned) or "") if pinned else None
    spec = spec or (versions.from_range(m.group(1).replace("~>", "~=")) if m else None)
    if spec:
        project.toolchains.append(Toolchain("ruby", spec, pinned or manifest))
    return project


def read_php(files: Files, directory: str) -> Project | None:
    """A Composer project: phpunit, phpstan, psalm, php-cs-fixer, phpcs."""
    manifest = f"{directory}/composer.json" if directory != "." else "composer.json"
    data = files.data(manifest)
    project = Project("php", directory, manifest, "composer", manifest)
    project.lockfile = first_existing(files, directory, ("composer.lock",))
    scripts = data.get("scripts")
    if isinstance(scripts, dict):
        project.scripts = {k: v for k, v in scripts.items() if isinstance(v, str)}
    for names, name, role in (
        (("phpunit.xml", "phpunit.xml.dist"), "phpunit", "test"),
        (("phpstan.neon", "phpstan.neon.dist"), "phpstan", "typecheck"),
        (("psalm.xml", "psalm.xml.dist"), "psalm", "typecheck"),
        ((".php-cs-fixer.php", ".php-cs-fixer.dist.php"), "php-cs-fixer", "format"),
        (("phpcs.xml", "phpcs.xml.dist"), "phpcs", "lint"),
    ):
        path = first_existing(files, directory, names)
        if path:
            project.add(name, role, path)
    require = data.get("require")
    php = require.get("php") if isinstance(require, dict) else None
    # Composer writes a union as `||` or `|`: its floor is what can be required.
    union = re.sub(r"\s*\|\|?\s*", " || ", php) if isinstance(php, str) else None
    if union and (spec := versions.from_range(union)):
        project.toolchains.append(Toolchain("php", spec, f"{manifest} require.php"))
    return project
