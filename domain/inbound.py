"""What a value from outside may be: timestamps, identifiers and text as they enter Tenure.

These rules run where values enter (the HR intake, the API bodies), under the `INBOUND` validation
context. Without it, the same models decode leniently: payloads that Temporal already holds in
histories (signals, continue-as-new state, activity inputs written by an earlier release) keep
decoding as they were recorded, so no running identity is wedged by a rule that came later.

- **Timestamps** are ISO-8601 strings with a timezone, never numbers (a JSON number would be read as
  seconds since 1970), and lie between 1900 and 2199: Temporal's timers cannot sleep much longer
  than two centuries.
- **Identifiers** are either valid exactly as sent or refused; nothing is stripped or normalised.
- **Names and single-line text** are normalised to Unicode NFC and trimmed of surrounding spaces;
  they may hold no control character (C0, DEL, C1), no line or paragraph separator, and no invisible
  formatting character except the zero-width joiner and non-joiner that some scripts need. A name
  needs at least one visible character.
- **Bidirectional controls** (LRM, RLM, ALM, the embeddings, overrides and isolates) are refused in
  names, text and identifiers: they let a value display as something else (the "Trojan Source"
  trick) in approval mails, Temporal UI and the CLI. Names in right-to-left scripts need none of
  them: Unicode's bidirectional algorithm lays them out from their letters alone.
- **Free text** (justifications, comments) may also hold tabs and line breaks.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo

# Pass as `context=` to model_validate to apply the inbound rules.
INBOUND: dict[str, Any] = {"inbound": True}

MIN_YEAR, MAX_YEAR = 1900, 2199
TIMESTAMP_EXAMPLE = "2026-12-01T09:00:00Z"

_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Invisible, yet part of correct spelling in Persian, Indic scripts and emoji sequences.
_JOINERS = frozenset("\u200c\u200d")
_LINE_BREAKS_ALLOWED_IN_FREE_TEXT = frozenset("\t\n\r")


def is_inbound(info: ValidationInfo | None) -> bool:
    context = info.context if info is not None else None
    return isinstance(context, dict) and bool(context.get("inbound"))


# ---- timestamps ---------------------------------------------------------------------------------


def parse_timestamp(value: Any) -> datetime:
    """An ISO-8601 string with a timezone, as a datetime; ValueError saying what is wrong."""
    if isinstance(value, bool) or isinstance(value, int | float):
        raise ValueError(
            f"must be an ISO-8601 string with a timezone, e.g. {TIMESTAMP_EXAMPLE}, not a number"
        )
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO-8601 string with a timezone, e.g. {TIMESTAMP_EXAMPLE}")
    text = value.strip()
    if text != value or not text[:4].isdigit() or len(text) < 10:
        raise ValueError(
            f"must be an ISO-8601 date and time with a timezone, e.g. {TIMESTAMP_EXAMPLE}"
        )
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"is not an ISO-8601 date and time; expected e.g. {TIMESTAMP_EXAMPLE}"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"must carry a timezone, e.g. {TIMESTAMP_EXAMPLE}")
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(f"must lie between the years {MIN_YEAR} and {MAX_YEAR}")
    return parsed


def _timestamp_always(value: Any) -> Any:
    return value if isinstance(value, datetime) else parse_timestamp(value)


def when_inbound(check: Callable[[Any], Any]) -> BeforeValidator:
    """A validator that applies `check` under the INBOUND context and passes values through
    otherwise (as Temporal's data converter decodes them)."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        return check(value) if is_inbound(info) else value

    return BeforeValidator(validate)


# For models that also travel through Temporal (HR events): strict only under INBOUND.
InboundTimestamp = Annotated[datetime, when_inbound(parse_timestamp)]
# For models and parameters only the API reads: always strict.
ApiTimestamp = Annotated[datetime, BeforeValidator(_timestamp_always)]


# ---- characters ---------------------------------------------------------------------------------


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def character_problem(text: str, *, free_text: bool = False) -> str | None:
    """What makes `text` unacceptable character by character, or None."""
    if text.isprintable():
        # Python's printable excludes every category refused below (and the space separators
        # and private use, which are allowed): most text is settled without a Python loop.
        return None
    for position, char in enumerate(text):
        if free_text and char in _LINE_BREAKS_ALLOWED_IN_FREE_TEXT:
            continue
        category = unicodedata.category(char)
        if category == "Cc":
            return f"contains a control character ({_codepoint(char)}) at position {position}"
        if char in _BIDI_CONTROLS:
            return (
                f"contains a bidirectional control ({_codepoint(char)}) at position {position}; "
                "right-to-left text needs none"
            )
        if category in ("Zl", "Zp"):
            return f"contains a line separator ({_codepoint(char)}) at position {position}"
        if category == "Cf" and char not in _JOINERS:
            return (
                f"contains an invisible formatting character ({_codepoint(char)}) "
                f"at position {position}"
            )
        if category == "Cs":
            return f"contains an unpaired surrogate ({_codepoint(char)}) at position {position}"
        if category == "Cn":
            return f"contains an unassigned code point ({_codepoint(char)}) at position {position}"
    return None


def has_visible_character(text: str) -> bool:
    return any(unicodedata.category(c)[0] in "LNPS" for c in text)


def clean_text(value: Any, *, max_length: int, name: bool, free_text: bool = False) -> Any:
    """NFC-normalised and trimmed text, or ValueError naming the problem (the inbound rules)."""
    if not isinstance(value, str):
        return value  # the type check that follows names it
    problem = character_problem(value, free_text=free_text)
    if problem is not None:
        raise ValueError(problem)
    text = unicodedata.normalize("NFC", value).strip()
    if name and not has_visible_character(text):
        raise ValueError("has no visible character")
    if len(text) > max_length:
        raise ValueError(f"is longer than {max_length} characters")
    return text


def check_identifier(value: Any, *, max_length: int) -> Any:
    """An identifier from outside, unchanged, or ValueError: it is never silently altered."""
    if not isinstance(value, str):
        return value
    if not value:
        raise ValueError("must not be empty")
    problem = character_problem(value)
    if problem is not None:
        raise ValueError(problem)
    if value != value.strip():
        raise ValueError("must not begin or end with whitespace")
    if len(value) > max_length:
        raise ValueError(f"is longer than {max_length} characters")
    return value


def inbound_code(pattern: str, allowed: str) -> BeforeValidator:
    """An identifier of a fixed alphabet (an employee id), under INBOUND: refused naming the first
    character that does not belong, never trimmed."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if not isinstance(value, str) or compiled.fullmatch(value):
            return value
        stray = next(
            (
                f" ({_codepoint(c)} at position {i})"
                for i, c in enumerate(value)
                if not compiled.fullmatch(c)
            ),
            "",
        )
        raise ValueError(f"must be {allowed}{stray}")

    return when_inbound(check)


def inbound_name(max_length: int) -> BeforeValidator:
    """A person's name: a single line with a visible character (under INBOUND)."""
    return when_inbound(partial(clean_text, max_length=max_length, name=True))


def inbound_text(max_length: int) -> BeforeValidator:
    """Single-line text that may be empty, such as a department (under INBOUND)."""
    return when_inbound(partial(clean_text, max_length=max_length, name=False))


def inbound_identifier(max_length: int) -> BeforeValidator:
    """An identifier such as an event id (under INBOUND): valid as sent, or refused."""
    return when_inbound(partial(check_identifier, max_length=max_length))


def free_text(max_length: int) -> BeforeValidator:
    """Free text the API reads (a justification): line breaks allowed, always checked."""
    return BeforeValidator(partial(clean_text, max_length=max_length, name=False, free_text=True))


def api_text(max_length: int, *, name: bool = False) -> BeforeValidator:
    """Single-line text the API reads (an answer, a package id): always checked."""
    return BeforeValidator(partial(clean_text, max_length=max_length, name=name))
