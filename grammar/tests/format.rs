//! The canonical formatter (`skel_grammar::format`): one example per style rule, then the
//! properties over every script of the repository and the SimKube conformance corpus, and over
//! generated scripts: the result is a fixed point, parses, says the same (the AST, spans aside)
//! and keeps every comment, in order. (That the bytecode is the same is checked in the root
//! package's `tests/fmt.rs`, which can compile.)

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use skel_grammar::{ast_to_string, format, parse, FormatError};

// ---------------------------------------------------------------------------------------------
// Helpers

/// Formats a script that must parse.
fn fmt(src: &str) -> String {
    match format(src) {
        Ok(out) => out,
        Err(e) => panic!("{e}: {:?}\n{src}", e.parse_errors()),
    }
}

/// Asserts that `src` formats to `want`, and that `want` is a fixed point.
#[track_caller]
fn formats_to(src: &str, want: &str) {
    let got = fmt(src);
    assert_eq!(got, want, "\n--- input:\n{src}\n--- got:\n{got}\n--- want:\n{want}");
    assert_eq!(fmt(want), want, "not a fixed point:\n{want}");
}

/// `ast_to_string` without its `@START..END` spans: what the script says, not where.
fn ast_without_spans(src: &str) -> String {
    let parsed = parse(src);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let text = ast_to_string(&parsed.script);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find(" @") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let n = digits(after);
        let is_span = n > 0 && after[n..].starts_with("..") && digits(&after[n + 2..]) > 0;
        if is_span {
            rest = &after[n + 2 + digits(&after[n + 2..])..];
        } else {
            out.push_str(" @");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The comments of a script, in order, trailing whitespace removed (strings skipped as the
/// statement splitter skips them: `\"` and `\\` do not end one).
fn comments(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                while let Some((_, c2)) = chars.next() {
                    match c2 {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some((_, '"' | '\\'))) => {
                            chars.next();
                        }
                        _ => {}
                    }
                }
            }
            '#' => {
                let end = src[i..].find('\n').map_or(src.len(), |n| i + n);
                out.push(src[i..end].trim_end().to_string());
                while chars.peek().is_some_and(|(j, _)| *j < end) {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    out
}

/// Every property of one script that parses; `Err` says which one fails.
fn check_properties(src: &str) -> Result<String, String> {
    let once = format(src).map_err(|e| format!("format failed: {e} {:?}", e.parse_errors()))?;
    let twice = format(&once).map_err(|e| format!("the result does not format: {e}\n{once}"))?;
    if twice != once {
        return Err(format!("not idempotent:\n--- once:\n{once}\n--- twice:\n{twice}"));
    }
    let again = parse(&once);
    if !again.errors.is_empty() {
        return Err(format!("the result does not parse: {:?}\n{once}", again.errors));
    }
    if ast_without_spans(src) != ast_without_spans(&once) {
        return Err(format!("the AST changed:\n{once}"));
    }
    if comments(src) != comments(&once) {
        return Err(format!("comments changed: {:?} -> {:?}", comments(src), comments(&once)));
    }
    if !(once.is_empty() || once.ends_with('\n') && !once.ends_with("\n\n")) {
        return Err(format!("must end with exactly one newline: {once:?}"));
    }
    if once.starts_with('\n') || once.contains("\n\n\n") || once.contains('\r') {
        return Err(format!("blank lines at the start, several blank lines, or CR: {once:?}"));
    }
    if let Some(line) = once.lines().find(|l| l.ends_with([' ', '\t'])) {
        return Err(format!("trailing whitespace in {line:?}"));
    }
    Ok(once)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn skel_files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            skel_files_under(&p, out);
        } else if p.extension().is_some_and(|x| x == "skel") {
            out.push(p);
        }
    }
}

/// Fenced ```skel and ```skel-error blocks of a Markdown file.
fn doc_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let fence = line.trim_start().starts_with("```");
        match &mut current {
            None if fence && matches!(line.trim_start().trim_start_matches('`').trim(), "skel" | "skel-error") => {
                current = Some(String::new());
            }
            Some(_) if fence => out.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

/// Every SKEL script we can find: (name, text), without duplicates.
fn corpus() -> Vec<(String, String)> {
    let root = root();
    let mut files = Vec::new();
    skel_files_under(&root.join("examples"), &mut files);
    skel_files_under(&root.join("tests/data"), &mut files);
    skel_files_under(&root.join("skel/tests"), &mut files);
    skel_files_under(&root.join("../shared/conformance"), &mut files);
    let mut scripts: Vec<(String, String)> = Vec::new();
    for f in files {
        // tests/data/cli/non-utf8.skel is not text.
        if let Ok(text) = std::fs::read_to_string(&f) {
            scripts.push((f.strip_prefix(&root).unwrap_or(&f).display().to_string(), text));
        }
    }
    let mut docs = vec![root.join("README.md")];
    skel_files_under(&root.join("docs"), &mut Vec::new());
    if let Ok(entries) = std::fs::read_dir(root.join("docs")) {
        docs.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "md")));
    }
    docs.sort();
    for d in docs {
        let text = std::fs::read_to_string(&d).unwrap_or_default();
        for (i, block) in doc_blocks(&text).into_iter().enumerate() {
            scripts.push((format!("{} block {i}", d.display()), block));
        }
    }
    let mut seen = std::collections::HashSet::new();
    scripts.retain(|(_, text)| seen.insert(text.clone()));
    scripts
}

// ---------------------------------------------------------------------------------------------
// Spacing

#[test]
fn operators_get_one_space_around_them() {
    formats_to(
        "delete( kind==\"Pod\"&&metadata.name!=\"x\"||spec.n<=3&&spec.m>-1 );",
        "delete(kind == \"Pod\" && metadata.name != \"x\" || spec.n <= 3 && spec.m > -1);\n",
    );
    formats_to("delete(@t>=5m&&@t<1h);", "delete(@t >= 5m && @t < 1h);\n");
    formats_to(
        "modify(metadata.name=~\"^web\"&&kind   in[\"A\",\"B\"],spec.replicas=0);",
        "modify(metadata.name =~ \"^web\" && kind in [\"A\", \"B\"], spec.replicas = 0);\n",
    );
    formats_to("delete(metadata.name!~\"x\");", "delete(metadata.name !~ \"x\");\n");
    formats_to(
        "remove($x:=spec.env[*]|exists($x.valueFrom),$x);",
        "remove($x := spec.env[*] | exists($x.valueFrom), $x);\n",
    );
    formats_to("move( a.b\n  ->   a.c );", "move(a.b -> a.c);\n");
    formats_to("copy(kind==\"X\" ,a ->b);", "copy(kind == \"X\", a -> b);\n");
}

#[test]
fn paths_are_never_spaced() {
    formats_to(
        "remove( spec.containers[*].env[0].\"a.b\"[\"k\"].* ) ;",
        "remove(spec.containers[*].env[0].\"a.b\"[\"k\"].*);\n",
    );
    formats_to(
        "modify( $x := a[*] | $x.b == 1 , $x.\"c d\" = 2 );",
        "modify($x := a[*] | $x.b == 1, $x.\"c d\" = 2);\n",
    );
}

#[test]
fn brackets_commas_and_colons() {
    formats_to(
        "modify(a == TRUE, b = { \"k\" :[ 1 ,-2.50 , null,\"\\u{e9}\\n\" ] , \"m\":{ } , \"n\" : [ ] });",
        "modify(a == TRUE, b = {\"k\": [1, -2.50, null, \"\\u{e9}\\n\"], \"m\": {}, \"n\": []});\n",
    );
    // A trailing comma is a token of the script: it stays.
    formats_to("delete(kind in [ \"A\" , ]);", "delete(kind in [\"A\",]);\n");
    formats_to("insert( @t == 10m , file ( \"x.yaml\" ) ) ;", "insert(@t == 10m, file(\"x.yaml\"));\n");
    formats_to(
        "insert(@t==0s,{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"x\"}});",
        "insert(@t == 0s, {\"kind\": \"Namespace\", \"metadata\": {\"name\": \"x\"}});\n",
    );
}

#[test]
fn bang_sticks_to_what_it_negates() {
    formats_to(
        "delete(! exists( spec.x ) && ! ( a == 1 || b == 2 ) && !!exists(c));",
        "delete(!exists(spec.x) && !(a == 1 || b == 2) && !!exists(c));\n",
    );
    formats_to("delete( ! @t > 5m && ! $v := a[*] | $v == 1 );", "delete(!@t > 5m && !$v := a[*] | $v == 1);\n");
}

#[test]
fn select_all_and_commands() {
    formats_to("delete ( * ) ;", "delete(*);\n");
    formats_to("remove( * , status );", "remove(*, status);\n");
    formats_to("modify(metadata.labels.a   =   \"x\");", "modify(metadata.labels.a = \"x\");\n");
}

#[test]
fn literals_keep_their_source_text() {
    // Escapes, letter case, decimal zeros, durations, big integers: exactly as written.
    formats_to(
        "modify(a == \"say \\\"hi\\\"\\t\\\\\" && b == FaLsE && c == 1.50 && d == 18446744073709551615, e = \"\\d+\");",
        "modify(a == \"say \\\"hi\\\"\\t\\\\\" && b == FaLsE && c == 1.50 && d == 18446744073709551615, e = \"\\d+\");\n",
    );
    formats_to("delete(@t >= 90s && @t < 1709242000);", "delete(@t >= 90s && @t < 1709242000);\n");
    // A `#` or `;` in a string is neither a comment nor the end of a statement.
    formats_to("delete(a == \"x # y; z\");", "delete(a == \"x # y; z\");\n");
    // A line break in a string is the string's.
    formats_to("modify(a = \"two\nlines\" );", "modify(a = \"two\nlines\");\n");
}

// ---------------------------------------------------------------------------------------------
// Lines

#[test]
fn one_statement_per_line() {
    formats_to("remove(a);remove(b);   delete(*);", "remove(a);\nremove(b);\ndelete(*);\n");
    formats_to(
        "delete(kind == \"Pod\"\n       && @t > 30m);\nmodify(\n  kind == \"Job\",\n  spec.x = 1\n);",
        "delete(kind == \"Pod\" && @t > 30m);\nmodify(kind == \"Job\", spec.x = 1);\n",
    );
}

#[test]
fn a_long_selector_breaks_before_its_top_level_operators() {
    let src = "remove($v := spec.template.spec.volumes[*] | exists($v.configMap) && \
               $m := spec.template.spec.containers[*].volumeMounts[*] | $m.name == $v.name, $m);";
    formats_to(
        src,
        "remove($v := spec.template.spec.volumes[*] | exists($v.configMap)\n    \
         && $m := spec.template.spec.containers[*].volumeMounts[*] | $m.name == $v.name, $m);\n",
    );
    // `||` too, and the lines are filled greedily: a break only where the next part does not fit.
    let tests: Vec<String> = (0..12).map(|i| format!("metadata.labels.key{i} == \"value-{i}\"")).collect();
    let src = format!("delete({});", tests.join(" || "));
    formats_to(
        &src,
        "delete(metadata.labels.key0 == \"value-0\" || metadata.labels.key1 == \"value-1\"\n    \
         || metadata.labels.key2 == \"value-2\" || metadata.labels.key3 == \"value-3\"\n    \
         || metadata.labels.key4 == \"value-4\" || metadata.labels.key5 == \"value-5\"\n    \
         || metadata.labels.key6 == \"value-6\" || metadata.labels.key7 == \"value-7\"\n    \
         || metadata.labels.key8 == \"value-8\" || metadata.labels.key9 == \"value-9\"\n    \
         || metadata.labels.key10 == \"value-10\" || metadata.labels.key11 == \"value-11\");\n",
    );
    for line in fmt(&src).lines() {
        assert!(line.chars().count() <= 100, "{line}");
    }
}

#[test]
fn exactly_one_hundred_characters_fit() {
    // 100 characters: one line; 101: broken.
    let make = |n: usize| format!("delete(kind == \"Pod\" && metadata.name == \"{}\");", "x".repeat(n));
    let base = make(0).chars().count();
    let fits = make(100 - base);
    assert_eq!(fits.chars().count(), 100);
    formats_to(&fits, &format!("{fits}\n"));
    let long = make(101 - base);
    let name = "x".repeat(101 - base);
    formats_to(&long, &format!("delete(kind == \"Pod\"\n    && metadata.name == \"{name}\");\n"));
}

#[test]
fn a_long_statement_breaks_after_its_selector() {
    formats_to(
        "modify(kind == \"Deployment\" && spec.template.spec.priority < -2.5, metadata.labels.low-priority = \"true\");",
        "modify(kind == \"Deployment\" && spec.template.spec.priority < -2.5,\n    metadata.labels.low-priority = \"true\");\n",
    );
    formats_to(
        "modify(kind == \"Ingress\" && apiVersion in [\"networking.k8s.io/v1beta1\", \"extensions/v1beta1\"] && \
         $p := spec.rules[*].http.paths[*] | exists($p.pathType), spec.rules[*].http.paths[*].pathType = \"x\");",
        "modify(kind == \"Ingress\" && apiVersion in [\"networking.k8s.io/v1beta1\", \"extensions/v1beta1\"]\n    \
         && $p := spec.rules[*].http.paths[*] | exists($p.pathType),\n    \
         spec.rules[*].http.paths[*].pathType = \"x\");\n",
    );
}

#[test]
fn never_inside_a_path_a_string_or_brackets() {
    // Nothing at the top level to break at: the line stays long.
    let path = format!("spec.{}", ["template"; 20].join("."));
    formats_to(&format!("remove({path});"), &format!("remove({path});\n"));
    let s = format!("\"{}\"", "y".repeat(120));
    formats_to(&format!("delete(a == {s});"), &format!("delete(a == {s});\n"));
    // The `||` inside the group and the commas inside the array are not broken.
    let group = (0..6).map(|i| format!("metadata.name == \"name-{i}\"")).collect::<Vec<_>>().join(" || ");
    let array = (0..12).map(|i| format!("\"item-{i}\"")).collect::<Vec<_>>().join(", ");
    formats_to(
        &format!("delete(kind == \"Pod\" && ({group}) && kind in [{array}]);"),
        &format!("delete(kind == \"Pod\"\n    && ({group})\n    && kind in [{array}]);\n"),
    );
}

// ---------------------------------------------------------------------------------------------
// Comments and blank lines

#[test]
fn comments_between_statements_stay_on_their_lines() {
    formats_to("  # a\nremove(a);\n    # b\n\t# c\nremove(b);", "# a\nremove(a);\n# b\n# c\nremove(b);\n");
}

#[test]
fn a_comment_after_a_statement_stays_after_one_space() {
    formats_to("delete(kind == \"Pod\");  # x", "delete(kind == \"Pod\"); # x\n");
    formats_to("remove(a);# x   \nremove(b);\t#y\n", "remove(a); # x\nremove(b); #y\n");
    formats_to("remove(a); remove(b); # x\n", "remove(a);\nremove(b); # x\n");
}

#[test]
fn a_comment_inside_a_statement_stays_and_the_statement_continues_indented() {
    formats_to(
        "modify(kind == \"Service\", # inline between args\n  spec.type = \"ClusterIP\");",
        "modify(kind == \"Service\", # inline between args\n    spec.type = \"ClusterIP\");\n",
    );
    formats_to(
        "delete(kind == \"Pod\"\n       # only the old ones\n       # really\n\n       && @t > 30m);",
        "delete(kind == \"Pod\"\n    # only the old ones\n    # really\n    && @t > 30m);\n",
    );
    formats_to(
        "insert(@t == 0s, { # the manifest\n  \"kind\": \"Namespace\" # its kind\n});",
        "insert(@t == 0s, { # the manifest\n    \"kind\": \"Namespace\" # its kind\n    });\n",
    );
    // Before the `;`, and after the command name.
    formats_to("delete(*) # c\n;", "delete(*) # c\n    ;\n");
    formats_to("delete # c\n(*);", "delete # c\n    (*);\n");
}

#[test]
fn blank_lines_are_kept_but_collapsed() {
    formats_to(
        "\n\n\nremove(a);\n\n\n\nremove(b);\n\n# c\n\n\n\n# d\nremove(c);\n\n\n",
        "remove(a);\n\nremove(b);\n\n# c\n\n# d\nremove(c);\n",
    );
    // None inside a statement.
    formats_to("delete(kind == \"Pod\"\n\n\n  && @t > 1m);", "delete(kind == \"Pod\" && @t > 1m);\n");
}

#[test]
fn empty_and_comment_only_scripts() {
    formats_to("", "");
    formats_to(" \n\t\n\n", "");
    formats_to("# only", "# only\n");
    formats_to("\n\n  # only\n\n\n# more  \n\n", "# only\n\n# more\n");
}

#[test]
fn line_ends_become_line_feeds() {
    formats_to("remove(a);\r\n# c\r\n\r\n\r\nremove(b); # d\r\n", "remove(a);\n# c\n\nremove(b); # d\n");
}

#[test]
fn the_examples_are_formatted() {
    for name in ["sanitize.skel", "migrate.skel"] {
        let text = std::fs::read_to_string(root().join("examples").join(name)).unwrap();
        assert_eq!(fmt(&text), text, "examples/{name} is not in the canonical style");
    }
}

#[test]
fn the_ingress_example_in_the_canonical_style() {
    let text = std::fs::read_to_string(root().join("examples/ingress-v1.skel")).unwrap();
    let got = fmt(&text);
    assert!(got.contains(
        "move(kind == \"Ingress\" && apiVersion in [\"networking.k8s.io/v1beta1\", \"extensions/v1beta1\"]\n    \
         && $b := spec.rules[*].http.paths[*].backend | exists($b.serviceName),\n    \
         $b.serviceName -> $b.service.name);\n"
    ));
    assert!(got.contains("# v1 renames the default backend.\nmove("), "{got}");
    check_properties(&text).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn a_script_that_does_not_parse_is_not_formatted() {
    for src in
        ["remove(status) remove(spec);", "delete(*);;", "remove(status)", "delete(kind == \"Pod);", "modfy(a = 1);"]
    {
        let parsed = parse(src);
        assert!(!parsed.errors.is_empty());
        assert_eq!(format(src), Err(FormatError::Parse(parsed.errors)), "{src}");
    }
}

// ---------------------------------------------------------------------------------------------
// Every script we have

#[test]
fn every_script_formats_to_a_fixed_point_that_says_the_same() {
    let mut formatted = 0;
    let mut refused = 0;
    let mut failures = Vec::new();
    let mut conformance = 0;
    for (name, src) in corpus() {
        let parsed = parse(&src);
        if !parsed.errors.is_empty() {
            assert_eq!(format(&src), Err(FormatError::Parse(parsed.errors)), "{name}");
            refused += 1;
            continue;
        }
        formatted += 1;
        conformance += usize::from(name.contains("conformance"));
        if let Err(e) = check_properties(&src) {
            failures.push(format!("{name}: {e}"));
        }
    }
    eprintln!("formatted {formatted} scripts ({conformance} from the conformance corpus), {refused} do not parse");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n\n"));
    assert!(formatted >= 80, "only {formatted} scripts found");
    if root().join("../shared/conformance").is_dir() {
        assert!(conformance >= 20, "only {conformance} conformance scripts");
    }
}

// ---------------------------------------------------------------------------------------------
// Generated scripts: statements cut into tokens, joined by random whitespace and comments

const STATEMENTS: &[&[&str]] = &[
    &["delete", "(", "kind", "==", "\"Pod\"", ")", ";"],
    &["remove", "(", "status", ")", ";"],
    &["delete", "(", "*", ")", ";"],
    &["remove", "(", "*", ",", "metadata.annotations.*", ")", ";"],
    &[
        "modify",
        "(",
        "kind",
        "==",
        "\"CronJob\"",
        "&&",
        "apiVersion",
        "==",
        "\"batch/v1beta1\"",
        ",",
        "apiVersion",
        "=",
        "\"batch/v1\"",
        ")",
        ";",
    ],
    &[
        "remove",
        "(",
        "$x",
        ":=",
        "spec.template.spec.containers[*].env[*]",
        "|",
        "exists",
        "(",
        "$x.valueFrom.secretKeyRef",
        ")",
        ",",
        "$x",
        ")",
        ";",
    ],
    &[
        "delete", "(", "!", "(", "kind", "==", "\"Pod\"", "||", "kind", "in", "[", "\"A\"", ",", "\"B\"", ",", "]",
        ")", "&&", "@t", ">=", "5m", ")", ";",
    ],
    &[
        "insert",
        "(",
        "@t",
        "==",
        "0s",
        ",",
        "{",
        "\"kind\"",
        ":",
        "\"Namespace\"",
        ",",
        "\"metadata\"",
        ":",
        "{",
        "\"name\"",
        ":",
        "\"x # not; a comment\"",
        "}",
        "}",
        ")",
        ";",
    ],
    &["insert", "(", "@t", "==", "1709242000", ",", "file", "(", "\"pc.yaml\"", ")", ")", ";"],
    &["move", "(", "metadata.labels.\"a.b\"", "->", "metadata.annotations[\"c\\\"d\"]", ")", ";"],
    &["copy", "(", "kind", "!~", "\"^x\\\\d\"", ",", "a.b", "->", "a.c", ")", ";"],
    &["modify", "(", "spec.x", "<", "-1.5", ",", "spec.y", "=", "null", ")", ";"],
    &["delete", "(", "!", "exists", "(", "spec.template", ")", "&&", "metadata.name", "=~", "\"web-\\d+\"", ")", ";"],
    &[
        "modify",
        "(",
        "spec.a",
        "==",
        "TRUE",
        ",",
        "spec.b",
        "=",
        "[",
        "metadata.name",
        ",",
        "{",
        "\"k\"",
        ":",
        "$x",
        "}",
        "]",
        ")",
        ";",
    ],
    &[
        "remove",
        "(",
        "$v",
        ":=",
        "spec.template.spec.volumes[*]",
        "|",
        "exists",
        "(",
        "$v.configMap",
        ")",
        "&&",
        "$m",
        ":=",
        "spec.template.spec.containers[*].volumeMounts[*]",
        "|",
        "$m.name",
        "==",
        "$v.name",
        "||",
        "kind",
        "==",
        "\"ConfigMap\"",
        "&&",
        "metadata.namespace",
        "!=",
        "\"kube-system\"",
        ",",
        "$m",
        ")",
        ";",
    ],
    &[
        "modify",
        "(",
        "kind",
        "==",
        "\"Deployment\"",
        "&&",
        "(",
        "metadata.namespace",
        "==",
        "\"default\"",
        "||",
        "metadata.namespace",
        "==",
        "\"production-environment\"",
        ")",
        "&&",
        "spec.replicas",
        ">",
        "10",
        ",",
        "spec.template.spec.containers[0].resources.limits.cpu",
        "=",
        "\"250m\"",
        ")",
        ";",
    ],
];

/// What goes between two tokens. `""` glues them, which can make a script that does not parse
/// (such scripts are skipped) or that means something else (fine: the formatter is compared with
/// its own input).
const SEPARATORS: &[&str] = &["", " ", "  ", "\n", "\t", " # note\n", "\n\n", "#c;\"\n", "\r\n", "\n    # x\n\n  "];

fn script(statements: &[(usize, Vec<usize>)]) -> String {
    let mut src = String::new();
    for (s, seps) in statements {
        let tokens = STATEMENTS[*s % STATEMENTS.len()];
        for (i, t) in tokens.iter().enumerate() {
            src.push_str(t);
            src.push_str(SEPARATORS[seps[i % seps.len()] % SEPARATORS.len()]);
        }
    }
    src
}

/// Pieces of SKEL for token soup: whatever parses must format, whatever does not is refused.
const PIECES: &[&str] = &[
    "delete",
    "remove",
    "modify",
    "move",
    "copy",
    "insert",
    "(",
    ")",
    ";",
    ",",
    "*",
    "&&",
    "||",
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
    ".",
    "[",
    "]",
    "[*]",
    "[0]",
    "spec",
    "kind",
    "TRUE",
    "#c\n",
    " ",
    "\n",
    "\r\n",
    "\t",
    "é",
    "-1",
    "1.5",
    "=~",
    "!~",
    " in ",
    "{",
    "}",
    ":",
    "null",
    "\\",
    ".*",
    "->",
    " -> ",
    "file(",
    "\"k\":",
    "\"x.yaml\")",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn token_soup(idx in proptest::collection::vec(0..PIECES.len(), 0..40)) {
        let src: String = idx.iter().map(|i| PIECES[*i]).collect();
        let parsed = parse(&src);
        if parsed.errors.is_empty() {
            if let Err(e) = check_properties(&src) {
                panic!("{e}\n--- input:\n{src}");
            }
        } else {
            prop_assert_eq!(format(&src), Err(FormatError::Parse(parsed.errors)));
        }
    }

    #[test]
    fn generated_scripts(
        statements in proptest::collection::vec(
            (0..STATEMENTS.len(), proptest::collection::vec(0..SEPARATORS.len(), 1..40)),
            0..6,
        )
    ) {
        let src = script(&statements);
        if parse(&src).errors.is_empty() {
            if let Err(e) = check_properties(&src) {
                panic!("{e}\n--- input:\n{src}");
            }
        }
    }

    /// Mostly well-spaced scripts: almost all of them parse.
    #[test]
    fn generated_scripts_with_spaces(
        statements in proptest::collection::vec(
            (0..STATEMENTS.len(), proptest::collection::vec(prop_oneof![4 => Just(1usize), 1 => 0..SEPARATORS.len()], 1..40)),
            1..6,
        )
    ) {
        let src = script(&statements);
        let gluing = statements.iter().any(|(_, seps)| seps.contains(&0));
        let parses = parse(&src).errors.is_empty();
        prop_assert!(parses || gluing, "does not parse:\n{}", src);
        if parses {
            if let Err(e) = check_properties(&src) {
                panic!("{e}\n--- input:\n{src}");
            }
        }
    }
}
