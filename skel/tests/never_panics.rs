//! Property test: the whole compiler returns diagnostics, never panics, on arbitrary token
//! soup, and every program that compiles also verifies and runs on a sample manifest.

use proptest::prelude::*;
use serde_json::json;

const PIECES: &[&str] = &[
    "delete(",
    "remove(",
    "modify(",
    ")",
    ";",
    ",",
    "*",
    "&&",
    "==",
    "!=",
    "<",
    ">=",
    "=",
    "$x := ",
    "$y := ",
    " | ",
    "!exists(",
    "exists(",
    "@t",
    "10m",
    "5",
    "\"s\"",
    "\"a.b\"",
    "$x",
    "$y",
    ".",
    "[*]",
    "[0]",
    "[1]",
    "spec",
    "a",
    "metadata.labels.app",
    "true",
    "#c\n",
    " ",
    "\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn token_soup_compiles_or_reports(idx in proptest::collection::vec(0..PIECES.len(), 0..40)) {
        let src: String = idx.iter().map(|i| PIECES[*i]).collect();
        let compiled = skel::compile(&src);
        if !compiled.has_errors() {
            prop_assert!(compiled.program.verify().is_ok());
            let mut obj = json!({"a": [1, {"b": 2}], "spec": {"a": "x"}, "metadata": {"labels": {"app": "w"}}});
            let mut vm = skel::Vm::new(&compiled.program, 0);
            let _ = vm.run(&mut obj, 600);
        }
    }
}
