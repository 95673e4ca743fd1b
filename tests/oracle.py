#!/usr/bin/env python3
"""Conformance oracle: what the stock ``importlib.metadata`` sees on given path entries.

Usage::

    python3 tests/oracle.py [--names N1,N2,...] PATH_ENTRY...

Everything the oracle needs is imported (and exercised once on a throwaway
directory, so that lazy imports inside the stdlib are done) *before*
``sys.path[:]`` is replaced by exactly the given path entries. Meta path
finders other than the stock ``PathFinder`` that can find distributions
(e.g. editable-install finders loaded from a ``.pth``) are removed, so the
stock functions see exactly those entries and nothing else.

Prints ONE JSON object on stdout (ASCII only; lone surrogates are escaped)::

    {
      "python": "3.11.7",
      "distributions": [            # importlib.metadata.distributions(), in its order
        {"path": str(dist._path) or null,
         "name": str or null, "version": str or null,
         "entry_points": [[group, name, value], ...] or null,
         "error": null or "ExcType: message"},   # first failure among the fields
        ...
      ],
      "entry_points": [[group, name, value, dist_name], ...] or null,
                                    # discovery order over _unique(distributions())
      "entry_points_error": null or "ExcType: message",
      "groups": {group: [[name, value, dist_name], ...]},
                                    # entry_points(group=g) for each group seen, first-seen order
      "versions": {name: version or null},        # only for --names; null on PackageNotFoundError
      "version_errors": {name: "ExcType: message"}  # --names whose version() raised anything else
    }

Stdlib only; works on Python 3.9+. On 3.9 (no ``_unique``, no
``entry_points(group=)``, no ``EntryPoint.dist``) the equivalents are emulated:
see the comments below.
"""

import argparse
# email.* is imported lazily by importlib.metadata; load it before sys.path changes.
import email  # noqa: F401
import email.feedparser  # noqa: F401
import email.message  # noqa: F401
import email.parser  # noqa: F401
import email.policy  # noqa: F401
import importlib
import importlib.machinery
import importlib.metadata
import json
import os
import platform
import re
import shutil
import sys
import tempfile

md = importlib.metadata

try:  # 3.10+
    from importlib.metadata import _unique as _stock_unique
except ImportError:  # pragma: no cover - Python 3.9
    _stock_unique = None


def _err(exc):
    return "%s: %s" % (type(exc).__name__, exc)


def _normalize(name):
    # importlib.metadata.Prepared.normalize (PEP 503, with '_' as separator).
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _normalized_name(dist):
    """``dist._normalized_name``, emulated where the stdlib lacks it (3.9)."""
    try:
        return dist._normalized_name
    except AttributeError:
        pass
    path = getattr(dist, "_path", None)
    if path is not None:
        stem = os.path.basename(str(path))
        filename, ext = os.path.splitext(stem)
        if ext in (".dist-info", ".egg-info"):
            name = filename.partition("-")[0]
            if name:
                return _normalize(name)
    return _normalize(_dist_name(dist))


def _dist_name(dist):
    try:
        return dist.name  # 3.10+
    except AttributeError:
        return dist.metadata["Name"]


def _unique(dists):
    if _stock_unique is not None:
        return _stock_unique(dists)
    seen = set()  # unique_everseen on _normalized_name, as in 3.10+
    out = []
    for d in dists:
        key = _normalized_name(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _ep_dist_name(ep, fallback=None):
    """``ep.dist.name``; null if the name cannot be read; ``fallback`` on 3.9."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return fallback
    try:
        return _dist_name(dist)
    except Exception:
        return None


def _select_group(group):
    """The stock ``entry_points(group=group)``."""
    try:
        return list(md.entry_points(group=group))
    except TypeError:
        # Python 3.9: entry_points() takes no arguments and returns
        # {group: tuple}, without de-duplication and without ep.dist.
        return list(md.entry_points().get(group, ()))


def run(names):
    out = {
        "python": platform.python_version(),
        "distributions": [],
        "entry_points": None,
        "entry_points_error": None,
        "groups": {},
        "versions": {},
        "version_errors": {},
    }

    for dist in md.distributions():
        path = getattr(dist, "_path", None)
        rec = {
            "path": None if path is None else str(path),
            "name": None,
            "version": None,
            "entry_points": None,
            "error": None,
        }
        try:
            rec["name"] = _dist_name(dist)
        except Exception as exc:
            rec["error"] = rec["error"] or _err(exc)
        try:
            rec["version"] = dist.version
        except Exception as exc:
            rec["error"] = rec["error"] or _err(exc)
        try:
            rec["entry_points"] = [[ep.group, ep.name, ep.value] for ep in dist.entry_points]
        except Exception as exc:
            rec["error"] = rec["error"] or _err(exc)
        out["distributions"].append(rec)

    group_order = []
    seen_groups = set()
    try:
        eps = []
        for dist in _unique(md.distributions()):
            dist_eps = list(dist.entry_points)
            fallback = None
            if dist_eps and getattr(dist_eps[0], "dist", None) is None:
                try:  # 3.9: no ep.dist
                    fallback = _dist_name(dist)
                except Exception:
                    fallback = None
            for ep in dist_eps:
                eps.append([ep.group, ep.name, ep.value, _ep_dist_name(ep, fallback)])
                if ep.group not in seen_groups:
                    seen_groups.add(ep.group)
                    group_order.append(ep.group)
        out["entry_points"] = eps
    except Exception as exc:
        out["entry_points_error"] = _err(exc)

    if out["entry_points_error"] is None:
        try:
            groups = {}
            for group in group_order:
                groups[group] = [[ep.name, ep.value, _ep_dist_name(ep)] for ep in _select_group(group)]
            out["groups"] = groups
        except Exception as exc:
            out["entry_points_error"] = _err(exc)

    for name in names:
        try:
            out["versions"][name] = md.version(name)
        except md.PackageNotFoundError:
            out["versions"][name] = None
        except Exception as exc:
            out["versions"][name] = None
            out["version_errors"][name] = _err(exc)

    return out


def _warm_up():
    """Run the whole oracle once on a throwaway tree, so every module that the
    stdlib imports lazily (email.parser, encodings, ...) is loaded while the
    real sys.path is still in place."""
    saved = sys.path[:]
    tmp = tempfile.mkdtemp(prefix="epcache-oracle-")
    try:
        info = os.path.join(tmp, "warm_up-1.0.dist-info")
        os.mkdir(info)
        with open(os.path.join(info, "METADATA"), "w", encoding="utf-8") as f:
            f.write("Metadata-Version: 2.1\r\nName: warm-up\r\nVersion: 1.0\r\n\r\nbody \u00e9\n")
        with open(os.path.join(info, "entry_points.txt"), "w", encoding="utf-8") as f:
            f.write("# c\n[console_scripts]\nw = warm_up:main [x]\n")
        bad = os.path.join(tmp, "bad-1.0.dist-info")
        os.mkdir(bad)
        with open(os.path.join(bad, "METADATA"), "wb") as f:
            f.write(b"Name: bad\nVersion: \xff\n\n")
        with open(os.path.join(bad, "entry_points.txt"), "w", encoding="utf-8") as f:
            f.write("[g]\nno equals sign\n")
        sys.path[:] = [tmp]
        json.dumps(run(["warm-up", "missing", "bad"]), sort_keys=False)
        json.dumps("\udcff")
    finally:
        sys.path[:] = saved
        shutil.rmtree(tmp, ignore_errors=True)
        importlib.invalidate_caches()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--names",
        action="append",
        default=[],
        help="comma-separated distribution names for importlib.metadata.version() (repeatable)",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH_ENTRY")
    args = parser.parse_args(argv)
    names = [n for chunk in args.names for n in chunk.split(",") if n]

    _warm_up()

    # Only the stock path-based finder may report distributions.
    sys.meta_path[:] = [
        f
        for f in sys.meta_path
        if f is importlib.machinery.PathFinder or not hasattr(f, "find_distributions")
    ]
    sys.path[:] = args.paths
    result = run(names)

    sys.stdout.write(json.dumps(result))
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
