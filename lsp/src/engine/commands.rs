//! What the server says of each command: its signature (completion, symbols) and its doc
//! (hover). One place, until the grammar's command registry says it.

use skel::ast::CommandName;

pub fn command_signature(c: CommandName) -> &'static str {
    use CommandName::*;
    match c {
        Delete => "delete(SELECTOR)",
        Remove => "remove(SELECTOR, PATH)",
        Modify => "modify(SELECTOR, PATH = VALUE)",
        Move => "move(SELECTOR, FROM -> TO)",
        Copy => "copy(SELECTOR, FROM -> TO)",
        Insert => "insert(@t == TIME, {MANIFEST} | file(\"FILE.yaml\"))",
    }
}

pub fn command_doc(c: CommandName) -> String {
    use CommandName::*;
    let what = match c {
        Delete => "Drops every object the selector matches from the trace.",
        Remove => {
            "Removes the field (or the array items) the path reaches from every object the selector matches. \
                   `remove(PATH)` acts on every object."
        }
        Modify => {
            "Sets the field the path reaches, creating it if needed, in every object the selector matches. \
                   `modify(PATH = VALUE)` acts on every object."
        }
        Move => "Moves the value at FROM to TO (TO is replaced, FROM removed) in every object the selector matches.",
        Copy => "Copies the value at FROM to TO (TO is replaced) in every object the selector matches.",
        Insert => {
            "Adds an object to the trace at a time since its first event: into the event at that time, or a \
                   new event. The manifest is written inline or read from a YAML or JSON file."
        }
    };
    format!("```skel\n{}\n```\n{what}", command_signature(c))
}
