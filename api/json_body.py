"""Reading a request body as JSON, bounded, for every endpoint that takes one.

The standard parser recurses once per nesting level, so `[` a thousand times deep raises
RecursionError instead of a parse error; a cheap scan of the brackets outside strings refuses deep
documents first. Bodies must be UTF-8; duplicate keys, NaN and Infinity are refused, since parsers
disagree on what they mean. Errors are `InvalidBody`, which the endpoints answer with a 422.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.problems import ProblemException
from domain.inbound import INBOUND

# HR events nest four levels deep, access bodies two; no honest body comes near this.
MAX_DEPTH = 32
# 1,000 events of a few hundred bytes each fit comfortably; anything far bigger is not an HR feed.
MAX_BODY_BYTES = 8 * 1024 * 1024

# A JSON string (escapes included), and anything but a bracket: what the depth scan skips.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")

M = TypeVar("M", bound=BaseModel)


class InvalidBody(Exception):
    """The body cannot be accepted; `errors` names each invalid event and field."""

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


def body_error(message: str, field: str = "(body)") -> dict[str, Any]:
    return {"field": field, "message": message}


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 past MAX_BODY_BYTES (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _too_large()
    return bytes(body)


def _too_large() -> ProblemException:
    return ProblemException(
        413, "Body too large", f"The body exceeds {MAX_BODY_BYTES} bytes; send smaller batches."
    )


def parse_json(raw: bytes) -> Any:
    """The JSON document of a body, or InvalidBody saying why not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidBody(
            "The body is not UTF-8.",
            [body_error(f"not UTF-8: invalid byte at position {err.start}")],
        ) from None
    if not text.strip():
        raise InvalidBody("The body is empty.", [body_error("a JSON document is required")])
    depth = _max_depth(text)
    if depth > MAX_DEPTH:
        raise InvalidBody(
            f"The body nests deeper than {MAX_DEPTH} levels.",
            [body_error(f"nested {depth} levels deep; at most {MAX_DEPTH} are accepted")],
        )
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except _Refused as err:
        raise InvalidBody("The body is not acceptable JSON.", [body_error(str(err))]) from None
    except (ValueError, RecursionError) as err:
        # JSONDecodeError, and ValueError for integers beyond Python's digit limit.
        raise InvalidBody(
            "The body is not valid JSON.", [body_error(f"not valid JSON: {err}")]
        ) from None


def _max_depth(text: str) -> int:
    """The deepest nesting of arrays and objects; 0 for a body with too few brackets to nest
    deeper than MAX_DEPTH (it is not scanned)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0  # too few brackets to nest too deep, wherever they are
    depth = deepest = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class _Refused(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _Refused(f"key {key!r} appears twice in one object")
        document[key] = value
    return document


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def validation_errors(
    err: ValidationError,
    *,
    prefix: str | None = None,
    index: int | None = None,
    whole: str = "(body)",
) -> list[dict[str, Any]]:
    """`{field, message}` per problem, with fields as paths (`events[3].worker.given_name`);
    a problem of the whole document (or event) is named `whole`."""
    errors = []
    for problem in err.errors(include_url=False, include_input=False):
        error: dict[str, Any] = {} if index is None else {"index": index}
        error["field"] = field_path(problem["loc"], prefix, whole)
        error["message"] = str(problem["msg"]).removeprefix("Value error, ")
        errors.append(error)
    return errors


def field_path(loc: Sequence[str | int], prefix: str | None = None, whole: str = "(body)") -> str:
    path = prefix or ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or whole


def parse_model(raw: bytes, model: type[M], *, optional: bool = False) -> M | None:
    """A body as `model`, validated under the inbound rules; None for an empty optional body."""
    if optional and not raw.strip():
        return None
    document = parse_json(raw)
    try:
        return model.model_validate(document, context=INBOUND)
    except ValidationError as err:
        errors = validation_errors(err)
        listed = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise InvalidBody(f"Invalid request: {listed}", errors) from None
