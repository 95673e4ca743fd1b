"""Faults that must never reach the program: scan errors, panics, CLI errors.

What this file proves, each with a real trigger (no mocks):

(a) Scan errors other than "not found". When the scan of a path entry hits
    EMFILE (a real ``RLIMIT_NOFILE``) or EACCES (a ``chmod 000`` dist-info,
    read by a process without CAP_DAC_OVERRIDE), the hooked
    ``importlib.metadata`` query answers exactly what the stock function
    answers under the same condition -- the same result, or the same
    exception type -- and no index is published from that scan: a later
    query in a fresh, unrestricted process sees every distribution.

(b) No Rust panic crosses into Python. An index whose string arena passes
    wincode's 4 MiB collection cap makes ``format::encode`` panic when it
    is published; the hooked program and the direct API must still answer
    as stock does, and neither ``python -m epcache rebuild`` nor the Rust
    ``epcache rebuild`` may die with a panic or a traceback.

(c) Clear errors, never tracebacks. ``python -m epcache enable|disable`` on
    a missing or unwritable site-packages exits non-zero with exactly one
    line on stderr; output into a pipe whose reader is gone (or ``| head
    -1``) prints no ``BrokenPipeError``; the Rust CLI rejects bad input with
    one error line and no panic.

The stock behaviour these tests hold epcache to (CPython 3.11):

* EMFILE while stock reads a metadata file (its directory listing cached
  from before the limit): ``entry_points()``, ``distributions()`` (on
  ``.name``) and ``version()`` raise ``OSError`` (errno 24). With one
  descriptor free, stock opens one file at a time and answers fully.
* EACCES on one ``*.dist-info``: ``PathDistribution.read_text`` suppresses
  ``PermissionError``, so nothing raises: ``entry_points()`` omits that
  distribution, ``distributions()`` yields it with ``name``/``version``
  ``None``, and ``version(its name)`` returns ``None``.
"""

import functools
import json
import os
import shutil
import subprocess
import textwrap
import time

import pytest

from conftest import Venv, base_env, run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IS_ROOT = os.geteuid() == 0
GROUP = "faults.group"
HANG_GUARD = 300  # seconds; only so a hang fails instead of blocking the suite


# ------------------------------------------------------------------ helpers


def make_site(root, count, *, prefix="faultpkg", group=GROUP, eps_per_dist=1, long_eps=False):
    """``count`` dist-infos in ``root``, each with METADATA and an
    entry_points.txt; the directory's mtime is set an hour back, so that
    an index of it may be published at once."""
    os.makedirs(root, exist_ok=True)
    for i in range(count):
        name = f"{prefix}-{i:05d}"
        module = f"{prefix}_{i:05d}"
        info = os.path.join(root, f"{module}-1.{i}.dist-info")
        os.mkdir(info)
        with open(os.path.join(info, "METADATA"), "w") as f:
            f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.{i}\n\n")
        lines = [f"[{group}]\n"]
        for k in range(eps_per_dist):
            if long_eps:
                lines.append(
                    f"{name}-command-{k:02d} = "
                    f"{module}.commands.subcommand_module_{k:02d}:entry_point_main\n"
                )
            else:
                lines.append(f"ep{i:05d}{'' if k == 0 else f'_{k}'} = {module}:main\n")
        with open(os.path.join(info, "entry_points.txt"), "w") as f:
            f.writelines(lines)
    settle(root)
    return str(root)


def settle(path):
    old = time.time() - 3600
    os.utime(path, (old, old))


def cli_env(cache, **extra):
    return base_env(EPCACHE_DIR=str(cache), EPCACHE_SETTLE_SECS="0", **extra)


def brief(answer):
    """An answer, short enough for an assertion message."""
    if "ok" in answer and isinstance(answer["ok"], list):
        items = answer["ok"]
        return f"ok: {len(items)} items, first {items[:2]}"
    return str(answer)


def stderr_lines(text):
    return text.splitlines()


def no_traceback(proc):
    err = proc.stderr
    assert "Traceback" not in err, err
    assert "BrokenPipeError" not in err, err
    assert "PanicException" not in err, err
    assert "panicked" not in err, err


def one_line_failure(proc):
    """A failure: non-zero exit, one line on stderr, no traceback."""
    assert proc.returncode != 0, (proc.returncode, proc.stdout, proc.stderr)
    no_traceback(proc)
    assert len(stderr_lines(proc.stderr)) == 1, proc.stderr


def status_lookup(python, env, path):
    proc = run(python, ["-m", "epcache", "status", "--json", path], env=env)
    (entry,) = json.loads(proc.stdout)
    return entry["verdict"]


def restricted(argv):
    """``argv`` run so that file permissions apply to it: as root, with
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped (this machine's
    Python lives under /root, mode 0700, which user nobody cannot reach, so
    ``setpriv --reuid=65534`` cannot run it); as anyone else, unchanged."""
    if not IS_ROOT:
        return list(argv)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv to drop CAP_DAC_OVERRIDE as root")
    if not _can_drop_capabilities(setpriv):
        pytest.skip("setpriv cannot drop capabilities here (no CAP_SETPCAP?)")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--", *map(str, argv)]


@functools.lru_cache(maxsize=None)
def _can_drop_capabilities(setpriv):
    probe = subprocess.run(
        [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--", "true"],
        capture_output=True, timeout=HANG_GUARD,
    )
    return probe.returncode == 0


def run_restricted(argv, env):
    return subprocess.run(
        restricted(argv), env=env, capture_output=True, text=True, timeout=HANG_GUARD
    )


def rust_cli():
    for profile in ("debug", "release"):
        path = os.path.join(REPO, "target", profile, "epcache")
        if os.access(path, os.X_OK):
            return path
    pytest.skip("no target/{debug,release}/epcache: run `cargo build` (scripts/test.sh does)")


@pytest.fixture(scope="module")
def enabled(tmp_path_factory, test_site):
    """One venv with the hook enabled (no rebuild), shared by the module;
    each test passes its own EPCACHE_DIR."""
    venv = Venv(tmp_path_factory.mktemp("faults") / "venv", test_site)
    venv.epcache("enable", "--no-rebuild")
    assert os.path.exists(venv.pth)
    return venv


# --------------------------------------------- (a) EMFILE and EACCES scans

# Runs one query with at most `free` descriptors left to open. Stock's
# directory listing and lazy imports are warmed first (through the stock
# function, so epcache's cache is untouched), so that under the limit
# stock fails where it reads files, as a long-running program would.
LIMITED = textwrap.dedent(
    """
    import importlib.metadata as m
    import email.feedparser, email.parser, json, os, pathlib, resource, sys, zipfile
    site, free, query = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        import epcache._api
        epcache._api.stats()   # the native module and its state, loaded now
    except Exception:
        pass
    sys.path[:] = [site]
    stock = getattr(m.distributions, "__epcache_stock__", m.distributions)
    for d in stock():
        d.name, d.entry_points
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(64, hard), hard))
    held = []
    while True:
        try:
            held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            break
    for _ in range(free):
        os.close(held.pop())
    try:
        if query == "entry_points":
            r = [[e.name, e.value, e.group, e.dist.name] for e in m.entry_points(group=%r)]
        elif query == "distributions":
            r = [[d.name, d.version] for d in m.distributions()]
        else:
            r = m.version("faultpkg-00100")
        out = {"ok": r}
    except BaseException as e:
        out = {"raised": [type(e).__name__, getattr(e, "errno", None)]}
    for fd in held:
        os.close(fd)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    print(json.dumps(out))
    """
    % GROUP
)

# Every answer for a path entry, from a fresh process without limits.
FULL = textwrap.dedent(
    """
    import importlib.metadata as m, json, sys
    sys.path[:] = [sys.argv[1]]
    out = {
        "entry_points": [[e.name, e.value, e.group, e.dist.name] for e in m.entry_points(group=%r)],
        "distributions": [[d.name, d.version] for d in m.distributions()],
        "versions": {},
    }
    for name in sys.argv[2:]:
        out["versions"][name] = m.version(name)
    print(json.dumps(out))
    """
    % GROUP
)


@pytest.fixture(scope="module")
def emfile_site(tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("emfile") / "site", 200)


def full_answers(venv, env, path, *names):
    return json.loads(run(venv.python, ["-c", FULL, path, *names], env=env).stdout)


@pytest.mark.parametrize("query", ["entry_points", "distributions", "version"])
@pytest.mark.parametrize("free", [0, 1], ids=["no-fd-free", "one-fd-free"])
def test_emfile_during_the_scan_answers_as_stock_and_publishes_nothing(
    enabled, emfile_site, tmp_path, free, query
):
    env = cli_env(tmp_path / "cache")
    stock_env = cli_env(tmp_path / "cache", EPCACHE_DISABLE="1")
    args = ["-c", LIMITED, emfile_site, str(free), query]
    stock = json.loads(run(enabled.python, args, env=stock_env).stdout)
    if free == 0:
        # What the issue says: stock raises OSError(EMFILE).
        assert stock == {"raised": ["OSError", 24]}, stock
    else:
        assert "ok" in stock, stock
    limited = json.loads(run(enabled.python, args, env=env).stdout)
    assert limited == stock, f"under the limit: epcache {brief(limited)}, stock {brief(stock)}"
    # Nothing published from that scan ...
    lookup = status_lookup(enabled.python, env, emfile_site)
    assert lookup != "hit", "an index was published from the scan that hit EMFILE"
    # ... so a fresh process without the limit sees every distribution.
    expected = full_answers(enabled, stock_env, emfile_site, "faultpkg-00100")
    assert len(expected["entry_points"]) == 200
    assert full_answers(enabled, env, emfile_site, "faultpkg-00100") == expected


# Every query, in one child, for the EACCES case.
QUERIES = textwrap.dedent(
    """
    import importlib.metadata as m, json, sys
    sys.path[:] = [sys.argv[1]]
    out = {}
    def attempt(key, f):
        try:
            out[key] = {"ok": f()}
        except BaseException as e:
            out[key] = {"raised": [type(e).__name__, getattr(e, "errno", None)]}
    attempt("entry_points", lambda: [[e.name, e.value, e.group, e.dist.name] for e in m.entry_points(group=%r)])
    attempt("distributions", lambda: [[d.name, d.version] for d in m.distributions()])
    attempt("version_locked", lambda: m.version(sys.argv[2]))
    attempt("version_other", lambda: m.version("faultpkg-00001"))
    attempt("distribution_locked", lambda: m.distribution(sys.argv[2]).metadata["Name"])
    print(json.dumps(out))
    """
    % GROUP
)


def test_eacces_on_one_dist_info_answers_as_stock_and_publishes_nothing(enabled, tmp_path):
    site = make_site(tmp_path / "site", 30)
    locked_name = "faultpkg-00007"
    locked = os.path.join(site, "faultpkg_00007-1.7.dist-info")
    cache = tmp_path / "cache"
    env = cli_env(cache)
    stock_env = cli_env(cache, EPCACHE_DISABLE="1")
    argv = [enabled.python, "-c", QUERIES, site, locked_name]
    os.chmod(locked, 0)
    try:
        probe = run_restricted(["cat", os.path.join(locked, "METADATA")], env)
        if probe.returncode == 0:
            pytest.skip("cannot make a dist-info unreadable here")
        stock_proc = run_restricted(argv, stock_env)
        assert stock_proc.returncode == 0, stock_proc.stderr
        stock = json.loads(stock_proc.stdout)
        # Stock importlib.metadata suppresses PermissionError: no exception.
        assert stock["version_locked"] == {"ok": None}, stock
        assert [None, None] in stock["distributions"]["ok"], stock
        assert len(stock["entry_points"]["ok"]) == 29, stock
        proc = run_restricted(argv, env)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == stock
    finally:
        os.chmod(locked, 0o755)
    # chmod does not change the site's mtime: an index published from the
    # scan that could not read faultpkg-00007 would now be trusted.
    lookup = status_lookup(enabled.python, env, site)
    assert lookup != "hit", "an index was published from the scan that hit EACCES"
    expected = full_answers(enabled, stock_env, site, locked_name)
    assert len(expected["entry_points"]) == 30
    assert full_answers(enabled, env, site, locked_name) == expected


# ------------------------------------------------------------- (b) panics


@pytest.fixture(scope="session")
def huge_site(tmp_path_factory):
    """3,000 distributions with 24 entry points each: an index whose string
    arena (about 5.8 MB) passes wincode's 4 MiB cap, so that publishing it
    makes ``format::encode`` panic on the unfixed code. (25,000 plain
    distributions are not enough: their arena is about 2 MB and their
    records about 2.1 MB, both under the cap; about 50,000 would be.)"""
    return make_site(
        tmp_path_factory.mktemp("huge") / "site",
        3000,
        prefix="huge",
        group="huge.commands",
        eps_per_dist=24,
        long_eps=True,
    )


HUGE_PROGRAM = textwrap.dedent(
    """
    import hashlib, json, sys
    import importlib.metadata as m
    sys.path.append(sys.argv[1])
    direct = sys.argv[2] == "direct"
    if direct:
        import epcache as m
    eps = [(e.name, e.value, e.group, e.dist.name) for e in m.entry_points(group="huge.commands")]
    out = {
        "count": len(eps),
        "digest": hashlib.sha256(repr(eps).encode()).hexdigest(),
        "version": m.version("huge-01234"),
        "pytest": m.version("pytest"),
    }
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def huge_stock(enabled, huge_site, tmp_path_factory):
    """What stock importlib.metadata answers for HUGE_PROGRAM."""
    env = cli_env(tmp_path_factory.mktemp("huge-stock"), EPCACHE_DISABLE="1")
    expected = json.loads(run(enabled.python, ["-c", HUGE_PROGRAM, huge_site, "hooked"], env=env).stdout)
    assert expected["count"] == 72000 and expected["version"] == "1.1234"
    return expected


@pytest.mark.parametrize("how", ["hooked", "direct"])
def test_a_panic_in_the_extension_falls_back_to_stock(enabled, huge_site, huge_stock, tmp_path, how):
    env = cli_env(tmp_path / "cache")
    expected = huge_stock
    proc = run(enabled.python, ["-c", HUGE_PROGRAM, huge_site, how], env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "PanicException" not in proc.stderr, proc.stderr[-3000:]
    assert json.loads(proc.stdout) == expected


def test_python_m_epcache_rebuild_of_a_huge_entry(enabled, huge_site, tmp_path):
    proc = run(enabled.python, ["-m", "epcache", "rebuild", huge_site],
               env=cli_env(tmp_path / "cache"), check=False)
    no_traceback(proc)
    if proc.returncode != 0:
        assert len(stderr_lines(proc.stderr)) == 1, proc.stderr


def test_rust_cli_rebuild_of_a_huge_entry(huge_site, tmp_path):
    proc = subprocess.run(
        [rust_cli(), "rebuild", huge_site],
        env=cli_env(tmp_path / "cache"),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    no_traceback(proc)
    assert proc.returncode != 101, proc.stderr[-2000:]
    if proc.returncode != 0:
        assert len(stderr_lines(proc.stderr)) == 1, proc.stderr


# ------------------------------------------------- (c) clear CLI errors


def test_enable_into_a_missing_site_packages(enabled, tmp_path):
    proc = run(
        enabled.python,
        ["-m", "epcache", "enable", "--site-packages", str(tmp_path / "nonexistent" / "dir")],
        env=cli_env(tmp_path / "cache"),
        check=False,
    )
    one_line_failure(proc)


def read_only_dir(path):
    path.mkdir()
    return path


def test_enable_into_a_read_only_site_packages(enabled, tmp_path):
    site = read_only_dir(tmp_path / "ro-site")
    os.chmod(site, 0o555)
    try:
        proc = run_restricted(
            [enabled.python, "-m", "epcache", "enable", "--site-packages", str(site)],
            cli_env(tmp_path / "cache"),
        )
    finally:
        os.chmod(site, 0o755)
    one_line_failure(proc)
    assert os.listdir(site) == []


def test_disable_in_a_read_only_site_packages(enabled, tmp_path):
    site = read_only_dir(tmp_path / "ro-site")
    pth = site / "epcache-startup.pth"
    pth.write_text("import sys\n")
    os.chmod(site, 0o555)
    try:
        proc = run_restricted(
            [enabled.python, "-m", "epcache", "disable", "--site-packages", str(site)],
            cli_env(tmp_path / "cache"),
        )
    finally:
        os.chmod(site, 0o755)
    one_line_failure(proc)
    assert pth.exists()


def run_into_closed_pipe(argv, env, cwd):
    """Runs ``argv`` with stdout a pipe whose reader is already closed:
    every write fails with EPIPE, deterministically."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            argv, stdout=write_end, stderr=subprocess.PIPE, env=env, text=True,
            timeout=HANG_GUARD, cwd=str(cwd),
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "command",
    [
        ["enable", "--site-packages", "{site}"],
        ["status"],
        ["status", "--json"],
        ["rebuild"],
        ["rebuild", "--json"],
    ],
    ids=lambda c: " ".join(c),
)
def test_python_m_epcache_into_a_closed_pipe(enabled, tmp_path, command):
    site = tmp_path / "site"
    site.mkdir()
    argv = [str(enabled.python), "-m", "epcache", *(a.format(site=site) for a in command)]
    proc = run_into_closed_pipe(argv, cli_env(tmp_path / "cache"), tmp_path)
    no_traceback(proc)
    assert len(stderr_lines(proc.stderr)) <= 1, proc.stderr
    if command[0] == "enable":
        assert (site / "epcache-startup.pth").exists()


@pytest.mark.parametrize("command", ["status", "rebuild"])
def test_python_m_epcache_json_into_head(enabled, tmp_path, command):
    """``... --json | head -1`` with more output than a pipe holds, so the
    writer is still writing when head exits."""
    paths = [str(tmp_path / f"missing-path-entry-{i:05d}") for i in range(2000)]
    script = '"$0" -m epcache "$@" | head -1'
    proc = subprocess.run(
        ["sh", "-c", script, str(enabled.python), command, "--json", *paths],
        env=cli_env(tmp_path / "cache"),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        cwd=str(tmp_path),
    )
    assert proc.stdout == "[\n"
    no_traceback(proc)
    assert len(stderr_lines(proc.stderr)) <= 1, proc.stderr


def test_rust_cli_bad_input(tmp_path):
    proc = subprocess.run(
        [rust_cli(), "prune", "--temp-age", "abc"],
        env=cli_env(tmp_path / "cache"),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert proc.returncode != 0
    no_traceback(proc)
    lines = stderr_lines(proc.stderr)
    assert len(lines) == 1 and "abc" in lines[0] and "--temp-age" in lines[0], proc.stderr


def test_rust_cli_into_a_closed_pipe(tmp_path):
    proc = run_into_closed_pipe(
        [rust_cli(), "status", "--json", str(tmp_path)], cli_env(tmp_path / "cache"), tmp_path
    )
    no_traceback(proc)
    assert len(stderr_lines(proc.stderr)) <= 1, proc.stderr
