"""epcache's lazy ``Distribution.metadata`` against stock's.

``metadata["Name"]`` and ``["Version"]`` (and ``get``, in any case) come
from the index; anything else makes the object read the file with the stock
code and become the stock object. These tests apply a battery of first uses
(each to a fresh object: every one must materialize by its own path) and of
whole-message comparisons to every distribution of the pinned venv, and of a
site of odd layouts, in the stdlib flavor here and in the importlib_metadata
backport's in a child interpreter (importing the backport disables the
stdlib's finder for the whole process).
"""

import collections.abc
import copy
import email.message
import importlib
import importlib.util
import json
import os
import pickle
import sys
import warnings

import pytest

import epcache
from conftest import STOCK, base_env, run

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------- battery


def _plain(value):
    """A value two results can be compared by."""
    if isinstance(value, email.message.Message):
        return ("message", type(value), value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _state(md):
    """An email message's instance state, comparable (defects by type)."""
    state = dict(vars(md))
    state["defects"] = [type(d) for d in state.get("defects", ())]
    return state


def _unpickled(md):
    clone = pickle.loads(pickle.dumps(md))
    return type(clone), clone.items()


def _mutated(md, *steps):
    for step in steps:
        step(md)
    return type(md), _state(md)


def _set(md, key, value):
    md[key] = value


def _del(md, key):
    del md[key]


# (label, first use, whether it may be answered from the index). Each
# runs on a fresh metadata object of each side.
FIRST_USES = [
    ("[Name]", lambda md: md["Name"], True),
    ("[name]", lambda md: md["name"], True),
    ("[NAME]", lambda md: md["NAME"], True),
    ("get(Name)", lambda md: md.get("Name"), True),
    ("get(nAmE, x)", lambda md: md.get("nAmE", "x"), True),
    ("[Version]", lambda md: md["Version"], True),
    ("[version]", lambda md: md["version"], True),
    ("get(VERSION)", lambda md: md.get("VERSION"), True),
    ("[Summary]", lambda md: md["Summary"], False),
    ("get(Summary)", lambda md: md.get("Summary"), False),
    ("[No-Such]", lambda md: md["No-Such-Header"], False),
    ("get(No-Such, 42)", lambda md: md.get("No-Such-Header", 42), False),
    ("[Metadata-Version]", lambda md: md["Metadata-Version"], False),
    ("[Description]", lambda md: md["Description"], False),
    ("get_all(Classifier)", lambda md: md.get_all("Classifier"), False),
    ("get_all(Name)", lambda md: md.get_all("Name"), False),
    ("get_all(Requires-Dist)", lambda md: md.get_all("requires-dist"), False),
    ("get_all(No-Such)", lambda md: md.get_all("No-Such-Header"), False),
    ("keys", lambda md: md.keys(), False),
    ("values", lambda md: md.values(), False),
    ("items", lambda md: md.items(), False),
    ("iter", lambda md: list(md), False),
    ("iter, first", lambda md: next(iter(md), None), False),
    ("len", lambda md: len(md), False),
    ("bool", lambda md: bool(md), False),
    ("in Name", lambda md: "Name" in md, False),
    ("in summary", lambda md: "summary" in md, False),
    ("in No-Such", lambda md: "No-Such-Header" in md, False),
    ("str", lambda md: str(md), False),
    ("as_string", lambda md: md.as_string(), False),
    ("as_bytes", lambda md: md.as_bytes(), False),
    ("json", lambda md: md.json, False),
    ("vars", _state, False),
    ("__dict__", lambda md: sorted(md.__dict__), False),
    ("__class__", lambda md: md.__class__, False),
    ("dir", lambda md: dir(md), False),
    ("defects", lambda md: [type(d) for d in md.defects], False),
    ("policy", lambda md: md.policy, False),
    ("_headers", lambda md: md._headers, False),
    ("get_payload", lambda md: md.get_payload(), False),
    ("is_multipart", lambda md: md.is_multipart(), False),
    ("get_content_type", lambda md: md.get_content_type(), False),
    ("get_params", lambda md: md.get_params(), False),
    ("get_charsets", lambda md: md.get_charsets(), False),
    ("get_unixfrom", lambda md: md.get_unixfrom(), False),
    ("preamble", lambda md: md.preamble, False),
    ("hasattr(no_such)", lambda md: hasattr(md, "no_such_attribute"), False),
    ("getattr(no_such)", lambda md: md.no_such_attribute, False),
    ("isinstance(Mapping)", lambda md: isinstance(md, collections.abc.Mapping), False),
    ("pickle", _unpickled, False),
    ("copy", lambda md: _plain(copy.copy(md)), False),
    ("deepcopy", lambda md: _plain(copy.deepcopy(md)), False),
    ("set item", lambda md: _mutated(md, lambda m: _set(m, "X-Added", "1")), False),
    ("del Name", lambda md: _mutated(md, lambda m: _del(m, "Name")), False),
    ("del Summary", lambda md: _mutated(md, lambda m: _del(m, "summary")), False),
    ("replace Name", lambda md: _mutated(md, lambda m: m.replace_header("Name", "x")), False),
    ("add_header", lambda md: _mutated(md, lambda m: m.add_header("X-A", "b", c="d")), False),
    ("set preamble", lambda md: _mutated(md, lambda m: setattr(m, "preamble", "p")), False),
    ("del epilogue", lambda md: _mutated(md, lambda m: delattr(m, "epilogue")), False),
    ("set_unixfrom", lambda md: _mutated(md, lambda m: m.set_unixfrom("From x")), False),
    ("set_payload", lambda md: _mutated(md, lambda m: m.set_payload("new body")), False),
    ("set_default_type", lambda md: _mutated(md, lambda m: m.set_default_type("text/html")), False),
    ("set __class__", lambda md: _mutated(md, lambda m: setattr(m, "__class__", email.message.Message)), False),
]


def outcome(op, md):
    """What an operation does: its value or exception, and its warnings
    (with where they point: the caller's line, in both cases)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("returned", _plain(op(md)))
        except Exception as exc:
            result = ("raised", type(exc), str(exc))
    return result + ([(w.category, str(w.message), w.filename, w.lineno) for w in caught],)


_raw_dict = email.message.Message.__dict__["__dict__"].__get__


def _is_lazy(md, message_class):
    return type(md) is not message_class and "_epcache_dist" in _raw_dict(md)


def compare(ours, stock, message_class):
    """Every mismatch between an epcache distribution and the stock one
    (an empty list when they agree), and whether ours was lazy."""
    where = f"{stock._path}"
    bad = []
    try:
        probe = ours.metadata
    except Exception:
        probe = None
    lazy = probe is not None and _is_lazy(probe, message_class)
    for label, op, fast in FIRST_USES:
        try:
            mine = ours.metadata
        except Exception as exc:
            mine_outcome = ("raised", type(exc), str(exc), [])
            mine = None
        else:
            mine_outcome = outcome(op, mine)
        try:
            theirs = stock.metadata
        except Exception as exc:
            theirs_outcome = ("raised", type(exc), str(exc), [])
        else:
            theirs_outcome = outcome(op, theirs)
        if mine_outcome != theirs_outcome:
            bad.append(f"{where}: {label}: {mine_outcome!r} != {theirs_outcome!r}")
        if mine is not None and lazy:
            answered_lazily = _is_lazy(mine, message_class)
            # A fast use stays lazy exactly when the index has the value.
            if not fast and answered_lazily:
                bad.append(f"{where}: {label}: did not materialize")
            if fast and answered_lazily != (mine_outcome[1] is not None and mine_outcome[0] == "returned"):
                bad.append(f"{where}: {label}: lazy={answered_lazily} answering {mine_outcome!r}")
    if lazy:
        # Before anything else: looks like the stock class, is one.
        if not isinstance(probe, message_class) or not isinstance(probe, email.message.Message):
            bad.append(f"{where}: not an instance of {message_class}")
        if repr(type(probe)) != repr(message_class) or type(probe).__name__ != message_class.__name__:
            bad.append(f"{where}: lazy type {type(probe)!r}")
    # Whole messages, key by key, on one materialized object per side.
    try:
        mine, theirs = ours.metadata, stock.metadata
    except Exception:
        return bad, lazy  # the first uses compared the errors
    mine_keys, their_keys = mine.keys(), theirs.keys()
    if type(mine) is not type(theirs) or mine_keys != their_keys:
        bad.append(f"{where}: {type(mine)} {mine_keys} != {type(theirs)} {their_keys}")
    for key in dict.fromkeys(theirs.keys()):
        for spelling in (key, key.lower(), key.upper()):
            for label, op in (
                ("[]", lambda md: md[spelling]),
                ("get_all", lambda md: md.get_all(spelling)),
                ("in", lambda md: spelling in md),
            ):
                if outcome(op, mine) != outcome(op, theirs):
                    bad.append(f"{where}: {label} {spelling!r}")
    if type(mine) is not message_class or type(theirs) is not message_class:
        bad.append(f"{where}: types {type(mine)} {type(theirs)} {message_class}")
    for label, get in (
        ("name", lambda d: d.name),
        ("version", lambda d: d.version),
        ("requires", lambda d: d.requires),
    ):
        if outcome(get, ours) != outcome(get, stock):
            bad.append(f"{where}: dist.{label}")
    return bad, lazy


def compare_all(module, paths=None):
    """Compares every distribution on ``paths`` (``sys.path``): epcache's
    against ``module``'s stock ones, in order."""
    message_class = importlib.import_module(module.__name__ + "._adapters").Message
    kwargs = {} if paths is None else {"path": paths}
    stock = list(module.distributions(**kwargs))
    ours = list(epcache.distributions(**kwargs))
    assert [str(d._path) for d in ours] == [str(d._path) for d in stock]
    assert all(type(d).__module__ == "epcache" for d in ours)
    assert all(isinstance(d, module.PathDistribution) for d in ours)
    bad = []
    lazy = 0
    for mine, theirs in zip(ours, stock):
        found, was_lazy = compare(mine, theirs, message_class)
        bad += found
        lazy += was_lazy
    return {"dists": len(stock), "lazy": lazy, "mismatches": bad}


def make_odd_site(root):
    """A path entry of distributions whose metadata the index cannot, or
    can only partly, answer from; returns the path and how many of them
    must be lazy (of the 10 distributions)."""
    site = os.path.join(root, "odd-site")
    layouts = {
        # Plain: lazy.
        "plain-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: plain\nVersion: 1.0\nSummary: s\n\nBody\n",
        # No Version header: lazy for Name; Version materializes.
        "noversion-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: noversion\n",
        # Only PKG-INFO in a dist-info: lazy.
        "pkginfo-1.0.dist-info/PKG-INFO": b"Metadata-Version: 1.0\nName: pkginfo\nVersion: 1.0\n",
        # An empty METADATA falls through to PKG-INFO: lazy.
        "emptymeta-1.0.dist-info/METADATA": b"",
        "emptymeta-1.0.dist-info/PKG-INFO": b"Name: emptymeta\nVersion: 2\n",
        # An egg-info file: lazy.
        "eggfile-1.0.egg-info": b"Metadata-Version: 1.0\nName: eggfile\nVersion: 1.0\n",
        # Repeated and odd-case headers, CRLF, a From line: lazy.
        "repeat-1.0.dist-info/METADATA": (
            b"From somebody\r\nname: repeat\r\nNAME: other\r\nVersion:   3.0 \r\nVersion: 4\r\n\r\nbody"
        ),
        # Multi-line Name and Version: not lazy (flavors redent differently).
        "folded-1.0.dist-info/METADATA": b"Name: folded\n  more\nVersion: 1\n\tmore\nSummary: x\n",
        # Invalid UTF-8 before Name: a diagnostic; stock raises.
        "badutf8-1.0.dist-info/METADATA": b"Summary: \xff\nName: badutf8\nVersion: 1\n",
        # No metadata at all: stock's empty message (or error); not lazy.
        "nometa-1.0.dist-info/RECORD": b"",
        # A Name with a form feed in it: not lazy.
        "formfeed-1.0.dist-info/METADATA": b"Name: form\x0cfeed\nVersion: 1\n",
    }
    for rel, data in layouts.items():
        path = os.path.join(site, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return site, 6


def main(argv):
    """The backport's run, in a child interpreter: prints JSON."""
    module = importlib.import_module(argv[0])
    epcache.rebuild()
    report = {"sys.path": compare_all(module)}
    if len(argv) > 1:
        report["odd"] = compare_all(module, [argv[1]])
    report["flavor"] = type(next(epcache.distributions())).__mro__[1].__module__
    print(json.dumps(report))


# ----------------------------------------------------------------- tests


def test_metadata_equals_stock_for_every_distribution():
    import importlib.metadata as md

    epcache.rebuild()
    report = compare_all(md)
    assert report["mismatches"] == []
    assert report["dists"] >= 40
    # Every distribution of the pinned venv is answered lazily.
    assert report["lazy"] == report["dists"]


def test_metadata_equals_stock_in_a_site_of_odd_layouts(tmp_path):
    import importlib.metadata as md

    site, lazy = make_odd_site(str(tmp_path))
    epcache.rebuild([site])
    report = compare_all(md, [site])
    assert report["mismatches"] == []
    assert report["dists"] == 10
    assert report["lazy"] == lazy


def test_metadata_equals_stock_with_the_backport(tmp_path):
    # Not imported here: the backport would take over this process.
    if importlib.util.find_spec("importlib_metadata") is None:
        pytest.skip("no importlib_metadata")
    site, lazy = make_odd_site(str(tmp_path))
    code = f"import sys; sys.path.insert(0, {HERE!r}); import test_lazy_metadata as t; t.main(sys.argv[1:])"
    proc = run(sys.executable, ["-c", code, "importlib_metadata", site], env=base_env(EPCACHE_STRICT="1"))
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["flavor"] == "importlib_metadata"
    assert report["sys.path"]["mismatches"] == []
    assert report["sys.path"]["dists"] >= 40
    assert report["sys.path"]["lazy"] == report["sys.path"]["dists"]
    assert report["odd"]["mismatches"] == []
    assert report["odd"]["dists"] == 10
    assert report["odd"]["lazy"] == lazy


@pytest.fixture
def no_reads(monkeypatch):
    """Makes every read of a distribution's files fail the test."""
    import importlib.metadata as md

    reads = []

    def read_text(self, filename):
        reads.append((str(self._path), filename))
        raise AssertionError(f"read {filename} of {self._path}")

    monkeypatch.setattr(md.PathDistribution, "read_text", read_text)
    return reads


def test_name_and_version_are_answered_without_reading(no_reads):
    import importlib.metadata as md

    for dist in epcache.distributions():
        for key in ("Name", "name", "NAME"):
            assert dist.metadata[key] == dist.name
            assert dist.metadata.get(key) == dist.name
        for key in ("Version", "version"):
            assert dist.metadata[key] == dist.version
            assert dist.metadata.get(key, None) == dist.version
        md_ = dist.metadata
        assert isinstance(md_, md._adapters.Message)
        assert type(md_) is not md._adapters.Message  # still lazy
    assert no_reads == []


def test_other_uses_read_the_file(no_reads):
    dist = epcache.distribution("pytest")
    with pytest.raises(AssertionError):
        dist.metadata["Summary"]
    assert no_reads == [(str(dist._path), "METADATA")]


def test_each_access_is_a_new_message():
    import importlib.metadata as md

    dist = epcache.distribution("pytest")
    first, second = dist.metadata, dist.metadata
    assert first is not second
    del first["Name"]
    assert first.get("Name") is None
    assert type(first) is md._adapters.Message
    assert second["Name"] == dist.name and type(second) is not md._adapters.Message


def test_the_pluggy_and_flake8_patterns_read_no_file(no_reads):
    import importlib.metadata as md

    def pluggy(distributions):
        # pluggy's load_setuptools_entrypoints and DistFacade.project_name.
        found = []
        for dist in list(distributions()):
            for ep in dist.entry_points:
                if ep.group == "pytest11":
                    found.append((dist.metadata["name"], dist.version, ep.name, ep.value))
        return found

    def flake8(distributions):
        # flake8's plugin finder.
        found = []
        for dist in distributions():
            eps = dist.entry_points
            if not any(ep.group in ("flake8.extension", "flake8.report") for ep in eps):
                continue
            meta = dist.metadata
            for ep in eps:
                if ep.group in ("flake8.extension", "flake8.report"):
                    found.append((meta["name"], meta["version"], ep.name, ep.value))
        return found

    epcache.install()
    plugins, extensions = pluggy(md.distributions), flake8(md.distributions)
    assert no_reads == []
    assert len(plugins) >= 5 and len(extensions) >= 5
    assert ("flake8", md.version("flake8")) in {(n, v) for n, v, _, _ in extensions}


def test_the_patterns_agree_with_stock():
    import importlib.metadata as md

    def pattern(distributions):
        found = []
        for dist in list(distributions()):
            for ep in dist.entry_points:
                if ep.group in ("pytest11", "flake8.extension"):
                    meta = dist.metadata
                    found.append((meta["Name"], meta["name"], meta["Version"], dist.version, ep.name))
        return found

    stock = pattern(STOCK["distributions"])
    epcache.install()
    before = epcache.stats()
    assert pattern(md.distributions) == stock
    after = epcache.stats()
    assert after["fallbacks"] == before["fallbacks"] and after["errors"] == before["errors"]


def test_an_in_place_edit_is_invisible_to_name_and_version(tmp_path):
    """The probe that Name and Version come from the index: METADATA is
    rewritten in place after the index was published, which leaves the
    path entry's key unchanged (the design's known blind spot, see
    docs/python.md), so the index still answers Name and Version while
    every other header comes from the new file."""
    import importlib.metadata as md

    site = tmp_path / "site"
    info = site / "probe_pkg-1.0.dist-info"
    info.mkdir(parents=True)
    metadata = info / "METADATA"
    metadata.write_text("Metadata-Version: 2.1\nName: probe-pkg\nVersion: 1.0\nSummary: old\n")
    (info / "entry_points.txt").write_text("[probe.group]\np = probe:main\n")
    epcache.rebuild([str(site)])
    assert epcache.status([str(site)])[0]["verdict"] == "hit"
    with open(metadata, "r+") as f:  # same inode, same directory entries
        f.write("Metadata-Version: 2.1\nName: Probe-Pkg-Edited\nVersion: 9.9\nSummary: new\n")
        f.truncate()
    assert epcache.status([str(site)])[0]["verdict"] == "hit"

    (dist,) = epcache.distributions(path=[str(site)])
    assert (dist.name, dist.version) == ("probe-pkg", "1.0")
    lazy = dist.metadata
    assert (lazy["Name"], lazy["version"], lazy.get("NAME")) == ("probe-pkg", "1.0", "probe-pkg")
    assert type(lazy) is not md._adapters.Message
    # Anything else reads the file as it is now, and the object becomes
    # the stock one, Name and Version included.
    assert lazy["Summary"] == "new"
    assert type(lazy) is md._adapters.Message
    assert (lazy["Name"], lazy["Version"]) == ("Probe-Pkg-Edited", "9.9")
    (stock,) = STOCK["distributions"](path=[str(site)])
    assert lazy.items() == stock.metadata.items()


def test_an_unreadable_file_raises_on_first_other_use(tmp_path):
    """METADATA made undecodable in place after indexing: Name and
    Version still answer; the first other use raises what stock
    ``dist.metadata`` raises."""
    site = tmp_path / "site"
    info = site / "spoilt-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_bytes(b"Name: spoilt\nVersion: 1.0\n")
    epcache.rebuild([str(site)])
    with open(info / "METADATA", "r+b") as f:
        f.write(b"Name: spoilt\nVersion: 1.0\nSummary: \xff\n")
    (dist,) = epcache.distributions(path=[str(site)])
    (stock,) = STOCK["distributions"](path=[str(site)])
    lazy = dist.metadata
    assert (lazy["Name"], lazy["Version"]) == ("spoilt", "1.0")
    with pytest.raises(UnicodeDecodeError) as ours:
        lazy.keys()
    with pytest.raises(UnicodeDecodeError) as theirs:
        stock.metadata
    assert str(ours.value) == str(theirs.value)
    # Still lazy, and still failing the same way.
    assert lazy["name"] == "spoilt"
    with pytest.raises(UnicodeDecodeError):
        len(lazy)


if __name__ == "__main__":
    main(sys.argv[1:])
