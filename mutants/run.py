"""`make mutants`: mutation testing with cosmic-ray, one session per unit below.

cosmic-ray changes the source file on disk for each mutant, so the `awsenv` programs
that the tests start as subprocesses (the real CLI, the agent, the shells' hooks) run
the mutant too; a tool that mutates a copy in the test process would only reach the
few in-process tests. Each unit is a module (or some functions of one) and the test
files written for it.

The operators are cut down to one replacement per construct, as mutmut does (a `<`
becomes `<=`, not all ten other comparisons).

Which tests run for a mutant is decided by coverage, measured once before the first
mutant (in the pytest process per test function, and in every awsenv process a test
starts, which conftest labels with the test's id): only the tests that reach the
mutated lines run, with -x, so a mutant costs seconds rather than the whole suite. A
line that a hundred tests reach would still cost minutes: a first pass runs at most 6
of them, the unit's own and the narrowest first, and a second pass runs the survivors
again with up to 40. A mutant on a line no test reaches survives, and is listed as
such. Results stay in .mutants/UNIT.sqlite, so a second run only does what is left.

    python mutants/run.py [UNIT ...]        run (all units by default), then report
    python mutants/run.py --report [UNIT]   report only
    python mutants/run.py --test            what cosmic-ray runs for each mutant
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutants"
PYTEST = f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p no:randomly"

# unit: (module, functions to mutate or None for all, tests)
UNITS: dict[str, tuple[str, list[str] | None, list[str]]] = {
    # The agent's safety checks: who may connect, idle exit, exit when the socket goes.
    "agent-checks": ("awsenv/agent/server.py", ["_peer_is_us", "serve", "_answer"], ["tests/test_agent.py",
                                                                             "tests/test_broker.py"]),
    "runtime": ("awsenv/host/runtime.py", None, ["tests/test_agent.py", "tests/test_windows.py"]),
    "mfa": ("awsenv/session/mfa.py", None, ["tests/test_mfa_process.py", "tests/test_mfa_codes.py", "tests/test_use_and_keys.py",
                                    "tests/test_windows.py"]),
    "process": ("awsenv/host/process.py", None, ["tests/test_mfa_process.py", "tests/test_session_cache.py", "tests/test_windows.py"]),
    "environ": ("awsenv/core/environ.py", None, ["tests/test_use_and_keys.py", "tests/test_session_cache.py", "tests/test_wrapper.py"]),
    "shells": ("awsenv/shells", None, ["tests/test_quoting.py", "tests/test_pwsh.py", "tests/test_hostile_profile.py",
                                       "tests/test_shells.py"]),
    "session": ("awsenv/session/resolver.py", None, ["tests/test_use_and_keys.py", "tests/test_session_cache.py", "tests/test_partial_failures.py",
                                            "tests/test_broker.py", "tests/test_errors_and_help.py"]),
}

# What is kept of cosmic-ray's operators (a match is excluded).
KEEP_BINARY = "Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Div|Mod_FloorDiv"
KEEP_COMPARE = "Eq_NotEq|NotEq_Eq|Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Is_IsNot|IsNot_Is"
EXCLUDE = [
    f"core/ReplaceBinaryOperator_(?!({KEEP_BINARY})$)",  # `|` is mostly in annotations, never run
    f"core/ReplaceComparisonOperator_(?!({KEEP_COMPARE})$)",
    "core/ReplaceUnaryOperator_(?!(Delete_Not|USub_UAdd)$)",
    "core/VariableReplacer", "core/VariableInserter", "core/RemoveDecorator",
    # A number off by one (a 90 s memory becoming 91 s, a 5 s timeout 6 s) is below what a
    # test can see without a fake clock; the limits that matter have tests of their own
    # (the MFA memory at 89 and 91 s, MIN_TTL at its threshold).
    "core/NumberReplacer",
]


def lines_of(module: str, functions: list[str]) -> list[str]:
    tree = ast.parse((ROOT / module).read_text())
    found = {node.name: f"{node.lineno}-{node.end_lineno}" for node in ast.walk(tree)
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in functions}
    missing = set(functions) - set(found)
    if missing:
        sys.exit(f"mutants: no function {', '.join(sorted(missing))} in {module}")
    return [found[name] for name in functions]


def config(unit: str, timeout: float) -> Path:
    module, functions, tests = UNITS[unit]
    text = [
        "[cosmic-ray]",
        f"module-path = {json.dumps(module)}",
        f"timeout = {timeout}",
        "excluded-modules = []",
        f"test-command = {json.dumps(f'{sys.executable} {Path(__file__).resolve()} --test')}",
        "",
        "[cosmic-ray.distributor]",
        'name = "local"',
        "",
        "[cosmic-ray.filters.operators-filter]",
        f"exclude-operators = {json.dumps(EXCLUDE)}",
    ]
    if functions:
        text += ["", "[cosmic-ray.filters.line-filter]",
                 f"lines = {{ {json.dumps(module)} = {json.dumps(lines_of(module, functions))} }}"]
    path = WORK / f"{unit}.toml"
    path.write_text("\n".join(text) + "\n")
    return path


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        sys.exit(f"mutants: {name} is not installed; run `make mutants`, which installs cosmic-ray")
    return found


def run(unit: str) -> None:
    # A mutant that loops forever is killed by the timeout; it must be well above what
    # the tests of a pass take (a shell test takes 10 to 20 s).
    cfg, db = config(unit, FIRST_TIMEOUT), WORK / f"{unit}.sqlite"
    if not db.exists():
        subprocess.run([tool("cosmic-ray"), "init", str(cfg), str(db)], cwd=ROOT, check=True)
        subprocess.run([tool("cr-filter-operators"), str(db), str(cfg)], cwd=ROOT, check=True)
        if UNITS[unit][1]:
            subprocess.run([tool("cr-filter-lines"), "--config", str(cfg), str(db)], cwd=ROOT, check=True)
        print(f"mutants: {unit}: {pending(db)} mutants to run", flush=True)
    started = time.monotonic()
    # CI=true: a missing tool fails a test rather than skipping it (a skip would "kill" nothing).
    env = {**os.environ, "CI": "true", "PYTHONDONTWRITEBYTECODE": "1"}
    # Two passes: every mutant with a few tests, then the survivors with many more.
    for cap in (FIRST_PASS, SECOND_PASS):
        if cap == SECOND_PASS:
            with sqlite3.connect(db) as conn:
                again = conn.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED' AND output LIKE ?",
                                     (f"%running {FIRST_PASS} of the %",)).rowcount
            if not again:
                break
            print(f"mutants: {unit}: {again} survivors again, with up to {SECOND_PASS} tests each", flush=True)
            cfg = config(unit, SECOND_TIMEOUT)
        subprocess.run([tool("cosmic-ray"), "exec", str(cfg), str(db)], cwd=ROOT, check=True,
                       env={**env, "AWSENV_MUTANTS_TESTS": str(cap)})
    print(f"mutants: {unit}: done in {time.monotonic() - started:.0f} s", flush=True)


def pending(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM work_items WHERE job_id NOT IN (SELECT job_id FROM work_results)"
                            ).fetchone()[0]


def report(unit: str) -> tuple[int, int, list[str], list[str]]:
    """(killed, run, survivors and mutants killed by the timeout, as 'file:line operator').
    A timeout is a kill (a mutant that never ends, such as a loop that no longer
    advances), but it is listed, to be checked."""
    db = WORK / f"{unit}.sqlite"
    if not db.exists():
        return 0, 0, [], []
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT r.test_outcome, r.worker_outcome, m.module_path, m.start_pos_row, m.operator_name, m.occurrence, "
            "r.output "
            "FROM work_results r JOIN mutation_specs m ON m.job_id = r.job_id"
        ).fetchall()
    killed = run_ = 0
    survivors, timeouts = [], []
    for test_outcome, worker_outcome, path, row, operator, occurrence, output in rows:
        if (worker_outcome or "").upper() == "SKIPPED":
            continue
        run_ += 1
        if (test_outcome or "").upper() == "SURVIVED":
            ran = re.search(r"running (\d+) of the (\d+) tests", output or "")
            reach = "no test reaches it" if ran is None else f"{ran[1]} of {ran[2]} tests reaching it ran"
            survivors.append(f"{path}:{row} {operator.removeprefix('core/')} #{occurrence} ({reach})")
        else:
            killed += 1
            if output == "timeout":
                timeouts.append(f"{path}:{row} {operator.removeprefix('core/')} #{occurrence}")

    def by_line(entry: str) -> tuple[str, int]:
        return entry.split(":")[0], int(entry.split(":")[1].split()[0])

    return killed, run_, sorted(survivors, key=by_line), sorted(timeouts, key=by_line)


# which tests reach which line ------------------------------------------------------------
MAP = WORK / "tests.json"
FIRST_PASS, SECOND_PASS = 6, 40  # tests run per mutant
FIRST_TIMEOUT, SECOND_TIMEOUT = 300.0, 1800.0  # seconds
PTH = "awsenv_mutants_coverage.pth"


def all_tests() -> list[str]:
    """The whole suite: a test of another file (the shells' end-to-end runs, the first
    day's walkthrough) may be the one that notices a mutant."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py"))


def measure() -> None:
    """Run the whole suite once under coverage and keep, for each line of awsenv, the
    ids of the tests that ran it (.mutants/tests.json)."""
    import sysconfig

    tests = all_tests()
    cov = WORK / "coverage"
    shutil.rmtree(cov, ignore_errors=True)
    cov.mkdir()
    rc = cov / "coveragerc"
    rc.write_text(
        "[run]\nparallel = true\nsigterm = true\n"
        f"data_file = {cov / 'data'}\nsource = {ROOT / 'awsenv'}\n"
        # A process a test started is labelled by conftest with the test's id; the
        # pytest process itself by the test function that is running.
        "context = ${MUTANTS_TEST_ID}\ndynamic_context = test_function\n"
    )
    # Every Python process of the venv starts coverage when COVERAGE_PROCESS_START is set.
    pth = Path(sysconfig.get_paths()["purelib"]) / PTH
    pth.write_text("import os; os.environ.get('COVERAGE_PROCESS_START') and __import__('coverage').process_startup()\n")
    env = {**os.environ, "COVERAGE_PROCESS_START": str(rc), "CI": "true", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MUTANTS_TEST_ID", None)
    print(f"mutants: measuring which tests reach which line ({len(tests)} test files)...", flush=True)
    failed_list = cov / "failed.txt"
    try:
        # Not -x: a test that fails under coverage (those that check what a process
        # imports: coverage imports more) only loses its part of the map, and is named.
        done = subprocess.run([*PYTEST.replace(" -x", "").split(), "-rf", *tests], cwd=ROOT, env=env,
                              capture_output=True, text=True)
    finally:
        pth.unlink()
    failed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
    failed_list.write_text("".join(f"{name}\n" for name in failed))
    print(done.stdout.splitlines()[-1] if done.stdout else done.stderr[-2000:], flush=True)
    if len(failed) > 10 or done.returncode not in (0, 1):
        sys.exit("mutants: the tests fail without any mutant; fix that first")
    for name in failed:
        print(f"mutants: failed under coverage, so the map may miss lines it reaches: {name}", flush=True)
    subprocess.run([sys.executable, "-m", "coverage", "combine", "--quiet", f"--rcfile={rc}"], cwd=ROOT, check=True)
    build_map(tests)


def build_map(tests: list[str]) -> None:
    from coverage import CoverageData

    ids = collected(tests)
    drawn = hypothesis_tests(tests, ids)
    data = CoverageData(str(WORK / "coverage" / "data"))
    data.read()
    found: dict[str, dict[str, list[str]]] = {}
    for path in data.measured_files():
        relative = str(Path(path).resolve().relative_to(ROOT))
        by_line = data.contexts_by_lineno(path)
        found[relative] = {str(line): sorted({t for c in contexts for t in tests_of(c, ids, drawn)})
                           for line, contexts in by_line.items()}
    MAP.write_text(json.dumps({"head": head(), "lines": found}))


def hypothesis_tests(tests: list[str], ids: list[str]) -> list[str]:
    """The ids of @given tests. Coverage names their context after Hypothesis's own
    runner (`ConjectureRunner.test_function`), not after the test."""
    found = []
    for test_file in tests:
        for node in ast.walk(ast.parse((ROOT / test_file).read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Call) and getattr(d.func, "id", "") == "given" for d in node.decorator_list):
                prefix = f"{test_file}::{node.name}"
                found += [i for i in ids if i == prefix or i.startswith(prefix + "[")]
    return found


def measured_for() -> str | None:
    """The tree the map (and so every result beside it) was measured on."""
    try:
        return json.loads(MAP.read_text())["head"]
    except (OSError, ValueError, KeyError):
        return None


def head() -> str:
    """What the results belong to: the committed awsenv/ and tests/ (not this script)."""
    return subprocess.run(["git", "rev-parse", "HEAD:awsenv", "HEAD:tests"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.replace("\n", " ").strip()


def collected(tests: list[str]) -> list[str]:
    # One -q lists the ids; two would list only a count per file.
    done = subprocess.run([*PYTEST.replace(" -q", "").split(), "--collect-only", "-q", *tests], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    if not ids:
        sys.exit(f"mutants: collected no test ids from {' '.join(tests)}")
    return ids


def tests_of(context: str, ids: list[str], drawn: list[str]) -> list[str]:
    """Test ids for a coverage context: a test id itself (an awsenv process), or the
    `module.function` of the pytest process's test function (all its parameters)."""
    if not context:
        return []
    if "::" in context:
        return [context]
    if context.startswith("hypothesis."):
        return drawn
    module, _, function = context.rpartition(".")
    if module.count("."):  # a method: module.Class.function
        module, _, cls = module.partition(".")
        function = f"{cls}::{function}"
    prefix = f"tests/{module}.py::{function}"
    return [i for i in ids if i == prefix or i.startswith(prefix + "[")]


def breadth(reach: dict) -> dict[str, int]:
    """How many lines of awsenv each test reaches (computed once, kept beside the map)."""
    cache = WORK / "breadth.json"
    if cache.exists():
        return json.loads(cache.read_text())
    size: dict[str, int] = {}
    for lines in reach.values():
        for tests in lines.values():
            for test in tests:
                size[test] = size.get(test, 0) + 1
    cache.write_text(json.dumps(size))
    return size


def statement_lines(path: str, lines: range) -> list[int]:
    """The changed lines, and for each the first line of the statement it is part of:
    coverage records a statement under its first line, so the continuation line of
    `if a \\n and b:` or of a call's arguments is reached by no test of its own."""
    found = list(lines)
    with open(ROOT / path, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    for number in lines:
        around = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)
                  and n.lineno <= number <= (n.end_lineno or n.lineno)]
        # The innermost statement: the one that starts last (a body's line is its own).
        if around:
            first = max(n.lineno for n in around)
            if first not in found:
                found.append(first)
    return found


def test_mutant() -> int:
    """cosmic-ray's test command: the tests that reach the lines the mutant changed."""
    diff = subprocess.run(["git", "diff", "-U0", "HEAD", "--", "awsenv"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout
    if not diff:
        print("mutants: no mutant on disk", file=sys.stderr)
        return 2
    if not MAP.exists():
        sys.exit("mutants: no map of which tests reach which line yet; run `make mutants`")
    reach = json.loads(MAP.read_text())["lines"]
    tests: list[str] = []
    path = None
    for line in diff.splitlines():
        if line.startswith("--- a/"):
            path = line[len("--- a/"):]
        elif line.startswith("@@") and path:
            old = line.split()[1].lstrip("-")
            start, _, count = old.partition(",")
            for number in statement_lines(path, range(int(start), int(start) + max(int(count or 1), 1))):
                tests += [t for t in reach.get(path, {}).get(str(number), []) if t not in tests]
    if not tests:
        print("mutants: no test reaches the mutated line")
        return 0
    # A line every test reaches (the agent's main loop) would cost the whole suite: at
    # most AWSENV_MUTANTS_TESTS run (see run()). First those of the unit's own test
    # files, in their order, and in each the narrowest first (those that reach the
    # fewest lines of awsenv: the test written for a behaviour, before end-to-end ones).
    unit = next((u for u, (module, _f, _t) in UNITS.items() if path and path.startswith(module)), None)
    own = UNITS[unit][2] if unit else []
    rank = {name: i for i, name in enumerate(own)}
    size = breadth(reach)
    tests.sort(key=lambda t: (rank.get(t.split("::")[0], len(own)), size.get(t, 0)))
    chosen = tests[:int(os.environ.get("AWSENV_MUTANTS_TESTS") or FIRST_PASS)]
    print(f"mutants: running {len(chosen)} of the {len(tests)} tests that reach the mutated lines", flush=True)
    return subprocess.run([*PYTEST.split(), *chosen], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if argv == ["--test"]:
        return test_mutant()
    only_report = "--report" in argv
    units = [a for a in argv if a != "--report"] or list(UNITS)
    unknown = [u for u in units if u not in UNITS]
    if unknown:
        sys.exit(f"mutants: unknown unit {', '.join(unknown)}; units: {', '.join(UNITS)}")
    WORK.mkdir(exist_ok=True)
    if not only_report:
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "awsenv"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout
        if dirty:
            sys.exit("mutants: awsenv/ has uncommitted changes; commit or stash them (each mutant is a diff from HEAD)")
        for cache in (ROOT / "awsenv").rglob("__pycache__"):
            shutil.rmtree(cache)
        # Results and coverage belong to one tree: line numbers move with the next.
        if measured_for() != head():
            shutil.rmtree(WORK)
            WORK.mkdir()
            measure()
        for unit in units:
            run(unit)
    total_killed = total_run = 0
    for unit in units:
        killed, ran, survivors, timeouts = report(unit)
        total_killed, total_run = total_killed + killed, total_run + ran
        rate = f"{100 * killed / ran:.0f}%" if ran else "-"
        db = WORK / f"{unit}.sqlite"
        left = f", {pending(db)} not run yet" if db.exists() and pending(db) else ""
        print(f"{unit}: {killed}/{ran} killed ({rate}), {len(survivors)} survived{left}")
        for line in survivors:
            print(f"  survived: {line}")
        for line in timeouts:
            print(f"  killed by the timeout: {line}")
    if total_run:
        print(f"all: {total_killed}/{total_run} killed ({100 * total_killed / total_run:.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
