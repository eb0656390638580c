"""The Go peers in `make bench`: aws-vault (the ByteNess fork) and granted, timed beside
awsenv, awsume and the floors in one interleaved loop.

bench installs them itself with `go install MODULE@PIN` into a cache outside the
checkout ($XDG_CACHE_HOME/awsenv-bench, else ~/.cache/awsenv-bench), once, and checks
with `go version -m` that a cached binary was built from the pinned module version.
Each gets the bench's user, key and roles: aws-vault its file backend with the
passphrase in AWS_VAULT_FILE_PASSPHRASE, granted its file backend with the passphrase
in CF_KEYRING_FILE_PASSWORD and the key in a throwaway plaintext credentials file (its
IAM path reads the source profile's key through the SDK), all inside the bench's
throwaway HOME. Both reach moto through AWS_ENDPOINT_URL, and the bench counts their
STS calls there.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from timing import Series, fmt_ms, run

GO_HOME = "/usr/local/go/bin"  # where the Go project's own tarball puts go, off most PATHs


@dataclass(frozen=True)
class Peer:
    name: str
    module: str  # the module path `go version -m` reports
    version: str  # the pin
    package: str  # what `go install` builds
    binary: str


AWS_VAULT = Peer("aws-vault", "github.com/byteness/aws-vault/v7", "v7.13.5",
                 "github.com/byteness/aws-vault/v7", "aws-vault")
GRANTED = Peer("granted", "github.com/fwdcloudsec/granted", "v0.39.0",
               "github.com/fwdcloudsec/granted/cmd/granted", "granted")
PEERS = (AWS_VAULT, GRANTED)

# granted's `assume` is a shell script around `assumego`: for `--exec` assumego prints
# the keys and the command, and the script runs the command with them. This is that
# step, so that granted's row starts `true` as the others do.
GRANTED_EXEC = """
out=$(assumego "$@") || exit $?
read flag g1 g2 g3 g4 g5 g6 g7 g8 g9 g10 g11 g12 <<EOF
$out
EOF
[ "$flag" = GrantedExec ] || { echo "assumego printed: $flag" >&2; exit 97; }
AWS_ACCESS_KEY_ID=$g1 AWS_SECRET_ACCESS_KEY=$g2 AWS_SESSION_TOKEN=$g3 AWS_REGION=$g5 AWS_DEFAULT_REGION=$g5 sh -c "$g12"
"""


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "awsenv-bench"


def find_go() -> str | None:
    return shutil.which("go", path=os.pathsep.join([os.environ.get("PATH", os.defpath), GO_HOME]))


def built_from(go: str, binary: Path) -> tuple[str, str] | None:
    """The main module and its version that a Go binary records (`go version -m`)."""
    done = subprocess.run([go, "version", "-m", str(binary)], capture_output=True, text=True)
    for line in done.stdout.splitlines():
        fields = line.split()
        if fields[:1] == ["mod"] and len(fields) >= 3:
            return fields[1], fields[2]
    return None


def install(peer: Peer, go: str) -> tuple[Path | None, str]:
    """The peer's binary at its pin, installed into the cache when missing; else None and why."""
    bindir = cache_root() / f"{peer.name}-{peer.version}"
    binary = bindir / peer.binary
    if not (binary.exists() and built_from(go, binary) == (peer.module, peer.version)):
        print(f"bench: installing {peer.name} {peer.version} into {bindir} (go install, once)", file=sys.stderr)
        bindir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GOBIN": str(bindir), "GOTOOLCHAIN": "local", "GOFLAGS": ""}
        target = f"{peer.package}@{peer.version}"
        try:
            done = subprocess.run([go, "install", target], env=env, capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            return None, f"`go install {target}` took more than 30 minutes"
        if done.returncode != 0:
            why = " ".join(done.stderr.split())
            why = re.sub(r"reading https?://\S+", "reading from the module proxy", why)
            return None, f"`go install {target}` failed: {why[-300:]}"
        found = built_from(go, binary)
        if found != (peer.module, peer.version):
            return None, f"`go install {target}` left no binary built from it (found {found})"
    if peer is GRANTED:  # one binary: named assumego, it is granted's assume command
        assumego = bindir / "assumego"
        if not assumego.exists():
            assumego.symlink_to(peer.binary)
    return binary, ""


@dataclass
class Entry:
    """One command of the interleaved loop."""
    task: str
    tool: str
    what: str  # the command as the table shows it
    argv: list[str]
    env: dict
    check: object  # Run -> '' or what is wrong


def json_credentials(done) -> str:
    try:
        doc = json.loads(done.out)
    except ValueError:
        doc = {}
    if done.rc != 0 or doc.get("Version") != 1 or not doc.get("SessionToken"):
        return f"rc {done.rc}: {(done.err.strip() or done.out.strip())[:200]}"
    return ""


def exited_0(done) -> str:
    return "" if done.rc == 0 else f"rc {done.rc}: {(done.err.strip() or done.out.strip())[:200]}"


def printed(marker: str):
    def check(done) -> str:
        return "" if done.rc == 0 and marker in done.out else f"rc {done.rc}: {(done.err.strip() or done.out.strip())[:200]}"
    return check


class Comparison:
    """awsenv and its peers, task by task, in one table with ratios to awsenv."""

    def __init__(self, bench, awsenv: str, awsumepy: Path):
        self.bench = bench
        self.awsenv = awsenv
        self.awsumepy = awsumepy
        self.versions: dict[str, str] = {}
        self.skipped: list[str] = []  # one line each: a peer not measured, and why
        self.notes: list[str] = []
        self.entries: list[Entry] = []

    # set-up
    def start(self) -> None:
        go = find_go()
        if go is None:
            line = (f"Go not found (on PATH or in {GO_HOME}): skipped aws-vault and granted; "
                    "install Go to have them installed and measured")
            print(f"bench: {line}", file=sys.stderr)
            self.skipped.append(line)
            return
        for peer in PEERS:
            binary, problem = install(peer, go)
            if binary is None:
                self.skip(peer, problem)
                continue
            try:
                (self.aws_vault if peer is AWS_VAULT else self.granted)(binary)
                self.versions[peer.name] = peer.version
            except RuntimeError as err:
                self.skip(peer, str(err))

    def skip(self, peer: Peer, why: str) -> None:
        line = f"{peer.name} {peer.version} not measured: {why}"
        print(f"bench: {line}", file=sys.stderr)
        self.skipped.append(line)

    def warm(self, what: str, argv: list[str], env: dict, check) -> None:
        """Run once outside the timing; a failure here says what the peer could not do."""
        b = self.bench
        calls = len(b.moto.calls)
        problem = check(run(argv, env, b.root, b.scratch))
        if problem:
            reached = "reached" if len(b.moto.calls) > calls else "never reached"
            raise RuntimeError(f"{what} failed ({problem}); it {reached} the emulator")

    def home(self, binary: Path, name: str) -> tuple[Path, dict]:
        """A throwaway HOME of the peer's own, with the bench's AWS config file."""
        b = self.bench
        home = b.root / f"home-{name}"
        (home / ".aws").mkdir(parents=True)
        env = {**b.env, "HOME": str(home), "PATH": f"{binary.parent}:{b.env['PATH']}",
               "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
               "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share"),
               "XDG_STATE_HOME": str(home / ".local" / "state"), "XDG_CACHE_HOME": str(home / ".cache"),
               "NO_COLOR": "1"}
        return home, env

    def aws_vault(self, binary: Path) -> None:
        b = self.bench
        _, env = self.home(binary, "aws-vault")
        env.update({"AWS_VAULT_BACKEND": "file", "AWS_VAULT_FILE_PASSPHRASE": secrets.token_hex(16)})
        av = str(binary)
        self.warm("`aws-vault add jump --env`", [av, "add", "jump", "--env"],
                  {**env, "AWS_ACCESS_KEY_ID": b.alice.key_id, "AWS_SECRET_ACCESS_KEY": b.alice.secret}, exited_0)
        # The first export makes the MFA session (GetSessionToken, cached in its file
        # store); every later one reuses it and assumes the role again.
        self.warm("the first `aws-vault export dev`", [av, "export", "--format=env", "--mfa-token", b.next_code(), "dev"], env,
                  printed("AWS_SESSION_TOKEN="))
        self.warm("`aws-vault exec dev`", [av, "exec", "dev", "--", "sh", "-c", 'test -n "$AWS_SESSION_TOKEN"'], env, exited_0)
        self.entries += [
            Entry("cached switch", "aws-vault", "`aws-vault export --format=env dev`",
                  [av, "export", "--format=env", "dev"], env, printed("AWS_SESSION_TOKEN=")),
            Entry("credential_process call", "aws-vault", "`aws-vault export --format=json dev`",
                  [av, "export", "--format=json", "dev"], env, json_credentials),
            Entry("exec of `true`", "aws-vault", "`aws-vault exec dev -- true`",
                  [av, "exec", "dev", "--", "true"], env, exited_0),
            Entry("start-up", "aws-vault", "`aws-vault --version`", [av, "--version"], env, exited_0),
        ]

    def granted(self, binary: Path) -> None:
        b = self.bench
        home, env = self.home(binary, "granted")
        # granted reads a source profile's key with the SDK's shared-config loader, which
        # looks in ~/.aws/credentials whatever AWS_SHARED_CREDENTIALS_FILE says.
        creds = home / ".aws" / "credentials"
        creds.write_text(
            f"[jump]\naws_access_key_id = {b.alice.key_id}\naws_secret_access_key = {b.alice.secret}\n")
        creds.chmod(0o600)
        config = home / ".config" / "granted" / "config"
        config.parent.mkdir(parents=True)
        # A browser chosen (else its first run asks), no tips, its file store.
        config.write_text('DefaultBrowser = "STDOUT"\nDisableUsageTips = true\n\n[Keyring]\nBackend = "file"\n')
        env.update({"CF_KEYRING_FILE_PASSWORD": secrets.token_hex(16),
                    # what granted's `assume` script exports before it runs assumego
                    "GRANTED_ALIAS_CONFIGURED": "true",
                    # The role's AssumeRole ignores AWS_ENDPOINT_URL: the AWS SDK for Go v2
                    # (config.LoadDefaultConfig) builds a profile's role client before it
                    # reads that variable. The service's own variable reaches it.
                    "AWS_ENDPOINT_URL_STS": b.moto.url})
        assumego, granted = str(binary.parent / "assumego"), str(binary)
        # The first assume makes the role session (AssumeRole with the MFA code) and
        # caches it in its file store; later ones read it from there.
        self.warm("the first `assumego dev`", [assumego, "dev", "--mfa-token", b.next_code()], env, printed("GrantedAssume "))
        self.warm("`assume dev --exec`", ["sh", "-c", GRANTED_EXEC, "sh", "dev", "--exec", 'test -n "$AWS_SESSION_TOKEN"'],
                  env, exited_0)
        self.entries += [
            Entry("cached switch", "granted", "`assumego dev` (what `assume dev` runs)",
                  [assumego, "dev"], env, printed("GrantedAssume ")),
            Entry("credential_process call", "granted", "`granted credential-process --profile dev`",
                  [granted, "credential-process", "--profile", "dev"], env, json_credentials),
            Entry("exec of `true`", "granted", "`assume dev --exec true` (assumego, then its script's `sh -c`)",
                  ["sh", "-c", GRANTED_EXEC, "sh", "dev", "--exec", "true"], env, exited_0),
            Entry("start-up", "granted", "`assumego --version`", [assumego, "--version"], env, exited_0),
        ]

    def ours(self) -> list[Entry]:
        b, awsenv = self.bench, self.awsenv
        entries = [
            Entry("cached switch", "awsenv", "`awsenv use dev --shell bash` (agent warm)",
                  [awsenv, "use", "dev", "--shell", "bash"], b.env, b.use_problem),
            Entry("credential_process call", "awsenv", "`awsenv export --format json dev`",
                  [awsenv, "export", "--format", "json", "dev"], b.env, json_credentials),
            Entry("exec of `true`", "awsenv", "`awsenv exec dev -- true`",
                  [awsenv, "exec", "dev", "--", "true"], b.env, exited_0),
            Entry("start-up", "awsenv", "`awsenv --version`", [awsenv, "--version"], b.env, exited_0),
        ]
        if b.warm():  # awsume is usable
            entries.append(Entry("cached switch", "awsume", "`awsumepy dev` (its cached MFA session)",
                                 [str(self.awsumepy), "dev"], b.awsume_env, b.awsume_usable))
        entries += [
            Entry("floor", "python", f"`python -c pass` ({sys.executable})", [sys.executable, "-c", "pass"],
                  b.env, exited_0),
            Entry("floor", "/bin/true", "`/bin/true`", ["/bin/true"], b.env, exited_0),
        ]
        return entries

    # the loop
    def measure(self) -> str:
        b = self.bench
        self.warm("`awsenv exec dev`", [self.awsenv, "exec", "dev", "--", "sh", "-c", 'test -n "$AWS_SESSION_TOKEN"'],
                  b.env, exited_0)
        entries = self.ours() + self.entries
        series = {id(e): Series(f"{e.tool}: {e.what}") for e in entries}
        for i in range(b.runs + 1):  # the first round warms the page cache and is dropped
            for e in entries:
                s = series[id(e)] if i else Series("warm-up")
                b.measure(s, lambda e=e: run(e.argv, e.env, b.root, b.scratch), e.check)
        for e in entries:
            for failure in series[id(e)].failures[:3]:
                b.notes.append(f"{e.tool} ({e.task}) failed: {failure}")
                b.failed = True
        return self.table(entries, series)

    def table(self, entries: list[Entry], series: dict) -> str:
        b = self.bench
        ours = {e.task: series[id(e)].median() for e in entries if e.tool == "awsenv"}
        lines = ["| task | tool | command | median | spread (min–max, IQR) | × awsenv | STS per run |",
                 "|---|---|---|---|---|---|---|"]
        tasks = list(dict.fromkeys(e.task for e in entries))
        for task in tasks:
            for e in (e for e in entries if e.task == task):
                s = series[id(e)]
                ratio = f"{s.median() / ours[task]:.2f}×" if task in ours else "-"
                sts = b.sts_note(s).removeprefix("STS per run: ")
                tool = f"{e.tool} {self.versions[e.tool]}" if e.tool in self.versions else e.tool
                lines.append(f"| {task} | {tool} | {e.what} | {fmt_ms(s.median())} | {s.spread()} ms | {ratio} | {sts} |")
        return "\n".join(lines)
