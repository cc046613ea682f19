"""Campaign summaries aggregated by the database: outcomes, and NPS/CSAT per agent.

Only reads. Every figure is a GROUP BY in SQL; Python only does the final arithmetic
on the counts (scoring.nps).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from aftercall.models import Answer, RequestState, SurveyRequest
from scoring import nps as score


@dataclass(frozen=True)
class AgentScores:
    agent: str
    nps_responses: int
    promoters: int
    detractors: int
    csat_responses: int
    csat_satisfied: int

    @property
    def nps(self) -> float | None:
        return score.nps(self.promoters, self.detractors, self.nps_responses)

    @property
    def csat(self) -> float | None:
        return score.csat(self.csat_satisfied, self.csat_responses)


def outcome_counts(session: Session) -> dict[RequestState, int]:
    rows = session.execute(
        select(SurveyRequest.state, func.count(SurveyRequest.id)).group_by(SurveyRequest.state)
    )
    return {state: count for state, count in rows}


def scores_by_agent(session: Session) -> list[AgentScores]:
    is_nps = Answer.kind == "nps"
    is_csat = Answer.kind == "csat"

    def count_where(condition) -> func:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    agent = func.coalesce(SurveyRequest.agent, "(none)").label("agent")
    rows = session.execute(
        select(
            agent,
            count_where(is_nps),
            count_where(is_nps & (Answer.value >= score.PROMOTER_MIN)),
            count_where(is_nps & (Answer.value <= score.DETRACTOR_MAX)),
            count_where(is_csat),
            count_where(is_csat & (Answer.value >= score.CSAT_SATISFIED_MIN)),
        )
        .join(Answer.request)
        .group_by(agent)
        .order_by(agent)
    )
    return [AgentScores(*(row[0], *map(int, row[1:]))) for row in rows]
