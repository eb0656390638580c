"""A stand-in for AWS Sign-In (`signin`, what `aws login` talks to) on 127.0.0.1.

moto implements none of it. CreateOAuth2Token follows botocore's own model
(botocore/data/signin, rest-json): `POST /v1/token`, the body is the `tokenInput`
payload, the answer the `tokenOutput` payload, and errors carry `x-amzn-ErrorType`
plus the model's `error` (OAuth2ErrorCode) and `message`. It checks every DPoP proof:
an ES256 JWT over the method and this URL, with a `jti` never seen before, a recent
`iat`, and a key whose thumbprint is the one the refresh token is bound to. It rotates
refresh tokens (one use each) and can revoke them.

The authorize page, `GET /v1/authorize`, is the person at the browser: visiting it
signs in and sends the browser back to the redirect URI with the code and the state
(the loopback of `aws login`), or, for the cross-device client, to the confirmation
page, which shows the code a remote user pastes.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from sso_server import SsoServer

ACCOUNT = "123456789012"
SESSION = f"arn:aws:iam::{ACCOUNT}:user/alice"
SAME_DEVICE = "arn:aws:signin:::devtools/same-device"
CROSS_DEVICE = "arn:aws:signin:::devtools/cross-device"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def thumbprint(jwk: dict) -> str:
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


class Refusal(Exception):
    def __init__(self, shape: str, error: str, message: str, status: int = 400):
        super().__init__(error)
        self.shape, self.error, self.message, self.status = shape, error, message, status


@dataclass
class SigninServer:
    expires_in: int = 900  # the model's maximum
    session: str = SESSION
    insufficient: bool = False  # the identity lacks SignInLocalDevelopmentAccess
    calls: list = field(default_factory=list)  # (operation, detail)
    violations: list = field(default_factory=list)  # proofs that failed, and why
    issued: list = field(default_factory=list)  # every secret handed out, for disk greps
    keys: list = field(default_factory=list)  # access key IDs handed out
    url: str = ""

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}  # live ones -> {client, thumbprint, session}
        self.jtis: set[str] = set()

    # The same plumbing as the SSO stand-in: a thread serving `_handle`, the record.
    start = SsoServer.start
    stop = SsoServer.stop
    _send = staticmethod(SsoServer._send)
    _redirect = staticmethod(SsoServer._redirect)

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_SIGNIN": self.url}

    operations = SsoServer.operations
    revoke = SsoServer.revoke_refresh_tokens  # every refresh token stops working
    new_secret = SsoServer.new_secret

    # what a test does in place of `aws login` ------------------------------------------------
    def sign_in(self, key, client: str = SAME_DEVICE) -> dict:
        """A finished sign-in bound to `key` (a cryptography EC key): the tokenOutput."""
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: F401 - the key's type

        numbers = key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
               "y": b64url(numbers.y.to_bytes(32, "big"))}
        with self.lock:
            return self._issue(client, thumbprint(jwk), self.session, id_token=True)

    # HTTP --------------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urllib.parse.urlsplit(request.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        try:
            with self.lock:
                if (method, parts.path) == ("POST", "/v1/token"):
                    return self._send(request, 200, self.create_token(raw, request.headers))
                if (method, parts.path) == ("GET", "/v1/authorize"):
                    return self._redirect(request, self.authorize(query))
                if (method, parts.path) == ("GET", "/v1/sessions/confirmation"):
                    shown = base64.b64encode(urllib.parse.urlencode(
                        {"code": query.get("code", ""), "state": query.get("state", "")}).encode()).decode()
                    return self._send(request, 200, f"Your authorization code: {shown}")
        except Refusal as err:
            return self._send(request, err.status, {"error": err.error, "message": err.message}, err.shape)
        self._send(request, 404, {"message": f"no route {method} {parts.path}"})

    # the authorize page ------------------------------------------------------------------------
    def authorize(self, query: dict) -> str:
        self.calls.append(("Authorize", dict(query)))
        client, redirect = query.get("client_id"), query.get("redirect_uri", "")
        confirmation = f"{self.url}/v1/sessions/confirmation"
        if client == SAME_DEVICE:
            parts = urllib.parse.urlsplit(redirect)
            if parts.scheme != "http" or parts.hostname != "127.0.0.1" or parts.path != "/oauth/callback":
                raise Refusal("ValidationException", "invalid_request", "the redirect is not a loopback callback")
        elif client != CROSS_DEVICE or redirect != confirmation:
            raise Refusal("ValidationException", "invalid_client", "unknown client or redirect")
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "SHA-256" \
                or query.get("scope") != "openid" or len(query.get("code_challenge", "")) != 43 or not query.get("state"):
            raise Refusal("ValidationException", "invalid_request", "not an authorization request")
        code = self.new_secret("code-")
        self.codes[code] = {"client": client, "redirect": redirect, "challenge": query["code_challenge"],
                            "expires": time.time() + 300}
        return f"{redirect}?{urllib.parse.urlencode({'code': code, 'state': query['state']})}"

    # CreateOAuth2Token -------------------------------------------------------------------------
    def _proof(self, headers) -> str:
        """The thumbprint of a DPoP proof's key, once the proof checks out."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        def refuse(why: str):
            self.violations.append(why)
            return Refusal("ValidationException", "invalid_request", f"DPoP proof: {why}")

        proof = headers.get("DPoP") or ""
        try:
            head_b64, body_b64, sig_b64 = proof.split(".")
            header, payload, signature = json.loads(unb64url(head_b64)), json.loads(unb64url(body_b64)), unb64url(sig_b64)
            jwk = header["jwk"]
            if header.get("typ") != "dpop+jwt" or header.get("alg") != "ES256" or jwk.get("kty") != "EC" \
                    or jwk.get("crv") != "P-256" or len(signature) != 64:
                raise refuse("not an ES256 dpop+jwt with a P-256 jwk")
            public = ec.EllipticCurvePublicNumbers(int.from_bytes(unb64url(jwk["x"]), "big"),
                                                   int.from_bytes(unb64url(jwk["y"]), "big"),
                                                   ec.SECP256R1()).public_key()
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            public.verify(der, f"{head_b64}.{body_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise refuse("the signature does not verify") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise refuse("not a JWT") from None
        if payload.get("htm") != "POST" or payload.get("htu") != f"{self.url}/v1/token":
            raise refuse(f"over {payload.get('htm')} {payload.get('htu')}, not this request")
        if not isinstance(payload.get("iat"), int) or abs(payload["iat"] - time.time()) > 60:
            raise refuse("iat is not now")
        jti = payload.get("jti")
        if not isinstance(jti, str) or not jti or jti in self.jtis:
            raise refuse("jti reused or missing")
        self.jtis.add(jti)
        return thumbprint(jwk)

    def create_token(self, raw: bytes, headers) -> dict:
        try:
            body = json.loads(raw)
        except ValueError:
            raise Refusal("ValidationException", "invalid_request", "not JSON") from None
        grant = body.get("grantType") if isinstance(body, dict) else None
        self.calls.append(("CreateOAuth2Token", {"grantType": grant}))
        key = self._proof(headers)
        client = body.get("clientId")
        if client not in (SAME_DEVICE, CROSS_DEVICE):
            raise Refusal("ValidationException", "invalid_client", "unknown client")
        if self.insufficient:
            raise Refusal("AccessDeniedException", "INSUFFICIENT_PERMISSIONS", "no SignInLocalDevelopmentAccess")
        if grant == "authorization_code":
            held = self.codes.pop(body.get("code", ""), None)
            if held is None or held["expires"] < time.time():
                raise Refusal("AccessDeniedException", "AUTHCODE_EXPIRED", "unknown or expired code")
            verifier = body.get("codeVerifier", "")
            if held["client"] != client or held["redirect"] != body.get("redirectUri") \
                    or b64url(hashlib.sha256(verifier.encode()).digest()) != held["challenge"]:
                raise Refusal("ValidationException", "invalid_grant", "the code was issued for another request")
            return {**self._issue(client, key, self.session, id_token=True)}
        if grant == "refresh_token":
            held = self.refresh_tokens.get(body.get("refreshToken", ""))
            if held is None:
                raise Refusal("AccessDeniedException", "TOKEN_EXPIRED", "the session has expired or was revoked")
            if held["thumbprint"] != key:
                self.violations.append("a refresh with a key the token is not bound to")
                raise Refusal("ValidationException", "invalid_request", "DPoP key does not match the token")
            if held["client"] != client:
                raise Refusal("ValidationException", "invalid_grant", "another client's token")
            del self.refresh_tokens[body["refreshToken"]]  # rotated: one use each
            return self._issue(client, key, held["session"])
        raise Refusal("ValidationException", "unsupported_grant_type", f"grant {grant!r}")

    def _issue(self, client: str, thumb: str, session: str, id_token: bool = False) -> dict:
        refresh = self.new_secret("refreshtoken-")
        self.refresh_tokens[refresh] = {"client": client, "thumbprint": thumb, "session": session}
        key_id = "ASIA" + secrets.token_hex(8).upper()
        self.keys.append(key_id)
        output = {
            "accessToken": {"accessKeyId": key_id, "secretAccessKey": self.new_secret("signinsecret-"),
                            "sessionToken": self.new_secret("signinsession-")},
            "tokenType": "aws_sigv4", "expiresIn": self.expires_in, "refreshToken": refresh,
        }
        if id_token:
            claims = {"sub": session, "aud": client, "iss": self.url, "iat": int(time.time())}
            output["idToken"] = ".".join([b64url(b'{"alg":"ES384","typ":"JWT"}'), b64url(json.dumps(claims).encode()),
                                          b64url(secrets.token_bytes(96))])
        return output
