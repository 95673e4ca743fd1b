"""sys.path as it is at each call: added and removed entries, new
distributions, zip files, eggs, duplicates, the current directory."""

import importlib
import importlib.metadata as md
import os
import pathlib
import sys
import time
import zipfile

import pytest

import epcache
from conftest import STOCK, dist_key, ep_key, stock_entry_points_in_discovery_order


def write_dist(root, name, version="1.0", eps="", dirname=None, kind="dist-info"):
    d = root / (dirname or f"{name.replace('-', '_')}-{version}.{kind}")
    d.mkdir(parents=True)
    meta = "METADATA" if kind == "dist-info" else "PKG-INFO"
    (d / meta).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody\n")
    if eps:
        (d / "entry_points.txt").write_text(eps)
    (d / "RECORD").write_text(f"{name}.py,,\n")
    return d


@pytest.fixture
def on_path():
    """Puts directories on sys.path for one test."""
    added = []

    def add(path, index=0):
        path = str(path)
        sys.path.insert(index, path)
        added.append(path)
        importlib.invalidate_caches()
        return path

    yield add
    for path in added:
        while path in sys.path:
            sys.path.remove(path)
    importlib.invalidate_caches()


def agree(group="epcache.test"):
    assert [ep_key(e) for e in epcache.entry_points(group=group)] == [
        ep_key(e) for e in STOCK["entry_points"](group=group)
    ]
    assert [ep_key(e) for e in epcache.entry_points()] == [
        ep_key(e) for e in stock_entry_points_in_discovery_order()
    ]
    assert [dist_key(d) for d in epcache.distributions()] == [dist_key(d) for d in STOCK["distributions"]()]


def test_entries_added_and_removed_after_start(tmp_path, on_path):
    write_dist(tmp_path / "a", "alpha", eps="[epcache.test]\na = alpha:main\n")
    assert not list(epcache.entry_points(group="epcache.test"))
    path = on_path(tmp_path / "a")
    (ep,) = epcache.entry_points(group="epcache.test")
    assert ep.dist.name == "alpha" and epcache.version("alpha") == "1.0"
    agree()
    sys.path.remove(path)
    assert not list(epcache.entry_points(group="epcache.test"))
    with pytest.raises(md.PackageNotFoundError):
        epcache.version("alpha")


def test_a_new_distribution_is_seen_at_the_next_call(tmp_path, on_path):
    site = tmp_path / "site"
    write_dist(site, "alpha", eps="[epcache.test]\na = alpha:main\n")
    on_path(site)
    assert [e.name for e in epcache.entry_points(group="epcache.test")] == ["a"]
    time.sleep(0.01)
    write_dist(site, "beta", eps="[epcache.test]\nb = beta:main\n")
    importlib.invalidate_caches()
    assert sorted(e.name for e in epcache.entry_points(group="epcache.test")) == ["a", "b"]
    assert epcache.version("beta") == "1.0"
    agree()


def test_first_path_entry_wins(tmp_path, on_path):
    write_dist(tmp_path / "one", "dup", "1.0", eps="[epcache.test]\nx = one:x\n")
    write_dist(tmp_path / "two", "dup", "2.0", eps="[epcache.test]\nx = two:x\ny = two:y\n")
    on_path(tmp_path / "two")
    on_path(tmp_path / "one")
    assert epcache.version("dup") == "1.0"
    assert [e.value for e in epcache.entry_points(group="epcache.test")] == ["one:x"]
    assert [d.version for d in epcache.distributions() if d.name == "dup"] == ["1.0", "2.0"]
    agree()


def test_a_path_entry_twice(tmp_path, on_path):
    write_dist(tmp_path / "one", "twice", eps="[epcache.test]\nx = one:x\n")
    on_path(tmp_path / "one")
    on_path(tmp_path / "one", index=len(sys.path))
    assert len([d for d in epcache.distributions() if d.name == "twice"]) == 2
    agree()


def test_zip_path_entry(tmp_path, on_path):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped-2.0.dist-info/METADATA", "Name: zipped\nVersion: 2.0\n\n")
        z.writestr("zipped-2.0.dist-info/entry_points.txt", "[epcache.test]\nz = zipped:main\n")
        z.writestr("zipped.py", "main = 1\n")
    on_path(archive)
    (ep,) = epcache.entry_points(group="epcache.test")
    assert ep.dist.version == "2.0"
    dist = epcache.distribution("zipped")
    assert isinstance(dist._path, zipfile.Path)
    assert dist.metadata["Name"] == "zipped"
    assert dist.read_text("entry_points.txt").startswith("[epcache.test]")
    assert ep.load() == 1
    agree()


def test_egg_and_egg_info(tmp_path, on_path):
    egg = tmp_path / "Eggy-1.5-py3.11.egg"
    info = egg / "EGG-INFO"
    info.mkdir(parents=True)
    (info / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: Eggy\nVersion: 1.5\n\n")
    (info / "entry_points.txt").write_text("[epcache.test]\negg = eggy:main\n")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "old_style-0.1.egg-info").write_text("Metadata-Version: 1.0\nName: old-style\nVersion: 0.1\n")
    write_dist(legacy, "devel", "3.0", kind="egg-info", eps="[epcache.test]\ndev = devel:main\n")
    on_path(egg)
    on_path(legacy)
    assert epcache.version("Eggy") == STOCK["version"]("Eggy") == "1.5"
    assert epcache.version("old-style") == STOCK["version"]("old-style") == "0.1"
    assert epcache.version("devel") == "3.0"
    agree()


def test_current_directory(tmp_path, on_path, monkeypatch):
    write_dist(tmp_path / "here", "herein", eps="[epcache.test]\nh = herein:main\n")
    write_dist(tmp_path / "there", "thereof", eps="[epcache.test]\nt = thereof:main\n")
    on_path("")
    monkeypatch.chdir(tmp_path / "here")
    assert [e.dist.name for e in epcache.entry_points(group="epcache.test")] == ["herein"]
    assert str(epcache.distribution("herein")._path) == "herein-1.0.dist-info"
    agree()
    monkeypatch.chdir(tmp_path / "there")
    assert [e.dist.name for e in epcache.entry_points(group="epcache.test")] == ["thereof"]
    agree()


def test_directory_name_decides_deduplication(tmp_path, on_path):
    # Both directories say Name: same, but the directory names differ: stock
    # keeps both for entry_points(); so does epcache.
    write_dist(tmp_path / "s", "same", dirname="first-1.0.dist-info", eps="[epcache.test]\na = first:a\n")
    write_dist(tmp_path / "s2", "same", dirname="second-1.0.dist-info", eps="[epcache.test]\nb = second:b\n")
    on_path(tmp_path / "s")
    on_path(tmp_path / "s2")
    assert len(epcache.entry_points(group="epcache.test")) == 2
    agree()


def test_explicit_path_argument(tmp_path):
    write_dist(tmp_path / "p", "pathonly", eps="[epcache.test]\np = pathonly:main\n")
    path = [str(tmp_path / "p")]
    assert [d.name for d in epcache.distributions(path=path)] == ["pathonly"]
    assert [d.name for d in epcache.distributions(path=path)] == [
        d.name for d in STOCK["distributions"](path=path)
    ]
    epcache.install()
    assert [dist_key(d) for d in md.distributions(path=path)] == [
        dist_key(d) for d in STOCK["distributions"](path=path)
    ]


def _same_outcome(ours, stock):
    try:
        expected = stock()
    except Exception as exc:  # stock itself may fail on such entries
        with pytest.raises(type(exc)) as info:
            ours()
        assert str(info.value) == str(exc)
    else:
        assert ours() == expected


@pytest.mark.parametrize("entry", [b"bytes", "pathlib"])
def test_non_str_entries_are_a_fallback_not_an_error(tmp_path, on_path, entry):
    """Documented: stock answers when a sys.path entry is not a str. That is
    a fallback, never an error: EPCACHE_STRICT (set for this suite) must not
    raise, and stats() must not count it among the errors."""
    write_dist(tmp_path / "b", "bytesy", eps="[epcache.test]\nb = bytesy:main\n")
    epcache.install()
    directory = str(tmp_path / "b")
    sys.path.append(directory.encode() if entry == b"bytes" else pathlib.Path(directory))
    try:
        before = epcache.stats()
        _same_outcome(
            lambda: list(md.entry_points(group="epcache.test")),
            lambda: list(STOCK["entry_points"](group="epcache.test")),
        )
        _same_outcome(lambda: md.version("bytesy"), lambda: STOCK["version"]("bytesy"))
        _same_outcome(
            lambda: [d._path for d in md.distributions()],
            lambda: [d._path for d in STOCK["distributions"]()],
        )
        after = epcache.stats()
        # (stock entry_points() calls the patched distributions(): nested
        # fallbacks count too)
        assert after["fallbacks"] >= before["fallbacks"] + 3
        assert after["errors"] == before["errors"], after["last_error"]
    finally:
        sys.path.pop()


def test_other_distribution_finders_fall_back(tmp_path):
    class Finder:
        @staticmethod
        def find_spec(*args):
            return None

        @staticmethod
        def find_distributions(context=None):
            return iter([md.PathDistribution(tmp_path / "virtual-1.0.dist-info")])

    write_dist(tmp_path, "virtual", eps="[epcache.test]\nv = virtual:main\n")
    epcache.install()
    sys.meta_path.append(Finder)
    try:
        before = epcache.stats()["fallbacks"]
        assert [e.name for e in md.entry_points(group="epcache.test")] == ["v"]
        assert md.version("virtual") == "1.0"
        # (the stock functions call the patched ones: nested fallbacks count)
        assert epcache.stats()["fallbacks"] >= before + 2
    finally:
        sys.meta_path.remove(Finder)


def test_diagnostics_for_a_bad_line(tmp_path, on_path):
    # importlib raises for the whole environment; epcache drops the line.
    write_dist(tmp_path / "bad", "badline", eps="[epcache.test]\nno equals sign\ngood = badline:main\n")
    on_path(tmp_path / "bad")
    with pytest.raises(Exception):
        list(STOCK["entry_points"](group="epcache.test"))
    assert [e.name for e in epcache.entry_points(group="epcache.test")] == ["good"]
    (diag,) = epcache.distribution("badline").diagnostics
    assert "=" in diag


def test_in_place_edit_of_entry_points_txt_is_not_seen(tmp_path, on_path):
    """A documented divergence: the cache is keyed by the directory, so an
    edit inside a *.dist-info is seen only after a rebuild."""
    d = write_dist(tmp_path / "e", "edited", eps="[epcache.test]\nold = edited:old\n")
    on_path(tmp_path / "e")
    assert [e.name for e in epcache.entry_points(group="epcache.test")] == ["old"]
    time.sleep(0.01)
    (d / "entry_points.txt").write_text("[epcache.test]\nnew = edited:new\n")
    epcache.rebuild([str(tmp_path / "e")])
    assert [e.name for e in epcache.entry_points(group="epcache.test")] == ["new"]
    agree()


def test_rebuild_rows_use_the_names_of_status(tmp_path):
    """epcache.rebuild() and epcache.status() name the same things alike."""
    write_dist(tmp_path / "r", "rebuilt")
    entry = str(tmp_path / "r")
    (row,) = epcache.rebuild([entry])
    assert set(row) == {"path_entry", "verdict", "publish", "text", "distributions"}, row
    assert row["verdict"] == "skipped" and row["publish"] == "published", row
    (status,) = epcache.status([entry])
    assert status["verdict"] == "hit", status
    assert row["path_entry"] == status["path_entry"] == entry
    assert row["distributions"] == status["distributions"] == 1


def test_cache_dir_is_the_scratch_one():
    from epcache import _epcache

    assert _epcache.cache_dir() == os.environ["EPCACHE_DIR"]
    assert _epcache.settle_secs() == 0
