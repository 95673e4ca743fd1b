#!/usr/bin/env python3
"""Stock importlib.metadata vs epcache on a slow file system.

Usage::

    python3 scripts/bench-slowfs.py [--delays 0,200,1000,2000] [--rounds 11]
                                    [--count 400] [--attr-timeout 1.0]

Serves a generated site-packages of COUNT distributions through the FUSE
harness ``examples/slowfs.rs``, which adds DELAY µs to every lookup,
getattr, readdir, open and read and answers many requests at once, as a
network file system does. For each delay, and for the directory itself on
the local disk, it runs fresh Python processes (one wheel of epcache,
installed into one venv) that make one query, ``entry_points(group=
"console_scripts")``, and time it inside the process:

* **stock**: plain importlib.metadata;
* **cold**: epcache enabled with an empty cache directory: a scan (and a
  publish);
* **warm**: epcache enabled with the index already published: one ``stat``
  of the mount and one read of the local index file.

Every run gets a fresh mount, so the kernel has nothing of the tree cached
(within the run it caches attributes for ``--attr-timeout`` seconds, as an
NFS client does). The three kinds run interleaved, in a shuffled order each
round; the figures are medians over the rounds, and the ratios compare
medians of the same run. Needs root or fusermount3, /dev/fuse, cargo, and
PyPI (pip builds the wheel with maturin).
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "target" / "bench-slowfs"

PROBE = r"""
import json, sys, time
mode, entry = sys.argv[1], sys.argv[2]
if mode != "stock":
    import epcache
    epcache.install()
import importlib.metadata as md
sys.path[:] = [entry]
started = time.perf_counter()
eps = md.entry_points(group="console_scripts")
elapsed = time.perf_counter() - started
out = {"ms": elapsed * 1000, "count": len(eps)}
if mode != "stock":
    s = epcache.stats()
    out.update(hits=s["hits"], scans=s["scans"], fallbacks=s["fallbacks"], errors=s["errors"])
print(json.dumps(out))
"""


def log(message):
    print(f"bench-slowfs: {message}", file=sys.stderr, flush=True)


def run(args, **kwargs):
    return subprocess.run(args, check=True, **kwargs)


def build():
    """The harness, and a venv with the wheel of this checkout."""
    log("cargo build --release --example slowfs")
    run(["cargo", "build", "--quiet", "--release", "--example", "slowfs"], cwd=REPO)
    slowfs = REPO / "target" / "release" / "examples" / "slowfs"
    venv = WORK / "venv"
    wheels = WORK / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    log("pip wheel . (maturin)")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(REPO)])
    (wheel,) = wheels.glob("epcache-*.whl")
    run([sys.executable, "-m", "venv", "--clear", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)])
    return slowfs, python


def generate(count):
    src = WORK / f"site-{count}"
    if not (src / "README.txt").exists():
        run([sys.executable, str(REPO / "scripts" / "gen-site-packages.py"), str(src), "--count", str(count)])
    return src


class Mount:
    """One fresh slowfs mount of `source` at `mountpoint`."""

    def __init__(self, slowfs, source, mountpoint, delay_us, attr_timeout):
        self.mountpoint = mountpoint
        parent_dev = os.stat(mountpoint.parent).st_dev
        self.proc = subprocess.Popen(
            [str(slowfs), str(source), str(mountpoint), "--delay-us", str(delay_us), "--attr-timeout", str(attr_timeout)],
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while os.stat(mountpoint).st_dev == parent_dev:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise SystemExit(f"bench-slowfs: slowfs did not mount: {self.proc.stderr.read().decode()}")
            time.sleep(0.005)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["umount", "-l", str(self.mountpoint)], stderr=subprocess.DEVNULL, check=False)


def probe(python, mode, entry, cache):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPCACHE_", "PYTHON"))}
    env.update(EPCACHE_DIR=str(cache), EPCACHE_SETTLE_SECS="0")
    out = subprocess.run(
        [str(python), "-c", PROBE, mode, str(entry)], env=env, capture_output=True, text=True, check=True, cwd=WORK
    )
    return json.loads(out.stdout)


def measure(python, mode, entry, caches, warm_cache):
    """One timed query; `cold` gets an empty cache, `warm` the published one."""
    if mode == "cold":
        cache = Path(tempfile.mkdtemp(dir=caches))
    else:
        cache = warm_cache
    result = probe(python, mode, entry, cache)
    if mode == "cold":
        shutil.rmtree(cache, ignore_errors=True)
        assert result["scans"] == 1 and result["hits"] == 0, result
    if mode == "warm":
        assert result["hits"] == 1 and result["scans"] == 0, result
    if mode != "stock":
        assert result["fallbacks"] == 0 and result["errors"] == 0, result
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--delays", default="0,200,1000,2000", help="µs per operation, comma-separated")
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--count", type=int, default=400)
    p.add_argument("--attr-timeout", type=float, default=1.0)
    args = p.parse_args()
    delays = [int(d) for d in args.delays.split(",")]
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    slowfs, python = build()
    src = generate(args.count)
    mnt = WORK / "mnt"
    mnt.mkdir(exist_ok=True)
    caches = WORK / "caches"
    shutil.rmtree(caches, ignore_errors=True)
    caches.mkdir()
    rng = random.Random(1)
    rows = []
    for delay in [None, *delays]:
        label = "local disk" if delay is None else f"{delay} µs"
        warm_cache = caches / f"warm-{label.replace(' ', '-')}"

        def one(mode):
            if delay is None:
                return measure(python, mode, src, caches, warm_cache)
            mount = Mount(slowfs, src, mnt, delay, args.attr_timeout)
            try:
                return measure(python, mode, mnt, caches, warm_cache)
            finally:
                mount.close()

        # Publish the index the warm runs read (a scan through a fresh mount).
        entry = src if delay is None else mnt
        if delay is not None:
            mount = Mount(slowfs, src, mnt, delay, args.attr_timeout)
        try:
            probe(python, "cold", entry, warm_cache)
        finally:
            if delay is not None:
                mount.close()
        times = {"stock": [], "cold": [], "warm": []}
        counts = set()
        for _ in range(args.rounds):
            order = list(times)
            rng.shuffle(order)
            for mode in order:
                result = one(mode)
                times[mode].append(result["ms"])
                counts.add(result["count"])
        assert len(counts) == 1, f"the kinds disagree on the answer: {counts}"
        med = {mode: statistics.median(v) for mode, v in times.items()}
        rows.append((label, med, counts.pop()))
        log(f"{label}: stock {med['stock']:.1f} ms, cold {med['cold']:.1f} ms, warm {med['warm']:.2f} ms")

    print(f"epcache on a slow file system: {args.count} distributions, entry_points(group='console_scripts')")
    print(f"  slowfs (examples/slowfs.rs), a fresh mount per run, attr/entry timeout {args.attr_timeout} s")
    print(f"  {args.rounds} rounds, kinds interleaved in shuffled order; medians of the query timed inside a fresh process")
    print(f"  total run time {time.monotonic() - started:.0f} s")
    print()
    print(f"{'per operation':>14}  {'stock':>10}  {'cold':>10}  {'warm':>10}  {'stock/cold':>10}  {'stock/warm':>10}")
    for label, med, count in rows:
        print(
            f"{label:>14}  {med['stock']:>7.1f} ms  {med['cold']:>7.1f} ms  {med['warm']:>7.2f} ms"
            f"  {med['stock'] / med['cold']:>9.2f}x  {med['stock'] / med['warm']:>9.0f}x"
        )
    print(f"  ({count} entry points in the answer, the same for every kind)")


if __name__ == "__main__":
    main()
