"""One module per package ecosystem, each turning its manifests and lockfiles into
`Requirement`s and `Component`s (conveyor.deps.components): npm (package.json,
package-lock.json, npm-shrinkwrap.json), pypi (pyproject.toml, poetry.lock, uv.lock,
Pipfile, Pipfile.lock), cargo (Cargo.toml, Cargo.lock) and go (go.mod, go.sum)."""
