"""What one answer webhook costs the database: the SQL statements it runs, pinned.

The answer webhook is the hot path under load (bench.webhook_load, issue 6); a change
that adds a query to it should fail here and be a decision, not an accident.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, func, select

from core import flow
from core.models import Answer, CallAttempt, RequestState
from ivr import calls
from tests.ivr.conftest import without_ref


@contextmanager
def sql_statements(runtime) -> Iterator[list[str]]:
    """The statements sent through the engine inside the block, each prefixed with
    "autocommit: " when no transaction was open around it (BEGIN, COMMIT and a pool
    ping go through the driver directly and are not counted)."""
    statements: list[str] = []

    def count(conn, _cursor, statement, _parameters, _context, _executemany):
        driver = conn.connection.driver_connection
        autocommit = driver.autocommit if hasattr(driver, "autocommit") else None
        if autocommit is None:  # sqlite3 before Python 3.12's autocommit attribute
            autocommit = driver.isolation_level is None
        statements.append(("autocommit: " if autocommit else "") + " ".join(statement.split()))

    event.listen(runtime.db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", count)


def _verbs(statements: list[str]) -> list[str]:
    return [" ".join(statement.split()[:4]) for statement in statements]


def test_an_answer_is_one_statement_on_postgresql_three_on_sqlite(call, runtime):
    # A first call, so that this process has met the survey version.
    warm = call()
    warm.press(warm.start(), "9")

    c = call()
    question = c.start()
    action = question.root.find("./Gather").get("action")
    # The question's URL names the call (request, survey version, language).
    assert action.startswith(f"{c.base}/questions/nps?try=1&ref=")
    with sql_statements(runtime) as statements:
        reply = c.press(question, "9")
    assert reply.root.find("./Gather").get("action").startswith(f"{c.base}/questions/csat?try=1&")
    # No SELECT of the call first, and no transaction: the answer's INSERT selects from
    # the call as the URL names it (no row, nothing inserted, if it is not that call).
    if runtime.db.engine.dialect.name == "postgresql":
        # One statement: the call, the INSERT in a CTE, the answers read beside it (and
        # the request moved from abandoned to partial, if a hang-up came first).
        assert len(statements) == 1, statements
        assert "UPDATE survey_requests SET" in statements[0]
        assert statements[0].startswith("autocommit: WITH the_call AS (SELECT")
        assert "INSERT INTO answers" in statements[0] and "ON CONFLICT" in statements[0]
    else:
        # Three, in a transaction (no round trips to save on SQLite, which has no UPDATE
        # in a CTE): the INSERT, the guarded move from abandoned, the answers read.
        assert len(statements) == 3, statements
        assert statements[0].startswith("INSERT INTO answers")
        assert statements[1].startswith("UPDATE survey_requests SET state")
        assert "FROM call_attempts JOIN survey_requests" in statements[0]
        assert "ON CONFLICT" in statements[0]
        assert statements[2].startswith("SELECT answers.question_key")

    # Twilio redelivers it: the same TwiML, read from what is stored, nothing written.
    with sql_statements(runtime) as statements:
        again = c.press(question, "9")
    assert again.body == reply.body
    if runtime.db.engine.dialect.name == "postgresql":
        assert len(statements) == 1, statements
    else:
        # The insert that inserted nothing, the call checked, the answers read.
        assert len(statements) == 3, _verbs(statements)
    with runtime.db.session() as session:
        assert session.scalar(select(func.count(Answer.id))) == 2
        assert session.scalars(select(Answer.value).where(Answer.question_key == "nps")).all() == [
            9,
            9,
        ]


def test_a_url_without_the_call_reads_it_first(call, runtime):
    # A question URL from TwiML served before URLs named the call (calls in progress
    # during an upgrade): the call is read, then the answer stored, in one transaction.
    c = call()
    c.start()
    with sql_statements(runtime) as statements:
        reply = c.post(f"{c.base}/questions/nps?try=1", c.params(Digits="9"))
    assert reply.root.find("./Gather").get("action").startswith(f"{c.base}/questions/csat?")
    assert statements[0].startswith("SELECT call_attempts.call_sid")
    assert not any(statement.startswith("autocommit") for statement in statements)
    with runtime.db.session() as session:
        assert session.scalars(select(Answer.value)).all() == [9]


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


def test_the_answer_that_may_end_the_survey_is_one_transaction_with_its_end(call, runtime):
    # After CSAT only a conditional question is left: answering it may end the survey,
    # so the answer and the request's completion are written together, in a transaction.
    c = call()
    csat = c.press(c.start(), "9")
    with sql_statements(runtime) as statements:
        reply = c.press(csat, "5")
    assert reply.verbs() == ["Say", "Hangup"]
    assert not any(statement.startswith("autocommit") for statement in statements)
    # The URL named the call: no SELECT of it first; the answer's statement checks it.
    assert "INSERT INTO answers" in statements[0]
    if runtime.db.engine.dialect.name == "postgresql":
        # The answer (call checked, answers read), then the end: completed, or abandoned
        # had nothing been answered, decided in the same statement.
        assert len(statements) == 2, statements
        assert statements[1].startswith("UPDATE survey_requests SET state=CASE WHEN (EXISTS")
    with runtime.db.session() as session:
        request = session.get(CallAttempt, c.attempt_id).request
        assert request.state is RequestState.COMPLETED
        assert {a.question_key: a.value for a in request.answers} == {"nps": 9, "csat": 5}


def test_may_finish_after_looks_for_a_later_unconditional_question(runtime):
    definition = runtime.catalog.get("post-call")
    assert not flow.may_finish_after(definition, "nps")  # csat always follows
    assert flow.may_finish_after(definition, "csat")  # only "improve", when nps <= 6
    assert flow.may_finish_after(definition, "improve")  # the last question


def _at_the_comment(call):
    """A detractor's call, up to the recorded comment ("improve")."""
    c = call()
    comment = c.press(c.press(c.start(), "3"), "2")
    assert comment.root.find("./Record") is not None, comment.body
    return c, comment


def _comments(runtime) -> list[tuple[int, str | None, str | None, int | None, str]]:
    with runtime.db.session() as session:
        return session.execute(
            select(
                Answer.request_id, Answer.recording_url, Answer.recording_sid,
                Answer.recording_seconds, Answer.keys,
            ).where(Answer.question_key == "improve")
        ).all()  # fmt: skip


def test_a_comment_and_the_surveys_end_are_two_statements_in_one_transaction(call, runtime):
    c, comment = _at_the_comment(call)
    # The Record's action names the call, as a question's does.
    assert "&ref=" in comment.root.find("./Record").get("action")
    with sql_statements(runtime) as statements:
        reply = c.record(comment, seconds=12)
    assert reply.verbs() == ["Say", "Hangup"]
    assert not any(statement.startswith("autocommit") for statement in statements)
    if runtime.db.engine.dialect.name == "postgresql":
        # No SELECT of the call first: the comment's INSERT checks it; then the end.
        assert len(statements) == 2, statements
        assert statements[0].startswith("WITH the_call AS (SELECT")
        assert "INSERT INTO answers" in statements[0]
        assert statements[1].startswith("UPDATE survey_requests SET state=CASE WHEN (EXISTS")
    [(request_id, url, sid, seconds, keys)] = _comments(runtime)
    assert url.endswith("/Recordings/RE1") and sid == "RE" + "1" * 32
    assert (seconds, keys) == (12, "#")
    with runtime.db.session() as session:
        request = session.get(CallAttempt, c.attempt_id).request
        assert request.id == request_id
        assert request.state is RequestState.COMPLETED

    # Twilio redelivers it: the same goodbye, the first delivery's comment stands.
    again = c.record(comment, seconds=99)
    assert again.body == reply.body
    assert [row[3] for row in _comments(runtime)] == [12]


def test_a_comment_url_without_the_call_reads_it_first(call, runtime):
    c, comment = _at_the_comment(call)
    action = without_ref(comment.root.find("./Record").get("action"))
    with sql_statements(runtime) as statements:
        reply = c.post(action, c.params(RecordingUrl="https://api.twilio.com/rec/RE2", Digits="#"))
    assert reply.verbs() == ["Say", "Hangup"]
    assert statements[0].startswith("SELECT call_attempts.call_sid")
    assert [row[1] for row in _comments(runtime)] == ["https://api.twilio.com/rec/RE2"]


def test_a_comment_url_naming_another_request_writes_nothing_for_it(call, runtime):
    other, _ = _at_the_comment(call)
    c, comment = _at_the_comment(call)
    action = comment.root.find("./Record").get("action")
    with runtime.db.session() as session:
        other_request = session.get(CallAttempt, other.attempt_id).request_id
        own_request = session.get(CallAttempt, c.attempt_id).request_id
    # Signed as Twilio would sign it, but naming the other call's request.
    forged = action.replace(f"ref={own_request}.", f"ref={other_request}.")
    assert forged != action
    reply = c.post(forged, c.params(RecordingUrl="https://api.twilio.com/rec/RE3", Digits="#"))
    assert reply.verbs() == ["Say", "Hangup"]
    # The named statement found no such call and wrote nothing; the call was then read
    # from the attempt, and the comment is its own request's.
    assert [row[0] for row in _comments(runtime)] == [own_request]
