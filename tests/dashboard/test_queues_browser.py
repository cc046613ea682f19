"""The Queues page in headless Chromium, on a real Redis with real rq worker processes:
an admin requeues a failed job and a worker runs it; a supervisor reads but a forged
POST is refused; an analyst gets 403; a form without its CSRF token is refused; and no
Content-Security-Policy violation on the way."""

from __future__ import annotations

from dataclasses import replace

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from aftercall.web import create_app
from core.users import create_user
from tests.aftercall.rq_processes import PHONE, call_customer, run_burst_worker, wait_until, worker
from tests.dashboard.conftest import PASSWORD
from tests.dashboard.test_browser import browser  # noqa: F401 - the shared fixture

pytestmark = [pytest.mark.browser, pytest.mark.redis]

MASKED = "+1 415 ••• ••23"


@pytest.fixture
def redis(redis_url):
    connection = Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def live_url(runtime, redis_url):
    from phonesim import BackgroundServer

    live = replace(runtime, settings=runtime.settings.with_overrides(redis_url=redis_url))
    with live.db.session() as session:
        for role in ("admin", "supervisor", "analyst"):
            create_user(session, role, PASSWORD, role)
    server = BackgroundServer(create_app(runtime=live)).start()
    yield server.base_url
    server.stop()


@pytest.fixture
def line_up(tmp_path):
    return tmp_path / "line-up"


@pytest.fixture
def failed_job(redis, redis_url, line_up) -> str:
    job = Queue("calls", connection=redis).enqueue(call_customer, PHONE, str(line_up))
    run_burst_worker(redis_url, "calls")
    assert job.get_status(refresh=True) == JobStatus.FAILED
    return job.id


class Tab:
    """A browser page that collects console errors (CSP violations among them)."""

    def __init__(self, browser, base_url: str):  # noqa: F811
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(5000)
        self.base_url = base_url
        self.problems: list[str] = []
        self.page.on(
            "console", lambda m: self.problems.append(m.text) if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))

    def sign_in(self, username: str, path: str = "/dashboard/queues"):
        self.page.goto(self.base_url + path)
        assert self.page.url.startswith(f"{self.base_url}/dashboard/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        with self.page.expect_navigation():
            self.page.click("#login-form button[type=submit]")

    def cell(self, selector: str) -> str:
        return self.page.inner_text(selector).strip()

    def close(self) -> None:
        self.context.close()


def failed_ids(redis) -> list[str]:
    return Queue("calls", connection=redis).failed_job_registry.get_job_ids(cleanup=False)


def test_admin_requeues_a_failed_job_and_a_worker_runs_it(
    browser,  # noqa: F811
    live_url,
    failed_job,
    redis,
    redis_url,
    line_up,
):
    tab = Tab(browser, live_url)
    tab.sign_in("admin", "/dashboard")
    with tab.page.expect_navigation():
        tab.page.click("#nav-queues")
    assert tab.page.url == f"{live_url}/dashboard/queues"
    page = tab.page

    queues = page.eval_on_selector_all("#queues tbody tr", "rows => rows.map(r => r.dataset.queue)")
    assert queues == ["calls", "messages", "alerts"]
    assert tab.cell('#queues tr[data-queue="calls"] td[data-key="failed"]') == "1"
    assert page.is_visible("#no-cron") and page.is_visible("#no-workers")
    row = f'#failed tr[data-job="{failed_job}"]'
    assert MASKED in tab.cell(f'{row} td[data-key="call"]')
    assert tab.cell(f'{row} td[data-key="error"]') == (
        f"ConnectionError: no line to {MASKED} for request 42"
    )
    assert "5550123" not in page.content()

    line_up.touch()  # the cause is fixed; a worker is running again
    with worker(redis_url, "calls", "alerts"):
        page.reload()
        assert tab.cell('#workers tr[data-worker="queue-test-worker"] td[data-key="queues"]') == (
            "calls, alerts"
        )
        assert tab.cell('#queues tr[data-queue="calls"] td[data-key="workers"]') == "1"
        assert page.get_attribute(
            '#queues tr[data-queue="calls"] td[data-key="scheduler"]', "data-alive"
        ) == "yes"  # fmt: skip
        with page.expect_navigation():
            page.click(f"{row} form.requeue button")
        assert failed_job in tab.cell('p.flash[data-category="done"]')
        wait_until(
            lambda: Job.fetch(failed_job, connection=redis).get_status() == JobStatus.FINISHED,
            "the requeued job ran",
        )
    assert line_up.read_text() == f"called {PHONE}"

    page.reload()
    assert tab.cell('#queues tr[data-queue="calls"] td[data-key="failed"]') == "0"
    assert page.locator(row).count() == 0
    assert tab.problems == [], tab.problems
    tab.close()


def test_supervisor_sees_no_buttons_and_a_forged_post_is_refused(
    browser,  # noqa: F811
    live_url,
    failed_job,
    redis,
):
    tab = Tab(browser, live_url)
    tab.sign_in("supervisor")
    page = tab.page
    assert page.url == f"{live_url}/dashboard/queues"
    assert page.locator(f'#failed tr[data-job="{failed_job}"]').count() == 1
    assert page.locator("#failed form").count() == 0
    assert page.locator("#failed button").count() == 0

    # What a supervisor could still try: the request an admin's button sends, with this
    # session's own valid CSRF token (from the sign-out form).
    status = page.evaluate(
        """async (url) => {
            const token = document.querySelector('input[name=csrf_token]').value;
            const body = new URLSearchParams({csrf_token: token});
            return (await fetch(url, {method: 'POST', body})).status;
        }""",
        f"/dashboard/queues/calls/failed/{failed_job}/requeue",
    )
    assert status == 403
    assert failed_ids(redis) == [failed_job]
    assert tab.problems == [
        "Failed to load resource: the server responded with a status of 403 (FORBIDDEN)"
    ], tab.problems
    tab.close()


def test_analyst_gets_403(browser, live_url, failed_job):  # noqa: F811
    tab = Tab(browser, live_url)
    tab.sign_in("analyst", "/dashboard")
    assert tab.page.url == f"{live_url}/dashboard"
    assert tab.page.locator("#nav-queues").count() == 0
    response = tab.page.goto(f"{live_url}/dashboard/queues")
    assert response is not None and response.status == 403
    tab.close()


def test_a_form_without_its_csrf_token_is_refused(browser, live_url, failed_job, redis):  # noqa: F811
    tab = Tab(browser, live_url)
    tab.sign_in("admin")
    page = tab.page
    row = f'#failed tr[data-job="{failed_job}"]'
    page.eval_on_selector_all(
        f"{row} input[name=csrf_token]", "inputs => inputs.forEach(i => i.remove())"
    )
    with page.expect_navigation() as navigation:
        page.click(f"{row} form.delete button")
    assert navigation.value is not None and navigation.value.status == 400
    assert "expired" in page.inner_text("body")
    assert failed_ids(redis) == [failed_job]
    tab.close()
