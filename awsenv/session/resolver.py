"""Policy: which STS call, for how long, from the cache or not, and when to ask for MFA.

The cached path touches only the config parser and the vault; `sts` (and so boto3)
is imported the first time a call to AWS is really needed.
"""
from __future__ import annotations

import json
import sys
import time

from ..core.cachekeys import USED_CODES, expired, key_profile, login_key, role_key, session_key, sso_key
from ..core.config import AwsConfig, Profile
from ..core.creds import Credentials, parse_rfc3339
from ..core.errors import AwsenvError, KeyringError, MfaError, NeedsUser, Refused, Unsupported, UsageError
from ..core.settings import MIN_TTL, check_duration, env_duration, env_seconds
from .watch import watch_for

TYPE_CHECKING = False
if TYPE_CHECKING:  # the cached path imports neither the vault's deps nor mfa
    from typing import TypedDict

    from ..aws.loginsession import LoginSessions
    from ..aws.sso import SignIn
    from ..aws.sts import Endpoints
    from ..store.vault import Vault
    from .mfa import CodeSource

    class RoleParams(TypedDict):  # what every branch of _resolve passes to sts.assume_role
        region: str | None
        role_arn: str
        session_name: str
        external_id: str | None

DEFAULT_SESSION_TTL = 12 * 3600
CHAINED_ROLE_CAP = 3600  # AWS caps a role reached from session credentials at 1 h
DEFAULT_ROLE_DURATION = 3600
SOURCE_MIN_TTL = 60  # a source session only has to outlive the AssumeRole call
MFA_ATTEMPTS = 3
RENEW_TIMEOUT = 20.0  # the agent's STS call, with sts.py's timeouts and retries


def chain_serial(chain: list[Profile]) -> str | None:
    """The MFA device of a chain: the base's, else the nearest role's."""
    return next((p.mfa_serial for p in reversed(chain) if p.mfa_serial), None)


def chain_mfa_process(chain: list[Profile], serial: str | None) -> tuple[str, str] | None:
    """(profile, command) of the mfa_process that makes the codes of `serial`: it goes
    with mfa_serial, so it is that of a profile in the chain naming this device, looked
    for as chain_serial looks (the base first). A device named on every profile of a
    chain needs its mfa_process said once."""
    found = next((p for p in reversed(chain) if serial and p.mfa_serial == serial and p.mfa_process), None)
    return (found.name, found.mfa_process or "") if found else None


def default_session_name(profile: str) -> str:
    import getpass
    import re

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in a container
        user = ""
    name = re.sub(r"[^\w+=,.@-]", "-", user or f"awsenv-{profile}")
    return name[:64] or "awsenv"


class Request:
    """What the caller wants. A plain class: dataclasses cost the cached path too much."""

    def __init__(
        self,
        profile: str,
        mfa_code: str | None = None,
        duration: int | None = None,  # of the credentials handed out (the target)
        refresh: bool = False,  # renew the profile's own credentials, from the cached session below them
        min_ttl: int | None = None,
        prompt: bool = True,  # may ask for an MFA code on the terminal
        note: str = "",  # said before asking, e.g. why the prompt hook asks
    ) -> None:
        self.profile = profile
        self.mfa_code = mfa_code
        self.duration = duration
        self.refresh = refresh
        self.min_ttl = env_seconds("AWSENV_MIN_TTL", MIN_TTL) if min_ttl is None else min_ttl
        self.prompt = prompt
        self.note = note


class Resolver:
    """Resolves one profile to temporary credentials, caching what it obtains."""

    def __init__(
        self, config: AwsConfig, vault: Vault | None = None, clock=time.time, sessions: dict | None = None,
        keyless: bool = False, publish=None, endpoints: Endpoints | None = None, held=None,
    ) -> None:
        self.config = config
        # The agent's renewals: where AWS is for the shell they renew for (sts.Endpoints);
        # None is this process's environment.
        self.endpoints = endpoints
        self._vault = vault
        self.clock = clock
        self._sessions: dict | None = sessions
        # keyless: the agent's renewals, which may use cached sessions only.
        self.keyless = keyless
        self._publish = publish
        self._held = held  # with publish: the document its receiver holds (Vault.update_sessions)
        self._watch: dict | None = None
        self._agent = False  # the document came from a running agent
        self._new: dict[str, dict] = {}
        self._codes: CodeSource | None = None
        self._sign_in: SignIn | None = None
        self._logins: LoginSessions | None = None
        self._warned: set[str] = set()
        self.request = Request("")

    @property
    def vault(self) -> Vault:
        # Opened only when the agent can't answer: the cached path never loads keyring.
        if self._vault is None:
            from ..store.vault import Vault

            self._vault = Vault()
        return self._vault

    # cache -------------------------------------------------------------------
    @property
    def sessions(self) -> dict:
        if self._sessions is None:
            from ..store import agentclient as agent

            doc = agent.fetch(self._watch)
            self._agent = doc is not None
            if doc is None:
                doc = self.vault.load_sessions()
                agent.spawn(self.vault.handoff())
            self._sessions = doc
        return self._sessions

    def cached(self, key: str, need_ttl: float) -> Credentials | None:
        entry = self.sessions.get(key)
        if not isinstance(entry, dict):
            return None
        try:
            creds = Credentials.from_dict(entry)
        except (KeyError, TypeError, ValueError):
            return None
        return creds if creds.ttl(self.clock()) > need_ttl else None

    def _store(self, key: str, creds: Credentials, explicit: bool = False) -> None:
        """Cache what was obtained. A session of an explicit --duration is handed out
        but does not replace a cached one that lasts longer: other profiles build on
        that one (the 12 h MFA session under every role)."""
        held = self.sessions.get(key)
        if explicit and isinstance(held, dict) and not expired(held, self.clock()) \
                and (creds.expiration or 0) < held["Expiration"]:
            return
        self.sessions[key] = creds.to_dict()
        self._new[key] = creds.to_dict()

    def save(self) -> None:
        """Write what this run obtained (and the MFA codes it spent) back to the keyring."""
        codes = self._codes.used if self._codes else None
        if not self._new and not codes:
            return
        now = self.clock()

        def merge(data: dict) -> None:
            data.update(self._new)
            for key in [k for k, v in data.items() if k != USED_CODES and expired(v, now)]:
                del data[key]
            if codes:
                data.setdefault(USED_CODES, {}).update(codes)

        publish, held = self._publish, self._held
        if publish is None:
            from ..store import agentclient as agent

            publish, held = agent.push, agent.fetch
        self.vault.update_sessions(merge, publish, held)
        self._new = {}

    # MFA ---------------------------------------------------------------------
    @property
    def codes(self) -> CodeSource:
        if self._codes is None:
            from .mfa import CodeSource

            used = self.sessions.get(USED_CODES)
            self._codes = CodeSource(
                self.request.mfa_code,
                self.vault.get_totp,
                dict(used) if isinstance(used, dict) else {},
                prompt=self.request.prompt,
                note=self.request.note,
            )
        return self._codes

    def _with_mfa(self, profile: str, serial: str, base: str, process: tuple[str, str] | None, call):
        """Run `call(code)`; on a terminal, a rejected code is asked for again (3 tries).
        `process` is the mfa_process that makes the code, if any, else the TOTP secret
        stored for `base`, if any."""
        from ..aws.sts import MfaRejected

        for attempt in range(MFA_ATTEMPTS):
            code = self.codes.code(profile, serial, base, retry=attempt > 0, process=process)
            # A code is spent once STS has answered a request that carried it, even with
            # a refusal; one that never reached AWS (unreachable, a timeout) may be sent again.
            try:
                creds = call(code)
            except Refused as err:
                self.codes.record(serial, code)
                if not isinstance(err, MfaRejected) or not self.codes.terminal.available \
                        or attempt == MFA_ATTEMPTS - 1:
                    raise
                self.codes.terminal.say("awsenv: AWS rejected that MFA code; try again")
                continue
            self.codes.record(serial, code)
            return creds
        raise MfaError("unreachable")  # pragma: no cover

    # keys --------------------------------------------------------------------
    def long_term_key(self, base: Profile, for_profile: str) -> Credentials:
        if self.keyless:
            raise NeedsUser(f"{for_profile}: a new session of {base.name!r} needs the user")
        if base.get("credential_process"):
            return self._credential_process(base)
        key = self.vault.get_key(base.name)
        if key is not None:
            return key
        plain = self.config.plaintext_key(base.name)
        if plain is not None:
            if base.name not in self._warned:
                self._warned.add(base.name)
                print(
                    f"awsenv: warning: the key of profile {base.name!r} lies in plaintext in "
                    f"{self.config.credentials_file}; move it into the key store with "
                    f"`awsenv import {base.name} --delete-plaintext`",
                    file=sys.stderr,
                )
            return Credentials(*plain)
        via = f" (the source of {for_profile!r})" if for_profile != base.name else ""
        raise KeyringError(f"no key stored for profile {base.name!r}{via}; run `awsenv add {base.name}`")

    def _credential_process(self, profile: Profile) -> Credentials:
        from ..host.process import run

        out, _ = run(profile.get("credential_process") or "", f"credential_process of profile {profile.name!r}")
        try:
            data = json.loads(out)
            expiration = data.get("Expiration")
            return Credentials(
                data["AccessKeyId"],
                data["SecretAccessKey"],
                data.get("SessionToken"),
                parse_rfc3339(expiration) if expiration else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AwsenvError(
                f"credential_process of profile {profile.name!r} did not print Version 1 JSON"
            ) from None

    # resolution --------------------------------------------------------------
    def resolve(self, request: Request) -> tuple[Credentials, list[Profile]]:
        self.request = request
        chain = self.config.chain(request.profile)
        sentence = self.config.unsupported(request.profile, chain)
        if sentence is not None:
            raise Unsupported(sentence)
        if request.duration is not None:
            check_duration(request.duration)
        if self._sessions is None:
            self._watch = watch_for(self.config, chain)
        try:
            creds = self._resolve(chain, request.min_ttl, top=True)
        except BaseException:
            # What was obtained before the failure (an MFA session, a spent code) is
            # kept, so the next try neither asks again nor resends the code.
            try:
                self.save()
            except Exception:  # noqa: BLE001 - the first failure is the one to report
                pass
            raise
        return creds, chain

    def _resolve(self, chain: list[Profile], need_ttl: float, top: bool) -> Credentials:
        profile = chain[0]
        if not profile.is_role:
            return self._base_session(profile, need_ttl, top)
        serial = chain_serial(chain)
        key = role_key(profile, serial)
        # An explicit --duration asks for a session of that length, not a cached one.
        explicit = top and self.request.duration is not None
        # --refresh renews this role only: what it is assumed from is reused while valid.
        renew = explicit or (top and self.request.refresh)
        found = None if renew else self.cached(key, need_ttl)
        if found is None and top:
            found = self._renewed_by_agent(key, need_ttl)
        if found is not None:
            return found

        source_chain = chain[1:]
        source = source_chain[0]
        wanted = self.request.duration if top else None
        if wanted is None:
            wanted = profile.duration_seconds
        if wanted is None:
            wanted = DEFAULT_ROLE_DURATION
        params: RoleParams = dict(
            region=profile.region or source.region,
            role_arn=profile.role_arn or "",  # set: the profile is a role
            session_name=profile.get("role_session_name") or default_session_name(profile.name),
            external_id=profile.get("external_id"),
        )
        from ..aws import sts

        if source.is_sso or source.is_login:
            source_creds = self._base_session(source, SOURCE_MIN_TTL, top=False)
            creds = sts.assume_role(source_creds, duration=min(wanted, CHAINED_ROLE_CAP), endpoints=self.endpoints,
                                    **params)
        elif not source.is_role and profile.mfa_serial and wanted > CHAINED_ROLE_CAP:
            # Only the long-term key plus a code may ask for more than an hour.
            key_creds = self.long_term_key(source, profile.name)
            creds = self._with_mfa(
                profile.name,
                profile.mfa_serial,
                source.name,
                chain_mfa_process(chain, profile.mfa_serial),
                lambda code: sts.assume_role(
                    key_creds, duration=wanted, serial=profile.mfa_serial, code=code, endpoints=self.endpoints,
                    **params
                ),
            )
        elif not source.is_role and serial is None and not self.keyless:
            creds = sts.assume_role(self.long_term_key(source, profile.name), duration=wanted,
                                    endpoints=self.endpoints, **params)
        else:
            if source.is_role:
                source_creds = self._resolve(source_chain, SOURCE_MIN_TTL, top=False)
            else:
                source_creds = self._mfa_session(chain, SOURCE_MIN_TTL, None, profile.name)
            creds = sts.assume_role(source_creds, duration=min(wanted, CHAINED_ROLE_CAP), endpoints=self.endpoints,
                                    **params)
        self._store(key, creds, explicit)
        return creds

    def _renewed_by_agent(self, key: str, need_ttl: float) -> Credentials | None:
        """The running agent renews the role with its warm STS client, from the cached
        sessions (or the stored SSO token), instead of this process importing botocore."""
        if not (self._agent and self._watch) or self.request.refresh or self.request.duration is not None:
            return None
        from ..store import agentclient as agent

        answer = agent.ask({"op": "renew", "watch": self._watch, "need": need_ttl}, RENEW_TIMEOUT)
        doc = answer.get("doc") if answer else None
        if not isinstance(doc, dict):
            return None
        self._sessions = {**doc, **self._new}
        return self.cached(key, need_ttl)

    def mfa_session(self, base: Profile, request: Request, chain: list[Profile] | None = None,
                    need_ttl: float = SOURCE_MIN_TTL) -> Credentials:
        """The base profile's session (an MFA session, or an SSO profile's role
        credentials), for commands that call IAM with it, and for server mode, where it
        is what the agent renews roles from. `chain`, whose base it is, decides the MFA
        device and its mfa_process (default: the base alone)."""
        self.request = request
        if base.is_sso or base.is_login:
            return self._base_session(base, need_ttl, top=False)
        return self._mfa_session(chain or [base], need_ttl, None, base.name)

    def _base_session(self, profile: Profile, need_ttl: float, top: bool) -> Credentials:
        if profile.is_sso or profile.is_login:
            if top and self.request.duration is not None:
                what = ("an IAM Identity Center profile: its permission set" if profile.is_sso
                        else "an AWS sign-in profile (login_session): the sign-in service")
                raise UsageError(
                    f"profile {profile.name!r} is {what}, not --duration, decides how long its credentials last"
                )
            if profile.is_login:
                return self._login_session(profile, need_ttl, top)
            return self._sso_session(profile, need_ttl, top)
        explicit = self.request.duration if top else None
        duration = explicit or env_duration("AWSENV_SESSION_TTL", DEFAULT_SESSION_TTL)
        return self._mfa_session([profile], need_ttl, duration, profile.name, fresh=bool(explicit),
                                 renew=top and self.request.refresh)

    # IAM Identity Center -----------------------------------------------------
    @property
    def sign_in(self) -> SignIn:
        if self._sign_in is None:
            from ..aws.sso import SignIn

            self._sign_in = SignIn(self.vault, endpoints=self.endpoints)
        return self._sign_in

    def _sso_session(self, profile: Profile, need_ttl: float, top: bool = False) -> Credentials:
        """Role credentials from GetRoleCredentials, cached like an STS session. The
        prompt hook (a request with a note) asks before it opens a browser; the agent
        (keyless) never asks: it renews from the stored token or waits for the user."""
        portal = self.config.portal(profile)
        key = sso_key(profile, portal)
        found = None if top and self.request.refresh else self.cached(key, need_ttl)
        if found is None and top:
            found = self._renewed_by_agent(key, need_ttl)
        if found is not None:
            return found
        prompt = self.request.prompt and not self.keyless
        creds = self.sign_in.role_credentials(
            profile, portal, prompt=prompt, ask_first=bool(self.request.note), note=self.request.note
        )
        self._store(key, creds)
        return creds

    # AWS sign-in (login_session) ----------------------------------------------
    def _login_session(self, profile: Profile, need_ttl: float, top: bool) -> Credentials:
        """The sign-in's access credentials, cached like an STS session; refreshed with
        the refresh token and DPoP key when they run out. Never a prompt: an ended
        session is LoginSessionEnded, which says how to sign in again."""
        key = login_key(profile)
        found = None if top and self.request.refresh else self.cached(key, need_ttl)
        if found is None and top:
            found = self._renewed_by_agent(key, need_ttl)
        if found is not None:
            return found
        if self._logins is None:
            from ..aws.loginsession import LoginSessions

            self._logins = LoginSessions(self.vault, self.clock, self.endpoints)
        creds = self._logins.credentials(profile, need_ttl, force=top and self.request.refresh)
        self._store(key, creds)
        return creds

    def _mfa_session(
        self, chain: list[Profile], need_ttl: float, duration: int | None, for_profile: str, fresh: bool = False,
        renew: bool = False,
    ) -> Credentials:
        """The session of the chain's base profile, with its MFA device if the chain has one.
        `fresh`: an explicit --duration, handed out without replacing a longer cached
        session; `renew`: --refresh of this base profile, which replaces it."""
        profile, serial = chain[-1], chain_serial(chain)
        key = session_key(profile.name, serial)
        found = None if fresh or renew else self.cached(key, need_ttl)
        if found is not None:
            return found
        if duration is None:
            duration = env_duration("AWSENV_SESSION_TTL", DEFAULT_SESSION_TTL)
        key_creds = self.long_term_key(profile, for_profile)
        if key_creds.session_token:
            return key_creds  # credential_process already gave a session
        from ..aws import sts

        if serial:
            creds = self._with_mfa(
                for_profile,
                serial,
                profile.name,
                chain_mfa_process(chain, serial),
                lambda code: sts.get_session_token(key_creds, profile.region, duration, serial, code, self.endpoints),
            )
        else:
            creds = sts.get_session_token(key_creds, profile.region, duration, None, None, self.endpoints)
        self._store(key, creds, fresh)
        return creds


def drop_sessions(vault: Vault, profiles: set[str] | None) -> int:
    """Forget cached sessions: all, or those of the given profiles. Returns how many."""
    dropped = []

    def change(data: dict) -> None:
        for key in list(data):
            if key == USED_CODES:
                continue
            if profiles is None or key_profile(key) in profiles:
                dropped.append(key)
                del data[key]

    from ..store import agentclient as agent

    vault.update_sessions(change, agent.push, agent.fetch)
    return len(dropped)
