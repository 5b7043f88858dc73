"""Where each component's license is found, and which one it is.

In order: the lockfile's own metadata (npm v2+, composer.lock); the installed
distribution of a Python package (an environment given, or `.venv/` / `venv/` beside
the lockfile or at the workspace root: PEP 639 `License-Expression`, then the
`License ::` classifiers, then a short `License` field); an npm package's
`node_modules/<name>/package.json` (`license`, or the legacy `licenses` list); a
crate's `Cargo.toml` in Cargo's registry sources (`$CARGO_HOME/registry/src`). The first
source that names SPDX licenses only wins; when none does, the first that said
anything is kept (its unknown terms shown), and with nothing at all the license is
unknown: never allowed by silence.

Reads files only: no package manager runs, nothing is fetched.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.deps.components import Component, Ecosystem

if TYPE_CHECKING:
    from importlib.metadata import PackageMetadata

from conveyor.deps.licenses import Normalised, any_of, from_classifiers, normalise


@dataclass(frozen=True)
class FoundLicense:
    """A component's license: the SPDX `expression` (None: none found), the text it
    was read from (`raw`), where (`source`: 'package-lock.json', 'METADATA
    License-Expression (.venv)', 'node_modules/x/package.json', ...) and the terms no
    SPDX identifier names (`unknown`)."""

    name: str
    version: str | None
    ecosystem: Ecosystem
    purl: str
    locations: tuple[str, ...]
    """Every 'lockfile:line' that pins this component."""
    expression: str | None
    raw: str | None
    source: str
    unknown: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "ecosystem": str(self.ecosystem),
            "purl": self.purl,
            "locations": list(self.locations),
            "license": self.expression,
            "raw": self.raw,
            "source": self.source,
            "unknown": list(self.unknown),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> FoundLicense:
        """One of `as_dict` read back (a run's `licenses.json`)."""

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        locations = data.get("locations")
        unknown = data.get("unknown")
        return cls(
            name=text("name") or "",
            version=text("version"),
            ecosystem=Ecosystem(text("ecosystem") or "npm"),
            purl=text("purl") or "",
            locations=tuple(str(x) for x in locations) if isinstance(locations, list) else (),
            expression=text("license"),
            raw=text("raw"),
            source=text("source") or "",
            unknown=tuple(str(x) for x in unknown) if isinstance(unknown, list) else (),
        )


@dataclass(frozen=True)
class _Said:
    normalised: Normalised
    raw: str
    source: str


class LicenseFinder:
    """Finds the licenses of a workspace's components (see the module's docstring).
    `python`: an environment to read installed distributions from (a virtualenv's
    directory, or a site-packages directory); `cargo_home`: Cargo's home (default
    $CARGO_HOME, else ~/.cargo)."""

    def __init__(
        self,
        root: str,
        *,
        python: str | None = None,
        cargo_home: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.root = root
        self.python = python
        self.cargo_home = cargo_home or env.get("CARGO_HOME") or os.path.expanduser("~/.cargo")
        self._sites: dict[str, list[str]] = {}
        self._dists: dict[str, dict[str, tuple[str, str]]] = {}
        self._node: dict[str, dict[tuple[str, str], str]] = {}

    def find(self, components: Iterable[Component]) -> list[FoundLicense]:
        """One FoundLicense per third-party package (the workspace's own are left out),
        in the order first seen; a package pinned by several lockfiles is one, with
        every location."""
        by_purl: dict[str, list[Component]] = {}
        for c in components:
            if c.local:
                continue
            by_purl.setdefault(c.purl, []).append(c)
        return [self._one(purl, found) for purl, found in by_purl.items()]

    def _one(self, purl: str, same: list[Component]) -> FoundLicense:
        first = same[0]
        said = list(self._sources(same))
        chosen = next((s for s in said if s.normalised.known), said[0] if said else None)
        return FoundLicense(
            name=first.name,
            version=first.version,
            ecosystem=first.ecosystem,
            purl=purl,
            locations=tuple(dict.fromkeys(c.location for c in same)),
            expression=chosen.normalised.expression if chosen else None,
            raw=chosen.raw if chosen else None,
            source=chosen.source if chosen else self._nowhere(first),
            unknown=chosen.normalised.unknown if chosen else (),
        )

    def _sources(self, same: list[Component]) -> Iterator[_Said]:
        for c in same:
            if c.license:
                yield _Said(normalise(c.license), c.license, c.lockfile)
        c = same[0]
        if c.ecosystem is Ecosystem.PYPI:
            for comp in same:
                yield from self._installed(comp)
        elif c.ecosystem is Ecosystem.NPM:
            for comp in same:
                yield from self._node_modules(comp)
        elif c.ecosystem is Ecosystem.CARGO:
            yield from self._cargo(c)

    def _nowhere(self, c: Component) -> str:
        """Where a license was looked for in vain, for the report."""
        if c.ecosystem is Ecosystem.PYPI:
            sites = self._site_dirs(c.lockfile)
            if sites:
                shown = ", ".join(
                    os.path.relpath(s, self.root) if s.startswith(self.root + os.sep) else s
                    for s in sites
                )
                return f"not found: not installed in {shown} (nor said by the lockfile)"
            return "not found: in no installed environment (.venv/, venv/, --python)"
        if c.ecosystem is Ecosystem.NPM:
            return "not found: not in the lockfile nor in node_modules/ (run npm ci)"
        if c.ecosystem is Ecosystem.CARGO:
            return "not found: not in Cargo's registry sources (run cargo fetch)"
        return f"not found: the lockfile says none ({c.ecosystem} has no other source here)"

    # -- Python: installed distributions --------------------------------------------------
    def _site_dirs(self, lockfile: str) -> list[str]:
        """The site-packages directories to read: the one given, else the workspace's
        virtualenvs (beside the lockfile, then at the root)."""
        here = os.path.dirname(os.path.join(self.root, lockfile))
        known = self._sites.get(here)
        if known is not None:
            return known
        found: list[str] = []
        if self.python is not None:
            found = site_packages(self.python)
        else:
            for base in dict.fromkeys((here, self.root)):
                for name in (".venv", "venv"):
                    found += site_packages(os.path.join(base, name))
        self._sites[here] = list(dict.fromkeys(found))
        return self._sites[here]

    def _installed(self, c: Component) -> Iterator[_Said]:
        from conveyor.deps.ecosystems.pypi import normalise as normalise_name

        key = normalise_name(c.name)
        for site in self._site_dirs(c.lockfile):
            dists = self._dists.get(site)
            if dists is None:
                dists = self._dists[site] = _distributions(site)
            hit = dists.get(key)
            if hit is None:
                continue
            version, path = hit
            where = os.path.relpath(path, self.root) if _inside(path, self.root) else path
            if c.version is not None and version != c.version:
                where += f", installed {version} (the lockfile pins {c.version})"
            yield from _from_metadata(path, where)

    # -- npm: node_modules ------------------------------------------------------------------
    def _node_modules(self, c: Component) -> Iterator[_Said]:
        here = os.path.dirname(os.path.join(self.root, c.lockfile))
        index = self._node.get(here)
        if index is None:
            index = self._node[here] = _node_packages(os.path.join(here, "node_modules"))
        path = index.get((c.name, c.version or ""))
        if path is None and c.version is None:
            path = next((p for (n, _v), p in index.items() if n == c.name), None)
        if path is None:
            return
        try:
            with open(path, encoding="utf-8") as fh:
                manifest = json.load(fh)
        except (OSError, ValueError):
            return
        choices = _npm_licenses(manifest)
        if choices:
            found = any_of([normalise(x) for x in choices])
            yield _Said(found, " OR ".join(choices), os.path.relpath(path, self.root))

    # -- Cargo: the registry's unpacked sources -------------------------------------------
    def _cargo(self, c: Component) -> Iterator[_Said]:
        import tomllib

        if c.version is None:
            return
        pattern = os.path.join(
            glob.escape(self.cargo_home), "registry", "src", "*", f"{c.name}-{c.version}"
        )
        for crate in sorted(glob.glob(pattern)):
            path = os.path.join(crate, "Cargo.toml")
            try:
                with open(path, "rb") as fh:
                    package = tomllib.load(fh).get("package", {})
            except (OSError, ValueError):
                continue
            raw = package.get("license") if isinstance(package, dict) else None
            if isinstance(raw, str):
                yield _Said(normalise(raw), raw, path)
                return
            file = package.get("license-file") if isinstance(package, dict) else None
            if isinstance(file, str):
                ref = "LicenseRef-" + re.sub(r"[^A-Za-z0-9.]+", "-", file).strip("-")
                yield _Said(Normalised(ref, (ref,)), f"license-file = {file}", path)
                return


def _inside(path: str, root: str) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(root) + os.sep)


def site_packages(path: str) -> list[str]:
    """A virtualenv's site-packages directories, or `path` itself when it is one (any
    directory holding *.dist-info)."""
    if not os.path.isdir(path):
        return []
    venv = sorted(glob.glob(os.path.join(glob.escape(path), "lib", "python*", "site-packages")))
    venv += glob.glob(os.path.join(glob.escape(path), "Lib", "site-packages"))  # Windows
    if venv:
        return venv
    if glob.glob(os.path.join(glob.escape(path), "*.dist-info")):
        return [path]
    return []


def _distributions(site: str) -> dict[str, tuple[str, str]]:
    """The distributions installed in a site-packages directory: normalised name ->
    (version, the dist-info directory)."""
    from importlib.metadata import PathDistribution
    from pathlib import Path

    from conveyor.deps.ecosystems.pypi import normalise as normalise_name

    out: dict[str, tuple[str, str]] = {}
    for info in sorted(glob.glob(os.path.join(glob.escape(site), "*.dist-info"))):
        dist = PathDistribution(Path(info))
        name = dist.metadata["Name"] if dist.metadata is not None else None
        version = dist.metadata["Version"] if dist.metadata is not None else None
        if name and version:
            out.setdefault(normalise_name(name), (version, info))
    return out


def _from_metadata(info: str, where: str) -> Iterator[_Said]:
    """What a distribution's METADATA says of its license, best first: PEP 639's
    License-Expression, the license classifiers, the License field when it is a name
    rather than the license's whole text."""
    from importlib.metadata import PathDistribution
    from pathlib import Path

    meta = PathDistribution(Path(info)).metadata
    if meta is None:
        return
    expression = _field(meta, "License-Expression")
    if expression:
        yield _Said(normalise(expression), expression, f"{where} (License-Expression)")
    classified = from_classifiers(meta.get_all("Classifier") or [])
    if classified is not None:
        found, raw = classified
        yield _Said(found, raw, f"{where} (classifiers)")
    field = _field(meta, "License")
    if field and _names_a_license(field):
        yield _Said(normalise(field), field.strip(), f"{where} (License)")


def _field(meta: PackageMetadata, name: str) -> str | None:
    """A METADATA field, None when absent (without the warning that indexing a missing
    field gives on newer Pythons)."""
    found = meta.get_all(name)
    return str(found[0]) if found else None


def _names_a_license(text: str) -> bool:
    """A License field that names a license ('MIT', 'Apache 2.0', 'BSD-3-Clause OR
    MIT'), not one that holds the license's whole text, nor setuptools' 'UNKNOWN'."""
    text = text.strip()
    if not text or text.upper() == "UNKNOWN" or "\n" in text or len(text) > 100:
        return False
    return not re.search(r"copyright|permission is hereby|redistribution", text, re.I)


def _node_packages(node_modules: str) -> dict[tuple[str, str], str]:
    """Every package under a node_modules tree, nested ones too: (name, version) -> its
    package.json (the shallowest wins)."""
    out: dict[tuple[str, str], str] = {}
    pending = [node_modules]
    while pending:
        base = pending.pop(0)
        try:
            entries = sorted(os.listdir(base))
        except OSError:
            continue
        dirs = []
        for entry in entries:
            if entry.startswith("."):
                continue
            path = os.path.join(base, entry)
            if entry.startswith("@"):
                try:
                    dirs += [os.path.join(path, e) for e in sorted(os.listdir(path))]
                except OSError:
                    continue
            else:
                dirs.append(path)
        for pkg in dirs:
            manifest = os.path.join(pkg, "package.json")
            try:
                with open(manifest, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                continue
            name, version = data.get("name"), data.get("version")
            if isinstance(name, str) and isinstance(version, str):
                out.setdefault((name, version), manifest)
            nested = os.path.join(pkg, "node_modules")
            if os.path.isdir(nested):
                pending.append(nested)
    return out


def _npm_licenses(manifest: object) -> list[str]:
    """A package.json's license: `license` (an SPDX expression, or the old `{type}`
    object), or the legacy `licenses` list (a choice among them)."""
    if not isinstance(manifest, dict):
        return []
    value = manifest.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str) and value.strip():
        if value.strip().upper() == "UNLICENSED":  # npm's word for "not licensed to you"
            return ["LicenseRef-UNLICENSED"]
        return [value]
    many = manifest.get("licenses")
    if isinstance(many, list):
        names = [
            (m.get("type") if isinstance(m, dict) else m)
            for m in many
            if isinstance(m, (dict, str))
        ]
        return [n for n in names if isinstance(n, str) and n.strip()]
    return []


def spdx_licenses(
    root: str, components: Iterable[Component], *, python: str | None = None
) -> dict[str, str]:
    """purl -> SPDX expression of each component whose license is known in SPDX terms
    (what an SBOM states); a license with terms SPDX does not name is left out, not
    guessed."""
    found = LicenseFinder(root, python=python).find(components)
    return {f.purl: f.expression for f in found if f.expression and not f.unknown}
