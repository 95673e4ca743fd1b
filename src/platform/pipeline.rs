//! Working on a directory listing while it is still being listed.
//!
//! Listing a big directory is not cheap: ext4 hashes every name of an
//! indexed directory on each listing, about 0.45 ms for 800 entries on the
//! development machine. Both the cold scan and the check of a provisional
//! index then do per-entry work (opening files, or stat-ing them) that can
//! start on the first entries while the rest are listed.
//!
//! [`process_while_listing`] runs the listing on the calling thread and
//! hands what it yields out in blocks. Helper threads, started as blocks
//! appear, take blocks as they come; once the listing is over the calling
//! thread takes blocks too. Each block's result comes back with it, in
//! listing order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::platform::FileSystem;

/// On a local file system, at most this many threads in all: beyond it the
/// kernel's directory and page-cache locks, not the CPUs, are the limit.
const MAX_LOCAL_THREADS: usize = 4;

/// Where each operation is a round trip (NFS, FUSE ...), this many threads
/// keep that many operations in flight: a thread spends its time waiting,
/// not computing, so the CPUs are no limit.
const LATENCY_BOUND_THREADS: usize = 32;

/// Items per block where latency bounds the work: small, so that every
/// thread gets work early.
const LATENCY_BOUND_BLOCK: usize = 2;

/// A block whose items took longer than this each, on average, shows the
/// file system to be latency-bound whatever `fstatfs` said (a cold disk, a
/// network file system `fstatfs` does not name): more threads are started.
/// A local, cached read of a candidate's two files takes 10-40 µs.
const SLOW_ITEM: Duration = Duration::from_micros(250);

/// How many threads work on a listing, and how many items each takes at a
/// time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parallelism {
    threads: usize,
    block_len: usize,
}

impl Parallelism {
    /// For a listing of `file_system`: CPU-bound work in blocks of
    /// `local_block_len` on a local one, many small blocks on a remote one.
    pub(crate) fn for_file_system(file_system: FileSystem, local_block_len: usize) -> Self {
        match file_system {
            FileSystem::Remote => Parallelism::latency_bound(),
            FileSystem::Local | FileSystem::Other => Parallelism {
                threads: available_threads(),
                block_len: local_block_len.max(1),
            },
        }
    }

    fn latency_bound() -> Self {
        Parallelism {
            threads: LATENCY_BOUND_THREADS,
            block_len: LATENCY_BOUND_BLOCK,
        }
    }
}

/// A block of listed items and what processing it gave.
pub(crate) struct Done<T, R> {
    pub items: Vec<T>,
    pub result: R,
}

/// Runs `list`, which passes each item it lists to the function it is
/// given, and processes the items in blocks with `work`.
///
/// Every thread that processes blocks, the calling one included, gets its
/// own state from `new_state`. A helper thread is started for each block
/// listed, up to `parallelism`'s thread count besides the caller: starting
/// one costs the listing little, but the new thread takes about 0.1 ms to
/// get going, so the first starts as soon as there is a block for it. A
/// listing of one block is processed by the calling thread alone.
///
/// When a block turns out slow ([`SLOW_ITEM`] per item), the file system is
/// latency-bound: from then on threads are started, by the listing and then
/// by the caller while blocks wait, up to [`LATENCY_BOUND_THREADS`]. The
/// blocks stay as long as they were: where a block ends depends only on the
/// listing and the file system's kind, never on timing, so two scans of
/// one directory build the same index, byte for byte.
///
/// A helper that cannot be started (a pids limit, no address space for
/// its stack) is not an error: the threads already working, the caller at
/// least, take its share. A panic in `list` or `work` is propagated once
/// every thread has stopped; no thread is left waiting for a block.
pub(crate) fn process_while_listing<T, S, R>(
    parallelism: Parallelism,
    list: impl FnOnce(&mut dyn FnMut(T)),
    new_state: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &[T]) -> R + Sync,
) -> Vec<Done<T, R>>
where
    T: Send,
    R: Send,
{
    let queue = BlockQueue::default();
    let slow = AtomicBool::new(false);
    let timed_work = |state: &mut S, items: &[T]| {
        let started = Instant::now();
        let result = work(state, items);
        if !items.is_empty() && started.elapsed() > SLOW_ITEM * items.len() as u32 {
            slow.store(true, Ordering::Relaxed);
        }
        result
    };
    let mut done = std::thread::scope(|scope| {
        let mut helpers = Helpers {
            running: Vec::new(),
            wanted: parallelism.threads.saturating_sub(1),
            out_of_threads: false,
        };
        let mut start_helper = || {
            let (queue, new_state, work) = (&queue, &new_state, &timed_work);
            std::thread::Builder::new()
                .spawn_scoped(scope, move || drain(queue, &mut new_state(), work))
        };
        {
            // Dropping the writer closes the queue however the listing
            // ends, so that no helper waits forever for a block.
            let mut writer = BlockWriter::new(&queue, parallelism.block_len);
            let mut latency_bound = parallelism == Parallelism::latency_bound();
            list(&mut |item| {
                if !latency_bound && slow.load(Ordering::Relaxed) {
                    latency_bound = true;
                    helpers.wanted = LATENCY_BOUND_THREADS - 1;
                }
                writer.push(item);
                if writer.blocks > helpers.running.len() {
                    helpers.start_one(&mut start_helper);
                }
            });
        }
        // The listing is over; while blocks wait and the work has turned
        // out slow, more helpers take them.
        let mut done = Vec::new();
        let state = &mut new_state();
        while let Some((number, items)) = queue.pop() {
            if slow.load(Ordering::Relaxed) {
                helpers.wanted = LATENCY_BOUND_THREADS - 1;
                for _ in 0..queue.waiting() {
                    helpers.start_one(&mut start_helper);
                }
            }
            let result = timed_work(state, &items);
            done.push((number, Done { items, result }));
        }
        for helper in helpers.running {
            done.extend(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        done
    });
    done.sort_unstable_by_key(|(number, _)| *number);
    done.into_iter().map(|(_, done)| done).collect()
}

/// The helper threads of one listing.
struct Helpers<H> {
    running: Vec<H>,
    /// How many may run.
    wanted: usize,
    /// A start failed: no more are tried.
    out_of_threads: bool,
}

impl<H> Helpers<H> {
    fn start_one(&mut self, start: &mut impl FnMut() -> std::io::Result<H>) {
        if self.out_of_threads || self.running.len() >= self.wanted {
            return;
        }
        match start() {
            Ok(helper) => self.running.push(helper),
            // Out of threads (a pids limit, say): the threads already
            // running, the caller at least, do the rest.
            Err(_) => self.out_of_threads = true,
        }
    }
}

/// How many threads may work at once on a local file system, the calling
/// one included.
fn available_threads() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    cpus.min(MAX_LOCAL_THREADS)
}

/// Processes blocks as they become available until the listing is over
/// and none is left; returns each with its number.
fn drain<T, S, R>(
    queue: &BlockQueue<T>,
    state: &mut S,
    work: &impl Fn(&mut S, &[T]) -> R,
) -> Vec<(usize, Done<T, R>)> {
    let mut done = Vec::new();
    while let Some((number, items)) = queue.pop() {
        let result = work(state, &items);
        done.push((number, Done { items, result }));
    }
    done
}

/// Blocks listed but not yet taken, each with its place in the listing.
struct BlockQueue<T> {
    state: Mutex<QueueState<T>>,
    ready: Condvar,
}

struct QueueState<T> {
    waiting: VecDeque<(usize, Vec<T>)>,
    /// The listing is over: no block will be added.
    closed: bool,
}

impl<T> Default for BlockQueue<T> {
    fn default() -> Self {
        BlockQueue {
            state: Mutex::new(QueueState {
                waiting: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<T> BlockQueue<T> {
    fn lock(&self) -> MutexGuard<'_, QueueState<T>> {
        // Whoever panicked while holding the lock left the queue whole; the
        // panic itself surfaces when that thread is joined.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, number: usize, items: Vec<T>) {
        self.lock().waiting.push_back((number, items));
        self.ready.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// How many blocks wait to be taken.
    fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// The next block, waiting for one while the listing goes on; `None`
    /// once the listing is over and every block has been taken.
    fn pop(&self) -> Option<(usize, Vec<T>)> {
        let mut state = self.lock();
        loop {
            if let Some(block) = state.waiting.pop_front() {
                return Some(block);
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

/// Gathers listed items into blocks for a [`BlockQueue`]; dropping it
/// hands over the last, partial block and closes the queue.
struct BlockWriter<'q, T> {
    queue: &'q BlockQueue<T>,
    block_len: usize,
    current: Vec<T>,
    /// Blocks handed over so far.
    blocks: usize,
}

impl<'q, T> BlockWriter<'q, T> {
    fn new(queue: &'q BlockQueue<T>, block_len: usize) -> Self {
        BlockWriter {
            queue,
            block_len,
            current: Vec::with_capacity(block_len),
            blocks: 0,
        }
    }

    fn push(&mut self, item: T) {
        self.current.push(item);
        if self.current.len() >= self.block_len {
            self.hand_over();
        }
    }

    fn hand_over(&mut self) {
        let items = std::mem::replace(&mut self.current, Vec::with_capacity(self.block_len));
        self.queue.push(self.blocks, items);
        self.blocks += 1;
    }
}

impl<T> Drop for BlockWriter<'_, T> {
    fn drop(&mut self) {
        if !self.current.is_empty() {
            self.hand_over();
        }
        self.queue.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_listing_order() {
        for count in [0, 1, 23, 24, 25, 1000] {
            let done = process_while_listing(
                Parallelism::for_file_system(FileSystem::Local, 24),
                |feed| (0..count).for_each(&mut *feed),
                || 0usize,
                |calls, items: &[u32]| {
                    *calls += 1;
                    items.iter().map(|i| i * 2).collect::<Vec<_>>()
                },
            );
            let items: Vec<u32> = done.iter().flat_map(|d| d.items.clone()).collect();
            let doubled: Vec<u32> = done.iter().flat_map(|d| d.result.clone()).collect();
            assert_eq!(items, (0..count).collect::<Vec<_>>());
            assert_eq!(doubled, (0..count).map(|i| i * 2).collect::<Vec<_>>());
            assert!(done.iter().all(|d| d.items.len() <= 24));
        }
    }

    #[test]
    fn slow_blocks_add_threads_but_keep_block_boundaries() {
        let threads = Mutex::new(std::collections::HashSet::new());
        let done = process_while_listing(
            Parallelism::for_file_system(FileSystem::Local, 4),
            |feed| (0..64).for_each(&mut *feed),
            || (),
            |(), items: &[u32]| {
                threads.lock().unwrap().insert(std::thread::current().id());
                // Every block is slow: the pipeline turns latency-bound.
                std::thread::sleep(SLOW_ITEM * 2 * items.len() as u32);
                items.len()
            },
        );
        let lens: Vec<usize> = done.iter().map(|d| d.items.len()).collect();
        assert_eq!(lens, vec![4; 16], "block boundaries moved");
        let used = threads.into_inner().unwrap().len();
        assert!(
            used > MAX_LOCAL_THREADS,
            "{used} threads: slow blocks should have added helpers"
        );
    }

    #[test]
    fn a_panicking_listing_leaves_no_helper_waiting() {
        let outcome = std::panic::catch_unwind(|| {
            process_while_listing(
                Parallelism::for_file_system(FileSystem::Local, 2),
                |feed| {
                    (0..10).for_each(&mut *feed);
                    panic!("listing failed");
                },
                || (),
                |_, items: &[u32]| items.len(),
            )
        });
        assert!(outcome.is_err());
    }

    #[test]
    fn a_panicking_worker_is_propagated() {
        let outcome = std::panic::catch_unwind(|| {
            process_while_listing(
                Parallelism::for_file_system(FileSystem::Remote, 1),
                |feed| (0..50).for_each(&mut *feed),
                || (),
                |_, items: &[u32]| assert!(!items.contains(&37), "worker failed"),
            )
        });
        assert!(outcome.is_err());
    }
}
