"""One module per package ecosystem, or per lockfile family where one is large, each
turning manifests and lockfiles into `Requirement`s and `Component`s
(conveyor.deps.components): npm (package.json, package-lock.json, npm-shrinkwrap.json),
yarn (yarn.lock, Yarn 1 and Berry), pnpm (pnpm-lock.yaml), pypi (pyproject.toml,
Pipfile), pylocks (poetry.lock, uv.lock, Pipfile.lock, pylock.toml), requirements
(pip's requirement files), cargo (Cargo.toml, Cargo.lock), go (go.mod, go.sum), maven
(gradle.lockfile, pom.xml), rubygems (Gemfile.lock), nuget (packages.lock.json) and
packagist (composer.lock, with its composer.json); lockyaml reads the YAML pnpm and Yarn
write, shared holds what the readers share."""
