"""Credentials as awsenv passes them around: a long-term key or an STS session."""
from __future__ import annotations

import time


class Credentials:
    """A plain class, not a dataclass: `dataclasses` pulls in `inspect` and `ast`,
    which the cached switch cannot afford."""

    __slots__ = ("access_key_id", "secret_access_key", "session_token", "expiration")

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str,
        session_token: str | None = None,
        expiration: int | None = None,  # Unix seconds; None for a long-term key
    ) -> None:
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expiration = expiration

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:  # never let a secret reach a log or a traceback
        return f"Credentials({self.access_key_id[:4]}…, expiration={self.expiration})"

    def ttl(self, now: float | None = None) -> float:
        if self.expiration is None:
            return float("inf")
        return self.expiration - (time.time() if now is None else now)

    def to_dict(self) -> dict:
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": self.expiration,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Credentials:
        return cls(
            data["AccessKeyId"],
            data["SecretAccessKey"],
            data.get("SessionToken"),
            int(data["Expiration"]) if data.get("Expiration") is not None else None,
        )


def rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def parse_rfc3339(text: str) -> int:
    """`2026-11-23T17:00:00Z` or with an offset / fraction, as STS and credential_process give."""
    from datetime import datetime, timezone

    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:  # no offset: UTC, as AWS means it, not local time
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def format_ttl(seconds: float) -> str:
    """`42m`, `3h05m`, `59s` — the prompt segment's and the list's notation."""
    seconds = int(seconds)
    if seconds <= 0:
        return "expired"
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"
