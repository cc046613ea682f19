"""core.signature against the twilio SDK's own validator: the same verdict on any input."""

from __future__ import annotations

from urllib.parse import urlparse

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator, add_port, remove_port
from werkzeug.datastructures import MultiDict

from core.signature import signature_is_valid

TOKEN = "12345678901234567890123456789012"
text = st.text(max_size=12)
forms = st.lists(st.tuples(text, text), max_size=8).map(MultiDict)
urls = st.builds(
    lambda scheme, host, port, path, query: (
        f"{scheme}://{host}{port}/voice/attempts/{path}" + (f"?{query}" if query else "")
    ),
    st.sampled_from(["https", "http"]),
    st.sampled_from(["surveys.example.test", "127.0.0.1", "a.b.c"]),
    st.sampled_from(["", ":443", ":80", ":8443"]),
    st.from_regex(r"[0-9a-z/]{0,20}", fullmatch=True),
    st.from_regex(r"[a-z0-9=&%+]{0,20}", fullmatch=True),
)


def twilio_says(url: str, form: MultiDict, signature: str) -> bool:
    return RequestValidator(TOKEN).validate(url, form, signature)


@given(url=urls, form=forms, signed_with_port=st.booleans())
def test_a_genuine_signature_passes_as_in_the_sdk(url, form, signed_with_port):
    # Twilio may have signed the URL with the default port or without it.
    validator = RequestValidator(TOKEN)
    signed = (add_port if signed_with_port else remove_port)(urlparse(url))
    signature = validator.compute_signature(signed, form)
    assert twilio_says(url, form, signature)
    assert signature_is_valid(TOKEN, url, form.lists(), signature)


@given(url=urls, form=forms, other=forms, signature=st.text(max_size=40))
def test_any_other_signature_gets_the_sdks_verdict(url, form, other, signature):
    forged = RequestValidator(TOKEN).compute_signature(url, other)
    for candidate in (signature, forged, forged[:-1], forged + "="):
        assert signature_is_valid(TOKEN, url, form.lists(), candidate) is twilio_says(
            url, form, candidate
        )


def test_changed_parameters_and_other_tokens_fail():
    url = "https://surveys.example.test/voice/attempts/1/questions/nps?try=1"
    form = MultiDict([("CallSid", "CA1"), ("Digits", "9")])
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    assert signature_is_valid(TOKEN, url, form.lists(), signature)
    assert not signature_is_valid(
        TOKEN, url, MultiDict([("CallSid", "CA1"), ("Digits", "0")]).lists(), signature
    )
    assert not signature_is_valid(TOKEN, url.replace("try=1", "try=2"), form.lists(), signature)
    assert not signature_is_valid("another-token", url, form.lists(), signature)
    assert not signature_is_valid("", url, form.lists(), signature)
    assert not signature_is_valid(TOKEN, url, form.lists(), "")
