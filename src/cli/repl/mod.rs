//! `skel repl [TRACE]`: SKEL statements and meta-commands over a trace held in memory.
//! On a terminal it is a line editor (rustyline) with completion, hints, highlighting and a
//! history file; with stdin piped it reads the same input and answers in plain text.

mod busy;
mod diff;
mod editor;
mod error;
mod session;
mod store;
mod style;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use self::editor::ReplHelper;
use self::error::ReplError;
use self::session::{is_blank, is_complete, Flow, Session};
use self::style::Style;
use super::files::{self, FileError};
use super::{report, Exit, Failed, ReplArgs};

/// Ctrl-C while a statement runs (on a terminal): the statement stops, the trace is unchanged.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

fn clear_interrupt() {
    INTERRUPTED.store(false, Ordering::Relaxed);
}

pub fn run(args: ReplArgs) -> Result<(), Failed> {
    // The line editor writes its prompt and control codes to stdout: only on a terminal.
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    // Diagnostics are part of the answers, on stdout: the session renders them itself.
    let color = interactive && report::color_allowed();
    let mut session = Session::new(if color { Style::color() } else { Style::plain() });
    // Completion's index of field paths serves the line editor only, as do spinners.
    session.index_keys = interactive;
    session.spinners = interactive;
    session.piped = !interactive;
    if let Some(trace) = &args.trace {
        session.load(trace);
        print!("{}", session.take_output());
    }
    if interactive {
        interactive_loop(session)
    } else {
        piped(session)
    }
}

/// Reads statements and meta-commands from stdin; exit 1 if any of them failed.
fn piped(mut session: Session) -> Result<(), Failed> {
    let mut stdin = std::io::stdin().lock();
    let mut buf = String::new();
    // The first line of `buf` that is not UTF-8: its number, its text (`�` for the bad
    // bytes) and where the first bad byte is. The input it belongs to is reported, not run.
    let mut bad: Option<(usize, String, usize)> = None;
    let mut bytes = Vec::new();
    let mut number = 0;
    loop {
        bytes.clear();
        match stdin.read_until(b'\n', &mut bytes) {
            Ok(0) => break,
            Ok(_) => number += 1,
            Err(e) => {
                let reason = files::reason(&e);
                session.fail(FileError::Read { path: "<stdin>".into(), reason, help: "the input stopped here".into() });
                print!("{}", session.take_output());
                break;
            }
        }
        let line = match std::str::from_utf8(line_text(&bytes)) {
            Ok(line) => line.to_string(),
            Err(e) => {
                let line = String::from_utf8_lossy(line_text(&bytes)).into_owned();
                bad.get_or_insert((number, line.clone(), e.valid_up_to()));
                line
            }
        };
        // Diagnostics point at the input's own lines: `buf` starts at line `input_line`.
        if buf.is_empty() {
            session.input_line = number;
        }
        if is_blank(&buf) && line.trim_start().starts_with(':') {
            buf.clear();
            session.input_line = number;
            if let Some(bad) = bad.take() {
                not_utf8(&mut session, bad, "command");
                continue;
            }
            let flow = session.run(&line);
            print!("{}", session.take_output());
            if flow == Flow::Quit {
                break;
            }
            continue;
        }
        buf.push_str(&line);
        buf.push('\n');
        if is_complete(&buf) {
            match bad.take() {
                Some(bad) => not_utf8(&mut session, bad, "statement"),
                None => {
                    session.run(&buf);
                }
            }
            print!("{}", session.take_output());
            buf.clear();
        }
    }
    if let Some(bad) = bad.take() {
        not_utf8(&mut session, bad, "statement");
    } else if !is_blank(&buf) {
        // The input ended inside a statement: the compiler says what is missing.
        session.run(&buf);
    }
    print!("{}", session.take_output());
    if session.failed {
        Err(Failed::silent(Exit::Error))
    } else {
        Ok(())
    }
}

/// A line as read, without its line break (`\n` or `\r\n`) and without a byte-order mark
/// at its start (an editor's, or a file's when files are piped in one after another).
fn line_text(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").map_or(bytes, |b| b.strip_suffix(b"\r").unwrap_or(b));
    bytes.strip_prefix(BOM.as_bytes()).unwrap_or(bytes)
}

const BOM: &str = "\u{feff}";

/// Reports a piped line that is not UTF-8 (`bad`: its number, text and first bad byte); the
/// statement or command holding it (`what`) is not run.
fn not_utf8(session: &mut Session, (line, text, at): (usize, String, usize), what: &'static str) {
    // `text` has `�` (3 bytes) where the first bad byte was.
    let span = Some((at, 3).into());
    session.input_line = line;
    session.error(ReplError::NotUtf8 { line: Some(line), what, span }, &text);
}

/// Where the history file lives: the user's data folder (`$XDG_DATA_HOME/skel/history`).
fn history_file() -> Option<PathBuf> {
    let dir = dirs::data_dir()?.join("skel");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

fn interactive_loop(mut session: Session) -> Result<(), Failed> {
    let cannot_start = |e: ReadlineError| {
        eprintln!("skel repl: cannot start the line editor: {e}");
        Failed::silent(Exit::Error)
    };
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(5000)
        .map_err(cannot_start)?
        .build();
    let mut rl: Editor<ReplHelper, DefaultHistory> = Editor::with_config(config).map_err(cannot_start)?;
    rl.set_helper(Some(ReplHelper::new(Rc::clone(&session.keys), session.style)));
    // While the line editor reads, Ctrl-C is a key (it drops the input); while a statement
    // runs, it is a signal, and stops the statement.
    crate::cli::signals::on_interrupt(|| INTERRUPTED.store(true, Ordering::Relaxed));
    let history = history_file();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!("skel repl: SKEL statements end with `;`; `:help` lists commands, Ctrl-D leaves.");
    // The line editor itself failed (the terminal went away): exit 1.
    let mut failed = false;
    loop {
        match rl.readline("skel> ") {
            Ok(input) => {
                let input = input.strip_prefix(BOM).unwrap_or(&input);
                if is_blank(input) {
                    continue;
                }
                let _ = rl.add_history_entry(input.trim_end());
                let flow = session.run(input);
                print!("{}", session.take_output());
                if let Some(h) = rl.helper_mut() {
                    h.keys = Rc::clone(&session.keys);
                }
                if flow == Flow::Quit {
                    break;
                }
            }
            // Ctrl-C: the input is dropped; a new prompt.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            // A byte that is not UTF-8: the line editor drops the input; a new prompt.
            Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                session.error(ReplError::NotUtf8 { line: None, what: "line", span: None }, "");
                print!("{}", session.take_output());
            }
            Err(e) => {
                eprintln!("skel repl: {e}");
                failed = true;
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    if failed {
        Err(Failed::silent(Exit::Error))
    } else {
        Ok(())
    }
}
