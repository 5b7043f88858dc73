"""composer.lock read into components: a composer.lock and its composer.json written by
hand in Composer's documented format, for a Drupal-like site (packages and dev packages,
archives with and without a SHA-1, path packages of the site's own, a package under
three licenses, replace and provide; tests/deps/data/SOURCES.md)."""

from __future__ import annotations

import json

import pytest

from conveyor.deps.components import Ecosystem, Scope
from conveyor.deps.ecosystems.packagist import license_expression, read_composer_lock
from conveyor.deps.syntax import ParseError
from tests.deps.lockdata import by_name, line_of, source, text

LOCK = text("drupal-like.composer.lock")
MANIFEST = text("drupal-like.composer.json")


def test_packages_then_dev_packages_with_their_lines() -> None:
    components = read_composer_lock(source("composer.lock", LOCK, {"composer.json": MANIFEST}))
    assert [(c.name, c.version, c.scope, c.direct, c.line) for c in components] == [
        ("acme/site-logging", "dev-main", Scope.PROD, True, 9),
        ("composer/installers", "v2.3.0", Scope.PROD, True, 39),
        ("drupal/pathauto", "1.13.0", Scope.PROD, True, 73),
        ("drupal/token", "1.15.0", Scope.PROD, False, 113),
        ("monolog/monolog", "3.8.1", Scope.PROD, False, 151),
        ("psr/log", "3.0.2", Scope.PROD, False, 185),
        ("acme/testing", "dev-main", Scope.DEV, True, 217),
        ("kint-php/kint", "5.1.1", Scope.DEV, True, 244),
        ("nette/tester", "v2.5.4", Scope.DEV, True, 277),
        ("phpcompatibility/php-compatibility", "9.3.5", Scope.DEV, True, 312),
        ("squizlabs/php_codesniffer", "3.11.3", Scope.DEV, False, 338),
    ]
    body = LOCK.splitlines()
    for component in components:
        assert line_of(LOCK, component).strip() == "{"  # where the entry starts
        assert body[component.line or 0].strip() == f'"name": "{component.name}",'
        assert component.ecosystem is Ecosystem.PACKAGIST
    found = by_name(components)
    assert found["drupal/pathauto"].purl == "pkg:composer/drupal/pathauto@1.13.0"
    assert found["drupal/pathauto"].declared == "composer.json"
    assert found["drupal/token"].declared is None
    # A path repository's packages are the site's own code.
    assert [c.name for c in components if c.local] == ["acme/site-logging", "acme/testing"]


def test_dist_shasum_is_a_sha1_when_the_repository_gives_one() -> None:
    found = by_name(read_composer_lock(source("composer.lock", LOCK)))
    # packages.drupal.org gives its archives a SHA-1; the others here have none ("").
    assert found["drupal/pathauto"].hashes == ("sha1:ecaeec4b0aebea9047714fc2098ee4a097242422",)
    assert found["drupal/token"].hashes == ("sha1:e2143b52d7677da924ffbdca9d66e44c3b8df7c9",)
    assert found["monolog/monolog"].hashes == ()
    assert found["acme/site-logging"].hashes == ()  # a path: no archive


def test_licenses_as_one_spdx_expression() -> None:
    found = by_name(read_composer_lock(source("composer.lock", LOCK)))
    assert found["nette/tester"].license == "BSD-3-Clause OR GPL-2.0-only OR GPL-3.0-only"
    assert found["drupal/pathauto"].license == "GPL-2.0-or-later"
    assert found["phpcompatibility/php-compatibility"].license == "LGPL-3.0-or-later"
    assert found["acme/testing"].license == "proprietary"
    assert license_expression(["MIT", "Apache-2.0 AND BSD-3-Clause"]) == (
        "MIT OR (Apache-2.0 AND BSD-3-Clause)"
    )
    assert license_expression("proprietary") == "proprietary"
    assert license_expression([]) is None


def test_edges_follow_require_replace_and_provide_and_leave_php_itself_out() -> None:
    found = by_name(read_composer_lock(source("composer.lock", LOCK)))
    # psr/log-implementation: what monolog/monolog provides.
    assert found["acme/site-logging"].dependencies == (
        "pkg:composer/psr/log@3.0.2",
        "pkg:composer/monolog/monolog@3.8.1",
    )
    # acme/logging: what acme/site-logging replaces; a dev package needing a prod one.
    assert found["acme/testing"].dependencies == (
        "pkg:composer/acme/site-logging@dev-main",
        "pkg:composer/kint-php/kint@5.1.1",
    )
    # drupal/core and drupal/ctools are not in this file.
    assert found["drupal/pathauto"].dependencies == ("pkg:composer/drupal/token@1.15.0",)
    assert found["phpcompatibility/php-compatibility"].dependencies == (
        "pkg:composer/squizlabs/php_codesniffer@3.11.3",
    )
    # 'php', 'ext-tokenizer' and 'composer-plugin-api' are not packages.
    assert found["squizlabs/php_codesniffer"].dependencies == ()
    assert found["composer/installers"].dependencies == ()
    assert found["drupal/token"].dependencies == ()


def test_without_composer_json_direct_is_not_known() -> None:
    components = read_composer_lock(source("composer.lock", LOCK))
    assert {c.direct for c in components} == {None}
    assert {c.declared for c in components} == {None}


def test_a_package_required_through_what_another_replaces() -> None:
    # Composer's own form: a package that replaces another satisfies a require of it.
    data = {
        "packages": [
            {"name": "acme/app-plugin", "version": "1.0.0", "require": {"psr/log": "^1"}},
            {"name": "monolog/monolog", "version": "1.27.1", "provide": {"psr/log": "1.0"}},
            {
                "name": "acme/path-lib",
                "version": "dev-main",
                "dist": {"type": "path", "url": "packages/lib", "reference": "abc"},
            },
        ],
        "packages-dev": [],
    }
    plugin, _, lib = read_composer_lock(source("composer.lock", json.dumps(data, indent=4)))
    assert plugin.dependencies == ("pkg:composer/monolog/monolog@1.27.1",)
    assert lib.local is True


@pytest.mark.parametrize(
    ("body", "message", "line", "col"),
    [
        ('{\n    "packages": [\n        {"name": "a/b",}\n    ]\n}', "Expecting", 3, 24),
        ('{\n    "packages": {}\n}', "'packages' must be an array", 2, 1),
        (
            '{\n    "packages": [],\n    "packages-dev": [\n        {"name": "a/b"}\n    ]\n}',
            "packages-dev[0] has no version",
            4,
            1,
        ),
    ],
)
def test_a_malformed_lockfile_is_one_located_error(
    body: str, message: str, line: int, col: int
) -> None:
    with pytest.raises(ParseError) as caught:
        read_composer_lock(source("composer.lock", body))
    assert message in caught.value.message
    assert (caught.value.line, caught.value.col) == (line, col)
