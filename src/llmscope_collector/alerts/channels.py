"""Delivers one notification to one channel: signed webhook, Slack incoming webhook, or SMTP mail.

Every send has a timeout and raises `DeliveryError` saying whether a retry can help: a timeout,
a refused connection, HTTP 5xx/408/429 or an SMTP 4xx can; HTTP 4xx, a redirect or an SMTP 5xx
cannot (retrying a rejected request only delays the dead-letter record). Errors name the host
only: Slack webhook URLs carry their secret in the path. Each error also has a `public` sentence
without host, address or OS detail: what a project key sees in its dead letters (the admin and the
log get the detail), so failed deliveries cannot be used to map the network.

HTTP destinations go through `DestinationPolicy`: resolved once, checked, and connected to by the
checked address while the Host header and TLS server name stay the URL's host.
"""

from __future__ import annotations

import dataclasses
import http.client
import smtplib
import socket
import ssl
from typing import Any

from llmscope_collector import __version__
from llmscope_collector.alerts import messages
from llmscope_collector.alerts.destinations import (
    DestinationPolicy,
    DestinationRefused,
    PinnedAddress,
    UnresolvedDestination,
)
from llmscope_collector.alerts.outbox import Delivery
from llmscope_collector.alerts.rules import EmailChannel, SlackChannel, WebhookChannel
from llmscope_collector.alerts.signing import sign

SMTP_TLS_MODES = ("starttls", "ssl", "none")
_RETRYABLE_HTTP = frozenset({408, 425, 429})
_USER_AGENT = f"llmscope-alerts/{__version__}"


class DeliveryError(Exception):
    """`str(err)` is the detail (admin, log); `public` the same failure without where or why exactly."""

    def __init__(self, message: str, *, retryable: bool, public: str) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.public = public


UNREACHABLE = "the receiver could not be reached"
REFUSED = "the destination is not allowed (see LLMSCOPE_ALERTS_ALLOW_DESTINATIONS)"
MAIL_FAILED = "the mail server did not accept the message"


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


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; `host` (Host header) stays the URL's."""

    def __init__(self, pinned: PinnedAddress, timeout: float) -> None:
        super().__init__(pinned.host, pinned.port, timeout=timeout)
        self._address = pinned.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked address, verified against the URL's host name (SNI and certificate)."""

    def __init__(self, pinned: PinnedAddress, timeout: float) -> None:
        super().__init__(pinned.host, pinned.port, timeout=timeout)
        self._address = pinned.address
        self._tls = ssl.create_default_context()

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class Senders:
    """Sends deliveries; thread-safe (one connection per send)."""

    def __init__(self, smtp: SmtpConfig, *, timeout_s: float, destinations: DestinationPolicy | None = None) -> None:
        self._smtp = smtp
        self._timeout_s = timeout_s
        self._destinations = destinations or DestinationPolicy()

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
        pinned = self._pin(url)
        host = f"{pinned.host}:{pinned.port}"
        all_headers = {"content-type": "application/json", "user-agent": _USER_AGENT, **headers}
        connection_type = _PinnedHTTPSConnection if pinned.scheme == "https" else _PinnedHTTPConnection
        connection = connection_type(pinned, self._timeout_s)
        try:
            connection.request("POST", pinned.target, body=body, headers=all_headers)
            response = connection.getresponse()
            response.read(64 * 1024)
            status = response.status
        except (http.client.HTTPException, OSError) as err:
            raise DeliveryError(f"cannot reach {host}: {err}", retryable=True, public=UNREACHABLE) from None
        finally:
            connection.close()
        if status >= 300:  # a redirected POST would be re-sent as a GET without its body: report it
            retryable = status >= 500 or status in _RETRYABLE_HTTP
            public = f"the receiver answered HTTP {status // 100}xx"
            raise DeliveryError(f"HTTP {status} from {host}", retryable=retryable, public=public)

    def _pin(self, url: str) -> PinnedAddress:
        try:
            return self._destinations.pin(url)
        except DestinationRefused as err:
            raise DeliveryError(str(err), retryable=False, public=REFUSED) from None
        except UnresolvedDestination as err:
            raise DeliveryError(str(err), retryable=True, public=UNREACHABLE) from None

    def _mail(self, message: Any) -> None:
        cfg = self._smtp
        if not cfg.enabled:
            raise DeliveryError("email is not configured: set LLMSCOPE_SMTP_HOST", retryable=False, public=MAIL_FAILED)
        try:
            with self._connect() as smtp:
                if cfg.tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.username:
                    smtp.login(cfg.username, cfg.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as err:
            refused = f"SMTP refused every recipient: {sorted(err.recipients)}"
            raise DeliveryError(refused, retryable=False, public=refused) from None
        except smtplib.SMTPResponseException as err:
            detail = f"SMTP {err.smtp_code} from {cfg.host}"
            raise DeliveryError(detail, retryable=err.smtp_code < 500, public=MAIL_FAILED) from None
        except (smtplib.SMTPException, OSError) as err:
            raise DeliveryError(f"SMTP {cfg.host}:{cfg.port}: {err}", retryable=True, public=MAIL_FAILED) from None

    def _connect(self) -> smtplib.SMTP:
        cfg = self._smtp
        if cfg.tls == "ssl":
            return smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=self._timeout_s, context=ssl.create_default_context())
        return smtplib.SMTP(cfg.host, cfg.port, timeout=self._timeout_s)
