from click.testing import CliRunner

from aftercall.cli import main


def test_pause_status_resume_reconcile(runtime, redis_url, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("DATABASE_URL", runtime.settings.database_url)
    runner = CliRunner()

    result = runner.invoke(main, ["dialer", "pause", "--reason", "carrier outage"])
    assert result.exit_code == 0, result.output
    status = runner.invoke(main, ["dialer", "status"])
    assert "PAUSED: carrier outage" in status.output
    assert runner.invoke(main, ["dialer", "resume"]).exit_code == 0
    assert "dialing:         running" in runner.invoke(main, ["dialer", "status"]).output
    reconciled = runner.invoke(main, ["dialer", "reconcile"])
    assert reconciled.exit_code == 0, reconciled.output
    assert "re-queued 0 scheduled calls" in reconciled.output
