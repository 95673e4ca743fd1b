//! A path entry that changes one whole distribution at a time while other
//! processes consult it, and the check that every answer is a state the
//! tree was in *during that consult*.
//!
//! Each change is one rename (a distribution written in a staging
//! directory and renamed in, or renamed aside and then deleted), as
//! installers do, so the tree only ever holds whole distributions, and
//! each change is recorded with the instants just before and just after
//! its rename.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{dist_dir_name, write_churn_dist};

/// One change of the tree: it became visible somewhere between `before`
/// and `after`, and left the tree holding `state`.
pub struct Change {
    pub before: Instant,
    pub after: Instant,
    pub state: BTreeSet<String>,
}

/// A site directory under change, and the record of its states.
pub struct Churn {
    site: PathBuf,
    staging: PathBuf,
    trash: PathBuf,
    serial: usize,
    state: BTreeSet<String>,
    changes: Vec<Change>,
}

impl Churn {
    /// Starts the record of `site`, which holds the distributions `state`
    /// (each written by [`write_churn_dist`] or with the same directory
    /// name), with scratch directories made in `scratch`, beside it on the
    /// same file system.
    pub fn new(site: &Path, scratch: &Path, state: BTreeSet<String>) -> Self {
        let (staging, trash) = (scratch.join("staging"), scratch.join("trash"));
        for dir in [&staging, &trash] {
            fs::create_dir(dir).unwrap();
        }
        let now = Instant::now();
        Churn {
            site: site.to_path_buf(),
            staging,
            trash,
            serial: 0,
            changes: vec![Change {
                before: now,
                after: now,
                state: state.clone(),
            }],
            state,
        }
    }

    /// What the tree holds now.
    pub fn state(&self) -> &BTreeSet<String> {
        &self.state
    }

    /// Adds `name` if the tree lacks it, removes it otherwise.
    pub fn toggle(&mut self, name: &str) {
        if self.state.contains(name) {
            self.remove(name);
        } else {
            self.add(name);
        }
    }

    /// Writes `name` (with [`write_churn_dist`]) and renames it in.
    pub fn add(&mut self, name: &str) {
        assert!(!self.state.contains(name), "{name} is there already");
        self.serial += 1;
        let staged = self.staging.join(self.serial.to_string());
        let dir_name = dist_dir_name(name, "1.0");
        write_churn_dist(&staged, name);
        let before = Instant::now();
        fs::rename(staged.join(&dir_name), self.site.join(&dir_name)).unwrap();
        let after = Instant::now();
        self.state.insert(name.to_owned());
        self.record(before, after);
    }

    /// Renames `name` out of the tree, then deletes it.
    pub fn remove(&mut self, name: &str) {
        assert!(self.state.remove(name), "{name} is not there");
        self.serial += 1;
        let aside = self.trash.join(self.serial.to_string());
        let before = Instant::now();
        fs::rename(self.site.join(dist_dir_name(name, "1.0")), &aside).unwrap();
        let after = Instant::now();
        fs::remove_dir_all(&aside).unwrap();
        self.record(before, after);
    }

    fn record(&mut self, before: Instant, after: Instant) {
        self.changes.push(Change {
            before,
            after,
            state: self.state.clone(),
        });
    }

    /// Every state the tree was in, the first one included.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }
}

/// Indexes of the states that may have been visible during `start..end`.
pub fn visible(
    changes: &[Change],
    start: Instant,
    end: Instant,
) -> impl Iterator<Item = usize> + '_ {
    (0..changes.len()).filter(move |&i| {
        changes[i].before <= end && changes.get(i + 1).is_none_or(|next| next.after >= start)
    })
}

/// The distributions removed by changes after state `i` that may have
/// happened before `end`: a scan that listed state `i` may miss them,
/// because they vanished before it read them.
pub fn removed_after(changes: &[Change], i: usize, end: Instant) -> BTreeSet<String> {
    let mut removed = BTreeSet::new();
    for j in i + 1..changes.len() {
        if changes[j].before > end {
            break;
        }
        removed.extend(changes[j - 1].state.difference(&changes[j].state).cloned());
    }
    removed
}

/// Whether a scan (or a trusted file) during `start..end` can give
/// `names`: some state visible then, less distributions that were removed
/// while it was being read. Returns whether it was exactly a state.
pub fn explain(
    changes: &[Change],
    start: Instant,
    end: Instant,
    names: &BTreeSet<String>,
) -> Option<bool> {
    let mut explained = None;
    for i in visible(changes, start, end) {
        let state = &changes[i].state;
        if names == state {
            return Some(true);
        }
        if names.is_subset(state) {
            let missing: BTreeSet<String> = state.difference(names).cloned().collect();
            if missing.is_subset(&removed_after(changes, i, end)) {
                explained = Some(false);
            }
        }
    }
    explained
}

/// The states visible during `start..end`, for a failure message.
pub fn states_during(changes: &[Change], start: Instant, end: Instant) -> Vec<&BTreeSet<String>> {
    visible(changes, start, end)
        .map(|i| &changes[i].state)
        .collect()
}
