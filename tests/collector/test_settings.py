"""Settings from the environment: every field has its `LLMSCOPE_<FIELD>` variable, and a wrong
value stops the start with a sentence naming the variable (or flag) to fix."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from llmscope_collector.settings import Settings, SettingsError, env_var

_SAMPLES = {"int": "7", "float": "2.5", "bool": "off", "str": "x", "Path": "/tmp/somewhere"}


def test_every_field_is_read_from_its_derived_variable() -> None:
    fields = dataclasses.fields(Settings)
    env = {env_var(f.name): _SAMPLES[str(f.type)] for f in fields}
    settings = Settings.from_env(env)
    for field in fields:
        value = getattr(settings, field.name)
        expected = {"int": 7, "float": 2.5, "bool": False, "str": "x", "Path": Path("/tmp/somewhere")}[str(field.type)]
        assert value == expected, field.name
    assert env_var("otlp_grpc_port") == "LLMSCOPE_OTLP_GRPC_PORT"
    assert len(env) == len(fields) and all(name.startswith("LLMSCOPE_") for name in env)


def test_flags_override_the_environment_and_empty_variables_are_unset() -> None:
    env = {"LLMSCOPE_API_PORT": "9000", "LLMSCOPE_HOST": "", "LLMSCOPE_FLUSH_ROWS": "5"}
    settings = Settings.from_env(env, api_port=9100, flush_rows=None)
    assert (settings.api_port, settings.host, settings.flush_rows) == (9100, Settings.host, 5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LLMSCOPE_FLUSH_ROWS": "many"}, "LLMSCOPE_FLUSH_ROWS='many' is not a number"),
        ({"LLMSCOPE_FLUSH_INTERVAL_S": "1s"}, "LLMSCOPE_FLUSH_INTERVAL_S='1s' is not a number"),
        ({"LLMSCOPE_WAL_FSYNC": "maybe"}, "LLMSCOPE_WAL_FSYNC='maybe' is not a boolean"),
    ],
)
def test_unparsable_values_name_their_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("http_workers", 0),
        ("max_span_attributes", -1),
        ("wal_segment_bytes", 0),
        ("alerts_delivery_attempts", 0),
        ("otlp_http_port", 70000),
        ("smtp_tls", "tls"),
        ("trace_idle_s", 0.0),
        ("http_header_timeout_s", 0.0),
        ("http_body_timeout_s", -1.0),
        ("http_idle_timeout_s", 0.0),
        ("http_max_buffered_bytes", 1024),  # less than one maximal body
        ("max_span_events", -1),
        ("max_name_bytes", -1),
    ],
)
def test_invalid_values_name_the_variable_to_set(settings: Settings, field: str, value: object) -> None:
    with pytest.raises(SettingsError, match=f"set {env_var(field)}"):
        dataclasses.replace(settings, **{field: value}).validate(check_ports=False)  # type: ignore[arg-type]


def test_a_port_in_use_names_the_flag_and_the_variable(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(SettingsError, match="pass --otlp-http-port / set LLMSCOPE_OTLP_HTTP_PORT"):
            dataclasses.replace(settings, otlp_http_port=port).validate()
