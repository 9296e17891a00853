"""Collector settings: one dataclass declares each option and its default; its env var is derived.

Every field `name` is read from `LLMSCOPE_<NAME>` (`env_var`), so a new option needs one line.

Precedence is command-line flag > environment > default. Validation happens once, at start, so a
misconfigured server fails with a sentence instead of a traceback halfway through serving.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_OTLP_GRPC_PORT = 4317
DEFAULT_OTLP_HTTP_PORT = 4318
AUTH_MODES = ("auto", "required", "off")
LOG_FORMATS = ("text", "json")
_PORT_FIELDS = ("otlp_grpc_port", "otlp_http_port", "api_port")
DEFAULT_API_PORT = 8000
DEFAULT_DATA_DIR = "./llmscope-data"


class SettingsError(ValueError):
    """A setting is invalid; the message says which and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the embedded collector + API needs to start."""

    host: str = DEFAULT_HOST
    otlp_grpc_port: int = DEFAULT_OTLP_GRPC_PORT
    api_port: int = DEFAULT_API_PORT
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    flush_rows: int = 10_000
    flush_bytes: int = 64 * 1024 * 1024  # Arrow bytes buffered (spans + content) that also start a flush
    flush_interval_s: float = 1.0
    grpc_max_receive_bytes: int = 64 * 1024 * 1024
    grpc_workers: int = 8
    otlp_http_port: int = DEFAULT_OTLP_HTTP_PORT
    http_max_body_bytes: int = 64 * 1024 * 1024
    http_workers: int = 8
    # What an OTLP/HTTP client may hold (docs/collector.md "Limits and deadlines"): seconds to finish the
    # request headers, to send the body once the headers are in, idle between requests; and the body
    # bytes held by all requests together (0 = four maximal bodies).
    http_header_timeout_s: float = 10.0
    http_body_timeout_s: float = 30.0
    http_idle_timeout_s: float = 30.0
    http_max_buffered_bytes: int = 0
    # auto: API keys required unless listening on loopback only; required; off (explicit opt-out).
    auth: str = "auto"
    admin_token: str = dataclasses.field(default="", repr=False)
    # Per-project span rate (token bucket); 0 = unlimited. Burst 0 = one second's worth.
    rate_limit_spans_per_s: float = 0.0
    rate_limit_burst: int = 0
    # Per-span limits; over them values are truncated / attributes dropped and the span is marked. 0 = no limit.
    max_span_attributes: int = 1024
    max_attribute_value_bytes: int = 1024 * 1024
    max_span_events: int = 1024  # events beyond are dropped and counted
    max_name_bytes: int = 4096  # span and event names, attribute keys: cut and marked beyond
    log_format: str = "text"
    # Durability (WAL) and storage maintenance; see docs/collector.md "Durability and storage".
    wal_dir: str = ""  # empty: <data_dir>/wal
    wal_segment_bytes: int = 64 * 1024 * 1024
    wal_fsync: bool = True  # off only for benchmarks: an ack then no longer survives a power cut
    wal_max_lag_bytes: int = 512 * 1024 * 1024  # WAL not yet in Parquet above this: refuse (retryable)
    min_free_disk_bytes: int = 256 * 1024 * 1024
    dedupe_window_spans: int = 250_000
    # Processes decoding, normalizing and pricing WAL records under load (the per-span Python work,
    # off the receivers' GIL); one per core but the collector's own (its receivers, WAL and writer keep
    # about a core busy), at least 1, up to 4. On 2 cores (the ingest bench, 2 runs each, alternating),
    # 1 worker against 2: spans written per second 36.3k / 35.1k -> 41.6k / 39.5k, CPU per written span
    # 43.6 / 44.9 -> 40.5 / 42.3 us, the tree's peak RSS 504 / 502 -> 417 / 415 MB (a third process on two
    # cores only added switching and its ~66 MB). 0 decodes inline, in the collector's own process.
    decode_workers: int = dataclasses.field(default_factory=lambda: max(1, min(4, (os.cpu_count() or 1) - 1)))
    # Read OTLP protobuf with the native decoder when it is built (processors/native.py); false forces
    # the pure-Python path (upb), which gives the same results with more CPU per span.
    decode_native: bool = True
    compaction_interval_s: float = 60.0  # 0 disables
    compaction_target_rows: int = 500_000
    compaction_target_bytes: int = 128 * 1024 * 1024
    retention_days: int = 30  # 0 keeps data forever
    retention_project_days: str = ""  # per-project overrides, e.g. "staging=7,audit=365"
    retention_interval_s: float = 3600.0  # 0 disables the scheduled cleanup
    # Cluster mode (docs/scale.md): "s3://bucket/prefix" makes object storage the system of record
    # (endpoint and credentials from the standard AWS_* variables); empty = the data dir (the default).
    storage: str = ""
    collector_id: str = ""  # ends this collector's object keys; empty: a random id kept in the WAL dir
    bucket_sync_interval_s: float = 2.0  # how often the API's local mirror of the bucket is refreshed
    control_refresh_s: float = 2.0  # how often projects, keys and alert rules are re-read from the bucket
    lease_duration_s: float = 15.0  # alert evaluation and compaction leases; a dead holder is replaced within 5/3 of it
    # Data model and queries.
    prices_file: str = ""  # JSON/TOML model pattern → USD per million tokens; overrides genai-prices
    trace_idle_s: float = 300.0  # a trace without its root is shown "incomplete" after this much quiet
    # The query engine (docs/scale.md): "" or "duckdb" (embedded, the default), "clickhouse://host:8123/db"
    # (a ClickHouse server over HTTP), "chdb://[/dir]" (the ClickHouse engine in this process).
    query_engine: str = ""

    # Alerts (docs/alerts.md): evaluation cadence, notification delivery, outgoing mail.
    alerts_tick_s: float = 5.0  # how often due rules are looked at; 0 disables scheduled evaluation
    alerts_delivery_timeout_s: float = 10.0
    alerts_delivery_attempts: int = 6  # then the notification becomes a dead letter
    alerts_retry_base_s: float = 2.0  # first retry delay; doubles per attempt (with jitter)
    alerts_delivery_workers: int = 4
    # Hosts and networks (CIDR) webhook/Slack URLs may reach although they are not public addresses
    # (loopback, private, link-local...): "hooks.internal,10.1.0.0/16". Empty: public addresses only.
    alerts_allow_destinations: str = ""
    smtp_host: str = ""  # empty: email channels are refused
    smtp_port: int = 587
    smtp_tls: str = "starttls"  # starttls, ssl or none
    smtp_username: str = ""
    smtp_password: str = dataclasses.field(default="", repr=False)
    smtp_from: str = "llmscope@localhost"
    # Capture proxy (docs/proxy.md): apps point their OpenAI/Anthropic base URL at it. -1 = off,
    # 0 = any free port. Upstream URLs are what the provider's client takes as `base_url`.
    proxy_port: int = -1
    proxy_openai_base_url: str = "https://api.openai.com/v1"
    proxy_anthropic_base_url: str = "https://api.anthropic.com"
    proxy_capture_content: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `LLMSCOPE_*` variables, then explicit overrides (flags) on top."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(env_var(field.name))
            if raw is not None and raw != "":
                values[field.name] = _coerce(field.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return cls(**values)

    def validate(self, *, check_ports: bool = True) -> None:
        """Raise `SettingsError` with an actionable message if the server cannot start with these."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            if self.host != "localhost":
                raise SettingsError(f"host {self.host!r} is not an IP address (e.g. 127.0.0.1)") from None
        for name in _PORT_FIELDS:
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise SettingsError(f"{name} must be 0..65535, got {port} (set {env_var(name)})")
        used = [p for p in (getattr(self, n) for n in _PORT_FIELDS) if p]
        if len(used) != len(set(used)):
            raise SettingsError("otlp_grpc_port, otlp_http_port and api_port must differ; pick distinct ports")
        self._check_ingest_options()
        self._check_durability_options()
        self._check_alert_options()
        self._check_model_options()
        self._check_proxy_options(check_ports)
        if self.flush_rows < 1 or self.flush_interval_s <= 0:
            raise SettingsError("flush_rows must be >= 1 and flush_interval_s > 0")
        self._check_data_dir()
        self._check_storage()
        self._check_query_engine()
        if check_ports:
            for name in _PORT_FIELDS:
                _check_port_free(self.host, getattr(self, name), name)

    def _check_proxy_options(self, check_ports: bool) -> None:
        if self.proxy_port < 0:
            return
        if self.proxy_port > 65535:
            raise SettingsError(f"proxy_port must be 0..65535 (or -1: off), got {self.proxy_port} (set --proxy-port)")
        if self.proxy_port and self.proxy_port in {getattr(self, n) for n in _PORT_FIELDS}:
            raise SettingsError("proxy_port must differ from the OTLP and API ports; pick a distinct port")
        for name in ("proxy_openai_base_url", "proxy_anthropic_base_url"):
            if not str(getattr(self, name)).startswith(("http://", "https://")):
                raise SettingsError(f"{name} must be an http(s) URL, got {getattr(self, name)!r} (set {env_var(name)})")
        if check_ports:
            _check_port_free(self.host, self.proxy_port, "proxy_port")

    def _check_ingest_options(self) -> None:
        if self.auth not in AUTH_MODES:
            modes = ", ".join(AUTH_MODES)
            raise SettingsError(f"auth must be one of {modes}, got {self.auth!r} (set {env_var('auth')})")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(
                f"log_format must be text or json, got {self.log_format!r} (set {env_var('log_format')})"
            )
        for name in ("http_max_body_bytes", "http_workers"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be >= 1 (set {env_var(name)})")
        for name in ("http_header_timeout_s", "http_body_timeout_s", "http_idle_timeout_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be > 0 seconds (set {env_var(name)})")
        if self.http_max_buffered_bytes and self.http_max_buffered_bytes < self.http_max_body_bytes:
            raise SettingsError(
                "http_max_buffered_bytes must be 0 (automatic) or at least http_max_body_bytes, or no maximal body"
                f" could ever be read (set {env_var('http_max_buffered_bytes')})"
            )
        limits = ("max_span_attributes", "max_attribute_value_bytes", "max_span_events", "max_name_bytes")
        for name in ("rate_limit_spans_per_s", "rate_limit_burst", "http_max_buffered_bytes", *limits):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be >= 0, 0 meaning no limit (set {env_var(name)})")

    def _check_durability_options(self) -> None:
        from llmscope_collector.storage.retention import RetentionError, parse_project_days

        for name in (
            "wal_segment_bytes",
            "wal_max_lag_bytes",
            "compaction_target_rows",
            "compaction_target_bytes",
            "flush_bytes",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be >= 1 (set {env_var(name)})")
        for name in ("min_free_disk_bytes", "dedupe_window_spans", "decode_workers", "compaction_interval_s"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must be >= 0 (set {env_var(name)})")
        if self.retention_days < 0 or self.retention_interval_s < 0:
            raise SettingsError("retention_days and retention_interval_s must be >= 0 (0 = keep forever / no run)")
        try:
            parse_project_days(self.retention_project_days)
        except RetentionError as exc:
            raise SettingsError(f"{exc} (set {env_var('retention_project_days')})") from None

    def _check_model_options(self) -> None:
        from llmscope_collector.processors.pricing import PriceFileError, load_price_file

        if self.trace_idle_s <= 0:
            raise SettingsError(f"trace_idle_s must be > 0 (set {env_var('trace_idle_s')})")
        if self.prices_file:
            try:
                load_price_file(Path(self.prices_file))
            except PriceFileError as exc:
                raise SettingsError(f"{exc} (set {env_var('prices_file')})") from None

    def _check_alert_options(self) -> None:
        if self.alerts_tick_s < 0:
            raise SettingsError(
                f"alerts_tick_s must be >= 0, 0 = no scheduled evaluation (set {env_var('alerts_tick_s')})"
            )
        for name in ("alerts_delivery_timeout_s", "alerts_retry_base_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be > 0 (set {env_var(name)})")
        for name in ("alerts_delivery_attempts", "alerts_delivery_workers"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be >= 1 (set {env_var(name)})")
        from llmscope_collector.alerts.destinations import parse_allow_list

        try:
            parse_allow_list(self.alerts_allow_destinations)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if self.smtp_tls not in ("starttls", "ssl", "none"):
            raise SettingsError(
                f"smtp_tls must be starttls, ssl or none: {self.smtp_tls!r} (set {env_var('smtp_tls')})"
            )
        if not 1 <= self.smtp_port <= 65535:
            raise SettingsError(f"smtp_port must be 1..65535, got {self.smtp_port} (set {env_var('smtp_port')})")

    def _check_query_engine(self) -> None:
        engine = self.query_engine
        if engine in ("", "duckdb"):
            return
        if not engine.startswith(("clickhouse://", "clickhouses://", "chdb://")):
            raise SettingsError(
                f"query_engine must be duckdb, clickhouse://host:8123/db or chdb://, got {engine!r} "
                f"(set {env_var('query_engine')} or --query-engine)"
            )
        module = "chdb" if engine.startswith("chdb://") else "clickhouse_connect"
        try:
            __import__(module)
        except ImportError:
            raise SettingsError(f"--query-engine {engine} needs {module}: pip install 'llmscope[clickhouse]'") from None

    def _check_storage(self) -> None:
        from llmscope_collector.storage.layout import valid_collector_id
        from llmscope_collector.storage.objects import StorageUrl, StorageUrlError

        if self.storage:
            try:
                StorageUrl.parse(self.storage)
            except StorageUrlError as exc:
                raise SettingsError(f"{exc} (set {env_var('storage')} or --storage)") from None
            try:
                import obstore  # noqa: F401
            except ImportError:
                raise SettingsError("--storage s3://... needs the S3 client: pip install 'llmscope[s3]'") from None
        if self.collector_id and not valid_collector_id(self.collector_id):
            raise SettingsError(
                f"collector_id must be 1-32 lowercase letters or digits (set {env_var('collector_id')})"
            )
        for name in ("bucket_sync_interval_s", "control_refresh_s", "lease_duration_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be > 0 (set {env_var(name)})")

    def _check_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(f"data dir {self.data_dir} cannot be created: {exc.strerror}") from None
        if not os.access(self.data_dir, os.W_OK):
            raise SettingsError(f"data dir {self.data_dir} is not writable (set {env_var('data_dir')})")


ENV_PREFIX = "LLMSCOPE_"


def env_var(field: str) -> str:
    """The environment variable of a `Settings` field: `LLMSCOPE_` + its name in capitals, for every field."""
    return ENV_PREFIX + field.upper()


def flag(field: str) -> str:
    """The command-line flag of a `Settings` field (only some fields have one; see `cli.py`)."""
    return "--" + field.replace("_", "-")


_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(Settings)}  # annotations are strings (`from __future__`)


def _coerce(name: str, raw: str) -> Any:
    field_type = _FIELD_TYPES[name]
    if field_type == "bool":
        if raw.strip().lower() not in _BOOLS:
            raise SettingsError(f"{env_var(name)}={raw!r} is not a boolean (use 1/0, true/false, on/off)")
        return _BOOLS[raw.strip().lower()]
    try:
        if field_type == "int":
            return int(raw)
        if field_type == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"{env_var(name)}={raw!r} is not a number") from None
    return raw


def _check_port_free(host: str, port: int, name: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise SettingsError(
                f"{host}:{port} ({name}) is not available: {exc.strerror}. "
                f"Stop the other process or pass {flag(name)} / set {env_var(name)}."
            ) from None
