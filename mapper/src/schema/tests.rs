//! Load-time checks: each names the file, the line and what is wrong.
use std::borrow::Cow;

use super::*;

fn src(file: &str, text: &str, overlay: bool) -> TableSource {
    TableSource {
        file: file.to_owned(),
        text: Cow::Owned(text.to_owned()),
        overlay,
    }
}

/// Compiles the tables and returns the issues as `file:line: message` strings.
fn errors(tables: &[(&str, &str)]) -> Vec<String> {
    match compile(tables.iter().map(|(f, t)| src(f, t, false)).collect()) {
        Ok(_) => Vec::new(),
        Err(e) => e.issues.iter().map(ToString::to_string).collect(),
    }
}

fn assert_error(tables: &[(&str, &str)], file_line: &str, needle: &str) {
    let errs = errors(tables);
    assert!(
        errs.iter()
            .any(|e| e.starts_with(file_line) && e.contains(needle)),
        "expected `{file_line}: ...{needle}...`, got {errs:#?}"
    );
}

const BASE: &str = r#"[family]
name = "base"
abstract = true
dataset = "azure.base"

[[field]]
to = "event.action"
from = "operationName"
"#;

const FALLBACK: &str = r#"[family]
name = "generic"
extends = "base"
fallback = true
"#;

#[test]
fn valid_tables_compile() {
    assert_eq!(
        errors(&[("base.toml", BASE), ("generic.toml", FALLBACK)]),
        Vec::<String>::new()
    );
}

#[test]
fn toml_syntax_error_names_line() {
    assert_error(
        &[("bad.toml", "[family]\nname = \"x\"\ndataset = \n")],
        "bad.toml:3",
        "",
    );
}

#[test]
fn unknown_keys() {
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"a.b\"\nfrom = \"x\"\nconvrt = \"int\"\n";
    assert_error(&[("t.toml", t)], "t.toml:9", "unknown field `convrt`");
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\nprio = 3\n";
    assert_error(&[("t.toml", t)], "t.toml:5", "unknown field `prio`");
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n[[detect]]\nwhen = [{ path = \"a\", equal = \"b\" }]\n";
    assert_error(&[("t.toml", t)], "t.toml:6", "unknown field `equal`");
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n[extra]\na = 1\n";
    assert_error(&[("t.toml", t)], "t.toml:5", "unknown field `extra`");
}

#[test]
fn unknown_conversion() {
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"a.b\"\nfrom = \"x\"\nconvert = \"timestmp\"\n";
    assert_error(
        &[("t.toml", t)],
        "t.toml:9",
        "unknown conversion `timestmp`",
    );
}

#[test]
fn bad_paths() {
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"a.b\"\nfrom = [\"ok\", \"bad..path\"]\n";
    assert_error(
        &[("t.toml", t)],
        "t.toml:8",
        "bad path `bad..path`: empty segment",
    );
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n[[detect]]\nwhen = [\n  { path = \"a[x]\", equals = \"b\" },\n]\n";
    assert_error(&[("t.toml", t)], "t.toml:7", "bad path `a[x]`");
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n[payload]\nto = \"azure.x\"\ncopy = [\n\"$json\"]\n";
    assert_error(&[("t.toml", t)], "t.toml:8", "bad path `$json`");
}

#[test]
fn bad_destination_keys() {
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"a..b\"\nvalue = 1\n";
    assert_error(&[("t.toml", t)], "t.toml:7", "empty segment");
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"event.ingested\"\nvalue = 1\n";
    assert_error(&[("t.toml", t)], "t.toml:7", "set by the mapper itself");
}

#[test]
fn to_that_is_a_dotted_prefix_of_another_to() {
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"user\"\nvalue = \"a\"\n\n[[field]]\nto = \"user.name\"\nvalue = \"b\"\n";
    assert_error(
        &[("t.toml", t)],
        "t.toml:6",
        "`to = \"user\"` is a dotted prefix of `user.name`",
    );
    // Against a built-in key.
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"event.kind.x\"\nvalue = \"a\"\n";
    assert_error(
        &[("t.toml", t)],
        "t.toml:6",
        "`to = \"event.kind\"` is a dotted prefix",
    );
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"azlog\"\nvalue = \"a\"\n";
    assert_error(
        &[("t.toml", t)],
        "t.toml:6",
        "`to = \"azlog\"` is a dotted prefix",
    );
    // Across extends: the inherited field's line is in the parent file.
    let child = "[family]\nname = \"c\"\nextends = \"base\"\nfallback = true\n\n[[field]]\nto = \"event.action.x\"\nvalue = \"a\"\n";
    assert_error(
        &[("base.toml", BASE), ("c.toml", child)],
        "base.toml:6",
        "is a dotted prefix of `event.action.x` (c.toml:6)",
    );
    // Against a payload destination.
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"azure.x\"\nvalue = \"a\"\n[payload]\nto = \"azure.x\"\ncopy = [\"properties\"]\n";
    assert_error(
        &[("t.toml", t)],
        "t.toml:6",
        "collides with the payload destination",
    );
}

#[test]
fn event_outcome_must_map_to_success_failure_unknown() {
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"event.outcome\"\nfrom = \"resultType\"\nmap = { Succeeded = \"succeeded\" }\n";
    assert_error(
        &[("t.toml", t)],
        "t.toml:9",
        "must be success, failure or unknown (found succeeded)",
    );
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"event.outcome\"\nfrom = \"resultType\"\n";
    assert_error(&[("t.toml", t)], "t.toml:6", "needs a `map`");
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"event.outcome\"\nvalue = \"ok\"\n";
    assert_error(&[("t.toml", t)], "t.toml:6", "found ok");
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n\n[[field]]\nto = \"event.outcome\"\nfrom = \"r\"\nmap = { a = \"success\" }\nmap_default = \"meh\"\n";
    assert_error(&[("t.toml", t)], "t.toml:10", "found meh");
}

#[test]
fn missing_dataset() {
    let t = "[family]\nname = \"x\"\nfallback = true\n";
    assert_error(&[("t.toml", t)], "t.toml:1", "has no `dataset`");
    // Inherited dataset is fine.
    assert!(errors(&[("base.toml", BASE), ("generic.toml", FALLBACK)]).is_empty());
}

#[test]
fn extends_cycle_and_missing_parent() {
    let a = "[family]\nname = \"a\"\nextends = \"b\"\ndataset = \"d\"\n[[detect]]\nwhen = [{ path = \"x\", exists = true }]\n";
    let b = "[family]\nname = \"b\"\nextends = \"a\"\ndataset = \"d\"\n";
    assert_error(
        &[
            ("a.toml", a),
            ("b.toml", b),
            ("g.toml", FALLBACK),
            ("base.toml", BASE),
        ],
        "a.toml:3",
        "cycle in `extends`: a -> b -> a",
    );
    let c = "[family]\nname = \"c\"\ndataset = \"d\"\nfallback = true\nextends = \"nope\"\n";
    assert_error(
        &[("c.toml", c)],
        "c.toml:5",
        "`extends = \"nope\"` names no table",
    );
}

#[test]
fn two_fallbacks_and_duplicate_names() {
    let g2 = "[family]\nname = \"generic2\"\nextends = \"base\"\nfallback = true\n";
    assert_error(
        &[("base.toml", BASE), ("g.toml", FALLBACK), ("g2.toml", g2)],
        "g2.toml:1",
        "two fallback tables",
    );
    let dup = "[family]\nname = \"base\"\ndataset = \"x\"\nabstract = true\n";
    assert_error(
        &[("base.toml", BASE), ("g.toml", FALLBACK), ("dup.toml", dup)],
        "dup.toml:2",
        "two tables with the same name `base` (also in base.toml:2)",
    );
}

#[test]
fn condition_and_field_shape_errors() {
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n[[detect]]\nwhen = [{ path = \"a\", equals = \"b\", contains = \"c\" }]\n";
    assert_error(&[("t.toml", t)], "t.toml:6", "exactly one of");
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n[[field]]\nto = \"a.b\"\n";
    assert_error(&[("t.toml", t)], "t.toml:5", "needs `from`");
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n[[field]]\nto = \"a.b\"\nfrom = \"x\"\nextract = \"(unclosed\"\n";
    assert_error(&[("t.toml", t)], "t.toml:8", "bad `extract` regex");
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n[[field]]\nto = \"@timestamp\"\nfrom = \"x\"\nconvert = \"int\"\n";
    assert_error(&[("t.toml", t)], "t.toml:6", "`@timestamp` takes");
}

#[test]
fn all_issues_are_reported_at_once() {
    let t = "[family]\nname = \"x\"\ndataset = \"d\"\nfallback = true\n[[field]]\nto = \"a.b\"\nfrom = \"x\"\nconvert = \"nope\"\n[[field]]\nto = \"c\"\nfrom = \"a..b\"\n";
    let errs = errors(&[("t.toml", t)]);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with("t.toml:8:"));
    assert!(errs[1].starts_with("t.toml:11:"));
}

#[test]
fn overlay_replaces_by_name_and_adds_new_names() {
    let over = "[family]\nname = \"generic\"\ndataset = \"custom.generic\"\nfallback = true\n";
    let extra = "[family]\nname = \"custom.new\"\ndataset = \"custom.new\"\n[[detect]]\nwhen = [{ path = \"category\", equals = \"Mine\" }]\n";
    let plan = compile(vec![
        src("base.toml", BASE, false),
        src("generic.toml", FALLBACK, false),
        src("/o/generic.toml", over, true),
        src("/o/new.toml", extra, true),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.fallback.dataset, Some("custom.generic"));
    assert_eq!(plan.names, ["custom.new", "generic"]);
    // Two overlay files with one name is still an error.
    let err = compile(vec![
        src("/o/a.toml", over, true),
        src("/o/b.toml", over, true),
    ])
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("/o/b.toml:2: two tables with the same name `generic`"),
        "{err}"
    );
}

#[test]
fn overlay_directory_is_read() {
    let dir = std::env::temp_dir().join(format!("azlog-overlay-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sinks")).unwrap();
    std::fs::write(dir.join("mine.toml"), "[family]\nname = \"mine\"\ndataset = \"my.data\"\npriority = 1000000\n[[detect]]\nwhen = [{ path = \"category\", equals = \"MyCategory\" }]\n[[field]]\nto = \"labels.mine\"\nvalue = \"yes\"\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
    std::fs::write(dir.join("sinks").join("cef.toml"), "not a family table").unwrap();
    let m = crate::Mapper::load(Some(&dir)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.family_names()[0], "mine");
    let r = m
        .map(
            crate::MapInput {
                json: r#"{"category":"MyCategory","time":"2022-08-22T18:07:16Z"}"#,
                position: Default::default(),
                enqueued_ns: None,
            },
            0,
        )
        .unwrap();
    assert_eq!(r.get_str("event.dataset"), Some("my.data"));
    assert_eq!(r.get_str("labels.mine"), Some("yes"));

    // A broken overlay file stops loading with its path and line.
    std::fs::write(dir.join("zz-broken.toml"), "[family]\nname = \"b\"\ndataset = \"d\"\n[[field]]\nto = \"x\"\nfrom = \"a\"\nconvert = \"nope\"\n").unwrap();
    let err = crate::Mapper::load(Some(&dir)).unwrap_err().to_string();
    assert!(
        err.contains("zz-broken.toml:7: unknown conversion `nope`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let missing =
        crate::Mapper::load(Some(std::path::Path::new("/nonexistent/azlog"))).unwrap_err();
    assert!(
        missing.to_string().contains("cannot read directory"),
        "{missing}"
    );
}

/// The per-field entry the per-record loop walks stays small (one cache line holds 2+).
#[test]
fn hot_field_is_compact() {
    assert!(std::mem::size_of::<crate::schema::plan::HotField>() <= 24);
}
