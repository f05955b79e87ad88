"""Greengrass ``VersionRequirement`` ranges, evaluated as the nucleus evaluates them.

The nucleus (aws-greengrass-nucleus v2.18.2 ``pom.xml``: ``com.vdurmont:semver4j`` 3.1.0) builds a
requirement with ``Requirement.buildNPM(range)`` and tests a candidate with
``requirement.isSatisfiedBy(new Semver(version))`` (``componentmanager/DependencyResolver.java``,
``ComponentManager.java``, ``ComponentStore.java``): the candidate is a STRICT semver, the range is
npm-style. This module follows semver4j v3.1.0 (github.com/vdurmont/semver4j, tag v3.1.0, commit
88912638db3f6112a2b345f1638ced33a0a606e1) ``Requirement``, ``Range``, ``Semver`` and
``Tokenizer``, quirks included, so a range behaves here as on a device:

* caret: ``^1.2.3`` is ``>=1.2.3 <2.0.0``, ``^0.3.1`` is ``>=0.3.1 <0.4.0``, ``^0.0.3`` is
  ``>=0.0.3 <0.0.4`` (``caretRequirement``); tilde ``~1.2.3`` is ``>=1.2.3 <1.3.0``;
  ``1.2``/``1.x`` are tilde ranges; ``A - B`` is a hyphen range.
* prerelease: a candidate with a prerelease (``1.2.4-beta``) satisfies a range made of several
  comparators only if one of them has a prerelease on the same major.minor.patch
  (``Requirement.isSatisfiedBy``, AND branch); a single comparator (``>=1.0.0``, ``*``) has no such
  filter.
* ``=X`` compares the version text (``Semver.isEquivalentTo`` -> ``equals``): ``=1.0`` admits
  nothing, since no STRICT version's text is ``1.0``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

STRICT, LOOSE, NPM = "STRICT", "LOOSE", "NPM"


class InvalidVersion(ValueError):
    """semver4j's SemverException: a version or requirement it cannot parse."""


def _jsplit(text: str, separator: str) -> list[str]:
    """Java ``String.split``: trailing empty strings are removed (``""`` stays ``[""]``)."""
    if text == "":
        return [""]
    parts = text.split(separator)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _java_int(text: str) -> int | None:
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else None


@dataclass(frozen=True)
class Semver:
    """``com.vdurmont.semver4j.Semver`` (fields as the constructor sets them)."""

    value: str
    kind: str
    major: int
    minor: int | None
    patch: int | None
    suffix: tuple[str, ...]
    build: str | None


def parse(text: str, kind: str = STRICT) -> Semver:
    """``new Semver(text, kind)``."""
    value = text.strip()
    if kind == NPM and value[:1] in ("v", "V"):
        value = value[1:].strip()
    plus, hyphen = value.find("+"), value.find("-")
    has_pre = hyphen != -1 and (plus == -1 or hyphen < plus)
    tokens = value.split("-", 1) if has_pre else [value]
    build: str | None = None
    if len(tokens) == 1:
        if tokens[0].endswith("+"):
            raise InvalidVersion("The build cannot be empty.")
        tmp = _jsplit(tokens[0], "+")
        main = _jsplit(tmp[0], ".") if tmp else [""]
        if len(tmp) == 2:
            build = tmp[1]
    else:
        main = _jsplit(tokens[0], ".")

    def part(index: int, name: str) -> int | None:
        if index >= len(main):
            if kind == STRICT:
                raise InvalidVersion(f"Invalid version (no {name} version): {value}")
            return None
        number = _java_int(main[index])
        if number is None and (kind != NPM or main[index] not in ("x", "X", "*")):
            raise InvalidVersion(f"Invalid version (no {name} version): {value}")
        return number

    major = _java_int(main[0]) if main else None
    if major is None:
        raise InvalidVersion(f"Invalid version (no major version): {value}")
    minor, patch = part(1, "minor"), part(2, "patch")
    suffix: list[str] = []
    if len(tokens) > 1:
        if tokens[1].endswith("+"):
            raise InvalidVersion("The build cannot be empty.")
        tmp = _jsplit(tokens[1], "+")
        if len(tmp) == 2:
            suffix, build = _jsplit(tmp[0], "."), tmp[1]
        else:
            suffix = _jsplit(tokens[1], ".")
    return Semver(value, kind, major, minor, patch, tuple(suffix), build)


def _greater(a: Semver, b: Semver) -> bool:
    """``a.isGreaterThan(b)`` for a STRICT ``a`` (the candidate)."""
    if a.major != b.major:
        return a.major > b.major
    for mine, theirs in ((a.minor, b.minor), (a.patch, b.patch)):
        other = theirs if theirs is not None else 0
        if mine is not None and mine != other:
            return mine > other
    s1, s2 = a.suffix, b.suffix
    if not s1 and s2:
        return True
    if not s2 and s1:
        return False
    for t1, t2 in zip(s1, s2, strict=False):
        i1, i2 = _java_int(t1), _java_int(t2)
        if i1 is not None and i2 is not None:
            if i1 != i2:
                return i1 > i2
        elif t1.lower() != t2.lower():
            return t1.lower() > t2.lower()
    return len(s1) > len(s2)


def _equivalent(a: Semver, b: Semver) -> bool:
    """``a.isEquivalentTo(b)`` for a STRICT ``a``: the texts without their builds are equal."""

    def bare(v: Semver) -> str:
        return v.value if v.build is None else v.value.replace("+" + v.build, "")

    return bare(a) == bare(b)


@dataclass(frozen=True)
class Range:
    op: str  # "=", "<", "<=", ">", ">="
    version: Semver

    def satisfied_by(self, v: Semver) -> bool:
        greater, equal = _greater(v, self.version), _equivalent(v, self.version)
        return {
            "=": equal,
            "<": not greater and not equal,
            "<=": not greater,
            ">": greater,
            ">=": greater or equal,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.op}{self.version.value}"


@dataclass(frozen=True)
class Requirement:
    """A leaf (``range``) or ``left AND/OR right``."""

    range: Range | None = None
    left: Requirement | None = None
    op: str | None = None  # "AND" or "OR"
    right: Requirement | None = None

    def _all_ranges(self) -> list[Range]:
        if self.range is not None:
            return [self.range]
        if self.op != "AND" or self.left is None or self.right is None:
            raise _OrInAnd
        return self.left._all_ranges() + self.right._all_ranges()

    def satisfied_by(self, v: Semver) -> bool:
        if self.range is not None:
            return self.range.satisfied_by(v)
        assert self.left is not None and self.right is not None
        if self.op == "OR":
            return self.left.satisfied_by(v) or self.right.satisfied_by(v)
        try:
            ranges = self._all_ranges()
        except _OrInAnd:
            return self.left.satisfied_by(v) and self.right.satisfied_by(v)
        if not all(r.satisfied_by(v) for r in ranges):
            return False
        if v.suffix:
            # only a comparator with a prerelease on the same major.minor.patch lets one in
            return any(
                r.version.suffix
                and (r.version.major, r.version.minor, r.version.patch)
                == (v.major, v.minor, v.patch)
                for r in ranges
            )
        return True

    def __str__(self) -> str:
        if self.range is not None:
            return str(self.range)
        joiner = " || " if self.op == "OR" else " "
        return f"{self.left}{joiner}{self.right}"


class _OrInAnd(Exception):
    pass


def _and(low: Range, high: Range) -> Requirement:
    return Requirement(left=Requirement(low), op="AND", right=Requirement(high))


def _extrapolate(v: Semver) -> Semver:
    text = f"{v.major}.{v.minor or 0}.{v.patch or 0}"
    if v.suffix:
        text += "-" + ".".join(v.suffix)
    if v.build is not None:
        text += "+" + v.build
    return parse(text, v.kind)


def _tilde(text: str) -> Requirement:
    v = parse(text, NPM)
    upper = f"{v.major}.{v.minor + 1}.0" if v.minor is not None else f"{v.major + 1}.0.0"
    return _and(Range(">=", _extrapolate(v)), Range("<", parse(upper, LOOSE)))


def _caret(text: str) -> Requirement:
    v = parse(text, NPM)
    if v.major == 0:
        if v.minor is None:
            upper = "1.0.0"
        elif v.minor == 0:
            upper = "0.1.0" if v.patch is None else f"0.0.{v.patch + 1}"
        else:
            upper = f"0.{v.minor + 1}.0"
    else:
        upper = f"{v.major + 1}.0.0"
    return _and(Range(">=", _extrapolate(v)), Range("<", parse(upper, LOOSE)))


def _hyphen(lower_text: str, upper_text: str) -> Requirement:
    lower = _extrapolate(parse(lower_text, NPM))
    upper = parse(upper_text, NPM)
    op = "<="
    if upper.minor is None or upper.patch is None:
        op = "<"
        e = _extrapolate(upper)
        if upper.minor is None:
            upper = parse(_with(e, e.major + 1, e.minor, e.patch), NPM)
        else:
            upper = parse(_with(e, e.major, (e.minor or 0) + 1, e.patch), NPM)
    return _and(Range(">=", lower), Range(op, upper))


def _with(v: Semver, major: int, minor: int | None, patch: int | None) -> str:
    """``Semver.withInc...`` keeps the suffix and build."""
    text = f"{major}.{minor}.{patch}"
    if v.suffix:
        text += "-" + ".".join(v.suffix)
    if v.build is not None:
        text += "+" + v.build
    return text


# ------------------------------------------------------------------ Tokenizer + RPN
_SPECIAL = {
    "~": "TILDE",
    "^": "CARET",
    "=": "EQ",
    "<": "LT",
    "≤": "LTE",
    ">": "GT",
    "≥": "GTE",
    "-": "HYPHEN",
    "|": "OR",
    "(": "OPENING",
    ")": "CLOSING",
}
_UNARY = {"TILDE", "CARET", "EQ", "LT", "LTE", "GT", "GTE"}
_RANGE_OPS = {"EQ": "=", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}


@dataclass
class _Token:
    type: str
    value: str | None = None


def _tokenize(requirement: str) -> list[_Token]:
    text = requirement.replace("||", "|").replace("<=", "≤").replace(">=", "≥")
    tokens: list[_Token] = []
    previous: _Token | None = None
    token: _Token | None = None
    for char in text:
        if char == " ":
            continue
        if char in _SPECIAL:
            if token is not None:
                tokens.append(token)
                previous, token = token, None
            current = _Token(_SPECIAL[char])
            if current.type in _UNARY and previous is not None and previous.type == "VERSION":
                tokens.append(_Token("AND"))  # "≥1.2.3 <4.5.6"
            tokens.append(current)
            previous = current
        else:
            if token is None:
                token = _Token("VERSION", "")
            token.value = (token.value or "") + char
    if token is not None:
        tokens.append(token)
    return tokens


def _parses(text: str | None) -> bool:
    try:
        parse(text or "", NPM)
    except InvalidVersion:
        return False
    return True


def _merge_prereleases(tokens: list[_Token]) -> list[_Token]:
    """``removeFalsePositiveVersionRanges``: ``1.2.3 - beta`` is the version ``1.2.3-beta``."""
    out: list[_Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if (
            i + 2 < len(tokens)
            and token.type == "VERSION"
            and tokens[i + 1].type == "HYPHEN"
            and tokens[i + 2].type == "VERSION"
            and not _parses(tokens[i + 2].value)
        ):
            token = _Token("VERSION", f"{token.value}-{tokens[i + 2].value}")
            i += 2
        out.append(token)
        i += 1
    return out


def _with_parentheses(tokens: list[_Token]) -> list[_Token]:
    out = [_Token("OPENING")]
    for token in tokens:
        if token.type == "OR":
            out += [_Token("CLOSING"), token, _Token("OPENING")]
        else:
            out.append(token)
    return [*out, _Token("CLOSING")]


def _reverse_polish(tokens: list[_Token]) -> list[_Token]:
    queue: list[_Token] = []  # Java LinkedList.push: add at the front; built reversed here
    stack: list[_Token] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "VERSION":
            queue.append(token)
        elif token.type == "CLOSING":
            while stack and stack[-1].type != "OPENING":
                queue.append(stack.pop())
            if not stack:
                raise InvalidVersion("Invalid requirement")
            stack.pop()
            if stack and stack[-1].type in _UNARY:
                queue.append(stack.pop())
        elif token.type in _UNARY:
            i += 1
            if i >= len(tokens):
                raise InvalidVersion("Invalid requirement")
            queue.append(tokens[i])
            queue.append(token)
        else:
            stack.append(token)
        i += 1
    while stack:
        queue.append(stack.pop())
    return queue[::-1]


def _evaluate(tokens: Iterator[_Token]) -> Requirement:
    try:
        token = next(tokens)
        if token.type == "VERSION":
            text = token.value or ""
            if text in ("*", "latest"):
                return Requirement(Range(">=", parse("0.0.0", LOOSE)))
            version = parse(text, NPM)
            if version.minor is not None and version.patch is not None:
                return Requirement(Range("=", version))
            return _tilde(version.value)
        if token.type == "HYPHEN":
            upper, lower = next(tokens), next(tokens)
            return _hyphen(lower.value or "", upper.value or "")
        if token.type in _UNARY:
            operand = next(tokens).value
            if operand is None:
                raise InvalidVersion("Invalid requirement")
            if token.type == "TILDE":
                return _tilde(operand)
            if token.type == "CARET":
                return _caret(operand)
            return Requirement(Range(_RANGE_OPS[token.type], parse(operand, LOOSE)))
        if token.type not in ("AND", "OR"):
            raise InvalidVersion("Invalid requirement")
        right = _evaluate(tokens)
        left = _evaluate(tokens)
        return Requirement(left=left, op=token.type, right=right)
    except StopIteration:
        raise InvalidVersion("Invalid requirement") from None


def build_npm(requirement: str) -> Requirement:
    """``Requirement.buildNPM``."""
    text = requirement or "*"
    tokens = _with_parentheses(_merge_prereleases(_tokenize(text)))
    return _evaluate(iter(_reverse_polish(tokens)))


def satisfies(version: str, requirement: str) -> bool:
    """``Requirement.buildNPM(requirement).isSatisfiedBy(new Semver(version))``; raises
    :class:`InvalidVersion` naming what semver4j cannot parse."""
    try:
        candidate = parse(version, STRICT)
    except InvalidVersion as error:
        raise InvalidVersion(f"not a semantic version: {version!r} ({error})") from None
    try:
        built = build_npm(requirement)
    except InvalidVersion as error:
        raise InvalidVersion(f"invalid version requirement {requirement!r} ({error})") from None
    return built.satisfied_by(candidate)
