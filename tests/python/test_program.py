"""A real program in an enabled venv, the CLI, and faults.

Each test builds its own bare venv (see conftest.Venv) that links the
installed epcache and the pinned test venv's ~70 distributions, so
enabling and disabling never touches a shared environment.
"""

import json
import os
import re
import shutil
import textwrap

import pytest

from conftest import base_env, probe, run

TRACE_KEYS = ("answered", "fallbacks", "errors", "hits", "scans", "consults")


def read_trace(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def normalized(text):
    """pytest's report without object addresses and timings."""
    text = re.sub(r" at 0x[0-9a-fA-F]+", " at 0x?", text)
    text = re.sub(r"in [0-9.]+s", "in ?s", text)
    return text


def pytest_outputs(venv, env):
    version = run(venv.python, ["-m", "pytest", "--version", "--version"], env=env, cwd=venv.work)
    trace = run(
        venv.python,
        ["-m", "pytest", "--trace-config", "--co", "-q", "-p", "no:cacheprovider"],
        env=env,
        cwd=venv.work,
        check=False,
    )
    assert trace.returncode == 0, trace.stdout + trace.stderr
    registered = re.findall(r"PLUGIN registered: (.*)", normalized(trace.stdout))
    return normalized(version.stdout + version.stderr), normalized(trace.stdout), registered


def test_pytest_reports_the_same_plugins_when_enabled(venv, tmp_path):
    (venv.work / "test_x.py").write_text("def test_x():\n    pass\n")
    env = base_env(PYTHONDONTWRITEBYTECODE="1")
    stock_version, stock_trace, stock_registered = pytest_outputs(venv, env)
    assert "registered third-party plugins" in stock_version
    assert "xdist" in stock_version and "pytest-timeout" in stock_version
    assert len(stock_registered) > 20
    assert any("xdist.plugin" in line for line in stock_registered)

    venv.epcache("enable")
    assert os.path.exists(venv.pth)
    trace_file = tmp_path / "trace.jsonl"
    env = base_env(PYTHONDONTWRITEBYTECODE="1", EPCACHE_TRACE=str(trace_file))
    pytest_outputs(venv, env)  # the first start consults the new work dir
    trace_file.unlink()
    version, trace, registered = pytest_outputs(venv, env)
    assert version == stock_version
    assert registered == stock_registered
    assert trace == stock_trace

    records = read_trace(trace_file)
    assert len(records) == 2
    for record in records:
        assert record["patched"] == ["importlib.metadata"], record
        assert record["answered"] > 0, record
        assert record["fallbacks"] == 0 and record["errors"] == 0, record
        # Every existing path entry came from an index file: no scans.
        assert record["hits"] >= 3 and record["scans"] == 0, record


def test_enable_disable_and_status(venv):
    out = venv.epcache("enable").stdout
    assert venv.pth in out
    with open(venv.pth) as f:
        line = f.read()
    assert line.startswith("import ") and line.count("\n") == 1
    status = json.loads(venv.epcache("status", "--json").stdout)
    sites = [s for s in status if (s["distributions"] or 0) > 0]
    assert sites and all(s["hit"] for s in sites)
    assert "hit" in venv.epcache("status").stdout
    out = venv.epcache("rebuild").stdout
    assert "published" in out
    info, _ = probe(venv.python)
    assert info["patched"] is True
    assert "disabled" in venv.epcache("disable").stdout
    assert not os.path.exists(venv.pth)
    assert "not enabled" in venv.epcache("disable").stdout
    info, _ = probe(venv.python)
    assert info["patched"] is False


def test_startup_does_not_load_importlib_metadata(venv):
    venv.epcache("enable")
    code = (
        "import sys, json; print(json.dumps(sorted("
        "m for m in sys.modules if 'metadata' in m or 'epcache' in m)))"
    )
    loaded = json.loads(run(venv.python, ["-c", code]).stdout)
    assert "importlib.metadata" not in loaded
    assert loaded == []


def stock_answers(venv):
    info, _ = probe(venv.python, env=base_env(EPCACHE_DISABLE="1"))
    assert info["patched"] is False
    return info


def same_answers(a, b):
    for key in ("pytest11", "flake8", "console", "dists", "pytest"):
        assert a[key] == b[key], key


def test_a_corrupt_index_file(venv, tmp_path):
    stock = stock_answers(venv)
    cache = tmp_path / "cache"
    env = base_env(EPCACHE_DIR=str(cache))
    venv.epcache("enable", env=env)
    for _ in range(2):  # the second start hits for every entry
        info, _ = probe(venv.python, env=env)
    same_answers(info, stock)
    assert info["stats"]["scans"] == 0
    files = [p for p in cache.rglob("*") if re.fullmatch(r"[0-9a-f]{64}", p.name)]
    assert len(files) >= 3
    for i, path in enumerate(files):
        data = bytearray(path.read_bytes())
        if i % 3 == 0:
            data = data[: len(data) // 2]
        elif i % 3 == 1:
            for j in range(len(data) // 3, len(data), 7):
                data[j] ^= 0x5A
        else:
            data = b"not an index file at all"
        path.write_bytes(bytes(data))
    info, err = probe(venv.python, env=env)
    assert err == ""
    same_answers(info, stock)
    assert info["patched"] is True
    assert info["stats"]["fallbacks"] == 0 and info["stats"]["scans"] > 0
    # The corrupt files were replaced: the next start hits again.
    info, _ = probe(venv.python, env=env)
    same_answers(info, stock)
    assert info["stats"]["scans"] == 0 and info["stats"]["hits"] >= 3


@pytest.mark.parametrize("how", ["parent-is-a-file", "writable-by-others"])
def test_an_unusable_cache_dir(venv, tmp_path, how):
    stock = stock_answers(venv)
    if how == "parent-is-a-file":
        (tmp_path / "file").write_text("x")
        cache = tmp_path / "file" / "cache"
    else:
        cache = tmp_path / "shared"
        cache.mkdir()
        os.chmod(cache, 0o777)
    env = base_env(EPCACHE_DIR=str(cache))
    venv.epcache("enable", env=env)
    for _ in range(2):
        info, err = probe(venv.python, env=env)
        assert err == ""
        same_answers(info, stock)
        assert info["patched"] is True
        assert info["stats"]["fallbacks"] == 0 and info["stats"]["hits"] == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_cache_dir(venv, tmp_path):
    stock = stock_answers(venv)
    cache = tmp_path / "ro"
    cache.mkdir()
    os.chmod(cache, 0o500)
    env = base_env(EPCACHE_DIR=str(cache))
    venv.epcache("enable", env=env)
    info, err = probe(venv.python, env=env)
    assert err == ""
    same_answers(info, stock)


def test_disabled_by_environment(venv, tmp_path):
    stock = stock_answers(venv)
    venv.epcache("enable")
    trace = tmp_path / "trace.jsonl"
    env = base_env(EPCACHE_DISABLE="1", EPCACHE_TRACE=str(trace))
    info, err = probe(venv.python, env=env)
    assert err == ""
    same_answers(info, stock)
    assert info["patched"] is False
    assert not trace.exists()


def test_an_epcache_imported_from_elsewhere_keeps_its_own_modules(venv, tmp_path):
    """The hook loads epcache's modules from its own directory, but not
    into a package imported from elsewhere first (a checkout on
    PYTHONPATH): that one's _api and _installer are its own, matching its
    native module."""
    import epcache

    venv.epcache("enable")
    other = tmp_path / "other"
    shutil.copytree(os.path.dirname(epcache.__file__), other / "epcache")
    program = """
        import json, sys
        import epcache
        import importlib.metadata as m
        m.version("pytest")
        print(json.dumps({n: sys.modules[n].__file__ for n in
                          ("epcache", "epcache._api", "epcache._installer", "epcache._epcache")}))
    """
    proc = run(venv.python, ["-c", textwrap.dedent(program)], env=base_env(PYTHONPATH=str(other)))
    assert "Traceback" not in proc.stderr, proc.stderr
    files = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, path in files.items():
        assert path.startswith(str(other)), (name, path)


def test_a_broken_native_module(venv, tmp_path):
    """An epcache whose extension module cannot load (here: a copy of the
    package without it, which the .pth line names) leaves the stock
    functions, quietly."""
    from epcache.__main__ import write_startup

    stock = stock_answers(venv)
    import epcache

    broken = tmp_path / "broken"
    shutil.copytree(os.path.dirname(epcache.__file__), broken / "epcache")
    for name in os.listdir(broken / "epcache"):
        if name.startswith("_epcache"):
            os.remove(broken / "epcache" / name)
    write_startup(venv.site, str(broken / "epcache" / "_hook.py"))
    for env in (None, base_env(PYTHONPATH=str(broken))):
        info, err = probe(venv.python, env=env)
        assert "Traceback" not in err
        same_answers(info, stock)
        assert info["patched"] is False
        run(venv.python, ["-m", "pytest", "--version"], env=env)


def test_epcache_removed_without_disable(venv):
    venv.epcache("enable")
    # Unlink the site-packages that holds epcache; the .pth file stays.
    with open(os.path.join(venv.site, "00-links.pth"), "w") as f:
        f.write(os.environ["EPCACHE_TEST_SITE"] + "\n")
    assert os.path.exists(venv.pth)
    proc = run(venv.python, ["-c", "import importlib.metadata as m; print(m.version('pytest'))"])
    assert proc.stderr == ""
    assert proc.stdout.strip()


def test_sys_path_changes_in_an_enabled_interpreter(venv, tmp_path):
    venv.epcache("enable")
    extra = tmp_path / "extra" / "late-1.0.dist-info"
    extra.mkdir(parents=True)
    (extra / "METADATA").write_text("Name: late\nVersion: 1.0\n\n")
    (extra / "entry_points.txt").write_text("[epcache.late]\nl = late:main\n")
    code = (
        "import sys, importlib.metadata as m\n"
        "assert hasattr(m.entry_points, '__epcache_stock__')\n"
        "assert not m.entry_points(group='epcache.late')\n"
        f"sys.path.append({str(extra.parent)!r})\n"
        "assert [e.name for e in m.entry_points(group='epcache.late')] == ['l']\n"
        "assert m.version('late') == '1.0'\n"
        "sys.path.pop()\n"
        "assert not m.entry_points(group='epcache.late')\n"
        "print('ok')\n"
    )
    assert run(venv.python, ["-c", code]).stdout.strip() == "ok"


def test_the_backport_is_patched_when_imported(venv):
    venv.epcache("enable")
    code = (
        "import json, importlib.metadata as std, importlib_metadata as bp, epcache._api as api\n"
        "from epcache._api import _flavors\n"
        "stock = _flavors['importlib_metadata'].stock\n"
        "key = lambda e: (e.name, e.value, e.group, e.dist.name)\n"
        "assert hasattr(bp.entry_points, '__epcache_stock__')\n"
        "for g in ('pytest11', 'console_scripts', 'flake8.extension'):\n"
        "    assert list(map(key, bp.entry_points(group=g))) == list(map(key, stock['entry_points'](group=g))), g\n"
        "    assert list(map(key, std.entry_points(group=g))) == list(map(key, stock['entry_points'](group=g))), g\n"
        "    assert all(type(e) is bp.EntryPoint for e in std.entry_points(group=g))\n"
        "assert [d.name for d in bp.distributions()] == [d.name for d in stock['distributions']()]\n"
        "assert all(isinstance(d, bp.PathDistribution) for d in bp.distributions())\n"
        "assert bp.version('pytest') == stock['version']('pytest')\n"
        "s = api.stats(); assert s['fallbacks'] == 0 and s['errors'] == 0, s\n"
        "print(json.dumps(sorted(s['patched'])))\n"
    )
    proc = run(venv.python, ["-c", code])
    assert json.loads(proc.stdout) == ["importlib.metadata", "importlib_metadata"]
