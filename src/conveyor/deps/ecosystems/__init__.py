"""One module per package ecosystem, each turning its manifests and lockfiles into
`Requirement`s and `Component`s (conveyor.deps.components): npm (package.json,
package-lock.json, npm-shrinkwrap.json), pypi (pyproject.toml, poetry.lock, uv.lock,
Pipfile, Pipfile.lock), cargo (Cargo.toml, Cargo.lock), go (go.mod, go.sum), maven
(gradle.lockfile, pom.xml), rubygems (Gemfile.lock), nuget (packages.lock.json) and
packagist (composer.lock, with its composer.json)."""
