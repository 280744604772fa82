"""Helpers shared by the router tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from switchyard.router.decision import RouteDecision


def assert_same_decisions(a: Sequence[RouteDecision], b: Sequence[RouteDecision]) -> None:
    """Same decisions, and p_hard equal to 1e-9 (not bit-exact: BLAS may differ by machine)."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.p_hard is None) == (y.p_hard is None)
        if x.p_hard is not None and y.p_hard is not None:
            assert abs(x.p_hard - y.p_hard) <= 1e-9, (x.p_hard, y.p_hard)
        # The reason quotes p_hard to 3 places; everything else must match exactly.
        assert replace(x, p_hard=None, reason="") == replace(y, p_hard=None, reason="")
