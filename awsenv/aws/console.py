"""`awsenv login`: a console sign-in URL through the AWS federation endpoint.

Role credentials are used as they are; a base profile goes through GetFederationToken,
which only a long-term key may call. The session is exchanged for a sign-in token
(`Action=getSigninToken`), which goes into an `Action=login` URL. Its destination is
the console of the profile's partition: its home page, a service's page
(`--service s3`: `CONSOLE/s3/home?region=R`, as granted's `-s` opens), or a page the user
names (`--destination URL`), which must be on that partition's console.
"""
from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from ..core.creds import Credentials
from ..core.errors import AwsError, UsageError

PARTITIONS = {
    # region prefix: (federation endpoint, console)
    "cn-": ("https://signin.amazonaws.cn/federation", "https://console.amazonaws.cn/"),
    "us-gov-": ("https://signin.amazonaws-us-gov.com/federation", "https://console.amazonaws-us-gov.com/"),
}
DEFAULT = ("https://signin.aws.amazon.com/federation", "https://console.aws.amazon.com/")


SERVICE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # a console path segment: s3, ec2, cloudformation


def endpoints(region: str | None, service: str | None = None, destination: str | None = None) -> tuple[str, str]:
    federation, console = DEFAULT
    for prefix, pair in PARTITIONS.items():
        if region and region.startswith(prefix):
            federation, console = pair
    if destination is not None:
        console = checked_destination(destination, console)
    else:
        if service is not None:
            if not SERVICE.fullmatch(service):
                raise UsageError(f"--service {service!r} is not a console service name (e.g. s3, ec2, iam, lambda)")
            console = f"{console}{service}/home"
        if region:
            console = f"{console}?region={urllib.parse.quote(region)}"
    override = os.environ.get("AWSENV_FEDERATION_URL")
    if override:
        parts = urllib.parse.urlsplit(override)
        # The session's secret travels in the query: only over TLS, or to this machine.
        if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise UsageError("AWSENV_FEDERATION_URL must be https:// (or http://127.0.0.1 for a local stand-in)")
        federation = override
    return federation, console


def checked_destination(url: str, console: str) -> str:
    """A page on the partition's console (its host or a subdomain, over https): the
    sign-in must not become a redirect to anywhere."""
    home = urllib.parse.urlsplit(console).hostname or ""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    # The console's host or its subdomains (eu-west-1.console.aws.amazon.com), no wider:
    # the rest of amazonaws.cn, say, holds S3 websites anyone can make.
    if parts.scheme != "https" or not (host == home or host.endswith("." + home)):
        raise UsageError(f"--destination must be an https:// page of the AWS console ({console}...), not {url!r}")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise UsageError("--destination must be one URL, with no spaces or control characters")
    return url


def signin_token(federation: str, creds: Credentials, duration: int | None) -> str:
    session = json.dumps(
        {"sessionId": creds.access_key_id, "sessionKey": creds.secret_access_key, "sessionToken": creds.session_token}
    )
    query = {"Action": "getSigninToken", "Session": session}
    if duration is not None:
        query["SessionDuration"] = str(duration)
    # The federation endpoint takes the session as a query parameter; the URL is sent
    # over TLS and never printed or logged.
    url = f"{federation}?{urllib.parse.urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            body = json.load(response)
    except urllib.error.HTTPError as err:
        raise AwsError(f"the federation endpoint refused the session (HTTP {err.code})") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise AwsError(f"the federation endpoint {federation} is unreachable: {reason}") from None
    except ValueError:
        raise AwsError("the federation endpoint did not answer with JSON") from None
    token = body.get("SigninToken") if isinstance(body, dict) else None
    if not token:
        raise AwsError("the federation endpoint gave no SigninToken")
    return token


def login_url(federation: str, console: str, token: str) -> str:
    query = {"Action": "login", "Issuer": "awsenv", "Destination": console, "SigninToken": token}
    return f"{federation}?{urllib.parse.urlencode(query)}"
