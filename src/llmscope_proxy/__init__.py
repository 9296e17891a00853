"""llmscope's capture proxy: point an app's OpenAI/Anthropic base URL at it and every call is traced.

For apps that cannot add the SDK (another language, curl, a vendor tool with only a base-URL
setting). See docs/proxy.md.
"""

from llmscope_proxy._app import ProxyApp, ProxyConfig
from llmscope_proxy._headers import ProxyAuthError
from llmscope_proxy._server import ProxyPortError, ProxyServer
from llmscope_proxy._spans import Sink, SpanRecorder, http_sink

__all__ = [
    "ProxyApp",
    "ProxyAuthError",
    "ProxyConfig",
    "ProxyPortError",
    "ProxyServer",
    "Sink",
    "SpanRecorder",
    "http_sink",
]
