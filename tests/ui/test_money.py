"""One rule for printing dollars: the CLI's `format_usd` and the web UI's `fmtUsd` (ui/static/util.js,
run in Node.js) agree on arbitrary amounts, never print exponents and keep three significant digits."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmscope_collector.money import exact_usd, format_usd

UTIL_JS = Path(__file__).resolve().parents[2] / "src" / "llmscope_collector" / "ui" / "static" / "util.js"
AMOUNTS = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False) | st.floats(min_value=1e-12, max_value=1.0)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "$0"),
        (4e-8, "$0.00000004"),
        (0.000059, "$0.000059"),
        (0.00003615, "$0.0000361"),
        (0.0008, "$0.0008"),
        (0.125, "$0.125"),
        (0.9996, "$1.00"),
        (2.125, "$2.13"),
        (1234.5, "$1,234.50"),
        (-0.0031, "-$0.0031"),
    ],
)
def test_examples(value: float, text: str) -> None:
    assert format_usd(value) == text


def test_negative_zero_prints_as_zero() -> None:
    """A cost correction can cancel to -0.0: printed and copied as $0 (Decimal's '-0' once leaked out)."""
    assert format_usd(-0.0) == exact_usd(-0.0) == "$0"


@given(AMOUNTS)
def test_plain_decimals_and_three_significant_digits(value: float) -> None:
    text = format_usd(value)
    assert "e" not in text.lower()
    assert re.fullmatch(r"-?<?\$(0|[\d,]+\.\d\d|0\.\d+)", text), text
    digits = text.lstrip("-<$").replace(",", "")
    if 1e-12 <= abs(value) < 0.9995:
        assert len(digits.replace(".", "").lstrip("0")) <= 3
        assert abs(float(digits) - abs(value)) <= abs(value) * 0.005 + 1e-18
    assert float(exact_usd(value).lstrip("-$")) == abs(value)


def _node_formats(values: list[float]) -> list[list[str]]:
    script = (
        f"import {{ fmtUsd, exactUsd }} from {json.dumps(UTIL_JS.as_uri())};"
        "const values = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(values.map((v) => [fmtUsd(v), exactUsd(v)])));"
    )
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps(values)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: list[list[str]] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(
    shutil.which("node") is None and not os.environ.get("LLMSCOPE_REQUIRE_NODE"), reason="Node.js is not installed"
)
@given(st.lists(AMOUNTS, min_size=1, max_size=400))
def test_the_web_ui_prints_every_amount_like_the_cli(values: list[float]) -> None:
    assert _node_formats(values) == [[format_usd(v), exact_usd(v)] for v in values]
