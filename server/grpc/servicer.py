"""The gRPC front door: proto <-> pipeline types at this edge only, errors -> status codes.

Protobuf messages never leave this package (conversions.py converts them). Each RPC converts
its request, awaits the pipeline inside the handler task (so a gRPC deadline or a client
cancel, which cancel that task, also cancel the upstream call), converts the result back,
and maps any error once, through `as_switchyard_error`, to `context.abort(<grpc_code>,
message)`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from switchyard.server.auth import CURRENT_KEY_ID
from switchyard.server.errors import (
    InvalidRequest,
    SwitchyardError,
    as_switchyard_error,
)
from switchyard.server.grpc.conversions import (
    Context,
    chat_request_from_pb,
    chat_result_to_pb,
    decision_to_pb,
    delta_to_pb,
    feedback_from_pb,
    hit_to_pb,
    message_to_pb,
    messages_from_pb,
    positive_or_none,
    stream_event,
)
from switchyard.server.pipeline_types import ChatRequest
from switchyard.server.security import new_request_id
from switchyard.server.streaming import merge_final
from switchyard.v1 import gateway_pb2 as pb
from switchyard.v1 import gateway_pb2_grpc

if TYPE_CHECKING:
    from switchyard.server.pipeline import Pipeline

logger = logging.getLogger(__name__)

DEFAULT_RECALL_K = 10
DEFAULT_RECALL_MODE = "hybrid"


class GatewayServicer(gateway_pb2_grpc.GatewayServicer):
    """switchyard.v1.Gateway over the one `Pipeline` that the HTTP proxy also calls."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def Chat(self, request: pb.ChatRequest, context: Context) -> pb.ChatResponse:
        chat_request = await self._admitted(request, context, stream=False)
        try:
            result = await self._pipeline.chat(chat_request)
            return chat_result_to_pb(result)
        except Exception as exc:  # noqa: BLE001 - every error becomes a status, once
            error = exc
        await abort(context, error)

    async def StreamChat(
        self, request: pb.ChatRequest, context: Context
    ) -> AsyncIterator[pb.StreamChatResponse]:
        chat_request = await self._admitted(request, context, stream=True)
        try:
            stream = await self._pipeline.open_stream(chat_request)
        except Exception as exc:  # noqa: BLE001
            await abort(context, exc)
        error: Exception | None = None
        try:
            yield stream_event(stream, start=pb.StreamStart(
                decision=decision_to_pb(stream.decision),
                compaction=pb.CompactionStats(tokens_before=stream.tokens_before,
                                              tokens_after=stream.tokens_after),
            ))
            async for delta in merge_final(stream):
                yield stream_event(stream, delta=delta_to_pb(delta))
        except Exception as exc:  # noqa: BLE001 - a CancelledError passes through to finally
            error = exc
        finally:
            await stream.aclose()  # on cancel, deadline or error: stop the upstream request
        if error is not None:
            await abort(context, error)

    async def _admitted(self, request: pb.ChatRequest, context: Context, *,
                        stream: bool) -> ChatRequest:
        """The pipeline's request; one refused here gets its log row (as on HTTP), then the
        INVALID_ARGUMENT status."""
        try:
            return chat_request_from_pb(request, context, stream=stream)
        except Exception as exc:  # noqa: BLE001
            error = exc
        from google.protobuf.json_format import MessageToJson

        await self._pipeline.recorder.rejected(
            request.request_id or new_request_id(), "grpc.StreamChat" if stream else "grpc.Chat",
            MessageToJson(request).encode(), request.ByteSize(), error, CURRENT_KEY_ID.get())
        await abort(context, error)

    async def Route(self, request: pb.ChatRequest, context: Context) -> pb.RouteResponse:
        try:
            chat_request = chat_request_from_pb(request, context, stream=False)
            decision = await self._pipeline.route(chat_request)
            return pb.RouteResponse(decision=decision_to_pb(decision))
        except Exception as exc:  # noqa: BLE001
            error = exc
        await abort(context, error)

    async def Compact(
        self, request: pb.CompactRequest, context: Context
    ) -> pb.CompactResponse:
        try:
            compaction = await self._pipeline.compact(
                messages_from_pb(request.messages),
                budget=positive_or_none(request, "budget"),
                model=request.model if request.HasField("model") else None,
                session_id=request.session_id,
            )
            return pb.CompactResponse(
                messages=[message_to_pb(m) for m in compaction.messages],
                kept_ids=list(compaction.kept_ids),
                dropped_ids=list(compaction.dropped_ids),
                tokens_before=compaction.tokens_before,
                tokens_after=compaction.tokens_after,
                summary=compaction.summary or "",
            )
        except Exception as exc:  # noqa: BLE001
            error = exc
        await abort(context, error)

    async def Recall(self, request: pb.RecallRequest, context: Context) -> pb.RecallResponse:
        try:
            if request.k < 0:
                raise InvalidRequest(
                    f"k must be positive (0 means {DEFAULT_RECALL_K}); got {request.k}", param="k"
                )
            hits = await self._pipeline.recall(
                request.query,
                namespaces=list(request.namespaces),
                k=request.k or DEFAULT_RECALL_K,
                mode=request.mode or DEFAULT_RECALL_MODE,
            )
            return pb.RecallResponse(hits=[hit_to_pb(h) for h in hits])
        except Exception as exc:  # noqa: BLE001
            error = exc
        await abort(context, error)

    async def Index(self, request: pb.IndexRequest, context: Context) -> pb.IndexResponse:
        try:
            documents = [(d.text, d.source) for d in request.documents]
            ids = await self._pipeline.index(request.namespace, documents)
            return pb.IndexResponse(chunk_ids=ids)
        except Exception as exc:  # noqa: BLE001
            error = exc
        await abort(context, error)

    async def Feedback(
        self, request: pb.FeedbackRequest, context: Context
    ) -> pb.FeedbackResponse:
        try:
            await self._pipeline.feedback(request.request_id, **feedback_from_pb(request))
            return pb.FeedbackResponse()
        except Exception as exc:  # noqa: BLE001
            error = exc
        await abort(context, error)


def rpc_handlers(servicer: GatewayServicer) -> grpc.GenericRpcHandler:
    """The Gateway's method handlers, parsing request bytes here rather than in grpc.

    A deserializer that raises inside grpc ends the call as UNKNOWN and logs a traceback per
    request; parsing in the handler turns corrupt bytes into a plain INVALID_ARGUMENT.
    """
    service = pb.DESCRIPTOR.services_by_name["Gateway"]
    handlers = {}
    for method in service.methods:
        request_cls = getattr(pb, method.input_type.name)
        response_cls = getattr(pb, method.output_type.name)
        impl = getattr(servicer, method.name)
        if method.server_streaming:
            handler = grpc.unary_stream_rpc_method_handler(
                _parsing_stream(impl, request_cls),
                response_serializer=response_cls.SerializeToString)
        else:
            handler = grpc.unary_unary_rpc_method_handler(
                _parsing_unary(impl, request_cls),
                response_serializer=response_cls.SerializeToString)
        handlers[method.name] = handler
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def _parsing_unary(impl: Any, request_cls: Any) -> Any:
    async def handler(raw: bytes, context: Context) -> Any:
        return await impl(await _parse(raw, request_cls, context), context)

    return handler


def _parsing_stream(impl: Any, request_cls: Any) -> Any:
    async def handler(raw: bytes, context: Context) -> AsyncIterator[Any]:
        async for item in impl(await _parse(raw, request_cls, context), context):
            yield item

    return handler


async def _parse(raw: bytes, request_cls: Any, context: Context) -> Any:
    from google.protobuf.message import DecodeError

    try:
        return request_cls.FromString(raw)
    except DecodeError as exc:
        error = InvalidRequest(f"the request is not a valid {request_cls.DESCRIPTOR.full_name}: "
                               f"{exc}")
    await abort(context, error)


async def abort(context: Context, exc: BaseException) -> NoReturn:
    """End the RPC with the status code the error table assigns (server/errors.py)."""
    error = as_switchyard_error(exc)
    if not isinstance(exc, SwitchyardError) and error.grpc_code == "INTERNAL":
        logger.error("gRPC handler failed", exc_info=exc)  # never the metadata: it holds keys
    await context.abort(grpc.StatusCode[error.grpc_code], error.message)
    raise AssertionError("context.abort returned")  # it always raises; this satisfies NoReturn
