"""Compaction replay: re-run compaction strategies over logged request bodies and report the
tokens each saves, per request and per session (no upstream call, no chunk store writes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_STRATEGIES = ("learned", "observation_mask", "truncate")


@dataclass
class StrategyTotals:
    strategy: str
    requests: int = 0
    compacted: int = 0  # requests over the budget, so actually compacted
    tokens_before: int = 0
    tokens_after: int = 0
    errors: int = 0
    sessions: dict[str, list[int]] = field(default_factory=dict)  # session -> [before, after]

    @property
    def saved(self) -> int:
        return self.tokens_before - self.tokens_after

    @property
    def saved_share(self) -> float:
        return self.saved / self.tokens_before if self.tokens_before else 0.0

    def per_request(self) -> float:
        return self.saved / self.requests if self.requests else 0.0

    def per_session(self) -> float:
        return self.saved / len(self.sessions) if self.sessions else 0.0


def logged_histories(log: Path, limit: int = 0) -> list[tuple[str, str, str]]:
    """(request id, session id, body JSON) of logged requests that kept their body."""
    from switchyard.core.trafficlog.schema import connect
    from switchyard.server.traffic.replay_requests import replay_body

    db = connect(log)
    try:
        sql = ("SELECT request_id, session_id, endpoint, request_json FROM requests WHERE "
               "request_json IS NOT NULL AND shadow_of IS NULL ORDER BY created_at")
        rows = db.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    finally:
        db.close()
    out = []
    for rid, session, endpoint, body in rows:
        try:
            out.append((rid, session, replay_body(endpoint, body)))
        except ValueError:
            continue  # a rejected request's capped body, or a door replay cannot read
    return out


def replay_compaction(histories: Sequence[tuple[str, str, str]], strategies: Sequence[str],
                      *, budget_share: float = 0.5, budget: int | None = None,
                      model: str | None = None, progress: bool = False) -> list[StrategyTotals]:
    """Compact each history to `budget` tokens, or to `budget_share` of its own size."""
    from switchyard.compaction import CompactionError, CompactionOptions, Compactor
    from switchyard.core.errors import ChatFormatError
    from switchyard.core.messages import parse_messages
    from switchyard.core.tokens import count_message_tokens
    from tqdm.auto import tqdm

    compactors = {s: Compactor.load(options=CompactionOptions(strategy=s)) for s in strategies}
    totals = {s: StrategyTotals(s) for s in strategies}
    for rid, session, body in tqdm(histories, desc="replay: compaction", disable=not progress):
        try:
            messages = parse_messages(json.loads(body).get("messages"))
        except (ValueError, ChatFormatError, AttributeError):
            for t in totals.values():
                t.errors += 1
            continue
        before = count_message_tokens(messages, model)
        target = budget if budget is not None else max(int(before * budget_share), 1)
        for name, compactor in compactors.items():
            t = totals[name]
            after = before
            if before > target:
                try:
                    after = compactor.compact(messages, target, model=model,
                                              namespace=session).tokens_after
                    t.compacted += 1
                except CompactionError:
                    t.errors += 1
            t.requests += 1
            t.tokens_before += before
            t.tokens_after += after
            s = t.sessions.setdefault(session, [0, 0])
            s[0] += before
            s[1] += after
    return list(totals.values())


def format_compaction(totals: Sequence[StrategyTotals]) -> str:
    lines = [(f"{'strategy':<18}{'requests':>9}{'compacted':>10}{'saved':>12}{'saved%':>8}"
             f"{'per req':>10}{'per session':>13}")]
    for t in totals:
        lines.append(f"{t.strategy:<18}{t.requests:>9}{t.compacted:>10}{t.saved:>12,}"
                     f"{t.saved_share * 100:>7.1f}%{t.per_request():>10,.0f}"
                     f"{t.per_session():>13,.0f}")
    return "\n".join(lines)
