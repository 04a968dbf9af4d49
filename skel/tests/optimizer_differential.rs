//! The optimizer changes nothing: random scripts built from realistic tests run optimized and
//! unoptimized over sample objects, and must give identical objects, outcomes and errors.

use proptest::prelude::*;
use serde_json::{json, Value};

const TESTS: &[&str] = &[
    "kind == \"Pod\"",
    "kind == \"Service\"",
    "kind != \"Pod\"",
    "apiVersion == \"v1\"",
    "exists(spec.a)",
    "!exists(spec.a)",
    "spec.a[*].b == 1",
    "spec.a[*].b != 1",
    "spec.n >= 2",
    "x == y",
    "x == spec.n",
    "@t > 5m",
    "@t < 1500",
    "@t >= 1200",
    "@t == 1000",
    "metadata.labels.app == \"web\"",
];

const BINDS: &[&str] =
    &["$v := spec.a[*] | exists($v.b)", "$v := spec.a[*] | $v.b == 1", "$v := spec.a[*] | !exists($v.c)"];

const ACTIONS: &[&str] = &[
    "delete",
    "remove(status)",
    "remove(spec.a[*].b)",
    "remove($v)",
    "modify(kind = \"Service\")",
    "modify(spec.n = 3)",
    "modify(metadata.labels.app = \"db\")",
    "modify($v.c = 1)",
    "modify(y = x)",
];

fn statement(tests: &[usize], bind: Option<usize>, action: usize) -> String {
    let mut sel: Vec<String> = tests.iter().map(|i| TESTS[*i % TESTS.len()].to_string()).collect();
    let action = ACTIONS[action % ACTIONS.len()];
    let uses_var = action.contains("$v");
    if let Some(b) = bind.or(if uses_var { Some(0) } else { None }) {
        sel.insert(sel.len() / 2, BINDS[b % BINDS.len()].to_string());
    }
    let sel = if sel.is_empty() { "*".to_string() } else { sel.join(" && ") };
    match action {
        "delete" => format!("delete({sel});"),
        a => {
            let (cmd, rest) = a.split_once('(').unwrap_or((a, ")"));
            format!("{cmd}({sel}, {rest};")
        }
    }
}

fn objects() -> Vec<Value> {
    vec![
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"labels": {"app": "web"}}, "spec": {"a": [{"b": 1}, {"b": 2, "c": 0}], "n": 2}, "status": {}, "x": 1, "y": 1}),
        json!({"kind": "Service", "apiVersion": "v1", "metadata": {}, "spec": {"n": 1}, "x": 1}),
        json!({"kind": "Pod", "metadata": {"labels": {"app": "db"}}, "spec": {"a": []}, "x": "1", "y": 2}),
        json!({"apiVersion": "apps/v1", "metadata": {}, "spec": {"a": [{"c": 1}]}}),
    ]
}

fn run_all(src: &str, level: skel::OptLevel) -> Vec<String> {
    let compiled = skel::compile_with(src, level);
    assert!(!compiled.has_errors(), "{src}: {:?}", compiled.diagnostics);
    let mut results = Vec::new();
    for ts in [1000, 1300, 1700] {
        let mut vm = skel::Vm::new(&compiled.program, 1000);
        for mut obj in objects() {
            // Statement indices differ when the optimizer drops statements; the span the user
            // sees does not.
            let r = vm.run(&mut obj, ts).map_err(|e| (compiled.program.stmts[e.stmt].span, e.kind));
            results.push(format!("{r:?} {obj}"));
        }
    }
    results
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn optimized_equals_unoptimized(
        stmts in proptest::collection::vec(
            (proptest::collection::vec(0..TESTS.len(), 0..4), proptest::option::of(0..BINDS.len()), 0..ACTIONS.len()),
            1..5,
        )
    ) {
        let src: String = stmts.iter().map(|(t, b, a)| statement(t, *b, *a)).collect::<Vec<_>>().join("\n");
        prop_assert_eq!(run_all(&src, skel::OptLevel::Full), run_all(&src, skel::OptLevel::None), "{}", src);
    }
}
