"""`/v1/scores`: attach scores to traces, spans and sessions, and list them.

A posted score is acknowledged only once it is in the write-ahead log, like a span: the scores
travel as OTLP `gen_ai.evaluation.result` events (`processors.scores.carrier_request`) through the
collector's own exporter, so replay, partitioning and the bucket apply to them unchanged.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromQuery, QueryParameter, SkipValidation
from litestar.response import Stream

from llmscope_collector.api.arrow import arrow_response, arrow_schema, batches, wants_arrow
from llmscope_collector.api.controllers.traces import UNAUTHENTICATED, From, ScoreReader, To
from llmscope_collector.api.schemas import ErrorBody
from llmscope_collector.errors import InvalidPayload, Unavailable
from llmscope_collector.processors.scores import carrier_request
from llmscope_collector.query.filters import InvalidFilter, TimeRange
from llmscope_collector.query.models import Score, ScoreList

# Appends an OTLP request for a project to the WAL (the collector's exporter); raises
# `Unavailable` when the collector cannot take it now.
ScoreIngest = Callable[[bytes, str], object]
# The dependency as handlers take it (an object of the server, not request data: not validated).
ScoreWriter = NamedDependency[SkipValidation[ScoreIngest | None]]

SCORE_SCHEMA = arrow_schema(Score)  # the score list's Arrow columns: the declared score columns
_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-fA-F]{16}$")
MAX_BATCH = 1000


class ScoreIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A score to attach: `value` is a number, a boolean or a category (a string)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    value: bool | float | Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    trace_id: str | None = None
    span_id: str | None = None
    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=400)] | None = None
    comment: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    source: Literal["human", "api", "eval"] = "api"
    author: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    time_unix_nano: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None  # same id: replaces


class ScoreBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    scores: Annotated[list[ScoreIn], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


ScoreBody = Annotated[ScoreIn, Body(description="A score; see docs/api.md")]
BatchBody = Annotated[ScoreBatch, Body(description=f"Up to {MAX_BATCH} scores")]


class ScoresAccepted(msgspec.Struct, kw_only=True):
    """The ids of the accepted scores (generated when not given): send one again to replace it."""

    ids: list[str]


_BAD = {
    400: ResponseSpec(data_container=ErrorBody, description="A score is invalid; the body says which and why"),
    503: ResponseSpec(data_container=ErrorBody, description="The collector cannot take data now; retry"),
    **UNAUTHENTICATED,
}


class ScoreController(Controller):
    path = "/v1/scores"
    tags = ["scores"]

    @post(
        "/",
        operation_id="createScore",
        summary="Attach a score to a trace, a span or a session (durable when answered)",
        responses=_BAD,
        status_code=201,
        sync_to_thread=True,
    )
    def create(
        self, data: ScoreBody, caller_project: NamedDependency[str], score_ingest: ScoreWriter
    ) -> ScoresAccepted:
        return _accept([data], caller_project, score_ingest)

    @post(
        "/batch",
        operation_id="createScores",
        summary=f"Attach up to {MAX_BATCH} scores in one durable write",
        responses=_BAD,
        status_code=201,
        sync_to_thread=True,
    )
    def create_batch(
        self, data: BatchBody, caller_project: NamedDependency[str], score_ingest: ScoreWriter
    ) -> ScoresAccepted:
        return _accept(data.scores, caller_project, score_ingest)

    @get(
        "/",
        operation_id="listScores",
        summary="Scores, newest first: of one trace, span or session, or by name over a time range",
        description="With `Accept: application/vnd.apache.arrow.stream`: an Arrow IPC stream of the same rows; over "
        "a time range, every score of it (no `limit`), read and sent in record batches.",
        responses={
            200: ResponseSpec(data_container=ScoreList, description="The scores (or an Arrow stream of them)"),
            400: ResponseSpec(data_container=ErrorBody, description="Invalid parameter"),
            **UNAUTHENTICATED,
        },
        sync_to_thread=True,
    )
    def list_scores(
        self,
        request: Request[Any, Any, Any],
        caller_project: NamedDependency[str],
        score_store: ScoreReader,
        trace_id: FromQuery[str | None] = None,
        span_id: Annotated[str | None, QueryParameter(description="Needs trace_id")] = None,
        session_id: FromQuery[str | None] = None,
        name: FromQuery[str | None] = None,
        from_: From = None,
        to: To = None,
        limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
    ) -> ScoreList | Stream:
        if wants_arrow(request) and trace_id is None and session_id is None and span_id is None:
            window = TimeRange.parse(from_, to)  # every score of the range (no limit), straight from the files
            rows: Iterator[dict[str, Any]] = iter(())
            if score_store is not None:
                rows = score_store.stream(caller_project, name, window.from_ns, window.to_ns)
            return arrow_response(SCORE_SCHEMA, batches(rows, SCORE_SCHEMA), f"llmscope-{caller_project}-scores")
        if score_store is None:
            return ScoreList(scores=[])
        if span_id is not None:
            if trace_id is None:
                raise InvalidFilter("span_id", "needs trace_id")
            scores = score_store.for_span(caller_project, _trace_id(trace_id), _span_id(span_id))
        elif trace_id is not None:
            scores = score_store.for_trace(caller_project, _trace_id(trace_id))
        elif session_id is not None:
            scores = score_store.for_session(caller_project, session_id)
        else:
            window = TimeRange.parse(from_, to)
            scores = score_store.recent(caller_project, name, window.from_ns, window.to_ns, limit)
        if name is not None:
            scores = [s for s in scores if s.name == name]
        if wants_arrow(request):
            rows = (msgspec.to_builtins(score) for score in scores[:limit])
            return arrow_response(SCORE_SCHEMA, batches(rows, SCORE_SCHEMA), f"llmscope-{caller_project}-scores")
        return ScoreList(scores=scores[:limit])


def _trace_id(value: str) -> str:
    if not _TRACE_ID.match(value):
        raise InvalidFilter("trace_id", "must be 32 hex characters")
    return value.lower()


def _span_id(value: str) -> str:
    if not _SPAN_ID.match(value):
        raise InvalidFilter("span_id", "must be 16 hex characters")
    return value.lower()


def _accept(scores: list[ScoreIn], project: str, ingest: ScoreIngest | None) -> ScoresAccepted:
    """The ids of the scores the WAL now holds; a refusal is an HTTP error (one success shape in the schema)."""
    if ingest is None:
        raise HTTPException(status_code=503, detail="this server does not ingest (no collector)")
    rows = [_row(score, n) for n, score in enumerate(scores)]
    try:
        ingest(carrier_request(rows, time.time_ns()), project)
    except Unavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    except InvalidPayload as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    return ScoresAccepted(ids=[row["id"] for row in rows])


def _row(score: ScoreIn, n: int) -> dict[str, Any]:
    """A validated score as the carrier takes it; a 400 names the score (`scores[n]`) that is wrong."""
    where = f"scores[{n}]"
    if score.trace_id is None and score.session_id is None:
        raise InvalidFilter(where, "needs a trace_id or a session_id to attach to")
    if score.trace_id is not None and not _TRACE_ID.match(score.trace_id):
        raise InvalidFilter(f"{where}.trace_id", "must be 32 hex characters")
    if score.span_id is not None and (score.trace_id is None or not _SPAN_ID.match(score.span_id)):
        raise InvalidFilter(f"{where}.span_id", "must be 16 hex characters, with the span's trace_id")
    if isinstance(score.value, float) and not math.isfinite(score.value):
        raise InvalidFilter(f"{where}.value", "must be a finite number, a boolean or a category")
    return {
        "id": score.id or uuid.uuid4().hex,
        "name": score.name,
        "value": score.value,
        "trace_id": score.trace_id.lower() if score.trace_id else None,
        "span_id": score.span_id.lower() if score.span_id else None,
        "session_id": score.session_id,
        "comment": score.comment,
        "source": score.source,
        "author": score.author,
        "time_ns": score.time_unix_nano,
    }
