//! The stable text form of an AST (`skel compile --emit ast`): one node per line, with spans.

use std::fmt::Write;

use crate::ast::*;

pub fn ast_to_string(script: &Script) -> String {
    let mut out = String::new();
    for (i, s) in script.statements.iter().enumerate() {
        statement(&mut out, i, s);
    }
    out
}

fn statement(out: &mut String, i: usize, s: &Statement) {
    let _ = writeln!(out, "statement {i} {} @{}", s.command, s.span);
    match &s.selector {
        None => {}
        Some(Selector::All(span)) => {
            let _ = writeln!(out, "  selector all @{span}");
        }
        Some(Selector::And(tests)) => {
            let _ = writeln!(out, "  selector and");
            for t in tests {
                test(out, 4, t);
            }
        }
    }
    match &s.action {
        Action::Delete => {
            let _ = writeln!(out, "  action delete");
        }
        Action::Remove(p) => {
            let _ = writeln!(out, "  action remove");
            path(out, 4, "target", p);
        }
        Action::Modify { target, value } => {
            let _ = writeln!(out, "  action modify");
            path(out, 4, "target", target);
            operand(out, 4, "value", value);
        }
        Action::Insert(o) => {
            let _ = writeln!(out, "  action insert");
            operand(out, 4, "manifest", o);
        }
        Action::InsertFile { path, span } => {
            let _ = writeln!(out, "  action insert file {path:?} @{span}");
        }
        Action::Transfer { from, to, keep } => {
            let _ = writeln!(out, "  action {}", if *keep { "copy" } else { "move" });
            path(out, 4, "from", from);
            path(out, 4, "to", to);
        }
    }
}

fn test(out: &mut String, indent: usize, t: &Test) {
    let pad = " ".repeat(indent);
    match t {
        Test::Time { op, value, span, .. } => {
            let _ = writeln!(out, "{pad}time @t {op} @{span}");
            operand(out, indent + 2, "value", value);
        }
        Test::Field(f) => field_test(out, indent, f),
        Test::Bind { var, path: p, test, span } => {
            let _ = writeln!(out, "{pad}bind {} @{span}", var.name);
            path(out, indent + 2, "over", p);
            field_test(out, indent + 2, test);
        }
        Test::Or { branches, span } => {
            let _ = writeln!(out, "{pad}or @{span}");
            for b in branches {
                let _ = writeln!(out, "{pad}  and");
                for t in b {
                    test(out, indent + 4, t);
                }
            }
        }
        Test::Not { tests, span } => {
            let _ = writeln!(out, "{pad}not @{span}");
            for t in tests {
                test(out, indent + 2, t);
            }
        }
    }
}

fn field_test(out: &mut String, indent: usize, t: &FieldTest) {
    let pad = " ".repeat(indent);
    match t {
        FieldTest::Exists { path: p, span } => {
            let _ = writeln!(out, "{pad}exists @{span}");
            path(out, indent + 2, "path", p);
        }
        FieldTest::NotExists { path: p, span } => {
            let _ = writeln!(out, "{pad}not_exists @{span}");
            path(out, indent + 2, "path", p);
        }
        FieldTest::Compare { lhs, op, rhs, span, .. } => {
            let _ = writeln!(out, "{pad}compare {op} @{span}");
            path(out, indent + 2, "lhs", lhs);
            operand(out, indent + 2, "rhs", rhs);
        }
    }
}

fn path(out: &mut String, indent: usize, role: &str, p: &Path) {
    let pad = " ".repeat(indent);
    let mut parts = Vec::new();
    if let Some(v) = &p.var {
        parts.push(format!("var {}", v.name));
    }
    for s in &p.segments {
        parts.push(match s {
            Segment::Key { name, quoted: false, .. } => format!("key {name}"),
            Segment::Key { name, quoted: true, .. } => format!("key \"{name}\""),
            Segment::Index { index, .. } => format!("index {index}"),
            Segment::AnyIndex { .. } => "index *".to_string(),
            Segment::AnyKey { .. } => "key *".to_string(),
        });
    }
    let _ = writeln!(out, "{pad}{role} path `{p}` @{} [{}]", p.span, parts.join(", "));
}

fn operand(out: &mut String, indent: usize, role: &str, o: &Operand) {
    match o {
        Operand::Path(p) => path(out, indent, role, p),
        Operand::Literal(l) => {
            let pad = " ".repeat(indent);
            let kind = match l.value {
                LiteralValue::Integer(_) | LiteralValue::Negative(_) => "integer",
                LiteralValue::Float(_) => "float",
                LiteralValue::Null => "null",
                LiteralValue::String(_) => "string",
                LiteralValue::Bool(_) => "bool",
                LiteralValue::Duration(_) => "duration",
            };
            let _ = writeln!(out, "{pad}{role} {kind} {l} @{}", l.span);
        }
        Operand::Array { items, span } => {
            let _ = writeln!(out, "{}{role} array @{span}", " ".repeat(indent));
            for item in items {
                operand(out, indent + 2, "item", item);
            }
        }
        Operand::Object { members, span } => {
            let _ = writeln!(out, "{}{role} object @{span}", " ".repeat(indent));
            for m in members {
                let mut key = String::new();
                let _ = write_string(&mut key, &m.key);
                operand(out, indent + 2, &key, &m.value);
            }
        }
    }
}
