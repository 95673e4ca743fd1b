//! Queries across several path entries with importlib.metadata's
//! precedence: path order first, then each entry's discovery order.

use std::collections::HashSet;

use crate::index::name::{legacy_normalize_name, normalize_name};
use crate::index::{Distribution, EntryPoint, GroupDist, GroupDists, Index};

/// Which entry points to return, like `EntryPoints.select(group=, name=)`:
/// every field that is set must match exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only entry points of this group.
    pub group: Option<String>,
    /// Only entry points of this name.
    pub name: Option<String>,
}

impl Selection {
    /// Everything.
    pub fn all() -> Self {
        Selection::default()
    }

    /// One group, every name.
    pub fn group(group: impl Into<String>) -> Self {
        Selection {
            group: Some(group.into()),
            name: None,
        }
    }

    /// Whether `ep` is selected.
    pub fn matches(&self, ep: &EntryPoint<'_>) -> bool {
        self.group.as_deref().is_none_or(|g| g == ep.group)
            && self.name.as_deref().is_none_or(|n| n == ep.name)
    }
}

/// The indexes of a whole `sys.path`, in path order.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    indexes: Vec<Index>,
}

impl Environment {
    /// Wraps indexes that are already in `sys.path` order.
    pub fn from_indexes(indexes: Vec<Index>) -> Self {
        Environment { indexes }
    }

    /// The per-entry indexes, in path order.
    pub fn indexes(&self) -> &[Index] {
        &self.indexes
    }

    /// Every distribution, like `importlib.metadata.distributions()`: no
    /// de-duplication, path order, then discovery order.
    pub fn distributions(&self) -> impl Iterator<Item = Distribution<'_>> {
        self.indexes.iter().flat_map(Index::distributions)
    }

    /// The first distribution per de-duplication key, as `entry_points()`
    /// sees them. A distribution with no key (no usable directory name and
    /// no `Name`) is never merged with another.
    pub fn unique_distributions(&self) -> impl Iterator<Item = Distribution<'_>> {
        let mut seen = HashSet::new();
        self.distributions()
            .filter(move |dist| match dist.unique_key() {
                Some(key) => seen.insert(key),
                None => true,
            })
    }

    /// Entry points like `importlib.metadata.entry_points(**selection)`:
    /// the first distribution per normalized name only, in discovery order.
    ///
    /// With a group, an index read from a cache file reads only that
    /// group's part, and for its distributions one bucket of keys of each
    /// earlier path entry (to skip those an earlier entry shadows): the
    /// cost follows the answer, not the size of the environment. Without
    /// one, every distribution is read.
    ///
    /// The entry points borrow only from the indexes: `selection` is
    /// copied, so it may be dropped while they are in use.
    pub fn entry_points<'a>(
        &'a self,
        selection: &Selection,
    ) -> impl Iterator<Item = EntryPoint<'a>> + use<'a> {
        let Selection { group, name } = selection.clone();
        match group {
            Some(group) => Either::Left(GroupSelection {
                indexes: &self.indexes,
                next_index: 0,
                dists: None,
                current: None,
                group,
                name,
            }),
            None => {
                let selection = Selection { group: None, name };
                Either::Right(
                    self.unique_distributions()
                        .flat_map(|dist| dist.entry_points())
                        .filter(move |ep| selection.matches(ep)),
                )
            }
        }
    }

    /// Every distribution `importlib.metadata` finds for `name`, in the order
    /// it finds them: path order, and within one entry the `*-info`
    /// matches in listing order before an `.egg`.
    ///
    /// Matching uses the metadata directory's name (as importlib does), not
    /// the `Name` header; `.egg` entries match by their legacy name. An
    /// index read from a cache file reads one or two buckets of keys and
    /// the pages of the distributions found.
    pub fn distributions_named<'a>(
        &'a self,
        name: &str,
    ) -> impl Iterator<Item = Distribution<'a>> + use<'a> {
        let (normalized, legacy) = if name.is_empty() {
            (None, None)
        } else {
            (
                Some(normalize_name(name)),
                Some(legacy_normalize_name(name)),
            )
        };
        self.indexes
            .iter()
            .flat_map(move |index| index.named(normalized.as_deref(), legacy.as_deref()))
    }

    /// The distribution `importlib.metadata.distribution(name)` of CPython
    /// 3.10–3.13 returns: the first match, even one without metadata (a
    /// leftover of a failed uninstall). The `importlib_metadata` backport
    /// ≥ 8.1 prefers a match that [has metadata](Distribution::has_metadata);
    /// pick from [`distributions_named`](Self::distributions_named) for that.
    pub fn distribution(&self, name: &str) -> Option<Distribution<'_>> {
        self.distributions_named(name).next()
    }

    /// The version `importlib.metadata.version(name)` returns.
    pub fn version(&self, name: &str) -> Option<&str> {
        self.distribution(name)?.version()
    }
}

/// [`Environment::entry_points`] of one group: each path entry's entry
/// points of the group whose distribution is the first of its unique key
/// there and whose key no earlier entry holds.
struct GroupSelection<'a> {
    indexes: &'a [Index],
    next_index: usize,
    /// The distributions of the path entry before `next_index`.
    dists: Option<GroupDists<'a>>,
    /// The distribution whose entry points are being returned.
    current: Option<GroupDist<'a>>,
    group: String,
    name: Option<String>,
}

impl<'a> Iterator for GroupSelection<'a> {
    type Item = EntryPoint<'a>;

    fn next(&mut self) -> Option<EntryPoint<'a>> {
        loop {
            if let Some(current) = &mut self.current {
                while let Some(ep) = current.next_entry_point(&self.group) {
                    if self.name.as_deref().is_none_or(|n| n == ep.name) {
                        return Some(ep);
                    }
                }
                self.current = None;
            }
            if let Some(dists) = &mut self.dists {
                match dists.next_dist(&self.group) {
                    Some(candidate) => {
                        // Entry points come from the first distribution per
                        // unique key, over the whole path.
                        let earlier = &self.indexes[..self.next_index - 1];
                        let keep = candidate.first
                            && candidate
                                .dist
                                .unique_key()
                                .is_none_or(|key| !earlier.iter().any(|e| e.has_unique_key(key)));
                        if keep {
                            self.current = Some(candidate);
                        }
                        continue;
                    }
                    None => self.dists = None,
                }
            }
            let index = self.indexes.get(self.next_index)?;
            self.dists = Some(index.group_dists(&self.group));
            self.next_index += 1;
        }
    }
}

/// One iterator or another, as one type.
enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<T, A: Iterator<Item = T>, B: Iterator<Item = T>> Iterator for Either<A, B> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            Either::Left(a) => a.next(),
            Either::Right(b) => b.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{DistFacts, IndexBuilder, Kind};
    use std::path::PathBuf;

    fn dist(
        b: &mut IndexBuilder,
        child: &str,
        key: &str,
        name: Option<&str>,
        eps: &[(&str, &str)],
    ) {
        let values: Vec<String> = eps.iter().map(|(_, n)| format!("{child}:{n}")).collect();
        let facts = DistFacts {
            name,
            version: name.map(|_| "1"),
            entry_points: eps
                .iter()
                .zip(&values)
                .map(|(&(g, n), v)| (g, n, v.as_str()))
                .collect(),
            diagnostics: vec![],
            incomplete: false,
        };
        b.push(Kind::DistInfo, child, key, Some(key), facts);
    }

    fn env() -> Environment {
        let mut first = IndexBuilder::default();
        dist(
            &mut first,
            "a-1.dist-info",
            "a",
            Some("a"),
            &[("g", "x"), ("h", "y")],
        );
        dist(&mut first, "empty-1.dist-info", "empty", None, &[]);
        let mut second = IndexBuilder::default();
        dist(
            &mut second,
            "A-2.dist-info",
            "a",
            Some("A"),
            &[("g", "shadowed")],
        );
        dist(
            &mut second,
            "empty-2.dist-info",
            "empty",
            Some("empty"),
            &[],
        );
        dist(&mut second, "b-1.dist-info", "b", Some("b"), &[("g", "z")]);
        Environment::from_indexes(vec![
            first.finish(PathBuf::from("/1")),
            second.finish(PathBuf::from("/2")),
        ])
    }

    #[test]
    fn distributions_are_not_deduplicated() {
        assert_eq!(env().distributions().count(), 5);
    }

    #[test]
    fn entry_points_take_the_first_distribution_per_name() {
        let env = env();
        let all = Selection::all();
        let got: Vec<_> = env.entry_points(&all).map(|e| (e.group, e.name)).collect();
        assert_eq!(got, [("g", "x"), ("h", "y"), ("g", "z")]);
        let g = Selection::group("g");
        let got: Vec<_> = env.entry_points(&g).map(|e| e.name).collect();
        assert_eq!(got, ["x", "z"]);
        let named = Selection {
            group: Some("g".into()),
            name: Some("z".into()),
        };
        assert_eq!(env.entry_points(&named).count(), 1);
    }

    #[test]
    fn entry_points_outlive_the_selection() {
        let env = env();
        let eps = {
            let selection = Selection::group("g");
            env.entry_points(&selection)
        };
        let kept: Vec<EntryPoint<'_>> = {
            let selection = Selection::all();
            env.entry_points(&selection).collect()
        };
        assert_eq!(eps.count(), 2);
        assert_eq!(kept.len(), 3);
    }

    #[test]
    fn lookup_takes_the_first_match_even_without_metadata() {
        let env = env();
        assert_eq!(env.version("A"), Some("1"));
        let empty = env.distribution("EMPTY").unwrap();
        assert_eq!(empty.metadata_name(), "empty-1.dist-info");
        let all: Vec<_> = env
            .distributions_named("empty")
            .map(|d| (d.metadata_name(), d.has_metadata()))
            .collect();
        assert_eq!(
            all,
            [("empty-1.dist-info", false), ("empty-2.dist-info", true)]
        );
        assert!(env.distribution("missing").is_none());
        assert!(env.distribution("").is_none());
    }
}
