"""``python -m epcache enable|disable|rebuild|status``.

enable   write epcache-startup.pth into this environment's site-packages,
         so every interpreter start calls epcache.install(); then rebuild
disable  remove that file
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
# The module the .pth line imports: a copy of epcache/_startup.py written
# beside it. A top-level module costs an interpreter start half of what
# importing the epcache package and a module in it does (the package's
# spec, loader and __init__ come on top), and needs no try around it: it
# imports nothing of epcache until importlib.metadata is imported, and
# copes then if epcache has been removed without `disable`.
STARTUP_MODULE = "_epcache_startup"
# One line: site.py executes lines that start with "import".
PTH_LINE = f"import {STARTUP_MODULE}\n"


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


def _write(target, text):
    """Writes a file whole (a temporary file renamed over it)."""
    temp = target + ".tmp"
    try:
        with open(temp, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, target)
    except OSError as exc:
        try:
            os.remove(temp)
        except OSError:
            pass
        raise _os_failure("write", target, exc) from None


def _startup_source():
    with open(os.path.join(os.path.dirname(__file__), "_startup.py"), encoding="utf-8") as f:
        return f.read()


def _compile(module):
    """Writes the module's .pyc now (even under PYTHONDONTWRITEBYTECODE), so
    that no interpreter start compiles it. Best effort."""
    import importlib.util
    import py_compile

    try:
        py_compile.compile(module, cfile=importlib.util.cache_from_source(module), doraise=True)
    except (OSError, py_compile.PyCompileError):
        pass


def _startup_files(directory):
    module = os.path.join(directory, STARTUP_MODULE + ".py")
    import importlib.util

    return os.path.join(directory, PTH_NAME), module, importlib.util.cache_from_source(module)


def enable(args):
    directory = args.site_packages or site_packages()
    if not os.path.isdir(directory):
        raise CommandError(f"{directory} is not a directory")
    target, module, _ = _startup_files(directory)
    # The module first: the .pth line must never name a missing module.
    _write(module, _startup_source())
    _compile(module)
    _write(target, PTH_LINE)
    print(f"enabled: {target}")
    if not args.no_rebuild:
        # Writing the file changed site-packages; index it again right away.
        return rebuild(argparse.Namespace(paths=[], json=False, quiet=True))
    return 0


def disable(args):
    directory = args.site_packages or site_packages()
    target, module, cached = _startup_files(directory)
    # The .pth line first: it must never name a missing module.
    removed = []
    for path in (target, module, cached):
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _os_failure("remove", path, exc) from None
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
        if args.quiet and r["lookup"] == "no-entry":
            continue
        publish = r["publish"] or r["lookup"]
        print(f"{publish:<22} {r['distributions']:>5} dists  {r['path'] or repr(r['path'])}")
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
        print(f"{r['lookup']:<22} {dists:>11}  {r['path'] or repr(r['path'])}")
        if r["lookup"] not in ("hit", "no-entry"):
            print(f"{'':<22} {r['text']}")
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
    p = sub.add_parser("disable", help="remove the .pth file that enable wrote")
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
