"""Who may send spans, and to which project: one decision shared by gRPC, HTTP and the API.

Secure by default: with `auth=auto`, API keys are required as soon as the collector listens beyond
loopback; on loopback they are optional and key-less spans go to `default` (or to the project named
in `x-llmscope-project`). A key that is present but wrong is always rejected, never ignored, so a
revoked key cannot silently fall back to another project.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Literal

from llmscope_collector.auth.admin_token import AdminToken
from llmscope_collector.auth.store import DEFAULT_PROJECT, AuthStore
from llmscope_collector.errors import Unauthenticated
from llmscope_collector.storage.layout import valid_project

API_KEY_HEADER = "x-llmscope-api-key"
PROJECT_HEADER = "x-llmscope-project"

Mode = Literal["optional", "required"]
HeaderGetter = Callable[[str], "str | None"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def effective_mode(auth: str, host: str) -> Mode:
    """`auto` → required unless `host` is loopback; `off` → optional anywhere."""
    if auth == "required" or (auth == "auto" and not is_loopback(host)):
        return "required"
    return "optional"


def bearer_or_key(get: HeaderGetter) -> str | None:
    """The credential of a request: `authorization: Bearer …` or `x-llmscope-api-key`."""
    authorization = get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("the authorization header must read 'Bearer <API key>'")
        return value.strip()
    key = get(API_KEY_HEADER)
    return key.strip() if key else None


class AuthPolicy:
    """Resolves request credentials to a project, or raises `Unauthenticated`."""

    def __init__(self, store: AuthStore, admin: AdminToken, *, setting: str, host: str) -> None:
        self.store = store
        self.admin = admin
        self.setting = setting
        self.mode = effective_mode(setting, host)

    def describe(self) -> str:
        """One line for the start-up banner."""
        if self.mode == "required":
            why = "--auth required" if self.setting == "required" else "listening beyond loopback"
            return f"auth: API keys required ({why})"
        if self.setting == "off":
            return "auth: OFF (--auth off): anyone who reaches the ports can write; keys only select projects"
        return f"auth: API keys optional on loopback; key-less spans go to project '{DEFAULT_PROJECT}'"

    def project_for(self, get: HeaderGetter) -> str:
        """The project a request writes to (or reads from)."""
        key = bearer_or_key(get)
        if key is not None:
            project = self.store.verify(key)
            if project is None:
                raise Unauthenticated("unknown or revoked API key")
            return project
        if self.mode == "required":
            raise Unauthenticated(
                f"an API key is required: send 'authorization: Bearer <key>' or '{API_KEY_HEADER}: <key>'"
            )
        return self._keyless_project(get(PROJECT_HEADER))

    @staticmethod
    def _keyless_project(hint: str | None) -> str:
        if not hint:
            return DEFAULT_PROJECT
        if not valid_project(hint):
            raise Unauthenticated(f"{PROJECT_HEADER} {hint!r} is not a valid project name")
        return hint

    def is_admin(self, get: HeaderGetter) -> bool:
        try:
            token = bearer_or_key(get)
        except Unauthenticated:
            return False
        return token is not None and self.admin.matches(token)
