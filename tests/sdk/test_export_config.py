"""Where spans go by default and with each documented setting: OTLP/HTTP on 4318 unless gRPC is asked for
(a protocol setting, or an endpoint on OTLP's gRPC port 4317), and without the gRPC extra installed a
gRPC setting still delivers, over OTLP/HTTP to 4318, with a warning naming the extra."""

from __future__ import annotations

import logging
import sys

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

from llmscope_sdk import _setup
from llmscope_sdk._config import SdkSettings

GRPC_MODULE = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("http/protobuf", "http://127.0.0.1:4318")),
        ({"LLMSCOPE_PROTOCOL": "grpc"}, ("grpc", "http://127.0.0.1:4317")),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, ("grpc", "http://collector:4317")),
        ({"LLMSCOPE_ENDPOINT": "collector:4317"}, ("grpc", "collector:4317")),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otlp.example.com"},
            ("http/protobuf", "https://otlp.example.com"),
        ),
        ({"LLMSCOPE_ENDPOINT": "http://127.0.0.1:41234"}, ("http/protobuf", "http://127.0.0.1:41234")),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            ("http/protobuf", "http://collector:4317"),
        ),
    ],
)
def test_protocol_and_endpoint_by_setting(env: dict[str, str], expected: tuple[str, str]) -> None:
    settings = SdkSettings.resolve(env=env)
    assert (settings.protocol, settings.endpoint) == expected


def test_arguments_win_over_the_environment() -> None:
    env = {"LLMSCOPE_ENDPOINT": "http://a:4317", "LLMSCOPE_PROTOCOL": "grpc"}
    settings = SdkSettings.resolve(endpoint="http://b:9000", protocol="http/protobuf", env=env)
    assert (settings.protocol, settings.endpoint) == ("http/protobuf", "http://b:9000")


def test_the_exporter_for_each_protocol() -> None:
    http = _setup._exporter(SdkSettings.resolve(env={}), None)
    assert isinstance(http, HttpExporter) and http._endpoint == "http://127.0.0.1:4318/v1/traces"
    grpc = _setup._exporter(SdkSettings.resolve(env={"LLMSCOPE_ENDPOINT": "http://127.0.0.1:4317"}), None)
    assert isinstance(grpc, GrpcExporter)
    http.shutdown()
    grpc.shutdown()


def test_grpc_without_its_extra_exports_over_http_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, GRPC_MODULE, None)  # as in an install without llmscope[grpc]
    with caplog.at_level(logging.WARNING, logger="llmscope"):
        exporter = _setup._exporter(SdkSettings.resolve(env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}), None)
    assert isinstance(exporter, HttpExporter) and exporter._endpoint == "http://c:4318/v1/traces"
    assert "pip install 'llmscope[grpc]'" in caplog.text
    exporter.shutdown()
