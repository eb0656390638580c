"""Getting an MFA code: given on the command line, printed by the profile's
mfa_process, generated from a stored TOTP secret, or typed on the terminal (/dev/tty,
never stdout), in that order. A code is never sent twice: STS would reject the replay,
and a user would not know why."""
from __future__ import annotations

import re
import time
from collections.abc import Callable

from ..core.errors import Cancelled, MfaError, UsageError
from ..host.terminal import Terminal

STEP = 30  # seconds per TOTP code
CODE = re.compile(r"[0-9]{6}")
MALFORMED_LIMIT = 3  # entries at the prompt that are not a code, before giving up


def validate(code: str) -> str:
    if not CODE.fullmatch(code or ""):
        raise UsageError("an MFA code is 6 digits")
    return code


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
            from ..core.errors import KeyringError

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

        from ..host.process import run

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
