"""Collector settings: one table maps each option to its env var and default.

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
    flush_rows: int = 50_000
    flush_interval_s: float = 1.0
    grpc_max_receive_bytes: int = 64 * 1024 * 1024
    grpc_workers: int = 8

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `LLMSCOPE_*` variables, then explicit overrides (flags) on top."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(_ENV_NAMES[field.name])
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
        for name in ("otlp_grpc_port", "api_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise SettingsError(f"{name} must be 0..65535, got {port} (set {_ENV_NAMES[name]})")
        if self.otlp_grpc_port and self.otlp_grpc_port == self.api_port:
            raise SettingsError(f"otlp_grpc_port and api_port are both {self.api_port}; pick two ports")
        if self.flush_rows < 1 or self.flush_interval_s <= 0:
            raise SettingsError("flush_rows must be >= 1 and flush_interval_s > 0")
        self._check_data_dir()
        if check_ports:
            for name in ("otlp_grpc_port", "api_port"):
                _check_port_free(self.host, getattr(self, name), name)

    def _check_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(f"data dir {self.data_dir} cannot be created: {exc.strerror}") from None
        if not os.access(self.data_dir, os.W_OK):
            raise SettingsError(f"data dir {self.data_dir} is not writable (set LLMSCOPE_DATA_DIR)")


_ENV_NAMES: dict[str, str] = {
    "host": "LLMSCOPE_HOST",
    "otlp_grpc_port": "LLMSCOPE_OTLP_GRPC_PORT",
    "api_port": "LLMSCOPE_API_PORT",
    "data_dir": "LLMSCOPE_DATA_DIR",
    "flush_rows": "LLMSCOPE_FLUSH_ROWS",
    "flush_interval_s": "LLMSCOPE_FLUSH_INTERVAL_S",
    "grpc_max_receive_bytes": "LLMSCOPE_GRPC_MAX_RECEIVE_BYTES",
    "grpc_workers": "LLMSCOPE_GRPC_WORKERS",
}


def _coerce(name: str, raw: str) -> Any:
    field_type = {f.name: f.type for f in dataclasses.fields(Settings)}[name]
    try:
        if field_type == "int":
            return int(raw)
        if field_type == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"{_ENV_NAMES[name]}={raw!r} is not a number") from None
    return raw


def _check_port_free(host: str, port: int, name: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            flag = "--" + name.replace("_", "-")
            raise SettingsError(
                f"{host}:{port} ({name}) is not available: {exc.strerror}. "
                f"Stop the other process or pass {flag} / set {_ENV_NAMES[name]}."
            ) from None
