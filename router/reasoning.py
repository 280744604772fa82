"""Topic-free cues of how much reasoning a turn asks for: quantities, operations, steps.

A request needs the thinking model when its answer takes several dependent steps, whatever
the subject: numbers to combine, operators and equations, variables, conditions and
comparisons to track, code to trace. These counts describe that structure and say nothing
about the topic, so they can transfer to task families the router never saw (MiniLM
embeddings, by contrast, tend to memorise topics: bench/router.py measures both).
Each value is log1p(count) or a share, over the first `REASONING_CHARS` of the turn; one
pass of a few compiled regexes keeps a 4k-char turn well under a millisecond.
"""

from __future__ import annotations

import math
import re

REASONING_CHARS = 4000
_NUMBER = re.compile(r"(?<![\w.])-?\$?\d[\d,]*(?:\.\d+)?%?")
# An operator between two operands: "3 + 4", "x=2", "a*b"; not a hyphenated word's dash.
_OPERATOR = re.compile(r"(?<=[\w)\]])\s*[-+*/×÷^=<>]\s*(?=[\w(\[$])")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_LATEX = re.compile(r"\\[a-zA-Z]+|\$[^$\n]{1,80}\$")
_UNITS = re.compile(r"\b(?:dollars?|cents?|hours?|minutes?|seconds?|days?|weeks?|months?|"
                    r"years?|miles?|km|meters?|feet|inch(?:es)?|pounds?|kg|grams?|liters?|"
                    r"gallons?|percent|each|per|apiece|total)\b")
_CODE = re.compile(r"\b(?:def|return|class|import|lambda|print|elif|while|assert)\b|[{};]|==|!=")
_ASK_COMPUTE = re.compile(r"\b(?:how many|how much|how long|how far|how old|find|calculate|"
                          r"compute|solve|determine|evaluate|simplify|prove|show that)\b")
_COMPARE = re.compile(r"\b(?:more than|less than|fewer|twice|half|times as|ratio|remaining|"
                      r"left over|respectively|altogether|in total)\b")
_CONDITION = re.compile(r"\b(?:if|unless|then|after|before|until|except|only|not|never|"
                        r"at least|at most|exactly)\b")
_VARIABLE = re.compile(r"(?<![A-Za-z])[a-zA-Z](?![A-Za-z'])\s*(?:[=+\-*/^<>)]|\d)")

REASONING = (
    "r_numbers", "r_distinct_numbers", "r_number_density", "r_operators", "r_sentences",
    "r_words_per_sentence", "r_latex", "r_units", "r_code", "r_ask_compute", "r_compare",
    "r_conditions", "r_variables", "r_decimals",
)


def reasoning_features(text: str) -> dict[str, float]:
    """The values of `REASONING` for one turn (every value finite)."""
    turn = text[:REASONING_CHARS]
    lower = turn.lower()
    numbers = _NUMBER.findall(turn)
    n_words = max(len(turn.split()), 1)
    sentences = len(_SENTENCE_END.findall(turn)) + 1
    return {
        "r_numbers": math.log1p(len(numbers)),
        "r_distinct_numbers": math.log1p(len(set(numbers))),
        "r_number_density": len(numbers) / n_words,
        "r_operators": math.log1p(len(_OPERATOR.findall(turn))),
        "r_sentences": math.log1p(sentences),
        "r_words_per_sentence": math.log1p(n_words / sentences),
        "r_latex": math.log1p(len(_LATEX.findall(turn))),
        "r_units": math.log1p(len(_UNITS.findall(lower))),
        "r_code": math.log1p(len(_CODE.findall(turn))),
        "r_ask_compute": math.log1p(len(_ASK_COMPUTE.findall(lower))),
        "r_compare": math.log1p(len(_COMPARE.findall(lower))),
        "r_conditions": math.log1p(len(_CONDITION.findall(lower))),
        "r_variables": math.log1p(len(_VARIABLE.findall(turn))),
        "r_decimals": math.log1p(sum("." in n or "%" in n for n in numbers)),
    }
