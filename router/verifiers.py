"""Verifiers: pure graders of an answer against a reference, each returning a `Verdict`.

- numeric: GSM8K style: the number after "####", else the last number in the text;
- exact: equal after trimming, case-folding and collapsing whitespace;
- regex: the pattern occurs in the answer;
- json_schema: the answer (optionally in a ```json fence) parses and validates;
- command: an argv run with the answer on stdin and a timeout; exit status 0 passes.
  The answer never reaches a shell: it travels on stdin only.

`VERIFIERS` maps a kind to its function; `verify(spec, answer, expected)` runs one spec.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from switchyard.router.errors import RoutingError

_HASH_ANSWER = re.compile(r"####\s*([^\n]*)")
_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_FENCE = re.compile(r"```(?:json)?\s*\n?(.*?)```", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    score: float  # 1.0 or 0.0 for these graders
    detail: str

    @classmethod
    def of(cls, passed: bool, detail: str) -> Verdict:
        return cls(passed, 1.0 if passed else 0.0, detail)


def parse_number(text: str) -> float | None:
    """'1,234' -> 1234, '$5.50' -> 5.5, '3/4' -> 0.75; None when it is not a number."""
    cleaned = text.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        if "/" in cleaned:
            num, den = cleaned.split("/", 1)
            return float(num) / float(den)
        return float(cleaned)
    except (ValueError, ZeroDivisionError):
        return None


def extract_number(text: str) -> float | None:
    """The answer after '####' (GSM8K's marker), else the last number in the text."""
    marked = _HASH_ANSWER.findall(text)
    candidates = _NUMBER.findall(marked[-1]) if marked else []
    if not candidates:
        candidates = _NUMBER.findall(text)
    for raw in reversed(candidates):
        value = parse_number(raw)
        if value is not None:
            return value
    return None


def numeric_match(answer: str, expected: str, *, tolerance: float = 1e-6) -> Verdict:
    want = extract_number(expected)
    if want is None:
        raise RoutingError(f"numeric verifier: the reference {expected!r} holds no number",
                           "expected")
    got = extract_number(answer)
    if got is None:
        return Verdict.of(False, "no number in the answer")
    ok = math.isclose(got, want, abs_tol=tolerance, rel_tol=0.0)
    return Verdict.of(ok, f"answer {got:g} vs expected {want:g}")


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def exact_match(answer: str, expected: str) -> Verdict:
    ok = _normal(answer) == _normal(expected)
    return Verdict.of(ok, "exact match" if ok else "differs from the reference")


def regex_match(answer: str, pattern: str) -> Verdict:
    try:
        found = re.search(pattern, answer) is not None
    except re.error as exc:
        raise RoutingError(f"regex verifier: bad pattern {pattern!r}: {exc}", "pattern") from None
    return Verdict.of(found, f"pattern {'found' if found else 'not found'}")


def json_schema_valid(answer: str, schema: Mapping[str, Any]) -> Verdict:
    import jsonschema

    fenced = _FENCE.search(answer)
    text = fenced.group(1) if fenced else answer
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Verdict.of(False, f"not JSON: {exc.msg} at line {exc.lineno}")
    try:
        jsonschema.validate(value, dict(schema))
    except jsonschema.ValidationError as exc:
        return Verdict.of(False, f"schema: {exc.message}")
    except jsonschema.SchemaError as exc:
        raise RoutingError(f"json_schema verifier: invalid schema: {exc.message}",
                           "json_schema") from None
    return Verdict.of(True, "valid JSON for the schema")


def command_passes(answer: str, argv: Sequence[str], *, timeout: float = 10.0) -> Verdict:
    """Run `argv` (no shell) with the answer on stdin; exit 0 passes, a timeout fails."""
    if not argv:
        raise RoutingError("command verifier: give the command as a list of arguments",
                           "command")
    try:
        done = subprocess.run(list(argv), input=answer, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Verdict.of(False, f"timed out after {timeout:g} s")
    except OSError as exc:
        raise RoutingError(f"command verifier: cannot run {argv[0]!r}: {exc}",
                           "command") from None
    tail = (done.stderr or done.stdout or "").strip()[-200:]
    return Verdict.of(done.returncode == 0, f"exit {done.returncode}" + (f": {tail}" if tail
                                                                         else ""))


@dataclass(frozen=True, slots=True)
class VerifierSpec:
    """What to run; the server builds these from its config's `outcomes.verifiers`."""

    name: str
    kind: str
    pattern: str | None = None
    json_schema: Mapping[str, Any] | None = None
    command: Sequence[str] | None = None
    timeout: float = 10.0
    tolerance: float = 1e-6

    @property
    def needs_reference(self) -> bool:
        return self.kind in ("numeric", "exact")


def _numeric(spec: VerifierSpec, answer: str, expected: str | None) -> Verdict:
    return numeric_match(answer, _reference(spec, expected), tolerance=spec.tolerance)


def _exact(spec: VerifierSpec, answer: str, expected: str | None) -> Verdict:
    return exact_match(answer, _reference(spec, expected))


def _regex(spec: VerifierSpec, answer: str, expected: str | None) -> Verdict:
    pattern = spec.pattern or expected
    if not pattern:
        raise RoutingError(f"verifier {spec.name!r}: regex needs `pattern`", "pattern")
    return regex_match(answer, pattern)


def _schema(spec: VerifierSpec, answer: str, expected: str | None) -> Verdict:
    if spec.json_schema is None:
        raise RoutingError(f"verifier {spec.name!r}: json_schema needs `json_schema`",
                           "json_schema")
    return json_schema_valid(answer, spec.json_schema)


def _command(spec: VerifierSpec, answer: str, expected: str | None) -> Verdict:
    return command_passes(answer, spec.command or (), timeout=spec.timeout)


def _reference(spec: VerifierSpec, expected: str | None) -> str:
    if expected is None:
        raise RoutingError(f"verifier {spec.name!r} ({spec.kind}) needs a reference answer: "
                           "tag the request 'expected:<answer>'", "expected")
    return expected


VERIFIERS: dict[str, Callable[[VerifierSpec, str, str | None], Verdict]] = {
    "numeric": _numeric,
    "exact": _exact,
    "regex": _regex,
    "json_schema": _schema,
    "command": _command,
}


def verify(spec: VerifierSpec, answer: str, expected: str | None = None) -> Verdict:
    try:
        fn = VERIFIERS[spec.kind]
    except KeyError:
        raise RoutingError(f"unknown verifier kind {spec.kind!r}; valid: "
                           f"{', '.join(VERIFIERS)}", "kind") from None
    return fn(spec, answer, expected)
