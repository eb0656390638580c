"""IAM Identity Center (SSO): sign-ins, their tokens in the key store, and role credentials
from them.

A sign-in belongs to a portal (an `[sso-session]`, or a legacy profile's start URL) and
is shared by every profile that names it. A new sign-in is the authorization code with
PKCE (ssoauth.py) for an sso-session, the OIDC device flow for the legacy form or on
request. The keyring item `sso:NAME` holds the client registration (reused until it
expires) and the access and refresh tokens; nothing goes to ~/.aws/sso/cache. An
expired access token is renewed with the refresh token when the registration's scopes
include `sso:account:access`; only when that fails does the user sign in again.
botocore is reached through `sts`, the one module that talks to AWS.
"""
from __future__ import annotations

import re
import time

from ..core.config import Portal, Profile
from ..core.creds import Credentials
from ..core.errors import AwsError, Cancelled, SignInNeeded, SsoError
from ..core.portals import token_valid
from ..host.browser import open_browser

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .sts import Endpoints

REFRESH_SCOPE = "sso:account:access"
CLIENT_NAME = "awsenv"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REGISTRATION_MARGIN = 3600  # a registration must outlive the sign-in and its refreshes
SLOW_DOWN = 5  # RFC 8628: after slow_down, poll 5 s less often
# What the portal lists goes into ~/.aws/config (`sso profiles --write`), so each value
# must match its AWS pattern. botocore's sso model gives these strings none; accounts
# and roles are IAM's: the 12-digit account ID (Organizations, Account Management) and
# IAM's roleNameType, in ASCII (Python's \d and \w would take other scripts' digits and
# letters). An account name is Organizations' (up to 128 characters of any kind) minus
# control characters, line separators and the invisible marks that reorder text: it
# shapes a profile name and is shown on a terminal.
ACCOUNT_ID = re.compile(r"[0-9]{12}")
ROLE_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")
ACCOUNT_NAME = re.compile(r"[^\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]{0,128}")
# Tokens, client ids and secrets go to the keyring and into headers: visible ASCII (AWS's
# are base64 joined by `:`), bounded. Lifetimes are whole seconds within what Identity
# Center allows a session (90 days).
OPAQUE = re.compile(r"[\x21-\x7e]{1,16384}")
MAX_LIFETIME = 90 * 86400


def login_hint(portal: Portal, profile: str) -> str:
    return f"awsenv sso login {portal.name if portal.session else profile}"


class SignIn:
    """Access tokens for portals: from the keyring, renewed with the refresh token, or
    from a new device sign-in on the terminal."""

    def __init__(self, vault, terminal=None, clock=time.time, sleep=time.sleep,
                 endpoints: Endpoints | None = None) -> None:
        self.vault = vault
        self._terminal = terminal
        self.clock = clock
        self.sleep = sleep
        self.endpoints = endpoints  # the agent's renewals: where AWS is for the shell (sts.Endpoints)

    @property
    def terminal(self):
        if self._terminal is None:
            from ..host.terminal import Terminal

            self._terminal = Terminal()
        return self._terminal

    # the keyring item -----------------------------------------------------------------
    def load(self, portal: Portal) -> dict:
        doc = self.vault.get_sso(portal.name)
        if doc.get("startUrl") != portal.start_url or doc.get("region") != portal.region:
            return {}  # the config now names another portal: nothing of the old one applies
        return doc

    def save(self, portal: Portal, doc: dict) -> None:
        doc.update(startUrl=portal.start_url, region=portal.region)
        self.vault.set_sso(portal.name, doc)

    def _token_entry(self, answer: dict, old_refresh: str | None) -> dict:
        _check(answer, "CreateToken", "accessToken")
        if answer.get("refreshToken") is not None:
            _check(answer, "CreateToken", "refreshToken")
        lifetime = answer.get("expiresIn")
        if type(lifetime) is not int or not 0 < lifetime <= MAX_LIFETIME:
            raise SsoError("IAM Identity Center answered CreateToken with an expiresIn that is not a lifetime; nothing was stored")
        entry = {"accessToken": answer["accessToken"], "expiresAt": int(self.clock()) + lifetime}
        refresh = answer.get("refreshToken") or old_refresh
        if refresh:
            entry["refreshToken"] = refresh
        return entry

    # tokens ---------------------------------------------------------------------------
    def token(self, portal: Portal, for_profile: str, prompt: bool = True, ask_first: bool = False,
              note: str = "") -> str:
        """A valid access token. Signs in on the terminal only when the stored token is
        gone and cannot be renewed; `ask_first` (the prompt hook) asks before that.
        Without `prompt` (the agent, or no terminal wanted) that is SignInNeeded."""
        doc = self.load(portal)
        if token_valid(doc.get("token"), self.clock()):
            return doc["token"]["accessToken"]
        renewed = self._refresh(portal, doc)
        if renewed is not None:
            return renewed
        hint = login_hint(portal, for_profile)
        if not prompt:
            raise SignInNeeded(f"profile {for_profile!r} needs a new IAM Identity Center sign-in ({portal.label}); run `{hint}`")
        if not self.terminal.available:
            raise SsoError(
                f"profile {for_profile!r} needs an IAM Identity Center sign-in ({portal.label}) and there is "
                f"no terminal to sign in on; run `{hint}` in one"
            )
        if ask_first:
            if note:
                self.terminal.say(f"awsenv: {note}")
            answer = self.terminal.ask(f"Sign in to {portal.label} for {for_profile} in the browser? [y/N] ")
            if answer.lower() not in ("y", "yes"):
                raise Cancelled("sign-in skipped")
        return self.login(portal)

    def _refresh(self, portal: Portal, doc: dict) -> str | None:
        from . import sts

        token = doc.get("token") or {}
        registration = doc.get("registration")
        if not token.get("refreshToken") or not token_valid(registration, self.clock()):
            return None
        try:
            answer = sts.create_token(
                portal.region, registration["clientId"], registration["clientSecret"], endpoints=self.endpoints,
                grantType="refresh_token", refreshToken=token["refreshToken"],
            )
        except sts.SsoRefused:
            # Another shell may have renewed it a moment ago (a refresh token works once).
            latest = self.load(portal)
            if token_valid(latest.get("token"), self.clock()):
                return latest["token"]["accessToken"]
            doc.pop("token", None)  # refused for good: a new sign-in is the way on
            self.save(portal, doc)
            return None
        doc["token"] = self._token_entry(answer, token["refreshToken"])
        self.save(portal, doc)
        return doc["token"]["accessToken"]

    def forget_access_token(self, portal: Portal) -> None:
        """The portal no longer takes the token (signed out elsewhere): keep only what
        may renew it."""
        doc = self.load(portal)
        if isinstance(doc.get("token"), dict):
            doc["token"]["expiresAt"] = 0
            self.save(portal, doc)

    # a new sign-in ----------------------------------------------------------------------
    def _registration(self, portal: Portal, doc: dict, auth_code: bool) -> dict:
        """The stored client registration when it fits the flow (as the AWS CLI, a client
        registered for the authorization code is not used for the device flow, nor the
        other way round), else a new one."""
        from . import ssoauth, sts

        scopes = ssoauth.scopes(portal) if auth_code else portal.scopes
        registration = doc.get("registration")
        if (token_valid(registration, self.clock(), REGISTRATION_MARGIN) and tuple(registration.get("scopes", ())) == scopes
                and (ssoauth.GRANT in registration.get("grantTypes", ())) == auth_code):
            return registration
        extra = {"grantTypes": list(ssoauth.GRANT_TYPES), "redirectUris": [ssoauth.REDIRECT_URI],
                 "issuerUrl": portal.start_url} if auth_code else {}
        answer = sts.register_client(portal.region, CLIENT_NAME, scopes, **extra)
        _check(answer, "RegisterClient", "clientId", "clientSecret")
        expires = answer.get("clientSecretExpiresAt")
        if type(expires) is not int or not self.clock() < expires <= self.clock() + 10 * MAX_LIFETIME:
            raise SsoError("IAM Identity Center answered RegisterClient with a clientSecretExpiresAt that is not a "
                           "time to come; nothing was stored")
        doc["registration"] = {
            "clientId": answer["clientId"], "clientSecret": answer["clientSecret"],
            "expiresAt": expires, "scopes": list(scopes),
        }
        if auth_code:
            doc["registration"]["grantTypes"] = list(ssoauth.GRANT_TYPES)
        doc.pop("token", None)  # only the client that got a refresh token may use it
        self.save(portal, doc)
        return doc["registration"]

    def login(self, portal: Portal, browser: bool = True, device_code: bool = False) -> str:
        """Sign in anew: the authorization code with PKCE for an sso-session, as the AWS
        CLI does since 2.22; the device flow for the legacy form (the AWS CLI's choice
        too) or with `device_code`. The registration is the stored one when it fits."""
        from . import sts

        doc = self.load(portal)
        auth_code = portal.session and not device_code
        try:
            registration = self._registration(portal, doc, auth_code)
            if auth_code:
                from .ssoauth import authorize

                answer = authorize(portal, registration, self.terminal, open_browser if browser else None,
                                   f"awsenv sso login {portal.name}")
            else:
                answer = self._device(portal, registration, browser)
        except sts.Unreachable:
            raise SsoError(
                f"IAM Identity Center does not answer for the start URL {portal.start_url} in {portal.region}; "
                "check sso_start_url and sso_region, and the network"
            ) from None
        except sts.SsoRefused as err:
            if err.code == "InvalidClientException":
                doc.pop("registration", None)  # expired or deleted at AWS: register anew next time
                self.save(portal, doc)
            raise SsoError(
                f"IAM Identity Center refused the sign-in to {portal.start_url} in {portal.region} ({err.code})"
            ) from None
        doc["token"] = self._token_entry(answer, None)
        self.save(portal, doc)
        self.terminal.say(f"awsenv: signed in to {portal.label}")
        return doc["token"]["accessToken"]

    def _device(self, portal: Portal, registration: dict, browser: bool) -> dict:
        """StartDeviceAuthorization, then CreateToken polled until the person at the
        browser approves."""
        from . import sts

        auth = sts.start_device_authorization(
            portal.region, registration["clientId"], registration["clientSecret"], portal.start_url
        )
        url = auth.get("verificationUriComplete") or auth["verificationUri"]
        self.terminal.say(
            f"awsenv: sign in to {portal.label}: open {url} and check that it shows the code {auth['userCode']}"
        )
        if browser and not open_browser(url):
            self.terminal.say("awsenv: could not open a browser; open the URL above yourself")
        return self._poll(portal, registration, auth)

    def _poll(self, portal: Portal, registration: dict, auth: dict) -> dict:
        from . import sts

        interval = int(auth.get("interval") or 5)
        deadline = self.clock() + int(auth.get("expiresIn") or 600)
        expired = SsoError(
            f"the sign-in code for {portal.label} expired before it was approved; run `awsenv sso login` again"
        )
        while True:
            try:
                return sts.create_token(
                    portal.region, registration["clientId"], registration["clientSecret"],
                    grantType=DEVICE_GRANT, deviceCode=auth["deviceCode"],
                )
            except sts.SsoRefused as err:
                if err.code == "SlowDownException":
                    interval += SLOW_DOWN
                elif err.code == "AccessDeniedException":
                    raise SsoError(f"the sign-in to {portal.label} was denied in the browser") from None
                elif err.code == "ExpiredTokenException":
                    raise expired from None
                elif err.code != "AuthorizationPendingException":
                    raise
            if self.clock() + interval > deadline:
                raise expired
            self.sleep(interval)

    # what the tokens are for ----------------------------------------------------------
    def role_credentials(self, profile: Profile, portal: Portal, prompt: bool = True, ask_first: bool = False,
                         note: str = "") -> Credentials:
        from . import sts

        account, role = profile.get("sso_account_id") or "", profile.get("sso_role_name") or ""
        for attempt in range(2):
            token = self.token(portal, profile.name, prompt, ask_first, note)
            try:
                return sts.role_credentials(portal.region, token, account, role, endpoints=self.endpoints)
            except sts.SsoRefused as err:
                if err.code == "ForbiddenException":
                    raise AwsError(
                        f"no access to role {role} in account {account} (profile {profile.name!r}): the IAM "
                        "Identity Center user has no assignment for it (ForbiddenException)"
                    ) from None
                if err.code != "UnauthorizedException" or attempt:
                    raise
                self.forget_access_token(portal)
        raise AwsError("unreachable")  # pragma: no cover

    def assignments(self, portal: Portal, for_profile: str) -> tuple[list[tuple[str, str, str]], list[str]]:
        """(account id, account name, role name) for every role the sign-in reaches, and
        a sentence for each account or role skipped because a value is not what AWS
        allows (see ACCOUNT_ID)."""
        from . import sts

        token = self.token(portal, for_profile)
        found, skipped = [], []
        for account in sts.list_accounts(portal.region, token):
            account_id, name = account.get("accountId"), account.get("accountName") or ""
            why = _unfit(account_id, ACCOUNT_ID, "not a 12-digit account ID") or _unfit(
                name, ACCOUNT_NAME, "its name holds a control character or is over 128 characters")
            if why:
                skipped.append(f"account {account_id!r} ({name!r}): {why}")
                continue
            account_id = str(account_id)  # checked: a str of 12 digits
            for role in sts.list_account_roles(portal.region, token, account_id):
                role_name = role.get("roleName")
                why = _unfit(role_name, ROLE_NAME, "not an IAM role name (1 to 64 of A-Z a-z 0-9 _+=,.@-)")
                if why:
                    skipped.append(f"role {role_name!r} of account {account_id}: {why}")
                    continue
                found.append((account_id, str(name), str(role_name)))
        return found, skipped

    def logout(self, portal: Portal) -> bool:
        """End the portal session (sso-oidc has no revoke: the portal's Logout does it)
        and forget the tokens. The registration stays: it is not a sign-in. Returns
        whether the portal took the Logout."""
        from . import sts

        doc = self.load(portal)
        token = doc.pop("token", None)
        if doc.get("registration"):
            self.save(portal, doc)
        else:
            self.vault.delete_sso(portal.name)
        if not token_valid(token, self.clock(), 0):
            return False
        try:
            sts.sso_logout(portal.region, token["accessToken"])
        except sts.SsoRefused:
            return False  # the portal had ended it already
        return True


def _check(answer: dict, operation: str, *names: str) -> None:
    for name in names:
        if not isinstance(answer.get(name), str) or not OPAQUE.fullmatch(answer[name]):
            raise SsoError(f"IAM Identity Center answered {operation} with a {name} that is not one; nothing was stored")


# the profiles of a portal ------------------------------------------------------------------
def _unfit(value: object, pattern: re.Pattern, why: str) -> str | None:
    return None if isinstance(value, str) and pattern.fullmatch(value) else why


