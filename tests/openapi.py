"""Validating API responses against docs/openapi.yaml (OpenAPI 3.1 = JSON Schema 2020-12)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
BASE = "urn:aftercall:openapi"


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


@cache
def _registry() -> Registry:
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    return Registry().with_resource(BASE, resource)


def _operation(path: str, method: str) -> dict[str, Any]:
    for template, item in spec()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
        if re.match(pattern, path):
            return item[method.lower()]
    raise AssertionError(f"{method} {path} is not documented in docs/openapi.yaml")


def check_response(path: str, method: str, status: int, body: Any) -> None:
    """Fail unless the status is documented for the operation and the body fits its schema."""
    responses = _operation(path.split("?")[0], method)["responses"]
    assert str(status) in responses, f"{method} {path}: status {status} is not documented"
    response = responses[str(status)]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = spec()["components"]["responses"][name]
    schema = response["content"]["application/json"]["schema"]
    validator = Draft202012Validator(
        {"$id": f"{BASE}/check", **_absolute(schema)}, registry=_registry()
    )
    validator.validate(body)


def _absolute(schema: Any) -> Any:
    """Point the schema's local $refs at the spec document."""
    if isinstance(schema, dict):
        return {
            key: (f"{BASE}{value}" if key == "$ref" and value.startswith("#") else _absolute(value))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute(item) for item in schema]
    return schema


def documented_paths() -> set[str]:
    return set(spec()["paths"])
