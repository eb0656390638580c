"""Renewal policy in the agent: which role sessions it renews, when, and how often it
may try, so that the prompt hook's refresh and the credential endpoint find a fresh
session in the cache.

A role is watched when a shell resolves it (the `watch` of a `get`) or an endpoint
token serves it. The agent renews it ahead of the hook's window, from a cached MFA
session or parent role session only: the resolver runs keyless, so anything that
needs the long-term key or an MFA code stops with NeedsUser and waits for the user's
shell to bring a new session (a `put`). An SSO profile is watched the same way: its
role credentials are renewed from the token in the keyring (refreshed with the
refresh token when it has run out), and a sign-in is the user's to do. Renewal
can't spin:

- a renewal must buy at least GAIN seconds, so a role that AWS caps below the window
  is renewed once per lifetime, shortly before its end;
- a failure is retried with exponential backoff, also when requests ask for it.

botocore is imported (by sts.py) on the first renewal, not before.
"""
from __future__ import annotations

import json
import threading
import time

from ..aws.sts import Endpoints
from ..core.cachekeys import login_key, role_key, session_key, sso_key
from ..core.config import AwsConfig
from ..core.creds import Credentials
from ..core.errors import AwsenvError, NeedsUser
from ..core.settings import AGENT_IDLE, MIN_TTL, REFRESH_WINDOW, float_setting, setting
from ..session.resolver import CHAINED_ROLE_CAP, DEFAULT_ROLE_DURATION, Request, Resolver, chain_serial
from ..session.watch import AGENT_ENV

GAIN = 120  # seconds a renewal must add, or it is not worth an STS call
LOGIN_TTL = 900  # the sign-in service's credentials last 15 minutes at most (its model's ExpiresIn)
BACKOFF_CAP = 1800
SERVE_MIN_TTL = 60  # the endpoint never hands out a session closer to its end
NEEDS_USER = "needs the user"


class Watch:
    """One role the agent keeps renewed, and where its schedule stands."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.due = 0.0  # wall clock: sessions expire on it
        self.used = time.monotonic()
        self.served_until = 0.0
        self.failures = 0
        self.state = "new"
        self.expires: int | None = None
        self.renewals = 0
        self.cache_key: str | None = None
        self.login = False  # a login_session profile: 15-minute credentials, renewed from the sign-in

    @property
    def profile(self) -> str:
        return self.spec["profile"]

    @property
    def threshold(self) -> float:
        """Renew before the hook would: its window plus its margin, plus a lead."""
        window = self.spec.get("window")
        window = window if isinstance(window, (int, float)) else REFRESH_WINDOW
        return window + 60 + float_setting("AWSENV_BROKER_LEAD", 300)


def renewable_from(config: AwsConfig, chain: list, sessions: dict, now: float | None = None) -> str | None:
    """The cache key of the session from which the agent can renew this role by itself,
    or None. That session's end is when the user must act. Whatever needs the key plus
    a code (a role for more than an hour straight from the key) stays with the shell.
    An SSO profile's role credentials are that session for the roles built on them,
    and for the profile itself: the agent renews them from the stored token while it
    lasts, and the user must act once they end with no token to renew them."""
    top, base = chain[0], chain[-1]
    if base.is_sso:
        key = sso_key(base, config.portal(base))
    elif base.is_login:
        key = login_key(base)
    elif not top.is_role:
        return None
    elif not chain[1].is_role and top.mfa_serial and (top.duration_seconds or DEFAULT_ROLE_DURATION) > CHAINED_ROLE_CAP:
        return None
    else:
        key = session_key(base.name, chain_serial(chain))
    entry = sessions.get(key)
    expiration = entry.get("Expiration") if isinstance(entry, dict) else None
    if not isinstance(expiration, (int, float)) or expiration <= (time.time() if now is None else now):
        return None
    return key


def watch_id(spec: dict) -> str:
    return json.dumps([spec.get("profile"), spec.get("config"), spec.get("adhoc")])


class Broker:
    def __init__(self, agent) -> None:
        self.agent = agent
        self.watches: dict[str, Watch] = {}
        self.wake = threading.Condition()
        self.renewing = threading.Lock()  # one STS conversation at a time
        self.closed = False
        self.renewals = 0
        self._vault = None
        self._thread: threading.Thread | None = None

    # what the agent calls --------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self.wake:
            self.closed = True
            self.wake.notify_all()

    def watch(self, spec: dict, served_until: float = 0.0) -> Watch | None:
        if not isinstance(spec.get("profile"), str) or not isinstance(spec.get("config"), str):
            return None
        with self.wake:
            key = watch_id(spec)
            found = self.watches.get(key)
            if found is None:
                found = self.watches[key] = Watch(spec)
            else:
                found.spec = spec
            found.used = time.monotonic()
            found.served_until = max(found.served_until, served_until)
            self.wake.notify_all()
            return found

    def changed(self) -> None:
        """A new document: every schedule is looked at again (what waited for the user
        may be renewable now, a session may have been replaced or dropped). Looking
        costs no STS call; backoff stands."""
        with self.wake:
            for watch in self.watches.values():
                if not watch.failures:
                    watch.due = 0.0
            self.wake.notify_all()

    def renew_now(self, spec: dict, need: float) -> bool:
        """A caller needs the role with `need` seconds left, now. Backoff holds here too."""
        watch = self.watch(spec)
        if watch is None or (watch.failures and watch.due > time.time()):
            return False
        with self.renewing:
            return self._renew(watch, need)

    def serve(self, spec: dict) -> Credentials:
        """The endpoint's answer for a token's role: the cached session, renewed first
        when it is too close to its end."""
        watch = self.watch(spec)
        if watch is None:
            raise AwsenvError("not a profile")
        if watch.cache_key is None:
            self._setup(watch)
        creds = self._cached(watch, SERVE_MIN_TTL)
        if creds is None and self.renew_now(spec, SERVE_MIN_TTL):
            creds = self._cached(watch, SERVE_MIN_TTL)
        if creds is None:
            raise AwsenvError(f"no session for {watch.profile}: {watch.state}")
        return creds

    def report(self) -> list[dict]:
        with self.wake:
            return [
                {"profile": w.profile, "state": w.state, "expires": w.expires, "next": int(w.due) if 0 < w.due < float("inf") else None,
                 "failures": w.failures, "renewals": w.renewals}
                for w in self.watches.values()
            ]

    # the schedule ----------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self.wake:
                if self.closed:
                    return
                self._forget_unused()
                now = time.time()
                due = [w for w in self.watches.values() if w.due <= now]
                if not due:
                    soonest = min((w.due for w in self.watches.values()), default=now + 60)
                    self.wake.wait(min(max(soonest - now, 0.05), 60))
                    continue
            for watch in due:
                with self.renewing:
                    if self.closed:
                        return
                    self._renew(watch, watch.threshold)

    def _forget_unused(self) -> None:
        keep = float_setting("AWSENV_AGENT_IDLE", AGENT_IDLE)
        now, clock = time.monotonic(), time.time()
        for key in [k for k, w in self.watches.items() if now - w.used > keep and w.served_until < clock]:
            del self.watches[key]

    # one renewal -----------------------------------------------------------------
    @property
    def vault(self):
        if self._vault is None:
            from ..store.vault import Vault

            self._vault = Vault()
        return self._vault

    def _setup(self, watch: Watch) -> tuple[Resolver, list]:
        config = AwsConfig(watch.spec["config"])
        adhoc = watch.spec.get("adhoc")
        if isinstance(adhoc, list) and len(adhoc) == 3:
            config.adhoc(adhoc[0], adhoc[1], adhoc[2])
        resolver = Resolver(config, self.vault, sessions=self.agent.snapshot(), keyless=True,
                            publish=self.agent.replace, held=self.agent.held, endpoints=_endpoints(watch.spec.get("env")))
        chain = config.chain(watch.profile)
        top = chain[0]
        if top.is_role:
            watch.cache_key = role_key(top, chain_serial(chain))
        elif top.is_sso:
            watch.cache_key = sso_key(top, config.portal(top))
        elif top.is_login:
            watch.cache_key = login_key(top)
            watch.login = True
        else:
            watch.cache_key = session_key(top.name, top.mfa_serial)
        return resolver, chain

    def _cached(self, watch: Watch, need: float) -> Credentials | None:
        entry = self.agent.snapshot().get(watch.cache_key) if watch.cache_key else None
        try:
            creds = Credentials.from_dict(entry) if isinstance(entry, dict) else None
        except (KeyError, TypeError, ValueError):
            return None
        return creds if creds is not None and creds.ttl() > need else None

    def _renew(self, watch: Watch, need: float) -> bool:
        """Renew unless the cached session already does: it has `need` seconds left, or
        as many as a new one would give, give or take GAIN. True when fresh."""
        now = time.time()
        try:
            resolver, chain = self._setup(watch)
            top = chain[0]
            if not top.is_role and not top.is_sso and not top.is_login:
                # A base profile's session is served as it is: only the user renews it.
                cached = self._cached(watch, 0)
                watch.state, watch.due = "served as it is", float("inf")
                watch.expires = cached.expiration if cached else None
                return cached is not None and cached.ttl() > need
            # The permission set, which awsenv can't see, decides an SSO profile's length.
            best = float("inf") if top.is_sso else LOGIN_TTL if top.is_login else \
                min(top.duration_seconds or DEFAULT_ROLE_DURATION, CHAINED_ROLE_CAP)
            cached = self._cached(watch, 0)
            if cached is not None and cached.ttl() > min(need, best - GAIN):
                self._schedule(watch, cached)
                return True
            resolver.sessions.pop(watch.cache_key, None)
            # A login session's token holds the credentials being renewed: ask for longer.
            wanted = int(min(need, best - GAIN)) if top.is_login else 0
            creds, _chain = resolver.resolve(Request(top.name, min_ttl=wanted, prompt=False))
            resolver.save()
        except NeedsUser:
            watch.state, watch.due = NEEDS_USER, float("inf")
            return False
        except AwsenvError as err:
            watch.failures += 1
            backoff = min(float_setting("AWSENV_BROKER_BACKOFF", 30) * 2 ** (watch.failures - 1), BACKOFF_CAP)
            watch.state, watch.due = f"failed ({err}); retry in {backoff:g}s", now + backoff
            return False
        watch.renewals += 1
        self.renewals += 1
        self._schedule(watch, creds)
        return True

    def _schedule(self, watch: Watch, creds: Credentials) -> None:
        expiration = creds.expiration or int(time.time()) + CHAINED_ROLE_CAP
        due = expiration - watch.threshold
        if watch.login and due < time.time() + GAIN / 2:
            # Shorter than the lead: renew just before the prompt hook's window opens, so
            # the hook never finds these due.
            due = expiration - (watch.threshold - float_setting("AWSENV_BROKER_LEAD", 300))
        if due < time.time() + GAIN / 2:
            # Capped below the window: renew once, shortly before the end.
            due = expiration - min(setting("AWSENV_MIN_TTL", MIN_TTL), (expiration - time.time()) / 2)
        watch.failures, watch.expires, watch.due = 0, expiration, max(due, time.time() + 1)
        watch.state = "fresh"


def _endpoints(env: object) -> Endpoints:
    """The shell's AWS endpoint settings (the watch's `env`) as the renewal's own: the
    agent started without any AWS_* variable and never takes one into os.environ,
    which the endpoint's threads read while a renewal runs."""
    env = env if isinstance(env, dict) else {}
    return Endpoints({k: v for k, v in env.items() if isinstance(k, str) and isinstance(v, str) and k.startswith(AGENT_ENV)})
