"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

What the test client cannot show: the sign-in form and redirects as a browser follows
them, the filter form submitted by a click, sort links, a CSV download, the mode and
channel filters found by their role and accessible name, and no Content-Security-Policy
violation anywhere on the way (Chromium reports each one on the console).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from scoring.report import report
from tests.dashboard.conftest import PASSWORD, USERNAME, report_query
from tests.dashboard.test_channels import add_text_surveys
from tests.dashboard.test_modes import add_in_call_surveys

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@contextmanager
def chromium() -> Iterator:
    """Debian's headless Chromium, launched by Playwright; skipped where it is missing,
    except in CI, where its absence fails the test."""
    if not CHROMIUM.exists():
        message = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def browser() -> Iterator:
    with chromium() as launched:
        yield launched


@pytest.fixture
def live_url(app) -> Iterator[str]:
    from phonesim import BackgroundServer

    server = BackgroundServer(app).start()
    yield server.base_url
    server.stop()


def headline_nps(page) -> str:
    return page.get_attribute("#headline-nps", "data-value")


def agents_column(page, key: str) -> list[str]:
    return page.eval_on_selector_all(
        f'#agents tbody td[data-key="{key}"]', "cells => cells.map(c => c.dataset.value)"
    )


def test_sign_in_filter_sort_and_download(browser, live_url, seeded, user, tmp_path):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(5000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(f"{live_url}/dashboard?since=2026-11-01&until=2026-11-15")
    assert page.url.startswith(f"{live_url}/dashboard/login")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    assert page.url == f"{live_url}/dashboard?since=2026-11-01&until=2026-11-15"

    with seeded.db.session() as session:
        (everything,) = report(session, report_query())
        (billing,) = report(session, report_query(queue="billing"))
        by_agent = report(session, replace(report_query(queue="billing"), by=("agent",)))
    assert headline_nps(page) == f"{everything.nps:.1f}"
    assert page.inner_text("#headline-nps .value") == f"{everything.nps:+.1f}"

    # Sort by NPS, best first, by clicking the column header.
    with page.expect_navigation():
        page.click('#agents th a[data-sort="-nps"]')
    scores = [float(v) for v in agents_column(page, "nps")]
    assert scores == sorted(scores, reverse=True) and len(scores) == 4

    # Narrow to one queue with the filter form: the figures change, the sort stays.
    page.select_option("select[name=queue]", "billing")
    with page.expect_navigation():
        page.click("#filters button[type=submit]")
    assert "queue=billing" in page.url
    assert headline_nps(page) == f"{billing.nps:.1f}" != f"{everything.nps:.1f}"
    expected_order = sorted(by_agent, key=lambda r: r.nps, reverse=True)
    assert agents_column(page, "agent") == [r.group["agent"] for r in expected_order]

    with page.expect_download() as download_info:
        page.click("#export-agents")
    download = download_info.value
    assert download.suggested_filename == "aftercall-agents-2026-11-01-to-2026-11-15.csv"
    saved = tmp_path / "agents.csv"
    download.save_as(saved)
    with saved.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["Agent"] for r in rows] == agents_column(page, "agent")
    assert [r["NPS"] for r in rows] == agents_column(page, "nps")
    assert [int(r["NPS n"]) for r in rows] == [r.nps_responses for r in expected_order]

    assert problems == []
    context.close()


def test_the_mode_filter_by_its_label(browser, live_url, seeded, user):
    """The mode dropdown is found the way assistive technology finds it, by its role and
    label; choosing in-call shows only in-call surveys, an unattributed one among them."""
    add_in_call_surveys(seeded)
    page = browser.new_page()
    page.set_default_timeout(5000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_url}/dashboard?since=2026-11-01&until=2026-11-15")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")

    modes = page.get_by_role("combobox", name="Mode")
    assert modes.input_value() == ""
    modes.select_option(label="In-call")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    assert "mode=in_call" in page.url
    assert page.get_by_role("combobox", name="Mode").input_value() == "in_call"
    mode_cells = page.eval_on_selector_all(
        '#modes tbody td[data-key="mode"]', "cells => cells.map(c => c.textContent.trim())"
    )
    assert mode_cells == ["In-call"]
    assert agents_column(page, "agent")[-1] == "unattributed"
    assert problems == []
    page.close()


def test_the_channel_filter_by_its_label(browser, live_url, seeded, user):
    """The channel dropdown is found by its role and label; choosing SMS shows only the
    texted surveys, and the funnel its text steps with the figures the report gives."""
    add_text_surveys(seeded)
    with seeded.db.session() as session:
        (expected,) = report(session, report_query(channel="sms"))
    page = browser.new_page()
    page.set_default_timeout(5000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_url}/dashboard?since=2026-11-01&until=2026-11-15")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")

    channels = page.get_by_role("combobox", name="Channel")
    assert channels.input_value() == ""
    channels.select_option(label="SMS")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    assert "channel=sms" in page.url
    assert page.get_by_role("combobox", name="Channel").input_value() == "sms"
    channel_cells = page.eval_on_selector_all(
        '#channels tbody td[data-key="channel"]', "cells => cells.map(c => c.textContent.trim())"
    )
    assert channel_cells == ["SMS"]
    steps = page.eval_on_selector_all(
        "#funnel tbody tr",
        "rows => rows.map(r => [r.dataset.key, r.querySelector('td').dataset.value])",
    )
    assert [key for key, _ in steps if key in ("texted", "undelivered", "no_reply")] == [
        "texted", "undelivered", "no_reply"
    ]  # fmt: skip
    figures = dict(steps)
    assert (figures["texted"], figures["undelivered"], figures["no_reply"]) == (
        str(expected.texted),
        str(expected.undelivered),
        str(expected.no_reply),
    )
    assert problems == []
    page.close()
