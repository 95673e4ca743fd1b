# Patching importlib.metadata when, and only when, it is imported, and
# loading the rest of epcache only when it is queried.
#
# This is the module an enabled interpreter loads when it imports
# importlib.metadata: the finder that epcache-startup.pth (written by
# `python -m epcache enable`) put on sys.meta_path loads this file by its
# path, from its .pyc when that is current, without searching sys.path, and
# hands it the import (_find_spec), or calls _start() at once when a target
# was imported before it. Every interpreter that imports importlib.metadata
# pays for loading it, so it imports nothing at module level (sys is loaded by
# then), keeps its code small (its documentation is in comments, which cost
# nothing to load), and leaves everything that only a query or a caller of
# epcache's API needs to epcache._api. Every function must cope with the
# rest of epcache having been removed.
#
# _start() (and activate(), for epcache.install()) puts a finder at the front
# of sys.meta_path. When importlib.metadata or the importlib_metadata
# backport is imported, the finder wraps its loader so that, right after the
# module has run, _patch() replaces its four functions (entry_points,
# distributions, distribution, version).
#
# While epcache._api is not loaded, the replacements are *stand-ins*: tiny
# functions that carry the stock function's name, docstring and __wrapped__,
# and whose first call loads epcache._api and the native module. Loading
# epcache._api calls adopt(), which replaces every stand-in on the modules
# with _api's real functions; the stand-in then forwards to the real
# function, and keeps doing so for whoever holds it (`from
# importlib.metadata import entry_points`). So a program that imports
# importlib.metadata and never queries loads nothing of epcache beyond this
# module. Once epcache._api is loaded, modules imported later are patched
# with the real functions straight away.
#
# Nothing here may raise into the interpreter: every failure leaves the
# stock functions in place. See docs/python.md, "Turning it on for an
# environment".

import sys

TARGETS = ("importlib.metadata", "importlib_metadata")
FUNCTIONS = ("entry_points", "distributions", "distribution", "version")

# epcache._api's _patch_module, once epcache._api is loaded (see adopt()).
_patch_now = None
# Set when epcache._api failed to load: stop patching, stay stock.
_broken = False
# Modules carrying stand-ins: name -> (module, {function name: stock},
# {function name: stand-in}).
_lazy = {}


def _start():
    # Called by the .pth line, which has already checked EPCACHE_DISABLE.
    # EPCACHE_TRACE=FILE appends one JSON line of epcache.stats() to FILE
    # when the interpreter exits.
    activate()
    import os

    trace = os.environ.get("EPCACHE_TRACE")
    if trace:
        import atexit

        atexit.register(_write_trace, trace)


def activate():
    # Patches the targets imported so far and watches for the others.
    pending = False
    for name in TARGETS:
        module = sys.modules.get(name)
        if module is None:
            pending = True
        else:
            _patch(module)
    if pending and not watchers():
        sys.meta_path.insert(0, _new_watcher())


def watchers():
    return [f for f in sys.meta_path if getattr(f, "_epcache_watcher", False) is True]


def deactivate():
    # Stops watching imports and removes the stand-ins (epcache._api puts
    # back the stock functions where it patched).
    for watcher in watchers():
        try:
            sys.meta_path.remove(watcher)
        except ValueError:
            pass
    restore_stand_ins()


def active():
    # Whether imports are watched or stand-ins are in place.
    return bool(_lazy) or bool(watchers())


def _patch(module):
    # A freshly imported target gets the real functions if epcache._api is
    # loaded, stand-ins otherwise.
    try:
        if _patch_now is not None:
            _patch_now(module)
        elif not _broken:
            _stand_in_all(module)
    except Exception as exc:  # a broken epcache must never break an import
        api = sys.modules.get("epcache._api")
        if api is not None:
            api._note_error("patch", exc)


def _stand_in_all(module):
    name = module.__name__
    entry = _lazy.get(name)
    if entry is not None and entry[0] is module:
        return
    stock = {}
    for fname in FUNCTIONS:
        func = getattr(module, fname, None)
        if func is None:
            return  # not an importlib.metadata epcache knows
        stock[fname] = getattr(func, "__epcache_stock__", func)
    stand_ins = {fname: _stand_in(module, fname, func) for fname, func in stock.items()}
    _lazy[name] = (module, stock, stand_ins)
    for fname, func in stand_ins.items():
        setattr(module, fname, func)


def _stand_in(module, fname, stock):
    real = None

    def stand_in(*args, **kwargs):
        nonlocal real
        if real is None:
            real = _resolve(module, fname, stock)
        return real(*args, **kwargs)

    # What functools.update_wrapper copies that anyone looks at, without
    # importing functools.
    stand_in.__name__ = getattr(stock, "__name__", fname)
    stand_in.__qualname__ = getattr(stock, "__qualname__", fname)
    stand_in.__doc__ = getattr(stock, "__doc__", None)
    stand_in.__module__ = getattr(stock, "__module__", module.__name__)
    stand_in.__wrapped__ = stock
    stand_in.__epcache_stock__ = stock
    return stand_in


def _resolve(module, fname, stock):
    # What a stand-in forwards to from its first call on: the function now
    # on the module once epcache._api is loaded (the real one, unless
    # epcache.uninstall() or an unsupported flavor put the stock one back),
    # else the stock function.
    global _broken
    try:
        _load_api()  # runs adopt()
    except Exception:
        # No native module, or a broken epcache: stock from now on.
        _broken = True
        restore_stand_ins()
        return stock
    func = getattr(module, fname, None)
    if func is None or getattr(func, "__epcache_stock__", None) is not stock or is_stand_in(func):
        return stock
    return func


def _load_api():
    # epcache._api, and the modules of epcache it imports, loaded from the
    # directory this file is in rather than found on sys.path: the search
    # asks every sys.path entry's finder in turn, and this is the package
    # the .pth line named anyway.
    api = sys.modules.get("epcache._api")
    if api is not None:
        return api
    if __name__ == "epcache._hook":
        import os

        directory = os.path.dirname(__file__)
        package = sys.modules.get("epcache")
        if package is None:
            package = _load_source("epcache", os.path.join(directory, "__init__.py"), directory)
        # Only into the package of this directory: an epcache imported from
        # elsewhere (a checkout on PYTHONPATH) imports its own modules, as
        # it would without the hook, so that they match its native module.
        if directory in getattr(package, "__path__", ()):
            for name in ("_installer", "_api"):
                if "epcache." + name not in sys.modules:
                    _load_source("epcache." + name, os.path.join(directory, name + ".py"))
    from epcache import _api

    return _api


def _load_source(name, path, package_dir=None):
    # Loads one module of epcache's own by its path, with the import
    # system's own loader, as an import would, without the search.
    import _frozen_importlib as bootstrap
    import _frozen_importlib_external as external

    loader = external.SourceFileLoader(name, path)
    spec = bootstrap.ModuleSpec(name, loader, origin=path, is_package=package_dir is not None)
    spec.has_location = True
    spec.cached = external.cache_from_source(path)
    if package_dir is not None:
        spec.submodule_search_locations = [package_dir]
    module = bootstrap.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


def is_stand_in(func):
    return any(func is s for _, _, stand_ins in _lazy.values() for s in stand_ins.values())


def restore_stand_ins():
    # Puts the stock functions back where stand-ins still are; returns the
    # modules that had them.
    lazy = list(_lazy.values())
    _lazy.clear()
    for module, stock, stand_ins in lazy:
        for fname, stand_in in stand_ins.items():
            if getattr(module, fname, None) is stand_in:
                setattr(module, fname, stock[fname])
    return [module for module, _, _ in lazy]


def adopt(patch_module):
    # Called by epcache._api when it has loaded: patch with its real
    # functions from now on, and replace the stand-ins already in place.
    global _patch_now
    _patch_now = patch_module
    for module in restore_stand_ins():
        _patch(module)


class _PatchingLoader:
    # Runs the real loader, then patches the module it executed.

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        # Hand the module its real loader before it runs, so that nothing
        # ever sees this wrapper afterwards.
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        self._loader.exec_module(module)
        _patch(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _new_watcher():
    # A meta path finder that finds nothing itself: for the two target names
    # it asks the finders after it and wraps the loader they give. Like the
    # one the .pth line makes, it is a module object, which has the two
    # attributes anyone asks a finder for and costs far less than a class.
    watcher = type(sys)("epcache import watcher")

    def find_spec(fullname, path=None, target=None):
        if fullname in TARGETS:
            return _find_spec(watcher, fullname, path, target)
        return None

    watcher.find_spec = find_spec
    watcher._epcache_watcher = True
    return watcher


def _find_spec(watcher, fullname, path, target):
    try:
        spec = None
        for finder in list(sys.meta_path):
            if finder is watcher or getattr(finder, "_epcache_watcher", False) is True:
                continue
            finder_find_spec = getattr(finder, "find_spec", None)
            if finder_find_spec is None:
                continue
            spec = finder_find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader)
        return spec
    except Exception:
        return None


def _write_trace(path):
    # At exit (EPCACHE_TRACE): one JSON line of epcache.stats().
    try:
        import json

        api = sys.modules.get("epcache._api")
        record = api.stats() if api is not None else {"loaded": False}
        installer = sys.modules.get("epcache._installer")
        if installer is not None:
            record["exit_rebuilds"] = installer.rebuilt
        record["argv"] = list(sys.argv)
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
    except Exception:
        pass
