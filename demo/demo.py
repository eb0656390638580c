"""`make demo`: the main job, end to end, with no AWS account and no desktop keyring.

It starts a local AWS emulator (moto) on 127.0.0.1 and a throwaway Secret Service
(gnome-keyring on a private D-Bus), creates an IAM user with a virtual MFA device and
two roles, and then runs the real flow in a real bash. On a terminal it then opens an
interactive bash with awsenv initialised against the same emulator (exit to finish).
Everything it starts is stopped and everything it writes is removed at the end.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from world import MotoServer, SecretService, config_text, create_account, short_runtime_dir  # noqa: E402

SCRIPT = r"""
set -euo pipefail
if [[ -t 1 ]]; then step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }; else step() { printf '\n$ %s\n' "$*"; }; fi

step 'awsenv add jump --env        # the long-term key goes into the keyring'
AWS_ACCESS_KEY_ID="$DEMO_KEY_ID" AWS_SECRET_ACCESS_KEY="$DEMO_SECRET" awsenv add jump --env

step 'eval "$(awsenv use dev --mfa-code 123456)"'
eval "$(awsenv use dev --mfa-code 123456)"
echo "AWSENV_PROFILE=$AWSENV_PROFILE  AWS_CREDENTIAL_EXPIRATION=$AWS_CREDENTIAL_EXPIRATION"

step 'aws sts get-caller-identity'
aws sts get-caller-identity

step 'eval "$(awsenv use prod)"      # a second role: no new MFA code'
eval "$(awsenv use prod)"
aws sts get-caller-identity --query Arn --output text

step 'awsenv list'
awsenv list

step 'eval "$(awsenv unset)"'
eval "$(awsenv unset)"
awsenv status
"""


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="awsenv-demo-"))
    home = root / "home"
    (home / ".aws").mkdir(parents=True)
    runtime = short_runtime_dir()
    keyring = SecretService(runtime, home)
    moto = MotoServer()
    try:
        keyring.start()
        moto.start()
        people = create_account(moto.url)
        moto.calls.clear()
        (home / ".aws" / "config").write_text(config_text(people["alice"].mfa_serial))
        bin_dir = Path(sys.executable).parent
        env = {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": str(root),
            "LANG": "C.UTF-8",
            "TERM": os.environ.get("TERM", "dumb"),
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SHELL": "/bin/bash",
            **keyring.env(),
        }
        print(f"awsenv demo: AWS emulator at {moto.url}, HOME in {root}, keyring and agent in {runtime}")
        flow = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", SCRIPT],
            env={**env, "DEMO_KEY_ID": people["alice"].key_id, "DEMO_SECRET": people["alice"].secret},
            stdin=subprocess.DEVNULL,
        )
        print("\nSTS calls the emulator saw (action, signing access key):")
        for call in moto.calls:
            print(f"  {call.action:<16} {call.key_id}")
        if flow.returncode != 0:
            return flow.returncode
        if sys.stdin.isatty() and not os.environ.get("CI"):
            interactive(env, root)
        return 0
    finally:
        keyring.stop()
        moto.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


def interactive(env: dict[str, str], root: Path) -> None:
    rc = root / "demo.bashrc"
    rc.write_text(
        "PS1='\\[\\e[1m\\]awsenv-demo\\[\\e[0m\\] \\w \\$ '\n"
        'eval "$(awsenv init bash)"\n'
    )
    print(
        "\nAn interactive bash with awsenv initialised against the emulator. Try:\n"
        "  awsenv use dev --mfa-code 222222    (then watch the prompt)\n"
        "  awsenv use pr<TAB>\n"
        "  aws sts get-caller-identity\n"
        "Type exit to end the demo."
    )
    subprocess.run(["bash", "--noprofile", "--rcfile", str(rc), "-i"], env=env)


if __name__ == "__main__":
    sys.exit(main())
