"""`/v1/projects`: projects, their rate limits and their API keys; admin token only.

A new key is returned once, in the creation response; afterwards only its id and prefix are shown.
Revoking a key stops it on both receivers and the API with the next request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation, RequestBody
from litestar.params import FromPath, JSONBody

from llmscope_collector.api.auth import admin_only
from llmscope_collector.api.schemas import ErrorBody
from llmscope_collector.auth.keys import display_prefix
from llmscope_collector.auth.policy import AuthPolicy
from llmscope_collector.auth.store import KeyRecord, ProjectRecord

SpansPerSecond = Annotated[float, msgspec.Meta(ge=0, description="Token-bucket rate; 0 = unlimited")]
Burst = Annotated[int, msgspec.Meta(ge=0, description="Bucket size in spans; 0 = one second's worth")]


@dataclasses.dataclass
class _OptionalBody(Operation):
    """An operation whose JSON body may be left out (Litestar documents every body as required)."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


class ProjectCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    rate_limit_spans_per_s: SpansPerSecond | None = None
    rate_limit_burst: Burst | None = None


class ProjectUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Both fields are set as given; null means "follow the global limit"."""

    rate_limit_spans_per_s: SpansPerSecond | None = None
    rate_limit_burst: Burst | None = None


class Project(msgspec.Struct, kw_only=True):
    name: str
    created_at: dt.datetime
    rate_limit_spans_per_s: float | None
    rate_limit_burst: int | None
    active_keys: int


class KeyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""


class ApiKey(msgspec.Struct, kw_only=True):
    id: str
    prefix: str
    name: str
    project: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class CreatedApiKey(ApiKey, kw_only=True):
    key: str


_ERRORS = {
    400: ResponseSpec(data_container=ErrorBody, description="Invalid name or body"),
    401: ResponseSpec(data_container=ErrorBody, description="Missing or wrong admin token"),
    403: ResponseSpec(data_container=ErrorBody, description="A project API key was used"),
}
_NOT_FOUND = {404: ResponseSpec(data_container=ErrorBody, description="Unknown project or key")}


def _project(record: ProjectRecord, policy: AuthPolicy) -> Project:
    active = sum(1 for k in policy.store.keys_of(record.name) if k.revoked_at is None)
    return Project(
        name=record.name,
        created_at=record.created_at,
        rate_limit_spans_per_s=record.rate_limit_spans_per_s,
        rate_limit_burst=record.rate_limit_burst,
        active_keys=active,
    )


def _key(record: KeyRecord) -> ApiKey:
    return ApiKey(
        id=record.id,
        prefix=display_prefix(record.id),
        name=record.name,
        project=record.project,
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
    )


class ProjectController(Controller):
    path = "/v1/projects"
    tags = ["projects"]
    guards = [admin_only]

    @post("/", operation_id="createProject", responses={**_ERRORS, 409: ResponseSpec(ErrorBody)}, sync_to_thread=True)
    def create_project(self, data: JSONBody[ProjectCreate], auth_policy: NamedDependency[AuthPolicy]) -> Project:
        record = auth_policy.store.create_project(
            data.name, rate_limit_spans_per_s=data.rate_limit_spans_per_s, rate_limit_burst=data.rate_limit_burst
        )
        return _project(record, auth_policy)

    @get("/", operation_id="listProjects", responses=_ERRORS, sync_to_thread=True)
    def list_projects(self, auth_policy: NamedDependency[AuthPolicy]) -> list[Project]:
        return [_project(p, auth_policy) for p in auth_policy.store.projects()]

    @get("/{name:str}", operation_id="getProject", responses={**_ERRORS, **_NOT_FOUND}, sync_to_thread=True)
    def get_project(self, auth_policy: NamedDependency[AuthPolicy], name: FromPath[str]) -> Project:
        return _project(auth_policy.store.get_project(name), auth_policy)

    @patch("/{name:str}", operation_id="updateProject", responses={**_ERRORS, **_NOT_FOUND}, sync_to_thread=True)
    def update_project(
        self, data: JSONBody[ProjectUpdate], auth_policy: NamedDependency[AuthPolicy], name: FromPath[str]
    ) -> Project:
        record = auth_policy.store.set_rate_limit(name, data.rate_limit_spans_per_s, data.rate_limit_burst)
        return _project(record, auth_policy)

    @post(
        "/{name:str}/keys",
        operation_id="createApiKey",
        operation_class=_OptionalBody,
        summary="Create an API key; the key is in this response only",
        responses={**_ERRORS, **_NOT_FOUND},
        sync_to_thread=True,
    )
    def create_key(
        self, auth_policy: NamedDependency[AuthPolicy], name: FromPath[str], data: JSONBody[KeyCreate | None] = None
    ) -> CreatedApiKey:
        record, key = auth_policy.store.create_key(name, data.name if data else "")
        return CreatedApiKey(**msgspec.structs.asdict(_key(record)), key=key)

    @get("/{name:str}/keys", operation_id="listApiKeys", responses={**_ERRORS, **_NOT_FOUND}, sync_to_thread=True)
    def list_keys(self, auth_policy: NamedDependency[AuthPolicy], name: FromPath[str]) -> list[ApiKey]:
        return [_key(k) for k in auth_policy.store.keys_of(name)]

    @delete(
        "/{name:str}/keys/{key_id:str}",
        operation_id="revokeApiKey",
        responses={**_ERRORS, **_NOT_FOUND},
        sync_to_thread=True,
    )
    def revoke_key(self, auth_policy: NamedDependency[AuthPolicy], name: FromPath[str], key_id: FromPath[str]) -> None:
        auth_policy.store.revoke_key(name, key_id)
