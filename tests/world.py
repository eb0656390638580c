"""The real parts the tests (and `make demo`) run against:

- a moto server on 127.0.0.1, over HTTP, with a spy that records which STS/IAM
  action each request made and which access key signed it;
- a private D-Bus session bus with gnome-keyring's Secret Service on it;
- an AWS account with an IAM user, a virtual MFA device and roles, and a config.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ACCOUNT = "123456789012"
TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
    '"Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}'
)
INVALID_TOKEN = ("InvalidClientTokenId", "The security token included in the request is invalid.")
MFA_FAILED = ("AccessDenied", "MultiFactorAuthentication failed with invalid MFA one time pass code.")


def refusal(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode()
SIGNER = re.compile(r"Credential=([A-Z0-9]+)/(?:\d{8}/([a-z0-9-]+)/)?")


@dataclass
class Call:
    action: str
    key_id: str
    params: dict
    region: str = ""  # of the signature's scope


@dataclass
class MotoServer:
    """moto's WSGI app behind werkzeug on 127.0.0.1, wrapped to record calls."""

    calls: list[Call] = field(default_factory=list)
    url: str = ""
    # Fault injection: a call this returns True for is answered 403 InvalidClientTokenId,
    # as AWS answers a key it does not (yet) know; a (code, message) pair gives that error.
    refuse: object = None

    def start(self) -> MotoServer:
        import logging

        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        app = DomainDispatcherApplication(create_backend_app)

        def spy(environ, start_response):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            import io

            environ["wsgi.input"] = io.BytesIO(body)
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace")).items()}
            action = target.rpartition(".")[2] if target else params.get("Action", "")
            signer = SIGNER.search(environ.get("HTTP_AUTHORIZATION", ""))
            if action and not environ.get("PATH_INFO", "").startswith("/moto-api"):
                call = Call(action, signer.group(1) if signer else "", params, (signer.group(2) or "") if signer else "")
                self.calls.append(call)
                refused = self.refuse(call) if self.refuse is not None else None
                if refused:
                    start_response("403 Forbidden", [("Content-Type", "text/xml")])
                    return [refusal(*(INVALID_TOKEN if refused is True else refused))]
            return app(environ, start_response)

        self._server = make_server("127.0.0.1", 0, spy, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(self.url + "/moto-api/reset", method="POST")).read()
        self.calls.clear()
        self.refuse = None

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is None:  # never started
            return
        server.shutdown()
        server.server_close()

    def actions(self) -> list[tuple[str, str]]:
        return [(c.action, c.key_id) for c in self.calls]


class SecretService:
    """dbus-daemon + gnome-keyring-daemon, private to one test or one demo."""

    def __init__(self, runtime_dir: Path, home: Path):
        self.runtime_dir = runtime_dir
        self.home = home
        self.procs: list[subprocess.Popen] = []
        self.address = ""

    def env(self) -> dict[str, str]:
        return {
            "DBUS_SESSION_BUS_ADDRESS": self.address,
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
        }

    def start(self) -> SecretService:
        for tool in ("dbus-daemon", "gnome-keyring-daemon"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed (apt: dbus, gnome-keyring)")
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        bus = subprocess.Popen(
            [
                "dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1",
                f"--address=unix:path={self.runtime_dir}/bus",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        self.procs.append(bus)
        self.address = bus.stdout.readline().decode().strip()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            **self.env(),
        }
        keyring = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
        self.procs.append(keyring)
        keyring.stdin.write(b"throwaway-keyring-password")
        keyring.stdin.close()
        self._wait_for_service(env)
        return self

    def _wait_for_service(self, env: dict[str, str]) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
                 "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
                 "string:org.freedesktop.secrets"],
                env=env, capture_output=True, text=True,
            )
            if "boolean true" in probe.stdout and self._has_default_collection(env):
                return
            time.sleep(0.05)
        raise RuntimeError("gnome-keyring-daemon did not register org.freedesktop.secrets with its login keyring")

    @staticmethod
    def _has_default_collection(env: dict[str, str]) -> bool:
        """The daemon owns its bus name a moment before the login keyring it unlocked is
        the default collection; a client in between would ask it to create one, which
        needs a prompt, and the prompt is dismissed ("Prompt dismissed")."""
        alias = subprocess.run(
            ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.secrets",
             "/org/freedesktop/secrets", "org.freedesktop.Secret.Service.ReadAlias", "string:default"],
            env=env, capture_output=True, text=True,
        )
        return "/org/freedesktop/secrets/collection/" in alias.stdout

    def stop(self) -> None:
        from awsenv.store import agentclient as agent

        # The agent awsenv started for this HOME goes first; it would exit by itself
        # within a second of the runtime directory vanishing, but tests wait for no one.
        socket = self.runtime_dir / "awsenv" / "agent.sock"
        if socket.exists():
            agent.stop(str(socket))
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            if proc.stdout:
                proc.stdout.close()


@dataclass
class Identity:
    user: str
    key_id: str
    secret: str
    mfa_serial: str | None


def boto_client(service: str, url: str):
    import boto3

    return boto3.client(
        service, endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def create_account(url: str) -> dict[str, Identity]:
    """An IAM user with a virtual MFA device (alice), one without (robot), and roles."""
    iam = boto_client("iam", url)
    people = {}
    for user, mfa in (("alice", True), ("robot", False)):
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        serial = None
        if mfa:
            device = iam.create_virtual_mfa_device(VirtualMFADeviceName=user)["VirtualMFADevice"]
            serial = device["SerialNumber"]
            iam.enable_mfa_device(
                UserName=user, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
            )
        people[user] = Identity(user, key["AccessKeyId"], key["SecretAccessKey"], serial)
    for role, duration in (("dev", 3600), ("prod", 3600), ("long", 7200), ("deploy", 3600)):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST, MaxSessionDuration=max(duration, 3600))
    return people


def config_text(serial: str, weird: str | None = None) -> str:
    role = f"arn:aws:iam::{ACCOUNT}:role"
    text = f"""\
[default]
region = us-east-1

[profile jump]
region = eu-west-1
mfa_serial = {serial}

[profile dev]
role_arn = {role}/dev
source_profile = jump
mfa_serial = {serial}
region = eu-central-1

[profile prod]
role_arn = {role}/prod
source_profile = jump
mfa_serial = {serial}

[profile long]
role_arn = {role}/long
source_profile = jump
mfa_serial = {serial}
duration_seconds = 7200

[profile ci]

[profile deploy]
role_arn = {role}/deploy
source_profile = ci

[profile viaproc]
region = us-east-1
credential_process = awsenv export --format json ci
"""
    if weird is not None:
        text += f"\n[profile {weird}]\nrole_arn = {role}/dev\nsource_profile = jump\nmfa_serial = {serial}\n"
    return text


def make_home(root: Path) -> Path:
    home = root / "home"
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    return home


def short_runtime_dir(parent: Path | None = None) -> Path:
    """A private runtime directory with a short path: a unix socket path has a 108-byte
    limit, which pytest's tmp_path can exceed. The caller removes it (the suite makes
    them all under one parent, removed at the end of the session)."""
    return Path(tempfile.mkdtemp(prefix="awsenv-run-", dir=str(parent) if parent else "/tmp"))
