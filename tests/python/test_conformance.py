"""Stock importlib.metadata and epcache agree on a real environment.

The interpreter running this suite has two site directories on sys.path:
its own (epcache, pip, setuptools, the importlib_metadata backport) and the
pinned test venv's (pytest and plugins, flake8 and plugins, sphinx, ...).
"""

import importlib.metadata as md
import sys

import pytest

import epcache
from conftest import STOCK, dist_key, ep_key, stock_entry_points_in_discovery_order

PYTHON_HAS_SELECTABLE_GROUPS = hasattr(md, "SelectableGroups")


def stock_groups():
    return sorted({ep.group for ep in stock_entry_points_in_discovery_order()})


def test_the_environment_is_big_enough(test_site):
    dists = list(STOCK["distributions"]())
    assert len(dists) >= 40
    names = {d.metadata["Name"].lower() for d in dists}
    for needed in ("pytest", "pytest-xdist", "flake8", "flake8-bugbear", "sphinx"):
        assert needed in names
    assert test_site in sys.path


def test_distributions_agree_in_order():
    stock = [dist_key(d) for d in STOCK["distributions"]()]
    ours = [dist_key(d) for d in epcache.distributions()]
    assert ours == stock


def test_distributions_are_importlib_distributions():
    for dist in epcache.distributions():
        assert isinstance(dist, md.Distribution)
        assert isinstance(dist, md.PathDistribution)
        assert isinstance(dist, epcache.Distribution)


def test_all_entry_points_agree_in_discovery_order():
    stock = [ep_key(ep) for ep in stock_entry_points_in_discovery_order()]
    eps = epcache.entry_points()
    assert type(eps) is md.EntryPoints
    assert [ep_key(ep) for ep in eps] == stock
    assert len(stock) > 100


@pytest.mark.skipif(not PYTHON_HAS_SELECTABLE_GROUPS, reason="Python >= 3.12")
def test_all_entry_points_agree_with_selectable_groups():
    stock = STOCK["entry_points"]()
    ours = epcache.entry_points()
    by_group = sorted(ours, key=lambda ep: ep.group)
    assert [ep_key(ep) for ep in by_group] == [ep_key(ep) for ep in stock._all]


def test_every_group_agrees_in_order():
    groups = stock_groups()
    assert {"pytest11", "console_scripts", "flake8.extension", "flake8.report"} <= set(groups)
    for group in groups:
        stock = STOCK["entry_points"](group=group)
        ours = epcache.entry_points(group=group)
        assert type(ours) is type(stock)
        assert [ep_key(ep) for ep in ours] == [ep_key(ep) for ep in stock], group


def test_entry_point_objects_are_real():
    for ep in epcache.entry_points(group="pytest11"):
        assert type(ep) is md.EntryPoint
        assert ep.dist is not None
        assert ep.dist.name == ep.dist.metadata["Name"]
        with pytest.raises(AttributeError):
            ep.name = "x"
    black = epcache.entry_points(group="console_scripts", name="blackd")
    (blackd,) = black
    assert blackd.extras == ["d"]
    assert blackd.module == "blackd" and blackd.attr == "patched_main"
    assert callable(epcache.entry_points(group="console_scripts")["pytest"].load())


def test_select_semantics():
    eps = epcache.entry_points()
    stock = stock_entry_points_in_discovery_order()
    assert eps.names == {ep.name for ep in stock}
    assert eps.groups == {ep.group for ep in stock}
    assert [ep_key(e) for e in eps.select(group="pytest11")] == [
        ep_key(e) for e in STOCK["entry_points"](group="pytest11")
    ]
    for params in (
        {"name": "pytest"},
        {"group": "console_scripts", "name": "flake8"},
        {"module": "xdist.plugin"},
        {"group": "pytest11", "attr": None},
        {"group": "no-such-group"},
        {"value": "pytest:console_main"},
        {"group": None},
        {"name": None, "group": "pytest11"},
    ):
        stock_sel = STOCK["entry_points"](**params)
        ours = epcache.entry_points(**params)
        assert sorted(map(ep_key, ours)) == sorted(map(ep_key, stock_sel)), params


def test_version_of_every_name_agrees():
    names = {d.metadata["Name"] for d in STOCK["distributions"]()}
    spellings = set()
    for name in names:
        spellings |= {name, name.upper(), name.replace("-", "_"), name.replace("_", "-"), name.replace("-", ".")}
    assert len(names) >= 40
    for name in sorted(spellings):
        try:
            expected = STOCK["version"](name)
        except md.PackageNotFoundError:
            with pytest.raises(md.PackageNotFoundError):
                epcache.version(name)
            continue
        assert epcache.version(name) == expected, name
        ours = epcache.distribution(name)
        stock = STOCK["distribution"](name)
        assert dist_key(ours) == dist_key(stock), name


def test_missing_names():
    for name in ("no-such-dist-xyz", "pytest-", " pytest"):
        with pytest.raises(md.PackageNotFoundError) as info:
            epcache.version(name)
        assert info.value.name == name
        with pytest.raises(md.PackageNotFoundError):
            epcache.distribution(name)
    with pytest.raises(ValueError):
        epcache.distribution("")


def test_lazy_metadata_reads_from_disk():
    for name in ("pytest", "flake8", "Sphinx", "pip"):
        ours, stock = epcache.distribution(name), STOCK["distribution"](name)
        assert ours.metadata.items() == stock.metadata.items()
        assert ours.files == stock.files
        assert ours.requires == stock.requires
        assert ours.read_text("WHEEL") == stock.read_text("WHEEL")
        assert ours.read_text("no-such-file") is None
        assert ours.locate_file("x") == stock.locate_file("x")
        assert [ep_key(e) for e in ours.entry_points] == [ep_key(e) for e in stock.entry_points]
        assert ours.diagnostics == []


def test_packages_distributions_after_install():
    stock = md.packages_distributions()
    epcache.install()
    assert md.packages_distributions() == stock


def test_installed_functions_agree():
    stock_all = STOCK["entry_points"]()
    stock_groups_ = {g: [ep_key(e) for e in STOCK["entry_points"](group=g)] for g in stock_groups()}
    stock_dists = [dist_key(d) for d in STOCK["distributions"]()]
    names = sorted({d.metadata["Name"] for d in STOCK["distributions"]()})
    stock_versions = {n: STOCK["version"](n) for n in names}

    assert not epcache.installed()
    epcache.install()
    assert epcache.installed()
    assert md.entry_points is not STOCK["entry_points"]
    before = epcache.stats()

    all_ = md.entry_points()
    assert type(all_) is type(stock_all)
    if PYTHON_HAS_SELECTABLE_GROUPS:
        assert list(dict.keys(all_)) == list(dict.keys(stock_all))
        for group in dict.keys(stock_all):
            assert [ep_key(e) for e in dict.__getitem__(all_, group)] == [
                ep_key(e) for e in dict.__getitem__(stock_all, group)
            ]
    else:
        assert [ep_key(e) for e in all_] == [ep_key(e) for e in stock_all]
    for group, expected in stock_groups_.items():
        assert [ep_key(e) for e in md.entry_points(group=group)] == expected
    assert [dist_key(d) for d in md.distributions()] == stock_dists
    for name in names:
        assert md.version(name) == stock_versions[name]
        assert md.distribution(name).name == md.metadata(name)["Name"]
    with pytest.raises(md.PackageNotFoundError):
        md.version("no-such-dist-xyz")

    after = epcache.stats()
    assert after["fallbacks"] == before["fallbacks"]
    assert after["answered"] > before["answered"] + len(names)
    assert after["errors"] == 0

    epcache.uninstall()
    assert not epcache.installed()
    assert md.entry_points is STOCK["entry_points"]
    assert md.version is STOCK["version"]


def test_entry_points_with_params_keep_the_stock_order_when_installed():
    epcache.install()
    for params in ({"name": "pytest"}, {"name": "flake8"}, {"value": "xdist.plugin"}, {"group": None}):
        assert [ep_key(e) for e in md.entry_points(**params)] == [
            ep_key(e) for e in STOCK["entry_points"](**params)
        ], params


def test_signatures_are_the_stock_ones():
    import inspect

    epcache.install()
    for name in ("entry_points", "distributions", "distribution", "version"):
        assert inspect.signature(getattr(md, name)) == inspect.signature(STOCK[name])
        assert getattr(md, name).__doc__ == STOCK[name].__doc__


def test_unsupported_arguments_fall_back():
    epcache.install()
    before = epcache.stats()["fallbacks"]
    ctx = md.DistributionFinder.Context(name="pytest")
    assert [d.name for d in md.distributions(context=ctx)] == [
        d.name for d in STOCK["distributions"](context=ctx)
    ]
    assert [d.name for d in md.distributions(name="pytest")] == ["pytest"]
    with pytest.raises(ValueError):
        md.distribution("")
    assert epcache.stats()["fallbacks"] == before + 3


def test_repeated_queries_reuse_the_snapshot():
    epcache.entry_points(group="pytest11")
    before = epcache.stats()
    for _ in range(20):
        eps = epcache.entry_points(group="pytest11")
    after = epcache.stats()
    assert after["snapshots"] == before["snapshots"] + 20
    assert after["memo_reuses"] == before["memo_reuses"] + 20
    assert after["consults"] == before["consults"]
    # The result is a new container each time, holding equal entry points.
    assert eps is not epcache.entry_points(group="pytest11")
    assert list(eps) == list(epcache.entry_points(group="pytest11"))


def test_the_cache_answers():
    epcache.rebuild()
    results = epcache.status()
    assert [r["path_entry"] for r in results] == sys.path
    for r in results:
        assert r["hit"] or r["verdict"] == "no-entry", r
    assert sum(r["distributions"] or 0 for r in results) >= 40


def test_only_the_groups_asked_for_become_objects():
    from epcache import _api

    _api._views.clear()
    eps = epcache.entry_points(group="pytest11")
    (view,) = _api._views.values()
    assert list(view._eps) == [("pytest11", None)]
    assert all(any(d is e.dist for e in eps) for d in view._dists.values())
    assert len(view._dists) == len({e.dist.name for e in eps}) < 20
    assert view._all is None
