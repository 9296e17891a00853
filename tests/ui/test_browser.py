"""The web UI in real headless Chromium against a real server with demo data.

Each test opens one view the way a user would, checks what is on screen against the API, and
saves a screenshot under test-artifacts/ui/.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from llmscope_collector.money import exact_usd, format_usd
from llmscope_collector.server import EmbeddedServer
from llmscope_collector.settings import Settings
from tests.otlp_factory import request
from tests.ui.conftest import BIG_TRACE_SPANS, shot
from tests.ui.traffic import ERROR_TRACE, agent_trace, send, trace_id, wait_for_traces

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright to run the UI tests")
expect = sync_api.expect


def _open(page: Any, fragment: str) -> None:
    page.goto(f"{page.base_url}/{fragment}")


def _api(server: EmbeddedServer, path: str) -> Any:
    return httpx.get(f"{server.api_url}{path}", timeout=10).json()


def test_trace_list_filters_search_sort_and_keyboard(page: Any, ui_server: EmbeddedServer) -> None:
    _open(page, "")
    rows = page.locator("table.data tbody tr.rowlink")
    expect(rows).to_have_count(13)  # 12 agent traces + the big one
    expect(page.locator("nav a[aria-current=page]")).to_have_text("Traces")
    # Times are in the viewer's zone, with the exact instant on hover.
    first_time = rows.first.locator("time")
    assert re.search(r"\.\d{9}Z$", first_time.get_attribute("title") or "")
    shot(page, "01-traces")

    page.fill("input[name=service]", "chatbot")
    page.click("button:has-text('Apply')")
    expect(rows).to_have_count(6)
    assert "service=chatbot" in page.url
    rows.first.locator("td").nth(3).filter(has_text="chatbot").wait_for()

    # Full-text search in captured content, from a shared URL.
    _open(page, "#/traces?q=ticket%207")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-trace-id", trace_id(7))

    # Any span attribute, from the form.
    _open(page, "#/traces")
    page.fill("input[name=_attr]", "gen_ai.tool.call.id=call_5")
    page.click("button:has-text('Apply')")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-trace-id", trace_id(5))
    assert "attr.gen_ai.tool.call.id=call_5" in page.url

    _open(page, "#/traces?status=error")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-trace-id", trace_id(ERROR_TRACE))

    # Sorting by a column header is a server-side sort kept in the URL.
    _open(page, "#/traces")
    expect(rows).to_have_count(13)
    page.click("th button.sort:has-text('Cost')")
    expect(page.locator("th[aria-sort=descending]")).to_have_text("Cost")
    assert "sort=cost" in page.url
    expect(rows.first).to_have_attribute("data-trace-id", trace_id(0x40))  # 8,999 small calls cost the most

    # Keyboard: "j" enters the list, moves down, Enter opens the row.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("j")
    expect(rows.first).to_be_focused()
    page.keyboard.press("j")
    second = rows.nth(1).get_attribute("data-trace-id")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(f"#/trace/{second}"))


def test_waterfall_and_llm_span_details(page: Any, ui_server: EmbeddedServer) -> None:
    tid = trace_id(7)
    _open(page, "#/traces")
    page.click(f"tr[data-trace-id='{tid}'] a")
    page.wait_for_url(re.compile(f"#/trace/{tid}"))
    wf_rows = page.locator(".wf-row")
    expect(wf_rows).to_have_count(5)
    names = [n.strip() for n in page.locator(".wf-row .nm").all_inner_texts()]
    assert names == [
        "invoke_agent support-bot",
        "chat claude-sonnet-4-6",
        "execute_tool search_docs",
        "GET /search",
        "chat gpt-4o",
    ]
    expect(page.locator(".wf-row[aria-level='3']")).to_have_count(1)  # GET /search under the tool
    expect(page.locator(".wf-bar.crit")).not_to_have_count(0)
    # Bars share one time axis: the answer starts after the tool call ends.
    boxes = [wf_rows.nth(i).locator(".wf-bar").bounding_box() for i in (2, 4)]
    assert boxes[0] and boxes[1] and boxes[1]["x"] >= boxes[0]["x"] + boxes[0]["width"] - 1

    llm = wf_rows.nth(1)
    expect(llm.locator(".wf-info")).to_contain_text("claude-sonnet-4-6")
    expect(llm.locator(".wf-info")).to_contain_text("TTFT 120 ms")
    llm.click()
    panel = page.locator("aside.panel")
    expect(panel.locator("h2")).to_have_text("chat claude-sonnet-4-6")
    waterfall = _api(ui_server, f"/v1/traces/{tid}")
    span = next(s for s in waterfall["spans"] if s["name"] == "chat claude-sonnet-4-6")
    expect(panel.locator(".llm-in")).to_have_text(f"{span['input_tokens']:,}")
    expect(panel.locator(".llm-out")).to_have_text(str(span["output_tokens"]))
    assert span["cost_usd"] is not None
    expect(panel.locator(".llm-cost")).to_have_text(format_usd(span["cost_usd"]))  # the one dollar rule
    expect(panel.locator(".llm-cost")).to_have_attribute("title", re.compile(re.escape(exact_usd(span["cost_usd"]))))
    # The captured chat as a conversation, the tool call inside the assistant's message.
    expect(panel.locator(".msg.user")).to_contain_text("ticket 7")
    expect(panel.locator(".msg.assistant .toolcall")).to_contain_text("search_docs")
    assert f"span={span['span_id']}" in page.url  # the selected span is shareable
    shot(page, "02-waterfall-llm-span")

    # Keyboard in the waterfall: down to the tool, collapse it, Escape closes the panel.
    page.keyboard.press("ArrowDown")
    expect(panel.locator("h2")).to_have_text("execute_tool search_docs")
    page.keyboard.press("ArrowLeft")
    expect(wf_rows).to_have_count(4)
    page.keyboard.press("ArrowRight")
    expect(wf_rows).to_have_count(5)
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()


def test_error_span_shows_exception_in_dark_mode(page: Any) -> None:
    page.emulate_media(color_scheme="dark")
    _open(page, f"#/trace/{trace_id(ERROR_TRACE)}?span=0004000000000003")
    expect(page.locator(".wf-row.err .nm")).to_have_text("execute_tool search_docs")
    expect(page.locator(".wf-bar.err")).to_have_count(1)
    panel = page.locator("aside.panel")
    expect(panel.locator(".exc")).to_contain_text("TimeoutError")
    expect(panel.locator(".exc")).to_contain_text("search backend did not answer")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(20, 23, 28)"
    shot(page, "03-error-span-dark")


def test_ten_thousand_span_trace_is_virtualized(page: Any) -> None:
    _open(page, f"#/trace/{trace_id(0x40)}")
    expect(page.locator(".wf-scroll")).to_have_attribute("aria-label", f"Waterfall of {BIG_TRACE_SPANS} spans")
    page.locator(".wf-row").first.wait_for()
    rendered = page.locator(".wf-row").count()
    assert 10 < rendered < 120, rendered  # only the rows in view (plus overscan) are in the DOM
    # How fast it shows is a benchmark's question (docs/benchmarks.md), not a timed assertion here.
    # Jump to the end: the last span gets a row, the page stays responsive.
    page.locator(".wf-scroll").focus()
    page.keyboard.press("End")
    expect(page.locator(".wf-row[aria-selected=true] .nm")).to_have_text(re.compile(r"#9999$"))
    assert page.locator(".wf-row").count() < 120
    shot(page, "04-big-trace-end")
    # Find a span by name: Enter jumps to it.
    page.fill("input[placeholder^='Find span']", "#4322")
    expect(page.locator(".toolbar")).to_contain_text("1 match")
    page.press("input[placeholder^='Find span']", "Enter")
    expect(page.locator(".wf-row[aria-selected=true] .nm")).to_have_text("chat gpt-4o-mini #4322")
    expect(page.locator("aside.panel h2")).to_have_text("chat gpt-4o-mini #4322")
    page.click("button:has-text('Collapse all')")
    expect(page.locator(".wf-row")).to_have_count(1)
    page.click("button:has-text('Expand all')")
    assert page.locator(".wf-row").count() > 10


def test_sessions_list_and_timeline(page: Any) -> None:
    _open(page, "#/sessions")
    rows = page.locator("table.data tbody tr.rowlink")
    expect(rows).to_have_count(4)  # alpha, beta, gamma and the batch job
    shot(page, "05-sessions")
    page.click("tr[data-session-id='sess-alpha'] a")
    page.wait_for_url(re.compile("#/session/sess-alpha"))
    expect(page.locator(".tl-row")).to_have_count(4)
    expect(page.locator(".tl-bar.err")).to_have_count(1)  # trace 3 of the session failed
    expect(page.locator("table.data tbody tr.rowlink")).to_have_count(4)
    # The session reads as one chat across its traces (issue 19, item 8).
    chat = page.locator(".transcript")
    expect(chat.locator(".msg.user")).to_have_count(4)
    expect(chat.locator(".msg.user").first).to_contain_text("How do I reset my password? (ticket 0)")
    expect(chat.locator(".msg.assistant")).not_to_have_count(0)
    shot(page, "06-session-timeline")


def test_cost_and_metric_charts(page: Any) -> None:
    _open(page, "#/costs?range=24h&group=model")
    cost = page.locator("figure[data-chart='Cost by model']")
    expect(cost.locator("svg rect")).to_have_count(3)
    summary = cost.locator("svg").get_attribute("aria-label") or ""
    assert all(model in summary for model in ("claude-sonnet-4-6", "gpt-4o-2024-08-06", "gpt-4o-mini")), summary
    expect(page.locator("figure[data-chart='Cost (USD)'] svg circle")).not_to_have_count(0)
    expect(page.locator("figure[data-chart='Latency (all)'] svg circle")).not_to_have_count(0)
    # Prompt versions compared side by side.
    expect(page.locator("figure[data-chart='Uses'] svg rect")).to_have_count(2)
    shot(page, "07-costs", full_page=True)
    page.select_option("select[name=group]", "provider")
    expect(page.locator("figure[data-chart='Cost by provider'] svg rect")).to_have_count(2)
    assert "group=provider" in page.url
    legend = page.locator("figure[data-chart='Cost (USD)'] .chart-legend")
    expect(legend).to_contain_text("anthropic")
    expect(legend).to_contain_text("openai")
    # Issue 19: no stray "null" under single-series charts; the heading and every chart name the
    # same bucket; the demo's half hour of data in a 24 h range is drawn per minute, not as one dot.
    expect(page.locator("figure[data-chart='Error rate']").first).not_to_contain_text("null")
    expect(page.locator("h2", has_text="Over time")).to_contain_text("per minute")
    expect(page.locator("figure[data-chart='Latency p95'] figcaption")).to_contain_text("per minute")
    assert page.locator("figure[data-chart='Latency (all)'] svg circle").count() > 3
    for figure in page.locator("figure.chart svg path").all():  # no vertical jumps inside one bucket
        xs = re.findall(r"[ML]([\d.]+),", figure.get_attribute("d") or "")
        assert len(xs) == len(set(xs)), xs


def test_live_tail_shows_a_new_trace(page: Any, ui_server: EmbeddedServer) -> None:
    _open(page, "#/traces?live=1")
    expect(page.locator(".live-dot.live")).to_have_count(1)
    rows = page.locator("table.data tbody tr.rowlink")
    expect(rows).to_have_count(13)
    new_service, spans = agent_trace(20, time.time_ns() - 30 * 1_000_000_000)
    send(ui_server, [(new_service, spans)])
    expect(page.locator(f"tr[data-trace-id='{trace_id(20)}']")).to_have_count(1, timeout=15_000)
    shot(page, "08-live-tail")


def test_settings_keys_and_alert_rules(page: Any, ui_server: EmbeddedServer) -> None:
    _open(page, "#/settings")
    expect(page.locator(".notice")).to_contain_text("admin token")
    page.fill("input[name=key]", ui_server.collector.receivers.policy.admin.value)
    page.click("button:has-text('Save')")
    project = page.locator("fieldset.project[data-project=default]")
    expect(project).to_be_visible()
    page.fill("fieldset.project[data-project=default] input[name=key_name]", "ui-test")
    page.click("fieldset.project[data-project=default] button:has-text('Create API key')")
    secret = page.locator("[data-new-key]")
    expect(secret).to_have_text(re.compile(r"\S{20,}"))
    expect(project.locator("tbody tr")).to_have_count(1)
    shot(page, "09-settings-new-key")
    page.once("dialog", lambda d: d.accept())
    project.locator("button:has-text('Revoke')").click()
    expect(project.locator(".pill.muted")).to_have_text("revoked")
    page.fill("input[name=name]", "team-ui")
    page.click("button:has-text('Create project')")
    expect(page.locator("fieldset.project[data-project=team-ui]")).to_be_visible()

    page.evaluate("localStorage.clear()")
    _open(page, "#/alerts?edit=new")
    page.fill("input[name=name]", "Spend over a dollar")
    page.fill("input[name=alert_threshold]", "1")
    page.click("button:has-text('Create rule')")
    rule = page.locator("tr[data-rule-id]")
    expect(rule).to_have_count(1)
    expect(rule).to_contain_text("Cost (USD) > 1")
    rule.locator("button:has-text('Test')").click()
    expect(rule).to_contain_text("samples")
    shot(page, "10-alerts")
    rule.locator("a:has-text('Edit')").click()
    expect(page.locator("input[name=name]")).to_have_value("Spend over a dollar")
    page.fill("input[name=alert_threshold]", "2.5")
    page.select_option("select[name=severity]", "warning")
    page.click("button:has-text('Save rule')")
    expect(rule).to_contain_text("Cost (USD) > 2.5")
    expect(rule).to_contain_text("warning")


@pytest.fixture
def keyed_server(settings: Any) -> Any:
    """A server that requires API keys even on loopback, with one trace sent with a key."""
    server = EmbeddedServer(dataclasses.replace(settings, auth="required"))
    server.start()
    try:
        admin = {"authorization": f"Bearer {server.collector.receivers.policy.admin.value}"}
        created = httpx.post(f"{server.api_url}/v1/projects/default/keys", json={"name": "ui"}, headers=admin)
        key = created.json()["key"]
        service, spans = agent_trace(0, time.time_ns() - 60 * 1_000_000_000)
        body = request(spans, service=service).SerializeToString()
        headers = {"content-type": "application/x-protobuf", "authorization": f"Bearer {key}"}
        httpx.post(f"http://127.0.0.1:{server.http_port}/v1/traces", content=body, headers=headers).raise_for_status()
        server.collector.flush()
        yield server, key
    finally:
        server.stop()


def test_pasted_api_key_unlocks_the_ui_when_keys_are_required(browser: Any, keyed_server: Any) -> None:
    server, key = keyed_server
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{server.api_url}/")
        expect(page.locator(".error-box")).to_contain_text("paste an API key in Settings")
        page.click("nav a:has-text('Settings')")
        page.fill("input[name=key]", key)
        page.click("button:has-text('Save')")
        expect(page.locator("#who")).to_contain_text(key[-4:])
        page.click("nav a:has-text('Traces')")
        expect(page.locator("table.data tbody tr.rowlink")).to_have_count(1, timeout=15_000)
        page.click("button:has-text('Live tail')")  # the stream sends the key too (fetch, not EventSource)
        expect(page.locator(".live-dot.live")).to_have_count(1)
        shot(page, "11-with-api-key")
        # The export and the thumbs go through the same key (no plain link: it could not send it).
        with page.expect_download() as download:
            page.click(".export button:has-text('Export')")
        assert download.value.failure() is None and download.value.suggested_filename.endswith(".csv")
        page.locator("table.data tbody tr.rowlink").first.click()
        with page.expect_response(lambda r: r.url.endswith("/v1/scores") and r.request.method == "POST") as sent:
            page.click("form.feedback button.thumb[aria-label^='Good']")
        assert sent.value.status == 201 and sent.value.request.headers["authorization"] == f"Bearer {key}"
        page.click("nav a:has-text('Traces')")
        # Deleting a session (real deletion on disk), with the key.
        page.click("a:has-text('sess-alpha')")
        page.once("dialog", lambda d: d.accept())
        page.click("button:has-text('Delete session')")
        page.wait_for_url(re.compile("#/sessions$"))
        expect(page.locator(".empty")).to_contain_text("No sessions yet")
    finally:
        context.close()


def test_orphans_sit_under_a_synthetic_root_that_explains_itself(browser: Any, server: EmbeddedServer) -> None:
    """A trace whose spans name a parent never received: the waterfall shows them under the API's
    synthetic root, and selecting that row explains it instead of asking for a span that does not exist."""
    from tests import otlp_factory as f

    tid, now = f.new_trace_id(), time.time_ns()
    lost_parent = f.new_span_id()
    spans = [
        f.span(tid, f.new_span_id(), "retry worker", now, now + 2_000_000, parent=lost_parent),
        f.span(tid, f.new_span_id(), "cache lookup", now + 500_000, now + 900_000, parent=lost_parent),
    ]
    send(server, [("worker", spans)])
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{server.api_url}/#/trace/{tid.hex()}")
        rows = page.locator(".wf-row")
        expect(rows).to_have_count(3)
        rows.first.click()
        expect(page.locator("aside, .panel").filter(has_text="Not a stored span").first).to_be_visible()
        for name in ("retry worker", "cache lookup"):
            expect(page.locator(".wf-row").filter(has_text=name)).to_have_count(1)
        shot(page, "12-orphans")
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.mark.parametrize("viewer", ["swagger", "redoc"])
def test_api_docs_render_offline(page: Any, ui_server: EmbeddedServer, viewer: str) -> None:
    """The README and the banner point at /schema/swagger: it renders with no internet (every request
    beyond the server is refused), its code and styles from files the server ships. (ReDoc's footer
    links Redocly with a logo from their site: that image stays blank offline.)"""
    outside: list[tuple[str, str]] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(ui_server.api_url):
            route.continue_()
        else:
            outside.append((route.request.resource_type, route.request.url))
            route.abort()

    page.route("**/*", only_local)
    page.goto(f"{page.base_url}/schema/{viewer}", wait_until="domcontentloaded", timeout=30_000)
    title = page.locator(".swagger-ui .info .title" if viewer == "swagger" else "h1")
    expect(title.first).to_contain_text("llmscope API", timeout=30_000)
    assert [(kind, url) for kind, url in outside if kind != "image"] == []
    shot(page, f"schema-{viewer}")


def test_first_contact_layout_and_wording(page: Any, ui_server: EmbeddedServer) -> None:
    """Issue 19, item 7: the things a new user tripped over on the pages themselves."""
    # Settings with no token: the notice says what is needed; no request that can only be refused.
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    _open(page, "#/settings")
    notice = page.locator(".notice")
    expect(notice).to_contain_text("admin token")
    expect(notice.locator("code").first).to_have_text("llmscope serve")
    assert "`" not in (notice.text_content() or "")
    assert not [url for url in asked if "/v1/projects" in url]

    # Alert form: readable metric and comparator names, the checkbox beside its label.
    _open(page, "#/alerts?edit=new")
    expect(page.locator("select[name=metric] option:checked")).to_have_text("Cost (USD)")
    expect(page.locator("select[name=comparator] option:checked")).to_have_text("> above")
    box = page.locator("label.inline:has(input[name=enabled])").bounding_box()
    check = page.locator("input[name=enabled]").bounding_box()
    assert box and check and check["width"] < 30 and check["x"] - box["x"] < 5  # not stretched over the cell
    pill = page.evaluate(
        "async () => (await import('./ui/static/alerts.js')).levelPill("
        "{level: 'ok', status: 'ok', evaluated_at: null}).textContent"
    )
    assert pill.startswith("pending")

    # With the span panel open, the LLM call's model · tokens · cost is not cut off.
    _open(page, f"#/trace/{trace_id(1)}")
    llm_row = page.locator(".wf-row", has_text="chat claude-sonnet-4-6").first
    llm_row.click()
    expect(page.locator(".trace-layout.with-panel")).to_have_count(1)
    info = llm_row.locator(".wf-info")
    assert info.evaluate("el => el.scrollWidth <= el.clientWidth"), info.text_content()
    shot(page, "10-span-panel-open")


# The trace (with its scores and feedback form) and a session (with its scores) too.
@pytest.mark.parametrize(
    "view",
    ["#/traces", "#/sessions", "#/costs", "#/alerts", "#/settings", f"#/trace/{trace_id(4)}", "#/session/sess-beta"],
)
def test_phone_width_needs_no_sideways_scroll(browser: Any, ui_server: EmbeddedServer, view: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    try:
        page = context.new_page()
        page.goto(f"{ui_server.api_url}/{view}")
        page.locator("main h1").first.wait_for()
        page.wait_for_timeout(500)
        overflow = page.evaluate("document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth")
        assert overflow <= 0, f"{view} scrolls sideways by {overflow}px at 390 px"
        for link in page.locator("header nav a").all():
            b = link.bounding_box()
            assert b and b["x"] >= 0 and b["x"] + b["width"] <= 390 and b["y"] >= 0, link.text_content()
        shot(page, f"phone-{view.strip('#/').replace('/', '-')}-dark", full_page=True)
    finally:
        context.close()


def test_trace_list_presets_and_pickers(page: Any) -> None:
    """Issue 19, item 8: time presets and value pickers."""
    _open(page, "#/traces")
    rows = page.locator("table.data tbody tr.rowlink")
    expect(rows).not_to_have_count(0)
    everything = rows.count()  # 13, plus what other tests of this module sent (a fresh live-tail trace)
    models = page.locator("datalist#pick-model option")
    expect(models).not_to_have_count(0)
    assert "claude-sonnet-4-6" in [o.get_attribute("value") for o in models.all()]
    expect(page.locator("input[name=model]")).to_have_attribute("list", "pick-model")

    # The 13 demo traces are 20-30 minutes old: not in the last 15 minutes, all in the last hour.
    page.click(".presets button:has-text('15 min')")
    expect(page.locator(".presets button[aria-pressed=true]")).to_have_text("15 min")
    expect(rows).to_have_count(everything - 13)
    assert "from=" in page.url and "range=" in page.url
    page.click(".presets button:has-text('1 h')")
    expect(rows).to_have_count(everything)
    # The export button: test_export_button_downloads_the_filtered_traces_from_the_api.


def test_pickers_offer_the_ranges_values_not_only_the_shown_traces(page: Any, ui_server: EmbeddedServer) -> None:
    """Issue 19, item 8: the pickers fill from `GET /v1/traces/values` for the page's time range, so a filter
    does not hide the other values: with service=chatbot shown, the batch job's model and service are offered."""
    _open(page, "#/traces?service=chatbot")
    listed = _api(ui_server, "/v1/traces?service=chatbot&limit=1000")["traces"]
    expect(page.locator("table.data tbody tr.rowlink")).to_have_count(len(listed))
    shown = {m for tr in listed for m in tr["models"]}
    assert "gpt-4o-mini" not in shown  # only the batch job (another service) used it
    served = {v["value"]: v["traces"] for v in _api(ui_server, "/v1/traces/values?field=model")["values"]}
    mini = page.locator("datalist#pick-model option[value='gpt-4o-mini']")
    expect(mini).to_have_count(1)
    expect(mini).to_have_attribute("label", f"{served['gpt-4o-mini']} trace")
    expect(page.locator("datalist#pick-service option[value='batch-worker']")).to_have_count(1)
    # The most frequent first, as the API serves them.
    options = [o.get_attribute("value") for o in page.locator("datalist#pick-model option").all()]
    assert options[: len(served)] == list(served)

    # Another range, other values: the batch job (35 minutes old) is not in the last 15 minutes.
    page.click(".presets button:has-text('15 min')")
    expect(page.locator(".presets button[aria-pressed=true]")).to_have_text("15 min")
    expect(page.locator("datalist#pick-service option[value='batch-worker']")).to_have_count(0)
    expect(page.locator("datalist#pick-model option[value='gpt-4o-mini']")).to_have_count(0)


def test_a_picker_with_more_values_than_it_holds_asks_by_prefix(browser: Any, tmp_path: Any) -> None:
    """Past 200 values of a field the picker holds the 200 most frequent; typing asks the API for the values
    starting with the text, so the others are reachable too (its own server: 205 users, one trace each)."""
    from tests.otlp_factory import span

    settings = Settings(host="127.0.0.1", otlp_grpc_port=0, otlp_http_port=0, api_port=0, data_dir=tmp_path / "data")
    with EmbeddedServer(settings) as server:
        now = time.time_ns() - 60 * 1_000_000_000
        spans = [
            span(
                bytes.fromhex(f"{n + 1:032x}"),
                bytes.fromhex(f"{n + 1:016x}"),
                "job",
                now - 1000 * n,  # user-000 newest: the list's 50 rows hold user-000..049
                now - 1000 * n + 500,
                attrs={"user.id": f"user-{n:03d}"},
            )
            for n in range(205)
        ]
        send(server, [("worker", spans)])
        wait_for_traces(server, 205)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        try:
            page = context.new_page()
            page.goto(f"{server.api_url}/#/traces")
            users = page.locator("datalist#pick-user option")
            expect(users).to_have_count(200)  # the 200 values the API served first
            expect(page.locator("datalist#pick-user option[value='user-203']")).to_have_count(0)
            page.fill("input[name=user]", "USER-20")
            expect(page.locator("datalist#pick-user option[value='user-203']")).to_have_count(1)
            values = [o.get_attribute("value") for o in users.all()]
            assert values[:6] == [*(f"user-20{k}" for k in range(5)), "user-000"], values[:8]  # then the rows' values
            page.fill("input[name=user]", "")
            expect(page.locator("datalist#pick-user option[value='user-203']")).to_have_count(0)
        finally:
            context.close()


# -- issue 19: trace list previews; issue 21: scores and export in the UI ------------------------------

LONG_TRACE = "c0" * 16  # a trace whose question is longer than the preview cell


def _send_long_question(server: EmbeddedServer) -> str:
    """One trace whose question is 180 characters on its first line (then a second line)."""
    from tests.otlp_factory import span

    question = "Why does my nightly export " + "keep timing out after exactly ninety seconds " * 3 + "?"
    tid, now = bytes.fromhex(LONG_TRACE), time.time_ns() - 60 * 1_000_000_000
    said = lambda role, text: json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])  # noqa: E731
    llm = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.input.messages": said("user", question + "\nSecond line, not in the preview."),
        "gen_ai.output.messages": said("assistant", "Raise the timeout.\nDetails follow."),
    }
    root = bytes.fromhex("c0c0c0c0c0c0c001")
    spans = [
        span(tid, root, "export job", now, now + 900_000_000),
        span(tid, bytes.fromhex("c0c0c0c0c0c0c002"), "chat gpt-4o", now + 1, now + 800_000_000, parent=root, attrs=llm),
    ]
    send(server, [("exporter", spans)])
    return question


def test_trace_list_shows_one_line_input_and_output_previews(browser: Any, ui_server: EmbeddedServer) -> None:
    question = _send_long_question(ui_server)
    listed = {t["trace_id"]: t for t in _api(ui_server, "/v1/traces?limit=100")["traces"]}
    assert listed[trace_id(7)]["preview_input"] == "How do I reset my password? (ticket 7)"
    assert listed[trace_id(7)]["preview_output"] == "Open Settings → Security."
    assert listed[LONG_TRACE]["preview_input"] == question
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
        try:
            page = context.new_page()
            page.goto(f"{ui_server.api_url}/#/traces")
            expect(page.locator("table.data thead th", has_text="Input → Output")).to_have_count(1)
            row = page.locator(f"tr[data-trace-id='{trace_id(7)}']")
            pv_in, pv_out = row.locator(".pv-in"), row.locator(".pv-out")
            expect(pv_in).to_have_text("InHow do I reset my password? (ticket 7)")
            expect(pv_in).to_have_attribute("title", "How do I reset my password? (ticket 7)")
            expect(pv_out).to_have_attribute("title", "Open Settings → Security.")
            # The long one: one line, cut with an ellipsis, the whole preview on hover.
            long_in = page.locator(f"tr[data-trace-id='{LONG_TRACE}'] .pv-in")
            expect(long_in).to_have_attribute("title", question)
            assert long_in.evaluate("el => el.scrollWidth > el.clientWidth")  # cut
            assert long_in.evaluate("el => getComputedStyle(el).textOverflow") == "ellipsis"
            one_line = page.locator(f"tr[data-trace-id='{trace_id(7)}'] .pv-k").first.bounding_box()
            box = long_in.bounding_box()
            assert box and one_line and box["height"] <= one_line["height"] + 6  # a single line
            # A trace whose calls captured no content says so.
            big = page.locator(f"tr[data-trace-id='{trace_id(0x40)}'] td.preview")
            expect(big).to_have_text("\N{EN DASH}")
            assert "captured" in (big.locator("span").get_attribute("title") or "")
            shot(page, f"20-trace-previews-{scheme}")
        finally:
            context.close()


def _stored_scores(server: EmbeddedServer, tid: str, name: str, wanted: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        scores = [s for s in _api(server, f"/v1/scores?trace_id={tid}")["scores"] if s["name"] == name]
        if len(scores) >= wanted or time.monotonic() > deadline:
            return scores
        time.sleep(0.2)


def test_thumbs_up_down_with_a_comment_is_a_score_the_list_filters_on(page: Any, ui_server: EmbeddedServer) -> None:
    tid = trace_id(5)
    _open(page, f"#/trace/{tid}")
    form = page.locator("form.feedback")
    status = form.locator("[role=status]")
    chip = page.locator(".trace-scores li.score[data-name=feedback]")
    expect(page.locator(".trace-scores li.none")).to_have_count(1)  # no score yet
    with page.expect_response(lambda r: r.url.endswith("/v1/scores") and r.request.method == "POST") as sent:
        form.locator("button.thumb[aria-label^='Good']").click()
    assert sent.value.status == 201
    expect(status).to_have_text("Saved")
    expect(form.locator("button.thumb[aria-pressed=true]")).to_have_text("Good")
    page.fill("form.feedback textarea", "clear and correct")
    with page.expect_response(lambda r: r.url.endswith("/v1/scores") and r.request.method == "POST") as sent:
        form.locator("button:has-text('Send comment')").click()
    body = sent.value.request.post_data_json
    assert body["name"] == "feedback" and body["value"] is True and body["comment"] == "clear and correct"
    assert body["source"] == "human" and body["trace_id"] == tid
    # Shown at once (pending), then as stored: one chip, the vote and the comment.
    expect(chip).to_have_count(1)
    expect(chip).to_contain_text("feedback good")
    expect(chip).to_contain_text("clear and correct")
    expect(chip).not_to_have_class(re.compile("pending"), timeout=15_000)
    (stored,) = _stored_scores(ui_server, tid, "feedback")
    assert stored["label"] == "true" and stored["comment"] == "clear and correct" and stored["source"] == "human"
    shot(page, "21-trace-feedback")

    # Thumbs down replaces the vote (same id), the comment goes with it.
    with page.expect_response(lambda r: r.url.endswith("/v1/scores") and r.request.method == "POST"):
        form.locator("button.thumb[aria-label^='Bad']").click()
    expect(chip).to_contain_text("feedback bad", timeout=15_000)
    expect(chip).not_to_have_class(re.compile("pending"), timeout=15_000)
    deadline = time.monotonic() + 15
    while (scores := _stored_scores(ui_server, tid, "feedback"))[0]["label"] != "false" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [(s["label"], s["comment"]) for s in scores] == [("false", "clear and correct")]
    # A fresh load of the trace remembers this browser's vote and comment.
    page.reload()
    expect(form.locator("button.thumb[aria-pressed=true]")).to_have_text("Bad")
    expect(page.locator("form.feedback textarea")).to_have_value("clear and correct")

    # The trace list filtered by that score, from the form; the URL carries the API's filter.
    _open(page, "#/traces")
    rows = page.locator("table.data tbody tr.rowlink")
    expect(rows).not_to_have_count(0)
    expect(page.locator("datalist#pick-score option[value='feedback=false']")).to_have_count(1)
    page.fill("input[name=_score]", "feedback=false")
    page.click("button:has-text('Apply')")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-trace-id", tid)
    assert "score.feedback=false" in page.url
    expect(page.locator("input[name=_score]")).to_have_value("feedback=false")
    page.fill("input[name=_score]", "feedback=true")
    page.click("button:has-text('Apply')")
    expect(page.locator(".empty, p.muted", has_text="No trace matches")).to_have_count(1)
    page.fill("input[name=_score]", "feedback is good")
    page.click("button:has-text('Apply')")
    assert page.locator("input[name=_score]").evaluate("el => el.validationMessage").startswith("Not name op value")

    # Sorted by the score (the API's sort=score.<name>: only scored traces, by their average).
    _open(page, "#/traces")
    page.fill("input[name=_score]", "feedback")
    page.click("form.filters button:has-text('sort by it')")
    expect(page.locator("button.score-sort")).to_have_text("Score feedback ▼")
    assert "sort=score.feedback" in page.url and "order=desc" in page.url
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-trace-id", tid)
    page.click("button.score-sort")
    expect(page.locator("button.score-sort")).to_have_text("Score feedback ▲")


def test_scores_show_on_the_span_panel_and_the_session(browser: Any, ui_server: EmbeddedServer) -> None:
    tid, span_id, session = trace_id(4), "0005000000000002", "sess-beta"  # trace 4: session 4 % 3
    scores = [
        {"name": "relevance", "value": 0.75, "trace_id": tid, "span_id": span_id, "comment": "cites the docs"},
        {"name": "resolved", "value": "yes", "session_id": session, "source": "eval"},
    ]
    httpx.post(f"{ui_server.api_url}/v1/scores/batch", json={"scores": scores}, timeout=10).raise_for_status()
    assert _stored_scores(ui_server, tid, "relevance")
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
        try:
            page = context.new_page()
            page.goto(f"{ui_server.api_url}/#/trace/{tid}?span={span_id}")
            panel = page.locator("aside.panel")
            chip = panel.locator("li.score[data-name=relevance]")
            expect(chip).to_contain_text("0.75")
            expect(chip).to_contain_text("cites the docs")
            expect(page.locator(".trace-scores li.score[data-name=relevance]")).to_contain_text("span")
            shot(page, f"22-span-scores-{scheme}")
            page.goto(f"{ui_server.api_url}/#/session/{session}")
            session_chip = page.locator(".session-scores li.score[data-name=resolved]")
            expect(session_chip).to_contain_text("yes")
            assert "source: eval" in (session_chip.get_attribute("title") or "")
            shot(page, f"23-session-scores-{scheme}")
        finally:
            context.close()


def test_export_button_downloads_the_filtered_traces_from_the_api(
    page: Any, ui_server: EmbeddedServer, tmp_path: Any
) -> None:
    listed = _api(ui_server, "/v1/traces?service=chatbot&limit=100")["traces"]
    chatbot = {t["trace_id"] for t in listed}
    _open(page, "#/traces?service=chatbot")
    rows = page.locator("table.data tbody tr.rowlink")
    expect(rows).to_have_count(len(chatbot))  # 6 demo traces, and what other tests of the module sent
    formats = page.locator("select[name=export-format] option")
    expect(formats).to_have_count(3)
    expect(formats.first).to_have_attribute("value", "csv")
    offered = [o.get_attribute("value") for o in formats.all()]
    assert set(offered) == {"csv", "jsonl", "parquet"}  # what the server's OpenAPI document says it writes
    expect(page.locator("select[name=export-format] option[value=parquet]")).to_have_text("Parquet")
    with page.expect_download() as csv_download:
        page.click(".export button:has-text('Export')")
    assert csv_download.value.suggested_filename == "llmscope-default-traces.csv"
    path = tmp_path / "traces.csv"
    csv_download.value.save_as(path)
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    assert header[:2] == ["export_version", "trace_id"] and "preview_input" not in header  # no captured content
    assert {line.split(",")[1] for line in lines[1:]} == chatbot
    page.select_option("select[name=export-format]", "jsonl")
    page.select_option("select[name=export-level]", "spans")
    with page.expect_download() as spans_download:
        page.click(".export button:has-text('Export')")
    path = tmp_path / "spans.jsonl"
    spans_download.value.save_as(path)
    spans = [json.loads(line) for line in path.read_text().splitlines()]
    assert {s["trace_id"] for s in spans} == chatbot and len(spans) == sum(t["span_count"] for t in listed)
    page.select_option("select[name=export-format]", "parquet")
    with page.expect_download() as parquet_download:
        page.click(".export button:has-text('Export')")
    assert parquet_download.value.suggested_filename == "llmscope-default-spans.parquet"
    path = tmp_path / "spans.parquet"
    parquet_download.value.save_as(path)
    table = pq.read_table(path)
    assert table.num_rows == len(spans) and set(table.column("trace_id").to_pylist()) == chatbot
