"""The AWS CLI's SSO cache (~/.aws/sso/cache): reading a sign-in from it, and finding
the files in it that hold a token or a client secret in plaintext.
"""
from __future__ import annotations

import json
import os

from ..core.config import Portal
from ..core.creds import parse_rfc3339
from ..core.portals import token_valid

# the AWS CLI's plaintext cache -----------------------------------------------------------------
SECRET_FIELDS = ("accessToken", "refreshToken", "clientSecret")


def cli_cache_dir() -> str:
    return os.path.expanduser(os.path.join("~", ".aws", "sso", "cache"))


def cli_token_path(portal: Portal) -> str:
    # The AWS CLI names a token file by the SHA-1 of the session name, or of the start
    # URL in the legacy form (botocore's SSOTokenLoader).
    import hashlib  # not at the top: the cached switch imports this module

    digest = hashlib.sha1(portal.name.encode("utf-8")).hexdigest()
    return os.path.join(cli_cache_dir(), f"{digest}.json")


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _epoch(text) -> float | None:
    try:
        return float(parse_rfc3339(str(text)))
    except (ValueError, TypeError):
        return None


def cli_token(portal: Portal, now: float) -> tuple[str, dict] | None:
    """The AWS CLI's token file for `portal` and the sign-in it holds, as awsenv keeps it,
    when it is still of use: an access token that has not expired, or a refresh token
    with a registration that has not."""
    path = cli_token_path(portal)
    data = _read_json(path)
    if data is None or data.get("startUrl") != portal.start_url or not data.get("accessToken"):
        return None
    doc: dict = {}
    registration_expires = _epoch(data.get("registrationExpiresAt"))
    if data.get("clientId") and data.get("clientSecret") and registration_expires:
        doc["registration"] = {"clientId": data["clientId"], "clientSecret": data["clientSecret"],
                               "expiresAt": int(registration_expires), "scopes": list(portal.scopes)}
    token = {"accessToken": data["accessToken"], "expiresAt": int(_epoch(data.get("expiresAt")) or 0)}
    if data.get("refreshToken") and doc.get("registration"):
        token["refreshToken"] = data["refreshToken"]
    doc["token"] = token
    usable = token_valid(token, now) or ("refreshToken" in token and token_valid(doc["registration"], now))
    return (path, doc) if usable else None


def cli_registration_files(client_id: str) -> list[str]:
    """The CLI's client-registration files for that client (they hold its secret too)."""
    folder = cli_cache_dir()
    found = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    for name in names:
        path = os.path.join(folder, name)
        data = _read_json(path) if name.endswith(".json") else None
        if data and data.get("clientId") == client_id and not data.get("accessToken"):
            found.append(path)
    return found


def plaintext_files() -> list[str]:
    """Files in ~/.aws/sso/cache that hold a token or a client secret."""
    folder = cli_cache_dir()
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for name in names:
        data = _read_json(os.path.join(folder, name)) if name.endswith(".json") else None
        if data and any(data.get(key) for key in SECRET_FIELDS):
            found.append(os.path.join(folder, name))
    return found
