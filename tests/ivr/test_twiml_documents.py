"""The answer webhooks' TwiML, rendered once per survey version, step, language and
greeting (ivr.twiml.step_document) and filled in with each call's own URLs: the same
document, attribute for attribute, as rendering the step for that call."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from core import flow
from core.config import DEFAULT_SURVEYS_DIR
from core.flow import Ask, Confirm, Finish, ListenForZero
from core.survey import SurveyCatalog
from ivr import twiml
from ivr.keypad import Rejection
from ivr.prompts import Phrasebook
from ivr.twiml import CallUrls, DocumentKey, goodbye, goodbye_document, render_step, step_document

DEFINITION = SurveyCatalog.from_directory(DEFAULT_SURVEYS_DIR).get("post-call")
CALLS = [
    CallUrls("https://surveys.example.test/voice/attempts/7", ref="7.1.0123456789ab.en"),
    CallUrls("https://surveys.example.test/voice/attempts/8", ref="8.1.0123456789ab.en"),
    CallUrls("https://surveys.example.test/voice/attempts/9"),  # no ref: a redirect's URL
    # Never a real base URL: characters XML escapes are rendered for the call.
    CallUrls("https://surveys.example.test/a&b/voice/attempts/10", ref="10.1.x.en"),
]


def steps() -> list[flow.Step]:
    found: list[flow.Step] = [Finish(), Finish(moved_on=True)]
    for question in DEFINITION.questions:
        found.append(ListenForZero(question, 1))
        for attempt, greet, reason, moved_on in [
            (1, True, None, False),
            (1, False, None, True),
            (2, False, Rejection.NO_INPUT, False),
            (2, False, Rejection.INVALID, False),
            (3, False, Rejection.MISHEARD, True),
        ]:
            found.append(Ask(question, attempt, greet, reason, moved_on))
    return found


def key(language: str, greeting: str = "greeting") -> DocumentKey:
    return DocumentKey(1, "0123456789ab", language, "Acme", "+18005550100", greeting)


def phrases(language: str) -> Phrasebook:
    return Phrasebook.for_call(DEFINITION, language, "Acme", "+18005550100")


@pytest.mark.parametrize("language", sorted(DEFINITION.languages))
def test_every_step_s_document_is_the_one_rendered_for_the_call(language):
    for step in steps():
        for urls in CALLS * 2:  # the second time from the cache
            expected = str(render_step(step, phrases(language), urls))
            assert step_document(step, key(language), lambda: phrases(language), urls) == expected


def test_a_cached_document_names_each_call_s_own_urls():
    ask = Ask(DEFINITION.questions[0], 1, greet=True)
    documents = [
        ET.fromstring(step_document(ask, key("en"), lambda: phrases("en"), urls))
        for urls in CALLS[:2]
    ]
    actions = [root.find("./Gather").get("action") for root in documents]
    assert actions == [urls.question(ask.question.key, 1) for urls in CALLS[:2]]
    assert [root.find("./Redirect").text for root in documents] == actions


def test_a_confirmation_is_rendered_for_each_call():
    question = DEFINITION.questions[0]
    for transcript in ("nine", "seven & a half"):
        step = Confirm(question, 9, 1, transcript, 0.41)
        document = step_document(step, key("en"), lambda: phrases("en"), CALLS[0])
        assert document == str(render_step(step, phrases("en"), CALLS[0]))
        action = ET.fromstring(document).find("./Gather").get("action")
        assert action == CALLS[0].confirmation(step)


@pytest.mark.parametrize("phrase", ["opted_out", "voicemail"])
def test_goodbyes_are_rendered_once_per_language(phrase):
    for language in sorted(DEFINITION.languages):
        expected = str(goodbye(phrases(language), phrase))
        for _ in range(2):
            document = goodbye_document(phrase, key(language), lambda lang=language: phrases(lang))
            assert document == expected


def test_the_documents_kept_are_bounded(monkeypatch):
    monkeypatch.setattr(twiml, "MAX_DOCUMENTS", 5)
    monkeypatch.setattr(twiml, "_documents", {})
    for version in range(20):
        other = DocumentKey(version, "0123456789ab", "en", "Acme", "+18005550100")
        step_document(Finish(), other, lambda: phrases("en"), CALLS[0])
    assert len(twiml._documents) == 5
