"""`aftercall surveys` (check, list, export, import) over files and the surveys kept in
the database, and doctor's warning when a file and the database define one name. On
SQLite and PostgreSQL (the `runtime` fixture)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from aftercall import doctor
from aftercall.cli import main
from aftercall.web import create_app
from core.config import DEFAULT_SURVEYS_DIR
from core.models import SurveyAuditEntry, SurveyHead, SurveyVersion
from core.runtime import Runtime
from core.survey import SurveyCatalog, SurveyError, load_survey_file
from core.survey_store import (
    CombinedSurveyCatalog,
    create_survey,
    export_toml,
    managed_survey,
    managed_surveys,
    retire_survey,
    survey_history,
)

SHIPPED = SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR).get("post-call")


def run(runtime: Runtime, *args: str, surveys_dir: Path = DEFAULT_SURVEYS_DIR) -> Result:
    env = {"DATABASE_URL": runtime.settings.database_url, "SURVEYS_DIR": str(surveys_dir)}
    return CliRunner().invoke(main, ["surveys", *args], env=env)


def survey_file(folder: Path, name: str, prompt: str = "How likely?") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    definition = replace(SHIPPED, name=name)
    questions = list(definition.questions)
    questions[0] = replace(questions[0], prompts={**questions[0].prompts, "en": prompt})
    path.write_text(export_toml(replace(definition, questions=tuple(questions))), encoding="utf-8")
    return path


def stored_rows(runtime: Runtime) -> tuple[int, int, int]:
    with runtime.db.session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (SurveyHead, SurveyAuditEntry, SurveyVersion)
        )


# -- import -------------------------------------------------------------------------


def test_import_creates_then_revises_then_leaves_alone(runtime, tmp_path):
    path = survey_file(tmp_path / "in", "returns")
    first = run(runtime, "import", str(path), "--by", "alice")
    assert first.exit_code == 0, first.output
    assert first.stdout == "created returns (revision 1, version 1): 3 questions (en, es, pl)\n"

    again = run(runtime, "import", str(path), "--by", "alice")
    assert again.exit_code == 0, again.output
    assert again.stdout == "unchanged returns (revision 1, version 1)\n"

    survey_file(tmp_path / "in", "returns", prompt="Would you recommend us?")
    changed = run(runtime, "import", str(path), "--by", "bob")
    assert changed.exit_code == 0, changed.output
    assert changed.stdout == (
        "imported returns (revision 2, version 2): questions[0].prompt.en changed\n"
    )
    with runtime.db.session() as session:
        history = survey_history(session, "returns")
        assert managed_survey(session, "returns").definition == load_survey_file(path)
    assert [(c.revision, c.action, c.by) for c in history] == [
        (2, "imported", "bob"),
        (1, "imported", "alice"),
    ]


def test_import_without_by_records_the_login(runtime, tmp_path):
    result = run(runtime, "import", str(survey_file(tmp_path, "returns")))
    assert result.exit_code == 0, result.output
    with runtime.db.session() as session:
        (change,) = survey_history(session, "returns")
    assert change.by.startswith("cli")


def test_import_refuses_a_file_surveys_name(runtime, tmp_path):
    copy = survey_file(tmp_path, "post-call")
    result = run(runtime, "import", str(copy))
    assert result.exit_code == 1
    assert f"{copy}: 'post-call' is defined by {DEFAULT_SURVEYS_DIR / 'post-call.toml'}" in (
        result.stderr
    )
    assert "import it under another name" in result.stderr
    assert result.stderr.endswith("nothing imported\n")
    assert stored_rows(runtime) == (0, 0, 0)


BAD_FILES = [
    ("not toml", "name = \n", "not valid TOML"),
    ("unknown field", 'name = "bad"\ncolour = "red"\n', "bad.toml: colour: unknown field"),
    ("no questions", 'name = "bad"\n', "bad.toml: questions: a survey needs at least one"),
    ("name differs from file", None, "'other' does not match the file name 'bad'"),
    ("unknown phrase", '\n[phrases.en]\nhello = "Hi"\n', "phrases.en.hello: unknown phrase"),
    ("bad placeholder", '\n[phrases.en]\nthanks = "Bye {nme}"\n', "bad placeholder"),
    (
        "calling hours too wide",
        None,
        "dialing.calling_hours: may not be wider than 08:00-21:00",
    ),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_a_bad_file_imports_nothing_not_even_the_good_ones(runtime, tmp_path, case, body, message):
    good = survey_file(tmp_path / "good", "returns")
    bad = tmp_path / "bad" / "bad.toml"
    bad.parent.mkdir()
    if case == "name differs from file":
        bad.write_text(export_toml(replace(SHIPPED, name="other")), encoding="utf-8")
    elif case == "calling hours too wide":
        text = export_toml(replace(SHIPPED, name="bad"))
        bad.write_text(text.replace('"09:00-20:00"', '"07:00-20:00"'), encoding="utf-8")
    elif body.startswith("\n"):
        bad.write_text(export_toml(replace(SHIPPED, name="bad")) + body, encoding="utf-8")
    else:
        bad.write_text(body, encoding="utf-8")
    result = run(runtime, "import", str(good), str(bad))
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert result.stderr.endswith("nothing imported\n")
    assert stored_rows(runtime) == (0, 0, 0)


def test_import_refuses_two_files_of_one_name(runtime, tmp_path):
    one = survey_file(tmp_path / "a", "returns")
    two = survey_file(tmp_path / "b", "returns", prompt="Other?")
    result = run(runtime, "import", str(one), str(two))
    assert result.exit_code == 1
    assert f"{two}: 'returns' is also in {one}" in result.stderr
    assert stored_rows(runtime) == (0, 0, 0)


@pytest.mark.parametrize(
    ("by", "message"), [("", "by: say who"), ("x" * 121, "by: at most 120 characters")]
)
def test_import_refuses_a_bad_author(runtime, tmp_path, by, message):
    result = run(runtime, "import", str(survey_file(tmp_path, "returns")), "--by", by)
    assert result.exit_code == 1
    assert message in result.stderr
    assert stored_rows(runtime) == (0, 0, 0)


def test_import_needs_the_files_to_exist(runtime, tmp_path):
    result = run(runtime, "import", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_import_into_a_database_not_yet_created(runtime, tmp_path):
    missing = tmp_path / "nothing-here.db"
    env = {"DATABASE_URL": f"sqlite:///{missing}"}
    result = CliRunner().invoke(
        main, ["surveys", "import", str(survey_file(tmp_path, "returns"))], env=env
    )
    assert result.exit_code == 1
    assert f"no database file at {missing}" in result.stderr
    assert not missing.exists()


# -- export -------------------------------------------------------------------------


def make(runtime: Runtime, name: str, prompt: str = "How likely?") -> None:
    questions = list(SHIPPED.questions)
    questions[0] = replace(questions[0], prompts={**questions[0].prompts, "en": prompt})
    definition = replace(SHIPPED, name=name, questions=tuple(questions))
    with runtime.db.session() as session:
        create_survey(session, definition, by="alice", file_names=["post-call"])


def test_export_then_import_round_trips(runtime, tmp_path):
    make(runtime, "returns")
    make(runtime, "billing", prompt="Would you recommend our billing team?")
    with runtime.db.session() as session:
        retire_survey(session, "billing", expected_revision=1, by="carol")
        before = {s.name: s.definition for s in managed_surveys(session)}
    out = tmp_path / "exported"
    result = run(runtime, "export", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"wrote {out / 'billing.toml'} (revision 2, version 1, retired)",
        f"wrote {out / 'returns.toml'} (revision 1, version 1)",
    ]
    assert {p.name for p in out.iterdir()} == {"billing.toml", "returns.toml"}
    for name, definition in before.items():
        assert load_survey_file(out / f"{name}.toml") == definition
    assert (out / "billing.toml").read_text().startswith("# Exported from aftercall's database")

    again = run(runtime, "import", str(out / "billing.toml"), str(out / "returns.toml"))
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        "unchanged billing (revision 2, version 1)",
        "  note: billing is retired; it takes no requests until restored",
        "unchanged returns (revision 1, version 1)",
    ]


def test_export_overwrites_nothing_unless_forced(runtime, tmp_path):
    make(runtime, "returns")
    make(runtime, "billing")
    (tmp_path / "returns.toml").write_text("# mine\n", encoding="utf-8")
    refused = run(runtime, "export", str(tmp_path))
    assert refused.exit_code == 1
    assert "already exist(s); nothing written (--force overwrites)" in refused.stderr
    assert (tmp_path / "returns.toml").read_text() == "# mine\n"
    assert not (tmp_path / "billing.toml").exists()

    forced = run(runtime, "export", str(tmp_path), "--force")
    assert forced.exit_code == 0, forced.output
    assert load_survey_file(tmp_path / "returns.toml").name == "returns"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["billing.toml", "returns.toml"]


def test_export_one_by_name(runtime, tmp_path):
    make(runtime, "returns")
    make(runtime, "billing")
    result = run(runtime, "export", "--name", "returns", str(tmp_path / "one"))
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["returns.toml"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("post-call", "'post-call' is defined by"),
        ("nobody", "no survey named 'nobody' in the database"),
    ],
)
def test_export_of_a_name_the_database_does_not_hold(runtime, tmp_path, name, message):
    make(runtime, "returns")
    result = run(runtime, "export", "--name", name, str(tmp_path / "out"))
    assert result.exit_code == 1
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_export_with_nothing_to_export(runtime, tmp_path):
    result = run(runtime, "export", str(tmp_path / "out"))
    assert result.exit_code == 0
    assert result.stdout == "no surveys in the database to export\n"


# -- list and check -----------------------------------------------------------------


def test_list_shows_each_surveys_source_revision_version_and_state(runtime, tmp_path):
    folder = tmp_path / "surveys"
    folder.mkdir()
    (folder / "post-call.toml").write_text(export_toml(SHIPPED), encoding="utf-8")
    survey_file(folder, "returns", prompt="The file's own?")
    make(runtime, "returns")  # a file of this name came later: the file wins
    make(runtime, "billing")
    with runtime.db.session() as session:
        retire_survey(session, "billing", expected_revision=1, by="carol")
        retired_at = managed_survey(session, "billing").retired_at
    result = run(runtime, "list", surveys_dir=folder)
    assert result.exit_code == 0, result.output
    rows = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert rows == [
        "survey source revision version state",
        f"billing database r2 v1 retired {retired_at:%Y-%m-%d %H:%M} UTC",
        "post-call file - not stored yet active",
        "returns database r1 v1 ignored: a file of that name wins",
        "returns file - not stored yet active",
    ]


def test_check_validates_the_database_surveys_too(runtime, tmp_path):
    make(runtime, "returns")
    result = run(runtime, "check")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ok  post-call: 3 questions (en, es, pl)",
        "ok  returns: 3 questions (en, es, pl) [database, revision 1]",
    ]


def test_check_fails_on_a_database_survey_with_a_bad_phrase(runtime):
    # The store leaves phrases to its callers (ivr's rule): one that skipped the check.
    bad = replace(SHIPPED, name="returns", phrases={"en": {"thanks": "Bye {nme}"}})
    with runtime.db.session() as session:
        create_survey(session, bad, by="alice", file_names=["post-call"])
    result = run(runtime, "check")
    assert result.exit_code == 1
    assert "survey returns (database): phrases.en.thanks: bad placeholder" in result.stderr


def test_check_warns_when_a_file_and_the_database_define_one_name(runtime, tmp_path):
    folder = tmp_path / "surveys"
    survey_file(folder, "returns")
    make(runtime, "returns", prompt="The database's?")
    result = run(runtime, "check", surveys_dir=folder)
    assert result.exit_code == 0, result.output
    assert "warn  returns: returns.toml in SURVEYS_DIR defines it too" in result.stderr


def test_check_of_a_folder_reads_no_database(runtime, tmp_path):
    make(runtime, "returns")
    result = run(runtime, "check", str(DEFAULT_SURVEYS_DIR))
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok  post-call: 3 questions (en, es, pl)\n"


def test_check_without_a_database_checks_the_files(tmp_path):
    missing = tmp_path / "aftercall.db"
    env = {"DATABASE_URL": f"sqlite:///{missing}", "SURVEYS_DIR": str(DEFAULT_SURVEYS_DIR)}
    result = CliRunner().invoke(main, ["surveys", "check"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok  post-call: 3 questions (en, es, pl)\n"
    assert "surveys in the database not checked: no database file" in result.stderr
    assert not missing.exists()


# -- doctor ---------------------------------------------------------------------------


def test_doctor_warns_when_a_file_and_the_database_define_one_name(runtime, tmp_path):
    folder = tmp_path / "surveys"
    folder.mkdir()
    (folder / "post-call.toml").write_text(export_toml(SHIPPED), encoding="utf-8")
    survey_file(folder, "returns")
    make(runtime, "returns", prompt="The database's?")
    make(runtime, "billing")
    settings = runtime.settings.with_overrides(surveys_dir=folder)
    (finding,) = doctor.database_surveys(settings)
    assert finding.status is doctor.Status.WARN
    assert finding.message.startswith(
        f"'returns' is defined twice: by the file {folder / 'returns.toml'} and in the "
        "database (revision 1, last changed by alice); calls use the file's"
    )
    assert "aftercall surveys export --name returns" in finding.fix
    assert finding in doctor.database(settings)


def test_doctor_lists_the_database_surveys_when_all_is_well(runtime):
    make(runtime, "returns")
    assert doctor.database_surveys(runtime.settings) == [
        doctor.ok("surveys", "1 survey(s) kept in the database: returns")
    ]


def test_doctor_says_nothing_of_an_empty_store(runtime):
    assert doctor.database_surveys(runtime.settings) == []


def test_survey_file_helper_writes_a_valid_file(tmp_path):
    path = survey_file(tmp_path, "returns", prompt="Anything?")
    assert load_survey_file(path).questions[0].prompts["en"] == "Anything?"
    assert path.read_text().startswith('name = "returns"')


def test_the_web_app_starts_despite_a_database_survey_with_a_bad_phrase(runtime, caplog):
    """The editor that can mend it is the web app: it logs instead of refusing to start
    (a file survey with a bad phrase still stops it, as it always did)."""
    bad = replace(SHIPPED, name="returns", phrases={"en": {"thanks": "Bye {nme}"}})
    with runtime.db.session() as session:
        create_survey(session, bad, by="alice", file_names=["post-call"])
    combined = replace(runtime, catalog=CombinedSurveyCatalog(runtime.catalog, runtime.db))
    app = create_app(runtime=combined)
    assert app.test_client().get("/healthz").status_code == 200
    assert "survey returns (kept in the database): " in caplog.text
    assert "bad placeholder" in caplog.text

    files = replace(runtime, catalog=SurveyCatalog({"returns": bad}))
    with pytest.raises(SurveyError, match="bad placeholder"):
        create_app(runtime=files)
