//! The optimizer: IR -> IR passes, each a plain function testable on its own. None changes what
//! a script does to any object, errors included (the differential test runs the conformance
//! corpus at every level and requires equal output).
//!
//! - `fold`: drops duplicate tests and decides contradictory selectors (`kind == "A" &&
//!   kind == "B"`, `@t >= 20 && @t < 10`) to be never-matching;
//!   (`optimize` drops those statements);
//! - `drop_dead`: removes everything after an unconditional `delete(*)` (no object survives it);
//! - `reorder`: runs cheap tests first (time, then equality on short plain paths, then the rest,
//!   wildcard scans and variable bindings last), never moving a test across one that can raise
//!   a run-time error;
//! - `dispatch`: marks statements that only match one `kind`, so the VM runs an object through
//!   just the statements for its kind (one hash lookup instead of every selector);
//! - `share_prefixes` (on the bytecode): finds the key-only path prefixes several paths start
//!   with (`spec.template.spec`), which the VM then resolves once per object, not once per path.

use serde_json::Value;

use crate::ir::*;

/// How much to optimize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum OptLevel {
    /// The checked IR as is (`--no-opt`).
    None,
    /// Every pass.
    #[default]
    Full,
}

/// Runs the passes for `level`.
pub fn optimize(mut script: Script, level: OptLevel) -> Script {
    if level == OptLevel::None {
        return script;
    }
    script.statements.retain_mut(fold);
    drop_dead(&mut script);
    for s in &mut script.statements {
        reorder(s);
        dispatch(s);
    }
    script
}

/// Gives each object-rooted path the longest key-only prefix (two keys or more) that another
/// path of the program also starts with. Paths from a variable start at a location already.
/// The prefixes are counted in a tree of the paths' leading keys, so this is linear in the
/// paths' length; past `u16::MAX` prefixes (what a `Prefix` can number) paths get none.
pub fn share_prefixes(prog: &mut crate::bytecode::Program) {
    use std::collections::HashMap;

    use crate::bytecode::{PathRoot, Prefix, Seg};
    let heads = |segs: &[Seg]| segs.iter().take_while(|s| matches!(s, Seg::Key(_))).count();
    // The tree's nodes: node 0 is the root; a node's child by key, and how many paths pass.
    let mut children: HashMap<(usize, Seg), usize> = HashMap::new();
    let mut users: Vec<usize> = vec![0];
    let object_rooted = |p: &&crate::bytecode::PathCode| p.root == PathRoot::Object;
    for p in prog.paths.iter().filter(object_rooted) {
        let mut node = 0;
        for seg in &p.segs[..heads(&p.segs)] {
            node = *children.entry((node, *seg)).or_insert_with(|| {
                users.push(0);
                users.len() - 1
            });
            users[node] += 1;
        }
    }
    // Each path's deepest node of two keys or more that another path passes too.
    let mut chosen: Vec<Option<(usize, usize)>> = Vec::with_capacity(prog.paths.len());
    for p in &prog.paths {
        let mut best = None;
        if p.root == PathRoot::Object {
            let mut node = 0;
            for (depth, seg) in p.segs[..heads(&p.segs)].iter().enumerate() {
                let Some(next) = children.get(&(node, *seg)) else { break };
                node = *next;
                if depth >= 1 && users[node] >= 2 {
                    best = Some((node, depth + 1));
                }
            }
        }
        chosen.push(best);
    }
    prog.prefixes.clear();
    let mut ids: HashMap<usize, u16> = HashMap::new();
    for (p, best) in prog.paths.iter_mut().zip(chosen) {
        p.prefix = best.and_then(|(node, len)| {
            let id = match ids.get(&node) {
                Some(id) => *id,
                None => {
                    let id = u16::try_from(prog.prefixes.len()).ok()?;
                    prog.prefixes.push(p.segs[..len].into());
                    ids.insert(node, id);
                    id
                }
            };
            Some(Prefix { id, len: u16::try_from(len).ok()? })
        });
    }
}

/// A plain path that reaches at most one value: from the object, no `[*]`.
fn single_valued(p: &Path) -> bool {
    p.root == Root::Object && !p.has_wildcard()
}

/// Drops repeated tests; returns false when the selector can never hold.
pub fn fold(s: &mut Stmt) -> bool {
    // Repeated plain tests: the second adds nothing (and the first already raised any error).
    let mut seen = std::collections::HashSet::new();
    s.conds.retain(|c| test_key(c).is_none_or(|k| seen.insert(k)));
    !contradictory(&s.conds)
}

/// A plain test or time test as text without spans: two tests with one key are the same test
/// (`same_test`), so a set of keys finds repeats in one pass.
fn test_key(c: &Cond) -> Option<String> {
    Some(match c {
        Cond::Time { op, at, .. } => format!("@t {op:?} {at:?}"),
        Cond::Test { pred: Pred::Exists(p), .. } => format!("exists {}", path_key(p)),
        Cond::Test { pred: Pred::NotExists(p), .. } => format!("!exists {}", path_key(p)),
        Cond::Test { pred: Pred::Compare { lhs, op, rhs }, .. } => {
            let rhs = match rhs {
                Operand::Const(v) => format!("value {v}"),
                Operand::Path(p) => format!("path {}", path_key(p)),
                Operand::Array(_) | Operand::Object(_) => return None,
            };
            format!("{} {op:?} {rhs}", path_key(lhs))
        }
        Cond::Bind { .. } | Cond::Or { .. } | Cond::Not { .. } => return None,
    })
}

/// A path as text without its span: equal for paths `path_eq` finds equal.
fn path_key(p: &Path) -> String {
    format!("{:?} {:?}", p.root, p.segs)
}

fn contradictory(conds: &[Cond]) -> bool {
    // A test that may raise an error must still get the chance to.
    if conds.iter().any(may_fail) {
        return false;
    }
    // Equality constraints on single-valued paths: `P == a && P == b` (a != b), `P == a && P != a`,
    // `P == a && !exists(P)`.
    // The value each such path must equal (the first; another that differs contradicts it).
    let mut eqs: std::collections::HashMap<String, &Value> = std::collections::HashMap::new();
    for c in conds {
        if let Cond::Test { pred: Pred::Compare { lhs, op: CmpOp::Eq, rhs: Operand::Const(v) }, .. } = c {
            if single_valued(lhs) {
                let w = *eqs.entry(path_key(lhs)).or_insert(v);
                if w != v {
                    return true;
                }
            }
        }
    }
    let excluded = |c: &Cond| match c {
        Cond::Test { pred: Pred::Compare { lhs, op: CmpOp::Ne, rhs: Operand::Const(v) }, .. } => {
            eqs.get(&path_key(lhs)).is_some_and(|w| *w == v)
        }
        Cond::Test { pred: Pred::NotExists(p), .. } => eqs.contains_key(&path_key(p)),
        _ => false,
    };
    if conds.iter().any(excluded) {
        return true;
    }
    // Absolute time bounds that leave no time: the largest lower bound above the smallest upper.
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    for c in conds {
        if let Cond::Time { op, at: TimeRef::Absolute(t), .. } = c {
            match op {
                CmpOp::Eq => {
                    lo = lo.max(*t);
                    hi = hi.min(*t);
                }
                CmpOp::Gt => lo = lo.max(t.saturating_add(1)),
                CmpOp::Ge => lo = lo.max(*t),
                CmpOp::Lt => hi = hi.min(t.saturating_sub(1)),
                CmpOp::Le => hi = hi.min(*t),
                CmpOp::Ne | CmpOp::Match | CmpOp::NotMatch | CmpOp::In => {}
            }
        }
    }
    lo > hi
}

/// Removes every statement after an unconditional `delete(*)`: no object reaches them.
pub fn drop_dead(script: &mut Script) {
    if let Some(i) = script.statements.iter().position(|s| s.conds.is_empty() && s.action == Action::Delete) {
        script.statements.truncate(i + 1);
    }
}

/// Whether evaluating the condition can raise a run-time error (a plain path on the right of a
/// comparison that does not resolve).
fn may_fail(c: &Cond) -> bool {
    let pred = match c {
        Cond::Time { .. } => return false,
        Cond::Test { pred, .. } | Cond::Bind { pred, .. } => pred,
        Cond::Or { branches, .. } => return branches.iter().flatten().any(may_fail),
        Cond::Not { conds, .. } => return conds.iter().any(may_fail),
    };
    matches!(pred, Pred::Compare { rhs, .. } if rhs.paths().iter().any(|p| p.root == Root::Object))
}

/// The estimated cost of a condition; equal costs keep their order.
fn cost(c: &Cond) -> u32 {
    match c {
        Cond::Time { .. } => 0,
        Cond::Test { pred, .. } => {
            let (path, base) = match pred {
                Pred::Compare { lhs, rhs: Operand::Const(_), .. } => (lhs, 10),
                Pred::Exists(p) | Pred::NotExists(p) => (p, 20),
                Pred::Compare { lhs, .. } => (lhs, 30),
            };
            if path.root != Root::Object {
                // Reads a variable: must stay after the binding that defines it.
                1000
            } else if path.has_wildcard() {
                100 + path.segs.len() as u32
            } else {
                base + path.segs.len() as u32
            }
        }
        // Bindings define variables later tests read: they keep their relative order (as do
        // `||` and `!`, which may hold bindings).
        Cond::Bind { .. } | Cond::Or { .. } | Cond::Not { .. } => 1000,
    }
}

/// Cheapest first, within runs between conditions that may fail (which stay in place, so every
/// error the unoptimized order raises is still raised, and no other).
pub fn reorder(s: &mut Stmt) {
    let mut start = 0;
    let n = s.conds.len();
    for i in 0..=n {
        let barrier = i == n || s.conds.get(i).is_some_and(may_fail);
        if barrier {
            if let Some(run) = s.conds.get_mut(start..i) {
                run.sort_by_key(cost);
            }
            start = i + 1;
        }
    }
}

/// Marks the statement with the one `kind` it can match, when its selector requires one before
/// any test that may raise an error (skipping the statement must not skip an error).
pub fn dispatch(s: &mut Stmt) {
    s.kind_guard = None;
    for c in &s.conds {
        if may_fail(c) {
            return;
        }
        if let Cond::Test {
            pred: Pred::Compare { lhs, op: CmpOp::Eq, rhs: Operand::Const(Value::String(k)) }, ..
        } = c
        {
            if lhs.root == Root::Object && lhs.segs == [Seg::Key("kind".into())] {
                s.kind_guard = Some(k.clone());
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ir(src: &str) -> Script {
        let parsed = skel_grammar::parse(src);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let checked = crate::typecheck(&parsed.script);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        checked.script
    }

    fn shown(script: &Script) -> String {
        script.display().to_string()
    }

    #[test]
    fn fold_drops_repeated_tests() {
        let mut s = ir("delete(kind == \"Pod\" && kind == \"Pod\" && @t > 5 && @t > 5);");
        assert!(fold(&mut s.statements[0]));
        assert_eq!(s.statements[0].conds.len(), 2);
    }

    #[test]
    fn fold_finds_contradictions() {
        for src in [
            "delete(kind == \"Pod\" && kind == \"Service\");",
            "delete(kind == \"Pod\" && kind != \"Pod\");",
            "delete(kind == \"Pod\" && !exists(kind));",
            "delete(@t >= 20 && @t < 10);",
            "delete(@t == 20 && @t > 20);",
        ] {
            let mut s = ir(src);
            assert!(!fold(&mut s.statements[0]), "{src}");
        }
    }

    #[test]
    fn fold_keeps_satisfiable_selectors() {
        for src in [
            "delete(a[*].b == 1 && a[*].b == 2);",
            "delete(kind == \"Pod\" && apiVersion == \"v1\");",
            "delete(@t >= 10 && @t <= 10);",
            "delete(@t >= 10m && @t < 5);",
            "delete(x == y && kind == \"A\" && kind == \"B\");",
        ] {
            let mut s = ir(src);
            assert!(fold(&mut s.statements[0]), "{src}");
        }
    }

    #[test]
    fn optimize_removes_never_matching_and_everything_after_delete_all() {
        let s = optimize(
            ir("delete(kind == \"A\" && kind == \"B\"); remove(status); delete(*); modify(a = 1);"),
            OptLevel::Full,
        );
        let cmds: Vec<_> = s.statements.iter().map(|s| s.command).collect();
        assert_eq!(cmds, [CommandName::Remove, CommandName::Delete]);
    }

    #[test]
    fn shared_prefixes_are_the_longest_two_paths_have() {
        let mut prog = crate::compile_with(
            "remove(spec.template.spec.a); remove(spec.template.spec.b[*].c); \
             remove(spec.template.spec.b[*].d); remove(spec.x); remove($v := spec.template.spec.b[*] | exists($v.c), $v.d);",
            OptLevel::None,
            &crate::Folder::current(),
        )
        .expect("compiles")
        .program;
        share_prefixes(&mut prog);
        let text: Vec<String> = prog.prefixes.iter().map(|q| format!("{q:?}")).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        let prefixed: Vec<_> =
            prog.paths.iter().enumerate().map(|(i, p)| (prog.path_text(i as u32), p.prefix.map(|q| q.len))).collect();
        for (path, len) in &prefixed {
            let want = if path.starts_with(".spec.template.spec.b") {
                Some(4)
            } else if path.starts_with(".spec.template.spec") {
                Some(3)
            } else {
                None
            };
            assert_eq!(*len, want, "{path}: {prefixed:?}");
        }
        assert!(prog.verify().is_ok());
    }

    #[test]
    fn reorder_puts_cheap_tests_first() {
        let mut s = ir("remove($v := spec.volumes[*] | exists($v.secret) && exists(spec.x[*].y) && kind == \"Pod\" && @t > 5m, $v);");
        reorder(&mut s.statements[0]);
        insta::assert_snapshot!(shown(&s), @r#"
        stmt 0 remove @0..104
          var 0 $v
          when @t > start+300s
          when .kind == "Pod"
          when exists(.spec.x[*].y)
          when bind $v <- .spec.volumes[*] | exists($v.secret)
          do remove $v
        "#);
    }

    #[test]
    fn reorder_never_crosses_a_test_that_may_fail() {
        let mut s = ir("delete(exists(a[*]) && x == y && kind == \"Pod\" && exists(b[*]) && @t > 1);");
        reorder(&mut s.statements[0]);
        insta::assert_snapshot!(shown(&s), @r#"
        stmt 0 delete @0..73
          when exists(.a[*])
          when .x == .y
          when @t > 1
          when .kind == "Pod"
          when exists(.b[*])
          do delete
        "#);
    }

    #[test]
    fn dispatch_marks_kind() {
        let mut s = ir("modify(apiVersion == \"batch/v1beta1\" && kind == \"CronJob\", apiVersion = \"batch/v1\"); remove(status);");
        for st in &mut s.statements {
            dispatch(st);
        }
        assert_eq!(s.statements[0].kind_guard.as_deref(), Some("CronJob"));
        assert_eq!(s.statements[1].kind_guard, None);
    }

    #[test]
    fn dispatch_never_skips_a_test_that_may_fail() {
        let mut s = ir("delete(x == spec.n && kind == \"Service\");");
        dispatch(&mut s.statements[0]);
        assert_eq!(s.statements[0].kind_guard, None);
    }
}
