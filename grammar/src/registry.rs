//! The SKEL vocabulary, written once: every command (its name, its signature and what it does)
//! and the keywords. The parser's hints, the formatter, the language server (hover,
//! completion, semantic tokens, outlines), the REPL (`:help`, completion, highlighting) and
//! docs/language.md's command table are made from this table; [`crate::lex`] is the one lexer
//! they colour with.
//!
//! Adding a command is: the grammar (`skel.pest` and its lowering), a row here, the checker,
//! IR and VM, and tests.

use crate::ast::CommandName;

/// One command of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    pub name: CommandName,
    /// How it is called; `[SELECTOR,]` marks the optional selector.
    pub signature: &'static str,
    /// What it does, in a line (docs/language.md's table, the REPL's `:help`).
    pub summary: &'static str,
    /// What it does, in full (the language server's hover).
    pub doc: &'static str,
}

/// Every command, in the order the language guide presents them.
pub const COMMANDS: [Command; 6] = [
    Command {
        name: CommandName::Delete,
        signature: "delete(SELECTOR)",
        summary: "drops every object the selector matches from its event",
        doc: "Drops every object the selector matches from the trace.",
    },
    Command {
        name: CommandName::Remove,
        signature: "remove([SELECTOR,] PATH)",
        summary: "deletes the field(s) `PATH` reaches in every matching object",
        doc: "Removes the field (or the array items) the path reaches from every object the selector matches. \
              `remove(PATH)` acts on every object.",
    },
    Command {
        name: CommandName::Modify,
        signature: "modify([SELECTOR,] PATH = VALUE)",
        summary: "sets the field(s) `PATH` reaches in every matching object",
        doc: "Sets the field the path reaches, creating it if needed, in every object the selector matches. \
              `modify(PATH = VALUE)` acts on every object.",
    },
    Command {
        name: CommandName::Move,
        signature: "move([SELECTOR,] FROM -> TO)",
        summary: "moves the value at `FROM` to `TO` in every matching object",
        doc: "Moves the value at FROM to TO (TO is replaced, FROM removed) in every object the selector matches. \
              `move(FROM -> TO)` acts on every object.",
    },
    Command {
        name: CommandName::Copy,
        signature: "copy([SELECTOR,] FROM -> TO)",
        summary: "copies the value at `FROM` to `TO` in every matching object",
        doc: "Copies the value at FROM to TO (TO is replaced) in every object the selector matches. \
              `copy(FROM -> TO)` acts on every object.",
    },
    Command {
        name: CommandName::Insert,
        signature: "insert(@t == TIME, MANIFEST)",
        summary: "adds a new object to the trace at time `TIME`",
        doc: "Adds an object to the trace at a time since its first event: into the event at that time, or a \
              new event. The manifest is written inline (`{...}`) or read from a YAML or JSON file \
              (`file(\"FILE.yaml\")`).",
    },
];

/// Words with a meaning of their own outside a path: `exists(PATH)`, `file("F")` in an
/// `insert`, `in [...]`, and the literals.
pub const KEYWORDS: [&str; 6] = ["exists", "file", "in", "true", "false", "null"];

/// The row of a command.
pub fn command(name: CommandName) -> &'static Command {
    match COMMANDS.iter().find(|c| c.name == name) {
        Some(c) => c,
        // Every `CommandName` has a row (a test checks it); the first is as good as any.
        None => &COMMANDS[0],
    }
}

/// The command a word names (`"modify"`), if any.
pub fn by_name(word: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name.as_str() == word)
}

impl Command {
    /// The markdown a hover shows: the signature as SKEL, then what it does.
    pub fn hover(&self) -> String {
        format!("```skel\n{}\n```\n{}", self.signature, self.doc)
    }
}

/// docs/language.md's table of the commands (a test compares the two).
pub fn markdown_table() -> String {
    let mut out = String::from("| Command | Does |\n|---|---|\n");
    for c in &COMMANDS {
        out.push_str(&format!("| `{};` | {} |\n", c.signature, c.summary));
    }
    out
}

/// The list of the commands for a hint: "`delete(SELECTOR)`, ... and `insert(...)`".
pub fn signatures() -> String {
    let all: Vec<String> = COMMANDS.iter().map(|c| format!("`{}`", c.signature)).collect();
    match all.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => all.concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_one_row_named_as_it_is() {
        for name in CommandName::ALL {
            let rows: Vec<_> = COMMANDS.iter().filter(|c| c.name == name).collect();
            assert_eq!(rows.len(), 1, "{name}");
            assert!(rows[0].signature.starts_with(&format!("{name}(")), "{:?}", rows[0]);
            assert_eq!(by_name(name.as_str()), Some(rows[0]));
            assert_eq!(command(name), rows[0]);
        }
        assert_eq!(COMMANDS.len(), CommandName::ALL.len());
        assert_eq!(by_name("modfy"), None);
    }

    #[test]
    fn keywords_and_commands_are_apart() {
        assert!(KEYWORDS.iter().all(|k| by_name(k).is_none()));
    }

    #[test]
    fn the_hint_lists_every_command() {
        let s = signatures();
        assert!(s.starts_with("`delete(SELECTOR)`, `remove([SELECTOR,] PATH)`"), "{s}");
        assert!(s.ends_with(" and `insert(@t == TIME, MANIFEST)`"), "{s}");
    }
}
