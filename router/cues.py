"""Lexical difficulty cues of a user turn: what kind of task it is, not what it is about.

Left-out-family validation showed the router's signal is mostly "which kind of task": code,
multi-step arithmetic, constrained puzzles and reading passages gain from a stronger model;
short factoid questions and common-sense picks do not. These counts name those kinds in
words that transfer across task families (bench/router.py measures what they add).
Each value is log1p(count) or a 0/1 flag, over the first `CUE_CHARS` of the turn.
Words are counted from one `Counter` of the turn's words and word pairs, not one regex
per cue: that keeps a 4k-token turn near 0.5 ms.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from itertools import pairwise

CUE_CHARS = 4000
_VOCAB = {
    "cue_code_words": "def return class import function int str list array string print "
                      "python code program implement algorithm",
    "cue_math_words": "sum product how_many how_much calculate compute solve find_the "
                      "probability integer equation percent total remainder number_of "
                      "value_of prime divisible degree degrees area ratio",
    "cue_step_words": "then after before first second finally each every if twice half "
                      "times more_than less_than per",
    "cue_constraints": "must should exactly at_least at_most only not no never different",
    "cue_science_words": "reaction molecule electron energy force cell protein acid "
                         "velocity mass quantum enzyme gene",
    "cue_passage_words": "passage according_to the_author paragraph text",
}
_TERMS = {name: frozenset(w.replace("_", " ") for w in words.split())
          for name, words in _VOCAB.items()}
_WORD = re.compile(r"[a-z]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LATEX = re.compile(r"\\[a-z]+|\$[^$\n]+\$")
_OPTION = re.compile(r"(?m)(?:^|\s)\(?[A-E][.)]\s")  # on the turn as written: upper case
_WRITE_CODE = re.compile(r"\bwrite an? (?:python )?(?:function|program|script|method)\b")
_ANSWER_SUFFIX = re.compile(r"answer\s*:?\s*$")
_WH_START = re.compile(r"\s*(?:who|which|what|when|where|whose)\b")

LEXICAL = (*_VOCAB, "cue_latex", "cue_numbers", "cue_options", "cue_write_code",
           "cue_doctest", "cue_answer_suffix", "cue_wh_start", "cue_word_list", "cue_lines",
           "cue_type_token_ratio", "cue_ends_with_question", "cue_mean_word_length")


def lexical_cues(text: str) -> dict[str, float]:
    """The cue values of one turn (every value finite)."""
    turn = text[:CUE_CHARS]
    lower = turn.lower()
    toks = _WORD.findall(lower)
    counts = Counter(toks)
    counts.update(f"{a} {b}" for a, b in pairwise(toks))
    words = turn.split()
    n_words = max(len(words), 1)
    out = {name: math.log1p(sum(counts[t] for t in terms)) for name, terms in _TERMS.items()}
    out["cue_latex"] = math.log1p(len(_LATEX.findall(lower)))
    out["cue_numbers"] = math.log1p(len(_NUMBER.findall(turn)))
    out["cue_options"] = math.log1p(len(_OPTION.findall(turn)))
    out["cue_write_code"] = float(_WRITE_CODE.search(lower) is not None)
    out["cue_doctest"] = float('"""' in turn or ">>>" in turn)
    out["cue_answer_suffix"] = float(_ANSWER_SUFFIX.search(lower) is not None)
    out["cue_wh_start"] = float(_WH_START.match(lower) is not None)
    # A bare list of words (a "use these words" task): many commas, no sentence marks.
    out["cue_word_list"] = float(turn.count(",") >= 4 and not any(c in turn for c in ".?!:\n"))
    out["cue_lines"] = math.log1p(turn.count("\n"))
    out["cue_type_token_ratio"] = len(set(lower.split())) / n_words
    out["cue_ends_with_question"] = float(turn.rstrip().endswith("?"))
    out["cue_mean_word_length"] = sum(map(len, words)) / n_words
    return out
