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
# What enable wrote before the .pth line loaded epcache._hook by its path:
# a copy of the startup code as a top-level module beside the .pth file.
# enable and disable remove it.
LEGACY_MODULE = "_epcache_startup"



def hook_path():
    """The installed epcache/_hook.py, which the .pth line's finder loads."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_hook.py")


def pth_line(hook):
    """The one line of epcache-startup.pth: epcache/_startup.py, compiled
    for this interpreter and marshalled, run with ``HOOK = hook``.

    site.py executes a .pth line that starts with ``import``. Carrying the
    code in the line means an interpreter start reads no other file and
    searches nothing for it; see _startup.py. The code is hex, which the
    parser reads faster than escaped bytes, and runs only under the
    bytecode it was compiled for (its magic number, which does not change
    within a Python minor version); an interpreter with another one stays
    stock until `enable` runs again under it.
    """
    import _frozen_importlib_external as external
    import marshal

    source_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_startup.py")
    with open(source_path, encoding="utf-8") as f:
        code = compile(f.read(), source_path, "exec", dont_inherit=True)
    # ascii(): site.py reads the file in the locale's encoding, so every
    # literal must be ASCII; and a line must not hold a newline.
    return (
        "import sys, marshal, _frozen_importlib_external as e; "
        f"e.MAGIC_NUMBER == {ascii(external.MAGIC_NUMBER)} and "
        f"exec(marshal.loads(bytes.fromhex('{marshal.dumps(code).hex()}')), "
        f"{{'sys': sys, 'HOOK': {ascii(hook)}}})\n"
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
    target = os.path.join(directory, PTH_NAME)
    hook = hook_path()
    _compile(hook)
    _write(target, pth_line(hook))
    _remove(_legacy_files(directory))
    print(f"enabled: {target}")
    if not args.no_rebuild:
        # Writing the file changed site-packages; index it again right away.
        return rebuild(argparse.Namespace(paths=[], json=False, quiet=True))
    return 0


def disable(args):
    directory = args.site_packages or site_packages()
    target = os.path.join(directory, PTH_NAME)
    removed = _remove([target] + _legacy_files(directory))
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
