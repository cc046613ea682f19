"""`aftercall demo --serve` as a new user runs it: a real process with no DATABASE_URL or
REDIS_URL, signed in to with headless Chromium, a test call placed from the survey page
and answered, then Ctrl-C.

The test call goes to an Australian number: from the demo's simulated evening (UTC) it
is night in Sydney, so the call is due at the next opening of the survey's calling
hours, and the served demo has to move its simulated clock there for the call to come
through at all.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from core.config import DEFAULT_SURVEYS_DIR
from core.survey import SurveyCatalog
from tests.dashboard.test_browser import browser  # noqa: F401 - the shared fixture

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CALLS = 10
STARTUP_SECONDS = 45
# Night in Sydney at any hour the demo's campaign can end (18:00-21:00 UTC).
NIGHT_NUMBER = "+61 2 9374 4000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Output:
    """A pipe read line by line on a thread, so a full pipe never stalls the demo."""

    lines: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False

    def follow(self, pipe) -> None:
        for raw in pipe:
            with self.changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"no line matching {pattern!r}:\n{self.text}")
                self.changed.wait(left)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Demo:
    process: subprocess.Popen
    stdout: Output
    stderr: Output


@pytest.fixture
def served_demo(tmp_path: Path) -> Iterator[Demo]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    command = ["aftercall", "demo", "--serve", "--calls", str(CALLS), "--port", str(free_port())]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    demo = Demo(process, Output(), Output())
    readers = [
        threading.Thread(target=demo.stdout.follow, args=(process.stdout,), daemon=True),
        threading.Thread(target=demo.stderr.follow, args=(process.stderr,), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        yield demo
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        for reader in readers:
            reader.join(timeout=5)


def outcomes(text: str) -> dict[str, int]:
    """The "Outcomes:" block the demo prints: state -> requests."""
    block = text.split("\nOutcomes:\n", 1)[1].split("\n\n", 1)[0]
    counts = {}
    for line in block.splitlines():
        state, count = line.split()[:2]
        counts[state] = int(count)
    return counts


def test_served_demo_dashboard_and_a_test_call(browser, served_demo, tmp_path):  # noqa: F811
    started = time.monotonic()
    url = served_demo.stdout.wait_for(r"^dashboard: (http://\S+)$", STARTUP_SECONDS)[1]
    password = served_demo.stdout.wait_for(r"^password:\s+(\S+)", 1)[1]
    served_demo.stdout.wait_for(r"^Ctrl-C stops\.$", 1)
    counts = outcomes(served_demo.stdout.text)
    received = sum(n for state, n in counts.items() if state != "rejected")
    nps_answers = served_demo.stdout.wait_for(r"^total\s+(?:-|[+-]\d+ ±\d+\*?)\s+(\d+)\s", 1)[1]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/dashboard")
    assert (tmp_path / "aftercall-demo.db").exists()

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(5000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(url)
    assert "/dashboard/login" in page.url
    page.fill("input[name=username]", "demo-admin")
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    assert page.url == url

    # The campaign's figures, as the demo printed them.
    def funnel(key: str) -> int:
        return int(page.get_attribute(f'#funnel tr[data-key="{key}"] td.num', "data-value"))

    assert funnel("received") == received
    assert funnel("completed") == counts.get("completed", 0) > 0
    assert page.get_attribute("#headline-nps", "data-n") == nps_answers

    with page.expect_navigation():
        page.click("#nav-surveys")
    with page.expect_navigation():
        page.click("#test-call-post-call")
    page.fill("input[name=phone]", NIGHT_NUMBER)
    with page.expect_navigation():
        page.click("#test-call-form button[type=submit]")
    assert re.search(r"/dashboard/surveys/test-calls/\d+$", page.url), page.url

    deadline = time.monotonic() + 20
    while page.get_attribute("#test-call", "data-state") != "completed":
        assert time.monotonic() < deadline, page.inner_text("#test-call")
        time.sleep(0.3)
        with page.expect_navigation():
            page.click("#refresh")
    assert page.eval_on_selector_all(
        "#attempts tbody tr", "rows => rows.map(r => r.dataset.status)"
    ) == ["completed"]
    # Every question of the survey answered, the comment (asked only of detractors:
    # the cooperative customer answers so that it is) with its transcript.
    survey = SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR).get("post-call")
    answered = page.eval_on_selector_all(
        "#answers tr[data-question]", "rows => rows.map(r => r.dataset.question)"
    )
    assert answered == [q.key for q in survey.questions]
    assert "test call from the dashboard" in page.inner_text('#answers tr[data-question="improve"]')
    served_demo.stdout.wait_for(r"^simulated clock moved to .* for a call due then$", 1)
    assert problems == [], problems
    context.close()

    os.killpg(served_demo.process.pid, signal.SIGINT)
    assert served_demo.process.wait(timeout=15) == 0, served_demo.stderr.text
    served_demo.stdout.wait_for(r"^demo stopped$", 5)
    assert "Traceback" not in served_demo.stderr.text + served_demo.stdout.text
    assert time.monotonic() - started < 60
