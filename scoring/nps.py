"""The score arithmetic, from counts the database already aggregated.

NPS = % promoters (9-10) - % detractors (0-6); CSAT = % of 4-5 answers among CSAT
answers. Both come with their 95% margin of error, and with None instead of a number
when there are no answers to compute them from.
"""

from __future__ import annotations

import math

PROMOTER_MIN = 9
DETRACTOR_MAX = 6
CSAT_SATISFIED_MIN = 4
Z_95 = 1.96


def nps(promoters: int, detractors: int, responses: int) -> float | None:
    if responses <= 0:
        return None
    return 100.0 * (promoters - detractors) / responses


def nps_margin(promoters: int, detractors: int, responses: int) -> float | None:
    """1.96 x 100 x sqrt((p + d - (p - d)^2) / n), p and d the promoter/detractor shares."""
    if responses <= 0:
        return None
    p, d = promoters / responses, detractors / responses
    variance = max(p + d - (p - d) ** 2, 0.0)
    return Z_95 * 100.0 * math.sqrt(variance / responses)


def csat(satisfied: int, responses: int) -> float | None:
    if responses <= 0:
        return None
    return 100.0 * satisfied / responses


def csat_margin(satisfied: int, responses: int) -> float | None:
    if responses <= 0:
        return None
    c = satisfied / responses
    return Z_95 * 100.0 * math.sqrt(c * (1 - c) / responses)
