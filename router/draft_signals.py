"""Verifiable signals in a cheap model's draft: what the escalation scorer reads.

Each signal recomputes, parses or validates something in the draft instead of judging its
style, so it means the same thing in every task family:
- the final answer: present, in the format the request asked for ("####", \\boxed{}, "The
  answer is (X)"), one of the offered options, stated once, and backed by the draft's own
  work (a numeric option's value appears in the working before the answer);
- arithmetic: `a op b = c` and GSM8K `<<a*b=c>>` annotations recomputed;
- tool calls and JSON: arguments parsed and validated against the offered tool's schema;
- finish_reason "length", hedging words, repeated sentences (a model looping), the
  draft/prompt length ratio, token logprobs;
- configured verifiers and a second cheap sample's final answer, when the caller has them.

`draft_signals(DraftInput) -> Signals`; `Signals.vector()` orders them as `SIGNALS`.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchyard.core.messages import Message, ToolCall, ToolDefinition

# Learned from the MMLU-Pro drafts (router/escalation.py fits their weights).
LEARNED = ("no_final_answer", "answer_off_format", "answers_conflict", "answer_unsupported",
           "repeats", "arith_checked", "hedges", "length_ratio", "draft_chars", "disagrees")
# Weights set by hand in the checkpoint: signals no training draft has, each a verified
# failure of the draft (or, for logprobs, the model's own doubt); and arith_wrong, which the
# MMLU-Pro drafts cannot teach (see router/escalation.py FIXED_WEIGHTS).
FIXED = ("arith_wrong", "truncated", "tool_args_invalid", "json_invalid", "verifier_failed",
         "low_logprob")
SIGNALS = LEARNED + FIXED

_OPTION_LINE = re.compile(r"^\s*\(?([A-P])[.):]\s+(\S.*)$", re.MULTILINE)
_LETTER_ANSWER = re.compile(
    r"(?:answer\s+is|answer:|final\s+answer\s*(?:is)?:?|correct\s+(?:answer|option|choice)\s+is)"
    r"\s*:?\s*(?:option\s+)?\**\(?([A-P])\)?(?![a-z])", re.IGNORECASE)
_HASH = re.compile(r"####\s*([^\n]+)")
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_FREE_ANSWER = re.compile(
    r"(?:the\s+(?:final\s+)?answer\s+is|final\s+answer\s*:|^\s*answer\s*:)\s*:?\s*([^\n]+)",
    re.IGNORECASE | re.MULTILINE)
_NUM = r"(?:\d++(?:,\d{3})*+(?:\.\d+)?+|\.\d+)"
_TERM = rf"\(?{_NUM}\)?"
_NUMBER_TEXT = re.compile(rf"-?{_NUM}")
# Possessive repeats: a draft full of numbers must not backtrack (one did for minutes).
# Not part of a longer expression or a chain (a = b = c), not a percentage: those the
# draft may write loosely, and a false "wrong" would escalate a right draft.
_EQUATION = re.compile(
    rf"(?<![\w.^/*+×÷=)\-])(?<![*+×÷=/\-] )"
    rf"({_TERM}(?:[ \t]*+[-+*/×÷x][ \t]*+{_TERM})++)[ \t]*+=[ \t]*+(-?{_NUM})"
    r"(?![\w(^%]|[ \t]*[-+*/^(=%]|\.\d)")
_LATEX_OPS = str.maketrans({"$": None})
_ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>]+)>>")
# Matched on the lower-cased draft: IGNORECASE made this regex 20x slower on long drafts.
_HEDGES = re.compile(
    r"(?<![a-z])(?:not sure|unsure|uncertain|i think|i believe|probably|perhaps|maybe|might be|"
    r"could be|seems? to be|appears? to be|it is possible|hard to say|i'm not certain|"
    r"approximately|assuming|guess|unclear|however|but wait|re-?evaluate|let me re-?check|"
    r"none of the (?:options|choices)|closest)(?![a-z])")
_FORMAT_ASKED = {
    "hash": re.compile(r"####"),
    "boxed": re.compile(r"\\boxed"),
    "letter": re.compile(r"answer is \(?X\)?|answer is \(", re.IGNORECASE),
}
_STRICT_LETTER = re.compile(r"answer is \(?[A-P]\)?(?![a-z])", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]{20,}")
_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod,
}


@dataclass(frozen=True, slots=True)
class DraftInput:
    """The request (messages, offered tools, response format) and the cheap model's draft."""

    messages: Sequence[Message]
    draft: str
    tools: Sequence[ToolDefinition] = ()
    tool_calls: Sequence[ToolCall] = ()  # the draft's tool calls, if it made any
    finish_reason: str | None = None
    response_format: str | None = None  # "json_object" / "json_schema" / None
    logprobs: Sequence[float] | None = None  # per-token logprobs when the upstream sent them
    second_draft: str | None = None  # a second cheap sample, when the config asks for one
    verifier_failures: int = 0  # configured verifiers (router/verifiers.py) that failed


@dataclass(frozen=True, slots=True)
class Signals:
    values: dict[str, float]
    final_answer: str | None  # the draft's final answer as parsed, for the log

    def vector(self) -> list[float]:
        return [self.values[name] for name in SIGNALS]

    def failed(self) -> list[str]:
        """The verified failures present (for the log's reason)."""
        return [n for n in ("no_final_answer", "answer_off_format", "arith_wrong", "truncated",
                            "tool_args_invalid", "json_invalid", "verifier_failed", "disagrees")
                if self.values[n] > 0]


def draft_signals(x: DraftInput) -> Signals:
    prompt = _prompt_text(x.messages)
    option_texts = _options(prompt)
    options = list(option_texts)
    answers = final_answers(x.draft, options)
    final = answers[-1] if answers else None
    wrong, checked = arithmetic_errors(x.draft)
    expects_answer = not x.tool_calls and x.response_format is None
    values = {
        "no_final_answer": float(expects_answer and final is None),
        "answer_off_format": float(expects_answer and final is not None
                                   and _off_format(prompt, x.draft, options, final)),
        "answers_conflict": float(len(set(answers)) > 1),
        "answer_unsupported": _unsupported(x.draft, option_texts.get(final or "")),
        "arith_wrong": float(min(wrong, 3)),
        "arith_checked": math.log1p(checked),
        "hedges": math.log1p(len(_HEDGES.findall(x.draft.lower()))),
        "repeats": _repeated_share(x.draft),
        "length_ratio": math.log((len(x.draft) + 1) / (len(prompt) + 1)),
        "draft_chars": math.log1p(len(x.draft)),
        "disagrees": _disagrees(x.second_draft, final, options),
        "truncated": float(x.finish_reason == "length"),
        "tool_args_invalid": float(bool(tool_call_errors(x.tool_calls, x.tools))),
        "json_invalid": float(x.response_format in ("json_object", "json_schema")
                              and not _parses_as_json(x.draft)),
        "verifier_failed": float(min(x.verifier_failures, 1)),
        "low_logprob": _low_logprob(x.logprobs),
    }
    return Signals(values, final)


def final_answers(draft: str, options: Sequence[str] = ()) -> list[str]:
    """Every final answer the draft states, in order: option letters when the request
    offered options, else "####" / \\boxed{} / "the answer is" values, normalised."""
    if options:
        return [m.upper() for m in _LETTER_ANSWER.findall(draft)]
    found = [*_HASH.findall(draft), *_BOXED.findall(draft), *_FREE_ANSWER.findall(draft)]
    return [_normal_answer(a) for a in found if _normal_answer(a)]


def arithmetic_errors(text: str) -> tuple[int, int]:
    """(wrong, checked): `a op b = c` statements and `<<expr=c>>` annotations recomputed."""
    plain = _ANNOTATION.sub(" ", text)
    plain = plain.replace("\\times", "*").replace("\\cdot", "*").translate(_LATEX_OPS)
    seen: dict[tuple[float, float], bool] = {}  # GSM8K restates "9 * 2 = <<9*2=18>>18"
    for expr, stated in [*_ANNOTATION.findall(text), *_EQUATION.findall(plain)]:
        value, claim = _evaluate(expr), _number(stated)
        if value is not None and claim is not None:
            seen[(round(value, 6), claim)] = _close(value, claim, stated)
    return sum(not ok for ok in seen.values()), len(seen)


def tool_call_errors(calls: Sequence[ToolCall], tools: Sequence[ToolDefinition]) -> list[str]:
    """Why each invalid tool call is invalid: unknown tool, arguments not JSON, or not
    valid against the offered tool's parameter schema."""
    import jsonschema

    offered = {t.name: t for t in tools}
    errors = []
    for call in calls:
        tool = offered.get(call.name)
        if tool is None:
            errors.append(f"{call.name}: not an offered tool")
            continue
        try:
            args = json.loads(call.arguments or "{}")
            schema = json.loads(tool.parameters_json or "{}")
        except json.JSONDecodeError as exc:
            errors.append(f"{call.name}: arguments are not JSON ({exc.msg})")
            continue
        try:
            jsonschema.validate(args, schema)
        except jsonschema.ValidationError as exc:
            errors.append(f"{call.name}: {exc.message}")
        except jsonschema.SchemaError:
            continue  # the caller's schema is broken, not the draft
    return errors


def _prompt_text(messages: Sequence[Message]) -> str:
    for m in reversed(messages):
        if m.role == "user":
            return m.content or ""
    return ""


def _options(prompt: str) -> dict[str, str]:
    """Lettered options ("A. ...", "(B) ...") listed in the prompt, if they run A, B, C...:
    letter -> option text."""
    run: dict[str, str] = {}
    for letter, text in _OPTION_LINE.findall(prompt):
        if letter == chr(ord("A") + len(run)):
            run[letter] = text
    return run if len(run) >= 2 else {}


def _unsupported(draft: str, option: str | None) -> float:
    """+1 when the chosen option holds numbers and none appears in the draft's working
    (the model picked a "closest" option it never computed), -1 when one does, 0 when the
    option has no number to check."""
    if option is None:
        return 0.0
    wanted = [v for v in (_number(n) for n in _NUMBER_TEXT.findall(option)) if v is not None]
    if not wanted:
        return 0.0
    cut = [m.start() for m in _LETTER_ANSWER.finditer(draft)]
    work = draft[:cut[-1]] if cut else draft
    seen = [v for v in (_number(n) for n in _NUMBER_TEXT.findall(work)) if v is not None]
    backed = any(math.isclose(w, s, rel_tol=0.02, abs_tol=1e-9) for w in wanted for s in seen)
    return -1.0 if backed else 1.0


def _off_format(prompt: str, draft: str, options: Sequence[str], final: str) -> bool:
    """A final answer that is not one of the offered options, or not in the requested form
    (disjoint from no_final_answer, so each keeps its own weight)."""
    if options and final not in options:
        return True
    return any(asked.search(prompt) and not _answered_in(kind, draft)
               for kind, asked in _FORMAT_ASKED.items() if kind != "letter" or options)


def _answered_in(kind: str, draft: str) -> bool:
    if kind == "hash":
        return bool(_HASH.search(draft))
    if kind == "boxed":
        return bool(_BOXED.search(draft))
    return bool(_STRICT_LETTER.search(draft))  # the asked form, not any "answer: X"


def _repeated_share(draft: str) -> float:
    """Share of the draft's sentences that repeat an earlier one: a small model looping."""
    sentences = [s.strip() for s in _SENTENCE.findall(draft)]
    if len(sentences) < 2:
        return 0.0
    return 1.0 - len(set(sentences)) / len(sentences)


def _disagrees(second: str | None, final: str | None, options: Sequence[str]) -> float:
    """+1 when a second cheap sample's final answer differs (or one of them has none), -1
    when they agree, 0 without a second sample (so one model scores both cases)."""
    if second is None:
        return 0.0
    others = final_answers(second, options)
    return 1.0 if final is None or not others or others[-1] != final else -1.0


def _normal_answer(raw: str) -> str:
    text = raw.strip().strip("*$. ").replace(",", "")
    number = _number(text.split()[0]) if text else None
    return f"{number:g}" if number is not None else text.casefold()[:40]


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


def _evaluate(expr: str) -> float | None:
    """Evaluate + - * / ** % over numbers only (no names, no calls); None if not that."""
    cleaned = expr.replace(",", "").replace("×", "*").replace("÷", "/").replace("^", "**")
    cleaned = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", cleaned).replace("$", "")
    try:
        tree = ast.parse(cleaned.strip(), mode="eval")
        return _eval_node(tree.body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None


def _eval_node(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _eval_node(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval_node(node.left), _eval_node(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        return _OPS[type(node.op)](left, right)
    raise ValueError("not plain arithmetic")


def _close(value: float, claim: float, stated: str) -> bool:
    """Equal up to the rounding the draft used (half a unit in its last digit) or 1%."""
    decimals = len(stated.split(".", 1)[1]) if "." in stated else 0
    unit = 10.0 ** -decimals
    return abs(value - claim) <= max(unit / 2 + 1e-9, 0.01 * abs(claim))


def _parses_as_json(text: str) -> bool:
    fenced = re.search(r"```(?:json)?\s*\n?(.*?)```", text, re.DOTALL)
    try:
        json.loads(fenced.group(1) if fenced else text)
    except json.JSONDecodeError:
        return False
    return True


def _low_logprob(logprobs: Sequence[float] | None) -> float:
    """How far the mean token logprob falls below -0.3 (a confident model sits near 0)."""
    if not logprobs:
        return 0.0
    return max(0.0, -sum(logprobs) / len(logprobs) - 0.3)
