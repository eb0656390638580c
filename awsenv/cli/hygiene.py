"""Key hygiene: rotating a base profile's access key, and the `doctor` audit.

An IAM user should have one active key, rotated at least every 90 days, kept out of
plaintext files. Both commands find the IAM user with GetCallerIdentity signed by the
long-term key and name it in every IAM call, and sign IAM calls with the profile's
MFA session when it has an `mfa_serial` (IAM policies usually demand MFA).
"""
from __future__ import annotations

import sys
import time

from ..core.config import AwsConfig, Profile
from ..core.creds import Credentials
from ..core.errors import AwsenvError, KeyringError, Unreachable, UsageError
from ..core.portals import sso_profiles
from ..core.settings import env_seconds
from ..session.resolver import CHAINED_ROLE_CAP, Request, Resolver, chain_serial, drop_sessions
from ..store.vault import PLAINTEXT_BACKENDS, backend_name

VERIFY_SECONDS = 20  # IAM is eventually consistent: a new key may take a while to work


def base_profile(config: AwsConfig, name: str) -> Profile:
    profile = config.profile(name)
    if profile.is_role:
        raise UsageError(f"profile {name!r} is a role; name its base profile {config.chain(name)[-1].name!r}")
    if profile.is_sso:
        raise UsageError(f"profile {name!r} signs in through IAM Identity Center; it has no access key")
    return profile


def iam_credentials(resolver: Resolver, profile: Profile, key: Credentials, request: Request) -> Credentials:
    """The MFA session when the profile has a device (cached, or from the code given),
    else the long-term key itself."""
    if not profile.mfa_serial:
        return key
    return resolver.mfa_session(profile, request)


# rotate -----------------------------------------------------------------------------
def rotate(name: str, mfa_code: str | None, say=lambda text: print(f"awsenv: {text}", file=sys.stderr)) -> Credentials:
    from ..aws import sts
    from ..store.vault import Vault

    config = AwsConfig()
    profile = base_profile(config, name)
    vault = Vault()
    old = vault.get_key(name)
    if old is None:
        raise KeyringError(f"no key stored for profile {name!r}; rotate works on keys in the key store "
                           f"(`awsenv import {name}` or `awsenv add {name}` first)")
    region = profile.region
    user = sts.user_name(old, region)
    resolver = Resolver(config, vault)
    signer = iam_credentials(resolver, profile, old, Request(name, mfa_code=mfa_code))
    resolver.save()
    keys = sts.list_access_keys(signer, region, user)
    if len(keys) >= 2:
        ids = " and ".join(k["AccessKeyId"] for k in keys)
        raise AwsenvError(f"IAM user {user} already has two access keys ({ids}); delete the unused one first")

    new = sts.create_access_key(signer, region, user)
    say(f"created access key {new.access_key_id} for IAM user {user}; verifying it")
    try:
        _verify(new, region)
        vault.set_key(name, new)
    except (AwsenvError, KeyboardInterrupt) as err:
        try:
            sts.delete_access_key(signer, region, user, new.access_key_id)
        except AwsenvError as cleanup:
            say(f"could not delete the new key {new.access_key_id}: {cleanup}; delete it in IAM")
        if isinstance(err, KeyboardInterrupt):
            say(f"rotation of {name!r} cancelled, the old key {old.access_key_id} is kept")
            raise
        raise AwsenvError(f"rotation of {name!r} failed, the old key {old.access_key_id} is kept: {err}") from None

    try:
        sts.delete_access_key(signer, region, user, old.access_key_id)
    except AwsenvError as err:
        raise AwsenvError(
            f"the new key {new.access_key_id} is stored and works, but deleting the old key "
            f"{old.access_key_id} failed: {err}; delete it in IAM"
        ) from None
    drop_sessions(vault, config.built_on(name))
    say(f"rotated {name!r}: {old.access_key_id} deleted, {new.access_key_id} stored in {vault.place}")
    return new


def _verify(key: Credentials, region: str | None) -> None:
    from ..aws import sts

    deadline = time.monotonic() + env_seconds("AWSENV_ROTATE_VERIFY_SECONDS", VERIFY_SECONDS)
    delay = 0.5
    while True:
        try:
            sts.caller_identity(key, region)
            return
        except AwsenvError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 4)


# doctor -----------------------------------------------------------------------------
# Backends known to encrypt what they store; anything else is reported.
ENCRYPTING_BACKENDS = (
    "keyring.backends.SecretService.Keyring",
    "keyring.backends.kwallet.DBusKeyring",
    "keyring.backends.kwallet.DBusKeyringKWallet4",
    "keyring.backends.macOS.Keyring",
    "keyring.backends.Windows.WinVaultKeyring",
    "keyrings.alt.file.EncryptedKeyring",
)


def backend_findings(backend) -> list[dict]:
    """What is wrong with the keyring library's backend; None (another store) is fine:
    the file store and pass encrypt."""
    if backend is None:
        return []
    names = [backend_name(b) for b in getattr(backend, "backends", None) or [backend]]
    found = []
    for name in names:
        if name in PLAINTEXT_BACKENDS:
            found.append(finding("-", "keyring-backend", "high", f"the keyring backend {name} stores secrets unencrypted"))
        elif name not in ENCRYPTING_BACKENDS:
            found.append(finding("-", "keyring-backend", "medium",
                                 f"the keyring backend {name} is not one awsenv knows to encrypt what it stores"))
    return found


def finding(profile: str, check: str, severity: str, message: str) -> dict:
    return {"profile": profile, "check": check, "severity": severity, "message": message}


def doctor(mfa_code: str | None) -> tuple[str, list[dict], list[dict]]:
    """The store in use, the findings, and the checks that could not run (skipped, not
    failed). A store that can't be opened (no keyring, a locked file store) is the
    `keyring-backend` finding; every check that needs no store still runs."""
    from ..store.vault import Vault, chosen

    config = AwsConfig()
    vault: Vault | None
    vault = Vault()  # None below when the store can't be opened
    findings: list[dict] = []
    skipped: list[dict] = []

    store = chosen()
    try:
        vault.open()
        store = vault.describe()
        findings += backend_findings(getattr(vault.store, "backend", None))
    except KeyringError as err:
        findings.append(finding("-", "keyring-backend", "high",
                                f"{err}; the checks that read the store did not run"))
        vault = None
    findings += sso_findings(config)

    sources = set()
    for name in config.names():
        try:
            chain = config.chain(name)
        except AwsenvError as err:
            findings.append(finding(name, "config", "high", str(err)))
            continue
        if len(chain) > 1:
            sources.add(chain[-1].name)
            try:
                findings += _chained_duration(chain[0], chain)
            except AwsenvError as err:
                findings.append(finding(name, "config", "high", str(err)))

    resolver = Resolver(config, vault)
    offline: Unreachable | None = None
    for name in config.names():
        profile = config.profile(name)
        sentence = profile.unsupported()
        if sentence is not None:
            skipped.append({"profile": name, "check": "all", "reason": sentence})
            continue
        if profile.is_role or profile.is_sso:
            continue
        try:
            stored = vault.get_key(name) if vault is not None else None
        except KeyringError as err:  # a damaged item: report it, audit the rest
            findings.append(finding(name, "missing-key", "high", str(err)))
            continue
        plain = config.plaintext_key(name)
        if plain:
            findings.append(finding(name, "plaintext-key", "high",
                                    f"access key {plain[0]} lies in plaintext in {config.credentials_file}; "
                                    f"run `awsenv import {name} --delete-plaintext`"))
        key = stored or (Credentials(*plain) if plain else None)
        if key is None and not profile.get("credential_process"):
            if vault is not None and (name in sources or profile.mfa_serial):
                roles = sorted(n for n in config.built_on(name) if n != name)
                via = f" (needed by {', '.join(roles)})" if roles else ""
                findings.append(finding(name, "missing-key", "high",
                                        f"no key for profile {name!r}{via}; run `awsenv add {name}`"))
            continue
        if key is None or profile.get("credential_process"):
            continue  # key is None here only beside a credential_process
        if not profile.mfa_serial:
            findings.append(finding(name, "no-mfa", "medium",
                                    f"base profile {name!r} has no mfa_serial: its key alone is enough"))
        if offline is not None:
            continue  # said once below, not once per profile
        try:
            findings += _iam_checks(resolver, profile, key, mfa_code, skipped)
        except Unreachable as err:
            offline = err
            skipped.append({"profile": "-", "check": "iam",
                            "reason": f"{err}; the IAM checks (multiple-keys, key-age) did not run"})
    try:
        resolver.save()
    except AwsenvError:
        pass
    return store, findings, skipped


def sso_findings(config: AwsConfig) -> list[dict]:
    """Plaintext tokens the AWS CLI left, sign-ins that cannot be renewed, and SSO
    profiles whose sso-session is missing or incomplete."""
    from ..aws.sso import REFRESH_SCOPE
    from ..store.clicache import plaintext_files

    found = [
        finding("-", "sso-plaintext", "high",
                f"{path} holds an IAM Identity Center token or client secret in plaintext; move a valid "
                "one into the key store with `awsenv import --delete-plaintext`, or delete the file")
        for path in plaintext_files()
    ]
    legacy = set()

    def broken(profile: Profile, err: AwsenvError) -> None:
        found.append(finding(profile.name, "sso-session", "high", str(err)))

    for profile, portal in sso_profiles(config, broken):
        name = profile.name
        if not portal.session and portal.start_url not in legacy:
            legacy.add(portal.start_url)
            found.append(finding(name, "sso-no-refresh", "medium",
                                 f"profile {name!r} uses the legacy sso_start_url form, whose sign-in cannot be "
                                 "renewed: you sign in again each time it ends (8 hours by default); "
                                 "move it to an [sso-session] with sso_registration_scopes = sso:account:access"))
    for session in config.sso_sessions:
        try:
            portal = config.session_portal(session)
        except AwsenvError as err:
            found.append(finding(f"sso-session {session}", "sso-session", "high", str(err)))
            continue
        # No scopes at all is sso:account:access for the authorization-code sign-in (the
        # AWS CLI's default): only scopes that leave it out cost the renewal.
        if portal.scopes and REFRESH_SCOPE not in portal.scopes:
            found.append(finding(f"sso-session {session}", "sso-no-refresh", "medium",
                                 f"[sso-session {session}]'s sso_registration_scopes leave out {REFRESH_SCOPE}: its "
                                 "sign-in cannot be renewed, so you sign in again each time it ends (8 hours by default)"))
    return found


def _chained_duration(profile: Profile, chain: list[Profile]) -> list[dict]:
    wanted = profile.duration_seconds
    if not wanted or wanted <= CHAINED_ROLE_CAP:
        return []
    source = chain[1]
    serial = chain_serial(chain)
    direct = not source.is_role and profile.mfa_serial
    if direct or (not source.is_role and serial is None):
        return []
    return [finding(profile.name, "chained-duration", "medium",
                    f"role {profile.name!r} asks for {wanted}s but is reached from a session, "
                    f"which AWS caps at {CHAINED_ROLE_CAP}s")]


def _iam_checks(resolver: Resolver, profile: Profile, key: Credentials, mfa_code: str | None,
                skipped: list[dict]) -> list[dict]:
    from ..aws import sts

    name = profile.name
    try:
        user = sts.user_name(key, profile.region)
        signer = iam_credentials(resolver, profile, key, Request(name, mfa_code=mfa_code, prompt=False))
        keys = sts.list_access_keys(signer, profile.region, user)
    except Unreachable:
        raise  # the caller says it once for every profile
    except AwsenvError as err:
        for check in ("multiple-keys", "key-age"):
            skipped.append({"profile": name, "check": check, "reason": str(err)})
        return []
    found = []
    active = [k for k in keys if k.get("Status", "Active") == "Active"]
    if len(active) > 1:
        ids = ", ".join(k["AccessKeyId"] for k in active)
        found.append(finding(name, "multiple-keys", "medium", f"IAM user {user} has {len(active)} active keys: {ids}"))
    max_days = env_seconds("AWSENV_KEY_MAX_AGE_DAYS", 90, unit="days")
    now = time.time()
    for k in keys:
        created = k.get("CreateDate")
        if created is None:
            continue
        age_days = (now - created.timestamp()) / 86400
        if age_days > max_days:
            found.append(finding(name, "key-age", "medium",
                                 f"access key {k['AccessKeyId']} of IAM user {user} is {int(age_days)} days old "
                                 f"(more than {max_days}); run `awsenv rotate {name}`"))
    return found

