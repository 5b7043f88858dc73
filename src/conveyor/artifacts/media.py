"""A file's media type, from its name: the packaging formats builds produce (wheels,
sdists, jars, npm tarballs, crates, container images...) first, then Python's
`mimetypes` table (without the machine's own /etc/mime.types, so every machine says
the same), else `application/octet-stream`."""

from __future__ import annotations

import functools
import mimetypes

_SUFFIXES: tuple[tuple[str, str], ...] = (
    # Longest first: `.tar.gz` before `.gz`.
    (".tar.gz", "application/gzip"),
    (".tar.bz2", "application/x-bzip2"),
    (".tar.xz", "application/x-xz"),
    (".tar.zst", "application/zstd"),
    (".whl", "application/vnd.python.wheel+zip"),
    (".egg", "application/zip"),
    (".jar", "application/java-archive"),
    (".war", "application/java-archive"),
    (".ear", "application/java-archive"),
    (".aar", "application/vnd.android.package-archive"),
    (".apk", "application/vnd.android.package-archive"),
    (".tgz", "application/gzip"),
    (".crate", "application/gzip"),
    (".gem", "application/x-tar"),
    (".nupkg", "application/zip"),
    (".deb", "application/vnd.debian.binary-package"),
    (".rpm", "application/x-rpm"),
    (".zst", "application/zstd"),
    (".xz", "application/x-xz"),
    (".bz2", "application/x-bzip2"),
    (".gz", "application/gzip"),
    (".zip", "application/zip"),
    (".tar", "application/x-tar"),
    (".oci", "application/vnd.oci.image.layout.v1+tar"),
    (".sig", "application/octet-stream"),
    (".intoto.jsonl", "application/vnd.in-toto+json"),
    (".cdx.json", "application/vnd.cyclonedx+json"),
    (".spdx.json", "application/spdx+json"),
    (".sarif", "application/sarif+json"),
    (".json", "application/json"),
    (".jsonl", "application/jsonl"),
    (".yaml", "application/yaml"),
    (".yml", "application/yaml"),
    (".toml", "application/toml"),
    (".md", "text/markdown"),
    (".wasm", "application/wasm"),
    (".exe", "application/vnd.microsoft.portable-executable"),
    (".dll", "application/vnd.microsoft.portable-executable"),
    (".so", "application/x-sharedlib"),
    (".dylib", "application/x-mach-binary"),
)


@functools.cache
def _table() -> mimetypes.MimeTypes:
    return mimetypes.MimeTypes(filenames=())  # Python's own table only


def media_type(path: str) -> str:
    """The media type of a file named `path` ('dist/app-1.0-py3-none-any.whl' ->
    'application/vnd.python.wheel+zip'); `application/octet-stream` when unknown."""
    name = path.rsplit("/", 1)[-1].lower()
    # Only the name's suffixes decide (from its first dot after the leading ones, which
    # start no suffix), so the answer is looked up once per suffix, not once per file of
    # a large artifact. A name with a colon is asked as it is: mimetypes reads 'data:'
    # names as URLs.
    dot = name.find(".", max(1, len(name) - len(name.lstrip("."))))
    if dot < 0 or ":" in name:
        return _by_name(name)
    return _by_suffix(name[dot:])


@functools.lru_cache(maxsize=1024)
def _by_suffix(suffix: str) -> str:
    return _by_name("x" + suffix)


def _by_name(name: str) -> str:
    for suffix, kind in _SUFFIXES:
        if name.endswith(suffix):
            return kind
    guessed, _encoding = _table().guess_type(name, strict=False)
    return guessed or "application/octet-stream"
