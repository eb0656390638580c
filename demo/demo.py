"""`make demo`: the main job, end to end, with no AWS account and no desktop keyring.

It starts a local AWS emulator (moto) on 127.0.0.1, keeps the keys in awsenv's
encrypted-file store in a throwaway HOME (AWSENV_BACKEND=file, with a random
passphrase in AWSENV_FILE_PASSPHRASE), so it needs no D-Bus and no gnome-keyring,
creates two IAM users (alice with a virtual MFA device, robot without) and four roles,
and then runs the real flow in a real bash, printing each command line before it runs
it. On a terminal it then opens an interactive bash with awsenv initialised against
the same emulator (exit to finish). Everything it starts is stopped and everything it
writes is removed at the end, whatever failed; a start-up failure is one line.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from world import ACCOUNT, MFA_FAILED, Call, MotoServer, create_account, short_runtime_dir  # noqa: E402

# The emulator accepts any MFA code; the demo has it refuse this one, as AWS refuses a wrong code.
WRONG_CODE = "000000"
# moto hands out this one access key ID for every GetSessionToken session (AWS gives each
# session its own ASIA… ID), so it is a session, not a second long-term key.
MOTO_SESSION_KEY = "AKIAIOSFODNN7EXAMPLE"

SCRIPT = r"""
set -euo pipefail
if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
# run COMMAND [WHY]: print why, then the command line as typed, then run exactly that line.
run() { printf '\n%s%s$ %s%s\n' "${2:+# $2$'\n'}" "$bold" "$1" "$plain"; eval "$1"; }

run 'AWS_ACCESS_KEY_ID=$ALICE_KEY_ID AWS_SECRET_ACCESS_KEY=$ALICE_SECRET awsenv add jump --env' \
    "alice's long-term key into the encrypted key store (--env reads it from these two variables)"
run 'awsenv import --delete-plaintext' "robot's key, out of the plaintext ~/.aws/credentials"
run 'eval "$(awsenv use dev --mfa-code 000000)"' 'a wrong MFA code: AWS refuses it'
run 'eval "$(awsenv use dev --mfa-code 123456)"' 'the right code: an MFA session for jump, then the dev role'
run 'awsenv status'
run 'aws sts get-caller-identity' 'the AWS CLI (or any SDK) uses the credentials'
run 'eval "$(awsenv use prod)"' 'a second role from the same MFA session: no new code'
run 'aws sts get-caller-identity --query Arn --output text'
run 'awsenv list'
run 'eval "$(awsenv unset)"'
run 'awsenv status'
"""


def demo_config(serial: str) -> str:
    """Every profile here works in the demo's interactive shell; each has a region, so
    the AWS CLI needs no [default]."""
    role = f"arn:aws:iam::{ACCOUNT}:role"
    return f"""\
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
region = us-east-1

[profile long]
role_arn = {role}/long
source_profile = jump
mfa_serial = {serial}
duration_seconds = 7200
region = eu-west-1

[profile ci]
region = us-east-1

[profile deploy]
role_arn = {role}/deploy
source_profile = ci
region = us-east-1

[profile viaproc]
credential_process = awsenv export --format json ci
region = us-east-1
"""


def refuse_wrong_code(call: Call) -> tuple[str, str] | None:
    return MFA_FAILED if call.params.get("TokenCode") == WRONG_CODE else None


def describe(calls: list[Call], owners: dict[str, str]) -> list[str]:
    """What signed each call, in words: a long-term key, moto's fixed session key, or a role's key."""
    lines, session = [], "a session"
    for call in calls:
        code = call.params.get("TokenCode")
        if call.key_id in owners:
            what = f"{owners[call.key_id]}'s long-term key, from the key store"
        elif call.key_id == MOTO_SESSION_KEY:
            what = f"{session}: moto gives every session this same key ID"
        else:
            what = "a role session's temporary key"
        if code:
            what += f", with MFA code {code}" + (": refused" if code == WRONG_CODE else "")
        if call.action == "GetSessionToken" and code != WRONG_CODE and call.key_id in owners:
            session = f"{owners[call.key_id]}'s {'MFA session' if code else 'session'}"
        lines.append(f"  {call.action:<18} {call.key_id:<21} {what}")
    return lines


class StartError(Exception):
    """Something the demo needs is missing: one line, no traceback."""


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # keeps our lines in order with the shell's
    # A closed terminal (SIGHUP) or a kill (SIGTERM) still runs the clean-up below: the
    # agent runs in a session of its own, so no hangup reaches it.
    for number in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(number, leave)
    try:
        check_tools()
        return run()
    except StartError as err:
        print(f"make demo: {err}", file=sys.stderr)
        return 1


def leave(received: int, _frame) -> None:
    """The first hangup or kill ends the demo through its clean-up; a second one (a
    terminal that closes sends more than one) must not cut that clean-up short."""
    for number in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    sys.exit(128 + received)


def check_tools() -> None:
    bin_dir = Path(sys.executable).parent
    if shutil.which("bash") is None:
        raise StartError("bash is not installed; the demo runs the flow in a real bash (apt-get install bash)")
    for program, why in (("awsenv", "awsenv"), ("aws", "the AWS CLI")):
        if not (bin_dir / program).is_file():
            raise StartError(f"{why} is not installed beside {sys.executable}; run `make demo`, which installs it")
    try:
        import moto.server  # noqa: F401
        import werkzeug  # noqa: F401
    except ImportError as err:
        raise StartError(f"the moto AWS emulator is not installed ({err}); run `make demo`, which installs it") from None


def run() -> int:
    root = Path(tempfile.mkdtemp(prefix="awsenv-demo-"))
    home = root / "home"
    runtime = short_runtime_dir()
    moto = MotoServer()
    env: dict[str, str] = {}
    try:
        (home / ".aws").mkdir(parents=True)
        moto.start()
        people = create_account(moto.url)
        alice, robot = people["alice"], people["robot"]
        moto.calls.clear()
        moto.refuse = refuse_wrong_code
        (home / ".aws" / "config").write_text(demo_config(alice.mfa_serial))
        credentials = home / ".aws" / "credentials"
        credentials.write_text(f"[ci]\naws_access_key_id = {robot.key_id}\naws_secret_access_key = {robot.secret}\n")
        credentials.chmod(0o600)
        bin_dir = Path(sys.executable).parent
        env = {
            "PATH": f"{bin_dir}:{os.environ.get('PATH') or '/usr/local/bin:/usr/bin:/bin'}",
            "HOME": str(home),
            "TMPDIR": str(root),
            "LANG": "C.UTF-8",
            "TERM": os.environ.get("TERM", "dumb"),
            "AWS_ENDPOINT_URL": moto.url,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SHELL": "/bin/bash",
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            # The encrypted-file store: no D-Bus, no desktop keyring. A passphrase made
            # for this run, in the environment as a script or CI gives it.
            "AWSENV_BACKEND": "file",
            "AWSENV_FILE_PASSPHRASE": secrets.token_urlsafe(24),
        }
        print(f"awsenv demo: AWS emulator at {moto.url}, HOME in {root}, agent in {runtime}")
        print(f"Keys are kept in awsenv's encrypted-file store under {home}/.local/share/awsenv.")
        print(f"The emulator accepts any 6-digit MFA code but {WRONG_CODE}, which it refuses as AWS refuses a wrong one.")
        # A session of its own: no controlling terminal, so nothing in the scripted part
        # can stop to ask on /dev/tty (a refused code is not asked for again).
        flow = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-c", SCRIPT],
            env={**env, "ALICE_KEY_ID": alice.key_id, "ALICE_SECRET": alice.secret},
            stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )
        returncode = wait_for_flow(flow)
        owners = {alice.key_id: alice.user, robot.key_id: robot.user}
        print("\nSTS calls the emulator saw (action, the access key that signed it):")
        print("\n".join(describe(moto.calls, owners)))
        if returncode != 0:
            return returncode
        if sys.stdin.isatty() and not os.environ.get("CI"):
            interactive(env, root)
        return 0
    finally:
        if env:
            stop_agent(env)
        moto.stop()
        shutil.rmtree(runtime, ignore_errors=True)
        remove(root)


def wait_for_flow(flow: subprocess.Popen) -> int:
    """The scripted flow's exit status. Interrupted (a hangup, a kill), the demo takes the
    whole flow down with it, the command bash was running included, before it cleans up:
    killing bash alone would leave that command writing into a HOME being removed."""
    try:
        return flow.wait()
    except BaseException:
        try:
            os.killpg(flow.pid, signal.SIGKILL)
        except OSError:
            pass
        flow.wait()
        raise


def remove(root: Path) -> None:
    """Removes the demo's folder, again while something still exiting writes into it
    (an agent sees its runtime directory vanish and exits within a second)."""
    deadline = time.monotonic() + 10
    while True:
        shutil.rmtree(root, ignore_errors=True)
        if not root.exists() or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def stop_agent(env: dict[str, str]) -> None:
    """The agent the flow started goes before its runtime directory does (it would see
    the directory vanish and exit within a second, but the demo waits for no one)."""
    try:
        subprocess.run([str(Path(sys.executable).parent / "awsenv"), "agent", "stop"], env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pass


def interactive(env: dict[str, str], root: Path) -> None:
    rc = root / "demo.bashrc"
    rc.write_text(
        "PS1='\\[\\e[1m\\]awsenv-demo\\[\\e[0m\\] \\w \\$ '\n"
        'eval "$(awsenv init bash)"\n'
    )
    print(
        "\nAn interactive bash with awsenv initialised against the emulator. Every profile\n"
        "`awsenv list` shows works here. Try:\n"
        "  awsenv use dev                  (then watch the prompt)\n"
        "  awsenv use long                 (a 2 h role: asks for an MFA code)\n"
        "  awsenv use deploy               (a role from robot's key, no MFA)\n"
        "  awsenv use pr<TAB>\n"
        "  aws sts get-caller-identity\n"
        "  cat ~/.aws/config\n"
        f"An MFA code is any 6 digits but {WRONG_CODE}; as on AWS, a code is used once: the next one\n"
        "must differ from the last one accepted in the same 30 seconds.\n"
        "Type exit to end the demo."
    )
    shell = subprocess.Popen(["bash", "--noprofile", "--rcfile", str(rc), "-i"], env=env)
    try:
        shell.wait()
    except BaseException:
        # The terminal went away (or the demo was killed): hang up the shell as the
        # terminal would, so it hangs up its own jobs too, and wait for it.
        shell.send_signal(signal.SIGHUP)
        try:
            shell.wait(timeout=5)
        except subprocess.TimeoutExpired:
            shell.kill()
            shell.wait()
        raise


if __name__ == "__main__":
    sys.exit(main())
