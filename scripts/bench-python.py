#!/usr/bin/env python3
"""Whole-process benchmark of epcache's Python front: stock vs enabled.

Usage (from the repository; needs python3 >= 3.11, cargo, and PyPI or
pip's find-links for maturin)::

    python3 scripts/bench-python.py                 # build, set up, measure (~3-4 min)
    python3 scripts/bench-python.py --rounds 81 --json target/bench-python/result.json

What it builds, under target/bench-python/ (``--dir``):

- ``wheel/``: one wheel, ``pip wheel . --no-deps`` (``--wheel FILE`` uses a
  given one; ``--reuse-wheel`` the one already there);
- ``site/``: ``--count`` (400) distributions from
  scripts/gen-site-packages.py. Their ``pytest11``, ``flake8.extension``
  and ``flake8.report`` sections are renamed ``bench-renamed.*`` (the
  modules they name do not exist, and pytest and flake8 import every
  plugin they find); every other byte is the generator's;
- the pinned test venv (scripts/make-venv.sh target/test-venv: pytest with
  7 plugins, flake8 with 6, sphinx, ...);
- ``venv-stock/`` and ``venv-enabled/``: two fresh venvs (no pip), the
  same wheel installed in each, and a ``00-bench-links.pth`` that adds the
  generated tree and the pinned venv's site-packages to ``sys.path``;
  ``python -m epcache enable`` in the second;
- ``cache/``: the EPCACHE_DIR of every run. Indexes are published with
  EPCACHE_SETTLE_SECS=0 after warm-up runs, every path entry is checked to
  be a hit, and traced runs check that the enabled processes scanned
  nothing (before and after the timing).

What it measures: whole processes, the two venvs interleaved command by
command (the order flipped every round), ``--rounds`` (41) rounds, medians.
With hyperfine on PATH each round is one ``hyperfine -N --runs 1`` call
over the round's commands in that order (wall, user and system time come
from hyperfine); without it (or ``--timer internal``) the script spawns
and times the processes itself (posix_spawn + wait4). ``-X importtime``
runs are parsed for the hook's and importlib.metadata's import cost; the
31-query figure is timed inside the process. See docs/benchmarks.md,
"The Python front", for what each figure means.
"""

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIN_ROUNDS = 41
PLUGIN_GROUP = "pytest11"
RENAMED_GROUPS = ("pytest11", "flake8.extension", "flake8.report")
REPEAT_GROUP = "pygments.lexers"
REPEAT_QUERIES = 31

# Timed whole processes: (key, label, argv after the interpreter).
# {name!r} is replaced by a distribution name of the generated tree,
# "{tests}" by the tiny test directory.
Q_EP = f'import importlib.metadata as m; m.entry_points(group="{PLUGIN_GROUP}")'
Q_VERSION = "import importlib.metadata as m; m.version({name!r})"
Q_SCAN = (
    "import importlib.metadata as m; "
    "found = [(ep.name, d.metadata['Name'], d.version) for d in m.distributions() "
    f"for ep in d.entry_points if ep.group == '{PLUGIN_GROUP}']"
)
COMMANDS = [
    ("pass", "python -c pass", ["-c", "pass"]),
    ("import", "python -c 'import importlib.metadata'", ["-c", "import importlib.metadata"]),
    ("ep", f"entry_points(group='{PLUGIN_GROUP}')", ["-c", Q_EP]),
    ("version", "version(name)", ["-c", Q_VERSION]),
    ("scan", f"distributions() loop, group '{PLUGIN_GROUP}'", ["-c", Q_SCAN]),
    ("pytest", "pytest --co -q (tiny test dir)", ["-m", "pytest", "--co", "-q", "{tests}"]),
    ("flake8", "flake8 --version", ["-m", "flake8", "--version"]),
]
SIDES = ("stock", "enabled")

# Answers of both venvs, compared before anything is timed.
CHECK = r"""
import json, sys, importlib.metadata as m
name = sys.argv[1]
eps = m.entry_points(group=%(group)r)
found = [(ep.name, d.metadata["Name"], d.version) for d in m.distributions()
         for ep in d.entry_points if ep.group == %(group)r]
dists = list(m.distributions())
print(json.dumps({
    "entry_points": sorted((ep.name, ep.value, ep.dist.name if ep.dist else None) for ep in eps),
    "version": m.version(name),
    "scan": sorted(found),
    "distributions": len(dists),
    "all_entry_points": sum(len(d.entry_points) for d in dists),
}))
""" % {"group": PLUGIN_GROUP}

# The same queries timed inside the process (the import, then the query):
# a cross-check of figure 3 with the process start-up left out.
INSIDE = (
    "import time; t0 = time.perf_counter(); import importlib.metadata as m; "
    "t1 = time.perf_counter(); {query}; t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
)

# Run in the enabled venv with EPCACHE_DISABLE=1, so that the start-up
# line did nothing: it then times, inside the process, what epcache adds
# at start (the .pth line, executed twice, as site.py does with a venv's
# .pth files) and at the import of importlib.metadata (loading
# epcache._hook by its path, and putting the stand-ins on the module).
# Prints three numbers, in seconds.
HOOK_INSIDE = r"""
import os, sys, time
line = open(sys.argv[1]).read()
del os.environ["EPCACHE_DISABLE"]
t0 = time.perf_counter(); exec(line); exec(line); t1 = time.perf_counter()
watcher = sys.meta_path[0]
assert getattr(watcher, "_epcache_watcher", False)
hook = watcher.find_spec.__globals__["_load_hook"](); t2 = time.perf_counter()
sys.meta_path.remove(watcher)
import importlib.metadata as m
t3 = time.perf_counter(); hook._patch(m); t4 = time.perf_counter()
assert hasattr(m.entry_points, "__epcache_stock__")
print(t1 - t0, t2 - t1, t4 - t3)
"""

REPEAT = r"""
import json, time, importlib.metadata as m
times = []
for _ in range(%(n)d):
    t = time.perf_counter()
    m.entry_points(group=%(group)r)
    times.append(time.perf_counter() - t)
print(json.dumps(times))
""" % {"n": REPEAT_QUERIES, "group": REPEAT_GROUP}

PUBLISH = r"""
import json, os, sys
import epcache
paths = sys.path + sys.argv[1:]
epcache.rebuild(paths)
print(json.dumps([
    {"path_entry": s["path_entry"], "verdict": s["verdict"], "reason": s["reason"]}
    for s in epcache.status(paths)
]))
"""

TINY_TESTS = {
    "test_one.py": "def test_a():\n    assert 1 + 1 == 2\n\n\ndef test_b():\n    assert 'x'.upper() == 'X'\n",
    "test_two.py": (
        "import pytest\n\n\n@pytest.mark.parametrize('n', [1, 2, 3])\n"
        "def test_n(n):\n    assert n > 0\n"
    ),
}


def log(msg):
    print(f"bench-python: {msg}", file=sys.stderr, flush=True)


def die(msg):
    sys.exit(f"bench-python: error: {msg}")


def run(cmd, env=None, cwd=None, what=None):
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        die(f"{what or shlex.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


# ------------------------------------------------------------------ set-up


def build_wheel(args, work):
    if args.wheel:
        return os.path.abspath(args.wheel)
    out = os.path.join(work, "wheel")
    if args.reuse_wheel:
        wheels = sorted(f for f in os.listdir(out) if f.endswith(".whl")) if os.path.isdir(out) else []
        if not wheels:
            die(f"--reuse-wheel: no wheel in {out}")
        return os.path.join(out, wheels[-1])
    shutil.rmtree(out, ignore_errors=True)
    log("building the wheel (pip wheel . --no-deps; maturin builds the release extension)")
    run([sys.executable, "-m", "pip", "wheel", REPO, "-w", out, "--no-deps", "-q",
         "--disable-pip-version-check"], what="pip wheel")
    wheels = [f for f in os.listdir(out) if f.endswith(".whl")]
    if len(wheels) != 1:
        die(f"expected one wheel in {out}, found {wheels}")
    return os.path.join(out, wheels[0])


def generate_site(site, count):
    gen = os.path.join(REPO, "scripts", "gen-site-packages.py")
    run([sys.executable, gen, site, "--count", str(count)], what="gen-site-packages.py")
    renamed = 0
    for child in sorted(os.listdir(site)):
        path = os.path.join(site, child, "entry_points.txt")
        if not child.endswith((".dist-info", ".egg-info")) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = text
        for group in RENAMED_GROUPS:
            new = new.replace(f"[{group}]", f"[bench-renamed.{group}]")
        if new != text:
            renamed += 1
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
    return renamed


def pick_name(site):
    """A distribution name from the middle of the generated tree."""
    infos = sorted(c for c in os.listdir(site) if c.endswith(".dist-info"))
    return infos[len(infos) // 2][: -len(".dist-info")].rsplit("-", 1)[0]


def make_venv(path, wheel, links):
    run([sys.executable, "-m", "venv", "--clear", "--without-pip", path], what=f"venv {path}")
    python = os.path.join(path, "bin", "python")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         "-q", "--disable-pip-version-check", wheel], what=f"pip install into {path}")
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    with open(os.path.join(purelib, "00-bench-links.pth"), "w") as f:
        f.write("".join(p + "\n" for p in links))
    return python, purelib


def bench_env(cache):
    env = dict(os.environ, EPCACHE_DIR=cache)
    for var in ("EPCACHE_DISABLE", "EPCACHE_STRICT", "EPCACHE_TRACE", "EPCACHE_SETTLE_SECS",
                "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE",
                "PYTHONSAFEPATH", "PYTHONPROFILEIMPORTTIME", "PYTEST_ADDOPTS", "PYTEST_PLUGINS",
                "PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        env.pop(var, None)
    return env


def traced_stats(python, argv_tail, env, tmp):
    """Runs one enabled process with EPCACHE_TRACE; its stats record."""
    trace = os.path.join(tmp, "trace.jsonl")
    if os.path.exists(trace):
        os.remove(trace)
    run([python] + argv_tail, env=dict(env, EPCACHE_TRACE=trace))
    try:
        with open(trace) as f:
            lines = f.read().splitlines()
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def check_traces(python, commands, env, tmp, when):
    """Every enabled process that queries must answer without scanning."""
    problems = []
    summary = {}
    for key, argv_tail in commands:
        rec = traced_stats(python, argv_tail, env, tmp)
        summary[key] = rec
        if key in ("pass", "import"):
            continue
        if not rec or "scans" not in rec:
            problems.append(f"{key}: no trace record ({rec})")
        elif rec.get("scans") or not rec.get("answered") or rec.get("fallbacks"):
            problems.append(f"{key}: scans={rec.get('scans')} answered={rec.get('answered')} "
                            f"fallbacks={rec.get('fallbacks')} hits={rec.get('hits')}")
    for p in problems:
        log(f"WARNING ({when}): enabled run not answered from a warm cache: {p}")
    return summary, problems


# ------------------------------------------------------------------ timing


def hyperfine_version():
    exe = shutil.which("hyperfine")
    if not exe:
        return None, None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return exe, out


class HyperfineTimer:
    """One ``hyperfine -N --runs 1`` per round, over the round's commands in
    order, so the interleaving is ours and the timing hyperfine's."""

    def __init__(self, exe, env, tmp):
        self.exe, self.env, self.out = exe, env, os.path.join(tmp, "hyperfine.json")

    def round(self, argvs):
        cmd = [self.exe, "-N", "--runs", "1", "--style", "none", "--output", "null",
               "--export-json", self.out]
        cmd += [shlex.join(a) for a in argvs]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            die(f"hyperfine failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
        with open(self.out) as f:
            results = json.load(f)["results"]
        if len(results) != len(argvs) or any(c for r in results for c in r["exit_codes"]):
            die(f"hyperfine: a command failed: {[r['exit_codes'] for r in results]}")
        return [(r["times"][0], r["user"] + r["system"]) for r in results]


class InternalTimer:
    """posix_spawn + wait4: wall time around the child, and its CPU time."""

    def __init__(self, env):
        self.env = env
        self.actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ]

    def round(self, argvs):
        out = []
        for argv in argvs:
            t = time.perf_counter()
            pid = os.posix_spawn(argv[0], argv, self.env, file_actions=self.actions)
            _, status, usage = os.wait4(pid, 0)
            wall = time.perf_counter() - t
            if os.waitstatus_to_exitcode(status) != 0:
                die(f"{shlex.join(argv)} failed (status {status})")
            out.append((wall, usage.ru_utime + usage.ru_stime))
        return out


def parse_importtime(stderr):
    """The ``-X importtime`` tree: roots of nodes (name, self, cum, children)."""
    pending = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3:
            continue
        try:
            self_us, cum_us = int(parts[0]), int(parts[1])
        except ValueError:
            continue  # the header line
        raw = parts[2].rstrip()
        depth = (len(raw) - len(raw.lstrip())) // 2
        node = {"name": raw.strip(), "depth": depth, "self": self_us, "cum": cum_us, "children": []}
        while pending and pending[-1]["depth"] > depth:
            node["children"].insert(0, pending.pop())
        pending.append(node)
    return pending


def walk(nodes):
    for n in nodes:
        yield n
        yield from walk(n["children"])


def outermost(nodes, pred):
    for n in nodes:
        if pred(n):
            yield n
        else:
            yield from outermost(n["children"], pred)


def is_epcache(node):
    """epcache, epcache.*, and the top-level hook module enable may write
    (``_epcache_startup``)."""
    return "epcache" in node["name"].split(".")[0]


def importtime(python, code, env):
    proc = run([python, "-X", "importtime", "-c", code], env=env)
    return parse_importtime(proc.stderr)


# ------------------------------------------------------------------ report


def ms(seconds, digits=2):
    return "-" if seconds is None else f"{seconds * 1e3:.{digits}f} ms"


def signed_ms(seconds, digits=2):
    return "-" if seconds is None else f"{seconds * 1e3:+.{digits}f} ms"


def us(microseconds):
    return f"{microseconds / 1e3:.3f} ms"


def med(values):
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See docs/benchmarks.md, 'The Python front'.")
    ap.add_argument("--count", type=int, default=400, help="generated distributions (default 400)")
    ap.add_argument("--rounds", type=int, default=MIN_ROUNDS,
                    help=f"interleaved rounds of whole processes (default and minimum for a record: {MIN_ROUNDS})")
    ap.add_argument("--repeat-rounds", type=int, default=11,
                    help=f"processes per venv for the {REPEAT_QUERIES}-query figure (default 11)")
    ap.add_argument("--timer", choices=("auto", "hyperfine", "internal"), default="auto",
                    help="auto: hyperfine when on PATH, else the script's own timer")
    ap.add_argument("--dir", default=os.path.join(REPO, "target", "bench-python"), help="work directory")
    ap.add_argument("--test-venv", default=os.path.join(REPO, "target", "test-venv"),
                    help="the pinned venv (built by scripts/make-venv.sh when missing)")
    ap.add_argument("--wheel", help="use this wheel instead of building one")
    ap.add_argument("--reuse-wheel", action="store_true", help="use the wheel a previous run built in --dir")
    ap.add_argument("--json", metavar="FILE", help="also write every sample to FILE")
    args = ap.parse_args()
    if args.json:
        args.json = os.path.abspath(args.json)
    if sys.version_info < (3, 11):
        die("run it with python3 >= 3.11 (the pinned test venv is for 3.11)")
    if args.rounds < MIN_ROUNDS:
        log(f"note: --rounds {args.rounds} is below {MIN_ROUNDS}; fine for a try, not for a record")
    started = time.perf_counter()
    exe, hf_version = hyperfine_version()
    if args.timer == "hyperfine" and not exe:
        die("--timer hyperfine: hyperfine is not on PATH (apt-get install hyperfine)")

    work = os.path.abspath(args.dir)
    os.makedirs(work, exist_ok=True)
    site, cache, cwd, tests = (os.path.join(work, d) for d in ("site", "cache", "cwd", "tests-tiny"))
    wheel = build_wheel(args, work)

    log("pinned test venv (scripts/make-venv.sh)")
    test_site = run(["bash", os.path.join(REPO, "scripts", "make-venv.sh"), args.test_venv],
                    env=dict(os.environ, PYTHON=sys.executable), what="make-venv.sh").stdout.strip()
    log(f"generating {args.count} distributions")
    renamed = generate_site(site, args.count)
    name = pick_name(site)

    shutil.rmtree(cache, ignore_errors=True)
    for d in (cwd, tests):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    for fn, text in TINY_TESTS.items():
        with open(os.path.join(tests, fn), "w") as f:
            f.write(text)

    log("two venvs from the same wheel")
    pythons, purelibs = {}, {}
    for side in SIDES:
        pythons[side], purelibs[side] = make_venv(os.path.join(work, f"venv-{side}"), wheel, [site, test_site])
    env = bench_env(cache)
    os.chdir(cwd)  # every process runs here: an empty directory as sys.path[0]
    run([pythons["enabled"], "-m", "epcache", "enable"], env=env, what="python -m epcache enable")
    if os.path.exists(os.path.join(purelibs["stock"], "epcache-startup.pth")):
        die("the stock venv is enabled")
    so = [f for f in os.listdir(os.path.join(purelibs["enabled"], "epcache")) if f.startswith("_epcache")]
    so_size = os.path.getsize(os.path.join(purelibs["enabled"], "epcache", so[0])) if so else None

    commands = [(key, label, [a.format(name=name) if key == "version" and a != "-c" else a for a in cmd])
                for key, label, cmd in COMMANDS]
    tails = {key: [a.replace("{tests}", tests) for a in cmd] for key, _, cmd in commands}

    # Same answers on both sides.
    answers = {side: json.loads(run([pythons[side], "-c", CHECK, name], env=env).stdout) for side in SIDES}
    for k in ("entry_points", "version", "scan", "distributions"):
        if answers["stock"][k] != answers["enabled"][k]:
            die(f"stock and enabled disagree on {k}:\n{answers['stock'][k]}\n{answers['enabled'][k]}")
    facts = answers["stock"]

    # Warm-up: every command twice per venv (bytecode caches, page cache),
    # so nothing on sys.path changes after the indexes are published.
    log("warm-up runs")
    for _ in range(2):
        for key, _, _ in commands:
            for side in SIDES:
                run([pythons[side]] + tails[key], env=env)
    log("publishing the indexes (EPCACHE_SETTLE_SECS=0)")
    status = json.loads(run([pythons["enabled"], "-c", PUBLISH, cwd, tests],
                            env=dict(env, EPCACHE_SETTLE_SECS="0")).stdout)
    missed = [s for s in status if s["verdict"] not in ("hit", "no-entry")]
    if missed:
        log(f"WARNING: not every path entry is a hit after the rebuild: {missed}")
    tmp = tempfile.mkdtemp(prefix="bench-python-")
    trace_cmds = [(key, tails[key]) for key, _, _ in commands] + [("repeat", ["-c", REPEAT])]
    traces_before, problems_before = check_traces(pythons["enabled"], trace_cmds, env, tmp, "before timing")

    if args.timer == "internal" or not exe:
        if args.timer == "auto":
            log("hyperfine not found (apt-get install hyperfine); timing with the script's own "
                "interleaved timer (posix_spawn + wait4)")
        timer, timer_name = InternalTimer(env), "internal (posix_spawn + wait4)"
    else:
        timer, timer_name = HyperfineTimer(exe, env, tmp), f"{hf_version} (-N, one run per command per round)"

    # ---------------------------------------------------------- the rounds
    log(f"{args.rounds} interleaved rounds of {len(commands) * 2} timed processes "
        f"(timer: {timer_name}), 5 -X importtime runs and 6 timed-inside runs")
    wall = {(k, s): [] for k, _, _ in commands for s in SIDES}
    cpu = {(k, s): [] for k, _, _ in commands for s in SIDES}
    imp = {k: [] for k in ("hook", "md_stock", "md_enabled", "md_epcache", "native")}
    hook_modules = {}
    inside_codes = {key: INSIDE.format(query=tails[key][1].split("; ", 1)[1]) for key in ("ep", "version", "scan")}
    inside = {(k, s): [] for k in inside_codes for s in SIDES}
    hook_inside = {"line": [], "load": [], "patch": []}
    pth = os.path.join(purelibs["enabled"], "epcache-startup.pth")
    for r in range(args.rounds):
        order = SIDES if r % 2 == 0 else SIDES[::-1]
        slots = [(key, side) for key, _, _ in commands for side in order]
        samples = timer.round([[pythons[side]] + tails[key] for key, side in slots])
        for (key, side), (w, c) in zip(slots, samples):
            wall[key, side].append(w)
            cpu[key, side].append(c)
        # -X importtime, the same order.
        trees = {}
        for side in order:
            trees["pass", side] = importtime(pythons[side], "pass", env)
            trees["import", side] = importtime(pythons[side], "import importlib.metadata", env)
        stock_names = {n["name"] for n in walk(trees["pass", "stock"])}
        extra = list(outermost(trees["pass", "enabled"],
                               lambda n: is_epcache(n) or n["name"] not in stock_names))
        imp["hook"].append(sum(n["cum"] for n in extra))
        per_module = {}
        for n in extra:
            for m in walk([n]):
                per_module[m["name"]] = per_module.get(m["name"], 0) + m["self"]
        for m, v in per_module.items():
            hook_modules.setdefault(m, []).append(v)
        for side in SIDES:
            md = [n for n in walk(trees["import", side]) if n["name"] == "importlib.metadata"]
            imp[f"md_{side}"].append(md[0]["cum"] if md else 0)
        stock_names = {n["name"] for n in walk(trees["import", "stock"])}
        imp["md_epcache"].append(sum(n["cum"] for n in outermost(
            trees["import", "enabled"], lambda n: is_epcache(n) or n["name"] not in stock_names)))
        native = [n for n in walk(importtime(pythons["stock"], "import epcache._epcache", env))
                  if n["name"] == "epcache._epcache"]
        imp["native"].append(native[0]["cum"] if native else 0)
        line_s, load_s, patch_s = map(float, run(
            [pythons["enabled"], "-c", HOOK_INSIDE, pth], env=dict(env, EPCACHE_DISABLE="1")).stdout.split())
        hook_inside["line"].append(line_s)
        hook_inside["load"].append(load_s)
        hook_inside["patch"].append(patch_s)
        for key, code in inside_codes.items():
            for side in order:
                _, query_s = map(float, run([pythons[side], "-c", code], env=env).stdout.split())
                inside[key, side].append(query_s)
        if (r + 1) % 10 == 0:
            log(f"round {r + 1}/{args.rounds}")

    log(f"{args.repeat_rounds} x {REPEAT_QUERIES}-query processes per venv")
    repeat = {s: {"first": [], "after": []} for s in SIDES}
    for r in range(args.repeat_rounds):
        for side in (SIDES if r % 2 == 0 else SIDES[::-1]):
            times = json.loads(run([pythons[side], "-c", REPEAT], env=env).stdout)
            repeat[side]["first"].append(times[0])
            repeat[side]["after"].append(sum(times[1:]) / (len(times) - 1))

    traces_after, problems_after = check_traces(pythons["enabled"], trace_cmds, env, tmp, "after timing")
    shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started

    # ---------------------------------------------------------- the report
    wm = {k: med(v) for k, v in wall.items()}
    cm = {k: med(v) for k, v in cpu.items()}
    im = {k: med(v) for k, v in imp.items()}  # microseconds
    rows = []

    def row(label, stock=None, enabled=None, result="", target="", verdict=""):
        rows.append((label, stock, enabled, result, target, verdict))

    def met(ok):
        return "met" if ok else "NOT met"

    print()
    print("epcache Python front: stock vs enabled, whole processes")
    print(f"  Python {sys.version.split()[0]}, wheel {os.path.basename(wheel)}")
    print(f"  sys.path: cwd (empty), stdlib, venv site-packages (epcache), generated tree ({args.count} "
          f"distributions; {renamed} with pytest11/flake8 sections renamed), pinned test venv")
    print(f"  -> {facts['distributions']} distributions, {facts['all_entry_points']} entry points; "
          f"{len(facts['entry_points'])} in {PLUGIN_GROUP}; version({name!r})")
    print(f"  timer: {timer_name}; {args.rounds} rounds, stock/enabled interleaved per command, "
          f"order flipped each round; medians")
    warm = "warm cache, every enabled query answered from the index (0 scans, traced before and after)"
    if problems_before or problems_after:
        warm = "CACHE NOT WARM in some enabled runs (see the warnings above)"
    print(f"  {warm}")
    print(f"  total run time {elapsed:.0f} s")
    print()

    row("1. A process that does not use metadata")
    hook_detail = "self: " + ", ".join(f"{n} {us(med(v))}" for n, v in sorted(hook_modules.items()))
    row("   hook: -X importtime, what the .pth imports", None, im["hook"] / 1e6, "cumulative",
        "<= 0.1 ms", met(im["hook"] <= 100))
    row(f"     ({hook_detail})")
    line_med = med(hook_inside["line"])
    row("   hook: the .pth line (run twice, as in a venv), timed inside", None, line_med, "what start-up runs",
        "<= 0.1 ms", met(line_med <= 1e-4))
    d = wm["pass", "enabled"] - wm["pass", "stock"]
    row("   python -c pass, wall", wm["pass", "stock"], wm["pass", "enabled"], signed_ms(d))
    row("   python -c pass, CPU (user+sys)", cm["pass", "stock"], cm["pass", "enabled"],
        signed_ms(cm["pass", "enabled"] - cm["pass", "stock"]))
    row("2. Imports importlib.metadata, no query")
    md_extra = (im["md_enabled"] - im["md_stock"]) / 1e6
    row("   -X importtime: what enabled imports beyond stock", None, im["md_epcache"] / 1e6,
        "hook + epcache._hook", "<= 0.2 ms", met(im["md_epcache"] <= 200))
    added = med([a + b + c for a, b, c in zip(*(hook_inside[k] for k in ("line", "load", "patch")))])
    row("   timed inside: the line + loading epcache._hook + stand-ins", None, added,
        f"load {us(med(hook_inside['load']) * 1e6)}, patch {us(med(hook_inside['patch']) * 1e6)}",
        "<= 0.2 ms", met(added <= 2e-4))
    row("   -X importtime: importlib.metadata (cumulative)", im["md_stock"] / 1e6, im["md_enabled"] / 1e6,
        signed_ms(md_extra, 3) + " (noisy)")
    row("   python -c 'import importlib.metadata', wall", wm["import", "stock"], wm["import", "enabled"],
        signed_ms(wm["import", "enabled"] - wm["import", "stock"]))
    row("   ... CPU (user+sys)", cm["import", "stock"], cm["import", "enabled"],
        signed_ms(cm["import", "enabled"] - cm["import", "stock"]))
    row("3. Discovery removed: (query process) - (import-only process), wall [CPU]")
    removed = {}

    def paired(samples, key, side):
        return med([q - i for q, i in zip(samples[key, side], samples["import", side])])

    def pct(s_, e_):
        return None if s_ <= 0 else (1 - e_ / s_)

    for key in ("ep", "version", "scan"):
        label = next(lbl for k, lbl, _ in commands if k == key)
        ds, de = paired(wall, key, "stock"), paired(wall, key, "enabled")
        cs, ce = paired(cpu, key, "stock"), paired(cpu, key, "enabled")
        removed[key] = pct(ds, de)
        cpu_removed = f" [{pct(cs, ce) * 100:.1f} %]" if cs > 0 else ""
        text = "-" if removed[key] is None else f"{removed[key] * 100:.1f} % removed{cpu_removed}"
        row(f"   {label}, per round", ds, de, text, ">= 95 %",
            "-" if removed[key] is None else met(removed[key] >= 0.95))
        ds2 = wm[key, "stock"] - wm["import", "stock"]
        de2 = wm[key, "enabled"] - wm["import", "enabled"]
        r2 = pct(ds2, de2)
        row("     difference of the medians", ds2, de2, "-" if r2 is None else f"{r2 * 100:.1f} % removed")
        row("     whole process, wall", wm[key, "stock"], wm[key, "enabled"],
            f"{wm[key, 'stock'] / wm[key, 'enabled']:.2f}x")
        i_s, i_e = med(inside[key, "stock"]), med(inside[key, "enabled"])
        row("     the query timed inside the process", i_s, i_e,
            f"{(1 - i_e / i_s) * 100:.1f} % removed, {i_s / i_e:.1f}x")
    row(f"4. {REPEAT_QUERIES} queries in one process: entry_points(group={REPEAT_GROUP!r}), timed inside "
        f"(median of {args.repeat_rounds} processes)")
    row("   first query", med(repeat["stock"]["first"]), med(repeat["enabled"]["first"]))
    rs, re_ = med(repeat["stock"]["after"]), med(repeat["enabled"]["after"])
    row("   each query after the first (mean of 30)", rs, re_, f"{rs / re_:.0f}x faster")
    row("5. Native module")
    row("   size of the installed _epcache*.so", None, None,
        f"{so_size / 1e6:.2f} MB ({so_size} B)" if so_size else "not found")
    row("   -X importtime: epcache._epcache", None, im["native"] / 1e6, "")
    row("6. Real tools (sys.path as above)")
    for key in ("pytest", "flake8"):
        label = next(lbl for k, lbl, _ in commands if k == key)
        s_, e_ = wm[key, "stock"], wm[key, "enabled"]
        row(f"   {label}, wall", s_, e_, f"{signed_ms(e_ - s_, 1)} ({(e_ / s_ - 1) * 100:+.1f} %)")
        cs, ce = cm[key, "stock"], cm[key, "enabled"]
        row("   ... CPU (user+sys)", cs, ce, f"{signed_ms(ce - cs, 1)} ({(ce / cs - 1) * 100:+.1f} %)")

    def cell(v):
        if v is None:
            return ""
        return ms(v, 3) if v < 1e-3 else ms(v)

    table = [r for r in rows if r[1] is not None or r[2] is not None or r[3]]
    width = max(len(r[0]) for r in table) + 1
    rw = max(len(r[3]) for r in table) + 2
    print(f"{'figure':<{width}}{'stock':>11}{'enabled':>12}  {'result':<{rw}}{'target':<11}verdict")
    for label, s_, e_, result, target, verdict in rows:
        if s_ is None and e_ is None and not result:
            print(label)
            continue
        print(f"{label:<{width}}{cell(s_):>11}{cell(e_):>12}  {result:<{rw}}{target:<11}{verdict}".rstrip())

    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "python": sys.version.split()[0], "wheel": os.path.basename(wheel), "so_size": so_size,
                "timer": timer_name, "rounds": args.rounds, "facts": facts, "name": name,
                "wall": {f"{k} {s}": v for (k, s), v in wall.items()},
                "cpu": {f"{k} {s}": v for (k, s), v in cpu.items()},
                "importtime_us": imp, "hook_modules_self_us": hook_modules, "repeat": repeat,
                "hook_inside_s": hook_inside,
                "inside": {f"{k} {s}": v for (k, s), v in inside.items()},
                "removed": removed, "status": status,
                "traces_before": traces_before, "traces_after": traces_after,
            }, f, indent=1)
        log(f"samples written to {args.json}")


if __name__ == "__main__":
    main()
