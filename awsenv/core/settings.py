"""Settings read from the environment, with the bounds and defaults every layer shares.

One place for what the shells' scripts need too (the refresh window, the longest
number they read from the environment, "never"): `awsenv init` writes these values
into the script it prints (shells/base.py), so Python and the four shells agree.
"""
from __future__ import annotations

import os
import re

from .errors import UsageError

MIN_DURATION, MAX_DURATION = 900, 129600
REFRESH_WINDOW = 600  # AWSENV_REFRESH_WINDOW: the prompt hook renews this long before the end
MIN_TTL = 300  # AWSENV_MIN_TTL: credentials handed out last at least this long
# The longest number the scripts take from an environment variable (an epoch second has
# 10 digits until the year 2286): anything longer is not ours, and never reaches the
# shell's arithmetic.
NUMBER_DIGITS = 12
NEVER = 9999999999  # AWSENV_NEXT_CHECK: nothing more to do for these credentials
# The signals that end the agent (SIGHUP, SIGINT, SIGKILL, SIGTERM), as the mask of
# /proc/PID/status's SigPnd and ShdPnd lines. The agent blocks all but SIGKILL, so they
# stay pending until it has closed its endpoint: a prompt hook that reads the mask sees
# a server-mode agent that is going away from the instant `kill` returns.
LEAVING_SIGNALS = (1, 2, 9, 15)
LEAVING_MASK = sum(1 << (number - 1) for number in LEAVING_SIGNALS)
AGENT_IDLE = 3600  # AWSENV_AGENT_IDLE: the agent exits after this long without a request


def env_seconds(name: str, default: int, unit: str = "seconds") -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"{name} must be a number of {unit}, not {raw!r}") from None

DURATION = r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?"  # compiled on first use


def parse_duration(text: str) -> int:
    """`3600`, `90m`, `1h`, `1h30m`, `45s`, `1d`: seconds. ValueError otherwise."""
    text = text.strip().lower()
    if text.isascii() and text.isdigit():
        return int(text)
    match = re.fullmatch(DURATION, text)
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


def setting(name: str, default: int) -> int:
    """env_seconds for the prompt hook and the agent, which never fail on a bad value:
    they use the default, as the shells' scripts do."""
    try:
        return env_seconds(name, default)
    except UsageError:
        return default


def float_setting(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


def refresh_window() -> int:
    return setting("AWSENV_REFRESH_WINDOW", REFRESH_WINDOW)


def env_number(name: str) -> int | None:
    """A whole number of at most NUMBER_DIGITS digits from the environment, as the
    scripts read it (AWSENV_EXPIRES, AWSENV_NEXT_CHECK); None for anything else."""
    raw = os.environ.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= NUMBER_DIGITS else None
