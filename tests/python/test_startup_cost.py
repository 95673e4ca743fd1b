"""What an enabled interpreter loads when it does not query.

The .pth line runs ``epcache/_startup.py``, compiled into
``epcache-startup.bin`` beside it, and loads no module; importing importlib.metadata loads ``epcache._hook``
(stand-ins on the four functions). ``epcache._api``, ``epcache._installer`` and the native module
``epcache._epcache`` load only on the first query. No timing asserts here:
docs/python.md has the measured figures and how to take them.
"""

import json
import os
import random
import textwrap

import pytest

from conftest import base_env, run

HEAVY = {"epcache._api", "epcache._epcache", "epcache._installer"}

# Prints, at exit, the epcache modules loaded and a few facts about the
# patched functions. PROGRAM is inserted before the atexit registration
# runs, so its own imports are seen.
REPORT = textwrap.dedent(
    """
    import atexit, json, sys

    def _report():
        out = {"modules": sorted(m for m in sys.modules if m.startswith(("epcache", "_epcache")))}
        m = sys.modules.get("importlib.metadata")
        if m is not None:
            out["patched"] = hasattr(m.entry_points, "__epcache_stock__")
        print(json.dumps(out))

    atexit.register(_report)
    """
)


def loaded(venv, program, env=None):
    proc = run(venv.python, ["-c", REPORT + textwrap.dedent(program)], env=env)
    assert proc.stderr == "", proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_process_that_does_nothing_loads_no_module(venv):
    venv.epcache("enable")
    out = loaded(venv, "import sys; assert any(getattr(f, '_epcache_watcher', 0) for f in sys.meta_path)")
    assert out["modules"] == []


def test_importing_importlib_metadata_loads_no_api_and_no_native_module(venv):
    venv.epcache("enable")
    for program in (
        "import importlib.metadata",
        "import importlib.metadata as m; m.entry_points; m.version",
        "from importlib.metadata import entry_points, version, distributions, distribution",
        "import importlib_metadata",
        "import importlib.metadata, importlib_metadata",
    ):
        out = loaded(venv, program)
        assert not HEAVY & set(out["modules"]), (program, out)
        assert out["modules"] == ["epcache._hook"], program
        if "patched" in out:
            assert out["patched"] is True, program


def test_the_stand_ins_look_like_the_stock_functions(venv):
    venv.epcache("enable")
    program = """
        import inspect, sys
        import importlib.metadata as m
        for name in ("entry_points", "distributions", "distribution", "version"):
            f = getattr(m, name)
            stock = f.__epcache_stock__
            assert f is not stock, name
            assert f.__wrapped__ is stock, name
            for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
                assert getattr(f, attr) == getattr(stock, attr), (name, attr)
            assert inspect.signature(f) == inspect.signature(stock), name
        assert "epcache._api" not in sys.modules
    """
    out = loaded(venv, program)
    assert not HEAVY & set(out["modules"])


def test_the_first_call_loads_the_api_and_replaces_the_stand_ins(venv):
    venv.epcache("enable")
    program = """
        import sys
        import importlib.metadata as m
        from importlib.metadata import entry_points as held, version as held_version
        stock = held.__epcache_stock__
        expected = [(e.name, e.value) for e in stock(group="console_scripts")]
        assert [(e.name, e.value) for e in held(group="console_scripts")] == expected
        assert "epcache._api" in sys.modules and "epcache._epcache" in sys.modules
        # The module now holds epcache's real functions, not the stand-ins.
        assert m.entry_points is not held and m.version is not held_version
        assert m.entry_points.__epcache_stock__ is stock
        assert [(e.name, e.value) for e in m.entry_points(group="console_scripts")] == expected
        # A stand-in held from before forwards, whether called first or not.
        assert held_version("pytest") == m.version("pytest") == m.version.__epcache_stock__("pytest")
        import epcache
        s = epcache.stats()
        assert s["patched"] == ["importlib.metadata"], s
        # (The stock functions call the module's distribution() and
        # distributions(), so they are answered too.)
        assert s["answered"] >= 4 and s["fallbacks"] == 0 and s["errors"] == 0, s
    """
    out = loaded(venv, program, env=base_env(EPCACHE_STRICT="1"))
    assert HEAVY <= set(out["modules"])
    assert out["patched"] is True


def test_stats_and_uninstall_before_any_query(venv):
    venv.epcache("enable")
    program = """
        import importlib.metadata as m
        stock = m.entry_points.__epcache_stock__
        import epcache
        assert epcache.installed()
        s = epcache.stats()  # loads epcache._api: the stand-ins become real
        assert s["patched"] == ["importlib.metadata"] and s["answered"] == 0, s
        assert m.entry_points.__epcache_stock__ is stock
        epcache.uninstall()
        assert m.entry_points is stock and not epcache.installed()
        epcache.install()
        assert m.entry_points.__epcache_stock__ is stock and epcache.installed()
    """
    loaded(venv, program)


def test_uninstall_without_the_api_restores_stock(venv):
    """epcache._hook alone (no epcache._api) puts the stock functions back."""
    venv.epcache("enable")
    program = """
        import sys
        import importlib.metadata as m
        stock = m.entry_points.__epcache_stock__
        from epcache import _hook
        assert _hook.active()
        _hook.deactivate()
        assert m.entry_points is stock and not _hook.active()
        assert not any(getattr(f, "_epcache_watcher", False) for f in sys.meta_path)
        import importlib_metadata as bp
        assert not hasattr(bp.entry_points, "__epcache_stock__")
    """
    out = loaded(venv, program)
    assert not HEAVY & set(out["modules"])


def test_a_target_imported_before_the_startup_module(venv):
    """Another .pth file that imports importlib.metadata first: the stand-ins
    go on at start, still without the API."""
    venv.epcache("enable")
    with open(os.path.join(venv.site, "00-early.pth"), "w") as f:
        f.write("import importlib.metadata\n")
    out = loaded(venv, "import sys; assert 'importlib.metadata' in sys.modules")
    assert out["modules"] == ["epcache._hook"]
    assert out["patched"] is True
    out = loaded(venv, "import importlib.metadata as m; m.version('pytest')")
    assert HEAVY <= set(out["modules"])


def test_disabled_loads_nothing_more(venv):
    venv.epcache("enable")
    env = base_env(EPCACHE_DISABLE="1")
    out = loaded(venv, "import importlib.metadata as m; m.version('pytest')", env=env)
    assert out["modules"] == []
    assert out["patched"] is False
    out = loaded(venv, "import sys; assert not any('epcache' in repr(f) for f in sys.meta_path)", env=env)
    assert out["modules"] == []


def test_enable_writes_one_line_and_disable_removes_it(venv):
    import importlib.util

    # What enable wrote before the line carried its code: a module beside
    # the .pth file. enable and disable clean it up.
    legacy = os.path.join(venv.site, "_epcache_startup.py")
    for path in (legacy, importlib.util.cache_from_source(legacy)):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("")
    venv.epcache("enable")
    lines = open(venv.pth).read().splitlines()
    assert len(lines) == 1 and lines[0].startswith("import sys, marshal, ")
    code_file = os.path.join(venv.site, "epcache-startup.bin")
    # The line's marshalled code names the file (marshal keeps a str's bytes).
    assert code_file.encode().hex() in lines[0]
    assert os.path.getsize(code_file) > 0
    assert not os.path.exists(legacy)
    assert not os.path.exists(importlib.util.cache_from_source(legacy))
    venv.epcache("disable")
    assert not os.path.exists(venv.pth)
    assert not os.path.exists(code_file)


@pytest.mark.parametrize("damage", ["missing", "empty", "garbage", "truncated", "a directory"])
def test_a_damaged_code_file_leaves_the_interpreter_stock_and_quiet(venv, damage):
    """The line reads epcache-startup.bin: whatever became of that file, the
    interpreter starts stock and prints nothing."""
    venv.epcache("enable")
    code_file = os.path.join(venv.site, "epcache-startup.bin")
    data = open(code_file, "rb").read()
    os.remove(code_file)
    if damage == "empty":
        open(code_file, "wb").close()
    elif damage == "garbage":
        with open(code_file, "wb") as f:
            f.write(random.Random(11).randbytes(4096))
    elif damage == "truncated":
        with open(code_file, "wb") as f:
            f.write(data[: len(data) // 2])
    elif damage == "a directory":
        os.mkdir(code_file)
    out = loaded(venv, "import importlib.metadata as m; m.version('pytest')")
    assert out == {"modules": [], "patched": False}


def test_another_bytecode_version_stays_stock_and_quiet(venv):
    """A line compiled for another magic number does nothing."""
    venv.epcache("enable")
    line = open(venv.pth).read()
    magic = line.split("e.MAGIC_NUMBER == ", 1)[1].split(" and ", 1)[0]
    with open(venv.pth, "w") as f:
        f.write(line.replace(magic, ascii(b"\x00\x00\r\n"), 1))
    proc = run(venv.python, ["-c", REPORT + "import importlib.metadata as m; m.version('pytest')"])
    assert proc.stderr == ""
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"modules": [], "patched": False}


def test_a_missing_hook_file_leaves_the_interpreter_stock_and_quiet(venv, tmp_path):
    """The line names epcache/_hook.py by its path; if that file is gone
    (epcache uninstalled without `disable`), the finder takes itself off
    sys.meta_path at the first import of importlib.metadata."""
    from epcache.__main__ import write_startup

    write_startup(venv.site, str(tmp_path / "gone" / "_hook.py"))
    program = """
        import sys
        assert any(getattr(f, "_epcache_watcher", 0) for f in sys.meta_path)
        import importlib.metadata as m, importlib_metadata
        m.version("pytest")
        assert not any(getattr(f, "_epcache_watcher", 0) for f in sys.meta_path)
    """
    proc = run(venv.python, ["-c", REPORT + textwrap.dedent(program)])
    assert proc.stderr == ""
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"modules": [], "patched": False}


def test_epcache_removed_without_disable_leaves_interpreters_stock_and_quiet(venv, test_site):
    venv.epcache("enable")
    # The venv reaches the installed epcache through this file: without it,
    # epcache is gone, but the .pth file and the startup module are not.
    with open(os.path.join(venv.site, "00-links.pth"), "w") as f:
        f.write(f"{test_site}\n")
    program = "import importlib.metadata as m; print(m.version('pytest'))"
    proc = run(venv.python, ["-c", program])
    assert proc.stderr == ""
    assert proc.stdout.strip() == run(venv.python, ["-c", program], env=base_env(EPCACHE_DISABLE="1")).stdout.strip()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("kind", ["a FIFO", "a link to /dev/zero"])
def test_a_code_file_that_is_not_a_regular_file_neither_hangs_nor_fills_the_start(venv, kind):
    """Every start opens epcache-startup.bin: a FIFO in its place (opening
    it would wait for a writer) or a link to a device (reading it would
    never end) leaves the interpreter stock, quick and small. Checked with
    a real child process: a 60 s guard on the wait, and its peak memory."""
    import signal
    import subprocess
    import sys

    venv.epcache("enable")
    code_file = os.path.join(venv.site, "epcache-startup.bin")
    os.remove(code_file)
    if kind == "a FIFO":
        os.mkfifo(code_file)
    else:
        os.symlink("/dev/zero", code_file)
    program = REPORT + "import importlib.metadata as m; m.version('pytest')"
    # The child runs under a wrapper that limits its address space (a
    # runaway read then ends in a MemoryError, not a starved machine) and
    # reports its peak memory, which tells such a read apart.
    wrapper = textwrap.dedent(
        """
        import resource, subprocess, sys
        limit = 1 << 30
        def limited():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        proc = subprocess.run(sys.argv[1:], capture_output=True, text=True, preexec_fn=limited)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        sys.exit(proc.returncode)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", wrapper, str(venv.python), "-c", program],
        env=base_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the interpreter start hung on the code file")
    assert proc.returncode == 0 and err == "", err
    *lines, peak_kib = out.strip().splitlines()
    assert json.loads(lines[-1]) == {"modules": [], "patched": False}
    # ru_maxrss is in KiB on Linux: a stock start stays far below 256 MiB.
    assert int(peak_kib) < 256 * 1024, peak_kib


def _static_unwinder_available():
    import shutil
    import subprocess

    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        return False
    out = subprocess.run([cc, "-print-file-name=libgcc_eh.a"], capture_output=True, text=True).stdout.strip()
    return os.path.isabs(out) and os.path.isfile(out)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc/self/maps (Linux)")
@pytest.mark.skipif(not _static_unwinder_available(), reason="the C compiler has no libgcc_eh.a (build.rs links it only then)")
def test_the_native_module_maps_no_libgcc_s(venv):
    """build.rs links the unwinder statically: a first query loads the
    native module and no libgcc_s.so.1 with it."""
    venv.epcache("enable")
    program = """
        import importlib.metadata as m, sys
        m.version("pytest")
        assert "epcache._epcache" in sys.modules
        with open("/proc/self/maps") as f:
            maps = f.read()
        assert "_epcache" in maps
        print("libgcc_s" in maps)
    """
    proc = run(venv.python, ["-c", textwrap.dedent(program)])
    assert proc.stdout.strip() == "False", proc.stdout
