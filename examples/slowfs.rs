//! A read-only FUSE passthrough file system that answers every request
//! after a fixed delay: a slow network file system (NFS, sshfs) on one
//! machine, for benchmarks and tests.
//!
//! ```text
//! cargo run --release --example slowfs -- SOURCE MOUNTPOINT \
//!     [--delay-us N] [--attr-timeout SECS] [--threads N]
//! ```
//!
//! A local disk answers a `stat` from the page cache in a microsecond, which
//! hides what a cache saves where every `stat`, `open` and `getdents` is a
//! round trip. slowfs serves SOURCE at MOUNTPOINT and sleeps `--delay-us`
//! (default 0) before answering each lookup, getattr, open, opendir, read,
//! readdir, readlink and statfs, so that round trips show up as time.
//! `--attr-timeout` (seconds, default 1) is how long the kernel may cache
//! attributes and names; 0 sends every path walk and `stat` to slowfs, like
//! NFS mounted with `noac`.
//!
//! Nothing is printed on success. The mount is ready once MOUNTPOINT's
//! `st_dev` differs from its parent's. SIGTERM or SIGINT unmounts and exits
//! 0. As root the mount is made through fusermount3's `auto_unmount` as
//! well, so that a slowfs killed by a test harness does not leave a dead
//! mount ("Transport endpoint is not connected") behind.
//!
//! # Concurrency
//!
//! A network file system has many requests in flight at once, each paying
//! the latency; serving them one after another would model a much slower
//! server than intended. fuser reads requests on one thread, and slowfs
//! hands each, with its reply, to a pool of `--threads` workers (default 64)
//! that sleep, do the real system call and reply: 64 concurrent requests
//! take one delay, not 64. The kernel is allowed as many background
//! requests (async reads, readahead) in flight as there are workers, not
//! fuser's 16, and, where it supports it, to send lookups and readdirs of one
//! directory in parallel, which it otherwise serializes. Releases and
//! forgets are answered on the reading thread without delay: the kernel
//! does not wait for them.
//!
//! # Inode numbers
//!
//! The mount shows SOURCE's inode numbers in `stat` and getdents, and
//! getdents lists a directory in SOURCE's order, "." and ".." where SOURCE
//! has them, so that tools comparing identities or order see the same tree.
//! fuser reports an entry's nodeid (the kernel's handle for the inode) as its
//! `st_ino`, so the nodeid is the real `st_ino`, with three exceptions. The
//! root must be nodeid 1 (its getattr still reports the real number). A
//! file whose `st_ino` is 1, or that lives on another device (under a mount
//! point inside SOURCE, where numbers may repeat), gets a nodeid counted up
//! from 2^63, and `stat` shows that; getdents still shows the real `d_ino`.
//! Nodeids are never forgotten; a benchmark tree is small.
//!
//! If SOURCE changes under the mount and a name comes to mean another file,
//! requests on the old nodeid fail with ESTALE, as NFS's do, and the kernel
//! looks the name up again.

#[cfg(target_os = "linux")]
fn main() {
    slowfs::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("slowfs: FUSE examples run on Linux only");
    std::process::exit(1);
}

#[cfg(target_os = "linux")]
mod slowfs {
    use std::collections::HashMap;
    use std::ffi::{OsStr, OsString};
    use std::fs::{File, Metadata};
    use std::io;
    use std::os::unix::ffi::OsStrExt as _;
    use std::os::unix::fs::{FileExt as _, MetadataExt as _};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc::{self, Sender};
    use std::sync::{Arc, Mutex, RwLock};
    use std::thread;
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use fuser::{
        Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
        InitFlags, KernelConfig, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData,
        ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, Request, SessionACL,
    };
    use nix::mount::{umount2, MntFlags};
    use nix::sys::signal::{SigSet, Signal};
    use rustix::fs::FileType as RawType;

    const USAGE: &str =
        "usage: slowfs SOURCE MOUNTPOINT [--delay-us N] [--attr-timeout SECS] [--threads N]";

    /// Where synthetic nodeids start; real inode numbers stay far below.
    const SYNTHETIC: u64 = 1 << 63;

    struct Args {
        source: PathBuf,
        mountpoint: PathBuf,
        delay: Duration,
        ttl: Duration,
        threads: usize,
    }

    /// `Ok(None)` is `--help`.
    fn parse_args(mut args: impl Iterator<Item = OsString>) -> Result<Option<Args>, String> {
        let mut positional = Vec::new();
        let mut delay = Duration::ZERO;
        let mut ttl = Duration::from_secs(1);
        let mut threads = 64usize;
        while let Some(arg) = args.next() {
            if arg == "-h" {
                return Ok(None);
            }
            let Some(flag) = arg.to_str().filter(|a| a.starts_with("--")) else {
                positional.push(PathBuf::from(arg));
                continue;
            };
            if flag == "--help" {
                return Ok(None);
            }
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (flag, None),
            };
            let value = match inline {
                Some(value) => value,
                None => args
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| format!("{name} needs a value"))?,
            };
            let bad = || format!("bad value for {name}: {value:?}");
            match name {
                "--delay-us" => {
                    delay = Duration::from_micros(value.parse().map_err(|_| bad())?);
                }
                "--attr-timeout" => {
                    let secs: f64 = value.parse().map_err(|_| bad())?;
                    ttl = Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
                }
                "--threads" => {
                    threads = value.parse().map_err(|_| bad())?;
                    if threads == 0 {
                        return Err(bad());
                    }
                }
                _ => return Err(format!("unknown option {name}")),
            }
        }
        let [source, mountpoint] = <[PathBuf; 2]>::try_from(positional)
            .map_err(|_| "expected SOURCE and MOUNTPOINT".to_owned())?;
        Ok(Some(Args {
            source,
            mountpoint,
            delay,
            ttl,
            threads,
        }))
    }

    enum Stop {
        Signal,
        /// The session ended: unmounted by us or by someone else.
        Ended,
    }

    pub(super) fn main() {
        let args = match parse_args(std::env::args_os().skip(1)) {
            Ok(Some(args)) => args,
            Ok(None) => {
                println!("{USAGE}");
                return;
            }
            Err(message) => {
                eprintln!("slowfs: {message}; {USAGE}");
                std::process::exit(2);
            }
        };
        if let Err(e) = run(args) {
            eprintln!("slowfs: {e}");
            std::process::exit(1);
        }
    }

    fn run(args: Args) -> io::Result<()> {
        // Blocked before any thread exists, so that every thread inherits the
        // mask and the signals wait for `sigwait` instead of killing the
        // process with the mount still up.
        let mut signals = SigSet::empty();
        signals.add(Signal::SIGINT);
        signals.add(Signal::SIGTERM);
        signals.thread_block()?;

        let source = args
            .source
            .canonicalize()
            .map_err(in_path("SOURCE", &args.source))?;
        let root = std::fs::symlink_metadata(&source).map_err(in_path("SOURCE", &source))?;
        if !root.is_dir() {
            return Err(in_path("SOURCE", &source)(
                io::ErrorKind::NotADirectory.into(),
            ));
        }
        // Unmounting below needs the path that fuser mounts on.
        let mountpoint = args
            .mountpoint
            .canonicalize()
            .map_err(in_path("MOUNTPOINT", &args.mountpoint))?;

        let (stop_tx, stop_rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            source: source.clone(),
            root: (root.dev(), root.ino()),
            ttl: args.ttl,
            nodes: RwLock::new(HashMap::from([(INodeNo::ROOT.0, source.clone())])),
            synthetic: Mutex::new(HashMap::new()),
            files: RwLock::new(HashMap::new()),
            dirs: RwLock::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        });
        let fs = SlowFs {
            jobs: spawn_workers(args.threads, args.delay, &shared)?,
            shared,
            threads: args.threads,
            _ended: NotifyOnDrop(stop_tx.clone()),
        };

        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::RO,
            MountOption::FSName("slowfs".into()),
            MountOption::Subtype("slowfs".into()),
        ];
        if nix::unistd::geteuid().is_root() {
            // fusermount3 lets only root use allow_other without
            // `user_allow_other`, and auto_unmount needs it; fuser still
            // refuses other users' requests.
            config.mount_options.push(MountOption::AutoUnmount);
            config.acl = SessionACL::RootAndOwner;
        }
        let session =
            fuser::spawn_mount(fs, &mountpoint, &config).map_err(in_path("mount", &mountpoint))?;

        thread::Builder::new()
            .name("slowfs-signals".into())
            .spawn(move || {
                if signals.wait().is_ok() {
                    let _ = stop_tx.send(Stop::Signal);
                }
            })?;

        if let Ok(Stop::Ended) = stop_rx.recv() {
            // Unmounted from outside: nothing left to clean up.
            return Ok(());
        }
        // With auto_unmount, fuser "unmounts" by closing fusermount3's
        // socket, and fusermount3 then unmounts only a file system whose
        // daemon has died, which this one has not; so unmount here first.
        // If it is busy (a shell inside), detach it, as `umount -l` would.
        // Without privileges both fail, and dropping the session runs
        // `fusermount3 -u -z` instead.
        if umount2(&mountpoint, MntFlags::empty()).is_err() {
            let _ = umount2(&mountpoint, MntFlags::MNT_DETACH);
        }
        drop(session);
        // The session ends when the kernel lets go of the connection, at
        // once unless the mount was busy. Exiting before that would fail
        // the requests of whoever is still inside with ENOTCONN, so give
        // them a moment.
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match stop_rx.recv_timeout(left) {
                Ok(Stop::Signal) => continue,
                Ok(Stop::Ended) | Err(_) => break,
            }
        }
        Ok(())
    }

    /// Names the path in an error, which std's messages leave out.
    fn in_path(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> io::Error {
        let path = path.display().to_string();
        move |e| io::Error::new(e.kind(), format!("{what} {path}: {e}"))
    }

    /// Tells `run` that the session is over: fuser drops the file system when
    /// its session loop ends, whoever unmounted it.
    struct NotifyOnDrop(Sender<Stop>);

    impl Drop for NotifyOnDrop {
        fn drop(&mut self) {
            let _ = self.0.send(Stop::Ended);
        }
    }

    type Job = Box<dyn FnOnce(&Shared) + Send>;

    fn spawn_workers(n: usize, delay: Duration, shared: &Arc<Shared>) -> io::Result<Sender<Job>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let rx = Arc::clone(&rx);
            let shared = Arc::clone(shared);
            thread::Builder::new()
                .name(format!("slowfs-{i}"))
                .stack_size(256 << 10)
                .spawn(move || {
                    // The default 50 µs of timer slack would add a quarter to
                    // a 200 µs delay.
                    let _ = nix::sys::prctl::set_timerslack(1);
                    loop {
                        let job = match rx.lock().map(|rx| rx.recv()) {
                            Ok(Ok(job)) => job,
                            // The session is over.
                            _ => return,
                        };
                        if !delay.is_zero() {
                            thread::sleep(delay);
                        }
                        job(&shared);
                    }
                })?;
        }
        Ok(tx)
    }

    struct SlowFs {
        shared: Arc<Shared>,
        jobs: Sender<Job>,
        threads: usize,
        _ended: NotifyOnDrop,
    }

    struct Shared {
        source: PathBuf,
        /// SOURCE's (st_dev, st_ino).
        root: (u64, u64),
        ttl: Duration,
        /// nodeid → path. Hard links share a nodeid and whichever path was
        /// looked up last, which names the same file.
        nodes: RwLock<HashMap<u64, PathBuf>>,
        /// (st_dev, st_ino) → nodeid, for files that cannot use their st_ino.
        synthetic: Mutex<HashMap<(u64, u64), u64>>,
        files: RwLock<HashMap<u64, Arc<File>>>,
        /// A directory's entries, read in full at opendir so that readdir's
        /// offsets stay valid while SOURCE changes.
        dirs: RwLock<HashMap<u64, Arc<Vec<DirEnt>>>>,
        next_fh: AtomicU64,
    }

    struct DirEnt {
        ino: u64,
        kind: FileType,
        name: OsString,
    }

    impl SlowFs {
        fn submit(&self, job: impl FnOnce(&Shared) + Send + 'static) {
            // Fails only once the workers are gone, at the end of the
            // session; the dropped reply then answers EIO.
            let _ = self.jobs.send(Box::new(job));
        }
    }

    impl Shared {
        fn node_id(&self, md: &Metadata) -> u64 {
            let key = (md.dev(), md.ino());
            if key == self.root {
                return INodeNo::ROOT.0;
            }
            if key.0 == self.root.0 && key.1 != INodeNo::ROOT.0 {
                return key.1;
            }
            let mut synthetic = self.synthetic.lock().unwrap();
            let next = SYNTHETIC + synthetic.len() as u64;
            *synthetic.entry(key).or_insert(next)
        }

        fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
            let nodes = self.nodes.read().unwrap();
            nodes.get(&ino.0).cloned().ok_or(Errno::ESTALE)
        }

        /// `md` is what `ino`'s path names now; a different file means the
        /// name was replaced in SOURCE since the kernel looked it up.
        fn check(&self, ino: INodeNo, md: &Metadata) -> Result<(), Errno> {
            if ino == INodeNo::ROOT || self.node_id(md) == ino.0 {
                Ok(())
            } else {
                Err(Errno::ESTALE)
            }
        }

        fn new_fh(&self) -> u64 {
            self.next_fh.fetch_add(1, Ordering::Relaxed)
        }

        fn lookup(&self, parent: INodeNo, name: &OsStr) -> Result<FileAttr, Errno> {
            let path = self.path(parent)?.join(name);
            let md = std::fs::symlink_metadata(&path)?;
            let id = self.node_id(&md);
            // SOURCE itself again, through a bind mount inside it: keep the
            // root's own path.
            if id != INodeNo::ROOT.0 {
                self.nodes.write().unwrap().insert(id, path);
            }
            Ok(attr(id, &md))
        }

        fn getattr(&self, ino: INodeNo) -> Result<FileAttr, Errno> {
            let md = std::fs::symlink_metadata(self.path(ino)?)?;
            self.check(ino, &md)?;
            // The root's nodeid is 1, but `stat` should show SOURCE's number.
            let shown = if ino == INodeNo::ROOT {
                md.ino()
            } else {
                ino.0
            };
            Ok(attr(shown, &md))
        }

        fn readlink(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
            Ok(std::fs::read_link(self.path(ino)?)?)
        }

        fn open(&self, ino: INodeNo) -> Result<FileHandle, Errno> {
            let file = File::open(self.path(ino)?)?;
            self.check(ino, &file.metadata()?)?;
            let fh = self.new_fh();
            self.files.write().unwrap().insert(fh, Arc::new(file));
            Ok(FileHandle(fh))
        }

        fn read(&self, fh: FileHandle, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
            let file = self.files.read().unwrap().get(&fh.0).cloned();
            let file = file.ok_or(Errno::EBADF)?;
            let mut buf = vec![0; size as usize];
            let mut done = 0;
            // read_at may stop short of EOF; a short reply means EOF to the
            // kernel.
            while done < buf.len() {
                match file.read_at(&mut buf[done..], offset + done as u64) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            buf.truncate(done);
            Ok(buf)
        }

        fn opendir(&self, ino: INodeNo) -> Result<FileHandle, Errno> {
            let path = self.path(ino)?;
            let dir = File::open(&path)?;
            let md = dir.metadata()?;
            self.check(ino, &md)?;
            if !md.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            // rustix rather than std::fs::read_dir, which drops "." and "..":
            // getdents' order, d_ino and d_type, all of them.
            let mut entries = Vec::new();
            let mut dir = rustix::fs::Dir::new(dir).map_err(errno)?;
            while let Some(entry) = dir.read() {
                let entry = entry.map_err(errno)?;
                let name = OsStr::from_bytes(entry.file_name().to_bytes()).to_owned();
                let kind = match entry.file_type() {
                    RawType::RegularFile => FileType::RegularFile,
                    RawType::Directory => FileType::Directory,
                    RawType::Symlink => FileType::Symlink,
                    RawType::Fifo => FileType::NamedPipe,
                    RawType::Socket => FileType::Socket,
                    RawType::CharacterDevice => FileType::CharDevice,
                    RawType::BlockDevice => FileType::BlockDevice,
                    // DT_UNKNOWN: the file system leaves it to a stat.
                    RawType::Unknown => std::fs::symlink_metadata(path.join(&name))
                        .ok()
                        .and_then(|md| FileType::from_std(md.file_type()))
                        .unwrap_or(FileType::RegularFile),
                };
                entries.push(DirEnt {
                    ino: entry.ino(),
                    kind,
                    name,
                });
            }
            let fh = self.new_fh();
            self.dirs.write().unwrap().insert(fh, Arc::new(entries));
            Ok(FileHandle(fh))
        }
    }

    fn errno(e: rustix::io::Errno) -> Errno {
        Errno::from_i32(e.raw_os_error())
    }

    fn attr(ino: u64, md: &Metadata) -> FileAttr {
        FileAttr {
            ino: INodeNo(ino),
            size: md.size(),
            blocks: md.blocks(),
            atime: time(md.atime(), md.atime_nsec()),
            mtime: time(md.mtime(), md.mtime_nsec()),
            ctime: time(md.ctime(), md.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: FileType::from_std(md.file_type()).unwrap_or(FileType::RegularFile),
            perm: (md.mode() & 0o7777) as u16,
            nlink: md.nlink() as u32,
            uid: md.uid(),
            gid: md.gid(),
            // glibc's dev_t agrees with the kernel's 32-bit encoding for
            // majors below 4096 and minors below 2^20.
            rdev: md.rdev() as u32,
            blksize: md.blksize() as u32,
            flags: 0,
        }
    }

    fn time(secs: i64, nsec: i64) -> SystemTime {
        let nsec = Duration::from_nanos(nsec as u64);
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64) + nsec
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + nsec
        }
    }

    impl Filesystem for SlowFs {
        fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
            let threads = u16::try_from(self.threads).unwrap_or(u16::MAX);
            let _ = config.set_max_background(threads);
            let _ = config.set_congestion_threshold(threads);
            // Older kernels lack it; they serialize per directory.
            let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
            Ok(())
        }

        fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
            let name = name.to_owned();
            self.submit(move |s| match s.lookup(parent, &name) {
                Ok(attr) => reply.entry(&s.ttl, &attr, Generation(0)),
                Err(e) => reply.error(e),
            });
        }

        fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
            self.submit(move |s| match s.getattr(ino) {
                Ok(attr) => reply.attr(&s.ttl, &attr),
                Err(e) => reply.error(e),
            });
        }

        fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
            self.submit(move |s| match s.readlink(ino) {
                Ok(target) => reply.data(target.as_os_str().as_bytes()),
                Err(e) => reply.error(e),
            });
        }

        fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
            // The mount is read-only, so the kernel refuses writers itself.
            self.submit(move |s| match s.open(ino) {
                Ok(fh) => reply.opened(fh, FopenFlags::empty()),
                Err(e) => reply.error(e),
            });
        }

        fn read(
            &self,
            _req: &Request,
            _ino: INodeNo,
            fh: FileHandle,
            offset: u64,
            size: u32,
            _flags: OpenFlags,
            _lock_owner: Option<LockOwner>,
            reply: ReplyData,
        ) {
            self.submit(move |s| match s.read(fh, offset, size) {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(e),
            });
        }

        fn release(
            &self,
            _req: &Request,
            _ino: INodeNo,
            fh: FileHandle,
            _flags: OpenFlags,
            _lock_owner: Option<LockOwner>,
            _flush: bool,
            reply: ReplyEmpty,
        ) {
            self.shared.files.write().unwrap().remove(&fh.0);
            reply.ok();
        }

        fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
            self.submit(move |s| match s.opendir(ino) {
                Ok(fh) => reply.opened(fh, FopenFlags::empty()),
                Err(e) => reply.error(e),
            });
        }

        fn readdir(
            &self,
            _req: &Request,
            _ino: INodeNo,
            fh: FileHandle,
            offset: u64,
            mut reply: ReplyDirectory,
        ) {
            self.submit(move |s| {
                let Some(entries) = s.dirs.read().unwrap().get(&fh.0).cloned() else {
                    return reply.error(Errno::EBADF);
                };
                // An entry's offset is where the next call resumes.
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                for (i, e) in entries.iter().enumerate().skip(start) {
                    if reply.add(INodeNo(e.ino), i as u64 + 1, e.kind, &e.name) {
                        break;
                    }
                }
                reply.ok();
            });
        }

        fn releasedir(
            &self,
            _req: &Request,
            _ino: INodeNo,
            fh: FileHandle,
            _flags: OpenFlags,
            reply: ReplyEmpty,
        ) {
            self.shared.dirs.write().unwrap().remove(&fh.0);
            reply.ok();
        }

        fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
            self.submit(move |s| match nix::sys::statvfs::statvfs(&s.source) {
                Ok(st) => reply.statfs(
                    st.blocks(),
                    st.blocks_free(),
                    st.blocks_available(),
                    st.files(),
                    st.files_free(),
                    st.block_size() as u32,
                    st.name_max() as u32,
                    st.fragment_size() as u32,
                ),
                Err(e) => reply.error(Errno::from_i32(e as i32)),
            });
        }
    }
}
