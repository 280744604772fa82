"""The error tree: one root in the core, components subclass only the core's base, and the
serving layer names what reaches the wire."""

from __future__ import annotations

import pytest
from switchyard.compaction.errors import CompactionError
from switchyard.core.errors import ChatFormatError, OutcomeError, ParamError, SwitchyardError
from switchyard.retrieval.errors import RetrievalError, UnknownNamespace
from switchyard.router.errors import RoutingError
from switchyard.server.errors import (
    InvalidRequest,
    NotFound,
    UpstreamTimeout,
    as_switchyard_error,
)


def test_components_subclass_only_the_core_base() -> None:
    for base in (RoutingError, CompactionError, RetrievalError, ChatFormatError, OutcomeError):
        assert base.__bases__ == (ParamError,)
    assert ParamError.__mro__[1:3] == (SwitchyardError, ValueError)
    assert issubclass(InvalidRequest, SwitchyardError)


@pytest.mark.parametrize(("exc", "kind", "status"), [
    (RoutingError("threshold must be in [0, 1]", "threshold"), InvalidRequest, 400),
    (ChatFormatError("a tool result without its call", "messages[2]"), InvalidRequest, 400),
    (UnknownNamespace("no chunks in 'x'", "namespace"), NotFound, 404),
])
def test_component_errors_reach_the_wire_as_serving_errors(
        exc: ParamError, kind: type[SwitchyardError], status: int) -> None:
    err = as_switchyard_error(exc)
    assert type(err) is kind and err.status == status
    assert (err.message, err.param) == (exc.message, exc.param)


def test_serving_errors_pass_through_and_bugs_say_nothing() -> None:
    timeout = UpstreamTimeout("model 'x' did not answer in time")
    assert as_switchyard_error(timeout) is timeout
    bug = as_switchyard_error(KeyError("secret"))
    assert type(bug) is SwitchyardError and bug.status == 500 and "secret" not in bug.message
