"""Personas with a feeling: they make out what a call's prompts ask and answer on that
question's own scale, coherently (phonesim.persona, phonesim.question.read_spoken)."""

from __future__ import annotations

import random

import pytest

from phonesim import Comment, Feeling, Persona, PersonaMix, Question, Speech
from phonesim.question import read_spoken

PROMPTS = [
    # The shipped survey's own wording, in its three languages.
    ("On a scale from 0 to 10, how likely are you to recommend us? Press or say a number "
     "from 0 to 10; for 10, press 1 then 0, or say ten.", ("scale", "en", 0, 10)),
    ("How satisfied were you with the help you received today? Press or say 1 for very "
     "dissatisfied, up to 5 for very satisfied.", ("scale", "en", 1, 5)),
    ("¿Qué tan satisfecho quedó? Marque o diga 1 si quedó muy insatisfecho, hasta 5 si "
     "quedó muy satisfecho.", ("scale", "es", 1, 5)),
    ("Jak bardzo jesteś zadowolony? Naciśnij lub powiedz 1, jeśli bardzo niezadowolony, "
     "do 5, jeśli bardzo zadowolony.", ("scale", "pl", 1, 5)),
    ("W skali od 0 do 10, jak bardzo prawdopodobne jest, że polecisz nas znajomemu? Aby "
     "wybrać 10, naciśnij 1, a potem 0.", ("scale", "pl", 0, 10)),
    # The product's re-asks and confirmations.
    ("Sorry, that is not a valid answer. Please press a number from 1 to 7.", ("scale", "en", 1, 7)),
    ("Press 1 for yes, or 2 for no.", ("yesno", "en", 0, 0)),
    ("Marque 1 para sí o 2 para no.", ("yesno", "es", 0, 0)),
    ("Naciśnij 1, aby odpowiedzieć tak, lub 2, aby odpowiedzieć nie.", ("yesno", "pl", 0, 0)),
]  # fmt: skip


@pytest.mark.parametrize(("prompt", "expected"), PROMPTS)
def test_a_persona_makes_out_the_scale_a_prompt_asks_for(prompt, expected):
    question = read_spoken(prompt)
    assert question is not None
    assert (question.kind, question.language, question.low, question.high) == expected


@pytest.mark.parametrize(
    "prompt",
    [
        "Hello, this is Example Company. To stop these calls, press star at any time.",
        "What should we improve? Please tell us after the tone, then press the pound key.",
        "Thank you for your feedback. Goodbye.",
        "We are open from 9 to 17 on weekdays.",
    ],
)
def test_prompts_that_ask_for_no_key_are_no_question(prompt):
    assert read_spoken(prompt) is None


def test_a_confirmation_is_a_yes_no_question_that_confirms():
    question = read_spoken("I heard nine. Is that right? Press 1 or say yes; press 2 or say no.")
    assert question == Question("yesno", "en", yes_key="1", no_key="2", confirms=True)


def felt(target: str, satisfaction: float, **options) -> Persona:
    return Persona(name="felt", feeling=Feeling(target, satisfaction), **options)


CSAT = Question("scale", "en", 1, 5)
NPS = Question("scale", "en", 0, 10)


@pytest.mark.parametrize(
    ("target", "satisfaction", "nps", "csat"),
    [("promoter", 0.95, {"9", "10"}, {"4", "5"}), ("detractor", 0.2, set("0123456"), {"1", "2"})],
)
def test_answers_stay_on_each_question_s_scale_and_agree(target, satisfaction, nps, csat):
    for seed in range(30):
        callee = felt(target, satisfaction, seed=seed).callee()
        assert callee.next_answer(NPS) in nps
        assert callee.next_answer(CSAT) in csat


def test_confirmations_are_yes_and_speakers_say_their_answers():
    callee = felt("detractor", 0.1, speaks=True).callee()
    answer = callee.next_answer(Question("scale", "es", 1, 5))
    assert isinstance(answer, Speech) and 1 <= int(answer.text) <= 2
    confirm = Question("yesno", "es", confirms=True)
    assert callee.next_answer(confirm) == Speech("sí")
    assert felt("detractor", 0.1).callee().next_answer(confirm) == "1"


def test_a_comment_an_opt_out_and_silence_when_nothing_is_made_out():
    callee = felt("passive", 0.7, opt_out_at=3).callee()
    comment = callee.next_answer(None, recording=True, language="pl")
    assert isinstance(comment, Comment) and comment.text
    assert callee.next_answer(None) == ""  # a question it could not make out
    assert callee.next_answer(CSAT) == "*"


def test_the_mix_gives_its_random_personas_a_feeling_of_the_published_mix():
    mix = PersonaMix.default()
    targets = [
        persona.feeling.target
        for number in range(2000)
        if (persona := mix.choose(7, f"+1415555{number:04d}")).feeling is not None
    ]
    shares = {target: targets.count(target) / len(targets) for target in set(targets)}
    assert shares["promoter"] == pytest.approx(0.5, abs=0.05)
    assert shares["detractor"] == pytest.approx(0.2, abs=0.05)
    assert all(
        Feeling.draw(random.Random(seed)).value(1, 5, random.Random(seed)) in range(1, 6)
        for seed in range(50)
    )
