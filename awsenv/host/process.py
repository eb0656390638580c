"""Running a command a profile names (credential_process, mfa_process): split into
words as the AWS CLI splits it, no shell, stdout captured. An error names what ran and
why in one line, never the command line (it may hold a token) nor the output (it may
be a secret)."""
from __future__ import annotations

import os

from ..core.errors import AwsenvError

TIMEOUT = 120  # seconds: room for a YubiKey touch or a password manager's unlock
STDERR_HEAD = 4096  # bytes of stderr kept for the error line


def run(command: str, what: str, error: type[AwsenvError] = AwsenvError, stdin=None,
        capture_stderr: bool = False, relay=None, timeout: float = TIMEOUT) -> tuple[bytes, str]:
    """Run `command`; return its stdout and the first line of its stderr. `what` names it
    in errors ("credential_process of profile 'dev'"). stdin is /dev/null unless given.
    Its stderr is awsenv's own, or with `capture_stderr` read through a pipe: each chunk
    goes to `relay` (the terminal) as it comes, so a prompt such as "Touch your YubiKey"
    shows at once, and the first line ends the error when the command fails."""
    import subprocess

    try:
        argv = split_command(command)
    except ValueError:
        argv = []
    if not argv:
        raise error(f"{what} is not a valid command line")
    reader, writer = os.pipe() if capture_stderr else (None, None)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL if stdin is None else stdin,
                                stdout=subprocess.PIPE, stderr=writer)
    except (OSError, ValueError) as err:  # its command line may hold tokens: name only the reason
        if reader is not None:
            os.close(reader)
        if isinstance(err, ValueError):  # a NUL in it
            raise error(f"{what} is not a valid command line") from None
        raise error(f"{what} failed: {err.strerror}") from None
    finally:
        if writer is not None:
            os.close(writer)
    head = bytearray()
    drain = None
    try:
        # The relay starts inside the try: the command's first words ("Touch your
        # YubiKey") reach the terminal from that thread, and a Ctrl-C typed at them may
        # land in this one before communicate(); the command is still killed and reaped.
        if reader is not None:
            import threading

            drain = threading.Thread(target=_drain, args=(reader, relay, head), daemon=True)
            drain.start()
        out, _ = proc.communicate(timeout=timeout)
    except BaseException as err:  # a timeout, or Ctrl-C: the command must not outlive us
        proc.kill()
        proc.communicate()
        if not isinstance(err, subprocess.TimeoutExpired):
            raise
        raise error(f"{what} timed out after {timeout:g} s{_after(_first_line(drain, head, b''))}") from None
    first = _first_line(drain, head, out)
    if proc.returncode != 0:
        raise error(f"{what} exited with {proc.returncode}{_after(first)}")
    return out, first


def _drain(fd: int, relay, head: bytearray) -> None:
    with open(fd, "rb", buffering=0) as stream:
        for chunk in iter(lambda: stream.read(4096), b""):
            if relay is not None:
                relay(chunk)
            if len(head) < STDERR_HEAD:
                head += chunk


def _first_line(drain, head: bytearray, out: bytes) -> str:
    """The first line of the captured stderr, printable and short; "" without one. A
    program that wrote its output to stderr as well does not get it into an error."""
    if drain is None:
        return ""
    drain.join(1)  # a child of the command may hold the pipe open: don't wait for it
    lines = (line.strip() for line in bytes(head).decode(errors="replace").splitlines())
    first = next((line for line in lines if line), "")
    printed = out.decode(errors="replace").strip()
    if printed and printed in first:
        first = first.replace(printed, "[its output]")
    return "".join(c if c.isprintable() else "?" for c in first)[:200]


def _after(line: str) -> str:
    return f": {line}" if line else ""


def split_command(command: str) -> list[str]:
    """A credential_process line as the AWS CLI splits it: POSIX shell words, or on
    Windows (no fork: the OS hands programs one command line) the rule of
    CommandLineToArgvW, so `C:\\tools\\x.exe --flag` keeps its backslashes."""
    if hasattr(os, "fork"):
        import shlex

        return shlex.split(command)
    return windows_split(command)


def windows_split(line: str) -> list[str]:
    """CommandLineToArgvW: the program name runs to the first blank outside quotes,
    with no escapes; after it, 2n backslashes before a quote are n and the quote
    toggles quoting, 2n+1 are n and a literal quote, other backslashes are literal,
    and `""` inside quotes is one literal quote."""
    words: list[str] = []
    line = line.lstrip(" \t")
    i, n = 0, len(line)
    name, quoted = [], False
    while i < n and (quoted or line[i] not in " \t"):
        if line[i] == '"':
            quoted = not quoted
        else:
            name.append(line[i])
        i += 1
    if line:
        words.append("".join(name))
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            return words
        word, quoted = [], False
        while i < n and (quoted or line[i] not in " \t"):
            if line[i] == "\\":
                run = 0
                while i < n and line[i] == "\\":
                    run += 1
                    i += 1
                if i < n and line[i] == '"':
                    word.append("\\" * (run // 2))
                    if run % 2:
                        word.append('"')
                        i += 1
                    continue
                word.append("\\" * run)
                continue
            if line[i] == '"':
                if quoted and i + 1 < n and line[i + 1] == '"':
                    word.append('"')
                    i += 2
                    continue
                quoted = not quoted
            else:
                word.append(line[i])
            i += 1
        words.append("".join(word))
