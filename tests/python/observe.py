"""Everything a program can observe of importlib.metadata, as JSON lines.

Run by tests/python/test_versions.py in each interpreter of the matrix::

    python observe.py --module std|backport --mode stock|enabled [--backport-dir DIR]
                      [--entry PATH_ENTRY ...]

The given path entries are put, in order, at the front of ``sys.path`` (the
interpreter's own entries stay behind them, so the stdlib, the venv's
site-packages and everything imported lazily keep working). ``--mode
enabled`` imports epcache and calls ``epcache.install()`` first; ``stock``
never imports epcache. The module observed is the stdlib's
``importlib.metadata`` or the ``importlib_metadata`` backport (imported from
``--backport-dir`` when given); ``--import-backport`` observes the stdlib's
functions after the backport was imported, which replaces the stdlib's
distribution finder with its own.

Prints one JSON object: ``observations``, a list of ``[label, value]`` in a
fixed order (``value`` is what the call returned, rendered to plain data, or
``["raise", type name, message]``), and ``stats`` (``epcache.stats()``, or
``null`` when stock). Stdlib only, Python 3.9+.
"""

import argparse
import json
import os
import sys
import warnings


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--module", choices=("std", "backport"), required=True)
    p.add_argument("--mode", choices=("stock", "enabled"), required=True)
    p.add_argument("--backport-dir")
    p.add_argument(
        "--import-backport",
        action="store_true",
        help="with --module std: import the backport first (it then takes over stock discovery)",
    )
    p.add_argument("--entry", action="append", default=[])
    return p.parse_args()


ARGS = parse_args()
if ARGS.backport_dir:
    sys.path.insert(0, ARGS.backport_dir)
if ARGS.mode == "enabled":
    import epcache

    epcache.install()
if ARGS.module == "std":
    if ARGS.import_backport:
        import importlib_metadata  # noqa: F401
    import importlib.metadata as md
else:
    import importlib_metadata as md
sys.path[:0] = ARGS.entry

# Python 3.12+ warns on a missing metadata key; the warning is part of what
# is observed (as an exception), not noise on stderr.
warnings.simplefilter("error", DeprecationWarning)

OUT = []


def type_name(obj):
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def path_type(path):
    """The path's type, as a program sees it; epcache's distributions are a
    PathDistribution subclass by design, so only the path types count."""
    return type_name(path)


def render(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [render(v) for v in value]
    if isinstance(value, dict):
        return {str(k): render(v) for k, v in value.items()}
    return [type_name(value), str(value)]


def observe(label, func):
    try:
        value = func()
    except Exception as exc:  # the exception is the observation
        value = ["raise", type(exc).__name__, str(exc)]
    else:
        value = render(value)
    OUT.append([label, value])
    return value


def dist_facts(dist):
    """What identifies a distribution object, each read guarded."""
    facts = {}
    for attr in ("name", "version", "_normalized_name"):
        try:
            facts[attr] = getattr(dist, attr)
        except Exception as exc:
            facts[attr] = ["raise", type(exc).__name__, str(exc)]
    path = dist._path
    facts["_path"] = [path_type(path), str(path)]
    facts["is_path_distribution"] = isinstance(dist, md.PathDistribution)
    return facts


def ep_facts(ep):
    dist = getattr(ep, "dist", None)
    return [ep.name, ep.value, ep.group, None if dist is None else dist_facts(dist)]


def eps_facts(eps):
    return [ep_facts(ep) for ep in eps]


def entry_points_result(result):
    """A result of entry_points(): its type and contents (a SelectableGroups
    is a dict of group -> EntryPoints)."""
    if isinstance(result, dict):
        return [type_name(result), {g: eps_facts(dict.__getitem__(result, g)) for g in dict.keys(result)}]
    return [type_name(result), eps_facts(result)]


def metadata_facts(md_obj):
    if md_obj is None:
        return None
    facts = {
        "type": type_name(md_obj),
        "len": len(md_obj),
        "keys": list(md_obj.keys()),
        "items": [list(item) for item in md_obj.items()],
        "get_all_classifier": md_obj.get_all("Classifier"),
        "str": str(md_obj),
    }
    for key in ("Name", "name", "Version", "VERSION", "Summary", "No-Such-Header"):
        try:
            facts[f"[{key}]"] = md_obj[key]
        except Exception as exc:
            facts[f"[{key}]"] = ["raise", type(exc).__name__, str(exc)]
    if hasattr(md_obj, "json"):
        facts["json"] = md_obj.json
    return facts


def files_facts(files):
    if files is None:
        return None
    return [[str(f), f.hash and f.hash.value, f.size] for f in files]


def dist_observations(prefix, dist):
    observe(f"{prefix}.facts", lambda: dist_facts(dist))
    observe(f"{prefix}.locate_file('')", lambda: [path_type(dist.locate_file("")), str(dist.locate_file(""))])
    observe(f"{prefix}.locate_file('x/y.py')", lambda: str(dist.locate_file("x/y.py")))
    observe(f"{prefix}.entry_points", lambda: entry_points_result(dist.entry_points))
    observe(f"{prefix}.requires", lambda: dist.requires)
    observe(f"{prefix}.files", lambda: files_facts(dist.files))
    observe(f"{prefix}.metadata", lambda: metadata_facts(dist.metadata))
    observe(f"{prefix}.read_text('WHEEL')", lambda: dist.read_text("WHEEL"))
    observe(f"{prefix}.read_text('top_level.txt')", lambda: dist.read_text("top_level.txt"))


def spellings(name, full):
    """Ways to write a name. Stock pays a whole discovery for each, so
    the eleven are kept for names of the shadowing entries (all but the
    last --entry) and three are enough for the rest."""
    if not full:
        return list(dict.fromkeys([name, name.upper(), name.replace("-", "_")]))
    out = [name, name.upper(), name.lower(), name.replace("-", "_"), name.replace("_", "-")]
    out += [name.replace("-", "."), name.replace("_", "."), name.title(), f" {name}", f"{name}-", name + "x"]
    return list(dict.fromkeys(out))


def main():
    dists = observe("distributions()", lambda: [dist_facts(d) for d in md.distributions()])
    for number, dist in enumerate(md.distributions()):
        dist_observations(f"distributions()[{number}]", dist)
    for entry in ARGS.entry:
        observe(f"distributions(path=[{entry!r}])", lambda e=entry: [dist_facts(d) for d in md.distributions(path=[e])])

    observe("entry_points()", lambda: entry_points_result(md.entry_points()))
    groups = set()
    names = set()
    for ep in md.distributions():
        try:
            for e in ep.entry_points:
                groups.add(e.group)
                names.add(e.name)
        except Exception:
            pass
    for group in sorted(groups) + ["no-such-group"]:
        observe(f"entry_points(group={group!r})", lambda g=group: entry_points_result(md.entry_points(group=g)))
    for name in sorted(names)[:40]:
        observe(f"entry_points(name={name!r})", lambda n=name: entry_points_result(md.entry_points(name=n)))
    for group in sorted(groups)[:10]:
        for name in sorted(names)[:10]:
            observe(
                f"entry_points(group={group!r}, name={name!r})",
                lambda g=group, n=name: entry_points_result(md.entry_points(group=g, name=n)),
            )
    if hasattr(md, "EntryPoints"):
        observe("entry_points().select(group=...)", lambda: [
            [g, eps_facts(md.entry_points().select(group=g))] for g in sorted(groups)
        ] if not isinstance(md.entry_points(), dict) else "SelectableGroups")

    candidates = {}
    shadowing = tuple(os.path.abspath(e) for e in ARGS.entry[:-1])
    if isinstance(dists, list):
        for facts in dists:
            path = facts["_path"][1]
            full = os.path.abspath(os.path.dirname(path)) in shadowing
            stem = os.path.basename(path).split(".")[0].split("-")[0]
            for name in (facts.get("name"), stem):
                if isinstance(name, str) and name:
                    candidates[name] = candidates.get(name, False) or full
    for name in sorted(candidates):
        for spelling in spellings(name, candidates[name]):
            observe(f"version({spelling!r})", lambda s=spelling: md.version(s))
            dist = observe(f"distribution({spelling!r})", lambda s=spelling: dist_facts(md.distribution(s)))
            if spelling != name:
                continue
            if isinstance(dist, dict):
                dist_observations(f"distribution({spelling!r})", md.distribution(spelling))
            observe(f"metadata({spelling!r})", lambda s=spelling: metadata_facts(md.metadata(s)))
            observe(f"requires({spelling!r})", lambda s=spelling: md.requires(s))
            observe(f"files({spelling!r})", lambda s=spelling: files_facts(md.files(s)))
    for bad in ("", None, 3, b"flake8"):
        observe(f"distribution({bad!r})", lambda b=bad: dist_facts(md.distribution(b)))
        observe(f"version({bad!r})", lambda b=bad: md.version(b))
    if hasattr(md, "packages_distributions"):
        observe("packages_distributions()", lambda: dict(sorted(md.packages_distributions().items())))

    stats = None
    if ARGS.mode == "enabled":
        import epcache

        stats = epcache.stats()
    record = {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "module_version": (
            ("stdlib, with " if ARGS.module == "std" else "") + os.path.basename(ARGS.backport_dir)
            if ARGS.backport_dir
            else "stdlib"
        ),
        "patched": hasattr(md.entry_points, "__epcache_stock__"),
        "observations": OUT,
        "stats": stats,
    }
    json.dump(record, sys.stdout)


main()
