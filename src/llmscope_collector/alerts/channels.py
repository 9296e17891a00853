"""Delivers one notification to one channel: signed webhook, Slack incoming webhook, or SMTP mail.

Every send has a timeout and raises `DeliveryError` saying whether a retry can help: a timeout,
a refused connection, HTTP 5xx/408/429 or an SMTP 4xx can; HTTP 4xx, a redirect or an SMTP 5xx
cannot (retrying a rejected request only delays the dead-letter record). Errors name the host
only: Slack webhook URLs carry their secret in the path.
"""

from __future__ import annotations

import dataclasses
import http.client
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from llmscope_collector import __version__
from llmscope_collector.alerts import messages
from llmscope_collector.alerts.outbox import Delivery
from llmscope_collector.alerts.rules import EmailChannel, SlackChannel, WebhookChannel
from llmscope_collector.alerts.signing import sign

SMTP_TLS_MODES = ("starttls", "ssl", "none")
_RETRYABLE_HTTP = frozenset({408, 425, 429})
_USER_AGENT = f"llmscope-alerts/{__version__}"


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclasses.dataclass(frozen=True)
class SmtpConfig:
    """The collector's outgoing mail server (`LLMSCOPE_SMTP_*`); empty `host` disables email channels."""

    host: str = ""
    port: int = 587
    tls: str = "starttls"
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    sender: str = "llmscope@localhost"

    @property
    def enabled(self) -> bool:
        return bool(self.host)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would be re-sent as a GET without its body: report it instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class Senders:
    """Sends deliveries; thread-safe (one connection per send)."""

    def __init__(self, smtp: SmtpConfig, *, timeout_s: float) -> None:
        self._smtp = smtp
        self._timeout_s = timeout_s

    def send(self, delivery: Delivery) -> None:
        channel = delivery.channel
        if isinstance(channel, WebhookChannel):
            body = messages.webhook_body(delivery.id, delivery.event)
            headers = sign(channel.secret or "", body) | {"x-llmscope-delivery-id": delivery.id}
            self._post(channel.url, body, headers)
        elif isinstance(channel, SlackChannel):
            self._post(channel.url, messages.slack_body(delivery.event), {})
        elif isinstance(channel, EmailChannel):
            self._mail(messages.email_message(delivery.event, self._smtp.sender, channel.to, delivery.id))

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        host = urllib.parse.urlsplit(url).netloc
        all_headers = {"content-type": "application/json", "user-agent": _USER_AGENT, **headers}
        request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
        try:
            with _OPENER.open(request, timeout=self._timeout_s) as response:
                response.read(64 * 1024)
        except urllib.error.HTTPError as err:
            retryable = err.code >= 500 or err.code in _RETRYABLE_HTTP
            raise DeliveryError(f"HTTP {err.code} from {host}", retryable=retryable) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", None) or err
            raise DeliveryError(f"cannot reach {host}: {reason}", retryable=True) from None

    def _mail(self, message: Any) -> None:
        cfg = self._smtp
        if not cfg.enabled:
            raise DeliveryError("email is not configured: set LLMSCOPE_SMTP_HOST", retryable=False)
        try:
            with self._connect() as smtp:
                if cfg.tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.username:
                    smtp.login(cfg.username, cfg.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as err:
            raise DeliveryError(f"SMTP refused every recipient: {sorted(err.recipients)}", retryable=False) from None
        except smtplib.SMTPResponseException as err:
            raise DeliveryError(f"SMTP {err.smtp_code} from {cfg.host}", retryable=err.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as err:
            raise DeliveryError(f"SMTP {cfg.host}:{cfg.port}: {err}", retryable=True) from None

    def _connect(self) -> smtplib.SMTP:
        cfg = self._smtp
        if cfg.tls == "ssl":
            return smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=self._timeout_s, context=ssl.create_default_context())
        return smtplib.SMTP(cfg.host, cfg.port, timeout=self._timeout_s)
