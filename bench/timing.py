"""How `make bench` times a command: whole processes, wall clock from spawn to reaped,
and the series of those times."""
from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path


@dataclass
class Run:
    seconds: float
    rc: int
    out: str
    err: str


@dataclass
class Series:
    name: str
    times: list[float] = field(default_factory=list)  # seconds
    failures: list[str] = field(default_factory=list)
    sts: dict[str, int] = field(default_factory=dict)  # STS action -> calls over all runs
    emulator: float = 0.0  # seconds moto spent serving those calls

    def add(self, run: Run) -> None:
        self.times.append(run.seconds)

    @property
    def ms(self) -> list[float]:
        return [t * 1000 for t in self.times]

    def median(self) -> float:
        return statistics.median(self.ms) if self.ms else float("nan")

    def spread(self) -> str:
        if not self.ms:
            return "-"
        ms = sorted(self.ms)
        if len(ms) >= 4:
            q = statistics.quantiles(ms, n=4)
            return f"{ms[0]:.0f}–{ms[-1]:.0f} (IQR {q[0]:.0f}–{q[2]:.0f})"
        return f"{ms[0]:.0f}–{ms[-1]:.0f}"


def run(argv: list[str], env: dict[str, str], cwd: Path, scratch: Path) -> Run:
    """One whole process, as a user starts it: wall clock from spawn to reaped."""
    with open(scratch / "out", "w+") as out, open(scratch / "err", "w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _pid, status = os.waitpid(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(seconds, proc.returncode, out.read(), err.read())


def seconds_between(start: str, end: str) -> float:
    """EPOCHREALTIME has µs in bash and ns in zsh, with the locale's decimal mark."""
    return float(Decimal(end.replace(",", ".")) - Decimal(start.replace(",", ".")))


def fmt_ms(value: float) -> str:
    return "-" if value != value else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"
