"""The importlib.metadata front: queries, distributions and patching.

Every query consults the native module for the path entries in effect at
the call (``sys.path`` unless a ``path`` is given). The native module stats
every entry at every call and hands back the same ``Snapshot`` object while
nothing changed; the objects built for a snapshot (distributions, one list
of entry points per selection) are kept with it and reused, so a repeated
query costs one ``stat`` per path entry plus a dictionary lookup.

Two implementations of importlib.metadata may be present: the stdlib's and
the ``importlib_metadata`` backport. A *flavor* wraps one of them. Results
use the types of the flavor whose function was called; distributions and
entry point objects use the flavor whose finder stock discovery would have
used (after the backport is imported, that is the backport's, even for the
stdlib functions, because the backport disables the stdlib's finder).
"""

import functools
import itertools
import operator
import os
import pathlib
import sys
import zipfile
from importlib.machinery import PathFinder as _PathFinder

from . import _epcache as _native
from . import _hook
from . import _installer  # epcache-installer: rebuild at exit

__version__ = _native.__version__

_STD = "importlib.metadata"
_BACKPORT = "importlib_metadata"
_FUNCTIONS = ("entry_points", "distributions", "distribution", "version")

# PathFinder's own find_distributions, to recognise it while it is untouched.
_PATHFINDER_FD = _PathFinder.__dict__.get("find_distributions")

_stats = {
    "answered": 0,
    "fallbacks": 0,
    "errors": 0,
    "last_error": None,
}


def _strict():
    return os.environ.get("EPCACHE_STRICT", "") not in ("", "0")


def _note_error(where, exc):
    _stats["errors"] += 1
    _stats["last_error"] = f"{where}: {type(exc).__name__}: {exc}"


class _Unsupported(Exception):
    """Raised for a call epcache does not answer; the stock function does."""


_NOT_FOUND = object()

# The fields of the native module's distribution rows.
_NAME, _VERSION, _KEY, _ENTRY, _CHILD, _KIND = range(6)


# ---------------------------------------------------------------- flavors


class _Flavor:
    """One importlib.metadata implementation and epcache's types for it."""

    def __init__(self, module):
        self.module = module
        self.name = module.__name__
        self.EntryPoint = module.EntryPoint
        self.EntryPoints = getattr(module, "EntryPoints", None)
        self.SelectableGroups = getattr(module, "SelectableGroups", None)
        self.PackageNotFoundError = module.PackageNotFoundError
        # The stock functions, captured before any patching.
        self.stock = {}
        for name in _FUNCTIONS:
            func = getattr(module, name)
            self.stock[name] = getattr(func, "__epcache_stock__", func)
        # Python 3.9's stdlib predates EntryPoints and discovers
        # distributions by other rules; epcache leaves it alone.
        self.supported = (
            self.EntryPoints is not None
            and hasattr(self.EntryPoint, "_for")
            and hasattr(module, "PathDistribution")
            and (self.name != _STD or sys.version_info >= (3, 10))
        )
        # importlib_metadata >= 8.1 (python/importlib_metadata#489):
        # distribution(name) prefers a match whose metadata is not empty.
        self.prefer_valid = hasattr(getattr(module, "Distribution", None), "_prefer_valid")
        self.FastPath = getattr(module, "FastPath", None)
        self.Distribution = _distribution_class(self) if self.supported else None
        self.entry_point, self.entry_points_for = self._entry_point_makers() if self.supported else (None, None)

    def _entry_point_makers(self):
        """Two functions: one making ``EntryPoint(name, value, group)._for(dist)``,
        and one making the list of those for ``(name, value, group)`` triples
        of one distribution.

        Where that amounts to filling the instance dictionary with exactly
        these four keys (true of every importlib.metadata so far), the
        dictionary is filled directly, at a third of the cost, and the list
        without a call per entry point.
        """
        EntryPoint = self.EntryPoint
        marker = object()

        def slow(name, value, group, dist):
            return EntryPoint(name, value, group)._for(dist)

        def slow_many(triples, dist):
            return [slow(name, value, group, dist) for name, value, group in triples]

        try:
            probe = slow("n", "m:v", "g", marker)
            fast_ok = type(probe) is EntryPoint and vars(probe) == {
                "name": "n",
                "value": "m:v",
                "group": "g",
                "dist": marker,
            }
        except Exception:
            fast_ok = False
        if not fast_ok:
            return slow, slow_many
        new = object.__new__

        def fast(name, value, group, dist):
            return fast_many(((name, value, group),), dist)[0]

        def fast_many(triples, dist):
            eps = []
            for name, value, group in triples:
                ep = new(EntryPoint)
                d = ep.__dict__
                d["name"] = name
                d["value"] = value
                d["group"] = group
                d["dist"] = dist
                eps.append(ep)
            return eps

        return fast, fast_many


_flavors = {}


def _flavor(module):
    flavor = _flavors.get(module.__name__)
    if flavor is None or flavor.module is not module:
        flavor = _flavors[module.__name__] = _Flavor(module)
    return flavor


def _primary():
    """The flavor epcache's own API returns: the stdlib's on Python >= 3.10,
    the backport's before."""
    if sys.version_info >= (3, 10):
        import importlib.metadata as module
    else:
        import importlib_metadata as module
    flavor = _flavor(module)
    if not flavor.supported:
        raise ImportError(f"{module.__name__} {getattr(module, '__version__', '')} is too old for epcache")
    return flavor


def _finder_flavor():
    """The flavor whose distributions stock discovery would yield, or
    ``None`` when ``sys.meta_path`` has a distribution finder that epcache
    cannot stand in for (or several)."""
    found = None
    for finder in sys.meta_path:
        if getattr(finder, "find_distributions", None) is None:
            continue
        if found is not None:
            return None
        found = _path_finder_flavor(finder)
        if found is None:
            return None
    return found


def _path_finder_flavor(finder):
    if finder is _PathFinder:
        if _PathFinder.__dict__.get("find_distributions") is not _PATHFINDER_FD:
            return None
        module = sys.modules.get(_STD)
        if module is None:
            import importlib.metadata as module
    else:
        module = None
        for name in (_BACKPORT, _STD):
            candidate = sys.modules.get(name)
            cls = getattr(candidate, "MetadataPathFinder", None)
            if cls is not None and isinstance(finder, cls):
                module = candidate
                break
        if module is None:
            return None
    flavor = _flavor(module)
    return flavor if flavor.supported else None


# ----------------------------------------------------------- distributions


def _distribution_class(flavor):
    base = flavor.module.PathDistribution
    # The lazy metadata maker (see _metadata), made at the first use:
    # [] until then, [None] where this flavor's metadata is left to stock.
    lazy_maker = []

    def make_lazy_maker():
        from importlib import import_module

        from . import _metadata

        try:
            message_class = import_module(flavor.name + "._adapters").Message
        except (ImportError, AttributeError):
            maker = None
        else:
            maker = _metadata.lazy_message_maker(message_class)
        lazy_maker.append(maker)
        return maker

    class Distribution(base):
        """A distribution as epcache's index describes it.

        ``name``, ``version``, ``entry_points``, the de-duplication name
        and ``metadata["Name"]`` / ``metadata["Version"]`` come from the
        index. Everything else (the rest of ``metadata``, ``files``,
        ``requires``, ``read_text``) is read lazily from the metadata
        directory on disk, by the stock code.
        """

        def __init__(self, view, number, row):
            # PathDistribution.__init__ would build the path now; it is
            # built on first use instead (see _path). _View.dist fills the
            # same three slots without calling this.
            d = vars(self)
            d["_epcache_view"] = view
            d["_epcache_number"] = number
            d["_epcache_row"] = row

        # A property rather than __getattr__: an AttributeError raised inside
        # a stock property (files, requires ...) must reach the caller as it
        # is, not be replaced by __getattr__'s.
        @property
        def _path(self):
            d = vars(self)
            path = d.get("_epcache_path")
            if path is None:
                row = d["_epcache_row"]
                path = d["_epcache_path"] = d["_epcache_view"].metadata_path(row[_ENTRY], row[_CHILD])
            return path

        @_path.setter
        def _path(self, path):
            vars(self)["_epcache_path"] = path

        @property
        def name(self):
            name = vars(self)["_epcache_row"][_NAME]
            # A value with line breaks (or other characters the flavors
            # treat differently) is left to stock, as in `metadata`.
            return name if name is not None and name.isprintable() else super().name

        @property
        def version(self):
            version = vars(self)["_epcache_row"][_VERSION]
            return version if version is not None and version.isprintable() else super().version

        @property
        def _normalized_name(self):
            key = vars(self)["_epcache_row"][_KEY]
            return key.replace("-", "_") if key is not None else super()._normalized_name

        @property
        def metadata(self):
            """Like stock ``metadata`` (a new message at every access), but
            ``["Name"]`` and ``["Version"]`` (and ``get``, in any case)
            answer from the index; the file is read and parsed only when
            anything else is asked (see ``epcache._metadata``)."""
            d = vars(self)
            fast = d.get("_epcache_md")
            if fast is None:
                from ._metadata import index_headers

                row = d["_epcache_row"]
                diagnostics = d["_epcache_view"].snap.dist_diagnostics(d["_epcache_number"])
                fast = d["_epcache_md"] = index_headers(row[_NAME], row[_VERSION], diagnostics) or False
            if fast:
                make = lazy_maker[0] if lazy_maker else make_lazy_maker()
                if make is not None:
                    return make(self, fast)
            return super().metadata

        def _epcache_stock_metadata(self):
            """What stock ``metadata`` returns, read now."""
            return super().metadata

        @property
        def entry_points(self):
            d = vars(self)
            eps = d.get("_epcache_eps")
            if eps is None:
                triples = d["_epcache_view"].dist_entry_points(d["_epcache_number"])
                eps = d["_epcache_eps"] = flavor.entry_points_for(triples, self)
            return flavor.EntryPoints(eps)

        @property
        def diagnostics(self):
            """What epcache could not read or parse for this distribution
            (for example an ``entry_points.txt`` line without ``=``)."""
            d = vars(self)
            return d["_epcache_view"].snap.dist_diagnostics(d["_epcache_number"])

        def __repr__(self):
            d = vars(self)
            row = d["_epcache_row"]
            entry = d["_epcache_view"].entries()[row[_ENTRY]]
            return f"<epcache.Distribution {row[_NAME]!r} {row[_VERSION]!r} at {row[_CHILD]!r} in {entry!r}>"

    Distribution.__module__ = "epcache"
    return Distribution


def _joiner(flavor, root):
    if os.path.isdir(root or "."):
        return functools.partial(pathlib.Path, root)
    fast_path = flavor.FastPath
    if fast_path is not None:
        try:
            # What stock discovery does for a zip: FastPath (one per root,
            # cached) switches its joinpath to the zip's on listing it.
            fp = fast_path(root)
            if "joinpath" not in vars(fp):
                fp.zip_children()
            return fp.joinpath
        except Exception:
            pass
    return zipfile.Path(root).joinpath


class _View:
    """The Python objects built for one snapshot, in one flavor."""

    _MAX_SELECTIONS = 256

    def __init__(self, snap, flavor):
        self.snap = snap
        self.flavor = flavor
        self._entries = None
        self._rows = None
        self._all = None
        self._every_dist_eps = None
        self._dists = {}
        self._eps = {}
        self._roots = {}

    def entries(self):
        if self._entries is None:
            self._entries = self.snap.path_entries()
        return self._entries

    def metadata_path(self, entry, child):
        """The path the flavor's own ``FastPath`` gives this child: a
        ``pathlib.Path`` for a directory; for a zip, what that flavor uses
        (``zipfile.Path`` in the stdlib, ``zipp.Path`` in the backport)."""
        join = self._roots.get(entry)
        if join is None:
            join = self._roots[entry] = _joiner(self.flavor, self.entries()[entry])
        return join(child)

    def dist(self, number, row=None):
        dist = self._dists.get(number)
        if dist is None:
            if row is None:
                row = self._rows[number] if self._rows is not None else self.snap.dist(number)
            dist = self._new_dist(number, row)
        return dist

    def _new_dist(self, number, row):
        # What Distribution.__init__ does, without the call.
        dist = object.__new__(self.flavor.Distribution)
        d = dist.__dict__
        d["_epcache_view"] = self
        d["_epcache_number"] = number
        d["_epcache_row"] = row
        self._dists[number] = dist
        return dist

    def all(self):
        if self._all is None:
            if self._rows is None:
                self._rows = self.snap.dists()
            dists = self._dists
            self._all = [
                dists.get(n) or self._new_dist(n, row) for n, row in enumerate(self._rows)
            ]
        return self._all

    def dist_entry_points(self, number):
        """One distribution's ``(name, value, group)`` triples. Once every
        distribution was listed (``distributions()``), the program usually
        asks each for its entry points: all are fetched in one call."""
        if self._all is None:
            return self.snap.dist_entry_points(number)
        every = self._every_dist_eps
        if every is None:
            every = self._every_dist_eps = self.snap.all_dist_entry_points()
        return every[number]

    def entry_points(self, group, name):
        key = (group, name)
        eps = self._eps.get(key)
        if eps is None:
            if len(self._eps) >= self._MAX_SELECTIONS:
                self._eps.clear()
            found = self.snap.entry_points(group, name)
            dists = self._dists
            missing = [n for n in dict.fromkeys(t[3] for t in found) if n not in dists]
            if missing:
                for n, row in zip(missing, self.snap.dists_for(missing)):
                    self._new_dist(n, row)
            make = self.flavor.entry_point
            eps = self._eps[key] = [make(n, v, g, dists[d]) for n, v, g, d in found]
        return eps


_views = {}


def _view(path, flavor):
    try:
        snap = _native.snapshot(path)
    except TypeError:
        if any(type(entry) is not str for entry in path):
            # Documented: stock answers for bytes, Path or other entries.
            raise _Unsupported("a path entry that is not a str") from None
        raise
    if not snap.complete:
        # A read failed for now (too many open files, permission denied, an
        # I/O error): stock reads again, and raises or skips as it does.
        raise _Unsupported("a path entry could not be read completely")
    view = _views.get(flavor.name)
    if view is None or view.snap is not snap or view.flavor is not flavor:
        _installer.consulted(snap, _native)  # epcache-installer: remember the keys seen
        view = _views[flavor.name] = _View(snap, flavor)
    return view


# ----------------------------------------------------------------- queries


def _select_entry_points(module_flavor, params, patched):
    finder_flavor = _finder_flavor()
    if finder_flavor is None:
        raise _Unsupported("sys.meta_path has other distribution finders")
    view = _view(sys.path, finder_flavor)
    rest = dict(params)
    # A str group or name selects in Rust; anything else (even None) is
    # left to EntryPoints.select, with stock semantics.
    group = rest.pop("group") if type(rest.get("group")) is str else None
    name = rest.pop("name") if type(rest.get("name")) is str else None
    eps = view.entry_points(group, name)
    grouped = patched and module_flavor.SelectableGroups is not None
    if grouped and not params:
        # Python 3.10/3.11 (and the backport < 5) return SelectableGroups here.
        return module_flavor.SelectableGroups.load(eps)
    result = module_flavor.EntryPoints(eps)
    if rest:
        result = result.select(**rest)
    if grouped and "group" not in params:
        # Their EntryPoints come from the groups, sorted by group name.
        result = module_flavor.EntryPoints(sorted(result, key=operator.attrgetter("group")))
    return result


def _distributions(module_flavor, kwargs, patched):
    path = sys.path
    for key, value in kwargs.items():
        if key != "path":
            raise _Unsupported(f"distributions({key}=...)")
        if value is None:
            if patched:
                raise _Unsupported("path=None")
        else:
            path = value
    finder_flavor = _finder_flavor()
    if finder_flavor is None:
        raise _Unsupported("sys.meta_path has other distribution finders")
    return iter(list(_view(path, finder_flavor).all()))


def _find(module_flavor, distribution_name):
    """``Distribution.from_name`` of ``module_flavor``: the first match, or
    for the backport >= 8.1 the first whose metadata is not empty."""
    if type(distribution_name) is not str or not distribution_name:
        raise _Unsupported("not a non-empty str")
    finder_flavor = _finder_flavor()
    if finder_flavor is None:
        raise _Unsupported("sys.meta_path has other distribution finders")
    view = _view(sys.path, finder_flavor)
    numbers = view.snap.find_all(distribution_name)
    if not numbers:
        return _NOT_FOUND
    if module_flavor.prefer_valid and len(numbers) > 1:
        for number in numbers:
            dist = view.dist(number)
            if _has_valid_metadata(dist):
                return dist
    return view.dist(numbers[0])


def _has_valid_metadata(dist):
    """``bool(dist.metadata)`` as ``_prefer_valid`` takes it: a Name or
    Version in the index proves a header; otherwise stock parses."""
    row = vars(dist)["_epcache_row"]
    if row[_NAME] is not None or row[_VERSION] is not None:
        return True
    return bool(dist._epcache_stock_metadata())


def _fell_back(where, exc):
    """Counts a call the stock function answers: a documented fallback
    (``_Unsupported``), or an error, which ``EPCACHE_STRICT`` raises."""
    if isinstance(exc, _Unsupported):
        _stats["fallbacks"] += 1
        return
    _note_error(where, exc)
    if _strict():
        raise exc


def _functions(module_flavor, patched):
    """epcache's four functions, answering in ``module_flavor``'s types.
    Whatever goes wrong inside epcache, the stock function answers."""
    stock = module_flavor.stock

    def entry_points(**params):
        try:
            result = _select_entry_points(module_flavor, params, patched)
        except Exception as exc:
            _fell_back("entry_points", exc)
            result = stock["entry_points"](**params)
            if not patched and not params and not isinstance(result, module_flavor.EntryPoints):
                result = module_flavor.EntryPoints(itertools.chain.from_iterable(dict.values(result)))
            return result
        _stats["answered"] += 1
        return result

    def distributions(**kwargs):
        try:
            result = _distributions(module_flavor, kwargs, patched)
        except Exception as exc:
            _fell_back("distributions", exc)
            return stock["distributions"](**kwargs)
        _stats["answered"] += 1
        return result

    def distribution(distribution_name):
        try:
            dist = _find(module_flavor, distribution_name)
        except Exception as exc:
            _fell_back("distribution", exc)
            return stock["distribution"](distribution_name)
        _stats["answered"] += 1
        if dist is _NOT_FOUND:
            raise module_flavor.PackageNotFoundError(distribution_name)
        return dist

    def version(distribution_name):
        try:
            dist = _find(module_flavor, distribution_name)
        except Exception as exc:
            _fell_back("version", exc)
            return stock["version"](distribution_name)
        _stats["answered"] += 1
        if dist is _NOT_FOUND:
            raise module_flavor.PackageNotFoundError(distribution_name)
        # The index's version, or the stock property when the index has
        # none: what it raises (an empty leftover dist-info under the
        # backport >= 8: KeyError or TypeError) is stock's own answer.
        return dist.version

    functions = {
        "entry_points": entry_points,
        "distributions": distributions,
        "distribution": distribution,
        "version": version,
    }
    for name, func in functions.items():
        functools.update_wrapper(func, stock[name])
        func.__epcache_stock__ = stock[name]
    return functions


# ------------------------------------------------------------- public API


@functools.lru_cache(maxsize=None)
def _direct():
    return _functions(_primary(), patched=False)


def entry_points(**params):
    """Like ``importlib.metadata.entry_points(**params)``, from the cache.

    Always returns ``EntryPoints`` (never Python 3.10/3.11's
    ``SelectableGroups``), in discovery order. Each ``EntryPoint`` has
    ``.dist`` set.
    """
    return _direct()["entry_points"](**params)


def distributions(path=None):
    """Like ``importlib.metadata.distributions()``: every distribution on
    ``path`` (``sys.path`` by default), without de-duplication."""
    if path is None:
        return _direct()["distributions"]()
    return _direct()["distributions"](path=path)


def distribution(distribution_name):
    """Like ``importlib.metadata.distribution(name)``."""
    return _direct()["distribution"](distribution_name)


def version(distribution_name):
    """Like ``importlib.metadata.version(name)``."""
    return _direct()["version"](distribution_name)


def _paths(paths):
    if paths is None:
        return list(sys.path)
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


def rebuild(paths=None):
    """Rebuilds the index of each path entry (``sys.path`` by default).

    Returns one dict per entry, with the names ``status()`` uses for the
    same things: ``path_entry``, ``verdict`` (the lookup's code;
    ``"skipped"`` when the file was not read because it is rebuilt
    anyway), ``publish`` (the publish's code, or ``None``), ``text`` (what
    happened, lookup and publish together) and ``distributions`` (how
    many were found).
    """
    keys = ("path_entry", "verdict", "publish", "text", "distributions")
    result = [dict(zip(keys, row)) for row in _native.rebuild(_paths(paths))]
    _views.clear()
    return result


def status(paths=None):
    """Reports, without scanning or writing, what the cache holds for each
    path entry (``sys.path`` by default): one dict per entry, the same
    fields ``epcache status --json`` prints: ``path_entry``,
    ``index_file``, ``verdict`` (the lookup's code: ``"hit"`` when a
    consult would be answered from the file), ``hit``, ``reason``,
    ``provisional``, ``written_at_ns``, ``distributions``,
    ``entry_points``, ``settledness`` (``state`` and ``seconds``),
    ``write_refusal`` and ``fingerprint_entries``."""
    return _native.status(_paths(paths))


def stats():
    """What epcache did in this process: queries answered from the index
    (``answered``), calls handed to the stock functions as documented
    (``fallbacks``: other distribution finders, a path entry that is not a
    ``str``, an incomplete scan ...), calls handed to them because of an
    unexpected error (``errors``, ``last_error``), whether
    importlib.metadata is patched (``installed``), and the native module's
    counters (``snapshots``, ``memo_reuses``, ``consults``, ``hits``,
    ``scans``)."""
    record = dict(_stats)
    record["installed"] = installed()
    record["patched"] = sorted(_patched)
    record.update(_native.counters())
    return record


def __getattr__(name):
    if name == "Distribution":
        return _primary().Distribution
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------- patching

_patched = {}  # module name -> (module, {function name: stock function})


def _patch_module(module):
    """Makes ``module``'s four functions answer from the cache."""
    if module.__name__ in _patched and _patched[module.__name__][0] is module:
        return
    flavor = _flavor(module)
    if not flavor.supported:
        return
    originals = {name: flavor.stock[name] for name in _FUNCTIONS}
    for name, func in _functions(flavor, patched=True).items():
        setattr(module, name, func)
    _patched[module.__name__] = (module, originals)


def install():
    """Makes ``importlib.metadata`` answer ``entry_points``,
    ``distributions``, ``distribution`` and ``version`` from the cache, and
    the ``importlib_metadata`` backport too, now or whenever it is
    imported. Idempotent."""
    if sys.version_info >= (3, 10):
        import importlib.metadata  # noqa: F401  (patch it now, not lazily)
    _hook.activate()


def uninstall():
    """Restores the stock functions and stops watching imports."""
    _hook.deactivate()
    for module, originals in list(_patched.values()):
        for name, func in originals.items():
            setattr(module, name, func)
    _patched.clear()


def installed():
    """Whether importlib.metadata is (or will be, once imported) patched."""
    return bool(_patched) or _hook.active()


# epcache-hook: from now on epcache._hook patches with the real functions,
# and the stand-ins it put on modules imported before this one loaded are
# replaced by them now.
_hook.adopt(_patch_module)
