"""What one answer webhook costs the database: the SQL statements it runs, pinned.

The answer webhook is the hot path under load (bench.webhook_load, issue 6); a change
that adds a query to it should fail here and be a decision, not an accident.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, func, select

from aftercall.models import Answer
from ivr import calls


@contextmanager
def sql_statements(runtime) -> Iterator[list[str]]:
    """The statements sent through the engine inside the block (BEGIN, COMMIT and a
    pool ping go through the driver directly and are not counted)."""
    statements: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):
        statements.append(" ".join(statement.split()))

    event.listen(runtime.db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", count)


def _verbs(statements: list[str]) -> list[str]:
    return [" ".join(statement.split()[:4]) for statement in statements]


def test_an_answer_costs_two_statements_on_postgresql_three_on_sqlite(call, runtime):
    # A first call, so that this process has met the survey version.
    warm = call()
    warm.press(warm.start(), "9")

    c = call()
    question = c.start()
    with sql_statements(runtime) as statements:
        reply = c.press(question, "9")
    assert reply.root.find("./Gather").get("action") == f"{c.base}/questions/csat?try=1"
    # The attempt with its request (and its survey version's digest), then the answer:
    # INSERT ... ON CONFLICT DO NOTHING, and the request's answers so far.
    assert statements[0].startswith("SELECT")
    assert "FROM call_attempts JOIN survey_requests" in statements[0]
    if runtime.db.engine.dialect.name == "postgresql":
        # One statement: the INSERT in a CTE, the answers read beside it.
        assert len(statements) == 2, statements
        assert statements[1].startswith("WITH stored AS (INSERT INTO answers")
        assert "ON CONFLICT" in statements[1]
    else:
        assert len(statements) == 3, statements
        assert statements[1].startswith("SELECT answers.question_key, answers.value FROM answers")
        assert statements[2].startswith("INSERT INTO answers")
        assert "ON CONFLICT" in statements[2]

    # Twilio redelivers it: the same TwiML, read from what is stored, nothing written.
    with sql_statements(runtime) as statements:
        again = c.press(question, "9")
    assert again.body == reply.body
    assert len(statements) == 2, statements
    if runtime.db.engine.dialect.name == "sqlite":
        assert all(statement.startswith("SELECT") for statement in statements), _verbs(statements)
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(Answer.id))) == 2
        assert session.scalars(select(Answer.value).where(Answer.question_key == "nps")).all() == [
            9,
            9,
        ]


def test_a_redelivery_with_another_digit_keeps_the_first_answer(call, runtime):
    c = call()
    question = c.start()
    first = c.press(question, "9")
    again = c.press(question, "3")
    assert again.body == first.body
    with runtime.db.session() as session:
        assert session.scalars(select(Answer.value)).all() == [9]


def test_an_answer_already_stored_is_not_stored_again(call, runtime):
    c = call()
    c.start()
    with runtime.db.session() as session:
        live = calls.find_call(session, c.attempt_id, c.call_sid, runtime.catalog)
        nps = live.definition.question("nps")
        assert calls.store_answer(session, live, nps, value=9, keys="9") is not None
    # A second delivery that did not see the first one's answer when it read the
    # request's answers: the unique constraint turns its insert into nothing.
    with runtime.db.session() as session:
        live = calls.find_call(session, c.attempt_id, c.call_sid, runtime.catalog)
        assert calls.store_answer(session, live, nps, value=3, keys="3") is None
    with runtime.db.session() as session:
        assert session.scalars(select(Answer.value)).all() == [9]
