"""The README's screenshots, made from the demo rather than by hand (issue 20).

    python docs/screenshots/make.py [--out docs/screenshots] [--calls 200] [--seed 20]
                                    [--day 2026-11-27]

It runs what `aftercall demo --serve` runs, in this process: the simulated campaign on a
free local port over a fresh SQLite file in a temporary folder, then the demo admin.
Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright, as the browser tests
do) signs in as that admin and saves each page at one fixed viewport: the dashboard's
overview, the survey list, a call preview and, where the dashboard has one, the survey
editor (left out, and said so, where its pages do not answer).

In-process rather than `aftercall demo --serve` in a subprocess, so that the campaign's
last day can be fixed (`--day`) instead of following the calendar: the dashboard reads
the demo's simulated clock, so the same seed, calls and day give the same figures and
the same dates in every picture, whenever the script runs. It does not commit, compare
or optimise the images.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import chdir, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from aftercall.demo import demo_settings, demo_start_time, simulated_deployment

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# One size for every picture, at one device pixel per CSS pixel, so a README reader sees
# them side by side at the same scale and a re-run gives images of the same size.
VIEWPORT = {"width": 1280, "height": 800}
CALLS = 200
SEED = 20
# A Friday: the campaign's four weeks end on it, whatever today is.
LAST_DAY = date(2026, 11, 27)
SURVEY = "post-call"
LANGUAGE = "en"


@dataclass(frozen=True)
class Shot:
    """One picture: the file it is saved as and the dashboard page it shows, the first of
    `paths` that answers 200. An optional one is skipped, not an error, where none does."""

    file: str
    paths: tuple[str, ...]
    optional: bool = False


SHOTS = (
    Shot("dashboard.png", ("/dashboard",)),
    Shot("surveys.png", ("/dashboard/surveys",)),
    Shot("preview.png", (f"/dashboard/surveys/{SURVEY}/preview/{LANGUAGE}",)),
    # The survey editor is new: the shipped survey in it (edited, or copied where a
    # survey from the survey folder cannot be edited), or else the new-survey form;
    # where the dashboard has none of them yet, no picture.
    Shot(
        "editor.png",
        tuple(f"/dashboard/surveys/{page}" for page in (f"{SURVEY}/edit", f"{SURVEY}/copy", "new")),
        optional=True,
    ),
)


@contextmanager
def served_demo(calls: int, seed: int, last_day: date) -> Iterator[tuple[str, str, str]]:
    """The demo's campaign served on a free port: (base URL, username, password).

    The demo's SQLite file goes to a temporary folder (demo_settings writes it to the
    current one), and the embedded queue is used even where REDIS_URL is set, so the
    pictures show the demo exactly as a new user sees it.
    """
    os.environ.pop("REDIS_URL", None)
    with tempfile.TemporaryDirectory(prefix="aftercall-shots-") as folder, chdir(folder):
        settings = demo_settings(serve=True)
        with simulated_deployment(settings, seed, demo_start_time(last_day)) as deployment:
            deployment.run_campaign(calls)
            admin = deployment.open_to_visitors()
            yield deployment.base_url, admin.username, admin.password


def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/dashboard/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")
    if "/dashboard/login" in page.url:
        raise SystemExit(f"could not sign in as {username}")


def take(browser: Browser, base_url: str, username: str, password: str, out: Path) -> list[str]:
    """Save each of SHOTS into `out`; the lines to print about them."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, base_url, username, password)
    said = []
    for shot in SHOTS:
        answered = []
        for path in shot.paths:
            response = page.goto(base_url + path)
            answered.append(f"{path} {response.status if response is not None else 'nothing'}")
            if response is not None and response.status == 200:
                break
        else:
            if not shot.optional:
                raise SystemExit(f"no picture for {shot.file}: {', '.join(answered)}")
            said.append(f"skipped {shot.file}: {', '.join(answered)}")
            continue
        # Web fonts and charts settle before the picture, not half-drawn in it.
        page.wait_for_load_state("networkidle")
        page.screenshot(path=out / shot.file)
        said.append(f"saved {out / shot.file} ({path})")
    context.close()
    return said


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs")
    parser.add_argument("--calls", type=int, default=CALLS, help="the demo's support calls")
    parser.add_argument("--seed", type=int, default=SEED, help="the demo's seed")
    parser.add_argument(
        "--day", type=date.fromisoformat, default=LAST_DAY,
        help="the campaign's last day (YYYY-MM-DD; a weekend day means the Friday before)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"no Chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 1
    out = args.out.resolve()  # before the demo moves into its own folder
    out.mkdir(parents=True, exist_ok=True)
    with (
        served_demo(args.calls, args.seed, args.day) as (base_url, username, password),
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            said = take(browser, base_url, username, password, out)
        finally:
            browser.close()
    print("\n".join(said))
    return 0


if __name__ == "__main__":
    sys.exit(main())
