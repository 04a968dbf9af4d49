//! Each handler of the language server, through the protocol: a client on an in-memory
//! connection sends what an editor sends and reads what the server answers.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::{json, Value};

struct Client {
    conn: Connection,
    server: Option<JoinHandle<()>>,
    next: i32,
    /// Notifications received while waiting for responses.
    notes: Vec<Notification>,
}

const URI: &str = "file:///work/script.skel";

fn trace() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/trace.json").display().to_string()
}

impl Client {
    fn start(init: Value) -> Client {
        let (server, conn) = Connection::memory();
        let handle = std::thread::spawn(move || skel_lsp::serve(&server).unwrap());
        let mut c = Client { conn, server: Some(handle), next: 1, notes: Vec::new() };
        let result = c.request("initialize", init);
        assert!(result["capabilities"]["hoverProvider"].as_bool().unwrap_or(false), "{result}");
        c.notify("initialized", json!({}));
        c
    }

    fn plain() -> Client {
        Client::start(json!({"capabilities": {}}))
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.conn.sender.send(Message::Notification(Notification::new(method.into(), params))).unwrap();
    }

    fn recv(&mut self) -> Message {
        self.conn.receiver.recv_timeout(Duration::from_secs(20)).expect("the server answers")
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = RequestId::from(self.next);
        self.next += 1;
        self.conn.sender.send(Message::Request(Request::new(id.clone(), method.into(), params))).unwrap();
        loop {
            match self.recv() {
                Message::Response(r) if r.id == id => {
                    return match r.response_result {
                        Ok(v) => v,
                        Err(e) => json!({"error": {"code": e.code, "message": e.message}}),
                    };
                }
                Message::Notification(n) => self.notes.push(n),
                _ => {}
            }
        }
    }

    fn open(&mut self, text: &str) -> Value {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": URI, "languageId": "skel", "version": 1, "text": text}}),
        );
        self.diagnostics()
    }

    fn change(&mut self, version: i32, text: &str) -> Value {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": URI, "version": version}, "contentChanges": [{"text": text}]}),
        );
        self.diagnostics()
    }

    /// The next diagnostics published.
    fn diagnostics(&mut self) -> Value {
        loop {
            if let Some(i) = self.notes.iter().position(|n| n.method == "textDocument/publishDiagnostics") {
                return self.notes.remove(i).params["diagnostics"].clone();
            }
            if let Message::Notification(n) = self.recv() {
                self.notes.push(n);
            }
        }
    }

    fn at(&mut self, method: &str, line: u32, character: u32, extra: Value) -> Value {
        let mut params = json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}});
        if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        self.request(method, params)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let _ = self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        if let Some(h) = self.server.take() {
            h.join().unwrap();
        }
    }
}

/// Where `needle` is in `text`, as (line, UTF-16 column), plus `skip` characters.
fn pos(text: &str, needle: &str, skip: u32) -> (u32, u32) {
    let at = text.find(needle).unwrap_or_else(|| panic!("{needle} in {text}"));
    let line = text[..at].matches('\n').count() as u32;
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, text[start..at].encode_utf16().count() as u32 + skip)
}

#[test]
fn diagnostics_on_open_and_on_change_with_utf16_columns() {
    let mut c = Client::plain();
    let good = "delete(kind == \"Pod\");\n";
    assert_eq!(c.open(good), json!([]));
    // `é` and `😀` are 1 and 2 UTF-16 units: the error's column counts them so.
    let bad = "delete(metadata.name == \"é😀\" && kind = \"Pod\");\n";
    let d = c.change(2, bad);
    assert_eq!(d.as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d[0]["code"], "skel::parse::syntax");
    assert_eq!(d[0]["severity"], 1);
    assert_eq!(d[0]["range"]["start"], json!({"line": 0, "character": 38}));
    assert!(d[0]["message"].as_str().unwrap().contains("help: use `==` to compare"), "{d}");
}

#[test]
fn one_bad_statement_does_not_hide_the_others() {
    let mut c = Client::plain();
    let text =
        "delete(kind = \"Pod\");\nremove(kind == \"Job\", $x.a);\nmodify(kind == \"Pod\", metadata.labels.n = 1);\n";
    let d = c.open(text);
    let codes: Vec<&str> = d.as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(
        codes,
        ["skel::parse::syntax", "skel::check::undefined_variable", "skel::check::label_not_string"],
        "{d}"
    );
    assert_eq!(d[2]["severity"], 2, "a warning");
    let lines: Vec<u64> = d.as_array().unwrap().iter().map(|d| d["range"]["start"]["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [0, 1, 2]);
}

#[test]
fn hover_on_commands_variables_and_paths() {
    let mut c = Client::plain();
    let text = "remove($c := spec.template.spec.containers[*] | exists($c.env), $c.env);\ndelete(@t > 5m);\n";
    c.open(text);
    let hover = |c: &mut Client, needle: &str, skip: u32| {
        let (l, ch) = pos(text, needle, skip);
        c.at("textDocument/hover", l, ch, json!({}))["contents"]["value"].as_str().unwrap_or("").to_string()
    };
    let h = hover(&mut c, "remove", 1);
    assert!(h.contains("remove([SELECTOR,] PATH)") && h.contains("Removes the field"), "{h}");
    let h = hover(&mut c, "$c.env)", 1);
    assert!(h.contains("$c := spec.template.spec.containers[*]") && h.contains("line 1"), "{h}");
    let h = hover(&mut c, "containers", 2);
    assert!(h.contains("spec.template.spec.containers") && h.contains("The containers of the pod"), "{h}");
    let h = hover(&mut c, "env)", 1);
    assert!(h.contains("spec.template.spec.containers[*].env") && h.contains("Environment variables"), "{h}");
    let h = hover(&mut c, "@t", 1);
    assert!(h.contains("seconds since the trace's first event"), "{h}");
    let (l, ch) = pos(text, "> 5m", 0);
    assert_eq!(c.at("textDocument/hover", l, ch + 3, json!({})), Value::Null, "nothing to say on a duration");
}

#[test]
fn hover_counts_a_path_in_the_configured_trace() {
    let mut c = Client::start(json!({"capabilities": {}, "initializationOptions": {"skel": {"trace": trace()}}}));
    let text = "remove(kind == \"CronJob\", spec.schedule);\n";
    c.open(text);
    let (l, ch) = pos(text, "schedule", 1);
    let h = c.at("textDocument/hover", l, ch, json!({}));
    let v = h["contents"]["value"].as_str().unwrap();
    assert!(v.contains("**In trace.json**: 5 of 40 objects have it; e.g. `\"*/5 * * * *\"`."), "{v}");
}

#[test]
fn a_trace_comment_configures_the_trace_for_its_script() {
    let mut c = Client::plain();
    let text = format!("# trace: {}\nremove(status);\n", trace());
    c.open(&text);
    let (l, ch) = pos(&text, "status", 1);
    let v = c.at("textDocument/hover", l, ch, json!({}))["contents"]["value"].as_str().unwrap().to_string();
    assert!(v.contains("In trace.json**: 40 of 40") || v.contains("of 40 objects have it"), "{v}");
}

fn labels(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap().to_string()).collect()
}

#[test]
fn completion_of_commands_variables_and_paths() {
    let mut c = Client::start(json!({"capabilities": {}, "initializationOptions": {"trace": trace()}}));
    let text = "delete(kind == \"Pod\");\nmo";
    c.open(text);
    let items = c.at("textDocument/completion", 1, 2, json!({}));
    assert_eq!(labels(&items), ["modify", "move"]);
    assert_eq!(items[0]["textEdit"]["newText"], "modify(");

    let text = "remove($c := spec.template.spec.containers[*] | exists($c.im";
    c.change(2, text);
    let items = c.at("textDocument/completion", 0, text.len() as u32, json!({}));
    let l = labels(&items);
    assert!(l.starts_with(&["$c.image".to_string(), "$c.imagePullPolicy".to_string()]), "{l:?}");
    // The edit replaces the whole path typed, from `$c`.
    assert_eq!(items[0]["textEdit"]["range"]["start"]["character"], 55);

    let text = "remove(spec.template.spec.";
    c.change(3, text);
    let items = c.at("textDocument/completion", 0, text.len() as u32, json!({}));
    let l = labels(&items);
    // The trace's keys first, most frequent first; then the known Kubernetes fields it lacks.
    assert_eq!(l.first().map(String::as_str), Some("spec.template.spec.containers"), "{l:?}");
    assert!(l.contains(&"spec.template.spec.tolerations".to_string()), "{l:?}");

    let text = "remove($v := spec.volumes[*] | exists($v.secret) && $";
    c.change(4, text);
    assert_eq!(labels(&c.at("textDocument/completion", 0, text.len() as u32, json!({}))), ["$v"]);

    let text = "delete(kind == \"Pod\" && ex";
    c.change(5, text);
    assert_eq!(labels(&c.at("textDocument/completion", 0, text.len() as u32, json!({}))), ["exists"]);
}

#[test]
fn definition_references_and_rename_of_variables() {
    let mut c = Client::plain();
    let text = "remove($c := spec.containers[*] | exists($c.env), $c.env);\nremove($c := spec.volumes[*] | exists($c.x), $c);\n";
    c.open(text);
    let (l, ch) = pos(text, "$c.env)", 1);
    let def = c.at("textDocument/definition", l, ch, json!({}));
    assert_eq!(def["range"]["start"], json!({"line": 0, "character": 7}));
    let refs = c.at("textDocument/references", l, ch, json!({"context": {"includeDeclaration": true}}));
    assert_eq!(refs.as_array().unwrap().len(), 3, "only this statement's `$c`: {refs}");
    let refs = c.at("textDocument/references", l, ch, json!({"context": {"includeDeclaration": false}}));
    assert_eq!(refs.as_array().unwrap().len(), 2);
    let prep = c.at("textDocument/prepareRename", l, ch, json!({}));
    assert_eq!(prep["start"], json!({"line": 0, "character": 41}));
    let edit = c.at("textDocument/rename", l, ch, json!({"newName": "container"}));
    let edits = edit["changes"][URI].as_array().unwrap();
    assert_eq!(edits.len(), 3);
    assert!(edits.iter().all(|e| e["newText"] == "$container" && e["range"]["start"]["line"] == 0));
    let bad = c.at("textDocument/rename", l, ch, json!({"newName": "9lives"}));
    assert!(bad["error"]["message"].as_str().unwrap().contains("not a variable name"), "{bad}");
    let (l, ch) = pos(text, "remove", 1);
    assert_eq!(c.at("textDocument/definition", l, ch, json!({})), Value::Null);
}

#[test]
fn document_symbols_name_each_statement() {
    let mut c = Client::plain();
    let text = "# migrate\nmodify(kind == \"CronJob\" && apiVersion == \"batch/v1beta1\",\n       apiVersion = \"batch/v1\");\nremove(status);\n";
    c.open(text);
    let s = c.request("textDocument/documentSymbol", json!({"textDocument": {"uri": URI}}));
    let names: Vec<&str> = s.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["modify(kind == \"CronJob\" && apiVersion == \"batch/v1beta1\", apiVersion = \"batch/v1\")", "remove(status)"]
    );
    assert_eq!(s[0]["range"]["start"], json!({"line": 1, "character": 0}));
    assert_eq!(s[0]["range"]["end"], json!({"line": 2, "character": 32}));
    assert_eq!(s[1]["selectionRange"]["end"], json!({"line": 3, "character": 6}));
}

#[test]
fn semantic_tokens_cover_every_kind() {
    let mut c = Client::plain();
    let text = "# c\nmodify($x := spec.c[*] | $x.n == \"a\", $x.v = 1);\n";
    c.open(text);
    let t = c.request("textDocument/semanticTokens/full", json!({"textDocument": {"uri": URI}}));
    let data: Vec<u64> = t["data"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    // Decode (line, start, length, type) from the relative encoding.
    let (mut line, mut start) = (0, 0);
    let mut decoded = Vec::new();
    for chunk in data.chunks(5) {
        if chunk[0] > 0 {
            start = 0;
        }
        line += chunk[0];
        start += chunk[1];
        decoded.push((line, start, chunk[2], chunk[3]));
    }
    let types = ["function", "keyword", "variable", "property", "string", "number", "operator", "comment"];
    let text_of = |(l, s, n, _): (u64, u64, u64, u64)| {
        let line = text.lines().nth(l as usize).unwrap();
        line.chars().skip(s as usize).take(n as usize).collect::<String>()
    };
    let named: Vec<(String, &str)> = decoded.iter().map(|d| (text_of(*d), types[d.3 as usize])).collect();
    assert_eq!(named[0], ("# c".to_string(), "comment"));
    assert_eq!(named[1], ("modify".to_string(), "function"));
    assert_eq!(named[2], ("$x".to_string(), "variable"));
    assert!(named.contains(&("\"a\"".to_string(), "string")));
    assert!(named.contains(&("1".to_string(), "number")));
    assert!(named.contains(&("==".to_string(), "operator")));
    assert!(named.contains(&("spec".to_string(), "property")));
}

#[test]
fn utf8_positions_when_the_client_offers_them() {
    let mut c = Client::start(json!({"capabilities": {"general": {"positionEncodings": ["utf-8", "utf-16"]}}}));
    let d = c.open("delete(metadata.name == \"é\" && kind = \"Pod\");\n");
    assert_eq!(d[0]["range"]["start"], json!({"line": 0, "character": 37}));
}

/// Any text, any position: every request gets an answer, and the server stays up.
#[test]
fn never_panics_on_any_text_or_position() {
    use proptest::prelude::*;
    const PIECES: &[&str] = &[
        "modify(",
        "delete(",
        "remove(",
        "insert(",
        "move(",
        "copy(",
        "kind",
        "==",
        "=",
        "\"Pod\"",
        "\"é😀\"",
        "$x",
        ":=",
        "|",
        "spec",
        ".",
        "[*]",
        "[0]",
        "[\"k\"]",
        "*",
        "&&",
        "||",
        "!",
        "(",
        ")",
        ",",
        ";",
        "\n",
        " ",
        "#c\n",
        "@t",
        ">",
        "5m",
        "-1",
        "1.5",
        "{",
        "}",
        "[",
        "]",
        ":",
        "->",
        "exists(",
        "é",
        "\u{3000}",
        "\"",
    ];
    let c = std::cell::RefCell::new(Client::start(
        json!({"capabilities": {}, "initializationOptions": {"trace": trace()}}),
    ));
    let config = proptest::test_runner::Config { cases: 48, ..Default::default() };
    let version = std::cell::Cell::new(1);
    proptest!(config, |(pieces in proptest::collection::vec(0..PIECES.len(), 0..24), line in 0u32..4, character in 0u32..40)| {
        let text: String = pieces.iter().map(|&i| PIECES[i]).collect();
        let mut c = c.borrow_mut();
        version.set(version.get() + 1);
        let d = if version.get() == 2 { c.open(&text) } else { c.change(version.get(), &text) };
        prop_assert!(d.is_array());
        for method in ["textDocument/hover", "textDocument/completion", "textDocument/definition", "textDocument/prepareRename"] {
            let r = c.at(method, line, character, json!({}));
            prop_assert!(r.get("error").is_none_or(|e| e["code"] != -32603), "{method}: {r}");
        }
        let r = c.at("textDocument/references", line, character, json!({"context": {"includeDeclaration": true}}));
        prop_assert!(r.get("error").is_none(), "{r}");
        for method in ["textDocument/semanticTokens/full", "textDocument/documentSymbol", "textDocument/formatting"] {
            let r = c.request(method, json!({"textDocument": {"uri": URI}, "options": {"tabSize": 4, "insertSpaces": true}}));
            prop_assert!(r.get("error").is_none(), "{method}: {r}");
        }
    });
}

#[test]
fn formatting_returns_the_canonical_text_once() {
    let mut c = Client::plain();
    let messy = "# keep me\ndelete( kind==\"Pod\" ) ;\nremove(status);   # and me\n";
    c.open(messy);
    let opts = json!({"textDocument": {"uri": URI}, "options": {"tabSize": 4, "insertSpaces": true}});
    let edits = c.request("textDocument/formatting", opts.clone());
    let edits = edits.as_array().unwrap();
    assert_eq!(edits.len(), 1);
    let formatted = edits[0]["newText"].as_str().unwrap().to_string();
    assert_eq!(formatted, "# keep me\ndelete(kind == \"Pod\");\nremove(status); # and me\n");
    assert_eq!(edits[0]["range"]["end"], json!({"line": 3, "character": 0}));
    c.change(2, &formatted);
    assert_eq!(c.request("textDocument/formatting", opts.clone()), json!([]), "already canonical");
    c.change(3, "delete(kind == \"Pod\"");
    assert_eq!(c.request("textDocument/formatting", opts), Value::Null, "a script that does not parse is left alone");
}

#[test]
fn symbols_reach_the_semicolon_and_diagnostics_carry_the_version() {
    let mut c = Client::plain();
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "skel", "version": 7, "text": "remove(  status )   ;\n"}}),
    );
    let n = loop {
        if let Message::Notification(n) = c.recv() {
            if n.method == "textDocument/publishDiagnostics" {
                break n;
            }
        }
    };
    assert_eq!(n.params["version"], 7);
    let s = c.request("textDocument/documentSymbol", json!({"textDocument": {"uri": URI}}));
    assert_eq!(s[0]["range"]["end"], json!({"line": 0, "character": 21}));
}
