"""API keys: only a hash is stored, revoked keys stop working, the CLI shows a key once,
each key holds the scopes it was given and no other."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import apikeys
from core.models import ApiKey, SurveyRequest
from dialer.intake import CallEnded, accept_calls
from tests.api.conftest import ENDED_AT, NOW


def create(runtime, name="crm"):
    with runtime.db.session() as session:
        return apikeys.create_key(session, name)


def verify(runtime, presented, now=NOW):
    with runtime.db.session() as session:
        key = apikeys.verify_key(session, presented, now=now)
        return key.name if key else None


def key_rows(runtime):
    with runtime.db.session() as session:
        return session.scalars(select(ApiKey).order_by(ApiKey.name)).all()


def test_only_the_hash_and_a_short_prefix_are_stored(runtime):
    key = create(runtime)
    assert key.startswith("ac_")
    assert len(key) > 40
    (row,) = key_rows(runtime)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(row.prefix)
    assert len(row.prefix) < 16
    assert key not in (row.name, row.key_hash, row.prefix)


def test_every_key_is_different(runtime):
    assert create(runtime, "crm") != create(runtime, "pbx")


def test_a_duplicate_name_is_refused_clearly(runtime):
    create(runtime, "crm")
    with pytest.raises(apikeys.ApiKeyError, match="already exists"):
        create(runtime, "crm")
    assert len(key_rows(runtime)) == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_bad_names_are_refused(runtime, name):
    with pytest.raises(apikeys.ApiKeyError, match="1-100 characters"):
        create(runtime, name)
    assert key_rows(runtime) == []


def test_a_live_key_verifies_and_a_revoked_one_does_not(runtime):
    key = create(runtime)
    assert verify(runtime, key) == "crm"
    with runtime.db.session() as session:
        apikeys.revoke_key(session, "crm", now=NOW)
    assert verify(runtime, key) is None
    (row,) = key_rows(runtime)
    assert row.revoked_at == NOW


def test_revoking_an_unknown_key_is_an_error(runtime):
    with (
        pytest.raises(apikeys.ApiKeyError, match="no API key named 'nobody'"),
        runtime.db.session() as session,
    ):
        apikeys.revoke_key(session, "nobody")


@pytest.mark.parametrize(
    "presented",
    ["", "ac_", "ac_not-a-key", "Bearer ac_x", "x" * 5000, "ac_\ud800", "ac_\x00"],
)
def test_unknown_and_malformed_keys_do_not_verify(runtime, presented):
    create(runtime)
    assert verify(runtime, presented) is None


def test_last_used_is_written_at_most_once_a_minute(runtime):
    key = create(runtime)
    assert key_rows(runtime)[0].last_used_at is None
    verify(runtime, key, now=NOW)
    assert key_rows(runtime)[0].last_used_at == NOW
    verify(runtime, key, now=NOW + timedelta(seconds=59))
    assert key_rows(runtime)[0].last_used_at == NOW
    verify(runtime, key, now=NOW + timedelta(seconds=61))
    assert key_rows(runtime)[0].last_used_at == NOW + timedelta(seconds=61)


# -- the CLI ----------------------------------------------------------------------------


def test_cli_create_prints_the_key_alone_on_the_last_line(runtime, cli):
    result = cli("apikey", "create", "crm")
    assert result.exit_code == 0, result.output
    key = result.stdout.splitlines()[-1]
    assert key == key.strip()
    assert key.startswith("ac_")
    assert verify(runtime, key) == "crm"


def test_cli_create_refuses_a_duplicate_name(runtime, cli):
    assert cli("apikey", "create", "crm").exit_code == 0
    result = cli("apikey", "create", "crm")
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert len(key_rows(runtime)) == 1


def test_cli_list_shows_names_and_prefixes_never_keys(runtime, cli):
    assert "no API keys" in cli("apikey", "list").stdout
    crm = cli("apikey", "create", "crm").stdout.splitlines()[-1]
    cli("apikey", "create", "pbx")
    cli("apikey", "revoke", "pbx")
    result = cli("apikey", "list")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(lines) == {"crm", "pbx"}
    assert crm not in result.stdout
    assert crm[:11] in lines["crm"]
    assert lines["crm"].endswith("active")
    assert "revoked" in lines["pbx"]


def test_cli_revoke(runtime, cli):
    key = cli("apikey", "create", "crm").stdout.splitlines()[-1]
    result = cli("apikey", "revoke", "crm")
    assert result.exit_code == 0
    assert verify(runtime, key) is None
    assert key_rows(runtime)[0].revoked_at is not None


def test_cli_revoke_of_an_unknown_name_exits_1(cli):
    result = cli("apikey", "revoke", "nobody")
    assert result.exit_code == 1
    assert "no API key named 'nobody'" in result.output


# -- scopes -----------------------------------------------------------------------------


def test_a_key_holds_intake_unless_given_other_scopes(runtime):
    with runtime.db.session() as session:
        apikeys.create_key(session, "crm")
        apikeys.create_key(session, "bi", ["reports"])
        apikeys.create_key(session, "both", ["reports:full", "intake", "intake"])
    assert [(row.name, row.scopes) for row in key_rows(runtime)] == [
        ("bi", "reports"),
        ("both", "intake reports:full"),
        ("crm", "intake"),
    ]


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ([], "at least one scope"),
        (["admin"], "unknown scope 'admin'"),
        (["reports", "reports:full"], "not both"),
        (["intake", "reports:masked"], "unknown scope"),
    ],
)
def test_bad_scopes_are_refused(runtime, scopes, message):
    with runtime.db.session() as session, pytest.raises(apikeys.ApiKeyError, match=message):
        apikeys.create_key(session, "crm", scopes)
    assert key_rows(runtime) == []


def test_set_scopes_replaces_them(runtime):
    create(runtime)
    with runtime.db.session() as session:
        apikeys.set_scopes(session, "crm", ["reports"])
        with pytest.raises(apikeys.ApiKeyError, match="no API key named"):
            apikeys.set_scopes(session, "nobody", ["reports"])
        with pytest.raises(apikeys.ApiKeyError, match="not both"):
            apikeys.set_scopes(session, "crm", ["reports", "reports:full"])
    assert key_rows(runtime)[0].scopes == "reports"


def test_the_database_refuses_scopes_that_do_not_exist(runtime):
    create(runtime)
    with pytest.raises(IntegrityError), runtime.db.session() as session:
        session.scalars(select(ApiKey)).one().scopes = "intake admin"


def test_cli_create_with_scopes_list_and_set_scope(runtime, cli):
    assert cli("apikey", "create", "crm").exit_code == 0
    result = cli("apikey", "create", "bi", "--scope", "reports")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in cli("apikey", "list").stdout.splitlines()}
    assert lines["name"][2] == "scope"
    assert (lines["crm"][2], lines["bi"][2]) == ("intake", "reports")
    result = cli("apikey", "set-scope", "bi", "--scope", "reports:full", "--scope", "intake")
    assert result.exit_code == 0, result.output
    assert "intake reports:full" in result.output
    assert key_rows(runtime)[0].scopes == "intake reports:full"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create", "bi", "--scope", "admin"), "admin"),
        (("create", "bi", "--scope", "reports", "--scope", "reports:full"), "not both"),
        (("set-scope", "nobody", "--scope", "reports"), "no API key named"),
        (("set-scope", "crm"), "--scope"),
    ],
)
def test_cli_scope_mistakes_exit_non_zero_and_say_why(cli, args, message):
    result = cli("apikey", *args)
    assert result.exit_code != 0
    assert message in result.output


def test_a_reports_full_key_reads_any_survey_request_and_sends_none(client, runtime):
    """An alert's link is readable whichever way the call came in (here: the CLI's way,
    no key), by a key that may see every customer anyway; it still cannot send calls."""
    (result,) = accept_calls(
        runtime, [CallEnded(phone="+14155550123", source_call_id="cli-1", ended_at=ENDED_AT)]
    )
    with runtime.db.session() as session:
        full = apikeys.create_key(session, "callbacks", scopes=[apikeys.REPORTS_FULL])
        masked = apikeys.create_key(session, "bi", scopes=[apikeys.REPORTS])
        assert session.get(SurveyRequest, result.request_id).api_key_id is None
    path = f"/api/v1/survey-requests/{result.request_id}"
    response = client.get(path, headers={"Authorization": f"Bearer {full}"})
    assert response.status_code == 200 and response.get_json()["phone"] == "+14155550123"
    assert client.get(path, headers={"Authorization": f"Bearer {masked}"}).status_code == 403
    sent = client.post(
        "/api/v1/survey-requests",
        json={"phone": "+14155550124", "source_call_id": "x", "ended_at": ENDED_AT.isoformat()},
        headers={"Authorization": f"Bearer {full}"},
    )
    assert sent.status_code == 403
