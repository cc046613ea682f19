"""The Account, IncomingPhoneNumbers and OutgoingCallerIds resources through the real
twilio Client (and over raw HTTP where the shape of the wire matters)."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from core.telephony import RedirectingHttpClient
from phonesim import DEFAULT_NUMBERS, PhoneNetwork, SimClock
from tests.phonesim.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM, START

OTHER_ACCOUNT = "AC" + "cd34" * 8


def numbers_url(network: PhoneNetwork, account: str = ACCOUNT_SID) -> str:
    return f"{network.api_base}/2010-04-01/Accounts/{account}/IncomingPhoneNumbers.json"


def list_error(exc: TwilioException) -> tuple[int, dict]:
    """A list raises a bare TwilioException carrying the SDK's HTTP response."""
    response = exc.args[1]
    return response.status_code, json.loads(response.text)


# -- the Account -------------------------------------------------------------------------


def test_the_account_is_fetched_in_twilios_shape(twilio_client: Client) -> None:
    account = twilio_client.api.v2010.accounts(ACCOUNT_SID).fetch()

    assert account.sid == ACCOUNT_SID
    assert account.owner_account_sid == ACCOUNT_SID
    assert account.friendly_name == "phonesim"
    assert account.status == "active"
    assert account.type == "Full"
    assert account.auth_token == AUTH_TOKEN
    assert account.date_created == START
    assert account.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"
    assert account.subresource_uris["incoming_phone_numbers"] == (
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json"
    )


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_the_account_status_is_what_the_network_was_told(
    network: PhoneNetwork, twilio_client: Client, clock: SimClock, status: str
) -> None:
    clock.advance(3600)
    network.set_account_status(status)

    account = twilio_client.api.v2010.accounts(ACCOUNT_SID).fetch()

    assert account.status == status
    assert account.date_updated == network.clock.now()
    assert account.date_updated > account.date_created


def test_a_trial_account_says_so(clock: SimClock) -> None:
    with PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, clock=clock, account_type="Trial") as network:
        client = Client(
            ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(network.api_base)
        )

        assert client.api.v2010.accounts(ACCOUNT_SID).fetch().type == "Trial"


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_an_account_that_is_not_active_places_no_call(
    network: PhoneNetwork, twilio_client: Client, status: str
) -> None:
    network.set_account_status(status)

    with pytest.raises(TwilioRestException) as raised:
        twilio_client.calls.create(to="+15551230001", from_=FROM, url="https://example.test/x")

    assert (raised.value.status, raised.value.code) == (401, 20005)
    assert network.calls == []
    # Reading is still allowed: that is how one finds out why.
    assert twilio_client.incoming_phone_numbers.list(limit=1) != []


# -- credentials -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password"),
    [(ACCOUNT_SID, "wrong-token"), (OTHER_ACCOUNT, AUTH_TOKEN)],
    ids=["wrong token", "unknown account SID"],
)
def test_wrong_credentials_are_401_code_20003(
    network: PhoneNetwork, username: str, password: str
) -> None:
    client = Client(username, password, http_client=RedirectingHttpClient(network.api_base))

    with pytest.raises(TwilioRestException) as fetched:
        client.api.v2010.accounts(username).fetch()
    with pytest.raises(TwilioException) as listed:
        client.api.v2010.accounts(username).incoming_phone_numbers.list()

    assert (fetched.value.status, fetched.value.code) == (401, 20003)
    status, body = list_error(listed.value)
    assert (status, body["code"], body["status"]) == (401, 20003, 401)
    assert body["detail"] == "Your AccountSid or AuthToken was incorrect."
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20003"


def test_no_credentials_at_all_are_asked_for(network: PhoneNetwork) -> None:
    response = requests.get(numbers_url(network), timeout=5)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
    assert response.json()["message"] == "Authentication Error - No credentials provided"


@pytest.mark.parametrize("suffix", [".json", "/IncomingPhoneNumbers.json", "/Calls.json"])
def test_another_accounts_path_with_these_credentials_is_404(
    network: PhoneNetwork, suffix: str
) -> None:
    path = f"/2010-04-01/Accounts/{OTHER_ACCOUNT}{suffix}"

    response = requests.get(network.api_base + path, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)

    assert response.status_code == 404
    assert response.json() == {
        "code": 20404,
        "message": f"The requested resource {path} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


# -- IncomingPhoneNumbers ----------------------------------------------------------------


def test_the_default_numbers_are_owned_with_voice_and_sms(twilio_client: Client) -> None:
    numbers = twilio_client.incoming_phone_numbers.list()

    assert [number.phone_number for number in numbers] == list(DEFAULT_NUMBERS)
    first = numbers[0]
    assert first.capabilities == {"fax": False, "mms": False, "sms": True, "voice": True}
    assert re.fullmatch(r"PN[0-9a-f]{32}", first.sid)
    assert first.account_sid == ACCOUNT_SID
    assert first.friendly_name == "(415) 555-0100"
    assert first.origin == "twilio"
    assert first.api_version == "2010-04-01"
    assert first.date_created == START
    assert first.voice_url is None
    assert first.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers/{first.sid}.json"
    assert twilio_client.incoming_phone_numbers(first.sid).fetch().phone_number == "+14155550100"


def test_the_phone_number_filter_takes_part_of_a_number_and_wildcards(
    network: PhoneNetwork, twilio_client: Client
) -> None:
    network.account.add_number("+442071838750")
    network.account.add_number("+14155550123", voice=False)

    def listed(pattern: str) -> list[str]:
        found = twilio_client.incoming_phone_numbers.list(phone_number=pattern)
        return [number.phone_number for number in found]

    assert listed("+14155550123") == ["+14155550123"]
    assert listed("+1415555") == ["+14155550100", "+14155550123"]
    assert listed("2071") == ["+442071838750"]
    assert listed("+1500555****") == ["+15005550006"]
    assert listed("+19995550100") == []
    assert listed("(415) 555-0123") == []
    (no_voice,) = twilio_client.incoming_phone_numbers.list(friendly_name="(415) 555-0123")
    assert no_voice.capabilities["voice"] is False


def test_the_same_number_gets_the_same_sid_on_every_network(clock: SimClock) -> None:
    first = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, clock=clock).account.numbers
    again = PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, clock=clock).account.numbers
    other = PhoneNetwork(OTHER_ACCOUNT, AUTH_TOKEN, clock=clock).account.numbers

    assert [n.sid for n in first] == [n.sid for n in again]
    assert not {n.sid for n in first} & {n.sid for n in other}


def test_lists_page_as_twilios_do(network: PhoneNetwork, twilio_client: Client) -> None:
    added = [f"+1415555020{digit}" for digit in range(5)]
    for number in added:
        network.account.add_number(number)
    everything = [*DEFAULT_NUMBERS, *added]

    # The SDK follows next_page_uri until it is null.
    listed = twilio_client.incoming_phone_numbers.list(page_size=3)
    assert [number.phone_number for number in listed] == everything
    assert [n.phone_number for n in twilio_client.incoming_phone_numbers.list(limit=4)] == (
        everything[:4]
    )

    auth = (ACCOUNT_SID, AUTH_TOKEN)
    path = f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json"
    first = requests.get(numbers_url(network), params={"PageSize": 3}, auth=auth, timeout=5)
    body = first.json()
    assert [row["phone_number"] for row in body["incoming_phone_numbers"]] == everything[:3]
    assert (body["page"], body["page_size"], body["start"], body["end"]) == (0, 3, 0, 2)
    assert body["uri"] == body["first_page_uri"] == f"{path}?PageSize=3&Page=0"
    assert body["previous_page_uri"] is None
    last_sid = body["incoming_phone_numbers"][-1]["sid"]
    assert body["next_page_uri"] == f"{path}?PageSize=3&Page=1&PageToken=PA{last_sid}"

    second = requests.get(network.api_base + body["next_page_uri"], auth=auth, timeout=5).json()
    assert [row["phone_number"] for row in second["incoming_phone_numbers"]] == everything[3:6]
    assert (second["page"], second["start"], second["end"]) == (1, 3, 5)
    previous = second["previous_page_uri"]
    assert parse_qs(urlsplit(previous).query)["Page"] == ["0"]
    back = requests.get(network.api_base + previous, auth=auth, timeout=5).json()
    assert back["incoming_phone_numbers"] == body["incoming_phone_numbers"]

    third = requests.get(network.api_base + second["next_page_uri"], auth=auth, timeout=5).json()
    assert [row["phone_number"] for row in third["incoming_phone_numbers"]] == everything[6:]
    assert third["next_page_uri"] is None


def test_filters_are_kept_in_the_page_uris(network: PhoneNetwork) -> None:
    response = requests.get(
        numbers_url(network),
        params={"PhoneNumber": "+1415", "PageSize": 1},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=5,
    )

    body = response.json()
    assert body["uri"].endswith("IncomingPhoneNumbers.json?PhoneNumber=%2B1415&PageSize=1&Page=0")
    assert body["next_page_uri"] is None  # one number of the account starts with +1415


@pytest.mark.parametrize(
    "params",
    [{"PageSize": "0"}, {"PageSize": "1001"}, {"PageSize": "ten"}, {"Page": "-1"}],
)
def test_a_malformed_page_is_a_400_in_twilios_shape(network: PhoneNetwork, params: dict) -> None:
    response = requests.get(
        numbers_url(network), params=params, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["code"]) == (400, 20001)
    assert next(iter(params)) in body["message"]


def test_an_unknown_number_sid_is_404(twilio_client: Client) -> None:
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.incoming_phone_numbers("PN" + "0" * 32).fetch()

    assert (raised.value.status, raised.value.code) == (404, 20404)


def test_numbers_are_read_only(network: PhoneNetwork) -> None:
    response = requests.post(
        numbers_url(network), data={"PhoneNumber": "+14155550199"},
        auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5,
    )  # fmt: skip

    assert response.status_code == 405
    assert response.json()["code"] == 20004


# -- OutgoingCallerIds -------------------------------------------------------------------


def test_verified_caller_ids_are_listed_and_fetched(clock: SimClock) -> None:
    verified = "+447700900123"
    with PhoneNetwork(
        ACCOUNT_SID, AUTH_TOKEN, clock=clock, numbers=[], caller_ids=[verified]
    ) as network:
        client = Client(
            ACCOUNT_SID, AUTH_TOKEN, http_client=RedirectingHttpClient(network.api_base)
        )

        assert client.incoming_phone_numbers.list() == []
        (caller_id,) = client.outgoing_caller_ids.list(phone_number=verified)
        assert client.outgoing_caller_ids.list(phone_number="+447700900124") == []
        # Caller IDs are looked up by the whole number, not a part of it.
        assert client.outgoing_caller_ids.list(phone_number="+4477") == []
        fetched = client.outgoing_caller_ids(caller_id.sid).fetch()

    assert caller_id.phone_number == fetched.phone_number == verified
    assert caller_id.account_sid == ACCOUNT_SID
    assert caller_id.friendly_name == verified
    assert caller_id.date_created == START
    assert (
        caller_id.uri
        == f"/2010-04-01/Accounts/{ACCOUNT_SID}/OutgoingCallerIds/{caller_id.sid}.json"
    )


def test_an_account_has_no_caller_id_unless_verified(twilio_client: Client) -> None:
    assert twilio_client.outgoing_caller_ids.list() == []
    with pytest.raises(TwilioRestException) as raised:
        twilio_client.outgoing_caller_ids("PN" + "0" * 32).fetch()

    assert raised.value.status == 404


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"numbers": ["4155550100"]},
        {"caller_ids": ["+1 415 555 0100"]},
        {"account_status": "frozen"},
        {"account_type": "Premium"},
    ],
)
def test_a_network_refuses_a_malformed_account(options: dict) -> None:
    with pytest.raises(ValueError, match="is not"):
        PhoneNetwork(ACCOUNT_SID, AUTH_TOKEN, **options)


def test_requests_for_the_account_are_journaled(
    network: PhoneNetwork, twilio_client: Client
) -> None:
    twilio_client.api.v2010.accounts(ACCOUNT_SID).fetch()
    twilio_client.incoming_phone_numbers.list(phone_number=FROM)

    fetch, listing = network.journal.rest
    assert (fetch.method, fetch.status, fetch.call_sid) == ("GET", 200, None)
    assert listing.params["PhoneNumber"] == FROM
