"""Installers rebuild without being asked.

pip (and any installer that runs in an interpreter with the hook loaded)
asks importlib.metadata what is installed before it changes a path entry.
So every process that *queried* remembers, for each path entry it
consulted, the key its answer described (taken by the native module during
the consult: mtime and ctime in ns, inode, size; no ``stat`` of its own).
At exit it takes each key
again; for the entries whose key differs, and whose index is not already a
hit (someone else rebuilt it), it rebuilds the index, exactly as
``python -m epcache rebuild`` does: inside the settle time that publishes a
provisional index, which the next interpreter verifies (``hit-verified``)
instead of scanning.

Costs: nothing for a process that never queried (this module is loaded by
``epcache._api``, on the first query); for one that queried but changed
nothing, one ``stat`` per consulted entry at exit. Nothing at all when the
cache is disabled (``EPCACHE_DISABLE``). Nothing here ever raises.
"""

import os

# (path entry as given, cwd for a relative entry else None) -> key or None
_keys = {}
_last = None  # the last snapshot recorded
_state = None  # None: not yet decided; True: recording; False: disabled
# What the exit handler rebuilt: [path, lookup code, publish code] per entry
# (in the EPCACHE_TRACE line as "exit_rebuilds").
rebuilt = []


def _key(path):
    try:
        st = os.stat(path or ".")
    except (OSError, ValueError):
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size)


def consulted(snap, native):
    """Records the keys of ``snap``'s path entries not seen before. Called
    by ``epcache._api`` for each new snapshot (not for a reused one)."""
    global _last, _state
    try:
        if snap is _last or _state is False:
            return
        _last = snap
        if _state is None:
            if native.cache_dir() is None:
                _state = False  # the cache is disabled: nothing to rebuild
                return
            import atexit

            atexit.register(_at_exit, os.getpid(), native)
            _state = True
        cwd = None
        for entry, key in zip(snap.path_entries(), snap.keys()):
            if type(entry) is not str:
                continue
            where = None
            if not os.path.isabs(entry):
                if cwd is None:
                    cwd = os.getcwd()
                where = cwd
            if (entry, where) not in _keys:
                _keys[(entry, where)] = key
    except Exception:
        pass


def changed():
    """The recorded path entries whose key is not the one first seen and
    that still exist (relative ones only while the cwd is the same)."""
    out = []
    cwd = None
    for (entry, where), key in list(_keys.items()):
        if where is not None:
            if cwd is None:
                try:
                    cwd = os.getcwd()
                except OSError:
                    cwd = ""
            if where != cwd:
                continue
        now = _key(entry)
        if now is not None and now != key:
            out.append(entry)
    return out


def _at_exit(pid, native):
    try:
        if os.getpid() != pid:
            return  # a forked child: its parent does this
        paths = changed()
        if not paths or native.cache_dir() is None:
            return
        stale = [s["path_entry"] for s in native.status(paths) if not s["hit"]]
        if stale:
            for row in native.rebuild(stale):
                rebuilt.append([row[0], row[1], row[2]])
    except BaseException:  # noqa: B036  (at exit, nothing may escape)
        pass
