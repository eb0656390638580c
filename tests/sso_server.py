"""A stand-in for IAM Identity Center's `sso-oidc` and `sso` (portal) APIs on 127.0.0.1.

moto implements neither (moto #7304). The routes, request fields and answers follow
botocore's own service models (botocore/data/sso-oidc and sso, rest-json): field names,
where each member travels (body, query string, the `x-amz-sso_bearer_token` header),
and errors as the models shape them (`x-amzn-ErrorType` plus `error` and
`error_description` for OIDC, `message` for the portal). It checks what it is sent: the
client id and secret, the device code and who it belongs to, the grant, the bearer
token and its expiry, and that a client polls no faster than the interval it was given.

The verification page is `/device?user_code=...`: visiting it is the person at the
browser approving the sign-in (or denying it, when `deny` is set).

The authorization-code grant with PKCE (the AWS CLI's default since 2.22) has the page
`/authorize`, which the model does not describe; its query is the one botocore's
`SSOTokenFetcherAuth` sends. Visiting it is the person approving (or denying): it
redirects to the client's loopback `redirect_uri` with `code` and `state` (or `error`).
It redirects only to a URI the client registered, where a registered
`http://127.0.0.1/...` without a port takes any port (RFC 8252 §7.3). CreateToken then
checks the code (once, in time, for that client and that redirect URI) and that the
SHA-256 of the `codeVerifier` is the S256 challenge (RFC 7636).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START_URL = "https://example.awsapps.com/start"
REGION = "eu-west-1"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_GRANT = "refresh_token"
AUTH_GRANT = "authorization_code"
CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256, unpadded
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1
REFRESH_SCOPE = "sso:account:access"
# account id -> (account name, roles the signed-in user is assigned)
ACCOUNTS = {
    "111111111111": ("Sandbox", ["AdministratorAccess", "ReadOnly"]),
    "222222222222": ("prod account", ["ReadOnly"]),
}


class Refusal(Exception):
    def __init__(self, status: int, code: str, description: str, oidc: bool = True):
        super().__init__(code)
        self.status, self.code, self.description, self.oidc = status, code, description, oidc


@dataclass
class Device:
    code: str
    user_code: str
    client_id: str
    start_url: str
    expires: float
    interval: int
    state: str = "pending"  # approved, denied, used
    last_poll: float = 0.0
    polls: int = 0


@dataclass
class SsoServer:
    token_ttl: int = 8 * 3600  # access tokens
    role_ttl: int = 3600  # role credentials
    device_ttl: int = 600
    interval: int = 1
    deny: bool = False  # the person at the browser refuses
    code_ttl: int = 600  # authorization codes
    redirect_state: str | None = None  # the authorize page sends back this state instead of the client's
    slow_down_once: bool = False  # answer the first poll with SlowDownException
    start_urls: tuple = (START_URL,)
    accounts: dict = field(default_factory=lambda: dict(ACCOUNTS))  # what the portal lists
    calls: list = field(default_factory=list)  # (operation, detail)
    violations: list = field(default_factory=list)  # polls that came too fast, etc.
    issued: list = field(default_factory=list)  # every secret handed out, for disk greps
    url: str = ""

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.clients: dict[str, dict] = {}
        self.devices: dict[str, Device] = {}
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.role_keys: list[str] = []

    # lifecycle ---------------------------------------------------------------------
    def start(self) -> SsoServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_SSO_OIDC": self.url, "AWS_ENDPOINT_URL_SSO": self.url}

    # what tests do ---------------------------------------------------------------------
    def operations(self) -> list[str]:
        return [op for op, _ in self.calls]

    def approve_pending(self) -> int:
        """The person approves every sign-in waiting for them (no browser involved)."""
        with self.lock:
            pending = [d for d in self.devices.values() if d.state == "pending"]
            for device in pending:
                device.state = "approved"
        return len(pending)

    def approve_after_polls(self, polls: int) -> threading.Event:
        """A person who approves only once the client has polled `polls` times, however
        slowly it starts. Set the returned event to stop waiting."""
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                with self.lock:
                    polled = [d for d in self.devices.values() if d.state == "pending" and d.polls >= polls]
                    for device in polled:
                        device.state = "approved"
                if polled:
                    return
                done.wait(0.1)

        threading.Thread(target=watch, daemon=True).start()
        return done

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token in self.tokens.values():
                token["expires"] = 0

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            self.refresh_tokens.clear()

    def new_secret(self, prefix: str) -> str:
        value = f"{prefix}{secrets.token_urlsafe(24)}"
        self.issued.append(value)
        return value

    # HTTP ------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urllib.parse.urlsplit(request.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        routes = {
            ("POST", "/client/register"): self.register_client,
            ("POST", "/device_authorization"): self.start_device_authorization,
            ("POST", "/token"): self.create_token,
            ("GET", "/federation/credentials"): self.get_role_credentials,
            ("GET", "/assignment/accounts"): self.list_accounts,
            ("GET", "/assignment/roles"): self.list_account_roles,
            ("POST", "/logout"): self.logout,
            ("GET", "/device"): self.verification_page,
            ("GET", "/authorize"): self.authorize_page,
        }
        route = routes.get((method, parts.path))
        if route is None:
            return self._send(request, 404, {"message": f"no route {method} {parts.path}"})
        try:
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise Refusal(400, "InvalidRequestException", "the body is not a JSON object")
            with self.lock:
                status, answer = route(body, query, request.headers)
            if status == 302:
                return self._redirect(request, answer)
        except ValueError:
            return self._send(request, 400, {"error": "invalid_request", "error_description": "not JSON"},
                              "InvalidRequestException")
        except Refusal as err:
            detail = ({"error": err.code, "error_description": err.description} if err.oidc
                      else {"message": err.description})
            return self._send(request, err.status, detail, err.code)
        self._send(request, status, answer)

    @staticmethod
    def _redirect(request, location: str) -> None:
        request.send_response(302)
        request.send_header("Location", location)
        request.send_header("Content-Length", "0")
        request.end_headers()

    @staticmethod
    def _send(request, status: int, answer, error_type: str | None = None) -> None:
        body = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
        request.send_header("Content-Length", str(len(body)))
        if error_type:
            request.send_header("x-amzn-ErrorType", error_type)
        request.end_headers()
        request.wfile.write(body)

    # sso-oidc --------------------------------------------------------------------------
    def _client(self, body: dict) -> dict:
        client = self.clients.get(body.get("clientId", ""))
        if client is None or not secrets.compare_digest(client["secret"], body.get("clientSecret", "")):
            raise Refusal(401, "InvalidClientException", "unknown client or wrong client secret")
        if client["expires"] < time.time():
            raise Refusal(401, "InvalidClientException", "the client registration has expired")
        return client

    def register_client(self, body: dict, _query, _headers):
        if not body.get("clientName") or body.get("clientType") != "public":
            raise Refusal(400, "InvalidClientMetadataException", "clientName and clientType=public are required")
        scopes = body.get("scopes") or []
        if not isinstance(scopes, list):
            raise Refusal(400, "InvalidScopeException", "scopes is a list")
        grants = body.get("grantTypes")
        detail = {"scopes": scopes, "clientName": body["clientName"]}
        if grants is not None:
            redirects = body.get("redirectUris") or []
            detail.update(grantTypes=grants, redirectUris=redirects, issuerUrl=body.get("issuerUrl"))
            if not isinstance(grants, list) or not set(grants) <= {AUTH_GRANT, REFRESH_GRANT, DEVICE_GRANT}:
                raise Refusal(400, "UnsupportedGrantTypeException", "unknown grant type")
            if AUTH_GRANT in grants:
                if not redirects or not all(isinstance(r, str) and r.startswith("http://127.0.0.1") for r in redirects):
                    raise Refusal(400, "InvalidRedirectUriException", "a loopback redirect URI is required")
                if body.get("issuerUrl") not in self.start_urls:
                    raise Refusal(400, "InvalidRequestException", "the issuer URL is not an IAM Identity Center portal")
        client_id = f"client-{secrets.token_hex(8)}"
        secret = self.new_secret("clientsecret-")
        now = int(time.time())
        self.clients[client_id] = {"secret": secret, "expires": now + 90 * 86400, "scopes": scopes,
                                   "grants": grants, "redirects": body.get("redirectUris") or [],
                                   "issuer": body.get("issuerUrl")}
        self.calls.append(("RegisterClient", detail))
        return 200, {"clientId": client_id, "clientSecret": secret, "clientIdIssuedAt": now,
                     "clientSecretExpiresAt": now + 90 * 86400}

    def start_device_authorization(self, body: dict, _query, _headers):
        self.calls.append(("StartDeviceAuthorization", {"startUrl": body.get("startUrl")}))
        client = self._client(body)
        if body.get("startUrl") not in self.start_urls:
            raise Refusal(400, "InvalidRequestException", "the start URL is not an IAM Identity Center portal")
        code = self.new_secret("device-")
        user_code = secrets.token_hex(4).upper()
        self.devices[code] = Device(code, user_code, body["clientId"], body["startUrl"],
                                    time.time() + self.device_ttl, self.interval)
        client.setdefault("devices", []).append(code)
        page = f"{self.url}/device"
        return 200, {"deviceCode": code, "userCode": user_code, "verificationUri": page,
                     "verificationUriComplete": f"{page}?user_code={user_code}",
                     "expiresIn": self.device_ttl, "interval": self.interval}

    def create_token(self, body: dict, _query, _headers):
        grant = body.get("grantType")
        self.calls.append(("CreateToken", {"grantType": grant}))
        client = self._client(body)
        if client["grants"] is not None and grant not in client["grants"]:
            raise Refusal(400, "UnauthorizedClientException", f"the client was not registered for {grant!r}")
        if grant == AUTH_GRANT:
            return 200, self._code_grant(body)
        if grant == DEVICE_GRANT:
            return 200, self._device_grant(body, client)
        if grant == REFRESH_GRANT:
            held = self.refresh_tokens.pop(body.get("refreshToken", ""), None)
            if held is None or held["client_id"] != body["clientId"]:
                raise Refusal(400, "InvalidGrantException", "the refresh token is not valid")
            return 200, self._issue(body["clientId"], held["start_url"], client["scopes"])
        raise Refusal(400, "UnsupportedGrantTypeException", f"grant {grant!r} is not supported")

    def _device_grant(self, body: dict, client: dict) -> dict:
        device = self.devices.get(body.get("deviceCode", ""))
        if device is None or device.client_id != body["clientId"] or device.state == "used":
            raise Refusal(400, "InvalidGrantException", "unknown device code")
        now = time.time()
        if device.last_poll and now - device.last_poll < device.interval - 0.2:
            self.violations.append(f"polled after {now - device.last_poll:.2f}s, interval {device.interval}s")
        device.last_poll = now
        device.polls += 1
        if now > device.expires:
            raise Refusal(400, "ExpiredTokenException", "the device code has expired")
        if self.slow_down_once:
            self.slow_down_once = False
            device.interval += 5
            raise Refusal(400, "SlowDownException", "slow down")
        if device.state == "denied":
            raise Refusal(400, "AccessDeniedException", "the user denied the authorization")
        if device.state == "pending":
            raise Refusal(400, "AuthorizationPendingException", "waiting for the user")
        device.state = "used"
        return self._issue(body["clientId"], device.start_url, client["scopes"])

    def _issue(self, client_id: str, start_url: str, scopes: list) -> dict:
        token = self.new_secret("accesstoken-")
        self.tokens[token] = {"expires": time.time() + self.token_ttl, "start_url": start_url}
        answer = {"accessToken": token, "tokenType": "Bearer", "expiresIn": self.token_ttl}
        if REFRESH_SCOPE in scopes:  # as AWS: refresh tokens only for clients with scopes
            refresh = self.new_secret("refreshtoken-")
            self.refresh_tokens[refresh] = {"client_id": client_id, "start_url": start_url}
            answer["refreshToken"] = refresh
        return answer

    def _code_grant(self, body: dict) -> dict:
        held = self.codes.pop(body.get("code") or "", None)  # a code works once, right or wrong
        if held is None or held["client_id"] != body["clientId"]:
            raise Refusal(400, "InvalidGrantException", "unknown or used authorization code")
        if held["expires"] < time.time():
            raise Refusal(400, "InvalidGrantException", "the authorization code has expired")
        if body.get("redirectUri") != held["redirect_uri"]:
            raise Refusal(400, "InvalidGrantException", "redirectUri is not the one the code was issued to")
        verifier = body.get("codeVerifier") or ""
        if not VERIFIER.fullmatch(verifier):
            raise Refusal(400, "InvalidGrantException", "codeVerifier is missing or malformed")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if not secrets.compare_digest(digest, held["challenge"]):
            raise Refusal(400, "InvalidGrantException", "PKCE verification failed")
        return self._issue(body["clientId"], held["start_url"], self.clients[body["clientId"]]["scopes"])

    @staticmethod
    def _registered(redirect: str, registered: list) -> bool:
        asked = urllib.parse.urlsplit(redirect)
        for uri in registered:
            known = urllib.parse.urlsplit(uri)
            loopback_any_port = known.port is None and known.hostname == "127.0.0.1"
            if (asked.scheme, asked.hostname, asked.path, asked.query) == (
                    known.scheme, known.hostname, known.path, known.query) and (
                    loopback_any_port or asked.port == known.port):
                return True
        return False

    def authorize_page(self, _body, query: dict, _headers):
        """The person at the browser, asked by the portal to let the client in."""
        client = self.clients.get(query.get("client_id", ""))
        redirect = query.get("redirect_uri", "")
        self.calls.append(("Authorize", {"clientId": query.get("client_id"), "scopes": query.get("scopes"),
                                         "redirectUri": redirect}))
        if client is None or AUTH_GRANT not in (client["grants"] or []):
            return 400, "unknown client, or not registered for the authorization code"
        if not self._registered(redirect, client["redirects"]):
            return 400, "redirect_uri is not one the client registered"  # never redirect there
        state = query.get("state", "") if self.redirect_state is None else self.redirect_state
        if self.deny:
            where = {"error": "access_denied", "error_description": "The user denied the request", "state": state}
        elif query.get("response_type") != "code" or query.get("code_challenge_method") != "S256" \
                or not CHALLENGE.fullmatch(query.get("code_challenge", "")):
            where = {"error": "invalid_request", "state": state}
        else:
            code = self.new_secret("authcode-")
            self.codes[code] = {"client_id": query["client_id"], "redirect_uri": redirect,
                                "challenge": query["code_challenge"], "start_url": client["issuer"],
                                "expires": time.time() + self.code_ttl}
            where = {"code": code, "state": state}
        return 302, f"{redirect}?{urllib.parse.urlencode(where)}"

    def verification_page(self, _body, query: dict, _headers):
        device = next((d for d in self.devices.values() if d.user_code == query.get("user_code")), None)
        if device is None:
            return 404, "no such code"
        self.calls.append(("VisitVerificationPage", {"userCode": device.user_code}))
        if device.state == "pending":
            device.state = "denied" if self.deny else "approved"
        return 200, f"sign-in {device.state}"

    # sso (portal) ---------------------------------------------------------------------
    def _bearer(self, headers) -> dict:
        token = self.tokens.get(headers.get("x-amz-sso_bearer_token") or "")
        if token is None or token["expires"] < time.time():
            raise Refusal(401, "UnauthorizedException", "Session token not found or invalid", oidc=False)
        return token

    def get_role_credentials(self, _body, query: dict, headers):
        self.calls.append(("GetRoleCredentials", dict(query)))
        self._bearer(headers)
        account, role = query.get("account_id"), query.get("role_name")
        if not account or not role:
            raise Refusal(400, "InvalidRequestException", "account_id and role_name are required", oidc=False)
        if role not in self.accounts.get(account, ("", []))[1]:
            raise Refusal(403, "ForbiddenException", "No access", oidc=False)
        key = "ASIA" + secrets.token_hex(8).upper()
        self.role_keys.append(key)
        return 200, {"roleCredentials": {
            "accessKeyId": key, "secretAccessKey": self.new_secret("rolesecret-"),
            "sessionToken": self.new_secret("rolesession-"),
            "expiration": int((time.time() + self.role_ttl) * 1000),  # milliseconds, as the model says
        }}

    def _page(self, items: list, query: dict, name: str) -> dict:
        # One item per page unless asked otherwise, so a client that ignores nextToken misses some.
        size = int(query.get("max_result") or 1)
        start = int(query.get("next_token") or 0)
        answer = {name: items[start:start + size]}
        if start + size < len(items):
            answer["nextToken"] = str(start + size)
        return answer

    def list_accounts(self, _body, query: dict, headers):
        self.calls.append(("ListAccounts", dict(query)))
        self._bearer(headers)
        items = [{"accountId": a, "accountName": n, "emailAddress": f"{a}@example.com"}
                 for a, (n, _roles) in self.accounts.items()]
        return 200, self._page(items, query, "accountList")

    def list_account_roles(self, _body, query: dict, headers):
        self.calls.append(("ListAccountRoles", dict(query)))
        self._bearer(headers)
        account = query.get("account_id", "")
        if account not in self.accounts:
            raise Refusal(404, "ResourceNotFoundException", "no such account", oidc=False)
        items = [{"roleName": r, "accountId": account} for r in self.accounts[account][1]]
        return 200, self._page(items, query, "roleList")

    def logout(self, _body, _query, headers):
        self.calls.append(("Logout", {}))
        token = headers.get("x-amz-sso_bearer_token") or ""
        self._bearer(headers)
        start_url = self.tokens.pop(token)["start_url"]
        # Signing out of the portal ends the refresh tokens of that sign-in too.
        for refresh in [r for r, held in self.refresh_tokens.items() if held["start_url"] == start_url]:
            del self.refresh_tokens[refresh]
        return 200, {}
