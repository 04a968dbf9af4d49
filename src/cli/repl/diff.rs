//! Unified diffs of manifests as YAML, coloured on a terminal.

use serde_json::Value;
use similar::TextDiff;

use super::style::Style;

/// A manifest as YAML (what `:show` prints and diffs compare).
pub fn yaml(v: &Value) -> String {
    match serde_yaml::to_string(v) {
        Ok(s) => s,
        // Every JSON value has a YAML form; keep JSON if the library disagrees.
        Err(_) => serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
    }
}

/// The unified diff between two manifests' YAML, two lines of context.
pub fn unified(before: &Value, after: &Value, style: Style) -> String {
    let (a, b) = (yaml(before), yaml(after));
    let diff = TextDiff::from_lines(&a, &b);
    let mut out = String::new();
    for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        let text = hunk.to_string();
        for line in text.lines() {
            let painted = match line.as_bytes().first() {
                Some(b'@') => style.cyan(line),
                Some(b'-') => style.red(line),
                Some(b'+') => style.green(line),
                _ => line.to_string(),
            };
            out.push_str(&painted);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_changed_field_is_one_hunk() {
        let before = json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "a"}});
        let after = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "a"}});
        let d = unified(&before, &after, Style::plain());
        assert_eq!(
            d,
            "@@ -1,3 +1,3 @@\n-apiVersion: batch/v1beta1\n+apiVersion: batch/v1\n kind: CronJob\n metadata:\n"
        );
    }

    #[test]
    fn colour_marks_removed_and_added_lines() {
        let d = unified(&json!({"a": 1}), &json!({"a": 2}), Style::color());
        assert!(d.contains("\x1b[31m-a: 1\x1b[0m"), "{d:?}");
        assert!(d.contains("\x1b[32m+a: 2\x1b[0m"), "{d:?}");
    }
}
