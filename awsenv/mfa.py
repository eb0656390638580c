"""Getting an MFA code: given on the command line, printed by the profile's
mfa_process, generated from a stored TOTP secret, or typed on the terminal (/dev/tty,
never stdout), in that order. A code is never sent twice: STS would reject the replay,
and a user would not know why."""
from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from typing import TextIO

from .errors import Cancelled, MfaError, UsageError

STEP = 30  # seconds per TOTP code
CODE = re.compile(r"[0-9]{6}")
MALFORMED_LIMIT = 3  # entries at the prompt that are not a code, before giving up


def validate(code: str) -> str:
    if not CODE.fullmatch(code or ""):
        raise UsageError("an MFA code is 6 digits")
    return code


def Terminal():  # noqa: N802 - used like a class
    """The terminal to ask on: /dev/tty, or the console where there is no termios
    (Windows)."""
    try:
        import termios  # noqa: F401 - only to learn which kind of terminal this is
    except ImportError:
        return _Console()
    return _Tty()


class _Console:
    """Windows has no /dev/tty: the console's own input and output, which Python opens
    as console (UTF-16) streams by these names, so any profile name shows. Without a
    console (a service, WSL interop) there is nothing to ask on."""

    def __init__(self) -> None:
        self.out: TextIO | None = None
        self.inp: TextIO | None = None
        try:
            # Input first: opening CONOUT$ for writing where it is not a console would
            # create a file of that name.
            inp = open("CONIN$", encoding="utf-8")
        except OSError:
            return
        try:
            self.out = open("CONOUT$", "w", encoding="utf-8")
        except OSError:
            inp.close()
            return
        self.inp = inp

    @property
    def available(self) -> bool:
        return self.inp is not None

    def say(self, text: str) -> None:
        print(text, file=self.out or sys.stderr, flush=True)

    def write(self, data: bytes) -> None:
        """What a program run for a code says (mfa_process's stderr), as it comes."""
        out = self.out or sys.stderr
        out.write(data.decode(errors="replace"))
        out.flush()

    @property
    def stdin(self):
        """The console as a program's stdin, for its own prompt."""
        return self.inp

    def ask(self, prompt: str, echo: bool = True) -> str:
        if self.inp is None or self.out is None:
            raise MfaError("no terminal to ask on")
        try:
            if not echo:
                import getpass  # reads the console itself through msvcrt

                return getpass.getpass(prompt).strip()
            self.out.write(prompt)
            self.out.flush()
            line = self.inp.readline()
        except (KeyboardInterrupt, EOFError):
            raise Cancelled("cancelled") from None
        if not line:
            raise Cancelled("cancelled")
        return line.strip()


class _Tty:
    """The controlling terminal, or None when there is none (CI, cron, a pipe)."""

    def __init__(self) -> None:
        self.fd: int | None = None
        if sys.platform == "win32":  # Terminal() picks this only where termios exists
            return
        try:
            self.fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            self.fd = None

    @property
    def available(self) -> bool:
        return self.fd is not None

    def say(self, text: str) -> None:
        if self.fd is not None:
            os.write(self.fd, (text + "\n").encode())
        else:
            print(text, file=sys.stderr)

    def write(self, data: bytes) -> None:
        """What a program run for a code says (mfa_process's stderr), as it comes."""
        if self.fd is None:
            return
        while data:
            data = data[os.write(self.fd, data):]

    @property
    def stdin(self) -> int | None:
        """The terminal as a program's stdin, for its own prompt (op's password)."""
        return self.fd

    def ask(self, prompt: str, echo: bool = True) -> str:
        if self.fd is None:
            raise MfaError("no terminal to ask on")
        if sys.platform == "win32":  # as in __init__
            raise MfaError("no terminal to ask on")
        import signal
        import termios

        # The hook ignores SIGINT around its eval and we inherit that; Ctrl-C at this
        # question must still cancel it.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        old = termios.tcgetattr(self.fd)
        new = termios.tcgetattr(self.fd)
        # A prompt hook may call us with the terminal raw (fish does): ask in cooked mode.
        new[0] |= termios.ICRNL
        new[3] |= termios.ICANON | termios.ECHO
        if not echo:
            new[3] &= ~termios.ECHO
        termios.tcsetattr(self.fd, termios.TCSAFLUSH, new)
        os.write(self.fd, prompt.encode())  # after echo is off, as getpass does: nothing typed early shows
        try:
            with open(self.fd, "rb", buffering=0, closefd=False) as stream:
                line = stream.readline()
        except KeyboardInterrupt:
            os.write(self.fd, b"\n")
            raise Cancelled("cancelled") from None
        finally:
            termios.tcsetattr(self.fd, termios.TCSAFLUSH, old)
            if not echo:
                os.write(self.fd, b"\n")
            signal.signal(signal.SIGINT, previous)
        if not line:  # end of input (Ctrl-D)
            os.write(self.fd, b"\n")
            raise Cancelled("cancelled")
        return line.decode(errors="replace").strip()


class CodeSource:
    """Hands out MFA codes for one run of awsenv.

    `used` maps an MFA serial to [code, unix time] of the last code sent, kept with the
    session cache so that two runs inside one 30 s window don't send the same code.
    """

    def __init__(
        self,
        given: str | None,
        totp_secret: Callable[[str], str | None],
        used: dict,
        terminal=None,
        prompt: bool = True,
        note: str = "",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.given = validate(given) if given is not None else None
        self.totp_secret = totp_secret
        self.used = used
        self._terminal = terminal
        self.prompt = prompt
        self.note = note
        self.clock = clock
        self.sleep = sleep

    @property
    def terminal(self):
        if self._terminal is None:
            self._terminal = Terminal()
        return self._terminal

    def _recently_used(self, serial: str, code: str) -> bool:
        last = self.used.get(serial)
        # STS accepts a code for about one step either side; treat that span as spent.
        return last is not None and bool(last) and last[0] == code and self.clock() - last[1] < 3 * STEP

    def record(self, serial: str, code: str) -> None:
        self.used[serial] = [code, int(self.clock())]

    def code(self, profile: str, serial: str, base: str | None = None, retry: bool = False,
             process: tuple[str, str] | None = None) -> str:
        """A fresh code for `serial`, asked for in the name of `profile`: from `process`
        ((profile, command) of an mfa_process), else a TOTP secret looked up under
        `base`, else the terminal. `retry` is set after STS rejected the previous one."""
        if self.given is not None and not retry:
            code, self.given = self.given, None
            if not self._recently_used(serial, code):
                return code
            if not self.terminal.available:
                raise MfaError(
                    f"MFA code for profile {profile!r} was already used; wait for the next code "
                    "and pass it with --mfa-code"
                )
            self.terminal.say("awsenv: that MFA code was already used; waiting for the next one")
        if process is not None and self.prompt:
            # It may ask the user (a YubiKey touch, an unlock), so only where awsenv may ask.
            return self._from_process(serial, *process)
        secret = self.totp_secret(base or profile)
        if secret:
            return self._totp(serial, secret)
        if not self.prompt:
            raise MfaError(f"profile {profile!r} needs a new MFA code ({serial})")
        if not self.terminal.available:
            raise MfaError(
                f"profile {profile!r} needs an MFA code ({serial}) and there is no terminal to "
                "ask on; pass --mfa-code"
            )
        if self.note:
            self.terminal.say(f"awsenv: {self.note}")
        prompt = f"MFA code for {profile} ({serial}): "
        malformed = 0
        while True:
            answer = self.terminal.ask(prompt)
            if not answer:
                raise Cancelled("no MFA code given")
            if not CODE.fullmatch(answer):
                # A stuck key or a paste of the wrong thing must not ask for ever.
                malformed += 1
                if malformed == MALFORMED_LIMIT:
                    raise UsageError(f"{MALFORMED_LIMIT} entries were not an MFA code (6 digits); nothing was sent")
                self.terminal.say("awsenv: an MFA code is 6 digits")
                continue
            if self._recently_used(serial, answer):
                self.terminal.say("awsenv: that code was already used; wait for the next one")
                continue
            return answer

    def _totp(self, serial: str, secret: str) -> str:
        import binascii

        import pyotp

        try:
            totp = pyotp.TOTP(secret)  # pyotp decodes the secret here already
            code = totp.now()
        except (binascii.Error, ValueError, TypeError):
            from .errors import KeyringError

            raise KeyringError(
                f"the stored TOTP secret for {serial} is not base32; store it again with `awsenv mfa set`"
            ) from None
        if self._recently_used(serial, code):
            self._next_step()
            code = totp.at(self.clock())
        return code

    def _next_step(self) -> None:
        wait = STEP - (self.clock() % STEP) + 1
        self.terminal.say(f"awsenv: waiting {int(wait)}s for the next MFA code")
        self.sleep(wait)

    def _from_process(self, serial: str, owner: str, command: str) -> str:
        """The code mfa_process prints. One that was already sent means the same 30 s
        step: wait for the next one and run it again, once."""
        what = f"mfa_process of profile {owner!r}"
        if self.note and self.terminal.available:
            self.terminal.say(f"awsenv: {self.note}")
        code = self._run(what, command)
        if self._recently_used(serial, code):
            self._next_step()
            code = self._run(what, command)
            if self._recently_used(serial, code):
                raise MfaError(f"{what} printed a code that was already used; it must print the current one")
        return code

    def _run(self, what: str, command: str) -> str:
        """Run it with the terminal as its stdin and its stderr relayed there (a prompt of
        its own shows), stdout captured; Ctrl-C cancels it even under the prompt hook,
        which ignores SIGINT (a handled signal is the default again in a child)."""
        import signal

        from .process import run

        terminal = self.terminal
        live = terminal.available
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            out, first = run(command, what, MfaError, stdin=terminal.stdin if live else None,
                             capture_stderr=True, relay=terminal.write if live else None)
        except KeyboardInterrupt:
            if live:
                terminal.write(b"\n")
            raise Cancelled("cancelled") from None
        finally:
            signal.signal(signal.SIGINT, previous)
        code = out.decode(errors="replace").strip()
        if not CODE.fullmatch(code):
            raise MfaError(f"{what} did not print a 6-digit code" + (f": {first}" if first else ""))
        return code
