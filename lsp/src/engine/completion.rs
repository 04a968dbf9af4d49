//! Completion: commands at a statement's start, `$variables`, the keywords of a selector,
//! and paths: the trace's keys first (most frequent first), then the Kubernetes fields it
//! lacks.

use lsp_types::{CompletionItem, CompletionItemKind, CompletionTextEdit, Position, TextEdit};
use skel::explore::{self, KeyIndex};
use skel::kube::fields as k8s;

use super::{Document, TraceIndex};
use skel_grammar::registry;

/// The items for the word typed before `at`. The statement is read as text up to the cursor
/// (it is being typed: it rarely parses).
pub fn completion(doc: &Document, at: Position, trace: Option<&TraceIndex>) -> Vec<CompletionItem> {
    let offset = doc.lines.offset(&doc.text, at);
    let start = statement_start(&doc.text, offset);
    let text = doc.text.get(start..offset).unwrap_or("");
    let mut items = Vec::new();
    let Some(tok) = explore::token_start(text) else { return items };
    let token = &text[tok..];
    let at_start = text[..tok].trim().is_empty() || is_only_comments(&text[..tok]);
    let field = |label: String, detail: Option<&str>| CompletionItem {
        label,
        kind: Some(CompletionItemKind::FIELD),
        detail: detail.map(str::to_string),
        ..CompletionItem::default()
    };
    if let Some(var) = token.strip_prefix('$').filter(|v| !v.contains(['.', '['])) {
        for name in explore::variables(text).into_iter().filter(|n| n.starts_with(var)) {
            let bound = explore::binding(text, &name).unwrap_or_default();
            items.push(CompletionItem {
                label: format!("${name}"),
                kind: Some(CompletionItemKind::VARIABLE),
                detail: Some(format!("${name} := {bound}")),
                ..CompletionItem::default()
            });
        }
    } else if let Some((head, partial)) = explore::split_path(token) {
        let partial = partial.trim_start_matches('"');
        if let Some(under) = explore::resolve(text, head) {
            let mut seen: Vec<String> = Vec::new();
            if let Some(t) = trace {
                for (key, n) in t.keys.keys_under(&under).into_iter().filter(|(k, _)| k.starts_with(partial)) {
                    let mut item = field(format!("{head}{}", KeyIndex::source_key(key)), None);
                    item.detail = Some(format!("in {n} objects of {}", t.name));
                    item.sort_text = Some(format!("0{:>10}", u32::MAX - n));
                    item.filter_text = Some(item.label.clone());
                    seen.push(key.to_string());
                    items.push(item);
                }
            }
            for (key, d) in k8s::keys_under(&under).into_iter().filter(|(k, _)| k.starts_with(partial)) {
                if !seen.iter().any(|s| s == key) {
                    let mut item = field(format!("{head}{}", KeyIndex::source_key(key)), Some(d));
                    item.sort_text = Some(format!("1{key}"));
                    items.push(item);
                }
            }
        }
    } else if at_start {
        for c in registry::COMMANDS.iter().filter(|c| c.name.as_str().starts_with(token)) {
            items.push(CompletionItem {
                label: c.name.as_str().to_string(),
                kind: Some(CompletionItemKind::FUNCTION),
                detail: Some(c.signature.to_string()),
                insert_text: Some(format!("{}(", c.name)),
                ..CompletionItem::default()
            });
        }
    } else {
        for (word, detail) in [("exists(", "exists(PATH): the path reaches a value"), ("@t", "the event's time")] {
            if word.starts_with(token) {
                items.push(CompletionItem {
                    label: word.trim_end_matches('(').to_string(),
                    kind: Some(CompletionItemKind::KEYWORD),
                    detail: Some(detail.to_string()),
                    insert_text: Some(word.to_string()),
                    ..CompletionItem::default()
                });
            }
        }
        for name in
            explore::variables(text).into_iter().filter(|n| token.is_empty() || format!("${n}").starts_with(token))
        {
            items.push(CompletionItem {
                label: format!("${name}"),
                kind: Some(CompletionItemKind::VARIABLE),
                ..CompletionItem::default()
            });
        }
        let mut seen: Vec<String> = Vec::new();
        if let Some(t) = trace {
            for (key, n) in t.keys.keys_under("").into_iter().filter(|(k, _)| k.starts_with(token)) {
                let mut item = field(KeyIndex::source_key(key), None);
                item.detail = Some(format!("in {n} objects of {}", t.name));
                seen.push(key.to_string());
                items.push(item);
            }
        }
        for (key, d) in k8s::keys_under("").into_iter().filter(|(k, _)| k.starts_with(token)) {
            if !seen.iter().any(|s| s == key) {
                items.push(field(key.to_string(), Some(d)));
            }
        }
    }
    // Each item replaces the whole word typed (a path with its dots, a `$variable`), not just
    // what the editor takes for a word.
    let range = doc.lines.range(&doc.text, start + tok, offset);
    for item in &mut items {
        let new_text = item.insert_text.take().unwrap_or_else(|| item.label.clone());
        item.filter_text.get_or_insert_with(|| item.label.clone());
        item.text_edit = Some(CompletionTextEdit::Edit(TextEdit { range, new_text }));
    }
    items
}

/// Where the statement holding `offset` starts: after the last top-level `;` before it.
fn statement_start(text: &str, offset: usize) -> usize {
    let mut start = 0;
    explore::code_chars(text.get(..offset).unwrap_or(text), |i, c| {
        if c == ';' {
            start = i + 1;
        }
    });
    start
}

fn is_only_comments(s: &str) -> bool {
    s.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{at_cursor, show_range, trace};
    use super::*;

    /// Each item: its label, kind, detail, and the text it puts where.
    fn show(src: &str, trace: Option<&TraceIndex>) -> String {
        at_cursor(src, |doc, pos| {
            let items = completion(doc, pos, trace);
            if items.is_empty() {
                return "(no items)".into();
            }
            items
                .iter()
                .map(|i| {
                    let edit = match &i.text_edit {
                        Some(CompletionTextEdit::Edit(e)) => {
                            format!("{:?} at {}", e.new_text, show_range(doc, Some(e.range)))
                        }
                        other => format!("{other:?}"),
                    };
                    let kind = i.kind.map_or("-".into(), |k| format!("{k:?}"));
                    let detail = i.detail.as_deref().unwrap_or("-");
                    format!("{} ({kind}; {detail}) -> {edit}", i.label)
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    #[test]
    fn a_command_at_a_statements_start() {
        insta::assert_snapshot!(show("delete(kind == \"Pod\");\n# next\nmo¦", None));
    }

    #[test]
    fn a_keyword_in_a_selector() {
        insta::assert_snapshot!(show("delete(kind == \"Pod\" && ex¦", None));
    }

    #[test]
    fn a_path_from_the_kubernetes_fields() {
        insta::assert_snapshot!(show("remove(kind == \"Pod\", spec.template.spec.containers[*].imageP¦", None));
    }

    #[test]
    fn a_path_from_the_trace_index_first() {
        insta::assert_snapshot!(show("remove(kind == \"Pod\", metadata.¦", Some(&trace())));
    }

    #[test]
    fn a_path_through_a_variable() {
        insta::assert_snapshot!(show("remove($c := spec.containers[*] | exists($c.na¦", Some(&trace())));
    }

    #[test]
    fn a_variable() {
        insta::assert_snapshot!(show("remove($v := spec.volumes[*] | exists($v.secret) && $¦", None));
    }
}
