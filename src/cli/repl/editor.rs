//! The line editor's helper (rustyline): completion of commands, variables and field paths
//! from the loaded trace; hints; syntax highlighting; multi-line input until `;`.

use std::borrow::Cow;
use std::rc::Rc;

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use skel_grammar::lex::{lex, Kind};
use skel_grammar::registry;

use super::session::{is_complete, COMMANDS};
use super::style::Style;
use skel::explore::{resolve, split_path, token_start, variables, KeyIndex};

/// What may start a test inside a selector, besides a path.
const SELECTOR_WORDS: &[&str] = &["exists(", "@t", "true", "false", "null"];

pub struct ReplHelper {
    pub keys: Rc<KeyIndex>,
    pub style: Style,
    files: FilenameCompleter,
}

impl ReplHelper {
    pub fn new(keys: Rc<KeyIndex>, style: Style) -> ReplHelper {
        ReplHelper { keys, style, files: FilenameCompleter::new() }
    }

    /// Completions for the text before the cursor: where the replaced word starts, and the
    /// candidates (best first).
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let trimmed = before.trim_start();
        if trimmed.starts_with(':') && !trimmed.contains(char::is_whitespace) {
            let start = pos - trimmed.len();
            let names = COMMANDS.iter().filter(|c| c.0.starts_with(trimmed)).map(|c| format!("{} ", c.0));
            return (start, names.collect());
        }
        let Some(start) = token_start(before) else { return (pos, Vec::new()) };
        let token = &before[start..];
        let statement_start = before[..start].trim_end().chars().last().is_none_or(|c| c == ';');
        let meta = trimmed.starts_with(':');
        let mut out: Vec<String> = Vec::new();
        if let Some(var) = token.strip_prefix('$').filter(|v| !v.contains(['.', '['])) {
            out.extend(variables(line).into_iter().filter(|v| v.starts_with(var)).map(|v| format!("${v}")));
        } else if let Some((head, partial)) = split_path(token) {
            let path = resolve(line, head);
            let partial = partial.trim_start_matches('"');
            let keys = path.map(|p| self.keys.keys_under(&p)).unwrap_or_default();
            for (key, _) in keys.into_iter().filter(|(k, _)| k.starts_with(partial)) {
                let sep = if head.ends_with('.') { "" } else { "." };
                out.push(format!("{head}{sep}{}", KeyIndex::source_key(key)));
            }
        } else if statement_start && !meta {
            let commands = registry::COMMANDS.iter().map(|c| format!("{}(", c.name));
            out.extend(commands.filter(|s| s.starts_with(token)));
        } else {
            out.extend(SELECTOR_WORDS.iter().filter(|s| s.starts_with(token)).map(|s| s.to_string()));
            let keys = self.keys.keys_under("");
            out.extend(keys.into_iter().filter(|(k, _)| k.starts_with(token)).map(|(k, _)| KeyIndex::source_key(k)));
        }
        (start, out)
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let trimmed = line[..pos].trim_start();
        let file_arg = [":load ", ":write ", ":save "].iter().any(|c| trimmed.starts_with(c));
        if file_arg {
            return self.files.complete(line, pos, ctx);
        }
        let (start, found) = self.candidates(line, pos);
        let pairs = found.into_iter().map(|c| Pair { display: c.clone(), replacement: c }).collect();
        Ok((start, pairs))
    }
}

/// A hint: the usage of a meta-command (shown only), or the rest of a path (→ accepts it).
pub struct ReplHint {
    text: String,
    accept: bool,
}

impl rustyline::hint::Hint for ReplHint {
    fn display(&self) -> &str {
        &self.text
    }

    fn completion(&self) -> Option<&str> {
        self.accept.then_some(self.text.as_str())
    }
}

impl ReplHelper {
    fn hint_text(&self, line: &str, pos: usize) -> Option<ReplHint> {
        if pos < line.len() {
            return None;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with(':') {
            // The usage of the command typed so far.
            let name = trimmed.trim_end();
            if let Some((_, args, _)) = COMMANDS.iter().find(|c| c.0 == name) {
                let sep = if trimmed.ends_with(' ') { "" } else { " " };
                return (!args.is_empty()).then(|| ReplHint { text: format!("{sep}{args}"), accept: false });
            }
        }
        // The rest of the most frequent path that completes the word (not in file names).
        if [":load", ":write", ":save"].iter().any(|c| trimmed.starts_with(c)) {
            return None;
        }
        let (start, found) = self.candidates(line, pos);
        let typed = &line[start..pos];
        let best = found.into_iter().next()?;
        let rest = best.strip_prefix(typed)?;
        (!typed.is_empty() && !rest.is_empty() && !typed.starts_with(':'))
            .then(|| ReplHint { text: rest.to_string(), accept: true })
    }
}

impl Hinter for ReplHelper {
    type Hint = ReplHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<ReplHint> {
        self.hint_text(line, pos)
    }
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.style.color {
            return Cow::Borrowed(line);
        }
        Cow::Owned(highlight(line, self.style))
    }

    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(&'s self, prompt: &'p str, _default: bool) -> Cow<'b, str> {
        Cow::Owned(self.style.green(prompt))
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(self.style.dim(hint))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.style.color
    }
}

/// SKEL with ANSI colours, from the language's one lexer (`skel_grammar::lex`, the language
/// server's too): commands and keywords, strings, numbers, variables, comments, and the
/// meta-command's name. The text itself is unchanged.
pub fn highlight(line: &str, st: Style) -> String {
    let mut out = String::with_capacity(line.len() * 2);
    let mut from = 0;
    if let Some(rest) = line.trim_start().strip_prefix(':') {
        let lead = line.len() - rest.len() - 1;
        from = lead + 1 + rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push_str(&line[..lead]);
        out.push_str(&st.cyan(&line[lead..from]));
    }
    let mut at = from;
    for t in lex(&line[from..]) {
        let (start, end) = (from + t.start, from + t.end);
        out.push_str(&line[at..start]);
        let text = &line[start..end];
        out.push_str(&match t.kind {
            Kind::Command | Kind::Keyword => st.blue(text),
            Kind::String => st.green(text),
            Kind::Variable => st.magenta(text),
            Kind::Number => st.yellow(text),
            Kind::Comment => st.dim(text),
            Kind::Path | Kind::Operator => text.to_string(),
        });
        at = end;
    }
    out.push_str(&line[at..]);
    out
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(ctx.input()) { ValidationResult::Valid(None) } else { ValidationResult::Incomplete })
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skel_trace::Event;

    fn helper() -> ReplHelper {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w",
            "labels": {"app.kubernetes.io/name": "w"}},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}],
            "volumes": []}}}});
        let events = vec![Event { ts: 0, applied_objs: vec![obj], deleted_objs: vec![] }];
        ReplHelper::new(Rc::new(KeyIndex::build(&events)), Style::plain())
    }

    fn complete(line: &str) -> Vec<String> {
        helper().candidates(line, line.len()).1
    }

    #[test]
    fn completes_commands_and_meta_commands() {
        assert_eq!(complete("mod"), vec!["modify("]);
        assert_eq!(complete(":ma"), vec![":match "]);
        assert_eq!(complete(":s"), vec![":show ", ":stats ", ":save "]);
        assert_eq!(complete("delete(ex"), vec!["exists("]);
    }

    #[test]
    fn completes_paths_from_the_trace_most_frequent_first() {
        assert_eq!(
            complete("modify(kind == \"Deployment\", spec.template.spec."),
            vec!["spec.template.spec.containers", "spec.template.spec.volumes"]
        );
        assert_eq!(
            complete("remove(spec.template.spec.containers[0].i"),
            vec!["spec.template.spec.containers[0].image"]
        );
        assert_eq!(
            complete(":get spec.template.spec.containers[*]."),
            vec!["spec.template.spec.containers[*].name", "spec.template.spec.containers[*].image"]
        );
        assert_eq!(complete("delete(metadata.labels.\"app"), vec!["metadata.labels.\"app.kubernetes.io/name\""]);
        assert_eq!(complete("delete(ki"), vec!["kind"]);
    }

    #[test]
    fn completes_variables_and_paths_through_them() {
        let line = "modify($c := spec.template.spec.containers[*] | exists($c.i";
        assert_eq!(complete(line), vec!["$c.image"]);
        assert_eq!(complete("modify($cont := spec | $co"), vec!["$cont"]);
    }

    #[test]
    fn hints_usage_and_the_likeliest_path() {
        let h = helper();
        let hist = rustyline::history::DefaultHistory::new();
        let ctx = Context::new(&hist);
        let hint = |line: &str| h.hint(line, line.len(), &ctx).map(|h| (h.text, h.accept));
        assert_eq!(hint(":match"), Some((" SELECTOR".into(), false)), "usage is shown, not accepted");
        assert_eq!(hint("delete(metadata.na"), Some(("me".into(), true)));
        assert_eq!(hint(":get metadata.na"), Some(("me".into(), true)), "in a command's argument too");
        assert_eq!(hint("delete("), None);
        assert_eq!(hint(":st"), None);
        assert_eq!(hint(":save m"), None, "file names get no path hints");
    }

    #[test]
    fn highlighting_keeps_the_text() {
        let line = ":match kind == \"Pod\" && $x := spec | exists($x.a) # c";
        let painted = highlight(line, Style::color());
        let plain = painted.replace("\x1b[0m", "");
        let plain: String = plain
            .split("\x1b[")
            .enumerate()
            .map(|(i, s)| if i == 0 { s } else { &s[s.find('m').map_or(0, |m| m + 1)..] })
            .collect();
        assert_eq!(plain, line);
        assert!(painted.contains("\x1b[32m\"Pod\"\x1b[0m"));
        assert!(painted.contains("\x1b[34mexists\x1b[0m"));
    }
}
