"""Version requirements as the nucleus evaluates them: semver4j 3.1.0 ``Requirement.buildNPM`` /
``isSatisfiedBy`` with a STRICT candidate (aws-greengrass-nucleus v2.18.2 ``pom.xml``,
``componentmanager/DependencyResolver.java``).

The cases are semver4j v3.1.0's own ``src/test/java/com/vdurmont/semver4j/NpmSemverTest.java``
(commit 88912638db3f6112a2b345f1638ced33a0a606e1), those whose version is a STRICT semver (the
nucleus parses candidates with ``new Semver(version)``). That test builds its candidate as an NPM
semver; :data:`STRICT_DIFFERS` are the cases where a STRICT candidate answers the other way
(``Semver.isEqualTo`` compares the text unless the candidate is NPM, so ``>=2.0`` does not admit
``2.0.0`` on a device).
"""

from __future__ import annotations

import pytest

from edge_constructs.greengrass.public_components import admits
from edge_constructs.greengrass.version_requirements import InvalidVersion, satisfies

NPM_SEMVER_TEST = [
    ("1.2.3", "1.2.3", True),
    ("1.2.4", "1.2.3", False),
    ("1.2.3", "1.2", True),
    ("1.2.4", "1.3", False),
    ("1.2.3", "1", True),
    ("1.2.4", "2", False),
    ("1.2.4-beta+exp.sha.5114f85", "1.2.3 - 2.3.4", False),
    ("1.2.4", "1.2.3 - 2.3.4", True),
    ("1.2.3", "1.2.3 - 2.3.4", True),
    ("2.3.4", "1.2.3 - 2.3.4", True),
    ("2.3.0-alpha", "1.2.3 - 2.3.0-beta", True),
    ("2.3.4", "1.2.3 - 2.3", True),
    ("2.3.4", "1.2.3 - 2", True),
    ("1.0.0", "1.2.3 - 2.3.4", False),
    ("3.0.0", "1.2.3 - 2.3.4", False),
    ("2.4.3", "1.2.3 - 2.3", False),
    ("2.3.0-rc1", "1.2.3 - 2.3.0-beta", False),
    ("3.0.0", "1.2.3 - 2", False),
    ("3.1.5", "", True),
    ("3.1.5", "*", True),
    ("0.0.0", "*", True),
    ("1.0.0-beta", "*", True),
    ("3.1.5-beta", "3.1.x", False),
    ("3.1.5-beta+exp.sha.5114f85", "3.1.x", False),
    ("3.1.5+exp.sha.5114f85", "3.1.x", True),
    ("3.1.5", "3.1.x", True),
    ("3.1.5", "3.1.X", True),
    ("3.1.5", "3.x", True),
    ("3.1.5", "3.*", True),
    ("3.1.5", "3.1", True),
    ("3.1.5", "3", True),
    ("3.2.5", "3.1.x", False),
    ("3.0.5", "3.1.x", False),
    ("4.0.0", "3.x", False),
    ("2.0.0", "3.x", False),
    ("3.2.5", "3.1", False),
    ("3.0.5", "3.1", False),
    ("4.0.0", "3", False),
    ("2.0.0", "3", False),
    ("1.2.4-beta", "~1.2.3", False),
    ("1.2.4-beta+exp.sha.5114f85", "~1.2.3", False),
    ("1.2.3", "~1.2.3", True),
    ("1.2.7", "~1.2.3", True),
    ("1.2.2", "~1.2", True),
    ("1.2.0", "~1.2", True),
    ("1.3.0", "~1", True),
    ("1.0.0", "~1", True),
    ("1.2.3", "~1.2.3-beta.2", True),
    ("1.2.3-beta.4", "~1.2.3-beta.2", True),
    ("1.2.4", "~1.2.3-beta.2", True),
    ("1.3.0", "~1.2.3", False),
    ("1.2.2", "~1.2.3", False),
    ("1.1.0", "~1.2", False),
    ("1.3.0", "~1.2", False),
    ("2.0.0", "~1", False),
    ("0.0.0", "~1", False),
    ("1.2.3-beta.1", "~1.2.3-beta.2", False),
    ("1.2.3", "^1.2.3", True),
    ("1.2.4", "^1.2.3", True),
    ("1.3.0", "^1.2.3", True),
    ("0.2.3", "^0.2.3", True),
    ("0.2.4", "^0.2.3", True),
    ("0.0.3", "^0.0.3", True),
    ("0.0.3+exp.sha.5114f85", "^0.0.3", True),
    ("0.0.3", "^0.0.3-beta", True),
    ("0.0.3-pr.2", "^0.0.3-beta", True),
    ("1.2.2", "^1.2.3", False),
    ("2.0.0", "^1.2.3", False),
    ("0.2.2", "^0.2.3", False),
    ("0.3.0", "^0.2.3", False),
    ("0.0.4", "^0.0.3", False),
    ("0.0.3-alpha", "^0.0.3-beta", False),
    ("0.0.4", "^0.0.3-beta", False),
    ("2.0.0", "=2.0.0", True),
    ("2.0.1", "=2.0.0", False),
    ("1.9.9", "=2.0.0", False),
    ("1.9.9", "=2.0", False),
    ("1.9.9", "=2", False),
    ("2.0.1", ">2.0.0", True),
    ("3.0.0", ">2.0.0", True),
    ("3.0.0", ">2.0", True),
    ("3.0.0", ">2", True),
    ("2.0.0", ">2.0.0", False),
    ("1.9.9", ">2.0.0", False),
    ("2.0.0", ">2.0", False),
    ("1.9.9", ">2.0", False),
    ("2.0.0", ">2", False),
    ("1.9.9", ">2", False),
    ("1.9.9", "<2.0.0", True),
    ("1.9.9", "<2.0", True),
    ("1.9.9", "<2", True),
    ("2.0.0", "<2.0.0", False),
    ("2.0.1", "<2.0.0", False),
    ("3.0.0", "<2.0.0", False),
    ("2.0.1", "<2.0", False),
    ("3.0.0", "<2.0", False),
    ("2.0.1", "<2", False),
    ("3.0.0", "<2", False),
    ("2.0.0", ">=2.0.0", True),
    ("2.0.1", ">=2.0.0", True),
    ("3.0.0", ">=2.0.0", True),
    ("3.0.0", ">=2.0", True),
    ("2.0.1", ">=2", True),
    ("3.0.0", ">=2", True),
    ("1.9.9", ">=2.0.0", False),
    ("1.9.9", ">=2.0", False),
    ("1.9.9", ">=2", False),
    ("1.9.9", "<=2.0.0", True),
    ("2.0.0", "<=2.0.0", True),
    ("1.9.9", "<=2.0", True),
    ("2.0.0", "<=2.0", True),
    ("1.9.9", "<=2", True),
    ("2.0.0", "<=2", True),
    ("2.0.1", "<=2.0.0", False),
    ("3.0.0", "<=2.0.0", False),
    ("3.0.0", "<=2.0", False),
    ("3.0.0", "<=2", False),
    ("2.0.1", ">2.0.0 <3.0.0", True),
    ("1.2.0", "1.2 <1.2.8", True),
    ("1.2.7", "1.2 <1.2.8", True),
    ("1.1.9", "1.2 <1.2.8", False),
    ("1.2.9", "1.2 <1.2.8", False),
    ("1.2.3", "1.2.3 || 1.2.4", True),
    ("1.2.4", "1.2.3 || 1.2.4", True),
    ("1.2.5", "1.2.3 || 1.2.4", False),
    ("1.2.2", ">1.2.1 <1.2.8 || >2.0.0", True),
    ("1.2.7", ">1.2.1 <1.2.8 || >2.0.0", True),
    ("2.0.1", ">1.2.1 <1.2.8 || >2.0.0", True),
    ("1.2.1", ">1.2.1 <1.2.8 || >2.0.0", False),
    ("2.0.0", ">1.2.1 <1.2.8 || >2.0.0", False),
    ("1.2.2", ">1.2.1 <1.2.8 || >2.0.0 <3.0.0", True),
    ("1.2.7", ">1.2.1 <1.2.8 || >2.0.0 <3.0.0", True),
    ("2.0.1", ">1.2.1 <1.2.8 || >2.0.0 <3.0.0", True),
    ("2.5.0", ">1.2.1 <1.2.8 || >2.0.0 <3.0.0", True),
    ("1.2.1", ">1.2.1 <1.2.8 || >2.0.0 <3.0.0", False),
    ("1.2.8", ">1.2.1 <1.2.8 || >2.0.0 <3.0.0", False),
    ("2.0.0", ">1.2.1 <1.2.8 || >2.0.0 <3.0.0", False),
    ("3.0.0", ">1.2.1 <1.2.8 || >2.0.0 <3.0.0", False),
    ("1.2.2", "1.2.2 - 1.2.7 || 2.0.1 - 2.9.9", True),
    ("1.2.7", "1.2.2 - 1.2.7 || 2.0.1 - 2.9.9", True),
    ("2.0.1", "1.2.2 - 1.2.7 || 2.0.1 - 2.9.9", True),
    ("2.5.0", "1.2.2 - 1.2.7 || 2.0.1 - 2.9.9", True),
    ("1.2.1", "1.2.2 - 1.2.7 || 2.0.1 - 2.9.9", False),
    ("1.2.8", "1.2.2 - 1.2.7 || 2.0.1 - 2.9.9", False),
    ("2.0.0", "1.2.2 - 1.2.7 || 2.0.1 - 2.9.9", False),
    ("3.0.0", "1.2.2 - 1.2.7 || 2.0.1 - 2.9.9", False),
    ("1.2.0", "1.2 <1.2.8 || >2.0.0", True),
    ("1.2.7", "1.2 <1.2.8 || >2.0.0", True),
    ("1.2.7", "1.2 <1.2.8 || >2.0.0", True),
    ("2.0.1", "1.2 <1.2.8 || >2.0.0", True),
    ("1.1.0", "1.2 <1.2.8 || >2.0.0", False),
    ("1.2.9", "1.2 <1.2.8 || >2.0.0", False),
    ("2.0.0", "1.2 <1.2.8 || >2.0.0", False),
]

# (version, range, what NpmSemverTest expects with an NPM candidate): a STRICT one gets the opposite
STRICT_DIFFERS = [
    ("2.0.0", "=2.0", True),
    ("2.0.1", "=2.0", True),
    ("2.0.0", "=2", True),
    ("2.0.1", "=2", True),
    ("2.0.1", ">2", False),
    ("2.0.0", "<2.0", False),
    ("2.0.0", "<2", False),
    ("2.0.0", ">=2.0", True),
    ("2.0.0", ">=2", True),
    ("2.0.1", "<=2.0", True),
    ("2.0.1", "<=2", True),
    ("2.0.1", ">2.0 <3.0", False),
]


@pytest.mark.parametrize(("version", "requirement", "expected"), NPM_SEMVER_TEST)
def test_semver4j_npm_cases(version: str, requirement: str, expected: bool) -> None:
    assert satisfies(version, requirement) is expected
    assert admits(requirement, version) is expected


@pytest.mark.parametrize(("version", "requirement", "npm_candidate"), STRICT_DIFFERS)
def test_a_strict_candidate_compares_partial_versions_by_text(
    version: str, requirement: str, npm_candidate: bool
) -> None:
    assert satisfies(version, requirement) is (not npm_candidate)


@pytest.mark.parametrize(
    ("version", "requirement", "expected"),
    [
        # caretRequirement: the first non-zero part is the one that may not change
        ("0.0.3", "^0.0.3", True),
        ("0.0.4", "^0.0.3", False),
        ("0.3.9", "^0.3.1", True),
        ("0.4.0", "^0.3.1", False),
        ("1.9.9", "^1.2.3", True),
        ("2.0.0", "^1.2.3", False),
        # a prerelease passes several comparators only with a prerelease on its own x.y.z
        ("2.13.0-beta", ">=2.0.0 <2.13.0", False),
        ("2.12.0-rc.1", ">=2.0.0 <2.13.0", False),
        ("2.12.0-rc.2", ">=2.12.0-rc.1 <2.13.0", True),
        ("2.12.1-rc.1", ">=2.12.0-rc.1 <2.13.0", False),
        # ... but a single comparator has no such filter (Requirement leaf)
        ("2.12.0-rc.1", ">=2.0.0", True),
        ("1.0.0-beta", "*", True),
    ],
)
def test_caret_and_prerelease(version: str, requirement: str, expected: bool) -> None:
    assert satisfies(version, requirement) is expected
    assert admits(requirement, version) is expected


@pytest.mark.parametrize(
    ("version", "requirement", "problem"),
    [
        ("2.18", ">=2.0.0", "not a semantic version: '2.18'"),
        ("2.18.2", ">=2.0.0 <", "invalid version requirement '>=2.0.0 <'"),
        ("2.18.2", ">=two", "invalid version requirement '>=two'"),
    ],
)
def test_what_semver4j_cannot_parse_is_named(version: str, requirement: str, problem: str) -> None:
    with pytest.raises(InvalidVersion, match=problem):
        satisfies(version, requirement)
