"""epcache: ``importlib.metadata`` answered from a per-user index cache.

The functions mirror ``importlib.metadata`` and return its own types::

    import epcache
    eps = epcache.entry_points(group="console_scripts")   # EntryPoints
    epcache.version("pytest")
    epcache.install()      # make importlib.metadata itself use the cache

``python -m epcache enable`` makes every interpreter start of the current
environment call :func:`install`. See docs/python.md for the details.

This module is imported at every interpreter start once epcache is enabled,
so it imports nothing: the API is loaded from ``epcache._api`` on first use.
"""

__all__ = [
    "entry_points",
    "distributions",
    "distribution",
    "version",
    "rebuild",
    "status",
    "install",
    "uninstall",
    "installed",
    "stats",
    "Distribution",
]

_LAZY = frozenset(__all__) | {"__version__"}


def _bind_startup_hook():
    # An enabled interpreter start loads epcache._hook by its path before
    # this package exists; make it the package's attribute, as an import
    # of the submodule would have.
    import sys

    hook = sys.modules.get(__name__ + "._hook")
    if hook is not None:
        globals()["_hook"] = hook


_bind_startup_hook()


def __getattr__(name):
    if name in _LAZY:
        from . import _api

        value = getattr(_api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY)
