"""How a simulated customer feels about the support call, and what that makes them answer.

One customer, one feeling: a `Feeling` is drawn once per customer (a promoter, a passive
or a detractor, and a satisfaction between 0 and 1 inside the target's band), and every
answer they give, by voice or by text, is that satisfaction on the question's own scale,
strayed a little (`noise`). A 0-10 scale is read as NPS and stays inside the target's
band (9-10, 7-8, 0-6), so the target is what the product scores; a 1-5 CSAT or 1-7 CES
question follows the same satisfaction, so a promoter is mostly satisfied on every
scale and a detractor mostly not. A yes/no question is a yes with the satisfaction's
probability; a request to confirm what was heard is always a yes (the simulator's
recogniser hears exactly what was said).

The default mix of targets, and where it comes from (published benchmarks, read as
approximate; the demo's figures are meant to look like a contact center's, not to match
any one of them):
- NPS: SurveyMonkey's global benchmark puts the average NPS at about +32 (quoted by
  observe.ai's contact-center glossary, "What is Net Promoter Score"); industry
  benchmark pages put most B2C service industries between +20 and +40, and a survey by
  phone reads some points higher than one by email (turnella.com, "Net Promoter Score in
  contact centres"). Assumed: 50% promoters, 30% passives, 20% detractors, NPS +30.
- CSAT (share answering 4-5 of 5): 75-85% is the usual "good" range for customer
  service (livex.ai's customer service metrics benchmark; squaretalk.com, "What does
  CSAT mean in a call center": above 75% is good), and ACSI's 2023 sector scores run
  from 73 to 80 of 100. Assumed: passives and promoters are satisfied (4-5), detractors
  mostly not, which with the mix above gives about 80% satisfied.
- CES (1-7, 5-7 "easy"): the same satisfaction on the question's scale; no benchmark
  was used.

What this module does not do: read questions (`phonesim.question`), or decide when a
customer answers, hangs up or opts out (the personas do).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Target = Literal["promoter", "passive", "detractor"]
TARGETS: tuple[Target, ...] = ("promoter", "passive", "detractor")
# The default mix of customers (see the module docstring): NPS +30.
TARGET_WEIGHTS: dict[Target, float] = {"promoter": 50.0, "passive": 30.0, "detractor": 20.0}
# The satisfaction a target's customer feels, drawn once per customer, and the NPS band
# (0-10) the target's answers stay in so that the product scores the target.
SATISFACTION: dict[Target, tuple[float, float]] = {
    "promoter": (0.88, 1.0),
    "passive": (0.68, 0.82),
    "detractor": (0.0, 0.6),
}
NPS_BAND: dict[Target, tuple[int, int]] = {
    "promoter": (9, 10),
    "passive": (7, 8),
    "detractor": (0, 6),
}
NOISE = 0.06

# Short comments by how the customer feels (positive, neutral, negative); none says
# "stop" or "don't text", which a product rightly reads as an opt-out.
COMMENTS = {
    "en": (
        ("Quick and friendly, thanks", "Solved my problem first time", "Great help"),
        ("It was ok, a bit slow", "Fine, took a while", "Agent was nice, wait was long"),
        ("Waited too long on hold", "Problem still not solved", "Nobody called back"),
    ),
    "es": (
        ("Rápido y amable, gracias", "Resolvieron todo a la primera", "Muy buena atención"),
        ("Bien, algo lento", "Correcto, pero tardaron", "Amables, mucha espera"),
        ("Esperé demasiado", "Mi problema sigue sin resolver", "Nadie me devolvió la llamada"),
    ),
    "pl": (
        ("Szybko i miło, dziękuję", "Problem rozwiązany od razu", "Bardzo dobra obsługa"),
        ("W porządku, trochę wolno", "Dobrze, ale długo to trwało", "Miło, ale długie czekanie"),
        ("Za długo czekałem", "Problem nadal nierozwiązany", "Nikt nie oddzwonił"),
    ),
}


@dataclass(frozen=True)
class Feeling:
    """One customer's feeling about their support call: a target and a satisfaction
    (0-1) inside the target's band; `noise` is how far one answer strays from it."""

    target: Target
    satisfaction: float
    noise: float = NOISE

    @classmethod
    def draw(
        cls,
        rng: random.Random,
        target: Target | None = None,
        weights: dict[Target, float] | None = None,
        noise: float = NOISE,
    ) -> Feeling:
        """A customer's feeling: of `target`, else one drawn with `weights`
        (TARGET_WEIGHTS by default)."""
        target = target or weighted_target(rng, weights or TARGET_WEIGHTS)
        low, high = SATISFACTION[target]
        return cls(target, rng.uniform(low, high), noise)

    @property
    def mood(self) -> int:
        """0 positive, 1 neutral, 2 negative: which of the COMMENTS they would say."""
        return 0 if self.satisfaction >= 0.85 else 1 if self.satisfaction >= 0.65 else 2

    def value(self, low: int, high: int, rng: random.Random) -> int:
        """The answer on a `low`-`high` scale; a 0-10 scale stays in the NPS band."""
        felt = min(1.0, max(0.0, self.satisfaction + rng.gauss(0.0, self.noise)))
        value = low + round(felt * (high - low))
        if (low, high) == (0, 10):
            band_low, band_high = NPS_BAND[self.target]
            value = min(band_high, max(band_low, value))
        return value

    def agrees(self, rng: random.Random) -> bool:
        """The answer to a survey's yes/no question (was the problem solved?)."""
        return rng.random() < self.satisfaction

    def comment(self, language: str, rng: random.Random) -> str:
        return rng.choice(COMMENTS.get(language, COMMENTS["en"])[self.mood])


def weighted_target(rng: random.Random, weights: dict[Target, float]) -> Target:
    pick = rng.uniform(0, sum(weights.values()))
    for target, weight in weights.items():
        pick -= weight
        if pick <= 0:
            return target
    return TARGETS[-1]
