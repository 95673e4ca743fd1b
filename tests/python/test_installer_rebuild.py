"""Installers rebuild without being asked.

A process with the hook loaded that queried importlib.metadata and changed
a path entry it consulted rebuilds that entry's index at exit (see
epcache/_installer.py). Tested with a real ``pip install`` and
``pip uninstall`` of a wheel built here (no network), run by the enabled
venv's own interpreter: the next interpreter gets a hit, or with a long
settle time a verified hit on the provisional index, never a scan.
"""

import base64
import hashlib
import json
import os
import textwrap
import zipfile

import pytest

from conftest import base_env, run

DIST = "epcache_demo"

# The next interpreter: what it sees, and how each sys.path entry was
# consulted (the native snapshot's outcomes).
NEXT = textwrap.dedent(
    """
    import json, sys
    import importlib.metadata as m
    eps = sorted(e.name for e in m.entry_points(group="epcache.demo"))
    from epcache import _api
    outcomes = {p: [lookup, publish] for p, lookup, publish, _ in _api._native.snapshot(sys.path).outcomes()}
    print(json.dumps({"eps": eps, "outcomes": outcomes, "stats": _api.stats()}))
    """
)


def make_wheel(directory, version="1.0"):
    """A minimal pure-Python wheel with a console script and a group of its
    own: what pip installs from PyPI, without PyPI."""
    info = f"{DIST}-{version}.dist-info"
    files = {
        f"{DIST}.py": "def main():\n    return 0\n\ndef hello():\n    return 'hello'\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {version}\n\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: epcache-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": (
            "[console_scripts]\nepcache-demo = epcache_demo:main\n\n"
            "[epcache.demo]\nhello = epcache_demo:hello\n"
        ),
    }
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = os.path.join(directory, f"{DIST}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
    return path


def pip(venv, *args, env):
    return run(
        venv.python,
        ["-m", "pip", "--disable-pip-version-check", "--no-input", "--no-cache-dir", *args],
        env=env,
        cwd=venv.work,
    )


def next_interpreter(venv, env):
    return json.loads(run(venv.python, ["-c", NEXT], env=env, cwd=venv.work).stdout)


def site_outcome(venv, info):
    for path, outcome in info["outcomes"].items():
        if os.path.realpath(path) == os.path.realpath(venv.site):
            return outcome
    raise AssertionError(f"{venv.site} not consulted: {info['outcomes']}")


def read_trace(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def check_exit_rebuild(venv, record, settle):
    rebuilt = [r for r in record["exit_rebuilds"] if os.path.realpath(r[0]) == os.path.realpath(venv.site)]
    if settle == "0":
        # pip queries again after it installed (its conflict check), and
        # with no settle time that query publishes an index itself; the exit
        # handler then finds a hit and leaves it.
        assert [r[2] for r in rebuilt] in ([], ["published"]), record
    else:
        # Inside the settle time only a rebuild publishes: a provisional index.
        assert [r[2] for r in rebuilt] == ["published-provisional"], record


@pytest.fixture
def enabled(venv, tmp_path):
    venv.epcache("enable")
    venv.wheel = make_wheel(str(tmp_path))
    # Warm every entry once, so that only site-packages can change.
    next_interpreter(venv, base_env())
    return venv


@pytest.mark.parametrize("settle", ["0", "3600"])
def test_pip_install_and_uninstall_leave_a_hit(enabled, tmp_path, settle):
    venv = enabled
    trace = tmp_path / "trace.jsonl"
    env = base_env(EPCACHE_SETTLE_SECS=settle, EPCACHE_TRACE=str(trace))
    expected_hit = "hit" if settle == "0" else "hit-verified"

    pip(venv, "install", "--no-index", "--no-deps", venv.wheel, env=env)
    assert os.path.isdir(os.path.join(venv.site, f"{DIST}-1.0.dist-info"))
    (record,) = read_trace(trace)
    assert record["answered"] > 0, record  # pip asked importlib.metadata
    check_exit_rebuild(venv, record, settle)

    info = next_interpreter(venv, env)
    assert info["eps"] == ["hello"]
    assert site_outcome(venv, info) == [expected_hit, None], info
    assert info["stats"]["scans"] == 0, info

    trace.unlink()
    pip(venv, "uninstall", "-y", DIST, env=env)
    assert not os.path.exists(os.path.join(venv.site, f"{DIST}-1.0.dist-info"))
    (record,) = read_trace(trace)
    check_exit_rebuild(venv, record, settle)

    info = next_interpreter(venv, env)
    assert info["eps"] == []
    assert site_outcome(venv, info) == [expected_hit, None], info
    assert info["stats"]["scans"] == 0, info


def test_without_the_hook_the_next_interpreter_scans(enabled):
    """The control: the same install with EPCACHE_DISABLE rebuilds nothing,
    and (inside the settle time) the next interpreter has to scan."""
    venv = enabled
    pip(venv, "install", "--no-index", "--no-deps", venv.wheel, env=base_env(EPCACHE_DISABLE="1"))
    info = next_interpreter(venv, base_env(EPCACHE_SETTLE_SECS="3600"))
    assert info["eps"] == ["hello"]
    assert site_outcome(venv, info)[0] == "stale", info
    assert info["stats"]["scans"] >= 1


def test_a_process_that_changed_a_consulted_entry(enabled, tmp_path):
    """Not only pip: any process that queried and then changed the entry."""
    venv = enabled
    trace = tmp_path / "trace.jsonl"
    env = base_env(EPCACHE_SETTLE_SECS="3600", EPCACHE_TRACE=str(trace))
    program = textwrap.dedent(
        f"""
        import os, importlib.metadata as m
        assert not m.entry_points(group="epcache.late")
        info = os.path.join({venv.site!r}, "late-1.0.dist-info")
        os.mkdir(info)
        with open(os.path.join(info, "METADATA"), "w") as f:
            f.write("Name: late\\nVersion: 1.0\\n\\n")
        with open(os.path.join(info, "entry_points.txt"), "w") as f:
            f.write("[epcache.late]\\nl = late:main\\n")
        """
    )
    run(venv.python, ["-c", program], env=env, cwd=venv.work)
    (record,) = read_trace(trace)
    assert [os.path.realpath(r[0]) for r in record["exit_rebuilds"]] == [os.path.realpath(venv.site)], record
    code = NEXT.replace('group="epcache.demo"', 'group="epcache.late"')
    info = json.loads(run(venv.python, ["-c", code], env=env, cwd=venv.work).stdout)
    assert info["eps"] == ["l"]
    assert site_outcome(venv, info) == ["hit-verified", None], info
    assert info["stats"]["scans"] == 0, info


def test_a_process_that_changed_nothing_rebuilds_nothing(enabled, tmp_path):
    venv = enabled
    trace = tmp_path / "trace.jsonl"
    env = base_env(EPCACHE_TRACE=str(trace))
    index_files = [s["index_file"] for s in json.loads(venv.epcache("status", "--json").stdout) if s["hit"]]
    before = {p: os.stat(p).st_ino for p in index_files}
    run(venv.python, ["-c", "import importlib.metadata as m; m.entry_points(group='x'); m.version('pytest')"], env=env)
    run(venv.python, ["-c", "import importlib.metadata"], env=env)
    first, second = read_trace(trace)
    assert first["exit_rebuilds"] == [] and first["answered"] == 2, first
    assert second == {"loaded": False, "argv": ["-c"]}, second  # never queried: no API, no exit handler
    assert {p: os.stat(p).st_ino for p in index_files} == before


def test_a_change_made_after_someone_else_rebuilt_is_left_alone(enabled, tmp_path):
    """A process whose consulted entry changed, but whose index is already a
    hit again (the installer ran the one-line rebuild itself), does not
    rebuild it a second time."""
    venv = enabled
    trace = tmp_path / "trace.jsonl"
    env = base_env(EPCACHE_TRACE=str(trace))
    program = textwrap.dedent(
        f"""
        import os, subprocess, sys, importlib.metadata as m
        m.version("pytest")
        os.mkdir(os.path.join({venv.site!r}, "other-1.0.dist-info"))
        env = dict(os.environ, EPCACHE_DISABLE="", EPCACHE_TRACE="")
        subprocess.run([sys.executable, "-m", "epcache", "rebuild", {venv.site!r}], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        """
    )
    run(venv.python, ["-c", program], env=env, cwd=venv.work)
    (record,) = read_trace(trace)
    assert record["exit_rebuilds"] == [], record
