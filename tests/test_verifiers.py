"""Verifiers on real GSM8K-style answers, and the other graders' pass/fail edges."""

from __future__ import annotations

import sys

import pytest
from switchyard.router.errors import RoutingError
from switchyard.router.verifiers import (
    VerifierSpec,
    command_passes,
    exact_match,
    extract_number,
    json_schema_valid,
    numeric_match,
    regex_match,
    verify,
)

# GSM8K test set, question 1 (Janet's ducks): the reference solution and two model answers.
GSM8K_REFERENCE = (
    "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
    "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market.\n#### 18")
RIGHT = ("Janet's ducks lay 16 eggs. She eats 3 and bakes with 4, leaving 16 - 3 - 4 = 9 eggs. "
         "At $2 each she makes 9 * 2 = $18.\n#### 18")
WRONG_FINAL = "She has 16 - 3 = 13 eggs left and sells them for 13 * 2 = $26 a day."


def test_gsm8k_marker_and_last_number() -> None:
    assert extract_number(GSM8K_REFERENCE) == 18
    assert numeric_match(RIGHT, GSM8K_REFERENCE).passed
    verdict = numeric_match(WRONG_FINAL, GSM8K_REFERENCE)
    assert not verdict.passed and "26" in verdict.detail
    assert numeric_match("The answer is 1,234.", "#### 1234").passed
    assert numeric_match("so she pays $5.50 in total", "5.5").passed
    assert numeric_match("#### -7", "-7").passed
    assert not numeric_match("I cannot tell.", "#### 3").passed


def test_numeric_needs_a_number_in_the_reference() -> None:
    with pytest.raises(RoutingError, match="no number"):
        numeric_match("42", "forty-two")


def test_exact_and_regex() -> None:
    assert exact_match("  Paris\n", "paris").passed
    assert not exact_match("Paris, France", "Paris").passed
    assert regex_match("def add(a, b):\n    return a + b", r"def \w+\(").passed
    assert not regex_match("no code here", r"def \w+\(").passed
    with pytest.raises(RoutingError, match="bad pattern"):
        regex_match("x", "(")


def test_json_schema() -> None:
    schema = {"type": "object", "required": ["name", "age"],
              "properties": {"age": {"type": "integer"}}}
    assert json_schema_valid('```json\n{"name": "Ada", "age": 36}\n```', schema).passed
    assert not json_schema_valid('{"name": "Ada", "age": "old"}', schema).passed
    assert "not JSON" in json_schema_valid("{name: Ada}", schema).detail


def test_command_gets_the_answer_on_stdin_never_through_a_shell(tmp_path) -> None:
    check = [sys.executable, "-c", ("import sys; sys.exit(0 if sys.stdin.read().strip() == "
             "'print(1)' else 1)")]
    assert command_passes("print(1)", check).passed
    # Shell metacharacters in the answer are inert: they are just stdin bytes.
    marker = tmp_path / "pwned"
    assert not command_passes(f"; touch {marker}", check).passed
    assert not marker.exists()
    slow = [sys.executable, "-c", "import time; time.sleep(5)"]
    verdict = command_passes("x", slow, timeout=0.3)
    assert not verdict.passed and "timed out" in verdict.detail


def test_verify_dispatch_and_errors() -> None:
    assert verify(VerifierSpec("g", "numeric"), RIGHT, "18").score == 1.0
    with pytest.raises(RoutingError, match="expected:"):
        verify(VerifierSpec("g", "numeric"), RIGHT, None)
    with pytest.raises(RoutingError, match="valid: numeric"):
        verify(VerifierSpec("g", "bleu"), RIGHT, "18")
