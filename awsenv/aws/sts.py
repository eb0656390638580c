"""The AWS clients: STS, IAM, SSO and SSO OIDC calls through botocore, which is imported here,
inside the functions, so that the cached path never pays for it.

Endpoints come from AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL_IAM /
AWS_ENDPOINT_URL_SSO / AWS_ENDPOINT_URL_SSO_OIDC, which botocore honours natively.
"""
from __future__ import annotations

import os

from ..core.creds import Credentials
from ..core.errors import AwsError, MfaError, Refused, Unreachable

# A dead endpoint must be reported in seconds, not after minutes of retries.
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 4  # STS answers in well under a second; a silent one costs 2 × 4 s
MAX_ATTEMPTS = 2


class MfaRejected(MfaError, Refused):
    """STS refused the MFA code; a terminal may ask again."""


class SsoRefused(Refused):
    """IAM Identity Center answered with an error; `code` says which, for sso.py to act on."""

    def __init__(self, what: str, code: str, detail: str) -> None:
        super().__init__(f"{what}: {code}: {detail}" if detail else f"{what}: {code}")
        self.code = code


class Endpoints:
    """Where AWS is for one caller, given explicitly: the settings a shell had in its
    environment (AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>, AWS_CA_BUNDLE,
    AWS_STS_REGIONAL_ENDPOINTS, AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT,
    AWS_REGION, AWS_DEFAULT_REGION). The agent renews for shells that may differ, from
    threads that run beside the endpoint's: each renewal's clients are built from its
    own, and the process environment is never changed. None, wherever an Endpoints is
    taken, means this process's environment, which botocore reads by itself."""

    # botocore's session variables for what has no argument of create_client or Config
    SESSION = {"sts_regional_endpoints": "AWS_STS_REGIONAL_ENDPOINTS"}
    FLAGS = {"use_fips_endpoint": "AWS_USE_FIPS_ENDPOINT", "use_dualstack_endpoint": "AWS_USE_DUALSTACK_ENDPOINT"}

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.key = tuple(sorted(self.env.items()))

    def url(self, service: str) -> str | None:
        """AWS_ENDPOINT_URL_<SERVICE> (sso-oidc: SSO_OIDC), else AWS_ENDPOINT_URL."""
        return self.env.get("AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")) or self.env.get("AWS_ENDPOINT_URL")

    def region(self) -> str | None:
        return self.env.get("AWS_REGION") or self.env.get("AWS_DEFAULT_REGION")

    def flags(self) -> dict[str, bool]:
        return {option: self.env[name].lower() == "true" for option, name in self.FLAGS.items() if name in self.env}


_botocore = None
_sessions: dict = {}  # Endpoints.key -> a botocore session with those settings


def _botocore_session(endpoints: Endpoints | None = None):
    """One botocore session per run: it loads each service model once. (boto3's
    Session would wrap the same thing and cost an extra import.) A caller's Endpoints
    get a session of their own that shares the first one's loaded models."""
    global _botocore
    if _botocore is None:
        import botocore.session

        # A stale AWS_PROFILE from the calling shell must not steer our explicit clients:
        # the session reads no profile from the environment (which stays as it is).
        _botocore = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    if endpoints is None:
        return _botocore
    if endpoints.key not in _sessions:
        import botocore.session

        session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        session.register_component("data_loader", _botocore.get_component("data_loader"))
        for variable, name in Endpoints.SESSION.items():
            if name in endpoints.env:
                session.set_config_variable(variable, endpoints.env[name])
        _sessions[endpoints.key] = session
    return _sessions[endpoints.key]


def client(service: str, creds: Credentials | None, region: str | None, unsigned: bool = False,
           endpoints: Endpoints | None = None):
    """A client signed by `creds`, or by the environment's credentials when None, or
    not signed at all (`unsigned`: the Identity Center calls take a token instead, and
    must not go looking for credentials in the environment or the config). `endpoints`:
    where AWS is, when not where this process's environment says."""
    try:
        from botocore import UNSIGNED
        from botocore.config import Config

        session = _botocore_session(endpoints)
    except ImportError as err:
        raise AwsError(f"cannot load botocore: {err}") from None
    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        **({"signature_version": UNSIGNED} if unsigned else {}),
        **(endpoints.flags() if endpoints is not None else {}),
    )
    kwargs: dict = {}
    if creds is not None:
        kwargs = {
            "aws_access_key_id": creds.access_key_id,
            "aws_secret_access_key": creds.secret_access_key,
            "aws_session_token": creds.session_token,
        }
    if endpoints is None:
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    else:
        region = region or endpoints.region() or "us-east-1"
        url, bundle = endpoints.url(service), endpoints.env.get("AWS_CA_BUNDLE")
        kwargs.update({"endpoint_url": url} if url else {}, **({"verify": bundle} if bundle else {}))
    try:
        return session.create_client(service, region_name=region, config=config, **kwargs)
    except Exception as err:  # noqa: BLE001 - botocore config errors are one line too
        raise AwsError(f"cannot set up the {service.upper()} client: {err}") from None


def _call(what: str, fn, **params):
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )
    from botocore.parsers import ResponseParserError

    try:
        return fn(**params)
    except ClientError as err:
        error = err.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = (error.get("Message") or "").splitlines()[0] if error.get("Message") else ""
        if code == "AccessDenied" and "MultiFactorAuthentication" in message:
            raise MfaRejected(f"{what}: the MFA code was rejected ({message})") from None
        if code in ("InvalidClientTokenId", "SignatureDoesNotMatch"):
            raise Refused(
                f"{what}: AWS does not accept the access key ({code}); it may be expired, "
                "deactivated or deleted"
            ) from None
        if code == "ExpiredToken":
            raise Refused(f"{what}: the session has expired (ExpiredToken)") from None
        raise Refused(f"{what}: {code}: {message}" if message else f"{what}: {code}") from None
    except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as err:
        endpoint = getattr(err, "kwargs", {}).get("endpoint_url", "")
        raise Unreachable(f"{what}: AWS is unreachable {endpoint}".rstrip()) from None
    except BotoCoreError as err:
        raise AwsError(f"{what}: {'; '.join(str(err).splitlines())}") from None
    except ResponseParserError:
        raise AwsError(f"{what}: the answer was not AWS's (a proxy or a wrong endpoint?)") from None


def _session(response: dict) -> Credentials:
    c = response["Credentials"]
    return Credentials(
        c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"], int(c["Expiration"].timestamp())
    )


def get_session_token(
    key: Credentials, region: str | None, duration: int, serial: str | None, code: str | None,
    endpoints: Endpoints | None = None,
) -> Credentials:
    params: dict = {"DurationSeconds": duration}
    if serial:
        params.update(SerialNumber=serial, TokenCode=code)
    sts = client("sts", key, region, endpoints=endpoints)
    return _session(_call("GetSessionToken", sts.get_session_token, **params))


def assume_role(
    creds: Credentials,
    region: str | None,
    role_arn: str,
    session_name: str,
    duration: int,
    external_id: str | None = None,
    serial: str | None = None,
    code: str | None = None,
    endpoints: Endpoints | None = None,
) -> Credentials:
    params: dict = {"RoleArn": role_arn, "RoleSessionName": session_name, "DurationSeconds": duration}
    if external_id:
        params["ExternalId"] = external_id
    if serial:
        params.update(SerialNumber=serial, TokenCode=code)
    sts = client("sts", creds, region, endpoints=endpoints)
    try:
        return _session(_call(f"AssumeRole {role_arn}", sts.assume_role, **params))
    except AwsError as err:
        if "AccessDenied" in str(err) and not isinstance(err, MfaRejected):
            raise Refused(f"access denied assuming role {role_arn}") from None
        raise


def caller_identity(creds: Credentials | None, region: str | None) -> dict:
    sts = client("sts", creds, region)
    response = _call("GetCallerIdentity", sts.get_caller_identity)
    return {k: response[k] for k in ("UserId", "Account", "Arn")}


def user_name(key: Credentials, region: str | None) -> str:
    """The IAM user a long-term key belongs to, from GetCallerIdentity signed by that key.
    Every IAM call then names the user explicitly: an MFA session can't be traced back
    to its user everywhere (the test emulator can't)."""
    arn = caller_identity(key, region)["Arn"]
    kind, _, path = arn.partition(":user/")
    if not path:
        raise AwsError(f"the key does not belong to an IAM user ({arn})")
    return path.rsplit("/", 1)[-1]


def list_access_keys(creds: Credentials, region: str | None, user: str) -> list[dict]:
    iam = client("iam", creds, region)
    response = _call("ListAccessKeys", iam.list_access_keys, UserName=user)
    return response.get("AccessKeyMetadata", [])


def create_access_key(creds: Credentials, region: str | None, user: str) -> Credentials:
    iam = client("iam", creds, region)
    key = _call("CreateAccessKey", iam.create_access_key, UserName=user)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def delete_access_key(creds: Credentials, region: str | None, user: str, key_id: str) -> None:
    iam = client("iam", creds, region)
    _call("DeleteAccessKey", iam.delete_access_key, UserName=user, AccessKeyId=key_id)


CONSOLE_POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'


def get_federation_token(key: Credentials, region: str | None, name: str, duration: int) -> Credentials:
    """Console credentials for a base profile. The policy passed only bounds the session:
    what it may do is the intersection with the user's own policies."""
    sts = client("sts", key, region)
    response = _call(
        "GetFederationToken", sts.get_federation_token, Name=name[:32], DurationSeconds=duration,
        Policy=CONSOLE_POLICY,
    )
    return _session(response)


# IAM Identity Center ---------------------------------------------------------------------
def _sso_call(what: str, fn, **params):
    """`_call`, with Identity Center's errors kept apart by code (SsoRefused): a pending
    sign-in, a denied one and an expired token each lead somewhere else."""
    from botocore.exceptions import ClientError

    def attempt(**kwargs):
        try:
            return fn(**kwargs)
        except ClientError as err:
            error = err.response.get("Error", {})
            detail = err.response.get("error_description") or error.get("Message") or ""
            raise SsoRefused(what, error.get("Code", "Unknown"), (detail.splitlines() or [""])[0]) from None

    return _call(what, attempt, **params)


_portal_clients: dict = {}


def _unsigned(service: str, region: str, endpoints: Endpoints | None = None):
    """One client per service, region and endpoints for a run: a sign-in polls
    CreateToken many times."""
    key = (service, region, endpoints.key if endpoints is not None else None)
    if key not in _portal_clients:
        _portal_clients[key] = client(service, None, region, unsigned=True, endpoints=endpoints)
    return _portal_clients[key]


def register_client(region: str, name: str, scopes: tuple, **auth_code) -> dict:
    """`auth_code`: grantTypes, redirectUris and issuerUrl, for a client of the
    authorization-code sign-in."""
    oidc = _unsigned("sso-oidc", region)
    params: dict = {"clientName": name, "clientType": "public", **auth_code}
    if scopes:
        params["scopes"] = list(scopes)
    return _sso_call("RegisterClient", oidc.register_client, **params)


def oidc_base_url(region: str) -> str:
    """Where sso-oidc is for `region`, as botocore resolves it (AWS_ENDPOINT_URL_SSO_OIDC,
    FIPS, dual-stack): the base of the /authorize page, which the model does not
    describe. A RegisterClient is built and stopped before it is sent, as the AWS CLI
    finds it."""
    from urllib.parse import urlsplit

    from botocore.awsrequest import AWSResponse

    oidc = client("sso-oidc", None, region, unsigned=True)
    found: list[str] = []

    def stop(params, **_kwargs):
        parts = urlsplit(params["url"])
        found.append(f"{parts.scheme}://{parts.netloc}")
        return AWSResponse(None, 200, {}, None), {}

    oidc.meta.events.register("before-call", stop)
    oidc.register_client(clientName="awsenv", clientType="public")
    return found[0]


def start_device_authorization(region: str, client_id: str, secret: str, start_url: str) -> dict:
    oidc = _unsigned("sso-oidc", region)
    return _sso_call(
        "StartDeviceAuthorization", oidc.start_device_authorization,
        clientId=client_id, clientSecret=secret, startUrl=start_url,
    )


def create_token(region: str, client_id: str, secret: str, endpoints: Endpoints | None = None, **grant) -> dict:
    oidc = _unsigned("sso-oidc", region, endpoints)
    return _sso_call("CreateToken", oidc.create_token, clientId=client_id, clientSecret=secret, **grant)


def role_credentials(region: str, token: str, account: str, role: str,
                     endpoints: Endpoints | None = None) -> Credentials:
    portal = _unsigned("sso", region, endpoints)
    c = _sso_call(
        "GetRoleCredentials", portal.get_role_credentials, accessToken=token, accountId=account, roleName=role
    )["roleCredentials"]
    return Credentials(c["accessKeyId"], c["secretAccessKey"], c["sessionToken"], int(c["expiration"]) // 1000)


def _pages(what: str, fn, name: str, **params) -> list[dict]:
    items: list[dict] = []
    while True:
        response = _sso_call(what, fn, **params)
        items += response.get(name, [])
        if not response.get("nextToken"):
            return items
        params["nextToken"] = response["nextToken"]


def list_accounts(region: str, token: str) -> list[dict]:
    portal = _unsigned("sso", region)
    return _pages("ListAccounts", portal.list_accounts, "accountList", accessToken=token)


def list_account_roles(region: str, token: str, account: str) -> list[dict]:
    portal = _unsigned("sso", region)
    return _pages("ListAccountRoles", portal.list_account_roles, "roleList", accessToken=token, accountId=account)


def sso_logout(region: str, token: str) -> None:
    portal = _unsigned("sso", region)
    _sso_call("Logout", portal.logout, accessToken=token)
