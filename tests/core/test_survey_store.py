"""Surveys kept in the database (core.survey_store): the rules of creating, saving,
retiring and restoring them, their history, their TOML, and the catalog every process
looks them up in. On SQLite and PostgreSQL (the `runtime` fixture's two databases)."""

from __future__ import annotations

import textwrap
import threading
import tomllib
from dataclasses import replace
from datetime import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from core.config import DEFAULT_SURVEYS_DIR
from core.db import Database
from core.models import RequestState, SurveyAuditEntry, SurveyHead, SurveyVersion
from core.runtime import Runtime
from core.survey import (
    SurveyCatalog,
    SurveyDefinition,
    UnknownSurvey,
    load_survey_file,
)
from core.survey_store import (
    CombinedSurveyCatalog,
    ManagedByFile,
    SurveyConflict,
    SurveyExists,
    change_summary,
    create_survey,
    export_toml,
    import_survey,
    managed_survey,
    managed_surveys,
    restore_survey,
    retire_survey,
    save_survey,
    survey_history,
)
from phonesim import Persona
from tests.e2e.conftest import campaign, dialer  # noqa: F401 - fixtures of the e2e test below

FILES = SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR)
SHIPPED = FILES.get("post-call")

# Every part of a survey file set, with text TOML must escape.
RICH = """
name = "rich"
title = "A \\"rich\\" survey\\\\ with everything"
default_language = "es"
max_tries = 5
leave_voicemail = true
company_name = "Acme \\"Best\\" Support"
callback_number = "+18005550100"
channel = "sms"
keys_only = true

[[questions]]
key = "nps"
kind = "nps"
prompt.en = "How likely?\\nPress a number.\\ttab ☎"
prompt.es = "¿Qué probabilidad?"
text.en = "How likely, 0 to 10?"

[[questions]]
key = "effort"
kind = "ces"
when = "nps >= 7"
prompt.en = "How easy?"
prompt.es = "¿Qué tan fácil?"

[[questions]]
key = "happy"
kind = "yesno"
when = "nps != 10"
prompt.en = "Happy?"
prompt.es = "¿Contento?"

[[questions]]
key = "why"
kind = "comment"
when = "effort < 3"
max_seconds = 120
prompt.en = "Why?"
prompt.es = "¿Por qué?"

[dialing]
sample_percent = 12.5
fatigue_days = 0
delay_minutes = 0
valid_hours = 168
calling_hours = "08:30-20:45"
allow_sundays = true
max_attempts = 2
retry_minutes = [5, 60, 1440]
retry_voicemail = true
callback_after_in_call_hangup = true

[sms]
fallback = true
hours = "10:00-19:00"
expire_hours = 48

[follow_up]
when = ["nps <= 4", "effort == 1"]
comment = true
opt_out_after_low_score = true
sla_hours = 72

[phrases.es]
greeting = "Hola, {company} aquí. Llame al {callback}."
thanks = "¡Gracias!"

[phrases.en]
thanks = "Thanks, from {company}."
"""


def rich_definition(tmp_path: Path) -> SurveyDefinition:
    path = tmp_path / "rich.toml"
    path.write_text(textwrap.dedent(RICH), encoding="utf-8")
    return load_survey_file(path)


def survey(name: str = "returns", **changes) -> SurveyDefinition:
    return replace(SHIPPED, name=name, **changes)


def with_prompt(definition: SurveyDefinition, index: int, language: str, text: str):
    questions = list(definition.questions)
    question = questions[index]
    questions[index] = replace(question, prompts={**question.prompts, language: text})
    return replace(definition, questions=tuple(questions))


def catalog(runtime: Runtime, **options) -> CombinedSurveyCatalog:
    return CombinedSurveyCatalog(FILES, runtime.db, **options)


def counts(runtime: Runtime) -> tuple[int, int, int]:
    with runtime.db.session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (SurveyHead, SurveyAuditEntry, SurveyVersion)
        )


def created(runtime: Runtime, definition: SurveyDefinition | None = None, by: str = "alice"):
    with runtime.db.session() as session:
        return create_survey(session, definition or survey(), by=by, file_names=FILES.file_names())


# -- creating -----------------------------------------------------------------------


def test_a_created_survey_is_revision_1_of_a_frozen_version(runtime):
    made = created(runtime)
    assert (made.name, made.revision, made.version, made.updated_by) == ("returns", 1, 1, "alice")
    assert made.definition == survey() and made.retired_at is None
    with runtime.db.session() as session:
        assert managed_survey(session, "returns") == made
        assert managed_surveys(session) == [made]
        version = session.get(SurveyVersion, made.version_id)
        assert version.content_sha256 == survey().content_sha256()
        (change,) = survey_history(session, "returns")
    assert (change.revision, change.action, change.by, change.version) == (1, "created", "alice", 1)
    assert change.summary == "3 questions (en, es, pl)"
    assert change.at == made.updated_at


def test_a_file_survey_name_is_refused_and_nothing_is_written(runtime):
    with runtime.db.session() as session, pytest.raises(ManagedByFile, match=r"post-call\.toml"):
        create_survey(session, SHIPPED, by="alice", file_names=FILES.file_names())
    assert counts(runtime) == (0, 0, 0)


def test_a_name_the_database_holds_is_refused_and_the_first_stays(runtime):
    first = created(runtime)
    other = with_prompt(survey(), 0, "en", "Something else?")
    with runtime.db.session() as session:
        with pytest.raises(SurveyExists):
            create_survey(session, other, by="bob", file_names=(), action="copied")
        assert managed_survey(session, "returns") == first
    assert counts(runtime) == (1, 1, 1)


@pytest.mark.parametrize(
    ("by", "action", "message"),
    [
        ("", "created", "by: say who"),
        ("   ", "created", "by: say who"),
        ("x" * 121, "created", "at most 120"),
        ("alice", "edited", "action: expected one of created, copied, imported"),
        ("alice", "retired", "action"),
    ],
)
def test_bad_creations_are_refused_whole(runtime, by, action, message):
    with runtime.db.session() as session, pytest.raises(ValueError, match=message):
        create_survey(session, survey(), by=by, file_names=(), action=action)
    assert counts(runtime) == (0, 0, 0)


def test_a_unit_of_work_rolled_back_leaves_no_survey_behind(runtime):
    # On SQLite a savepoint opened before the transaction's first write would commit on
    # release; the store opens the transaction first (the CLI import relies on it).
    with pytest.raises(RuntimeError), runtime.db.session() as session:
        create_survey(session, survey("first"), by="alice", file_names=())
        create_survey(session, survey("second"), by="alice", file_names=())
        raise RuntimeError("the import's third file was bad")
    assert counts(runtime) == (0, 0, 0)


# -- saving -------------------------------------------------------------------------


def test_a_saved_change_is_a_new_revision_and_version(runtime):
    created(runtime)
    changed = with_prompt(survey(), 1, "es", "¿Qué tan satisfecho quedó?")
    changed = replace(changed, dialing=replace(changed.dialing, calling_hours=(time(9), time(19))))
    with runtime.db.session() as session:
        saved = save_survey(session, changed, expected_revision=1, by="bob")
    assert (saved.revision, saved.version, saved.updated_by) == (2, 2, "bob")
    assert saved.definition == changed
    with runtime.db.session() as session:
        assert managed_survey(session, "returns") == saved
        history = survey_history(session, "returns")
    assert [(c.revision, c.action, c.by, c.version) for c in history] == [
        (2, "edited", "bob", 2),
        (1, "created", "alice", 1),
    ]
    assert history[0].summary == "questions[1].prompt.es, dialing.calling_hours changed"


def test_an_unchanged_save_is_not_a_revision(runtime):
    made = created(runtime)
    with runtime.db.session() as session:
        again = save_survey(session, survey(), expected_revision=1, by="bob")
    assert again == made
    assert counts(runtime) == (1, 1, 1)


def test_saving_back_to_an_earlier_content_reuses_its_version(runtime):
    created(runtime)
    changed = with_prompt(survey(), 0, "en", "Would you recommend us?")
    with runtime.db.session() as session:
        save_survey(session, changed, expected_revision=1, by="bob")
    with runtime.db.session() as session:
        back = save_survey(session, survey(), expected_revision=2, by="bob")
    assert (back.revision, back.version) == (3, 1)


def test_the_second_of_two_editors_from_one_revision_gets_a_conflict(runtime):
    created(runtime)
    alices = with_prompt(survey(), 0, "en", "Alice's question?")
    bobs = with_prompt(survey(), 0, "en", "Bob's question?")
    first = runtime.db._sessions()
    second = runtime.db._sessions()
    try:
        assert managed_survey(first, "returns").revision == 1
        assert managed_survey(second, "returns").revision == 1
        save_survey(first, alices, expected_revision=1, by="alice")
        first.commit()
        with pytest.raises(SurveyConflict) as raised:
            save_survey(second, bobs, expected_revision=1, by="bob")
        second.rollback()
    finally:
        first.close()
        second.close()
    conflict = raised.value
    assert conflict.name == "returns"
    assert (conflict.current.revision, conflict.current.updated_by) == (2, "alice")
    assert conflict.current.definition == alices
    assert "changed by alice" in str(conflict) and "revision 2" in str(conflict)
    with runtime.db.session() as session:
        assert managed_survey(session, "returns").definition == alices
        assert [c.by for c in survey_history(session, "returns")] == ["alice", "alice"]
    assert counts(runtime) == (1, 2, 2)


def test_a_save_waiting_for_a_concurrent_one_gets_a_conflict(runtime):
    """The guard is the UPDATE itself: the second writer waits for the first one's
    commit (PostgreSQL's row lock, SQLite's database lock), then matches no row."""
    created(runtime)
    alices = with_prompt(survey(), 0, "en", "Alice's question?")
    bobs = with_prompt(survey(), 0, "en", "Bob's question?")
    first = runtime.db._sessions()
    outcome: list[object] = []
    started = threading.Event()

    def bob() -> None:
        with runtime.db.session() as session:
            started.set()
            try:
                outcome.append(save_survey(session, bobs, expected_revision=1, by="bob"))
            except SurveyConflict as conflict:
                outcome.append(conflict)

    try:
        save_survey(first, alices, expected_revision=1, by="alice")
        thread = threading.Thread(target=bob)
        thread.start()
        started.wait(5)
        thread.join(0.5)  # bob is waiting for alice's lock
        first.commit()
    finally:
        first.close()
    thread.join(10)
    (result,) = outcome
    assert isinstance(result, SurveyConflict)
    assert result.current.revision == 2 and result.current.definition == alices
    with runtime.db.session() as session:
        assert managed_survey(session, "returns").definition == alices


def test_a_stale_revision_is_refused_even_for_the_current_content(runtime):
    created(runtime)
    changed = with_prompt(survey(), 0, "en", "New?")
    with runtime.db.session() as session:
        save_survey(session, changed, expected_revision=1, by="alice")
    # Bob's page still shows revision 1; saving it would undo Alice's change.
    with runtime.db.session() as session, pytest.raises(SurveyConflict):
        save_survey(session, survey(), expected_revision=1, by="bob")


def test_unknown_surveys_cannot_be_saved_retired_or_restored(runtime):
    with runtime.db.session() as session:
        with pytest.raises(UnknownSurvey):
            save_survey(session, survey(), expected_revision=1, by="bob")
        with pytest.raises(UnknownSurvey):
            retire_survey(session, "returns", expected_revision=1, by="bob")
        with pytest.raises(UnknownSurvey):
            restore_survey(session, "returns", expected_revision=1, by="bob")
        assert survey_history(session, "returns") == []
        assert managed_survey(session, "returns") is None


# -- retiring -----------------------------------------------------------------------


def test_retire_and_restore(runtime):
    created(runtime)
    surveys = catalog(runtime)
    assert "returns" in surveys
    with runtime.db.session() as session:
        retired = retire_survey(session, "returns", expected_revision=1, by="carol")
    surveys.refresh()
    assert (retired.revision, retired.version, retired.retired) == (2, 1, True)
    assert "returns" not in surveys and surveys.names() == ["post-call"]
    with pytest.raises(UnknownSurvey):
        surveys.get("returns")
    assert surveys.source_of("returns") == "database"  # the editor still shows it

    with runtime.db.session() as session:
        # Retiring it again changes nothing; a stale revision is a conflict.
        assert retire_survey(session, "returns", expected_revision=2, by="carol") == retired
        with pytest.raises(SurveyConflict):
            restore_survey(session, "returns", expected_revision=1, by="carol")
    with runtime.db.session() as session:
        restored = restore_survey(session, "returns", expected_revision=2, by="dave")
    surveys.refresh()
    assert (restored.revision, restored.retired_at) == (3, None)
    assert surveys.get("returns") == survey()
    with runtime.db.session() as session:
        history = survey_history(session, "returns")
    assert [(c.action, c.by) for c in history] == [
        ("restored", "dave"),
        ("retired", "carol"),
        ("created", "alice"),
    ]


def test_a_retired_survey_can_still_be_edited_and_stays_retired(runtime):
    created(runtime)
    with runtime.db.session() as session:
        retire_survey(session, "returns", expected_revision=1, by="carol")
    with runtime.db.session() as session:
        saved = save_survey(
            session, with_prompt(survey(), 0, "en", "New?"), expected_revision=2, by="carol"
        )
    assert saved.retired and saved.revision == 3


# -- which source wins --------------------------------------------------------------


def test_a_file_that_appears_for_a_database_name_wins(runtime, tmp_path):
    created(runtime)
    folder = tmp_path / "surveys"
    folder.mkdir()
    own = with_prompt(survey(), 0, "en", "The file's question?")
    (folder / "returns.toml").write_text(export_toml(own), encoding="utf-8")
    (folder / "post-call.toml").write_text(export_toml(SHIPPED), encoding="utf-8")
    surveys = CombinedSurveyCatalog(SurveyCatalog.from_directory(folder), runtime.db)
    assert surveys.get("returns") == own
    assert surveys.names() == ["post-call", "returns"]
    assert surveys.source_of("returns") == "file"
    assert surveys.file_names() == ["post-call", "returns"]
    with runtime.db.session() as session, pytest.raises(ManagedByFile):
        import_survey(session, own, by="alice", file_names=surveys.file_names())


def test_the_catalog_of_files_alone_answers_the_same_questions():
    assert FILES.file_names() == ["post-call"]
    assert FILES.source_of("post-call") == "file"
    with pytest.raises(UnknownSurvey):
        FILES.source_of("returns")
    FILES.refresh()  # nothing to read again


# -- the catalog in each process ----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def statements(db: Database) -> list[str]:
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_two_processes_see_each_others_changes_within_the_refresh_interval(runtime):
    web_clock, worker_clock = Clock(), Clock()
    worker_db = Database(runtime.settings.database_url)
    try:
        web = replace(runtime, catalog=catalog(runtime, max_age=2.0, clock=web_clock))
        worker = Runtime(
            settings=runtime.settings,
            db=worker_db,
            catalog=CombinedSurveyCatalog(FILES, worker_db, max_age=2.0, clock=worker_clock),
        )
        assert worker.catalog.names() == ["post-call"]

        # The web process saves, commits, and refreshes its own copy: it sees it at once.
        created(web)
        web.catalog.refresh()
        assert web.catalog.get("returns") == survey()
        assert web.catalog.source_of("returns") == "database"

        # The worker's copy is still young: lookups are a dict and a clock, no query.
        seen = statements(worker_db)
        worker_clock.now += 1.9
        assert "returns" not in worker.catalog
        assert worker.catalog.get("post-call") == SHIPPED
        assert seen == []
        worker_clock.now += 0.2
        assert worker.catalog.get("returns") == survey()
        assert len(seen) == 1  # the heads, and the version was parsed in this process

        with web.db.session() as session:
            retire_survey(session, "returns", expected_revision=1, by="carol")
        web.catalog.refresh()
        assert "returns" not in web.catalog
        assert "returns" in worker.catalog
        worker_clock.now += 2.1
        assert "returns" not in worker.catalog
    finally:
        worker_db.dispose()


def test_a_database_without_the_tables_leaves_the_files(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        surveys = CombinedSurveyCatalog(FILES, db)
        assert surveys.names() == ["post-call"]
        assert surveys.get("post-call") == SHIPPED
    finally:
        db.dispose()


def test_runtime_from_settings_lists_the_database_surveys(runtime):
    created(runtime)
    built = Runtime.from_settings(runtime.settings)
    try:
        assert built.catalog.names() == ["post-call", "returns"]
        assert built.catalog.file_names() == ["post-call"]
    finally:
        built.db.dispose()


# -- history ------------------------------------------------------------------------


def test_summaries_name_added_removed_and_reordered_questions(tmp_path):
    before = rich_definition(tmp_path)
    questions = list(before.questions)
    after = replace(before, questions=(questions[0], questions[2], questions[1], questions[3]))
    assert change_summary(before.to_dict(), after.to_dict()) == "questions reordered"

    kept = replace(before, questions=tuple(questions[:3]), title="Shorter")
    assert change_summary(before.to_dict(), kept.to_dict()) == "title changed; question why removed"

    more = replace(
        SHIPPED,
        questions=(*SHIPPED.questions, replace(SHIPPED.questions[1], key="csat_again")),
        company_name="Acme",
    )
    assert (
        change_summary(SHIPPED.to_dict(), more.to_dict())
        == "company_name changed; questions[3] (csat_again) added"
    )
    phrased = replace(SHIPPED, phrases={"es": {"thanks": "¡Gracias!"}})
    assert change_summary(SHIPPED.to_dict(), phrased.to_dict()) == "phrases.es changed"


def test_a_long_summary_is_cut_short():
    many = SHIPPED
    for index in range(3):
        for language in ("en", "es", "pl"):
            many = with_prompt(many, index, language, f"Changed {index} {language}?")
    summary = change_summary(SHIPPED.to_dict(), many.to_dict())
    assert summary.startswith("questions[0].prompt.en, questions[0].prompt.es, ")
    assert summary.endswith(" and 1 more changed")


# -- TOML ---------------------------------------------------------------------------


def test_export_round_trips_the_shipped_and_a_rich_survey(tmp_path):
    for definition in (SHIPPED, rich_definition(tmp_path)):
        text = export_toml(definition)
        path = tmp_path / f"{definition.name}.toml"
        path.write_text(text, encoding="utf-8")
        again = load_survey_file(path)
        assert again == definition
        assert again.content_sha256() == definition.content_sha256()


def test_the_rich_survey_keeps_what_it_set(tmp_path):
    rich = rich_definition(tmp_path)
    data = tomllib.loads(export_toml(rich))
    assert data["company_name"] == 'Acme "Best" Support'
    assert data["questions"][0]["prompt"]["en"] == "How likely?\nPress a number.\ttab ☎"
    assert data["sms"] == {"fallback": True, "hours": "10:00-19:00", "expire_hours": 48}
    assert list(data)[:2] == ["name", "title"]
    assert "phrases" not in tomllib.loads(export_toml(SHIPPED))


# Text as an admin may type it: any character but surrogates, as survey files keep it
# (prompts are stripped, so generated ones are too).
# Any text a survey may hold: not the control characters (and U+FFFE, U+FFFF) that
# core.survey refuses because TwiML cannot carry them.
texts = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"),
    min_size=1,
    max_size=40,
).filter(lambda text: text == text.strip() and text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=st.text(
        st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"),
        max_size=30,
    ).map(str.strip),
    prompts=st.lists(texts, min_size=3, max_size=3),
    phrase=texts,
    company=st.none() | texts,
    percent=st.floats(0, 100, allow_nan=False),
    retries=st.lists(st.integers(1, 1440), min_size=1, max_size=4),
    sundays=st.booleans(),
)
def test_any_survey_round_trips_through_its_toml(
    title, prompts, phrase, company, percent, retries, sundays
):
    definition = with_prompt(SHIPPED, 0, "en", prompts[0])
    definition = with_prompt(definition, 1, "es", prompts[1])
    definition = with_prompt(definition, 2, "pl", prompts[2])
    definition = replace(
        definition,
        title=title,
        company_name=company,
        phrases={"en": {"thanks": phrase}},
        dialing=replace(
            definition.dialing,
            sample_percent=percent,
            retry_minutes=tuple(retries),
            allow_sundays=sundays,
        ),
    )
    again = SurveyDefinition.from_dict(tomllib.loads(export_toml(definition)))
    assert again == definition


# -- a retired survey's calls in flight ---------------------------------------------


@pytest.mark.e2e
def test_a_retired_surveys_accepted_request_finishes_on_its_pinned_version(dialer):  # noqa: F811
    """Retiring takes a survey out of the catalog: intake refuses it from then on, but a
    request accepted before keeps its pinned version through retries (dialer.dispatch
    reads the version's dialing rules, ivr its questions) and completes."""
    runtime = dialer.runtime
    runtime.catalog = CombinedSurveyCatalog(FILES, runtime.db)
    asked = "Would you recommend our returns desk? Press or say a number from 0 to 10."
    made = created(runtime, with_prompt(survey(), 0, "en", asked))
    runtime.catalog.refresh()
    phone = "+14155550391"
    dialer.network.set_persona(phone, Persona.no_answer())
    accepted = dialer.intake(phone, survey="returns")
    assert accepted.accepted
    dialer.work()
    assert dialer.campaign.request(accepted.request_id).state is RequestState.SCHEDULED

    with runtime.db.session() as session:
        retire_survey(session, "returns", expected_revision=1, by="carol")
    runtime.catalog.refresh()
    refused = dialer.intake("+14155550392", survey="returns")
    assert refused.reason == "unknown_survey"

    dialer.network.set_persona(phone, Persona.answering(["9", "4"]))
    dialer.run_to_completion()
    request = dialer.campaign.request(accepted.request_id)
    assert request.state is RequestState.COMPLETED
    assert request.survey_version_id == made.version_id
    assert {a.question_key: a.value for a in request.answers} == {"nps": 9, "csat": 4}
    assert [a.status for a in request.attempts] == ["no-answer", "completed"]
    assert any(asked in line for line in dialer.network.call(request.attempts[-1].call_sid).heard)


UNHOLDABLE = [
    (survey("Returns Desk"), "survey Returns Desk: name: use lowercase letters"),
    (survey(max_tries=9), "survey returns: max_tries: expected a whole number from 1 to 5"),
    (
        survey(dialing=replace(SHIPPED.dialing, calling_hours=(time(7), time(20)))),
        "survey returns: dialing.calling_hours: may not be wider than 08:00-21:00",
    ),
]


@pytest.mark.parametrize(("definition", "message"), UNHOLDABLE)
def test_a_definition_no_file_could_hold_is_not_created(runtime, definition, message):
    with runtime.db.session() as session, pytest.raises(ValueError, match=message):
        create_survey(session, definition, by="alice", file_names=())
    assert counts(runtime) == (0, 0, 0)


@pytest.mark.parametrize(("definition", "message"), UNHOLDABLE[1:])
def test_a_definition_no_file_could_hold_is_not_saved(runtime, definition, message):
    made = created(runtime)
    with runtime.db.session() as session, pytest.raises(ValueError, match=message):
        save_survey(session, definition, expected_revision=1, by="bob")
    with runtime.db.session() as session:
        assert managed_survey(session, "returns") == made
    assert counts(runtime) == (1, 1, 1)
