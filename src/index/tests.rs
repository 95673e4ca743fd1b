use super::schema::{Rows, Span};
use super::*;
use std::path::PathBuf;

fn data_of(index: &Index) -> &IndexData {
    &index.as_owned().expect("a built index").data
}

fn push_foo(b: &mut IndexBuilder) {
    b.push(
        Kind::DistInfo,
        "Foo_Bar-1.0.dist-info",
        "foo-bar",
        Some("foo-bar"),
        DistFacts {
            name: Some("Foo_Bar"),
            version: Some("1.0"),
            entry_points: vec![
                ("console_scripts", "foo", "foo:main"),
                ("console_scripts", "foo", "foo:other"),
            ],
            diagnostics: vec!["line 3 has no '='".into()],
            incomplete: false,
        },
    );
}

fn push_x(b: &mut IndexBuilder) {
    b.push(
        Kind::EggInfoFile,
        "x.egg-info",
        "x",
        Some("x"),
        DistFacts::default(),
    );
}

fn sample() -> Index {
    let mut b = IndexBuilder::default();
    push_foo(&mut b);
    push_x(&mut b);
    b.finish(PathBuf::from("/site"))
}

/// Everything the views show, for comparing indexes built differently.
fn rendered(index: &Index) -> Vec<String> {
    let mut out: Vec<String> = index.diagnostics().map(str::to_owned).collect();
    for d in index.distributions() {
        out.push(format!(
            "{:?} {} {:?} {:?} {:?} {:?} {} {:?}",
            d.kind(),
            d.metadata_name(),
            d.name(),
            d.version(),
            d.normalized_name(),
            d.unique_key(),
            d.lookup_key(),
            d.diagnostics().collect::<Vec<_>>(),
        ));
        out.extend(
            d.entry_points()
                .map(|e| format!("{} {} {}", e.group, e.name, e.value)),
        );
    }
    out
}

#[test]
fn appended_shards_read_like_one_builder() {
    let mut whole = IndexBuilder::default();
    whole.entry_diagnostic("listing hiccup".into());
    push_x(&mut whole);
    push_foo(&mut whole);
    push_x(&mut whole);
    let whole = whole.finish(PathBuf::from("/site"));

    let mut first = IndexBuilder::default();
    first.entry_diagnostic("listing hiccup".into());
    push_x(&mut first);
    let mut second = IndexBuilder::default();
    push_foo(&mut second);
    push_x(&mut second);
    first.append(second);
    let merged = first.finish(PathBuf::from("/site"));

    assert!(data_of(&merged).validate().is_ok());
    assert_eq!(rendered(&merged), rendered(&whole));
    assert_eq!(merged.diagnostic_count(), whole.diagnostic_count());
}

#[test]
fn reordering_moves_whole_distributions() {
    let mut straight = IndexBuilder::default();
    push_foo(&mut straight);
    push_x(&mut straight);
    let straight = straight.finish(PathBuf::from("/site"));

    let mut reversed = IndexBuilder::default();
    push_x(&mut reversed);
    push_foo(&mut reversed);
    reversed.reorder(&[1, 0]);
    let reversed = reversed.finish(PathBuf::from("/site"));

    assert!(data_of(&reversed).validate().is_ok());
    assert_eq!(rendered(&reversed), rendered(&straight));
}

#[test]
fn views_read_back_what_was_pushed() {
    let index = sample();
    assert!(data_of(&index).validate().is_ok());
    let dists: Vec<_> = index.distributions().collect();
    assert_eq!(dists.len(), 2);
    let foo = dists[0];
    assert_eq!(foo.name(), Some("Foo_Bar"));
    assert_eq!(foo.normalized_name(), Some("foo-bar"));
    assert_eq!(
        foo.metadata_path(),
        Path::new("/site/Foo_Bar-1.0.dist-info")
    );
    let eps: Vec<_> = foo
        .entry_points()
        .map(|e| (e.group, e.name, e.value))
        .collect();
    assert_eq!(
        eps,
        [
            ("console_scripts", "foo", "foo:main"),
            ("console_scripts", "foo", "foo:other")
        ]
    );
    assert_eq!(foo.diagnostics().collect::<Vec<_>>(), ["line 3 has no '='"]);
    assert_eq!(dists[1].name(), None);
    assert_eq!((dists[0].position(), dists[1].position()), (0, 1));
    assert!(std::ptr::eq(dists[1].index(), &index));
    assert!(!dists[1].has_metadata());
    assert_eq!(index.entry_point_count(), 2);
}

#[test]
fn validate_rejects_out_of_range_offsets() {
    let mut data = data_of(&sample()).clone();
    data.dists[0].name = Some(Span {
        start: 9999,
        len: 1,
    });
    assert!(data.validate().is_err());
    let mut data = data_of(&sample()).clone();
    data.dists[1].entry_points = Rows { start: 0, end: 99 };
    assert!(data.validate().is_err());
    let mut data = data_of(&sample()).clone();
    data.entry_diagnostics = Rows { start: 1, end: 0 };
    assert!(data.validate().is_err());
}

#[test]
fn validate_rejects_spans_inside_a_character() {
    let mut b = IndexBuilder::default();
    b.push(
        Kind::DistInfo,
        "é.dist-info",
        "é",
        None,
        DistFacts::default(),
    );
    let mut data = b.finish_data().0;
    data.dists[0].child = Span { start: 0, len: 1 };
    assert!(data.validate().is_err());
}
