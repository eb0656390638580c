"""The loopback credential endpoint (issue 9): `use --server` and `exec --server`, with
real consumers: the AWS CLI, boto3, the JavaScript SDK v3 and real shells, against
moto over HTTP. The endpoint follows botocore's ContainerProvider rules."""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import BIN, require
from test_core import env_after
from test_structure import wait_for_agent

ROLE = "arn:aws:sts::123456789012:assumed-role/{}/"
NODE_DIR = Path(__file__).parent / "node"
STATIC = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def served(world, profile: str, *args: str, env: dict | None = None) -> dict:
    done = world.ok("use", profile, "--server", "--shell", "bash", *args, env=env)
    return env_after(world, done.stdout)


def fetch(uri: str, token: str | None, host: str | None = None, path: str | None = None):
    parts = urllib.parse.urlsplit(uri)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Host": host or parts.netloc}
    if token is not None:
        headers["Authorization"] = token
    conn.request("GET", path or parts.path, headers=headers)
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    return response.status, dict(response.getheaders()), body


def caller(world, env: dict, *argv: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in world.env.items() if k not in STATIC}
    return subprocess.run(argv, env={**clean, **env}, capture_output=True, text=True, timeout=120)


def aws_identity(world, env: dict) -> str:
    done = caller(world, env, str(BIN / "aws"), "sts", "get-caller-identity", "--output", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["Arn"]


def test_use_server_points_the_aws_cli_at_the_endpoint_with_no_static_key(world):
    world.add_keys()
    env = served(world, "dev", "--mfa-code", "123456")
    for name in STATIC:
        assert name not in env
    uri = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    assert uri.startswith("http://127.0.0.1:") and len(env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]) >= 22
    assert aws_identity(world, env).startswith(ROLE.format("dev"))
    # The prompt's time is the MFA session's (12 h), not the role's hour.
    assert int(env["AWSENV_EXPIRES"]) - time.time() > 11 * 3600
