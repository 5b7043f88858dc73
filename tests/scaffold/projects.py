"""Small projects of each ecosystem as their manifests are written in real repositories,
for `conveyor init` to read: each a mapping of path to text."""

from __future__ import annotations

UV_WORKSPACE = {
    ".python-version": "3.12\n",
    "pyproject.toml": """\
[project]
name = "acme"
version = "0.3.0"
requires-python = ">=3.11"
dependencies = ["httpx>=0.27", "acme-core"]

[dependency-groups]
dev = ["pytest>=8", "pytest-cov>=5", "ruff>=0.6", "mypy>=1.11"]

[tool.uv.workspace]
members = ["packages/*"]

[tool.uv.sources]
acme-core = { workspace = true }

[tool.ruff]
line-length = 100

[tool.mypy]
strict = true

[tool.pytest.ini_options]
testpaths = ["tests"]

[tool.coverage.report]
fail_under = 85
""",
    "uv.lock": """\
version = 1
requires-python = ">=3.11"

[manifest]
members = ["acme", "acme-core"]

[[package]]
name = "acme"
version = "0.3.0"
source = { editable = "." }
""",
    "packages/core/pyproject.toml": """\
[project]
name = "acme-core"
version = "0.3.0"
""",
    "packages/core/src/acme_core/__init__.py": "",
    "src/acme/__init__.py": "",
    "tests/test_acme.py": "def test_ok():\n    assert True\n",
}

NPM = {
    ".nvmrc": "20.11.1\n",
    "package.json": """\
{
  "name": "left-pad-ng",
  "version": "2.1.0",
  "main": "index.js",
  "scripts": {"test": "jest", "lint": "eslint ."},
  "engines": {"node": ">=18"},
  "devDependencies": {
    "eslint": "^9.9.0",
    "jest": "^29.7.0",
    "jest-junit": "^16.0.0",
    "prettier": "^3.3.3"
  }
}
""",
    "package-lock.json": """\
{
  "name": "left-pad-ng",
  "version": "2.1.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {"name": "left-pad-ng", "version": "2.1.0", "devDependencies": {"jest": "^29.7.0"}},
    "node_modules/jest": {"version": "29.7.0", "dev": true}
  }
}
""",
    "eslint.config.js": "export default [];\n",
    ".prettierrc": "{}\n",
    "index.js": "module.exports = (s, n) => s.padStart(n);\n",
}

PNPM_WORKSPACE = {
    "package.json": """\
{
  "name": "web-monorepo",
  "private": true,
  "packageManager": "pnpm@9.7.0",
  "scripts": {"build": "pnpm -r build", "test": "vitest run", "typecheck": "tsc -b"},
  "devDependencies": {"vitest": "^2.0.5", "typescript": "^5.5.4", "@vitest/coverage-v8": "^2.0.5"}
}
""",
    "pnpm-workspace.yaml": "packages:\n  - 'apps/*'\n  - 'packages/*'\n",
    "pnpm-lock.yaml": "lockfileVersion: '9.0'\n\nimporters:\n\n  .: {}\n",
    "tsconfig.json": '{"files": [], "references": [{"path": "apps/web"}]}\n',
    "apps/web/package.json": '{"name": "@acme/web", "version": "0.0.0"}\n',
    "packages/ui/package.json": '{"name": "@acme/ui", "version": "0.0.0"}\n',
}

GO = {
    "go.mod": """\
module github.com/acme/ratelimit

go 1.22

require golang.org/x/time v0.6.0
""",
    "go.sum": "golang.org/x/time v0.6.0 h1:eTDhh4ZXt5Qf0augr54TN6suAUudPcawVZeIAPU7D4U=\n",
    ".golangci.yml": "linters:\n  enable: [errcheck, staticcheck]\n",
    "limiter.go": "package ratelimit\n",
    "limiter_test.go": "package ratelimit\n",
}

CARGO_WORKSPACE = {
    "Cargo.toml": """\
[workspace]
members = ["crates/*"]
resolver = "2"

[workspace.package]
rust-version = "1.74"
""",
    "Cargo.lock": "version = 3\n",
    "rust-toolchain.toml": '[toolchain]\nchannel = "1.79.0"\ncomponents = ["clippy", "rustfmt"]\n',
    "crates/cli/Cargo.toml": '[package]\nname = "cli"\nversion = "0.1.0"\nedition = "2021"\n',
    "crates/cli/src/main.rs": "fn main() {}\n",
    "crates/core/Cargo.toml": '[package]\nname = "core"\nversion = "0.1.0"\nedition = "2021"\n',
    "crates/core/src/lib.rs": "",
}

MAVEN = {
    "pom.xml": """\
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.acme</groupId>
  <artifactId>billing-parent</artifactId>
  <version>1.0.0-SNAPSHOT</version>
  <packaging>pom</packaging>
  <modules>
    <module>billing-api</module>
    <module>billing-core</module>
  </modules>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
  </properties>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-checkstyle-plugin</artifactId>
        <version>3.4.0</version>
      </plugin>
    </plugins>
  </build>
</project>
""",
    "billing-api/pom.xml": "<project><artifactId>billing-api</artifactId></project>\n",
    "billing-core/pom.xml": "<project><artifactId>billing-core</artifactId></project>\n",
}

GRADLE = {
    "settings.gradle.kts": (
        'rootProject.name = "shop"\nincludeBuild("build-logic")\ninclude("app", "lib")\n'
    ),
    "build.gradle.kts": """\
plugins { java; id("com.diffplug.spotless") version "6.25.0" }
java { toolchain { languageVersion = JavaLanguageVersion.of(21) } }
""",
    "gradlew": "#!/bin/sh\n",
    "app/build.gradle.kts": "plugins { application }\n",
    "lib/build.gradle.kts": "plugins { `java-library` }\n",
}

BUNDLER = {
    "Gemfile": """\
source "https://rubygems.org"
ruby "3.3.4"

gem "sinatra", "~> 4.0"

group :development, :test do
  gem "rspec", "~> 3.13"
  gem "rspec_junit_formatter"
  gem "rubocop", require: false
end
""",
    "Gemfile.lock": """\
GEM
  remote: https://rubygems.org/
  specs:
    sinatra (4.0.0)

PLATFORMS
  ruby

DEPENDENCIES
  sinatra (~> 4.0)

BUNDLED WITH
   2.5.11
""",
    ".rspec": "--require spec_helper\n",
    ".rubocop.yml": "AllCops:\n  NewCops: enable\n",
}

COMPOSER = {
    "composer.json": """\
{
  "name": "acme/invoice",
  "require": {"php": "^7.4|^8.0", "symfony/console": "^5.4"},
  "require-dev": {"phpunit/phpunit": "^11.3", "phpstan/phpstan": "^1.11"}
}
""",
    "composer.lock": '{"packages": [], "packages-dev": []}\n',
    "phpunit.xml.dist": '<phpunit bootstrap="vendor/autoload.php"/>\n',
    "phpstan.neon": "parameters:\n  level: 8\n",
}

_CS = "{FAE04EC0-301F-11D3-BF4B-00C04F79EFBC}"  # a C# project's type in a solution

DOTNET = {
    "Acme.sln": (
        "Microsoft Visual Studio Solution File, Format Version 12.00\n"
        f'Project("{_CS}") = "Acme.Api", "src\\Acme.Api\\Acme.Api.csproj", "{{1}}"\nEndProject\n'
        f'Project("{_CS}") = "Acme.Tests", "tests\\Acme.Tests\\Acme.Tests.csproj", "{{2}}"\n'
        "EndProject\n"
    ),
    "global.json": '{"sdk": {"version": "8.0.400", "rollForward": "latestFeature"}}\n',
    ".editorconfig": "root = true\n",
    "src/Acme.Api/Acme.Api.csproj": '<Project Sdk="Microsoft.NET.Sdk.Web"></Project>\n',
    "tests/Acme.Tests/Acme.Tests.csproj": """\
<Project Sdk="Microsoft.NET.Sdk">
  <ItemGroup>
    <PackageReference Include="Microsoft.NET.Test.Sdk" Version="17.11.0" />
    <PackageReference Include="xunit" Version="2.9.0" />
    <PackageReference Include="JunitXml.TestLogger" Version="4.0.254" />
  </ItemGroup>
</Project>
""",
}
