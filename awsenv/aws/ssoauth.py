"""The IAM Identity Center sign-in by authorization code with PKCE: the browser approves,
and the portal's redirect to a listener on 127.0.0.1 brings the code back.

The protocol is the AWS CLI v2's since 2.22 (botocore's `SSOTokenFetcherAuth` and the
CLI's `AuthCodeFetcher`):
- the client registers with the grants `authorization_code` and `refresh_token`, the
  redirect URI `http://127.0.0.1/oauth/callback` *without* a port (a loopback redirect
  may use any port, RFC 8252 §7.3), the start URL as `issuerUrl`, and the session's
  `sso_registration_scopes`, or `sso:account:access` when it names none;
- the browser opens `<sso-oidc endpoint>/authorize` with `response_type=code`,
  `client_id`, the redirect URI *with* the listener's port, `state`, `scopes` (space
  separated) and the S256 `code_challenge`;
- the portal redirects to the listener with `code` and `state`, or with `error`;
- `CreateToken` takes the code, the same redirect URI and the `codeVerifier`.
Unlike the AWS CLI, the listener binds 127.0.0.1 only (not every interface), answers
only a request from a process of our uid (handoff.same_user), and the browser gets the
authorize URL through handoff's one-shot redirect, so `state` is on no command line.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import threading
import urllib.parse
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from ..core.config import Portal
from ..core.errors import SsoError
from ..host.handoff import FETCHED, QuietHandler, hand_over, same_user

GRANT = "authorization_code"
GRANT_TYPES = (GRANT, "refresh_token")
DEFAULT_SCOPE = "sso:account:access"
CALLBACK_PATH = "/oauth/callback"
REDIRECT_URI = f"http://127.0.0.1{CALLBACK_PATH}"
TIMEOUT = 600.0  # the AWS CLI waits 10 minutes for the redirect
VERIFIER_CHARS = string.ascii_letters + string.digits + "-._~"  # RFC 7636's unreserved
VERIFIER_LENGTH = 64
# What the redirect brings, checked before it goes anywhere: a code is visible ASCII of
# a sane length; an error is an OAuth error code (RFC 6749 §4.1.2.1), never echoed else.
CODE = re.compile(r"[\x21-\x7e]{1,4096}")
ERROR = re.compile(r"[a-z_]{1,64}")


def scopes(portal: Portal) -> tuple:
    return portal.scopes or (DEFAULT_SCOPE,)


def pkce_pair() -> tuple[str, str]:
    """(code verifier, S256 code challenge): base64url of the verifier's SHA-256, unpadded."""
    verifier = "".join(secrets.choice(VERIFIER_CHARS) for _ in range(VERIFIER_LENGTH))
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


class Denied(Exception):
    """The redirect said `error`: the value, checked against ERROR, or `invalid`."""


class WrongState(Exception):
    """A redirect came with a code but not with the state this sign-in sent."""


class TimedOut(Exception):
    """No redirect came in time."""


class Callback(ThreadingHTTPServer):
    """The loopback listener: one redirect, then it is done."""

    daemon_threads = True

    def __init__(self, state: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.redirect_uri = f"http://127.0.0.1:{self.server_address[1]}{CALLBACK_PATH}"
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.outcome: Exception | str | None = None
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def take(self, query: dict[str, list[str]]) -> bool | None:
        """Settle the sign-in from a redirect's query. True: a code came; False: it
        failed; None: not a sign-in redirect (wait on), or settled already."""
        def first(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        state, code, error = first("state"), first("code"), first("error")
        if code is None and error is None:
            return None
        matches = state is not None and hmac.compare_digest(state.encode(), self.state.encode())
        if state is not None and not matches:
            outcome: Exception | str = WrongState()
        elif error is not None:
            outcome = Denied(error if ERROR.fullmatch(error) else "invalid")
        elif not matches:
            outcome = WrongState()
        elif code is None or not CODE.fullmatch(code):
            outcome = Denied("invalid")
        else:
            outcome = code
        with self.lock:
            if self.done.is_set():
                return None
            self.outcome = outcome
            self.done.set()
        return isinstance(outcome, str)

    def wait(self, timeout: float) -> str:
        """The authorization code, or Denied, WrongState or TimedOut."""
        if not self.done.wait(timeout):
            raise TimedOut()
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return str(self.outcome)

    def close(self) -> None:
        self.shutdown()
        self.server_close()


PAGES = {
    True: "awsenv has the sign-in. You can close this tab and go back to the terminal.",
    False: "The sign-in did not succeed. The terminal says why.",
}


class _Handler(QuietHandler):
    server: Callback

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urllib.parse.urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            return self._answer(404, "")
        if not same_user(self.client_address, self.server.server_address):
            return self._answer(403, "")
        query = urllib.parse.parse_qs(parts.query, max_num_fields=16)
        settled = self.server.take(query)
        if settled is None:
            return self._answer(400, "Not a sign-in that awsenv is waiting for.")
        self._answer(200, PAGES[settled])  # a page the browser shows, whatever the outcome

    def _answer(self, status: int, text: str) -> None:
        body = (f"<!doctype html><meta charset=utf-8><title>awsenv</title><p>{text}</p>\n" if text else "").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self._close_headers(len(body))
        self.wfile.write(body)


def authorize_url(base: str, client_id: str, redirect_uri: str, state: str, challenge: str, scope: tuple) -> str:
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
        "code_challenge_method": "S256", "scopes": " ".join(scope), "code_challenge": challenge,
    }, quote_via=urllib.parse.quote)
    return f"{base}/authorize?{query}"


def authorize(portal: Portal, registration: dict, terminal, open_browser: Callable[[str], bool] | None,
              hint: str, timeout: float = TIMEOUT) -> dict:
    """Have the person at the browser approve, and trade the code for tokens: the
    CreateToken answer. `open_browser` is None to only show the URL; `hint` is the
    command that signs in again."""
    from . import sts

    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(32)
    try:
        listener = Callback(state)
    except OSError as err:
        raise SsoError(f"cannot listen on 127.0.0.1 for the sign-in's redirect ({err.strerror}); "
                       f"run `{hint} --use-device-code`") from None
    try:
        url = authorize_url(sts.oidc_base_url(portal.region), registration["clientId"], listener.redirect_uri,
                            state, challenge, scopes(portal))
        terminal.say(f"awsenv: sign in to {portal.label} in the browser; where this machine has none "
                     f"(SSH, WSL), run `{hint} --use-device-code`")
        if open_browser is None or hand_over(url, open_browser) != FETCHED:
            terminal.say(f"awsenv: open this URL in a browser on this machine: {url}")
        code = wait_for_code(listener, portal, hint, timeout)
    finally:
        listener.close()
    try:
        return sts.create_token(portal.region, registration["clientId"], registration["clientSecret"],
                                grantType=GRANT, code=code, redirectUri=listener.redirect_uri, codeVerifier=verifier)
    except sts.SsoRefused as err:
        if err.code == "AccessDeniedException":
            raise SsoError(f"the sign-in to {portal.label} was denied in the browser") from None
        if err.code in ("InvalidGrantException", "ExpiredTokenException"):
            raise SsoError(f"IAM Identity Center did not take the authorization code for {portal.label} "
                           f"({err.code}); run `{hint}` again") from None
        raise


def wait_for_code(listener: Callback, portal: Portal, hint: str, timeout: float) -> str:
    try:
        return listener.wait(timeout)
    except Denied as err:
        if str(err) == "access_denied":
            raise SsoError(f"the sign-in to {portal.label} was denied in the browser") from None
        raise SsoError(f"the sign-in to {portal.label} failed in the browser ({err}); run `{hint}` again") from None
    except WrongState:
        raise SsoError(f"refused a redirect to the sign-in to {portal.label}: its state is not the one awsenv "
                       f"sent; run `{hint}` again") from None
    except TimedOut:
        raise SsoError(f"no sign-in to {portal.label} came back from the browser within {timeout:g} s; run "
                       f"`{hint}` again, or `{hint} --use-device-code` where this machine has no browser") from None
