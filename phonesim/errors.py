"""Twilio's REST error responses.

Shape (twilio.com/docs/usage/twilios-response#response-formats-exceptions):
`{"code": 21211, "message": "...", "more_info": "https://www.twilio.com/docs/errors/21211",
"status": 400}`, plus `detail` on authentication errors. The SDK turns it into
`TwilioRestException(status, uri, msg, code)`.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code}
        if self.detail is not None:
            body["detail"] = self.detail
        body.update(
            message=self.message,
            more_info=f"https://www.twilio.com/docs/errors/{self.code}",
            status=self.status,
        )
        return body


def not_found(path: str) -> ApiError:
    return ApiError(404, 20404, f"The requested resource {path} was not found")


def unauthorized(message: str = "Authenticate") -> ApiError:
    """Twilio's answer to a wrong or missing account SID or auth token."""
    return ApiError(401, 20003, message, "Your AccountSid or AuthToken was incorrect.")


def account_not_active() -> ApiError:
    """A suspended or closed account's request to place a call (Twilio: 20005)."""
    return ApiError(401, 20005, "Account not active")


def too_many_requests() -> ApiError:
    return ApiError(429, 20429, "Too Many Requests")


def server_error() -> ApiError:
    return ApiError(500, 20500, "Internal Server Error")
