//! Hover: what a command does, what a variable stands for, what a path is (and how many
//! objects of the trace have it).

use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind, Position};
use skel::ast::Span;
use skel::kube::fields as k8s;

use super::analysis::{self, Item};
use super::{Document, TraceIndex};
use skel_grammar::registry;

pub fn hover(doc: &Document, at: Position, trace: Option<&TraceIndex>) -> Option<Hover> {
    let (offset, stmt) = doc.at(at);
    let stmt = stmt?;
    let (text, span) = match analysis::item_at(stmt, offset)? {
        Item::Command(s) => (registry::command(s.command).hover(), s.command_span),
        Item::Time(span) => (
            "```skel\n@t\n```\nThe event's time, in seconds since the trace's first event; compare it with a \
             duration (`@t > 5m`, `@t <= 1h`)."
                .to_string(),
            span,
        ),
        Item::Var { ident, .. } => match analysis::binding(stmt, &ident.name) {
            Some((def, bound)) => {
                let bound_text = doc.text.get(bound.span.start..bound.span.end).unwrap_or("");
                let line = doc.lines.position(&doc.text, def.span.start).line + 1;
                let text = format!(
                    "```skel\n{} := {bound_text}\n```\n`{}` stands for each value `{bound_text}` reaches in an \
                     object, one at a time; the statement acts on every value for which its tests hold \
                     (bound on line {line}).",
                    ident.name, ident.name
                );
                (text, ident.span)
            }
            None => (format!("`{}` is not bound in this statement.", ident.name), ident.span),
        },
        Item::Path(path) => {
            let upto = analysis::segments_upto(path, offset);
            let key = analysis::resolved_path(stmt, path, Some(upto));
            let shown = if key.is_empty() { "(the object)".to_string() } else { key.clone() };
            let mut text = format!("```skel\n{shown}\n```\n");
            text.push_str(k8s::describe(&key).unwrap_or("A field path."));
            if let Some(t) = trace {
                text.push_str("\n\n");
                text.push_str(&path_stats(t, &key));
            }
            let seg_end = path.segments.get(upto.saturating_sub(1)).map_or(path.span.end, |s| s.span().end);
            (text, Span::new(path.span.start, seg_end))
        }
    };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: text }),
        range: Some(doc.range(span)),
    })
}

/// How many objects of a trace have a path, and example values.
fn path_stats(t: &TraceIndex, key: &str) -> String {
    let total = t.keys.objects();
    let Some(stats) = t.keys.stats(key) else {
        return format!("**In {}**: no object of {total} has it.", t.name);
    };
    let mut out = format!("**In {}**: {} of {total} objects have it", t.name, stats.objects);
    if !stats.examples.is_empty() {
        out.push_str("; e.g. ");
        out.push_str(&stats.examples.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", "));
    }
    out.push('.');
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{at_cursor, trace};
    use super::*;

    fn show(src: &str, trace: Option<&TraceIndex>) -> String {
        at_cursor(src, |doc, pos| match hover(doc, pos, trace) {
            Some(Hover { contents: HoverContents::Markup(m), range }) => {
                format!("{}\n\n(range {})", m.value, super::super::fixture::show_range(doc, range))
            }
            Some(other) => format!("{other:?}"),
            None => "(no hover)".into(),
        })
    }

    #[test]
    fn a_command() {
        insta::assert_snapshot!(show("delete(kind == \"Pod\");\nrem¦ove(status);\n", None));
    }

    #[test]
    fn a_path_without_a_trace() {
        insta::assert_snapshot!(show("remove(kind == \"Pod\", spec.cont¦ainers[*].env);\n", None));
    }

    #[test]
    fn a_path_with_a_trace_index() {
        insta::assert_snapshot!(show("remove(kind == \"Pod\", metadata.lab¦els.app);\n", Some(&trace())));
    }

    #[test]
    fn a_path_no_object_of_the_trace_has() {
        insta::assert_snapshot!(show("remove(spec.sched¦ule);\n", Some(&trace())));
    }

    #[test]
    fn a_variable_and_the_path_it_starts() {
        let src = "remove($c := spec.template.spec.containers[*]\n       | exists($c.env), $¦c.env);\n";
        insta::assert_snapshot!(show(src, None));
        let src = "remove($c := spec.template.spec.containers[*]\n       | exists($c.env), $c.e¦nv);\n";
        insta::assert_snapshot!(show(src, None));
    }

    #[test]
    fn the_event_time() {
        insta::assert_snapshot!(show("delete(@¦t > 5m);\n", None));
    }

    #[test]
    fn nothing_on_a_duration() {
        insta::assert_snapshot!(show("delete(@t > 5¦m);\n", None));
    }
}
