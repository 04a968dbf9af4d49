//! A `$variable`'s definition, its uses, and renaming it: all within its statement (a
//! variable is bound by one statement's selector and used in that statement only).

use lsp_types::{Location, Position, Range, TextEdit};
use skel::ast::{Span, Statement};

use super::analysis::{self, Item};
use super::{Document, Refused};

/// The variable under the cursor: its statement, name and span.
fn variable_at(doc: &Document, at: Position) -> Option<(&Statement, &str, Span)> {
    let (offset, stmt) = doc.at(at);
    let stmt = stmt?;
    match analysis::item_at(stmt, offset) {
        Some(Item::Var { ident, .. }) => Some((stmt, ident.name.as_str(), ident.span)),
        _ => None,
    }
}

/// Where the variable under the cursor is bound.
pub fn definition(doc: &Document, at: Position) -> Option<Location> {
    let (stmt, name, _) = variable_at(doc, at)?;
    let (def, _) = analysis::binding(stmt, name)?;
    Some(Location { uri: doc.uri.clone(), range: doc.range(def.span) })
}

/// Every occurrence of the variable under the cursor (its binding too, when asked).
pub fn references(doc: &Document, at: Position, include_declaration: bool) -> Option<Vec<Location>> {
    let (stmt, name, _) = variable_at(doc, at)?;
    let found = analysis::occurrences(stmt, name)
        .into_iter()
        .filter(|(_, def)| include_declaration || !def)
        .map(|(span, _)| Location { uri: doc.uri.clone(), range: doc.range(span) })
        .collect();
    Some(found)
}

fn only_variables() -> Refused {
    Refused("only a `$variable` can be renamed".into())
}

/// What a rename at the cursor would rename.
pub fn prepare_rename(doc: &Document, at: Position) -> Result<Range, Refused> {
    let (_, _, span) = variable_at(doc, at).ok_or_else(only_variables)?;
    Ok(doc.range(span))
}

/// The edits that rename the variable under the cursor to `new_name` (with or without its
/// `$`) in its statement.
pub fn rename(doc: &Document, at: Position, new_name: &str) -> Result<Vec<TextEdit>, Refused> {
    let (stmt, name, _) = variable_at(doc, at).ok_or_else(only_variables)?;
    let new = format!("${}", new_name.trim_start_matches('$'));
    let valid = new.len() > 1
        && new[1..].chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !new[1..].starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(Refused(format!("`{new}` is not a variable name: `$` then letters, digits or `_`")));
    }
    if new != name && !analysis::occurrences(stmt, &new).is_empty() {
        return Err(Refused(format!("`{new}` is already a variable of this statement")));
    }
    let edits = analysis::occurrences(stmt, name)
        .into_iter()
        .map(|(span, _)| TextEdit { range: doc.range(span), new_text: new.clone() })
        .collect();
    Ok(edits)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{at_cursor, show_range};
    use super::*;

    const SCRIPT: &str = "remove($c := spec.containers[*] | exists($c.env), $¦c.env);\n\
                          remove($c := spec.volumes[*] | exists($c.x), $c);\n";

    fn locations(doc: &Document, found: Option<Vec<Location>>) -> String {
        match found {
            None => "(none)".into(),
            Some(l) => l.iter().map(|l| show_range(doc, Some(l.range))).collect::<Vec<_>>().join("\n"),
        }
    }

    #[test]
    fn definition_and_references_stay_in_the_statement() {
        insta::assert_snapshot!(at_cursor(SCRIPT, |doc, pos| {
            format!(
                "definition: {}\nreferences:\n{}\nwithout the declaration:\n{}",
                show_range(doc, definition(doc, pos).map(|l| l.range)),
                locations(doc, references(doc, pos, true)),
                locations(doc, references(doc, pos, false)),
            )
        }));
    }

    #[test]
    fn nothing_to_navigate_from_a_command() {
        insta::assert_snapshot!(at_cursor("re¦move($c := spec.containers[*] | exists($c.env), $c);\n", |doc, pos| {
            format!(
                "definition: {}\nreferences: {}",
                show_range(doc, definition(doc, pos).map(|l| l.range)),
                locations(doc, references(doc, pos, true))
            )
        }));
    }

    #[test]
    fn rename_edits_every_occurrence_in_the_statement() {
        insta::assert_snapshot!(at_cursor(SCRIPT, |doc, pos| {
            let edits = rename(doc, pos, "container").unwrap_or_default();
            let shown: Vec<String> =
                edits.iter().map(|e| format!("{} -> {:?}", show_range(doc, Some(e.range)), e.new_text)).collect();
            format!("prepare: {:?}\n{}", prepare_rename(doc, pos).map(|r| show_range(doc, Some(r))), shown.join("\n"))
        }));
    }

    #[test]
    fn rename_refuses_what_is_not_a_new_variable_name() {
        insta::assert_snapshot!(at_cursor(
            "remove($c := spec.volumes[*] | exists($c.secret) && $d := spec.containers[*] | exists($d.env), $¦c);\n",
            |doc, pos| {
                let tried: Vec<String> = ["9lives", "$", "d", "a-b"]
                    .iter()
                    .map(|n| format!("{n:?}: {:?}", rename(doc, pos, n).map(|e| e.len())))
                    .collect();
                tried.join("\n")
            }
        ));
        insta::assert_snapshot!(at_cursor("re¦move(status);\n", |doc, pos| format!(
            "{:?}\n{:?}",
            prepare_rename(doc, pos),
            rename(doc, pos, "x")
        )));
    }
}
