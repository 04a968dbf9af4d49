//! What is where in a parsed script: the commands, variables and paths of each statement, by
//! span; variables' definitions and uses; a statement's name.

use skel::ast::{Action, FieldTest, Ident, Operand, Path, Selector, Statement, Test};
use skel::explore::index_key;

/// One thing a statement says, with where it says it.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    Command(&'a Statement),
    /// A variable: where `$x := PATH` binds it (`bound: Some(PATH)`), or a use.
    Var {
        ident: &'a Ident,
        bound: Option<&'a Path>,
    },
    Path(&'a Path),
    /// `@t`
    Time(skel::ast::Span),
}

/// Every item of a statement, in source order of discovery.
pub fn items(stmt: &Statement) -> Vec<Item<'_>> {
    let mut out = vec![Item::Command(stmt)];
    if let Some(Selector::And(tests)) = &stmt.selector {
        for t in tests {
            test(t, &mut out);
        }
    }
    match &stmt.action {
        Action::Delete | Action::InsertFile { .. } => {}
        Action::Remove(p) => path(p, &mut out),
        Action::Modify { target, value } => {
            path(target, &mut out);
            operand(value, &mut out);
        }
        Action::Transfer { from, to, .. } => {
            path(from, &mut out);
            path(to, &mut out);
        }
        Action::Insert(o) => operand(o, &mut out),
    }
    out
}

fn test<'a>(t: &'a Test, out: &mut Vec<Item<'a>>) {
    match t {
        Test::Time { value, span, .. } => {
            out.push(Item::Time(skel::ast::Span::new(span.start, span.start + 2)));
            operand(value, out);
        }
        Test::Field(f) => field(f, out),
        Test::Bind { var, path: p, test: f, .. } => {
            out.push(Item::Var { ident: var, bound: Some(p) });
            path(p, out);
            field(f, out);
        }
        Test::Or { branches, .. } => branches.iter().flatten().for_each(|t| test(t, out)),
        Test::Not { tests, .. } => tests.iter().for_each(|t| test(t, out)),
    }
}

fn field<'a>(f: &'a FieldTest, out: &mut Vec<Item<'a>>) {
    match f {
        FieldTest::Exists { path: p, .. } | FieldTest::NotExists { path: p, .. } => path(p, out),
        FieldTest::Compare { lhs, rhs, .. } => {
            path(lhs, out);
            operand(rhs, out);
        }
    }
}

fn path<'a>(p: &'a Path, out: &mut Vec<Item<'a>>) {
    if let Some(var) = &p.var {
        out.push(Item::Var { ident: var, bound: None });
    }
    out.push(Item::Path(p));
}

fn operand<'a>(o: &'a Operand, out: &mut Vec<Item<'a>>) {
    match o {
        Operand::Literal(_) => {}
        Operand::Path(p) => path(p, out),
        Operand::Array { items, .. } => items.iter().for_each(|i| operand(i, out)),
        Operand::Object { members, .. } => members.iter().for_each(|m| operand(&m.value, out)),
    }
}

/// The statement that holds a byte offset (its `;` included).
pub fn statement_at(script: &skel::ast::Script, offset: usize) -> Option<&Statement> {
    script.statements.iter().find(|s| s.span.start <= offset && offset <= s.span.end)
}

/// The most specific item at an offset: a variable before the path it starts, a path before
/// the command.
pub fn item_at(stmt: &Statement, offset: usize) -> Option<Item<'_>> {
    let all = items(stmt);
    let hit = |span: skel::ast::Span| span.start <= offset && offset <= span.end;
    all.iter()
        .find(|i| matches!(i, Item::Var { ident, .. } if hit(ident.span)))
        .or_else(|| all.iter().find(|i| matches!(i, Item::Time(s) if hit(*s))))
        .or_else(|| all.iter().find(|i| matches!(i, Item::Path(p) if hit(p.span))))
        .or_else(|| all.iter().find(|i| matches!(i, Item::Command(s) if hit(s.command_span))))
        .copied()
}

/// Every occurrence of a variable in a statement: (span of `$name`, is its binding).
pub fn occurrences(stmt: &Statement, name: &str) -> Vec<(skel::ast::Span, bool)> {
    let mut out: Vec<(skel::ast::Span, bool)> = items(stmt)
        .into_iter()
        .filter_map(|i| match i {
            Item::Var { ident, bound } if ident.name == name => Some((ident.span, bound.is_some())),
            _ => None,
        })
        .collect();
    out.sort_by_key(|(s, _)| s.start);
    out.dedup();
    out
}

/// The path a variable is bound over in a statement.
pub fn binding<'a>(stmt: &'a Statement, name: &str) -> Option<(&'a Ident, &'a Path)> {
    items(stmt).into_iter().find_map(|i| match i {
        Item::Var { ident, bound: Some(p) } if ident.name == name => Some((ident, p)),
        _ => None,
    })
}

/// The key-index name of a path's first `upto` segments (all when `None`), with a leading
/// variable replaced by the path it is bound over.
pub fn resolved_path(stmt: &Statement, p: &Path, upto: Option<usize>) -> String {
    let mut steps = p.clone();
    if let Some(n) = upto {
        steps.segments.truncate(n);
    }
    let rest = index_key(&steps);
    let Some(var) = &p.var else { return rest };
    let prefix = match binding(stmt, &var.name) {
        Some((_, bound)) if bound.var.is_none() => index_key(bound),
        _ => return rest,
    };
    match (prefix.is_empty(), rest.is_empty()) {
        (_, true) => prefix,
        (true, false) => rest,
        (false, false) if rest.starts_with('[') => prefix + &rest,
        (false, false) => format!("{prefix}.{rest}"),
    }
}

/// How many of a path's segments end at or before an offset (the part under the cursor).
pub fn segments_upto(p: &Path, offset: usize) -> usize {
    p.segments.iter().take_while(|s| s.span().start <= offset).count().max(1)
}

/// A statement's name for outlines: its command and selector, on one line, cut at 100
/// characters.
pub fn statement_name(src: &str, stmt: &Statement) -> String {
    let text = src.get(stmt.span.start..stmt.span.end).unwrap_or(stmt.command.as_str());
    let one_line: String = text
        .lines()
        .map(|l| l.split(" #").next().unwrap_or(l).trim())
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    if one_line.chars().count() > 100 {
        let cut: String = one_line.chars().take(99).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stmt(src: &str) -> Statement {
        let parsed = skel::parse(src);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        parsed.script.statements.into_iter().next().unwrap()
    }

    #[test]
    fn variables_have_a_binding_and_uses() {
        let src = "remove($c := spec.containers[*] | exists($c.env), $c.env);";
        let s = stmt(src);
        let occ = occurrences(&s, "$c");
        assert_eq!(occ.len(), 3);
        assert_eq!(occ[0], (skel::ast::Span::new(7, 9), true));
        assert!(!occ[1].1 && !occ[2].1);
        let (ident, bound) = binding(&s, "$c").unwrap();
        assert_eq!(ident.span.start, 7);
        assert_eq!(index_key(bound), "spec.containers[*]");
    }

    #[test]
    fn the_item_at_an_offset_is_the_most_specific() {
        let src = "modify($c := spec.containers[*] | $c.name == \"a\", $c.image = \"x\");";
        let s = stmt(src);
        let at = |needle: &str| item_at(&s, src.find(needle).unwrap() + 1);
        assert!(matches!(at("modify"), Some(Item::Command(_))));
        assert!(matches!(at("$c :="), Some(Item::Var { bound: Some(_), .. })));
        assert!(matches!(at("$c.name"), Some(Item::Var { bound: None, .. })));
        assert!(matches!(at("name =="), Some(Item::Path(_))));
        let Some(Item::Path(p)) = at("image") else { panic!() };
        assert_eq!(resolved_path(&s, p, None), "spec.containers[*].image");
    }

    #[test]
    fn statement_names_fit_an_outline() {
        let src = "remove($v := spec.volumes[*] | exists($v.secret) # secrets\n    && kind == \"Pod\", $v);";
        let s = stmt(src);
        assert_eq!(statement_name(src, &s), "remove($v := spec.volumes[*] | exists($v.secret) && kind == \"Pod\", $v)");
    }
}
