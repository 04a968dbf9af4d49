//! Property test: the parser returns diagnostics, never panics, on arbitrary input, and every
//! diagnostic's span lies inside the source.

use proptest::prelude::*;

fn check(src: &str) {
    let parsed = skel_grammar::parse(src);
    for e in &parsed.errors {
        let s = e.span();
        assert!(s.start <= s.end && s.end <= src.len() + 1, "{e:?} in {src:?}");
    }
}

const PIECES: &[&str] = &[
    "delete",
    "remove",
    "modify",
    "(",
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
    ":=",
    "|",
    "!",
    "exists",
    "@t",
    "10m",
    "5",
    "\"",
    "\"a.b\"",
    "$x",
    "$y",
    ".",
    "[",
    "]",
    "[*]",
    "[0]",
    "spec",
    "true",
    "#c\n",
    " ",
    "\n",
    "é",
    "-1",
    "1.5",
    "99999999999999999999999",
    // The extensions.
    "||",
    "=~",
    "!~",
    " in ",
    "{",
    "}",
    ":",
    "null",
    "\\",
    "\\u{",
    "\\u{d800}",
    ".*",
    "move",
    "copy",
    "->",
    "insert",
    "file(",
    "1e5",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_strings(src in ".{0,80}") {
        check(&src);
    }

    #[test]
    fn token_soup(idx in proptest::collection::vec(0..PIECES.len(), 0..30)) {
        let src: String = idx.iter().map(|i| PIECES[*i]).collect();
        check(&src);
    }
}
