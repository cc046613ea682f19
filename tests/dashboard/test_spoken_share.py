"""The dashboard says how many answers of its range were said aloud (core.utterance)."""

from __future__ import annotations

from tests.dashboard.dom import parse
from tests.scoring.test_spoken_share import seed

RANGE = "/dashboard?since=2026-03-01&until=2026-03-31"


def spoken_line(client) -> str:
    return " ".join(parse(client.get(RANGE).text).by_id("spoken-share").text.split())


def test_the_share_of_spoken_answers_is_shown(runtime, signed_in):
    assert spoken_line(signed_in).endswith("no answers in this range.")
    seed(runtime)
    assert spoken_line(signed_in).endswith("3 of 6 (50%).")
