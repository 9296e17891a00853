"""Projects, API keys and the admin token; `AuthPolicy` decides which project a request writes to."""

from llmscope_collector.auth.admin_token import AdminToken, load_admin_token
from llmscope_collector.auth.policy import API_KEY_HEADER, PROJECT_HEADER, AuthPolicy, effective_mode, is_loopback
from llmscope_collector.auth.store import (
    DEFAULT_PROJECT,
    AlreadyExists,
    AuthStore,
    AuthStoreError,
    InvalidName,
    KeyRecord,
    ProjectRecord,
    UnknownKey,
    UnknownProject,
)

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_PROJECT",
    "PROJECT_HEADER",
    "AdminToken",
    "AlreadyExists",
    "AuthPolicy",
    "AuthStore",
    "AuthStoreError",
    "InvalidName",
    "KeyRecord",
    "ProjectRecord",
    "UnknownKey",
    "UnknownProject",
    "effective_mode",
    "is_loopback",
    "load_admin_token",
]
