//! The server under a broken or hostile client, through its byte stream (`skel_lsp::serve_io`,
//! what `skel lsp` runs on stdin and stdout, here on in-memory pipes): bad framing, bodies that
//! are not JSON, huge `Content-Length`s, the input ending, requests after `shutdown`, `exit`
//! without it, slow requests and cancellation, traces that are FIFOs or devices, and documents
//! large enough that work per line or per token from the start of the text would take
//! minutes. Nothing here measures time: a hang fails as a wait of two minutes for an answer.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use serde_json::{json, Value};

/// How long an answer may take before the test calls the server hung.
const PATIENCE: Duration = Duration::from_secs(120);

const URI: &str = "file:///work/script.skel";

/// The server's stdin: bytes sent by the test, in chunks.
struct PipeIn {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for PipeIn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => (self.chunk, self.at) = (chunk, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The server's stdout.
struct PipeOut(Sender<Vec<u8>>);

impl Write for PipeOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Client {
    input: Option<Sender<Vec<u8>>>,
    output: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    /// What `serve_io` returned, once it has.
    ended: Receiver<Result<(), String>>,
    /// Messages read while looking for another.
    seen: Vec<Value>,
    next: i64,
}

impl Client {
    /// A server, not yet initialized.
    fn raw() -> Client {
        let (input, rx) = mpsc::channel();
        let (tx, output) = mpsc::channel();
        let (done, ended) = mpsc::channel();
        std::thread::spawn(move || {
            let served = skel_lsp::serve_io(PipeIn { rx, chunk: Vec::new(), at: 0 }, PipeOut(tx));
            let _ = done.send(served);
        });
        Client { input: Some(input), output, pending: Vec::new(), ended, seen: Vec::new(), next: 1 }
    }

    /// A server past `initialize`, with these initialization options.
    fn start(options: Value) -> Client {
        let mut c = Client::raw();
        let result = c.request("initialize", json!({"capabilities": {}, "initializationOptions": options}));
        assert!(result["result"]["capabilities"]["hoverProvider"].as_bool().unwrap_or(false), "{result}");
        c.notify("initialized", json!({}));
        c
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.input.as_ref().unwrap().send(bytes.to_vec()).unwrap();
    }

    fn frame(&mut self, body: &[u8]) {
        let mut framed = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        framed.extend_from_slice(body);
        self.bytes(&framed);
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.frame(json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string().as_bytes());
    }

    fn send(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next;
        self.next += 1;
        self.frame(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string().as_bytes());
        id
    }

    /// The next message the server writes.
    fn read(&mut self) -> Value {
        loop {
            if let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(self.pending[..end].to_vec()).unwrap();
                let len: usize = head.strip_prefix("Content-Length: ").unwrap().parse().unwrap();
                if self.pending.len() >= end + 4 + len {
                    let body: Vec<u8> = self.pending.drain(..end + 4 + len).skip(end + 4).collect();
                    return serde_json::from_slice(&body).unwrap();
                }
            }
            match self.output.recv_timeout(PATIENCE) {
                Ok(chunk) => self.pending.extend(chunk),
                Err(e) => panic!("the server does not answer ({e:?}); it read: {:?}", self.seen),
            }
        }
    }

    /// The first message (seen before, or read now) that `wanted` picks.
    fn find(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.seen.iter().position(&wanted) {
            return self.seen.remove(i);
        }
        loop {
            let msg = self.read();
            if wanted(&msg) {
                return msg;
            }
            self.seen.push(msg);
        }
    }

    fn answer(&mut self, id: i64) -> Value {
        self.find(|m| m["id"] == id && m.get("method").is_none())
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        self.answer(id)
    }

    fn open(&mut self, text: &str) -> Value {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": URI, "languageId": "skel", "version": 1, "text": text}}),
        );
        self.find(|m| m["method"] == "textDocument/publishDiagnostics")["params"]["diagnostics"].clone()
    }

    fn hover(&mut self, line: u32, character: u32) -> Value {
        let at = json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}});
        self.request("textDocument/hover", at)
    }

    /// Closes the server's input; what `serve_io` returns.
    fn close(&mut self) -> Result<(), String> {
        self.input = None;
        self.ended()
    }

    fn ended(&mut self) -> Result<(), String> {
        match self.ended.recv_timeout(PATIENCE) {
            Ok(served) => served,
            Err(RecvTimeoutError::Timeout) => panic!("the server does not stop"),
            Err(RecvTimeoutError::Disconnected) => panic!("the server's thread panicked"),
        }
    }

    /// `shutdown` and `exit`: the server stops cleanly.
    fn finish(mut self) {
        assert_eq!(self.request("shutdown", Value::Null)["result"], Value::Null);
        self.notify("exit", Value::Null);
        assert_eq!(self.ended(), Ok(()));
    }
}

fn error_code(msg: &Value) -> i64 {
    msg["error"]["code"].as_i64().unwrap_or_else(|| panic!("an error: {msg}"))
}

/// Still up: a request is answered.
fn answers(c: &mut Client) {
    let r = c.request("textDocument/documentSymbol", json!({"textDocument": {"uri": URI}}));
    assert!(r.get("result").is_some() || r.get("error").is_some(), "{r}");
}

#[test]
fn a_body_that_is_not_json_is_a_parse_error_and_the_server_goes_on() {
    let mut c = Client::start(json!({}));
    c.frame(b"{\"jsonrpc\": \"2.0\", \"id\": 5, \"method\": ");
    let e = c.find(|m| m.get("error").is_some());
    assert_eq!(error_code(&e), -32700);
    assert_eq!(e["id"], Value::Null);
    c.frame(b"\xff\xfe not UTF-8");
    assert_eq!(error_code(&c.find(|m| m.get("error").is_some())), -32700);
    // JSON, but not a message: invalid request, with the id when there is one.
    c.frame(b"[1, 2]");
    assert_eq!(error_code(&c.find(|m| m.get("error").is_some())), -32600);
    c.frame(br#"{"jsonrpc": "2.0", "id": 99, "method": 7}"#);
    let e = c.answer(99);
    assert_eq!(error_code(&e), -32600);
    // An id the protocol's types cannot hold is answered, not taken for a notification.
    c.frame(br#"{"jsonrpc": "2.0", "id": 9007199254740993, "method": "textDocument/hover"}"#);
    assert_eq!(error_code(&c.find(|m| m.get("error").is_some())), -32600);
    assert_eq!(c.open("remove(status);\n"), json!([]));
    answers(&mut c);
    c.finish();
}

#[test]
fn bad_framing_is_a_parse_error_and_the_next_message_is_read() {
    let mut c = Client::start(json!({}));
    assert_eq!(c.open("remove(status);\n"), json!([]));
    let bad = |c: &mut Client| {
        let e = c.find(|m| m.get("error").is_some());
        assert_eq!(error_code(&e), -32700, "{e}");
        assert_eq!(e["id"], Value::Null);
        e["error"]["message"].as_str().unwrap().to_string()
    };
    // No Content-Length.
    c.bytes(b"Content-Type: application/vscode-jsonrpc\r\n\r\n");
    assert!(bad(&mut c).contains("without `Content-Length`"));
    answers(&mut c);
    // A length that is not a number.
    c.bytes(b"Content-Length: twelve\r\n\r\n");
    assert!(bad(&mut c).contains("not a number"));
    answers(&mut c);
    // A message without a header, on its line; then a framed one.
    c.bytes(b"{\"jsonrpc\": \"2.0\", \"id\": 50, \"method\": \"shutdown\"}\r\n");
    answers(&mut c);
    assert!(bad(&mut c).contains("is not a header"));
    // A Content-Length longer than its body takes in the next message: that one is lost (not
    // JSON, with the message before), the one after is read.
    let lost = b"Content-Length: 2\r\n\r\n{}";
    c.bytes(format!("Content-Length: {}\r\n\r\n{{}}", 2 + lost.len()).as_bytes());
    c.bytes(lost);
    assert!(bad(&mut c).contains("not JSON"));
    answers(&mut c);
    // A header line of a megabyte is not kept.
    let mut long = b"X-Padding: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', 1 << 20));
    long.extend(b"\r\n");
    c.bytes(&long);
    c.frame(br#"{"jsonrpc": "2.0", "id": 77, "method": "textDocument/documentSymbol", "params": {"textDocument": {"uri": "file:///work/script.skel"}}}"#);
    assert!(bad(&mut c).contains("over 4096 bytes"));
    assert!(c.answer(77).get("result").is_some());
    c.finish();
}

#[test]
fn a_body_over_the_limit_is_skipped_without_being_held() {
    let mut c = Client::start(json!({}));
    let len = skel_lsp::MAX_BODY + 1;
    c.bytes(format!("Content-Length: {len}\r\n\r\n").as_bytes());
    for _ in 0..len / (1 << 20) {
        c.bytes(&vec![b' '; 1 << 20]);
    }
    c.bytes(&vec![b' '; (len % (1 << 20)) as usize]);
    let e = c.find(|m| m.get("error").is_some());
    assert_eq!(error_code(&e), -32600);
    assert!(e["error"]["message"].as_str().unwrap().contains("over the limit of 64 MiB"), "{e}");
    let shown = c.find(|m| m["method"] == "window/showMessage");
    assert_eq!(shown["params"]["type"], 1);
    assert_eq!(c.open("remove(status);\n"), json!([]));
    answers(&mut c);
    c.finish();
}

#[test]
fn a_claimed_length_of_4_gib_then_the_end_of_input_stops_the_server() {
    let mut c = Client::start(json!({}));
    c.bytes(b"Content-Length: 4294967295\r\n\r\n{\"jsonrpc\": \"2.0\"");
    let ended = c.close();
    assert!(ended.unwrap_err().contains("without `shutdown`"));
}

#[test]
fn the_end_of_input_stops_the_server() {
    let mut c = Client::raw();
    assert!(c.close().is_err(), "before `initialize`");
    let mut c = Client::start(json!({}));
    c.open("remove(status);\n");
    assert!(c.close().unwrap_err().contains("closed the connection without `shutdown`"));
    let mut c = Client::start(json!({}));
    assert_eq!(c.request("shutdown", Value::Null)["result"], Value::Null);
    assert_eq!(c.close(), Ok(()), "after `shutdown`, the end of input is a clean exit");
}

#[test]
fn requests_after_shutdown_are_invalid() {
    let mut c = Client::start(json!({}));
    c.open("remove(status);\n");
    assert_eq!(c.request("shutdown", Value::Null)["result"], Value::Null);
    let r = c.hover(0, 1);
    assert_eq!(error_code(&r), -32600);
    assert!(r["error"]["message"].as_str().unwrap().contains("after `shutdown`"), "{r}");
    assert_eq!(error_code(&c.request("shutdown", Value::Null)), -32600);
    c.notify("exit", Value::Null);
    assert_eq!(c.ended(), Ok(()));
}

#[test]
fn exit_without_shutdown_is_an_error_exit() {
    let mut c = Client::start(json!({}));
    c.notify("exit", Value::Null);
    assert!(c.ended().unwrap_err().contains("`exit` without `shutdown`"));
}

#[test]
fn requests_before_initialize_are_refused_and_initialize_once() {
    let mut c = Client::raw();
    assert_eq!(error_code(&c.hover(0, 0)), -32002);
    c.notify("textDocument/didOpen", json!({}));
    let bad = c.request("initialize", json!({"capabilities": 5}));
    assert_eq!(error_code(&bad), -32602);
    let ok = c.request("initialize", json!({"capabilities": {}}));
    assert!(ok["result"]["capabilities"].is_object(), "{ok}");
    assert_eq!(error_code(&c.request("initialize", json!({"capabilities": {}}))), -32600);
    c.finish();
}

/// A folder of its own for a test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("skel-lsp-hardening-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

fn told(c: &mut Client, needle: &str) -> Value {
    let shown = c.find(|m| {
        m["method"] == "window/showMessage" && m["params"]["message"].as_str().is_some_and(|s| s.contains(needle))
    });
    shown["params"].clone()
}

/// A trace that is a FIFO (no writer: opening it would wait forever), a device or a folder is
/// not read; hover answers without it and the editor is told why, once.
#[test]
fn a_trace_that_is_not_a_regular_file_is_told_not_read() {
    let dir = scratch("fifo");
    let fifo = dir.join("trace.json");
    mkfifo(&fifo);
    let mut c = Client::start(json!({}));
    for trace in [fifo.display().to_string(), "/dev/zero".into(), dir.display().to_string()] {
        let text = format!("# trace: {trace}\nremove(kind == \"Pod\", status);\n");
        c.open(&text);
        let h = c.hover(1, 25);
        let v = h["result"]["contents"]["value"].as_str().unwrap_or_else(|| panic!("{h}"));
        assert!(v.contains("status") && !v.contains("**In "), "{v}");
        let shown = told(&mut c, &trace);
        assert!(shown["message"].as_str().unwrap().contains("not a regular file"), "{shown}");
        assert_eq!(shown["type"], 2);
    }
    // Told once per trace: hovering again says nothing new.
    let text = format!("# trace: {}\nremove(kind == \"Pod\", status);\n", fifo.display());
    c.open(&text);
    c.hover(1, 25);
    answers(&mut c);
    assert!(!c.seen.iter().any(|m| m["method"] == "window/showMessage"), "{:?}", c.seen);
    c.finish();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_trace_that_cannot_be_read_is_told() {
    let dir = scratch("unreadable");
    let sparse = dir.join("huge.json");
    // 2 GiB of zeros that take no disk: not a trace, told at its first byte.
    std::fs::File::create(&sparse).unwrap().set_len(2 << 30).unwrap();
    let mut c = Client::start(json!({"skel": {"trace": sparse.display().to_string()}}));
    c.open("remove(status);\n");
    assert!(c.hover(0, 8)["result"]["contents"]["value"].as_str().unwrap().contains("status"));
    let shown = told(&mut c, "huge.json");
    assert!(shown["message"].as_str().unwrap().contains("cannot be read"), "{shown}");
    let missing = dir.join("missing.json");
    c.notify("workspace/didChangeConfiguration", json!({"settings": {"trace": missing.display().to_string()}}));
    assert!(c.hover(0, 8).get("result").is_some());
    told(&mut c, "missing.json");
    c.finish();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A trace of a few hundred thousand objects: reading it for the first hover takes a while
/// (the time the requests below are answered in is not measured: they are answered while the
/// hover still reads, as their order shows).
fn big_trace(dir: &Path) -> PathBuf {
    let path = dir.join("big.json");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write!(out, r#"{{"version": 2, "config": {{"trackedObjects": {{}}}}, "events": ["#).unwrap();
    for e in 0..500 {
        let objs: Vec<String> = (0..100)
            .map(|o| {
                format!(
                    r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "p{e}-{o}", "labels": {{"app": "a{o}"}}}}, "spec": {{"containers": [{{"name": "c", "image": "i{o}", "env": [{{"name": "E", "value": "{e}"}}]}}]}}}}"#
                )
            })
            .collect();
        let sep = if e == 0 { "" } else { "," };
        write!(out, r#"{sep}{{"ts": {e}, "applied_objs": [{}], "deleted_objs": []}}"#, objs.join(",")).unwrap();
    }
    write!(out, r#"], "index": {{}}, "pod_lifecycles": {{}}}}"#).unwrap();
    out.flush().unwrap();
    path
}

/// One slow request (the first hover reads a large trace) holds up no other, and cancelling it
/// answers it at once with -32800 (its late answer is dropped); 64 running at once are the most.
#[test]
fn a_slow_request_holds_up_no_other_and_can_be_cancelled() {
    let dir = scratch("slow");
    let trace = big_trace(&dir);
    let mut c = Client::start(json!({"skel": {"trace": trace.display().to_string()}}));
    let text = "remove(kind == \"Pod\", metadata.labels.app);\n";
    c.open(text);
    let at = json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 40}});
    let slow = c.send("textDocument/hover", at.clone());
    let fast = c.send("textDocument/semanticTokens/full", json!({"textDocument": {"uri": URI}}));
    c.notify("$/cancelRequest", json!({"id": slow}));
    // The tokens and the cancellation come while the hover still reads the trace (in either
    // order: the cancellation is answered by the main loop, the tokens on their own thread).
    let mut two = [c.read(), c.read()];
    two.sort_by_key(|m| m["id"].as_i64());
    let [cancelled, tokens] = two;
    assert_eq!(cancelled["id"], slow, "{cancelled}");
    assert_eq!(error_code(&cancelled), -32800);
    assert_eq!(tokens["id"], fast, "{tokens}");
    assert!(tokens["result"]["data"].is_array(), "{tokens}");
    // The next hovers wait for the same reading, and have the counts. While 64 of them run,
    // one more request is refused (busy).
    let waiting: Vec<i64> = (0..64).map(|_| c.send("textDocument/hover", at.clone())).collect();
    let busy = c.request("textDocument/semanticTokens/full", json!({"textDocument": {"uri": URI}}));
    assert_eq!(error_code(&busy), -32803);
    for id in waiting {
        let h = c.answer(id);
        assert!(h["result"]["contents"]["value"].as_str().unwrap().contains("50000 of 50000 objects"), "{h}");
    }
    // The cancelled hover was not answered a second time.
    assert!(!c.seen.iter().any(|m| m["id"] == slow), "{:?}", c.seen);
    c.finish();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// 20,000 statements on 20,000 lines: the outline has one symbol per statement, each ending
/// at its own `;`.
#[test]
fn document_symbols_of_20000_lines() {
    let mut c = Client::start(json!({}));
    let text: String = (0..20_000).map(|i| format!("remove(kind == \"Pod{i}\", status); # {i}\n")).collect();
    c.open(&text);
    let s = c.request("textDocument/documentSymbol", json!({"textDocument": {"uri": URI}}));
    let symbols = s["result"].as_array().unwrap();
    assert_eq!(symbols.len(), 20_000);
    let last = &symbols[19_999];
    assert_eq!(last["range"]["start"], json!({"line": 19_999, "character": 0}));
    let end = "remove(kind == \"Pod19999\", status);".len();
    assert_eq!(last["range"]["end"], json!({"line": 19_999, "character": end}));
    assert_eq!(symbols[7]["name"], "remove(kind == \"Pod7\", status)");
    c.finish();
}

/// One line of 330 KB (words and non-ASCII strings): a token per word, each at its column in
/// UTF-16 units.
#[test]
fn semantic_tokens_of_a_330_kb_line() {
    let mut c = Client::start(json!({}));
    let statement = "delete(metadata.name == \"é😀\" && kind == \"Pod\"); ";
    let count = 330_000 / statement.len();
    let text = statement.repeat(count);
    c.open(&text);
    let t = c.request("textDocument/semanticTokens/full", json!({"textDocument": {"uri": URI}}));
    let data: Vec<u64> = t["result"]["data"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    // delete, metadata, name, ==, "é😀", &&, kind, ==, "Pod": 9 tokens per statement.
    assert_eq!(data.len(), count * 9 * 5);
    assert!(data.chunks(5).all(|t| t[0] == 0), "one line");
    let columns: u64 = data.chunks(5).map(|t| t[1]).sum();
    let last = data.chunks(5).last().unwrap();
    let units = statement.encode_utf16().count() as u64;
    assert_eq!(columns, units * (count as u64 - 1) + (units - "\"Pod\"); ".len() as u64));
    assert_eq!(last[2], 5, "\"Pod\"");
    c.finish();
}
