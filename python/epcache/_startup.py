# What every interpreter start of an enabled environment runs, whether or
# not the program ever asks for metadata.
#
# It is not imported. `python -m epcache enable` compiles it, with a first
# line `HOOK = "<the installed epcache/_hook.py>"` put before it, for the
# interpreter that runs `enable`, and writes the marshalled code to
# epcache-startup.bin beside epcache-startup.pth. The .pth file's one short
# line (see epcache.__main__.pth_line) reads that file and, under the
# bytecode it was compiled for, runs it with the global `sys`. So an
# interpreter start searches nothing on sys.path, reads one small file and
# imports nothing (os is loaded by then). Python parses the .pth line twice
# at every start of a venv, in time that grows with its length, which is
# why this code is not in the line itself.
#
# It puts a small finder at the front of sys.meta_path (the .pth line runs
# this only if no such finder is there yet). When the program
# imports importlib.metadata (or the importlib_metadata backport), the
# finder loads HOOK by its path, from its .pyc when that is current (the
# checks of the import system's own loader, which it falls back to, so an
# upgraded epcache needs no new `enable`), and
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
        and "epcache._hook" not in sys.modules
    ):

        def _load_hook():
            hook = sys.modules.get("epcache._hook")
            if hook is None:
                import _frozen_importlib as bootstrap
                import _frozen_importlib_external as external

                loader = external.SourceFileLoader("epcache._hook", HOOK)  # noqa: F821
                spec = bootstrap.ModuleSpec("epcache._hook", loader, origin=HOOK)  # noqa: F821
                spec.has_location = True
                spec.cached = external.cache_from_source(HOOK)  # noqa: F821
                hook = bootstrap.module_from_spec(spec)
                code = _current_code(external, spec.cached)
                if code is None:
                    # No .pyc, or a stale one: the loader compiles (and
                    # writes the .pyc where it may).
                    loader.exec_module(hook)
                else:
                    exec(code, vars(hook))
                sys.modules["epcache._hook"] = hook
            return hook

        def _current_code(external, cached):
            # What SourceFileLoader.get_code does with a timestamp .pyc: the
            # same checks, None if any fails, without its layers of calls
            # (40 us of the 300 us that loading epcache._hook takes).
            import _io
            import marshal

            try:
                st = os.stat(HOOK)  # noqa: F821
                with _io.FileIO(cached) as f:
                    data = f.readall()
            except OSError:
                return None
            if (
                data[:4] != external.MAGIC_NUMBER
                or data[4:8] != bytes(4)
                or int.from_bytes(data[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
                or int.from_bytes(data[12:16], "little") != st.st_size & 0xFFFFFFFF
            ):
                return None
            return marshal.loads(memoryview(data)[16:])

        def find_spec(fullname, path=None, target=None):
            if fullname != "importlib.metadata" and fullname != "importlib_metadata":
                return None
            try:
                return _load_hook()._find_spec(watcher, fullname, path, target)
            except Exception:
                # No hook (epcache removed): stop watching.
                if watcher in sys.meta_path:
                    sys.meta_path.remove(watcher)
                return None

        # The finder is a module object: it has the two attributes anyone
        # asks a finder on sys.meta_path for, and making one takes 4 us
        # where making a class takes 15-50 us, at every start.
        watcher = type(sys)("epcache import watcher")
        watcher.find_spec = find_spec
        watcher._epcache_watcher = True

        if "importlib.metadata" in sys.modules or "importlib_metadata" in sys.modules or os.environ.get("EPCACHE_TRACE"):
            # Another .pth file imported a target already, or a trace is
            # asked for: the hook is needed now.
            _load_hook()._start()
        else:
            sys.meta_path.insert(0, watcher)
except Exception:
    pass
