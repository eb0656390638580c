"""AWS Sign-In's OAuth protocol, as `aws login` speaks it: DPoP proofs, PKCE, the
authorize URL, the loopback redirect and `signin:CreateOAuth2Token`.

The facts (client IDs, parameters, the redirect path, the code a remote user pastes)
are the AWS CLI v2's; the code is ours. DPoP proofs are ES256 JWTs signed with the
`cryptography` library, which awsenv already depends on for its file store: botocore
signs with `awscrt` (`botocore[crt]`), a second native library for one signature.
Nothing here is imported on the cached switch's path: only a refresh or a sign-in
loads it, and botocore is reached through `sts.client`. Every value the service sends
is checked before anyone stores it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import uuid

from ..core.creds import Credentials
from ..core.errors import AwsError, LoginSessionEnded, Refused

SAME_DEVICE = "arn:aws:signin:::devtools/same-device"
CROSS_DEVICE = "arn:aws:signin:::devtools/cross-device"
CLIENT_ID = re.compile(r"arn:aws:signin:::devtools/(cross-device|same-device)")
CALLBACK_PATH = "/oauth/callback"
CONFIRMATION_PATH = "/v1/sessions/confirmation"
MAX_EXPIRES_IN = 900  # the signin model's ExpiresIn: 1 to 900 seconds
# What the model allows, and what may go into a shell's environment and a JSON file.
ACCESS_KEY_ID = re.compile(r"[A-Z0-9]{16,128}")
SECRET = re.compile(r"[\x21-\x7e]{1,12288}")  # printable ASCII, no space: a secret, a session token
REFRESH_TOKEN = re.compile(r"[\x21-\x7e]{1,12288}")
CODE = re.compile(r"[\x21-\x7e]{1,512}")
# A login session is the ARN of the IAM or STS principal that signed in to the console.
SESSION_ARN = re.compile(r"arn:aws[a-z-]*:(?:iam|sts)::(?P<account>[0-9]{12}):[\w+=,.@/-]{1,1024}")
# botocore's errors (LoginRefreshRequired, LoginInsufficientPermissions) key on these.
ENDED = ("TOKEN_EXPIRED", "USER_CREDENTIALS_CHANGED", "invalid_grant")


class SigninRefused(Refused):
    """The sign-in service answered with an error: `error` is the model's OAuth2ErrorCode."""

    def __init__(self, code: str, error: str) -> None:
        super().__init__(f"CreateOAuth2Token: {code} ({error})" if error else f"CreateOAuth2Token: {code}")
        self.code, self.error = code, error


# keys and proofs ---------------------------------------------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key) -> str:
    """The key as `aws login` writes it: SEC1 DER in PEM, 64 characters a line."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode("ascii")


def load_key(pem: object):
    """The P-256 key of a PEM the AWS CLI wrote (SEC1 or PKCS#8), read as botocore reads
    it: the base64 between the armour lines. None when it is not one."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    if not isinstance(pem, str):
        return None
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----")).strip()
    try:
        key = load_der_private_key(base64.b64decode(body, validate=True), password=None)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        return None
    return key


def public_jwk(public_key) -> dict:
    numbers = public_key.public_numbers()
    return {"kty": "EC", "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")), "crv": "P-256"}


def thumbprint(jwk: dict) -> str:
    """RFC 7638: the SHA-256 of the required members in lexical order."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def dpop_proof(key, url: str, method: str = "POST", now: float | None = None) -> str:
    """An ES256 JWT (RFC 9449) over the method and the URL, with a fresh jti."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key.public_key())}
    payload = {"htm": method, "htu": url, "iat": int(time.time() if now is None else now), "jti": str(uuid.uuid4())}
    signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload))
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# the authorization request ------------------------------------------------------------------
def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge): 64 characters of the RFC 7636 alphabet."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    verifier = "".join(secrets.choice(alphabet) for _ in range(64))
    return verifier, _b64url(hashlib.sha256(verifier.encode()).digest())


def authorize_url(base: str, client_id: str, state: str, challenge: str, redirect_uri: str) -> str:
    import urllib.parse

    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "state": state, "code_challenge_method": "SHA-256",
        "scope": "openid", "redirect_uri": redirect_uri, "code_challenge": challenge,
    }, quote_via=urllib.parse.quote)
    return f"{base}/v1/authorize?{query}"


def parse_pasted(text: str) -> tuple[str, str]:
    """(code, state) of what the confirmation page shows a remote user: base64 of
    `code=...&state=...`. ValueError when it is not that."""
    import binascii
    import urllib.parse

    try:
        query = base64.b64decode(text.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a sign-in code") from None
    params = dict(urllib.parse.parse_qsl(query))
    if "code" not in params or "state" not in params:
        raise ValueError("not a sign-in code")
    return params["code"], params["state"]


def session_of(id_token: object) -> str:
    """The login session (the `sub` of the ID token): the ARN `login_session` names."""
    try:
        payload = json.loads(b64url_decode(str(id_token).split(".")[1]))
        sub = payload["sub"]
    except (IndexError, ValueError, KeyError, TypeError):
        raise AwsError("the sign-in service sent an ID token that is not a JWT with a subject") from None
    if not isinstance(sub, str) or SESSION_ARN.fullmatch(sub) is None:
        raise AwsError("the sign-in service named a session that is not an IAM or STS ARN")
    return sub


# the service ------------------------------------------------------------------------------------
def _client(region: str | None, endpoints):
    from . import sts

    return sts.client("signin", None, region, unsigned=True, endpoints=endpoints)


def base_url(region: str | None, endpoints=None) -> str:
    """Where the authorize page is: the scheme and host CreateOAuth2Token would go to,
    found as the AWS CLI finds it (the request is resolved, then not sent)."""
    import urllib.parse

    from botocore.awsrequest import AWSResponse

    client = _client(region, endpoints)
    found: dict = {}

    def catch(params, **_kwargs):
        parts = urllib.parse.urlsplit(params["url"])
        found["url"] = f"{parts.scheme}://{parts.netloc}"
        return AWSResponse(None, 200, {}, None), {}

    client.meta.events.register("before-call.signin.CreateOAuth2Token", catch)
    client.create_o_auth2_token(tokenInput={"clientId": SAME_DEVICE, "grantType": "refresh_token"})
    return found["url"]


def create_token(key, region: str | None, endpoints=None, **body) -> dict:
    """CreateOAuth2Token with a DPoP proof of `key`; the checked `tokenOutput`."""
    from botocore.exceptions import ClientError

    from . import sts

    client = _client(region, endpoints)

    def prove(params, **_kwargs):
        params["headers"]["DPoP"] = dpop_proof(key, params["url"])

    client.meta.events.register("before-call.signin.CreateOAuth2Token", prove)

    def call(**kwargs):
        try:
            return client.create_o_auth2_token(**kwargs)
        except ClientError as err:
            error = err.response.get("error")
            raise SigninRefused(err.response.get("Error", {}).get("Code", "Unknown"),
                                error if isinstance(error, str) and error.isascii() and len(error) < 64 else "") from None

    response = sts._call("CreateOAuth2Token", call, tokenInput=body)
    return checked_output(response.get("tokenOutput") if isinstance(response, dict) else None)


def checked_output(output: object) -> dict:
    """tokenOutput as the model shapes it, with values a shell and a JSON file can hold."""
    bad = AwsError("the sign-in service's answer is not what its model describes; try again, or sign in again")
    if not isinstance(output, dict):
        raise bad
    access = output.get("accessToken")
    if not isinstance(access, dict):
        raise bad
    fields = (
        (access.get("accessKeyId"), ACCESS_KEY_ID), (access.get("secretAccessKey"), SECRET),
        (access.get("sessionToken"), SECRET), (output.get("refreshToken"), REFRESH_TOKEN),
    )
    if not all(isinstance(value, str) and pattern.fullmatch(value) for value, pattern in fields):
        raise bad
    expires_in = output.get("expiresIn")
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise bad
    if output.get("tokenType", "aws_sigv4") != "aws_sigv4":
        raise bad
    return output


def ended(err: SigninRefused, profile: str, how: str) -> AwsError:
    """The one line for a refusal: signed out (sign in again), or not allowed."""
    if err.error == "INSUFFICIENT_PERMISSIONS":
        return AwsError(
            f"profile {profile!r}: the signed-in identity may not use its console session here "
            f"(INSUFFICIENT_PERMISSIONS: it needs the SignInLocalDevelopmentAccess policy); {how}"
        )
    if err.error in ENDED:
        return LoginSessionEnded(f"profile {profile!r}: the sign-in session has ended ({err.error or err.code}); {how}")
    return err


def token_credentials(token: dict) -> Credentials:
    from ..core.creds import parse_rfc3339

    access = token["accessToken"]
    return Credentials(access["accessKeyId"], access["secretAccessKey"], access["sessionToken"],
                       parse_rfc3339(access["expiresAt"]))


# the loopback redirect ------------------------------------------------------------------------
PAGE = (b"<!doctype html><title>awsenv</title><p>Signed in. You can close this tab and go back to the terminal.")


class Callback:
    """The one-shot HTTP server on 127.0.0.1 that the browser is sent back to. A visit
    whose `state` is not this sign-in's is refused and waited past: only the browser
    this sign-in opened can end it."""

    def __init__(self, state: str) -> None:
        from http.server import BaseHTTPRequestHandler, HTTPServer

        self.state = state
        self.result: tuple[str | None, str] | None = None  # (code, error)
        callback = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:  # the query holds the code: never logged
                pass

            def do_GET(self) -> None:
                status = callback._visit(self.path)
                body = PAGE if status == 200 else b"not this sign-in's redirect"
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8" if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        import threading

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_port}{CALLBACK_PATH}"
        self.done = threading.Event()
        # Served from now on: a BROWSER program may wait for its page, and so block
        # webbrowser.open, until the redirect has been answered.
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def _visit(self, path: str) -> int:
        import urllib.parse

        parts = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        state = query.get("state", "")
        if parts.path != CALLBACK_PATH or not secrets.compare_digest(state.encode(), self.state.encode()):
            return 400
        if self.done.is_set():
            return 400
        if query.get("error"):
            self.result = (None, query["error"][:64])
        elif CODE.fullmatch(query.get("code", "")):
            self.result = (query["code"], "")
        else:
            return 400
        self.done.set()
        return 200

    def wait(self, seconds: float) -> tuple[str | None, str] | None:
        try:
            self.done.wait(seconds)
        finally:
            self.close()
        return self.result

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
