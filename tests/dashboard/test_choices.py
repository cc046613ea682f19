"""The dropdowns offer the values of the period on screen, and always the one chosen."""

from datetime import timedelta

from aftercall.web.dashboard.views import filter_choices
from scoring.report import ReportQuery
from tests.scoring.test_report import START, add


def test_choices_come_from_the_period_and_keep_the_chosen_value(runtime):
    with runtime.db.session() as session:
        add(session, 1, ended=START)
        old = add(session, 2, ended=START - timedelta(days=60))
        old.queue = "retired-queue"
    period = ReportQuery(since=START - timedelta(days=1), until=START + timedelta(days=1))
    with runtime.db.session() as session:
        everything = filter_choices(session)
        on_screen = filter_choices(session, period)
        chosen = filter_choices(
            session, ReportQuery(since=period.since, until=period.until, queue="retired-queue")
        )
    assert everything["queue"] == ["billing", "retired-queue"]
    assert on_screen["queue"] == ["billing"]
    assert chosen["queue"] == ["billing", "retired-queue"]
