"""Training data for the escalation scorer: MMLU-Pro drafts joined with per-model correctness.

`mmlu_pro_drafts.jsonl` holds GPT-4o's and Llama-3.1-8B's answer texts; `mmlu_pro.jsonl`
says whether each model (and the thinking model, Gemini-3.1-Pro) answered correctly. One
`DraftExample` per (question, draft model); the other cheap model's draft on the same
question stands in for a second cheap sample. The label is the cascade's: the draft is
wrong and the thinking model is right.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from switchyard.core.messages import Message
from switchyard.router.data import data_dir
from switchyard.router.draft_signals import SIGNALS, DraftInput, draft_signals
from switchyard.router.errors import RouterDataError

THINKING_MODEL = "gemini-3.1-pro"
# MMLU-Pro's chain-of-thought instruction, under which both drafts were written; the file
# keeps only question and options, so it is put back to let the format check see it.
INSTRUCTION = ('The following is a multiple choice question. Think step by step and then '
               'finish your answer with "the answer is (X)" where X is the correct letter '
               'choice.\n\n')
DRAFT_MODELS = ("gpt-4o-2024-05-13", "llama-3.1-8b-instruct")


@dataclass(frozen=True, slots=True)
class DraftExample:
    question_id: int
    category: str
    model: str
    prompt: str
    draft: str
    second_draft: str | None
    draft_correct: bool
    thinking_correct: bool

    @property
    def label(self) -> bool:
        return not self.draft_correct and self.thinking_correct

    def to_input(self, *, with_second: bool) -> DraftInput:
        return DraftInput((Message("user", INSTRUCTION + self.prompt),), self.draft,
                          second_draft=self.second_draft if with_second else None)


def load_drafts(path: Path | str | None = None) -> tuple[list[DraftExample], str]:
    """Every draft whose question has a thinking-model outcome; and the files' hash."""
    folder = data_dir(path)
    files = [folder / "mmlu_pro.jsonl", folder / "mmlu_pro_drafts.jsonl"]
    for f in files:
        if not f.exists():
            raise RouterDataError(f"{f} is missing; pass --data-dir or set "
                                  "SWITCHYARD_ROUTER_DATA to the folder holding it", "data_dir")
    digest = hashlib.blake2b(digest_size=8)
    questions = {}
    for line in _lines(files[0], digest):
        questions[line["id"]] = line
    drafts: dict[tuple[int, str], dict] = {}
    for line in _lines(files[1], digest):
        drafts[(line["id"], line["model"])] = line
    examples = []
    for (qid, model), row in sorted(drafts.items()):
        q = questions.get(qid)
        thinking = (q or {}).get("correct", {}).get(THINKING_MODEL)
        if q is None or thinking is None or model not in DRAFT_MODELS:
            continue
        other = next((drafts.get((qid, m)) for m in DRAFT_MODELS if m != model), None)
        examples.append(DraftExample(qid, q["category"], model, q["prompt"], row["draft"],
                                     other["draft"] if other else None, bool(row["correct"]),
                                     bool(thinking)))
    return examples, digest.hexdigest()


def signal_rows(examples: Sequence[DraftExample], *, with_second: bool) -> np.ndarray:
    """(n, len(SIGNALS)) signal values."""
    rows = np.empty((len(examples), len(SIGNALS)))
    for i, e in enumerate(examples):
        rows[i] = draft_signals(e.to_input(with_second=with_second)).vector()
    return rows


def _lines(path: Path, digest: Any) -> list[dict]:
    out = []
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            digest.update(raw)
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError as exc:
                raise RouterDataError(f"{path} line {n}: not JSON ({exc.msg})",
                                      "data_dir") from None
    return out
