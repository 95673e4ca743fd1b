"""Shared helpers for epcache's Python tests.

Run through scripts/test-python.sh, which installs epcache into a fresh
venv whose sys.path also holds the pinned test venv's site-packages
(EPCACHE_TEST_SITE), and points EPCACHE_DIR at a scratch directory.
"""

import importlib.metadata as md
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import pytest

# The stock functions, captured before anything could patch them.
STOCK = {name: getattr(md, name) for name in ("entry_points", "distributions", "distribution", "version")}

TEST_SITE = os.environ.get("EPCACHE_TEST_SITE")
OWN_SITE = sysconfig.get_paths()["purelib"]


def ep_key(ep):
    """Everything that identifies an entry point, including its dist."""
    dist = ep.dist
    return (
        ep.name,
        ep.value,
        ep.group,
        None if dist is None else dist.name,
        None if dist is None else dist.version,
        None if dist is None else str(dist._path),
    )


def dist_key(dist):
    return (dist.name, dist.version, str(dist._path), dist._normalized_name)


def stock_entry_points_in_discovery_order():
    """What Python 3.12+ returns for entry_points(): the first distribution
    per normalized name, its entry points in file order."""
    seen = set()
    out = []
    for dist in STOCK["distributions"]():
        key = dist._normalized_name
        if key in seen:
            continue
        seen.add(key)
        out.extend(dist.entry_points)
    return out


@pytest.fixture(autouse=True)
def _stock_after_each_test():
    yield
    import epcache

    epcache.uninstall()
    assert md.entry_points is STOCK["entry_points"]


@pytest.fixture(scope="session")
def test_site():
    if not TEST_SITE or not os.path.isdir(TEST_SITE):
        pytest.fail("EPCACHE_TEST_SITE is not set: run the suite through scripts/test-python.sh")
    return TEST_SITE


def base_env(**overrides):
    """The environment for child interpreters: the suite's EPCACHE_* (a
    scratch cache dir, settle 0), never strict unless asked for."""
    env = dict(os.environ)
    env.pop("EPCACHE_STRICT", None)
    env.pop("PYTHONPATH", None)
    env.update({k: v for k, v in overrides.items() if v is not None})
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
    return env


_QUIET_DIR = tempfile.mkdtemp(prefix="epcache-cwd-")


def run(python, args, env=None, cwd=None, check=True):
    """Runs a child interpreter, by default in an empty directory that no
    one changes (sys.path[0] of `-c` is the current directory)."""
    if cwd is None:
        cwd = _QUIET_DIR
    proc = subprocess.run(
        [str(python), *args],
        env=env if env is not None else base_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{python} {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


# Prints what importlib.metadata answers, as JSON, from a child interpreter.
PROBE = textwrap.dedent(
    """
    import json, sys
    import importlib.metadata as m
    def ep(e):
        return [e.name, e.value, e.group, e.dist.name if e.dist else None]
    out = {
        "pytest11": [ep(e) for e in m.entry_points(group="pytest11")],
        "flake8": [ep(e) for e in m.entry_points(group="flake8.extension")],
        "console": [ep(e) for e in m.entry_points(group="console_scripts")],
        "dists": [[d.name, d.version] for d in m.distributions()],
        "pytest": m.version("pytest"),
        "patched": hasattr(m.entry_points, "__epcache_stock__"),
    }
    try:
        import epcache._api as api
        out["stats"] = api.stats()
    except Exception as exc:
        out["stats"] = None
    print(json.dumps(out))
    """
)


def probe(python, env=None, cwd=None):
    proc = run(python, ["-c", PROBE], env=env, cwd=cwd)
    return json.loads(proc.stdout), proc.stderr


class Venv:
    """A bare venv (no pip) whose site-packages links, through a .pth
    file, the installed epcache and the pinned test venv: a real
    environment of pip-installed distributions that can be enabled and
    disabled without touching either."""

    def __init__(self, root, test_site):
        self.root = root
        subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(root)],
            check=True,
            capture_output=True,
        )
        self.python = root / "bin" / "python"
        self.site = run(
            self.python, ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
        with open(os.path.join(self.site, "00-links.pth"), "w") as f:
            f.write(f"{OWN_SITE}\n{test_site}\n")
        self.pth = os.path.join(self.site, "epcache-startup.pth")
        # Child interpreters run here: sys.path[0] is this quiet directory.
        self.work = root.parent / "work"
        self.work.mkdir(exist_ok=True)

    def epcache(self, *args, env=None):
        return run(self.python, ["-m", "epcache", *args], env=env)

    def bin(self, name):
        return self.root / "bin" / name


@pytest.fixture
def venv(tmp_path, test_site):
    return Venv(tmp_path / "venv", test_site)
