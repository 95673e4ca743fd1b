# What every interpreter start of an enabled environment runs, whether or
# not the program ever asks for metadata.
#
# It is not imported. `python -m epcache enable` compiles it for the
# interpreter that runs `enable` and writes the marshalled code, as hex, into
# the one line of epcache-startup.pth (see epcache.__main__.pth_line), which
# runs it with the globals `sys` and HOOK, the path of the installed
# epcache/_hook.py, if the interpreter's bytecode is the one it was compiled
# for. So an interpreter start searches nothing on sys.path, reads no other
# file and imports nothing (os is loaded by then). Python parses the line at
# every start, in time that grows with its length, so this code is kept
# small.
#
# It puts a small finder at the front of sys.meta_path. When the program
# imports importlib.metadata (or the importlib_metadata backport), the
# finder loads HOOK by its path, with the import system's own loader (which
# keeps its .pyc current, so an upgraded epcache needs no new `enable`), and
# hands the import over to it (epcache._hook._find_spec), which patches the
# module once it has run. If HOOK cannot be loaded (epcache removed without
# `disable`), the finder takes itself off sys.meta_path and the interpreter
# stays stock.
#
# The finder must keep working with any later epcache._hook: it relies on
# _hook._find_spec(watcher, fullname, path, target) and _hook._start(),
# nothing else.
#
# site.py prints a traceback for an exception escaping a .pth line, so
# everything is caught.

try:
    import os

    if (
        os.environ.get("EPCACHE_DISABLE", "") in ("", "0")
        # site.py of Python 3.11 runs a venv's .pth files twice.
        and "epcache._hook" not in sys.modules
        and not any(getattr(f, "_epcache_watcher", 0) for f in sys.meta_path)
    ):

        def _load_hook():
            hook = sys.modules.get("epcache._hook")
            if hook is None:
                import _frozen_importlib as bootstrap
                import _frozen_importlib_external as external

                spec = external.spec_from_file_location("epcache._hook", HOOK)  # noqa: F821
                hook = bootstrap.module_from_spec(spec)
                spec.loader.exec_module(hook)
                sys.modules["epcache._hook"] = hook
            return hook

        class _Watcher:
            _epcache_watcher = True
            __repr__ = lambda self: "<epcache import watcher>"  # noqa: E731

            def find_spec(self, fullname, path=None, target=None):
                if fullname != "importlib.metadata" and fullname != "importlib_metadata":
                    return None
                try:
                    return _load_hook()._find_spec(self, fullname, path, target)
                except Exception:
                    # No hook (epcache removed): stop watching.
                    if self in sys.meta_path:
                        sys.meta_path.remove(self)
                    return None

        if "importlib.metadata" in sys.modules or "importlib_metadata" in sys.modules or os.environ.get("EPCACHE_TRACE"):
            # Another .pth file imported a target already, or a trace is
            # asked for: the hook is needed now.
            _load_hook()._start()
        else:
            sys.meta_path.insert(0, _Watcher())
except Exception:
    pass
