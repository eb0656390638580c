"""The user's terminal: asking and saying on /dev/tty (or the Windows console), never
on stdout, which belongs to the shell's `eval`."""
from __future__ import annotations

import os
import sys

from ..core.errors import Cancelled, MfaError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO


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
