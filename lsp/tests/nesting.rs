//! Deeply nested scripts, as an editor opens them: thousands of `(`, `[`, `{"a":`, `!(` and a
//! path of 60,000 segments. The compiler's stages give a diagnostic (or work through them)
//! instead of overflowing the stack, so the server publishes diagnostics and answers the
//! requests after them. (A file of its own: a stack overflow aborts the whole test process.)

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::{json, Value};

const URI: &str = "file:///work/deep.skel";

fn recv(conn: &Connection) -> Message {
    conn.receiver.recv_timeout(Duration::from_secs(120)).expect("the server answers")
}

fn request(conn: &Connection, id: i32, method: &str, params: Value) -> Value {
    conn.sender.send(Request::new(RequestId::from(id), method.into(), params).into()).unwrap();
    loop {
        if let Message::Response(r) = recv(conn) {
            if r.id == RequestId::from(id) {
                return serde_json::to_value(&r).unwrap();
            }
        }
    }
}

#[test]
fn deeply_nested_scripts_leave_the_server_up() {
    let (server, conn) = Connection::memory();
    let handle = std::thread::spawn(move || skel_lsp::serve(&server));
    request(&conn, 1, "initialize", json!({"capabilities": {}}));
    conn.sender.send(Notification::new("initialized".into(), json!({})).into()).unwrap();
    let n = 100_000;
    let scripts = [
        format!("delete({}kind == \"Pod\"{});", "(".repeat(n), ")".repeat(n)),
        format!("modify(kind == \"Pod\", metadata.labels.a = {}1{});", "[".repeat(n), "]".repeat(n)),
        format!("modify(kind == \"Pod\", metadata.labels.a = {}1{});", "{\"a\":".repeat(n), "}".repeat(n)),
        format!("delete({}kind == \"Pod\"{});", "!(".repeat(n), ")".repeat(n)),
        format!("remove(kind == \"Pod\", {}a);", "a.".repeat(60_000)),
        "delete(".repeat(n),
    ];
    let mut id = 2;
    for (version, text) in scripts.iter().enumerate() {
        let note = Notification::new(
            "textDocument/didOpen".into(),
            json!({"textDocument": {"uri": URI, "languageId": "skel", "version": version, "text": text}}),
        );
        conn.sender.send(note.into()).unwrap();
        loop {
            if let Message::Notification(n) = recv(&conn) {
                if n.method == "textDocument/publishDiagnostics" {
                    assert!(n.params["diagnostics"].is_array());
                    break;
                }
            }
        }
        let doc = json!({"textDocument": {"uri": URI}, "options": {"tabSize": 4, "insertSpaces": true}});
        for method in ["textDocument/documentSymbol", "textDocument/formatting", "textDocument/semanticTokens/full"] {
            let r = request(&conn, id, method, doc.clone());
            assert!(r.get("result").is_some(), "{method} on script {version}: {r}");
            id += 1;
        }
        let at = json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 20_000}});
        let r = request(&conn, id, "textDocument/hover", at);
        assert!(r.get("error").is_none(), "{r}");
        id += 1;
    }
    request(&conn, id, "shutdown", Value::Null);
    conn.sender.send(Notification::new("exit".into(), Value::Null).into()).unwrap();
    handle.join().unwrap().unwrap();
}
