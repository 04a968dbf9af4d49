//! Issue 17, the compiler's part: no script crashes it or makes it work in time that grows
//! with the square of its size. Generated deep and long scripts go through the real binary
//! (`skel compile`, `skel fmt`, `skel apply`): nesting past the limit is a clean diagnostic
//! (exit 1), not a stack overflow (exit 134); long but flat scripts compile. No test measures
//! time: the sizes are ones the old code took many seconds (or minutes) on.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::fs;
use std::path::Path;

use common::{run, skel, Run};

const TRACE: &str = r#"{"version": 2, "config": {"trackedObjects": {}}, "events": [
  {"ts": 10, "applied_objs": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "status": {"x": 1}}], "deleted_objs": []}
], "index": {}, "pod_lifecycles": {}}"#;

fn write(dir: &Path, name: &str, text: &str) {
    fs::write(dir.join(name), text).unwrap();
}

fn compile(dir: &Path, script: &str) -> Run {
    write(dir, "s.skel", script);
    run(skel(dir).args(["compile", "s.skel"]))
}

/// The diagnostic codes a run printed, in order.
fn codes(r: &Run) -> Vec<String> {
    r.stderr.lines().filter(|l| l.starts_with("skel::")).map(str::to_string).collect()
}

/// Every kind of nesting, far past the limit (these sizes overflowed the stack): one
/// `skel::parse::too_deep` from `skel compile`, `skel fmt` and `skel apply`, exit 1.
#[test]
fn nesting_past_the_limit_is_a_diagnostic_in_every_command() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.json", TRACE);
    let scripts = [
        format!("delete({}a == 1{});", "(".repeat(3633), ")".repeat(3633)),
        format!("delete(a in {}1{});", "[".repeat(4300), "]".repeat(4300)),
        format!("modify(a = {}1{});", "{\"a\": ".repeat(8900), "}".repeat(8900)),
        format!("delete({}a == 1{});", "!(".repeat(5000), ")".repeat(5000)),
        format!("remove({});", vec!["a"; 60_000].join(".")),
    ];
    for script in scripts {
        write(dir.path(), "s.skel", &script);
        for args in
            [&["compile", "s.skel"][..], &["fmt", "--check", "s.skel"], &["apply", "s.skel", "t.json", "-o", "o.json"]]
        {
            let r = run(skel(dir.path()).args(args));
            assert_eq!(r.code, 1, "{args:?} on {}: {}", &script[..20], r.stderr);
            assert_eq!(codes(&r), ["skel::parse::too_deep"], "{args:?}: {}", r.stderr);
            // Drawn around the spot, not along the whole line.
            assert!(r.stderr.lines().all(|l| l.chars().count() < 200), "{}", r.stderr);
        }
        assert!(!dir.path().join("o.json").exists());
    }
}

/// The deepest script allowed compiles, formats and runs (the value it sets a little less
/// deep).
#[test]
fn the_deepest_script_allowed_works() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.json", TRACE);
    let deep = format!(
        "delete({}kind == \"Pod\"{});\nmodify(kind == \"Pod\", status.x = {}1{});\nremove({});\n",
        "!(".repeat(127),
        ")".repeat(127),
        // A value the trace readers can read back where it goes (objects nest at most 128
        // levels in a trace, the trace's own included).
        "{\"a\": ".repeat(100),
        "}".repeat(100),
        vec!["b"; 128].join(".")
    );
    write(dir.path(), "s.skel", &deep);
    let r = run(skel(dir.path()).args(["compile", "--emit", "bytecode", "s.skel"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(skel(dir.path()).args(["fmt", "s.skel"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(skel(dir.path()).args(["apply", "--quiet", "s.skel", "t.json", "-o", "o.json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out: serde_json::Value = serde_json::from_slice(&fs::read(dir.path().join("o.json")).unwrap()).unwrap();
    let x = &out["events"][0]["applied_objs"][0]["status"]["x"];
    assert_eq!(x.to_string().matches("{\"a\":").count(), 100);
}

/// Long but flat: these are not nesting and compile and format, each in time linear in its length (the
/// old code: seconds to minutes, from scans of everything before at every step).
#[test]
fn long_flat_scripts_compile() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let scripts = [
        // `||` terms, `&&` tests, statements, distinct keys, kinds, constants and patterns.
        format!("delete({});", (0..n).map(|i| format!("kind == \"K{i}\"")).collect::<Vec<_>>().join(" || ")),
        format!("delete({});", (0..n).map(|i| format!("a{i} == {i}")).collect::<Vec<_>>().join(" && ")),
        (0..n).map(|i| format!("remove(a{i});\n")).collect(),
        (0..n).map(|i| format!("delete(kind == \"K{i}\");\nremove(f{i});\n")).collect(),
        (0..n).map(|i| format!("delete(metadata.name =~ \"^n{i}$\");\n")).collect(),
        // Variables, side by side and each bound over the one before.
        format!(
            "delete({});",
            (0..n).map(|i| format!("$v{i} := a{i}[*] | exists($v{i}.x)")).collect::<Vec<_>>().join(" && ")
        ),
        format!(
            "remove($v0 := a[*] | exists($v0.x) && {}, $v{}.c);",
            (1..n).map(|i| format!("$v{i} := $v{}.b[*] | exists($v{i}.x)", i - 1)).collect::<Vec<_>>().join(" && "),
            n - 1
        ),
    ];
    for script in scripts {
        let r = compile(dir.path(), &script);
        assert_eq!(r.code, 0, "{}: {}", &script[..40], r.stderr.lines().next().unwrap_or(""));
        // The formatter too (it measured each line break from the statement's start).
        let r = run(skel(dir.path()).args(["fmt", "s.skel"]));
        assert_eq!(r.code, 0, "{}: {}", &script[..40], r.stderr.lines().next().unwrap_or(""));
    }
}

/// Many diagnostics about one long script: each is drawn from one index of its lines (the
/// script was rescanned for each).
#[test]
fn many_warnings_about_a_long_script() {
    let dir = tempfile::tempdir().unwrap();
    let script: String = (0..20_000).map(|i| format!("modify(kind == \"Pod\", metadata.labels.a = {i});\n")).collect();
    let r = compile(dir.path(), &script);
    assert_eq!(r.code, 0, "{}", r.stderr.lines().next().unwrap_or(""));
    assert_eq!(codes(&r).len(), 20_000);
    assert!(r.stderr.contains("[s.skel:20000:43]"));
}

/// More variables in a statement than the VM numbers: a diagnostic, once (it was invalid
/// bytecode).
#[test]
fn too_many_variables_in_a_statement() {
    let dir = tempfile::tempdir().unwrap();
    let binds: Vec<String> = (0..65_536).map(|i| format!("$v{i} := a[*] | exists($v{i})")).collect();
    let r = compile(dir.path(), &format!("delete({});", binds.join(" && ")));
    assert_eq!(r.code, 1);
    assert_eq!(codes(&r), ["skel::check::too_many_variables"]);
    assert!(r.stderr.contains("$v65535"), "{}", r.stderr);
}

/// A diagnostic past column 65,535, an error or a warning, is drawn around its spot (miette
/// panicked: "Formatting argument out of range").
#[test]
fn diagnostics_far_along_a_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.json", TRACE);
    let spaces = " ".repeat(70_000);
    let r = compile(dir.path(), &format!("{spaces}remove(status"));
    assert_eq!(r.code, 1, "{}", r.stderr);
    insta::assert_snapshot!("error_far_along_a_line", r.stderr);
    write(dir.path(), "w.skel", &format!("{spaces}delete(kind == \"A\" && kind == \"B\");\n"));
    let r = run(skel(dir.path()).args(["apply", "w.skel", "t.json", "-o", "o.json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warning = r.stderr.lines().take_while(|l| !l.starts_with("skel: ")).collect::<Vec<_>>().join("\n");
    insta::assert_snapshot!("warning_far_along_a_line", warning);
    let r = run(skel(dir.path()).args(["fmt", "--check", "w.skel"]));
    assert_eq!(r.code, 1, "{}", r.stderr);
}

/// `delete(kind == "Pod" x);`: the diagnostic points at `x` and says what may follow a test.
#[test]
fn a_word_after_a_test() {
    let dir = tempfile::tempdir().unwrap();
    let r = compile(dir.path(), "delete(kind == \"Pod\" x);\n");
    assert_eq!(r.code, 1);
    insta::assert_snapshot!("word_after_a_test", r.stderr);
}

/// A UTF-8 byte-order mark starts a script, an insert file and a manifest file.
#[test]
fn a_byte_order_mark_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.json", TRACE);
    write(dir.path(), "m.yaml", "\u{feff}apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
    write(dir.path(), "s.skel", "\u{feff}remove(status);\ninsert(@t == 20, file(\"m.yaml\"));\n");
    let r = run(skel(dir.path()).args(["apply", "--quiet", "s.skel", "t.json", "-o", "o.json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = fs::read_to_string(dir.path().join("o.json")).unwrap();
    assert!(out.contains("ConfigMap") && !out.contains("status"), "{out}");
    let r = run(skel(dir.path()).args(["fmt", "s.skel"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!fs::read_to_string(dir.path().join("s.skel")).unwrap().starts_with('\u{feff}'));
    let r = run(skel(dir.path()).args(["check", "--target-version", "1.25", "m.yaml"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// YAML nested 100,000 deep in an insert file and a manifest: refused at once (libyaml took
/// half a minute before its error).
#[test]
fn deep_yaml_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("kind: A\nx: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    write(dir.path(), "m.yaml", &deep);
    let r = compile(dir.path(), "insert(@t == 20, file(\"m.yaml\"));\n");
    assert_eq!(r.code, 1);
    assert_eq!(codes(&r), ["skel::check::insert_file"]);
    assert!(r.stderr.contains("nested too deep at line 2"), "{}", r.stderr);
    let r = run(skel(dir.path()).args(["check", "--target-version", "1.25", "m.yaml"]));
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nested too deep at line 2"), "{}", r.stderr);
}

/// A script can nest an object deeper while it runs (a `move` into its own value, once per
/// statement): past what a trace holds it is `skel::run::too_deep`, not a trace that cannot be
/// read again (or, repeated 20,000 times, a stack overflow). An inserted object likewise.
#[test]
fn objects_never_grow_deeper_than_a_trace_holds() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t.json", TRACE);
    for script in [
        "move(status -> status.b);\n".repeat(20_000),
        format!(
            "insert(@t == 0s, {{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"x\"}}, \"data\": {}1{}}});",
            "{\"a\": ".repeat(126),
            "}".repeat(126)
        ),
    ] {
        write(dir.path(), "s.skel", &script);
        let r = run(skel(dir.path()).args(["apply", "s.skel", "t.json", "-o", "o.json"]));
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(codes(&r) == ["skel::run::too_deep"] || codes(&r) == ["skel::check::insert_not_manifest"], "{}", r.stderr);
        assert!(!dir.path().join("o.json").exists());
    }
    // As deep as a trace holds: written, and read again.
    write(dir.path(), "s.skel", &"move(status -> status.b);\n".repeat(124));
    let r = run(skel(dir.path()).args(["apply", "s.skel", "t.json", "-o", "o.json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    write(dir.path(), "empty.skel", "");
    let r = run(skel(dir.path()).args(["apply", "empty.skel", "o.json", "-o", "again.json"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
}
