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
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};

/// At most this many threads in all: beyond it the kernel's directory and
/// page-cache locks, not the CPUs, are the limit.
const MAX_THREADS: usize = 4;

/// A block of listed items and what processing it gave.
pub(crate) struct Done<T, R> {
    pub items: Vec<T>,
    pub result: R,
}

/// Runs `list`, which passes each item it lists to the function it is
/// given, and processes the items in blocks of `block_len` with `work`.
///
/// Every thread that processes blocks, the calling one included, gets its
/// own state from `new_state`. A helper thread is started for each
/// `block_len` items listed, up to one per CPU besides the caller: starting
/// one costs the listing little, but the new thread takes about 0.1 ms to
/// get going, so the first starts as soon as there is a block for it. A
/// listing of fewer items is processed by the calling thread alone.
///
/// A helper that cannot be started (a pids limit, no address space for
/// its stack) is not an error: the threads already working, the caller at
/// least, take its share. A panic in `list` or `work` is propagated once
/// every thread has stopped; no thread is left waiting for a block.
pub(crate) fn process_while_listing<T, S, R>(
    block_len: usize,
    list: impl FnOnce(&mut dyn FnMut(T)),
    new_state: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &[T]) -> R + Sync,
) -> Vec<Done<T, R>>
where
    T: Send,
    R: Send,
{
    assert!(block_len > 0, "blocks must hold something");
    let queue = BlockQueue::default();
    let mut helpers_wanted = available_threads() - 1;
    let mut done = std::thread::scope(|scope| {
        let mut helpers = Vec::new();
        {
            // Dropping the writer closes the queue however the listing
            // ends, so that no helper waits forever for a block.
            let mut writer = BlockWriter::new(&queue, block_len);
            list(&mut |item| {
                writer.push(item);
                if helpers.len() < helpers_wanted
                    && writer.listed >= block_len * (helpers.len() + 1)
                {
                    let (queue, new_state, work) = (&queue, &new_state, &work);
                    let started = std::thread::Builder::new()
                        .spawn_scoped(scope, move || drain(queue, &mut new_state(), work));
                    match started {
                        Ok(helper) => helpers.push(helper),
                        // Out of threads (a pids limit, say): the threads
                        // already running, the caller at least, do the rest.
                        Err(_) => helpers_wanted = helpers.len(),
                    }
                }
            });
        }
        let mut done = drain(&queue, &mut new_state(), &work);
        for helper in helpers {
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

/// How many threads may work at once, the calling one included.
fn available_threads() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    cpus.min(MAX_THREADS)
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
    blocks: usize,
    /// Items listed so far.
    listed: usize,
}

impl<'q, T> BlockWriter<'q, T> {
    fn new(queue: &'q BlockQueue<T>, block_len: usize) -> Self {
        BlockWriter {
            queue,
            block_len,
            current: Vec::with_capacity(block_len),
            blocks: 0,
            listed: 0,
        }
    }

    fn push(&mut self, item: T) {
        self.current.push(item);
        self.listed += 1;
        if self.current.len() == self.block_len {
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
                24,
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
    fn a_panicking_listing_leaves_no_helper_waiting() {
        let outcome = std::panic::catch_unwind(|| {
            process_while_listing(
                2,
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
                1,
                |feed| (0..50).for_each(&mut *feed),
                || (),
                |_, items: &[u32]| assert_ne!(items[0], 37, "worker failed"),
            )
        });
        assert!(outcome.is_err());
    }
}
