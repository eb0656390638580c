"""IAM Identity Center (issue 10): sign-in through the OIDC device flow against the
stand-in (tests/sso_server.py), tokens in the real keyring, role credentials in every
command, the prompt hook in a real shell, logout, import, profiles and doctor.

STS stays on moto; `sso` and `sso-oidc` go to the stand-in through
AWS_ENDPOINT_URL_SSO and AWS_ENDPOINT_URL_SSO_OIDC. The person at the browser is a
BROWSER script that visits the verification URL, which approves the sign-in."""
from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import urllib.request

import pytest

from sso_server import ACCOUNTS, REGION, START_URL, SsoServer


@pytest.fixture
def portal():
    server = SsoServer().start()
    yield server
    server.stop()


def oidc(server: SsoServer, service: str):
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        service, region_name=REGION, endpoint_url=server.url, config=Config(signature_version=UNSIGNED)
    )


# 1. the stand-in, driven by botocore's own clients --------------------------------------
def test_stand_in_follows_botocore_models_and_checks_what_it_is_sent(portal):
    from botocore.exceptions import ClientError

    client = oidc(portal, "sso-oidc")
    reg = client.register_client(clientName="t", clientType="public", scopes=["sso:account:access"])
    with pytest.raises(ClientError) as bad_secret:
        client.start_device_authorization(clientId=reg["clientId"], clientSecret="wrong", startUrl=START_URL)
    assert bad_secret.value.response["Error"]["Code"] == "InvalidClientException"
    auth = client.start_device_authorization(
        clientId=reg["clientId"], clientSecret=reg["clientSecret"], startUrl=START_URL)
    grant = dict(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                 grantType="urn:ietf:params:oauth:grant-type:device_code")
    with pytest.raises(ClientError) as pending:
        client.create_token(deviceCode=auth["deviceCode"], **grant)
    assert pending.value.response["Error"]["Code"] == "AuthorizationPendingException"
    with pytest.raises(ClientError) as unknown:
        client.create_token(deviceCode="not-a-device-code", **grant)
    assert unknown.value.response["Error"]["Code"] == "InvalidGrantException"
    urllib.request.urlopen(auth["verificationUriComplete"]).read()
    time.sleep(1)  # the interval
    token = client.create_token(deviceCode=auth["deviceCode"], **grant)
    assert token["refreshToken"] and token["expiresIn"] == portal.token_ttl

    sso = oidc(portal, "sso")
    with pytest.raises(ClientError) as unauthorized:
        sso.get_role_credentials(accessToken="nope", accountId="111111111111", roleName="ReadOnly")
    assert unauthorized.value.response["Error"]["Code"] == "UnauthorizedException"
    with pytest.raises(ClientError) as forbidden:
        sso.get_role_credentials(accessToken=token["accessToken"], accountId="222222222222",
                                 roleName="AdministratorAccess")
    assert forbidden.value.response["Error"]["Code"] == "ForbiddenException"
    creds = sso.get_role_credentials(accessToken=token["accessToken"], accountId="111111111111",
                                     roleName="ReadOnly")["roleCredentials"]
    assert creds["accessKeyId"].startswith("ASIA") and creds["expiration"] > time.time() * 1000
    pages = sso.get_paginator("list_accounts").paginate(accessToken=token["accessToken"])
    assert [a["accountId"] for page in pages for a in page["accountList"]] == list(ACCOUNTS)
    roles = sso.list_account_roles(accessToken=token["accessToken"], accountId="111111111111", maxResults=10)
    assert [r["roleName"] for r in roles["roleList"]] == ACCOUNTS["111111111111"][1]
    sso.logout(accessToken=token["accessToken"])
    with pytest.raises(ClientError):
        sso.list_accounts(accessToken=token["accessToken"])
    with pytest.raises(ClientError) as refresh:
        client.create_token(refreshToken=token["refreshToken"], **{**grant, "grantType": "refresh_token"})
    assert refresh.value.response["Error"]["Code"] == "InvalidGrantException"
    assert portal.violations == []


# 2. config ------------------------------------------------------------------------------
SSO_CONFIG = f"""
[sso-session corp]
sso_start_url = {START_URL}
sso_region = {REGION}
sso_registration_scopes = sso:account:access

[profile sandbox]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = AdministratorAccess
region = eu-central-1

[profile sandbox-ro]
sso_session = corp
sso_account_id = 111111111111
sso_role_name = ReadOnly

[profile legacy]
sso_start_url = {START_URL}
sso_region = {REGION}
sso_account_id = 222222222222
sso_role_name = ReadOnly

[profile noaccess]
sso_session = corp
sso_account_id = 222222222222
sso_role_name = AdministratorAccess

[profile sso-dev]
role_arn = arn:aws:iam::123456789012:role/dev
source_profile = sandbox

[profile sso-deep]
role_arn = arn:aws:iam::123456789012:role/prod
source_profile = sso-dev
"""


def test_config_reads_sso_sessions_legacy_profiles_and_chains(tmp_path):
    from awsenv.config import AwsConfig

    path = tmp_path / "config"
    path.write_text(SSO_CONFIG + "\n[profile lost]\nsso_session = nowhere\nsso_account_id = 1\nsso_role_name = r\n")
    config = AwsConfig(str(path), str(tmp_path / "credentials"))
    assert list(config.sso_sessions) == ["corp"]
    assert "corp" not in config.names()  # a session is not a profile
    sandbox = config.profile("sandbox")
    assert sandbox.is_sso and not sandbox.is_role
    portal = config.portal(sandbox)
    assert (portal.name, portal.start_url, portal.region, portal.scopes, portal.session) == (
        "corp", START_URL, REGION, ("sso:account:access",), True)
    assert config.portal(config.profile("sandbox-ro")).name == "corp"
    legacy = config.portal(config.profile("legacy"))
    assert (legacy.name, legacy.region, legacy.scopes, legacy.session) == (START_URL, REGION, (), False)
    assert [p.name for p in config.chain("sso-deep")] == ["sso-deep", "sso-dev", "sandbox"]
    assert config.built_on("sandbox") == {"sandbox", "sso-dev", "sso-deep"}
    assert not config.profile("sso-dev").is_sso
    with pytest.raises(Exception) as lost:
        config.portal(config.profile("lost"))
    assert "no [sso-session nowhere]" in str(lost.value) and f"{path}:" in str(lost.value)
