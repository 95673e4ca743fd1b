"""``python -m epcache enable|disable|rebuild|status``.

enable   write epcache-startup.pth (and the code it runs,
         epcache-startup.bin) into this environment's site-packages, so
         every interpreter start installs epcache's import hook; then rebuild
disable  remove those files
rebuild  rebuild the index of every sys.path entry of this interpreter
         (or of the PATHs given): the line an installer runs after it
         changed site-packages
status   show, per sys.path entry, what the cache holds
"""

import argparse
import json
import os
import sys
import sysconfig

PTH_NAME = "epcache-startup.pth"
# The code the .pth line runs, compiled for the interpreter that ran enable.
CODE_NAME = "epcache-startup.bin"
# What enable wrote before the .pth line loaded epcache._hook by its path:
# a copy of the startup code as a top-level module beside the .pth file.
# enable and disable remove it.
LEGACY_MODULE = "_epcache_startup"



def hook_path():
    """The installed epcache/_hook.py, which the .pth line's finder loads."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_hook.py")


def startup_code(hook):
    """The contents of epcache-startup.bin: epcache/_startup.py, with
    ``HOOK = hook`` put before it, compiled for this interpreter and
    marshalled."""
    import marshal

    source_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_startup.py")
    with open(source_path, encoding="utf-8") as f:
        source = f"HOOK = {hook!a}\n" + f.read()
    return marshal.dumps(compile(source, source_path, "exec", dont_inherit=True))


# The code of the .pth line, compiled by pth_line with CODE_FILE set.
# site.py runs a venv's .pth files twice per start (the venv's site-packages
# once for the venv and once for its prefix), so the second run must stop
# at the finder the first one put on sys.meta_path. The file is read only
# if it is a regular file of sane size, opened without blocking: a FIFO or
# a link to a device in its place must not hang or fill every start.
_PTH_CODE = """\
try:
    for x in sys.meta_path:
        if getattr(x, "_epcache_watcher", 0):
            break
    else:
        import os, _io
        with _io.FileIO(os.open(CODE_FILE, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))) as f:
            st = os.fstat(f.fileno())
            if st.st_mode & 0o170000 == 0o100000 and st.st_size < 1 << 20:
                exec(marshal.loads(f.readall()), {"sys": sys})
except Exception:
    pass
"""


def pth_line(code_file):
    """The one line of epcache-startup.pth: it runs the code in
    ``code_file`` (see startup_code).

    site.py executes a .pth line that starts with ``import``, and parses it
    at each of its two runs per start: parsing costs about 30 ns per
    character, compiling Python source far more, so the line carries only
    the marshalled code (as hex, which the parser reads faster than escaped
    bytes) of a few statements that read the file and run it. Everything is
    inside a ``try``, because site.py prints a traceback for an exception
    that escapes the line (a missing file, for one). The line runs its code
    only under the bytecode it was compiled for (the interpreter's magic
    number, which does not change within a Python minor version; the file
    is compiled with the line); another interpreter stays stock until
    `enable` runs again under it.
    """
    import _frozen_importlib_external as external
    import marshal

    code = compile(_PTH_CODE.replace("CODE_FILE", ascii(code_file)), PTH_NAME, "exec", dont_inherit=True)
    # ascii(): site.py reads the file in the locale's encoding, so every
    # literal must be ASCII; and a line must not hold a newline.
    return (
        "import sys, marshal, _frozen_importlib_external as e; "
        f"e.MAGIC_NUMBER == {ascii(external.MAGIC_NUMBER)} and "
        f"exec(marshal.loads(bytes.fromhex('{marshal.dumps(code).hex()}')))\n"
    )


def site_packages():
    """The current environment's site-packages (sysconfig's purelib)."""
    return sysconfig.get_paths()["purelib"]


def default_paths():
    """This interpreter's sys.path, less the current directory that
    ``python -m`` puts first (a program's own first entry is its script's
    directory, which is not this one)."""
    paths = list(sys.path)
    if paths and not getattr(sys.flags, "safe_path", False):
        first = paths[0]
        try:
            if os.path.abspath(first or os.curdir) == os.getcwd():
                paths = paths[1:]
        except OSError:
            pass
    return paths


class CommandError(Exception):
    """A failure to report in one line, with a non-zero exit."""


def _os_failure(action, path, exc):
    reason = exc.strerror or type(exc).__name__
    return CommandError(f"cannot {action} {path}: {reason}")


def _write(target, data):
    """Writes a file whole (a temporary file renamed over it)."""
    temp = target + ".tmp"
    try:
        with open(temp, "wb") as out:
            out.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        os.replace(temp, target)
    except OSError as exc:
        try:
            os.remove(temp)
        except OSError:
            pass
        raise _os_failure("write", target, exc) from None


def write_startup(directory, hook):
    """Writes epcache-startup.bin, then the .pth line that runs it (so the
    line never names a file that is not there yet); returns the .pth path."""
    directory = os.path.abspath(directory)
    code_file = os.path.join(directory, CODE_NAME)
    target = os.path.join(directory, PTH_NAME)
    _write(code_file, startup_code(hook))
    try:
        _write(target, pth_line(code_file))
    except CommandError:
        if not os.path.exists(target):
            _remove([code_file])
        raise
    return target


def _compile(module):
    """Writes the module's .pyc now, even under PYTHONDONTWRITEBYTECODE or
    after `pip install --no-compile`, so that no interpreter start compiles
    it. Best effort."""
    import importlib.util
    import py_compile

    try:
        py_compile.compile(module, cfile=importlib.util.cache_from_source(module), doraise=True)
    except (OSError, py_compile.PyCompileError):
        pass


def _legacy_files(directory):
    import importlib.util

    module = os.path.join(directory, LEGACY_MODULE + ".py")
    return [module, importlib.util.cache_from_source(module)]


def _remove(paths):
    """Removes the files that exist; returns those removed."""
    removed = []
    for path in paths:
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _os_failure("remove", path, exc) from None
    return removed


def enable(args):
    directory = args.site_packages or site_packages()
    if not os.path.isdir(directory):
        raise CommandError(f"{directory} is not a directory")
    hook = hook_path()
    _compile(hook)
    target = write_startup(directory, hook)
    _remove(_legacy_files(directory))
    print(f"enabled: {target}")
    if not args.no_rebuild:
        # Writing the file changed site-packages; index it again right away.
        return rebuild(argparse.Namespace(paths=[], json=False, quiet=True))
    return 0


def disable(args):
    directory = args.site_packages or site_packages()
    target = os.path.join(directory, PTH_NAME)
    # The line first: an interpreter starting meanwhile finds either both
    # files or no line.
    removed = _remove([target, os.path.join(directory, CODE_NAME)] + _legacy_files(directory))
    if target not in removed:
        print(f"not enabled: no {target}")
        return 0
    print(f"disabled: removed {target}")
    return 0


def rebuild(args):
    import epcache

    results = epcache.rebuild(args.paths or default_paths())
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        if args.quiet and r["verdict"] == "no-entry":
            continue
        publish = r["publish"] or r["verdict"]
        path_entry = r["path_entry"] or repr(r["path_entry"])
        print(f"{publish:<22} {r['distributions']:>5} dists  {path_entry}")
        if not args.quiet and r["publish"] not in ("published", "published-provisional", None):
            print(f"{'':<22} {r['text']}")
    return 0


def status(args):
    import epcache

    results = epcache.status(args.paths or default_paths())
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        dists = "" if r["distributions"] is None else f"{r['distributions']} dists"
        print(f"{r['verdict']:<22} {dists:>11}  {r['path_entry'] or repr(r['path_entry'])}")
        if r["verdict"] not in ("hit", "no-entry"):
            print(f"{'':<22} {r['reason']}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m epcache",
        description="Make importlib.metadata answer from epcache's index cache.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("enable", help="install epcache into every interpreter start of this environment")
    p.add_argument("--site-packages", metavar="DIR", help="where to write the .pth file (default: this environment's)")
    p.add_argument("--no-rebuild", action="store_true", help="do not rebuild the indexes afterwards")
    p.set_defaults(func=enable)
    p = sub.add_parser("disable", help="remove the files that enable wrote")
    p.add_argument("--site-packages", metavar="DIR")
    p.set_defaults(func=disable)
    for name, func, text in (
        ("rebuild", rebuild, "rebuild the indexes of this interpreter's sys.path"),
        ("status", status, "show what the cache holds for this interpreter's sys.path"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("paths", nargs="*", metavar="PATH", help="path entries (default: sys.path)")
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func, quiet=False)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        # Output still buffered is written here, so a closed pipe is seen
        # inside this try rather than at interpreter exit.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader (`| head -1`) has what it wanted; that is no failure.
        # Point stdout at /dev/null so the exit-time flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except CommandError as exc:
        return _fail(args.command, str(exc))
    except (OSError, ImportError, RuntimeError) as exc:
        return _fail(args.command, f"{type(exc).__name__}: {exc}")


def _fail(command, message):
    print(f"python -m epcache {command}: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
