"""`Compactor`: the surface the pipeline calls (strategy + scorer + options, loaded once)."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from switchyard.compaction.assemble import Summarize
from switchyard.compaction.options import CompactionOptions
from switchyard.compaction.result import Compaction
from switchyard.compaction.strategies import get_strategy
from switchyard.compaction.summary import fit_placeholder
from switchyard.core.messages import Message
from switchyard.core.tokens import counter_for
from switchyard.retrieval.chunk import ChunkSink


@contextmanager
def _collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a 128k-token history allocates some 20k
    containers (spans, term sets, keys), which set off ~30 collections (~5 ms of a ~100 ms
    call) that find nothing (the compactor builds no cycles; reference counting frees it
    all). Collection resumes after, unless something else had paused it."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class Compactor:
    def __init__(self, options: CompactionOptions, scorer: Any = None) -> None:
        self.options = options
        self.scorer = scorer
        self._strategy = get_strategy(options.strategy)

    @classmethod
    def load(
        cls, checkpoint: Path | None = None, options: CompactionOptions | None = None
    ) -> Compactor:
        """The bundled trained checkpoint by default; no checkpoint is read for baselines."""
        opts = options or CompactionOptions()
        get_strategy(opts.strategy)  # fail on a bad name before loading anything
        scorer = None
        if opts.strategy == "learned":
            from switchyard.compaction.scorer import Scorer

            scorer = Scorer.load(checkpoint)
        return cls(opts, scorer)

    @property
    def strategy(self) -> str:
        return self.options.strategy

    def compact(
        self, messages: Sequence[Message], budget: int, *, model: str | None = None,
        namespace: str = "", sink: ChunkSink | None = None,
    ) -> Compaction:
        """Fit `messages` into `budget` tokens; dropped chunks go to `sink` when given."""
        with _collection_paused():
            result = self._strategy(messages, budget, model=model, options=self.options,
                                    namespace=namespace, scorer=self.scorer)
        assert isinstance(result, Compaction)
        if sink is not None and result.dropped_chunks:
            sink.add(result.dropped_chunks)
        return result

    async def acompact(
        self, messages: Sequence[Message], budget: int, *, model: str | None = None,
        namespace: str = "", sink: ChunkSink | None = None, summarize: Summarize | None = None,
    ) -> Compaction:
        """As `compact`; with `summarize`, each dropped run gets an abstractive summary
        written by that call (the pipeline passes the non-thinking model in)."""
        result = self.compact(messages, budget, model=model, namespace=namespace, sink=sink)
        if summarize is None or not result.dropped_ids:
            return result
        return await _resummarize(result, summarize, model, self.options)


async def _resummarize(
    result: Compaction, summarize: Summarize, model: str | None, options: CompactionOptions
) -> Compaction:
    """Swap each run's extractive summary for an abstractive one, within the same budget:
    a run may grow by its share of the slack the extractive result left."""
    counter = counter_for(model)
    text_of = {c.id: c.text for c in result.dropped_chunks}
    slack = max(result.budget - result.tokens_after, 0) // max(len(result.runs), 1)
    messages = list(result.messages)
    summaries: list[str] = []
    for run in result.runs:
        old = messages[run.at].content or ""
        # the ledger's terms stay; the summary around them is what gets rewritten
        listed = counter.count(run.mentions)
        cap = min(counter.count(old) + slack, options.placeholder_max_tokens + listed)
        written = " ".join((await summarize("\n\n".join(text_of[i] for i in run.ids))).split())
        text = fit_placeholder(run.dropped_messages, written, run.ids, options.placeholder_max_ids, counter,
                               cap - listed, run.mentions)
        if counter.count(text) > cap:  # even an empty summary is too long: keep the old one
            text = old
        messages[run.at] = Message(role="user", content=text)
        summaries.append(written)
    return replace(result, messages=messages, tokens_after=counter.messages(messages),
                   summary="\n".join(summaries))
