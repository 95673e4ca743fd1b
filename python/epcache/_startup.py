"""Imported at interpreter start by the ``.pth`` file that
``python -m epcache enable`` writes. Must be cheap and must never raise.

``enable`` copies this file beside the ``.pth`` file as the top-level
module ``_epcache_startup`` (importing a package and a module in it would
cost twice as much at every start), so it must not import anything of
epcache at module level, and must cope with epcache having been removed.

It imports nothing (``sys`` and ``os`` are loaded by then) and only puts a
small finder at the front of ``sys.meta_path``. When the program imports
``importlib.metadata`` (or the ``importlib_metadata`` backport), that
finder hands over to ``epcache._hook``, which puts stand-ins on the four
functions; the first call of one loads ``epcache._api`` and the native
module. See docs/python.md, "Turning it on for an environment".

``EPCACHE_DISABLE`` (anything but empty or ``0``) leaves the interpreter
completely stock. ``EPCACHE_TRACE=FILE`` appends one JSON line of
``epcache.stats()`` to FILE when the interpreter exits.
"""

import sys


class _Watcher:
    """Finds nothing itself; for the two watched names it asks
    ``epcache._hook`` to find the module with the finders after this one
    and to patch it once it has run."""

    __slots__ = ()
    _epcache_watcher = True

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "importlib.metadata" and fullname != "importlib_metadata":
            return None
        try:
            from epcache import _hook

            return _hook.find_spec(self, fullname, path, target)
        except Exception:
            return None

    def __repr__(self):
        return "<epcache import watcher>"


def _run():
    from os import environ

    if environ.get("EPCACHE_DISABLE", "") not in ("", "0"):
        return
    modules = sys.modules
    if "importlib.metadata" in modules or "importlib_metadata" in modules:
        # Another .pth file imported one already: patch it now.
        from epcache import _hook

        _hook.activate()
    else:
        sys.meta_path.insert(0, _Watcher())
    trace = environ.get("EPCACHE_TRACE")
    if trace:
        import atexit

        from epcache import _hook

        atexit.register(_hook.write_trace, trace)


try:
    _run()
except Exception:
    pass
