"""The only module that talks to AWS. botocore (boto3's core) is imported here,
inside the functions, so that the cached path never pays for it.

Endpoints come from AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL_IAM /
AWS_ENDPOINT_URL_SSO / AWS_ENDPOINT_URL_SSO_OIDC, which botocore honours natively.
"""
from __future__ import annotations

import os

from .creds import Credentials
from .errors import AwsError, MfaError, Refused, Unreachable

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


_botocore = None


def _botocore_session():
    """One botocore session per run: it loads each service model once. (boto3's
    Session would wrap the same thing and cost an extra import.)"""
    global _botocore
    if _botocore is None:
        import botocore.session

        # A stale AWS_PROFILE from the calling shell must not steer our explicit clients.
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(name, None)
        _botocore = botocore.session.get_session()
    return _botocore


def client(service: str, creds: Credentials | None, region: str | None, unsigned: bool = False):
    """A client signed by `creds`, or by the environment's credentials when None, or
    not signed at all (`unsigned`: the Identity Center calls take a token instead, and
    must not go looking for credentials in the environment or the config)."""
    try:
        from botocore import UNSIGNED
        from botocore.config import Config

        session = _botocore_session()
    except ImportError as err:
        raise AwsError(f"cannot load botocore: {err}") from None
    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        **({"signature_version": UNSIGNED} if unsigned else {}),
    )
    kwargs = {}
    if creds is not None:
        kwargs = {
            "aws_access_key_id": creds.access_key_id,
            "aws_secret_access_key": creds.secret_access_key,
            "aws_session_token": creds.session_token,
        }
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
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
    key: Credentials, region: str | None, duration: int, serial: str | None, code: str | None
) -> Credentials:
    params: dict = {"DurationSeconds": duration}
    if serial:
        params.update(SerialNumber=serial, TokenCode=code)
    sts = client("sts", key, region)
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
) -> Credentials:
    params: dict = {"RoleArn": role_arn, "RoleSessionName": session_name, "DurationSeconds": duration}
    if external_id:
        params["ExternalId"] = external_id
    if serial:
        params.update(SerialNumber=serial, TokenCode=code)
    sts = client("sts", creds, region)
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


def _unsigned(service: str, region: str):
    """One client per service and region for a run: a sign-in polls CreateToken many times."""
    key = (service, region)
    if key not in _portal_clients:
        _portal_clients[key] = client(service, None, region, unsigned=True)
    return _portal_clients[key]


def register_client(region: str, name: str, scopes: tuple) -> dict:
    oidc = _unsigned("sso-oidc", region)
    params: dict = {"clientName": name, "clientType": "public"}
    if scopes:
        params["scopes"] = list(scopes)
    return _sso_call("RegisterClient", oidc.register_client, **params)


def start_device_authorization(region: str, client_id: str, secret: str, start_url: str) -> dict:
    oidc = _unsigned("sso-oidc", region)
    return _sso_call(
        "StartDeviceAuthorization", oidc.start_device_authorization,
        clientId=client_id, clientSecret=secret, startUrl=start_url,
    )


def create_token(region: str, client_id: str, secret: str, **grant) -> dict:
    oidc = _unsigned("sso-oidc", region)
    return _sso_call("CreateToken", oidc.create_token, clientId=client_id, clientSecret=secret, **grant)


def role_credentials(region: str, token: str, account: str, role: str) -> Credentials:
    portal = _unsigned("sso", region)
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
