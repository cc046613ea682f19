"""Twilio's REST error responses.

Shape (twilio.com/docs/usage/twilios-response#response-formats-exceptions):
`{"code": 21211, "message": "...", "more_info": "https://www.twilio.com/docs/errors/21211",
"status": 400}`. The SDK turns it into `TwilioRestException(status, uri, msg, code)`.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


def not_found(path: str) -> ApiError:
    return ApiError(404, 20404, f"The requested resource {path} was not found")


def unauthorized() -> ApiError:
    return ApiError(401, 20003, "Authenticate")


def too_many_requests() -> ApiError:
    return ApiError(429, 20429, "Too Many Requests")


def server_error() -> ApiError:
    return ApiError(500, 20500, "Internal Server Error")
