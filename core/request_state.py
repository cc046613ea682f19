"""How a survey request's state moves, in the one guarded statement ivr and the dialer
share: a webhook (a person picked up, the survey ended, an opt-out) and a status
callback (the call ended unanswered) move the same request, so each move says from which
states it may happen, and the database decides.

It does not decide which state comes next: ivr (the survey call) and the dialer (the
attempt's end) do.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, bindparam, case, exists, select, update

from core.models import Answer, RequestState, SurveyRequest

_ANSWERS = Answer.__table__
_REQUESTS = SurveyRequest.__table__

# States in which nobody has been reached yet on the current attempt: a person picking up
# (ivr) or the attempt's end (the dialer) moves a request on from these.
NOT_YET_REACHED = frozenset(
    {
        RequestState.PENDING,
        RequestState.SCHEDULED,
        RequestState.CALLING,
        RequestState.NO_ANSWER,
        RequestState.BUSY,
        RequestState.FAILED,
        RequestState.VOICEMAIL,
    }
)

_MOVE_REQUEST = (
    update(_REQUESTS)
    .where(
        _REQUESTS.c.id == bindparam("request_id"),
        _REQUESTS.c.state.in_(bindparam("when_in", expanding=True, type_=_REQUESTS.c.state.type)),
    )
    .values(state=bindparam("state", type_=_REQUESTS.c.state.type))
)


_HAS_ANSWERS = (
    select(_ANSWERS.c.id).where(_ANSWERS.c.request_id == bindparam("request_id")).limit(1)
)


def move_request(
    connection: Connection,
    request_id: int,
    state: RequestState,
    *,
    when_in: Collection[RequestState],
) -> None:
    """Set the request's state if its current state (in the database) is one of `when_in`."""
    connection.execute(
        _MOVE_REQUEST, {"request_id": request_id, "state": state, "when_in": list(when_in)}
    )


_MOVE_BY_ANSWERS = (
    update(_REQUESTS)
    .where(
        _REQUESTS.c.id == bindparam("request_id"),
        _REQUESTS.c.state.in_(bindparam("when_in", expanding=True, type_=_REQUESTS.c.state.type)),
    )
    .values(
        state=case(
            (
                exists().where(_ANSWERS.c.request_id == _REQUESTS.c.id),
                bindparam("answered", type_=_REQUESTS.c.state.type),
            ),
            else_=bindparam("unanswered", type_=_REQUESTS.c.state.type),
        )
    )
)


def move_request_by_answers(
    connection: Connection,
    request_id: int,
    *,
    answered: RequestState,
    unanswered: RequestState,
    when_in: Collection[RequestState],
) -> None:
    """`move_request()` to `answered` if the customer answered any question of the
    request, else to `unanswered`: whether they did is read in the same statement (one
    round trip fewer for the webhook that ends a survey than `has_answers()` first)."""
    connection.execute(
        _MOVE_BY_ANSWERS,
        {"request_id": request_id, "answered": answered, "unanswered": unanswered,
         "when_in": list(when_in)},
    )  # fmt: skip


def has_answers(connection: Connection, request_id: int) -> bool:
    """Whether the customer answered any question of the request."""
    return connection.execute(_HAS_ANSWERS, {"request_id": request_id}).first() is not None
