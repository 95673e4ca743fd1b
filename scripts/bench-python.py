#!/usr/bin/env python3
"""Benchmark epcache's Python front against stock importlib.metadata.

Usage::

    pip install .                                  # epcache, into some venv
    VENV/bin/python scripts/bench-python.py [--count 400] [--runs 20]

Run it with an interpreter that can import epcache. It builds a bench
environment under target/bench-python/:

- ``site/``: ``--count`` synthetic distributions written by
  scripts/gen-site-packages.py (realistic METADATA, RECORD and
  entry_points.txt; 400 by default);
- ``venv-stock/`` and ``venv-enabled/``: two bare venvs whose site-packages
  link, through a .pth file, the generated tree and the site-packages that
  holds epcache; the second is enabled with ``python -m epcache enable``;
- ``cache/``: the EPCACHE_DIR used throughout, warmed before measuring.
  EPCACHE_SETTLE_SECS=0 lets the freshly generated tree be indexed at once,
  as a settled site-packages would be.

Then it measures, in one process of the bench venv (min and median of
``--runs`` calls): stock vs epcache ``entry_points(group='console_scripts')``,
``entry_points()``, ``version(name)`` and ``list(distributions())``. epcache
is measured twice: *repeat* (the same sys.path again: one stat per path
entry, objects reused) and *new process* (the per-process memo dropped
before each call: index files read and decoded, objects built, which is
what the first query of a new interpreter pays).

Finally, whole processes: ``python -c 'import importlib.metadata as m;
m.entry_points(group="pytest11")'`` and ``python -c pass``, without and
with ``python -m epcache enable`` (median wall time of ``--runs`` starts,
the two venvs interleaved so that outside load affects both alike).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INPROC = r"""
import json, statistics, sys, time
import importlib.metadata as md
import epcache
from epcache import _api, _epcache

runs = int(sys.argv[1])
STOCK = {n: getattr(md, n) for n in ("entry_points", "distributions", "version")}
names = [d.metadata["Name"] for d in STOCK["distributions"]()]
name = names[len(names) // 2]
epcache.rebuild()
hits = [s["hit"] for s in epcache.status() if s["lookup"] != "no-entry"]
assert all(hits), epcache.status()

def key(ep):
    return (ep.name, ep.value, ep.group, ep.dist.name)

# The answers agree before anything is timed.
assert list(map(key, STOCK["entry_points"](group="console_scripts"))) == list(
    map(key, epcache.entry_points(group="console_scripts")))
assert sorted(map(key, epcache.entry_points())) == sorted(
    map(key, STOCK["entry_points"]().select()._all if hasattr(md, "SelectableGroups") else STOCK["entry_points"]()))
assert STOCK["version"](name) == epcache.version(name)

def fresh():
    _epcache.reset()
    _api._views.clear()

def timed(fn, before=None):
    times = []
    for _ in range(runs):
        if before:
            before()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return [min(times), statistics.median(times)]

cases = [
    ("entry_points(group='console_scripts')",
     lambda: STOCK["entry_points"](group="console_scripts"),
     lambda: epcache.entry_points(group="console_scripts")),
    ("entry_points()", lambda: STOCK["entry_points"](), lambda: epcache.entry_points()),
    (f"version({name!r})", lambda: STOCK["version"](name), lambda: epcache.version(name)),
    ("list(distributions())", lambda: list(STOCK["distributions"]()),
     lambda: list(epcache.distributions())),
]
out = {
    "python": sys.version.split()[0],
    "distributions": len(names),
    "entry_points": len(epcache.entry_points()),
    "console_scripts": len(epcache.entry_points(group="console_scripts")),
    "cases": [],
}
for label, stock, ours in cases:
    stock()
    ours()
    out["cases"].append({
        "query": label,
        "stock": timed(stock),
        "repeat": timed(ours),
        "new_process": timed(ours, before=fresh),
    })
out["stats"] = epcache.stats()
print(json.dumps(out))
"""

QUERY = 'import importlib.metadata as m; m.entry_points(group="pytest11")'
# The same call, timed inside the process: its first call in a new process.
TIMED = (
    "import time, importlib.metadata as m; t = time.perf_counter(); "
    "m.entry_points(group='pytest11'); print(time.perf_counter() - t)"
)


def fmt(seconds):
    if seconds >= 1e-3:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds * 1e6:8.1f} us"


def run(cmd, env, **kw):
    return subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, **kw)


def wall(python, code, env, runs, cwd):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([python, "-c", code], env=env, check=True, cwd=cwd)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=400, help="synthetic distributions (default 400)")
    ap.add_argument("--runs", type=int, default=20, help="repetitions per measurement (default 20)")
    ap.add_argument("--dir", default=os.path.join(REPO, "target", "bench-python"), help="work directory")
    ap.add_argument("--json", action="store_true", help="also print the raw numbers as JSON")
    args = ap.parse_args()

    try:
        import epcache
    except ImportError:
        sys.exit("bench-python: epcache is not importable; run `pip install .` into a venv and use its python")
    epcache_site = os.path.dirname(os.path.dirname(os.path.abspath(epcache.__file__)))

    work = os.path.abspath(args.dir)
    site, cache, quiet = (os.path.join(work, d) for d in ("site", "cache", "cwd"))
    shutil.rmtree(cache, ignore_errors=True)
    os.makedirs(quiet, exist_ok=True)
    gen = os.path.join(REPO, "scripts", "gen-site-packages.py")
    subprocess.run([sys.executable, gen, site, "--count", str(args.count)], check=True)
    # Two identical venvs; "enabled" gets `python -m epcache enable`.
    pythons = {}
    for which in ("stock", "enabled"):
        venv = os.path.join(work, f"venv-{which}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", "--without-pip", venv], check=True)
        python = pythons[which] = os.path.join(venv, "bin", "python")
        venv_site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        os.environ).stdout.strip()
        # Sorted before epcache-startup.pth, so epcache is importable there.
        with open(os.path.join(venv_site, "00-links.pth"), "w") as f:
            f.write(f"{site}\n{epcache_site}\n")
    python = pythons["stock"]

    env = dict(os.environ, EPCACHE_DIR=cache, EPCACHE_SETTLE_SECS="0")
    for var in ("EPCACHE_DISABLE", "EPCACHE_STRICT", "EPCACHE_TRACE", "PYTHONPATH"):
        env.pop(var, None)
    # Let the tree's timestamps be older than "now" by a clock tick at least.
    time.sleep(0.05)

    inproc = json.loads(run([python, "-c", INPROC, str(args.runs)], env, cwd=quiet).stdout)
    print(f"Python {inproc['python']}: {inproc['distributions']} distributions, "
          f"{inproc['entry_points']} entry points ({inproc['console_scripts']} console_scripts), warm cache")
    print()
    print("In one process (min of runs; ratio = stock / epcache):")
    print(f"{'query':<40}{'stock':>12}{'epcache':>12}{'ratio':>10}{'new process':>14}{'ratio':>9}")
    for case in inproc["cases"]:
        stock, repeat, fresh = case["stock"][0], case["repeat"][0], case["new_process"][0]
        print(f"{case['query']:<40}{fmt(stock):>12}{fmt(repeat):>12}{stock / repeat:>9.0f}x"
              f"{fmt(fresh):>14}{stock / fresh:>8.1f}x")
    print()

    commands = [
        ("python -c pass", "pass"),
        ("python -c 'import importlib.metadata'", "import importlib.metadata"),
        ("python -c '...; m.entry_points(group=\"pytest11\")'", QUERY),
    ]
    run([pythons["enabled"], "-m", "epcache", "enable"], env, cwd=quiet)
    times = {(w, c): [] for w in pythons for _, c in commands}
    inside = {w: [] for w in pythons}
    for _ in range(2):  # warm the OS caches
        for python in pythons.values():
            subprocess.run([python, "-c", QUERY], env=env, check=True, cwd=quiet)
    # Interleaved, so that load from elsewhere hits both sides alike.
    for _ in range(args.runs):
        for which, python in pythons.items():
            for _, code in commands:
                t = time.perf_counter()
                subprocess.run([python, "-c", code], env=env, check=True, cwd=quiet)
                times[which, code].append(time.perf_counter() - t)
            inside[which].append(float(run([python, "-c", TIMED], env, cwd=quiet).stdout))
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"Whole processes (median of {args.runs}, interleaved; 'enabled' = after python -m epcache enable):")
    print(f"{'command':<52}{'stock':>12}{'enabled':>12}{'ratio':>9}")
    for label, code in commands:
        s_, e_ = median["stock", code], median["enabled", code]
        print(f"{label:<52}{fmt(s_):>12}{fmt(e_):>12}{s_ / e_:>8.2f}x")
    s_in, e_in = statistics.median(inside["stock"]), statistics.median(inside["enabled"])
    print(f"{'  its entry_points() call, timed inside':<52}{fmt(s_in):>12}{fmt(e_in):>12}{s_in / e_in:>8.1f}x")
    if args.json:
        print(json.dumps({
            "in_process": inproc,
            "processes": {f"{w}: {c}": v for (w, c), v in times.items()},
            "first_call_inside": inside,
        }, indent=2))


if __name__ == "__main__":
    main()
