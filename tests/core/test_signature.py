"""core.signature against the twilio SDK's own validator: the same verdict on any input."""

from __future__ import annotations

from urllib.parse import urlparse

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator, add_port, remove_port
from werkzeug.datastructures import MultiDict

from core.signature import signature_is_valid, signature_is_valid_at, signed_base

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


# What comes after PUBLIC_BASE_URL: a path and query as received, any characters,
# including those URL parsing rewrites (#, ;, tabs, line breaks, a trailing ?).
bases = st.sampled_from(
    [
        "https://surveys.example.test",
        "https://surveys.example.test:443",
        "http://127.0.0.1:8000",
        "https://a.b.c:8443/prefix",
        "HTTPS://Surveys.Example.test",
        "https://surveys.example.test/",
        "https://surveys.example.test/x;y",
        "https://surveys.example.test:notaport",
    ]
)
suffixes = st.one_of(
    st.builds(
        lambda path, query: f"/voice/attempts/{path}" + (f"?{query}" if query else ""),
        st.from_regex(r"[0-9a-z/]{0,20}", fullmatch=True),
        st.from_regex(r"[a-z0-9=&%+.]{0,30}", fullmatch=True),
    ),
    st.text(alphabet="/?#;:=&%+. \t\r\nab1", max_size=16).map(lambda rest: "/" + rest),
    st.text(max_size=12).map(lambda rest: "/" + rest),
)


def _sdk_verdict(url: str, form: MultiDict, signature: str) -> bool | None:
    try:
        return twilio_says(url, form, signature)
    except ValueError:  # a port that is no number: the SDK raises, and so must we
        return None


def _our_verdict(base: str, suffix: str, form: MultiDict, signature: str) -> bool | None:
    try:
        return signature_is_valid_at(TOKEN, base, suffix, form.lists(), signature)
    except ValueError:
        return None


@given(base=bases, suffix=suffixes, form=forms, signed_with_port=st.booleans())
def test_one_hmac_over_the_canonical_url_agrees_with_the_sdk(base, suffix, form, signed_with_port):
    url = base + suffix
    try:
        signed = (add_port if signed_with_port else remove_port)(urlparse(url))
    except ValueError:
        signed = url
    genuine = RequestValidator(TOKEN).compute_signature(signed, form)
    forged = RequestValidator(TOKEN).compute_signature(url + "x", form)
    for signature in (genuine, forged, genuine[:-1]):
        assert _our_verdict(base, suffix, form, signature) is _sdk_verdict(url, form, signature)
    assert not _our_verdict(base, suffix, form, "")


def test_the_canonical_base_is_worked_out_once_and_only_for_a_plain_base():
    base = signed_base("https://surveys.example.test")
    assert (base.without_port, base.with_port) == (
        "https://surveys.example.test",
        "https://surveys.example.test:443",
    )
    assert signed_base("https://surveys.example.test") is base
    # A base that URL parsing would rewrite takes the SDK's way on every webhook.
    assert signed_base("HTTPS://surveys.example.test").without_port is None
    assert signed_base("https://surveys.example.test/x;y").without_port is None
