"""A read-only FUSE passthrough that can be slow and can fail on purpose.

Usage::

    python3 tests/fuse/faultfs.py SOURCE MOUNTPOINT [--foreground]
        [--delay-us N] [--eio GLOB]... [--eio-open GLOB]...
        [--faults-while FILE]

Mounts SOURCE, read-only, at MOUNTPOINT and serves it as it is, so that a
program sees the same tree either way except where told otherwise:

* ``--delay-us N`` sleeps N microseconds in every getattr, readdir, open
  and read, to make a slow file system (a network mount, a cold disk).
* ``--eio GLOB`` (repeatable) makes reads fail with EIO: ``read`` of a
  file, ``readdir`` of a directory, whose path relative to SOURCE matches
  GLOB (``fnmatch``, where ``*`` also matches ``/``; SOURCE itself is
  ``.``). Opening it still works, as on a disk with a bad sector.
* ``--eio-open GLOB`` (repeatable) makes ``open``/``opendir`` of matching
  paths fail with EIO instead.
* ``--attr-timeout SECS`` is how long the kernel may keep attributes and
  names it looked up (FUSE's ``attr_timeout`` and ``entry_timeout``;
  libfuse's default is 1 s). 0 sends every lookup and ``stat`` to the
  harness, as a network file system with attribute caching off; 60 is
  NFS's longest directory attribute cache (``acdirmax``).
* ``--faults-while FILE`` injects the EIO faults only while FILE exists
  (checked on every operation), so a test can heal the mount without
  remounting it (a new mount would also change the device number).

Inode numbers and modes are SOURCE's own, in ``getattr`` and in ``readdir``
alike (the mount uses ``use_ino``), so that a program listing the mount
with ``getdents`` sees what it would see listing SOURCE; only ``st_dev``
differs.

Readiness: nothing is printed (only errors, on stderr). The mount is ready
once MOUNTPOINT's ``st_dev`` differs from its parent's; a caller polls for
that, with a bounded wait. SIGTERM, SIGINT or SIGHUP unmounts (lazily if
the mount is busy) and exits 0.

Run it in the foreground (``--foreground``) when its caller owns its
lifetime; without it libfuse detaches into the background once mounted.
Mounting as root needs only /dev/fuse; other users need ``fusermount3``.
"""

import argparse
import ctypes
import errno
import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

try:
    import mfusepy as fuse
except (ImportError, OSError) as exc:  # OSError: libfuse itself is missing
    sys.exit(f"faultfs: cannot load mfusepy/libfuse: {exc}")

#: ``umount2``'s flag for a lazy unmount.
MNT_DETACH = 2

#: The fields of ``os.lstat`` that ``getattr`` passes on.
STAT_FIELDS = ("st_mode", "st_ino", "st_nlink", "st_uid", "st_gid", "st_size", "st_blocks")

#: Timestamps, which mfusepy takes as ``st_mtime`` in nanoseconds (``use_ns``).
TIME_FIELDS = ("st_atime", "st_mtime", "st_ctime")


class FaultFS(fuse.Operations):
    """Serves ``source`` read-only, with optional delays and EIO faults."""

    use_ns = True

    def __init__(self, source, delay_us=0, eio=(), eio_open=(), faults_while=None):
        self.source = os.path.realpath(source)
        self.delay = delay_us / 1_000_000
        self.eio = list(eio)
        self.eio_open = list(eio_open)
        self.faults_while = faults_while

    # -- helpers ------------------------------------------------------------

    def _real(self, path):
        """SOURCE's path for a mount path (which starts with ``/``)."""
        return os.path.join(self.source, path.lstrip("/"))

    @staticmethod
    def _relative(path):
        """The path GLOBs are matched against: ``.`` for the root."""
        return path.strip("/") or "."

    def _slow(self):
        if self.delay:
            time.sleep(self.delay)

    def _faulty(self, globs, path):
        """Whether ``path`` matches one of ``globs`` while faults are on."""
        if not globs:
            return False
        if self.faults_while is not None and not os.path.lexists(self.faults_while):
            return False
        relative = self._relative(path)
        return any(fnmatch.fnmatchcase(relative, glob) for glob in globs)

    def _fail_if(self, globs, path):
        if self._faulty(globs, path):
            raise fuse.FuseOSError(errno.EIO)

    @staticmethod
    def _attrs(stat):
        attrs = {field: getattr(stat, field) for field in STAT_FIELDS}
        attrs.update({field: getattr(stat, field + "_ns") for field in TIME_FIELDS})
        return attrs

    # -- operations -----------------------------------------------------------
    # An OSError raised here (from ``os``) reaches the caller as its errno:
    # mfusepy turns it into the reply, logging it at debug level only.

    def getattr(self, path, fh=None):
        self._slow()
        return self._attrs(os.lstat(self._real(path)))

    def readlink(self, path):
        return os.readlink(self._real(path))

    def statfs(self, path):
        stv = os.statvfs(self._real(path))
        return {
            key: getattr(stv, key)
            for key in (
                "f_bavail",
                "f_bfree",
                "f_blocks",
                "f_bsize",
                "f_favail",
                "f_ffree",
                "f_files",
                "f_flag",
                "f_frsize",
                "f_namemax",
            )
        }

    def opendir(self, path):
        self._slow()
        self._fail_if(self.eio_open, path)
        if not os.path.isdir(self._real(path)):
            raise fuse.FuseOSError(errno.ENOTDIR)
        return 0  # readdir lists by path: no handle needed

    def readdir(self, path, fh):
        self._slow()
        self._fail_if(self.eio, path)
        real = self._real(path)
        # The kernel ignores what ".." says; it is SOURCE's parent here.
        entries = [
            (".", self._dirent(os.lstat(real)), 0),
            ("..", self._dirent(os.lstat(os.path.dirname(real.rstrip("/")))), 0),
        ]
        with os.scandir(real) as listing:
            for entry in listing:
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while being listed
                entries.append((entry.name, self._dirent(stat), 0))
        return entries

    @staticmethod
    def _dirent(stat):
        """What ``readdir`` reports of an entry: its inode and mode."""
        return {"st_ino": stat.st_ino, "st_mode": stat.st_mode}

    def releasedir(self, path, fh):
        return 0

    def open(self, path, flags):
        self._slow()
        if flags & (os.O_WRONLY | os.O_RDWR):
            raise fuse.FuseOSError(errno.EROFS)
        self._fail_if(self.eio_open, path)
        return os.open(self._real(path), os.O_RDONLY | os.O_NOFOLLOW)

    def read(self, path, size, offset, fh):
        self._slow()
        self._fail_if(self.eio, path)
        return os.pread(fh, size, offset)

    def release(self, path, fh):
        os.close(fh)
        return 0

    def access(self, path, amode):
        if amode & os.W_OK:
            raise fuse.FuseOSError(errno.EROFS)
        if not os.access(self._real(path), amode, follow_symlinks=False):
            raise fuse.FuseOSError(errno.EACCES)
        return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="faultfs",
        description="Mount SOURCE read-only at MOUNTPOINT, optionally slow and failing.",
    )
    parser.add_argument("source", help="the directory to serve")
    parser.add_argument("mountpoint", help="an empty directory to mount it at")
    parser.add_argument(
        "--foreground", action="store_true", help="stay in the foreground until unmounted"
    )
    parser.add_argument(
        "--delay-us",
        type=int,
        default=0,
        metavar="N",
        help="sleep N microseconds in every getattr, readdir, open and read",
    )
    parser.add_argument(
        "--eio",
        action="append",
        default=[],
        metavar="GLOB",
        help="read/readdir of matching paths (relative to SOURCE, root is '.') fail with EIO",
    )
    parser.add_argument(
        "--eio-open",
        action="append",
        default=[],
        metavar="GLOB",
        help="open/opendir of matching paths fail with EIO",
    )
    parser.add_argument(
        "--faults-while",
        metavar="FILE",
        help="inject EIO faults only while FILE exists",
    )
    parser.add_argument(
        "--attr-timeout",
        type=float,
        metavar="SECS",
        help="how long the kernel keeps attributes and names (attr_timeout, entry_timeout)",
    )
    args = parser.parse_args(argv)
    if args.attr_timeout is not None and args.attr_timeout < 0:
        parser.error("--attr-timeout must not be negative")
    if args.delay_us < 0:
        parser.error("--delay-us must not be negative")
    if not os.path.isdir(args.source):
        parser.error(f"source {args.source!r} is not a directory")
    if not os.path.isdir(args.mountpoint):
        parser.error(f"mount point {args.mountpoint!r} is not a directory")
    return args


#: The signals that unmount the file system.
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def unmount(mountpoint):
    """Unmounts ``mountpoint``, lazily if it is busy; FUSE's loop then ends."""
    if shutil.which("fusermount3"):
        for flags in ("-u", "-uz"):
            done = subprocess.run(
                ["fusermount3", flags, "-q", mountpoint], stderr=subprocess.DEVNULL, check=False
            )
            if done.returncode == 0:
                return
    libc = ctypes.CDLL(None, use_errno=True)
    for flags in (0, MNT_DETACH):
        if libc.umount2(os.fsencode(mountpoint), flags) == 0:
            return
    err = ctypes.get_errno()
    print(f"faultfs: cannot unmount {mountpoint}: {os.strerror(err)}", file=sys.stderr)


def unmount_on_signal(mountpoint):
    """Waits for one of STOP_SIGNALS (blocked in every thread), then unmounts."""
    signal.sigwait(STOP_SIGNALS)
    unmount(mountpoint)


class StoppableFaultFS(FaultFS):
    """FaultFS that unmounts itself on SIGTERM, SIGINT or SIGHUP.

    libfuse's own handlers would end the loop with an error (mfusepy then
    raises ``RuntimeError(8)``), and Python's run only in the main thread,
    which stays inside libfuse. So the signals are blocked in every thread
    and one thread, started once mounted (after libfuse may have forked into
    the background), waits for them and unmounts: the loop then ends
    normally.
    """

    def __init__(self, mountpoint, **options):
        super().__init__(**options)
        self.mountpoint = os.path.abspath(mountpoint)

    def init(self, path):
        threading.Thread(target=unmount_on_signal, args=(self.mountpoint,), daemon=True).start()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    operations = StoppableFaultFS(
        args.mountpoint,
        source=args.source,
        delay_us=args.delay_us,
        eio=args.eio,
        eio_open=args.eio_open,
        faults_while=args.faults_while,
    )
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    timeouts = {}
    if args.attr_timeout is not None:
        timeouts = {"attr_timeout": args.attr_timeout, "entry_timeout": args.attr_timeout}
    fuse.FUSE(
        operations,
        args.mountpoint,
        foreground=args.foreground,
        ro=True,
        use_ino=True,
        fsname="faultfs",
        subtype="faultfs",
        # Many requests in flight (a reader may keep dozens going, as over
        # NFS). libfuse 3.14 complains about its own defaults without these.
        max_threads=64,
        max_idle_threads=64,
        **timeouts,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
