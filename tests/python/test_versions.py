"""Every interpreter gets its own importlib.metadata's answer.

For each CPython the machine has under ``$(pyenv root)/versions`` (3.9 to
3.13), each module answered for (the stdlib's ``importlib.metadata``, and
the ``importlib_metadata`` backport at two versions on either side of its
``_prefer_valid`` change, and the stdlib's functions once the newer
backport has been imported too) and each fixture (``plain``: the pinned venv of
real pip-installed distributions; ``shadowed``: ``shadow_fixture``'s path
entries in front of it), ``observe.py`` runs three times: stock, then
enabled with no index yet (a scan), then enabled again (answered from the
index files). Every observation of the enabled runs must equal stock's.

One wheel (``EPCACHE_WHEEL``, abi3, built once by scripts/test-python.sh)
is installed into one venv per interpreter. The table of observations
compared and differing is written to ``target/conformance-matrix.md``.

``EPCACHE_MATRIX_MIN`` (set by .ci/run) is the number of interpreters that
must be found; without it a machine with none skips with a message.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import shadow_fixture
from conftest import TEST_SITE

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OBSERVER = HERE / "observe.py"
WHEEL = os.environ.get("EPCACHE_WHEEL")
MATRIX_DIR = Path(os.environ.get("EPCACHE_MATRIX_DIR", REPO / "target" / "py-matrix"))
REPORT = REPO / "target" / "conformance-matrix.md"
# The last backport without Distribution._prefer_valid, and the newest.
BACKPORTS = ("8.0.0", "8.7.0")
MINORS = ("3.9", "3.10", "3.11", "3.12", "3.13")


def find_interpreters():
    """The newest pyenv build of each supported minor version: {minor: path}."""
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {}
    found = {}
    versions = Path(root, "versions")
    if not versions.is_dir():
        return {}
    for child in sorted(versions.iterdir(), key=lambda p: [int(x) for x in re.findall(r"\d+", p.name)]):
        match = re.fullmatch(r"(3\.\d+)\.\d+", child.name)
        python = child / "bin" / "python3"
        if match and match.group(1) in MINORS and python.exists():
            found[match.group(1)] = python
    return found


INTERPRETERS = find_interpreters()
# "std+backport-V": the stdlib's functions after the backport was imported
# too (it replaces the stdlib's distribution finder with its own).
MODULES = ("std",) + tuple(f"backport-{v}" for v in BACKPORTS) + (f"std+backport-{BACKPORTS[-1]}",)
FIXTURES = ("plain", "shadowed")
CELLS = [(minor, module, fixture) for minor in INTERPRETERS for module in MODULES for fixture in FIXTURES]
RESULTS = {}


def test_enough_interpreters():
    needed = int(os.environ.get("EPCACHE_MATRIX_MIN", "0"))
    if needed == 0 and not INTERPRETERS:
        pytest.skip("no pyenv CPython 3.9-3.13 found (pyenv root)/versions")
    assert len(INTERPRETERS) >= needed, f"found {sorted(INTERPRETERS)}, need {needed}"


def _pip(*args):
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def matrix():
    """Builds (or reuses, for the same wheel) one venv per interpreter and
    one directory per backport version; a fresh cache and fixture."""
    if not WHEEL or not os.path.isfile(WHEEL):
        pytest.fail("EPCACHE_WHEEL is not set: run the suite through scripts/test-python.sh")
    digest = hashlib.sha256(Path(WHEEL).read_bytes()).hexdigest()[:16]
    stamp = MATRIX_DIR / "wheel.sha256"
    if not stamp.exists() or stamp.read_text() != digest:
        shutil.rmtree(MATRIX_DIR, ignore_errors=True)
        MATRIX_DIR.mkdir(parents=True)
        stamp.write_text("")
    venvs = {}
    for minor, python in INTERPRETERS.items():
        venv = MATRIX_DIR / f"venv-{minor}"
        vpy = venv / "bin" / "python"
        if stamp.read_text() != digest or not vpy.exists():
            subprocess.run([str(python), "-m", "venv", "--clear", "--without-pip", str(venv)], check=True)
            _pip("--python", str(vpy), "install", WHEEL)
        venvs[minor] = vpy
    backports = {}
    for version in BACKPORTS:
        target = MATRIX_DIR / f"importlib_metadata-{version}"
        if stamp.read_text() != digest or not target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            _pip("install", "--target", str(target), f"importlib_metadata=={version}")
        backports[f"backport-{version}"] = target
    stamp.write_text(digest)

    work = MATRIX_DIR / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shadowed = shadow_fixture.build(work)
    fixtures = {"plain": [TEST_SITE], "shadowed": [*shadowed, TEST_SITE]}
    caches = MATRIX_DIR / "caches"
    shutil.rmtree(caches, ignore_errors=True)
    setup = {"venvs": venvs, "backports": backports, "fixtures": fixtures, "work": work, "caches": caches}
    # The cells are independent (each has its own cache directory): run
    # them all at once, as many at a time as there are CPUs.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        runs = {cell: pool.submit(run_cell, setup, *cell) for cell in CELLS}
        yield runs
    write_report()


def run_cell(setup, minor, module, fixture):
    """Stock, then enabled with an empty cache directory (a scan), then
    enabled again (answered from the index files)."""
    cache = setup["caches"] / f"{minor}-{module}-{fixture}"
    return {mode: observe(setup, minor, module, fixture, mode.split("-")[0], cache) for mode in ("stock", "enabled-cold", "enabled-warm")}


def observe(matrix, minor, module, fixture, mode, cache):
    args = [str(matrix["venvs"][minor]), str(OBSERVER), "--mode", mode]
    if module == "std":
        args += ["--module", "std"]
    elif module.startswith("std+"):
        backport = matrix["backports"][module[len("std+") :]]
        args += ["--module", "std", "--backport-dir", str(backport), "--import-backport"]
    else:
        args += ["--module", "backport", "--backport-dir", str(matrix["backports"][module])]
    for entry in matrix["fixtures"][fixture]:
        args += ["--entry", entry]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPCACHE_", "PYTHON"))}
    env.update(EPCACHE_DIR=str(cache), EPCACHE_SETTLE_SECS="0", EPCACHE_STRICT="1")
    proc = subprocess.run(args, cwd=matrix["work"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout)


def differences(stock, ours):
    """Labels whose values differ, with both values, in stock's order."""
    theirs = {label: value for label, value in stock}
    mine = {label: value for label, value in ours}
    out = []
    for label in dict.fromkeys([*theirs, *mine]):
        a = json.dumps(theirs.get(label, "<missing>"), sort_keys=True)
        b = json.dumps(mine.get(label, "<missing>"), sort_keys=True)
        if a != b:
            out.append((label, a, b))
    return out


def write_report():
    if not RESULTS:
        return
    lines = [
        "| Python | module | fixture | observations | differing (scan) | differing (index) | index hits |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for (minor, module, fixture), r in sorted(RESULTS.items(), key=lambda kv: [int(x) for x in kv[0][0].split(".")] + list(kv[0][1:])):
        lines.append(
            f"| {r['python']} | {module} ({r['module_version']}) | {fixture} | {r['observations']} "
            f"| {r['cold_diffs']} | {r['warm_diffs']} | {r['warm_hits']}/{r['warm_consults']} |"
        )
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("minor,module,fixture", CELLS, ids=["-".join(c) for c in CELLS])
def test_enabled_answers_as_stock(matrix, minor, module, fixture):
    runs = matrix[(minor, module, fixture)].result()
    stock, cold, warm = runs["stock"], runs["enabled-cold"], runs["enabled-warm"]
    cold_diffs = differences(stock["observations"], cold["observations"])
    warm_diffs = differences(stock["observations"], warm["observations"])
    stats = warm["stats"]
    RESULTS[(minor, module, fixture)] = {
        "python": stock["python"],
        "module_version": stock["module_version"],
        "observations": len(stock["observations"]),
        "cold_diffs": len(cold_diffs),
        "warm_diffs": len(warm_diffs),
        "warm_hits": stats["hits"],
        "warm_consults": stats["consults"],
    }
    report = "\n".join(f"{label}\n  stock:   {a[:600]}\n  epcache: {b[:600]}" for label, a, b in (cold_diffs or warm_diffs)[:8])
    assert not cold_diffs, f"{len(cold_diffs)} of {len(stock['observations'])} differ (scan):\n{report}"
    assert not warm_diffs, f"{len(warm_diffs)} of {len(stock['observations'])} differ (index):\n{report}"
    for run in (cold, warm):
        assert run["stats"]["errors"] == 0, run["stats"]
    if warm["patched"]:
        assert cold["stats"]["scans"] > 0, cold["stats"]
        assert stats["hits"] > 0 and stats["scans"] == 0, stats


# Run by every interpreter of the matrix in its own enabled venv.
STARTUP_PROBE = """
import json, sys
watchers = [f for f in sys.meta_path if getattr(f, "_epcache_watcher", 0)]
loaded_at_start = sorted(m for m in sys.modules if m.startswith("epcache"))
import importlib.metadata as md
loaded_at_import = sorted(m for m in sys.modules if m.startswith("epcache"))
patched_at_import = hasattr(md.version, "__epcache_stock__")
answer = md.version("epcache")
stock = getattr(md.version, "__epcache_stock__", md.version)("epcache")
print(json.dumps({
    "watchers": len(watchers),
    "loaded_at_start": loaded_at_start,
    "loaded_at_import": loaded_at_import,
    "patched_at_import": patched_at_import,
    "same_answer": answer == stock,
}))
"""


@pytest.mark.parametrize("minor", sorted(INTERPRETERS, key=lambda m: [int(x) for x in m.split(".")]))
def test_the_startup_files_under_each_interpreter(matrix, minor, tmp_path):
    """`enable` run by each interpreter writes a .pth line and a code file
    compiled for it, which its own starts run: the finder at start,
    epcache._hook alone at the import of importlib.metadata, stock's
    answer at the query, nothing on stderr. `disable` removes both."""
    for future in matrix.values():
        future.result()  # the cells use these venvs: let them finish first
    vpy = MATRIX_DIR / f"venv-{minor}" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPCACHE_", "PYTHON"))}
    env.update(EPCACHE_DIR=str(tmp_path / "cache"))
    subprocess.run([str(vpy), "-m", "epcache", "enable", "--no-rebuild"], env=env, check=True, capture_output=True)
    try:
        site = subprocess.run(
            [str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()
        assert sorted(n for n in os.listdir(site) if n.startswith("epcache-startup")) == [
            "epcache-startup.bin", "epcache-startup.pth"
        ]
        proc = subprocess.run([str(vpy), "-c", STARTUP_PROBE], env=env, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert json.loads(proc.stdout) == {
            "watchers": 1,
            "loaded_at_start": [],
            "loaded_at_import": ["epcache._hook"],
            "patched_at_import": True,
            "same_answer": True,
        }
    finally:
        subprocess.run([str(vpy), "-m", "epcache", "disable"], env=env, check=True, capture_output=True)
    assert not [n for n in os.listdir(site) if n.startswith("epcache-startup")]
