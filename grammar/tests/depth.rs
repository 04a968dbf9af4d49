//! The nesting limit: a statement nests brackets at most `MAX_DEPTH` deep and a path has at most
//! `MAX_DEPTH` segments; past that a `skel::parse::too_deep` diagnostic points at the first level
//! too deep, before any stage recurses over it. Up to the limit, parsing, printing and formatting
//! work, on a thread with a small stack too.

use skel_grammar::{ast::Span, format, parse, parse_path, ParseError, MAX_DEPTH};

fn codes(src: &str) -> Vec<String> {
    parse(src).errors.iter().filter_map(|e| miette::Diagnostic::code(e).map(|c| c.to_string())).collect()
}

fn too_deep_span(src: &str) -> Option<Span> {
    parse(src).errors.into_iter().find_map(|e| match e {
        ParseError::TooDeep { span, .. } => Some(span),
        _ => None,
    })
}

/// `delete(` then `n` groups around a test.
fn groups(n: usize) -> String {
    format!("delete({}a == 1{});", "(".repeat(n), ")".repeat(n))
}

fn path(n: usize) -> String {
    vec!["a"; n].join(".")
}

/// Runs `f` on a thread with a 4 MiB stack (half what the main thread has), in a debug build.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let t = std::thread::Builder::new().stack_size(4 << 20).spawn(f).expect("a thread");
    assert!(t.join().is_ok(), "the thread panicked");
}

#[test]
fn brackets_nest_up_to_the_limit() {
    // The command's own `(` is the first level.
    let ok = groups(MAX_DEPTH - 1);
    assert!(codes(&ok).is_empty(), "{:?}", codes(&ok));
    let deep = groups(MAX_DEPTH);
    assert_eq!(codes(&deep), ["skel::parse::too_deep"]);
    // The bracket that opens level 129.
    let at = "delete(".len() + MAX_DEPTH - 1;
    assert_eq!(too_deep_span(&deep), Some(Span::new(at, at + 1)));
}

#[test]
fn every_kind_of_bracket_counts() {
    let n = MAX_DEPTH + 10;
    for src in [
        format!("delete(a in {}1{});", "[".repeat(n), "]".repeat(n)),
        format!("modify(a = {}1{});", "{\"a\": ".repeat(n), "}".repeat(n)),
        format!("delete({}a == 1{});", "!(".repeat(n), ")".repeat(n)),
        // Far past the depth at which the parser's own recursion used to overflow.
        groups(100_000),
    ] {
        assert_eq!(codes(&src), ["skel::parse::too_deep"], "{}", &src[..40]);
    }
}

#[test]
fn brackets_in_strings_and_comments_do_not_count() {
    let deep = "(".repeat(MAX_DEPTH * 2);
    let src = format!("delete(a == \"{deep}\"); # {deep}\nremove(b);");
    assert!(codes(&src).is_empty(), "{:?}", codes(&src));
}

#[test]
fn each_statement_has_its_own_depth() {
    let src = format!("{}\n{}\n{}", groups(MAX_DEPTH - 1), groups(MAX_DEPTH), groups(MAX_DEPTH - 1));
    let parsed = parse(&src);
    assert_eq!(parsed.script.statements.len(), 2);
    assert_eq!(parsed.errors.len(), 1);
}

#[test]
fn paths_have_at_most_the_limit_of_segments() {
    let ok = format!("remove({});", path(MAX_DEPTH));
    assert!(codes(&ok).is_empty());
    let long = format!("remove({});", path(MAX_DEPTH + 1));
    assert_eq!(codes(&long), ["skel::parse::too_deep"]);
    // The segment that is one too many.
    let at = "remove(".len() + 2 * MAX_DEPTH;
    assert_eq!(too_deep_span(&long), Some(Span::new(at, at + 1)));
    // Indices are segments too; a long path is refused without recursing over it.
    let long = format!("delete(a{} == 1);", "[0]".repeat(200_000));
    assert_eq!(codes(&long), ["skel::parse::too_deep"]);
    assert!(matches!(parse_path(&path(MAX_DEPTH + 1), 0), Err(ParseError::TooDeep { .. })));
    assert!(parse_path(&path(MAX_DEPTH), 0).is_ok());
}

#[test]
fn the_deepest_script_parses_prints_and_formats_on_a_small_stack() {
    on_small_stack(|| {
        let deep = [
            groups(MAX_DEPTH - 1),
            format!("delete({}a == 1{});", "!(".repeat(MAX_DEPTH - 1), ")".repeat(MAX_DEPTH - 1)),
            format!("modify(a = {}1{});", "{\"a\": ".repeat(MAX_DEPTH - 1), "}".repeat(MAX_DEPTH - 1)),
            format!("delete(a in {}1{});", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1)),
            format!("remove({});", path(MAX_DEPTH)),
        ]
        .join("\n");
        let parsed = parse(&deep);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.script.statements.len(), 5);
        assert!(!skel_grammar::ast_to_string(&parsed.script).is_empty());
        let formatted = format(&deep).expect("formats");
        assert_eq!(format(&formatted).as_ref(), Ok(&formatted));
    });
}

#[test]
fn a_byte_order_mark_starts_a_script() {
    let parsed = parse("\u{feff}remove(status);\n");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    // Spans still point into the text as it is, mark included.
    assert_eq!(parsed.script.statements[0].span, Span::new(3, 17));
    // Only at the start: elsewhere it is not whitespace.
    assert_eq!(codes("remove(status);\u{feff}remove(spec);").len(), 1);
    assert_eq!(format("\u{feff}remove( status );").as_deref(), Ok("remove(status);\n"));
}

#[test]
fn a_word_after_a_complete_test_is_what_is_unexpected() {
    let src = "delete(kind == \"Pod\" x);";
    let errors = parse(src).errors;
    let [ParseError::Syntax { found, span, expected, .. }] = errors.as_slice() else {
        panic!("{errors:?}");
    };
    assert_eq!((found.as_str(), &src[span.start..span.end]), ("`x`", "x"));
    assert_eq!(expected, "`)`, `&&` or `||`");
    // Likewise in an array and an object.
    let errors = parse("delete(a in [1 2]);").errors;
    assert!(
        matches!(&errors[..], [ParseError::Syntax { span, expected, .. }]
        if *span == Span::new(15, 16) && expected == "`]` or `,`"),
        "{errors:?}"
    );
    let errors = parse("modify(a = {\"x\": 1 \"y\": 2});").errors;
    assert!(
        matches!(&errors[..], [ParseError::Syntax { span, expected, .. }]
        if *span == Span::new(19, 20) && expected == "`}` or `,`"),
        "{errors:?}"
    );
}
