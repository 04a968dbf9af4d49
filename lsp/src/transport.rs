//! The protocol's framing on a byte stream (stdin and stdout), made for a client that may be
//! broken or hostile: each message is a header block (`Content-Length: N`, other headers
//! ignored, an empty line) then N bytes of JSON.
//!
//! Nothing a client sends stops the server but the end of its input (or `exit`): a header
//! block that is not one is answered with the JSON-RPC error -32700 (*parse error*, id
//! `null`), and so is a body that is not JSON; JSON that is not a JSON-RPC message gets -32600
//! (*invalid request*). A body over [`MAX_BODY`] is read and dropped in chunks, never held,
//! and answered with -32600 and a `window/showMessage`. Header lines are kept to
//! [`MAX_HEADER_LINE`] bytes. At the end of the input the server stops.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::Sender;
use lsp_server::{Connection, ErrorCode, Message};
use serde_json::{json, Value};

/// The largest message body read (64 MiB); a larger one is skipped.
pub const MAX_BODY: u64 = 64 << 20;

/// The longest header line read (bytes); a longer one is a framing error.
pub const MAX_HEADER_LINE: usize = 4096;

/// Runs the server on a byte stream pair (stdin and stdout, or pipes in tests) until the client
/// says `exit` or its input ends. `Err` says why the exit is not a clean one: `exit` without
/// `shutdown` first, or the input ended before them.
pub fn serve_io<R, W>(input: R, output: W) -> Result<(), String>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let output = Arc::new(Mutex::new(output));
    // A few messages read ahead at most: a client that writes faster than the server answers
    // waits, and does not fill the memory.
    let (to_server, from_client) = crossbeam_channel::bounded(8);
    let (to_client, from_server) = crossbeam_channel::unbounded::<Message>();
    let out = Arc::clone(&output);
    // The reader is not joined: it may wait on an input that never ends; it stops at the
    // first message after the server has.
    std::thread::Builder::new()
        .name("skel-lsp-reader".into())
        .spawn(move || read_messages(BufReader::new(input), &to_server, &*out))
        .map_err(|e| format!("cannot start the reader thread: {e}"))?;
    let out = Arc::clone(&output);
    let writer = std::thread::Builder::new()
        .name("skel-lsp-writer".into())
        .spawn(move || {
            for msg in from_server {
                let mut w = out.lock().unwrap_or_else(PoisonError::into_inner);
                if msg.write(&mut *w).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the writer thread: {e}"))?;
    let conn = Connection { sender: to_client, receiver: from_client };
    let served = crate::serve(&conn).map_err(|e| e.to_string());
    // Every answer queued is written before the server goes.
    drop(conn);
    writer.join().map_err(|_| "the writer thread panicked".to_string())?;
    served
}

/// Reads messages until the input ends (or the server has stopped), answering what cannot be
/// read as a message itself.
fn read_messages<W: Write>(mut input: impl BufRead, to_server: &Sender<Message>, out: &Mutex<W>) {
    loop {
        let Some(headers) = read_headers(&mut input) else { return };
        if let Some(why) = &headers.bad {
            if answer(out, ErrorCode::ParseError, &format!("bad framing: {why}"), Value::Null).is_err() {
                return;
            }
        }
        let Some(len) = headers.length else { continue };
        if len > MAX_BODY {
            let skipped = io::copy(&mut (&mut input).take(len), &mut io::sink()).unwrap_or(0);
            if skipped < len {
                return;
            }
            let why = format!("a message of {len} bytes is over the limit of {} MiB; it was skipped", MAX_BODY >> 20);
            let shown = json!({"jsonrpc": "2.0", "method": "window/showMessage",
                               "params": {"type": 1, "message": format!("skel lsp: {why}")}});
            if answer(out, ErrorCode::InvalidRequest, &why, Value::Null).is_err() || write_json(out, &shown).is_err() {
                return;
            }
            continue;
        }
        let mut body = Vec::new();
        match (&mut input).take(len).read_to_end(&mut body) {
            Ok(n) if n as u64 == len => {}
            _ => return,
        }
        let sent = match decode(&body) {
            // Nothing is read (nor answered) after `exit`: the server stops there.
            Ok(msg) => {
                let exit = matches!(&msg, Message::Notification(n) if n.method == "exit");
                to_server.send(msg).is_ok() && !exit
            }
            Err((code, why, id)) => answer(out, code, &why, id).is_ok(),
        };
        if !sent {
            return;
        }
    }
}

/// What a header block says.
struct Headers {
    length: Option<u64>,
    /// What is wrong with the block, when something is.
    bad: Option<String>,
}

/// Reads a header block, to its empty line. `None` at the end of the input. Lines that are
/// not headers make the block bad, but a `Content-Length` inside one is still found (a body
/// without its newline runs into the next message's header: `{...}Content-Length: 52`), so
/// the next message is read.
fn read_headers(input: &mut impl BufRead) -> Option<Headers> {
    let mut headers = Headers { length: None, bad: None };
    let mut lines = 0;
    loop {
        let line = match read_line(input)? {
            Line::Text(line) => line,
            Line::TooLong => {
                headers.bad.get_or_insert(format!("a header line is over {MAX_HEADER_LINE} bytes"));
                lines += 1;
                continue;
            }
        };
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            // Blank lines between messages are no block.
            if lines == 0 {
                continue;
            }
            break;
        }
        lines += 1;
        // A `Content-Length:` after something else on its line starts the header that counts.
        let line = match line.to_ascii_lowercase().rfind("content-length:") {
            Some(at) if at > 0 => {
                headers.bad.get_or_insert(format!("`{}` is not a header", shorten(&line[..at])));
                &line[at..]
            }
            _ => line,
        };
        let Some((name, value)) = header(line) else {
            headers.bad.get_or_insert(format!("`{}` is not a header (`Name: value`)", shorten(line)));
            continue;
        };
        if name.eq_ignore_ascii_case("Content-Length") {
            match value.trim().parse::<u64>() {
                Ok(n) => headers.length = Some(n),
                Err(_) => {
                    headers.bad.get_or_insert(format!("`Content-Length: {}` is not a number of bytes", shorten(value)));
                }
            }
        }
    }
    if headers.length.is_none() {
        headers.bad.get_or_insert("a header block without `Content-Length`".into());
    }
    Some(headers)
}

/// `Name: value`, the name made of letters, digits and `-`.
fn header(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let is_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    is_name.then_some((name, value))
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= 60 {
        return s.to_string();
    }
    s.chars().take(57).chain("...".chars()).collect()
}

enum Line {
    Text(String),
    TooLong,
}

/// A line with its end of line; `None` at the end of the input (or a read error), even
/// within a line. A line over [`MAX_HEADER_LINE`] is read to its end but not kept.
fn read_line(input: &mut impl BufRead) -> Option<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = input.fill_buf().ok()?;
        if buf.is_empty() {
            return None;
        }
        let (n, ended) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + n > MAX_HEADER_LINE {
            too_long = true;
            line = Vec::new();
        } else if !too_long {
            line.extend_from_slice(&buf[..n]);
        }
        input.consume(n);
        if ended {
            return Some(if too_long {
                Line::TooLong
            } else {
                Line::Text(String::from_utf8_lossy(&line).into_owned())
            });
        }
    }
}

/// A body as a message, or the error that answers it: its code, why, and the id to answer
/// (`null` when the message has none that can be read).
fn decode(body: &[u8]) -> Result<Message, (ErrorCode, String, Value)> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| (ErrorCode::ParseError, format!("the message is not JSON: {e}"), Value::Null))?;
    let id = match value.get("id") {
        Some(id @ (Value::Number(_) | Value::String(_))) => id.clone(),
        _ => Value::Null,
    };
    let invalid = |why: String| (ErrorCode::InvalidRequest, why, id.clone());
    let Some(object) = value.as_object() else {
        return Err(invalid("the message is not a JSON-RPC object (a batch is not supported)".into()));
    };
    // A request whose id is not a string or a 32-bit integer would be taken for a
    // notification, and never answered.
    if object.contains_key("method") && object.contains_key("id") {
        let readable = id.is_string() || id.as_i64().is_some_and(|n| i32::try_from(n).is_ok());
        if !readable {
            return Err(invalid("a request's id must be a string or an integer of 32 bits".into()));
        }
    }
    serde_json::from_value(value).map_err(|e| invalid(format!("the message is not a JSON-RPC message: {e}")))
}

/// Writes the error response that answers a message that could not be read.
fn answer<W: Write>(out: &Mutex<W>, code: ErrorCode, why: &str, id: Value) -> io::Result<()> {
    eprintln!("skel lsp: {why}");
    write_json(out, &json!({"jsonrpc": "2.0", "id": id, "error": {"code": code as i32, "message": why}}))
}

fn write_json<W: Write>(out: &Mutex<W>, value: &Value) -> io::Result<()> {
    let text = value.to_string();
    let mut w = out.lock().unwrap_or_else(PoisonError::into_inner);
    write!(w, "Content-Length: {}\r\n\r\n{text}", text.len())?;
    w.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn headers(input: &str) -> Option<(Option<u64>, Option<String>)> {
        read_headers(&mut input.as_bytes()).map(|h| (h.length, h.bad))
    }

    #[test]
    fn header_blocks() {
        assert_eq!(headers("Content-Length: 12\r\n\r\n"), Some((Some(12), None)));
        assert_eq!(headers("content-length:3\nContent-Type: x\n\n"), Some((Some(3), None)), "LF alone, any case");
        assert_eq!(headers("\r\n\r\nContent-Length: 1\r\n\r\n"), Some((Some(1), None)), "blank lines before");
        assert_eq!(headers("Content-Length: 1\r\n"), None, "the input ends in the block");
        let (len, bad) = headers("Content-Length: x1\r\n\r\n").unwrap();
        assert!(len.is_none() && bad.unwrap().contains("not a number of bytes"));
        let (len, bad) = headers("Content-Type: a\r\n\r\n").unwrap();
        assert!(len.is_none() && bad.unwrap().contains("without `Content-Length`"));
        for ran_into in ["{\"id\":1}Content-Length: 52\r\n\r\n", "abcContent-Length: 52\r\n\r\n"] {
            let (len, bad) = headers(ran_into).unwrap();
            assert_eq!(len, Some(52), "found again after a body that ran into it");
            assert!(bad.unwrap().contains("is not a header"));
        }
        let long = format!("X-Long: {}\r\nContent-Length: 2\r\n\r\n", "a".repeat(3 * MAX_HEADER_LINE));
        let (len, bad) = headers(&long).unwrap();
        assert_eq!(len, Some(2));
        assert!(bad.unwrap().contains("over 4096 bytes"));
    }

    #[test]
    fn bodies() {
        assert!(matches!(decode(br#"{"jsonrpc":"2.0","id":1,"method":"m"}"#), Ok(Message::Request(_))));
        assert!(matches!(decode(b"{not json"), Err((ErrorCode::ParseError, _, Value::Null))));
        assert!(matches!(decode(b"\xff\xfe"), Err((ErrorCode::ParseError, _, Value::Null))));
        assert!(matches!(decode(b"[1]"), Err((ErrorCode::InvalidRequest, _, Value::Null))));
        let Err((code, _, id)) = decode(br#"{"id":4294967296,"method":"m"}"#) else { panic!() };
        assert!(matches!(code, ErrorCode::InvalidRequest));
        assert_eq!(id, json!(4294967296_u64));
        let Err((_, _, id)) = decode(br#"{"id":"a","method":5}"#) else { panic!() };
        assert_eq!(id, json!("a"));
    }
}
