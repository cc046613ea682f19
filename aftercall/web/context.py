"""What a request handler is running in: the app's Runtime and its settings.

The application factory puts the Runtime on the app (`app.extensions`); every blueprint
reads it here, so there is one spelling of where it lives.
"""

from __future__ import annotations

from flask import Flask, current_app

from core.runtime import Runtime

_EXTENSION = "aftercall"


def attach_runtime(app: Flask, runtime: Runtime) -> None:
    app.extensions[_EXTENSION] = runtime


def runtime_of(app: Flask) -> Runtime:
    """The Runtime of `app`, for code that runs while the app is built (record_once)."""
    return app.extensions[_EXTENSION]


def current_runtime() -> Runtime:
    """The Runtime of the app handling the current request."""
    return runtime_of(current_app)
