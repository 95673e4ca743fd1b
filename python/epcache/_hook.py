"""Patching importlib.metadata when, and only when, it is imported.

An interpreter start with epcache enabled runs ``activate()``. Modules that
are already imported are patched at once; for the others a small finder
sits at the front of ``sys.meta_path`` and patches them right after they
execute. So a program that never touches importlib.metadata pays for three
tiny imports and nothing else: neither importlib.metadata nor the native
module is loaded on its behalf.

Nothing here may raise into the interpreter: every failure leaves the stock
functions in place.
"""

import sys

TARGETS = ("importlib.metadata", "importlib_metadata")


def _patch(module):
    try:
        from epcache import _api

        _api._patch_module(module)
    except Exception as exc:  # a broken epcache must never break an import
        _record_error(exc)


def _record_error(exc):
    try:
        from epcache import _api

        _api._note_error("patch", exc)
    except Exception:
        pass


class _PatchingLoader:
    """Runs the real loader, then patches the module it executed."""

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


class _Watcher:
    """A meta path finder that finds nothing itself: for a watched name it
    asks the finders after it and wraps the loader of their answer."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in TARGETS:
            return None
        try:
            spec = None
            for finder in list(sys.meta_path):
                if finder is self or isinstance(finder, _Watcher):
                    continue
                find_spec = getattr(finder, "find_spec", None)
                if find_spec is None:
                    continue
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    break
            if spec is None or not hasattr(spec.loader, "exec_module"):
                return spec
            spec.loader = _PatchingLoader(spec.loader)
            return spec
        except Exception:
            return None

    def __repr__(self):
        return "<epcache import watcher>"


_watcher = None


def activate():
    """Patch the targets imported so far and watch for the others."""
    global _watcher
    pending = False
    for name in TARGETS:
        module = sys.modules.get(name)
        if module is None:
            pending = True
        else:
            _patch(module)
    if pending and _watcher is None:
        _watcher = _Watcher()
        sys.meta_path.insert(0, _watcher)


def deactivate():
    """Stop watching for imports (patches are undone by ``_api``)."""
    global _watcher
    if _watcher is not None:
        try:
            sys.meta_path.remove(_watcher)
        except ValueError:
            pass
        _watcher = None


def active():
    return _watcher is not None
