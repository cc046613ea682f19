"""The README's main command: a whole simulated campaign, deterministic per seed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from aftercall.cli import main
from aftercall.demo import demo_settings, run_demo
from core.models import RequestState

pytestmark = pytest.mark.e2e


def test_same_seed_same_campaign(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    first = run_demo(30, 5, demo_settings())
    second = run_demo(30, 5, demo_settings())
    assert first == second
    assert sum(first.outcomes.values()) + first.rejected == 30
    assert first.outcomes.get(RequestState.COMPLETED, 0) > 0
    assert first.outcomes.get(RequestState.CALLING, 0) == 0  # every call reached an end
    assert "Example Company" in first.sample_transcript[0]


def test_demo_command_prints_outcomes_and_scores(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["demo", "--calls", "12", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "Outcomes:" in result.output
    assert "Scores by agent:" in result.output
    assert (tmp_path / "aftercall-demo.db").exists()
