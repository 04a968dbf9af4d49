//! The REPL's own diagnostics (the compiler's and the files' are shared with `skel apply`).

use miette::{Diagnostic, SourceSpan};
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum ReplError {
    /// A line of piped input (`line`: its number, from 1), or what was typed on a terminal,
    /// holds bytes that are not UTF-8. The statement or command it belongs to is not run.
    #[error("{} is not UTF-8", line.map_or("the input".to_string(), |n| format!("line {n} of the input")))]
    #[diagnostic(code(skel::repl::not_utf8), help("the {what} holding it was skipped; the REPL reads UTF-8 text"))]
    NotUtf8 {
        line: Option<usize>,
        what: &'static str,
        #[label("not UTF-8 (shown as �)")]
        span: Option<SourceSpan>,
    },
    #[error("no trace is loaded")]
    #[diagnostic(code(skel::repl::no_trace), help("load one with `:load TRACE`, or start with `skel repl TRACE`"))]
    NoTrace,
    #[error("unknown command `{name}`")]
    #[diagnostic(code(skel::repl::unknown_command), help("{help}"))]
    UnknownCommand {
        name: String,
        #[label("not a REPL command")]
        span: SourceSpan,
        help: String,
    },
    #[error("`{command}` needs {what}")]
    #[diagnostic(code(skel::repl::missing_argument), help("usage: {command} {usage}"))]
    MissingArgument {
        command: &'static str,
        what: &'static str,
        usage: &'static str,
        #[label("{what} goes here")]
        span: SourceSpan,
    },
    #[error("`{command}` takes no argument")]
    #[diagnostic(code(skel::repl::unexpected_argument), help("usage: {command}"))]
    UnexpectedArgument {
        command: &'static str,
        #[label("not expected")]
        span: SourceSpan,
    },
    #[error("`{text}` is not an object's address")]
    #[diagnostic(
        code(skel::repl::bad_address),
        help("write EVENT or EVENT.OBJECT, as `:match` lists them, e.g. `:show 3` or `:show 3.1`")
    )]
    BadAddress {
        text: String,
        #[label("expected EVENT or EVENT.OBJECT")]
        span: SourceSpan,
    },
    #[error("there is no event {event}: the trace has {count} events")]
    #[diagnostic(code(skel::repl::no_such_event), help("events are numbered from 0; `:stats` counts them"))]
    NoSuchEvent {
        event: usize,
        count: usize,
        #[label("no such event")]
        span: SourceSpan,
    },
    #[error("event {event} has no object {object}: it has {count}")]
    #[diagnostic(
        code(skel::repl::no_such_object),
        help("objects are numbered from 0, applied then deleted; `:show {event}` prints them all")
    )]
    NoSuchObject {
        event: usize,
        object: usize,
        count: usize,
        #[label("no such object")]
        span: SourceSpan,
    },
    #[error("`{text}` is not a count")]
    #[diagnostic(code(skel::repl::bad_count), help("write a whole number, 1 or more, e.g. `:diff 10`"))]
    BadCount {
        text: String,
        #[label("expected a count")]
        span: SourceSpan,
    },
    #[error("`{command}` writes to a file, not to stdout")]
    #[diagnostic(
        code(skel::repl::stdout_target),
        help("the session's answers go to stdout; name a file, e.g. `{command} out.json`")
    )]
    StdoutTarget {
        command: &'static str,
        #[label("a file name goes here")]
        span: SourceSpan,
    },
    #[error("`{command}` writes a local file, not a URL")]
    #[diagnostic(
        code(skel::repl::url_target),
        help("write it here (`{command} out{extension}`), then copy it; `skel apply SCRIPT TRACE -o URL` writes a trace to an object store")
    )]
    UrlTarget {
        command: &'static str,
        extension: &'static str,
        #[label("a URL")]
        span: SourceSpan,
    },
    #[error("`:get` paths start at the object's root")]
    #[diagnostic(
        code(skel::repl::path_variable),
        help("no variable is bound here; write the path from the top (`spec.template.spec.containers[*].image`)")
    )]
    PathVariable {
        #[label("a variable")]
        span: SourceSpan,
    },
    #[error("invalid JSONPath: {message}")]
    #[diagnostic(
        code(skel::repl::invalid_jsonpath),
        help("JSONPath (RFC 9535) starts at `$`, e.g. `$.spec.template.spec.containers[*].image`")
    )]
    JsonPath {
        message: String,
        #[label("here")]
        span: SourceSpan,
    },
}
