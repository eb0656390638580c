"""Real interactive bash, zsh and fish on a pseudo-terminal (pexpect), set up the way a
user would: the one init line in the shell's own rc file in a throwaway HOME.

`awsenv` is initialised through a recording copy of the program (`Recorder`), so a test
can tell whether a prompt or a command started Python at all.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pexpect

TIMEOUT = 20
READY = "READY:"  # the prompt ends with this; nothing a test types contains it
PROMPT = re.compile(r"READY:[$%>] ")
VALUE = re.compile(r"VAL:(.*?):END")
ESCAPES = re.compile(r"\x1b\[[0-9;?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-B]|\x1b[=>]")

INIT = {
    "bash": 'eval "$(awsenv init bash)"',
    "zsh": 'eval "$(awsenv init zsh)"',
    "fish": "awsenv init fish | source",
}


class Recorder:
    """A copy of the awsenv entry point that appends one line per run to a log. Init
    run through it bakes its path into the wrapper (it is sys.argv[0])."""

    def __init__(self, root: Path):
        self.bin = root / "recbin"
        self.bin.mkdir(exist_ok=True)
        self.log = root / "awsenv-runs.log"
        self.log.touch()
        script = self.bin / "awsenv"
        script.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"with open({str(self.log)!r}, 'a') as log:\n"
            "    log.write(' '.join(sys.argv[1:]) + '\\n')\n"
            "from awsenv.cli.main import main\n"
            "sys.exit(main())\n"
        )
        script.chmod(0o755)

    def runs(self) -> list[str]:
        return self.log.read_text().splitlines()


class Terminal:
    def __init__(self, shell: str, world, *, before: str = "", after: str = "", init: str | None = None,
                 env: dict | None = None):
        self.shell = shell
        self.recorder = Recorder(world.root)
        self.output = ""  # everything read so far, for "this never appeared" checks
        home = world.home
        env = {**world.env, "PATH": f"{self.recorder.bin}:{world.env['PATH']}", **(env or {})}
        init_line = INIT[shell] if init is None else init
        if shell == "bash":
            rc = home / ".bashrc"
            rc.write_text(f"PS1='{READY}$ '\n{before}\n{init_line}\n{after}\n")
            argv = ["bash", "--noprofile", "--rcfile", str(rc), "-i"]
        elif shell == "zsh":
            zdot = home / ".zsh"
            zdot.mkdir(exist_ok=True)
            (zdot / ".zshrc").write_text(
                f"PROMPT='{READY}%% '\nunsetopt prompt_sp\n{before}\n{init_line}\n{after}\n"
            )
            env["ZDOTDIR"] = str(zdot)
            argv = ["zsh", "-i"]
        else:
            conf = home / ".config" / "fish"
            conf.mkdir(parents=True, exist_ok=True)
            (conf / "config.fish").write_text(
                "set -g fish_greeting\n"
                f"function fish_prompt\n    printf '{READY}> '\nend\n{before}\n{init_line}\n{after}\n"
            )
            env["XDG_CONFIG_HOME"] = str(home / ".config")
            # An interactive fish with no generated_completions folder starts a Python
            # script in the background that parses every man page for minutes; it would
            # outlive the test and take a core from the next ones.
            data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
            (data / "fish" / "generated_completions").mkdir(parents=True, exist_ok=True)
            argv = ["fish", "-i"]
        self.child = pexpect.spawn(
            argv[0], argv[1:], env=env, cwd=str(world.root), encoding="utf-8",
            codec_errors="replace", timeout=TIMEOUT, dimensions=(40, 200),
        )
        self.prompt()

    def _read(self) -> str:
        text = (self.child.before or "") + (self.child.after if isinstance(self.child.after, str) else "")
        text = ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "")
        self.output += text
        return text

    def prompt(self) -> str:
        """Wait for the next prompt; return what came before it, with the prompt line."""
        self.child.expect(PROMPT)
        return self._read()

    def expect(self, pattern) -> str:
        self.child.expect(pattern)
        return self._read()

    def run(self, line: str) -> str:
        """Type a line and press Enter; return what appeared until the next prompt."""
        self.child.send(line + "\r")
        return self.prompt()

    def cancel_line(self) -> None:
        """Ctrl-C at the line editor: drop what was typed, get a fresh prompt."""
        self.child.sendcontrol("c")
        try:
            self.child.expect(PROMPT, timeout=5)
        except pexpect.TIMEOUT:
            self.child.send("\r")  # a redraw that got lost under load
            self.child.expect(PROMPT)
        self._read()

    def value(self, name: str) -> str:
        fmt = r"'V\x41L:%s:END\n'"  # typed as V\x41L, printed as VAL: no false match on the echo
        out = self.run(f'printf {fmt} "${name}"')
        found = VALUE.findall(out)
        assert found, f"no value for {name} in {out!r}"
        return found[-1]

    def number(self, name: str) -> int:
        return int(self.value(name))

    def close(self) -> None:
        self.child.close(force=True)


def now() -> int:
    return int(time.time())
