"""Settings read from the environment, with the bounds and defaults every layer shares.

One place for what the shells' templates also need (the refresh window, the code
length): `awsenv init` writes these values into the script it prints.
"""
from __future__ import annotations

import os
import re

from .errors import UsageError

MIN_DURATION, MAX_DURATION = 900, 129600


def env_seconds(name: str, default: int, unit: str = "seconds") -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"{name} must be a number of {unit}, not {raw!r}") from None

DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")


def parse_duration(text: str) -> int:
    """`3600`, `90m`, `1h`, `1h30m`, `45s`, `1d`: seconds. ValueError otherwise."""
    text = text.strip().lower()
    if text.isascii() and text.isdigit():
        return int(text)
    match = DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(text)
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def env_duration(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return check_duration(parse_duration(raw), name)
    except ValueError:
        raise UsageError(f"{name} must be a duration such as 3600, 90m or 12h, not {raw!r}") from None


def check_duration(seconds: int, what: str = "--duration") -> int:
    if not MIN_DURATION <= seconds <= MAX_DURATION:
        raise UsageError(f"{what} {seconds} is out of range: {MIN_DURATION} to {MAX_DURATION} seconds")
    return seconds


def refresh_window() -> int:
    try:
        return env_seconds("AWSENV_REFRESH_WINDOW", 600)
    except UsageError:
        return 600
