//! Grammar-shaped scripts: an `arbitrary` generator of SKEL statements (every command, every
//! kind of test, paths with keys, indices, wildcards, quoted and digit keys, variables,
//! literals), so that most inputs parse and reach the checker, the optimizer and the VM. Each
//! script goes through `checks::compile_text` (compiled, streamed over the sample trace with and
//! without the optimizer, from and to JSON and msgpack, on one thread and on four) and
//! `checks::format`.
//!
//! `SKEL_FUZZ_PRINT=1 cargo +nightly fuzz run compile_structured ARTIFACT` prints the script an
//! input makes (to save it under tests/data/fuzz/compile_structured/).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::fmt::Write;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

/// How deep selectors and literals nest (deeper is the parser's own business: compile_text).
const MAX_DEPTH: u32 = 4;

#[derive(Arbitrary, Debug)]
struct Script {
    stmts: Vec<Stmt>,
}

#[derive(Arbitrary, Debug)]
enum Stmt {
    Delete(Selector),
    Remove(Option<Selector>, Path),
    Modify(Option<Selector>, Path, Operand),
    Move(Option<Selector>, Path, Path),
    Copy(Option<Selector>, Path, Path),
    Insert(Cmp, Time, Manifest),
    InsertFile(Time, Str),
}

#[derive(Arbitrary, Debug)]
enum Selector {
    All,
    Expr(Expr),
}

#[derive(Arbitrary, Debug)]
enum Expr {
    Test(Test),
    Not(Box<Expr>),
    Group(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Arbitrary, Debug)]
enum Test {
    Time(Cmp, Time),
    Field(FieldTest),
    /// `$x := PATH | TEST`
    Bind(Var, Path, FieldTest),
}

#[derive(Arbitrary, Debug)]
enum FieldTest {
    Exists(Path),
    NotExists(Path),
    Compare(Path, Cmp, Operand),
    Match(Path, bool, Regex),
    In(Path, Vec<Literal>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Arbitrary, Debug)]
enum Time {
    Secs(u16),
    Duration(u16, Unit),
    /// A large or negative number of seconds.
    Raw(i64),
    Path(Path),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Unit {
    S,
    M,
    H,
    D,
    Ms,
    Other,
}

#[derive(Arbitrary, Debug)]
enum Regex {
    Known(u8),
    Any(Str),
}

const REGEXES: &[&str] =
    &["^P", "o", ".*", "^$", "[", "(a|b)*", "\\d+", "nginx", "^tmp", "(?i)POD", "a{2,}", "\\", "^(?:x)?$", "[^a-z]"];

#[derive(Arbitrary, Debug)]
struct Path {
    root: Root,
    segs: Vec<Seg>,
}

#[derive(Arbitrary, Debug)]
enum Root {
    Key(Key),
    Quoted(Str),
    Var(Var),
}

#[derive(Arbitrary, Debug)]
enum Seg {
    Key(Key),
    Quoted(Str),
    /// `.N` (a digit key)
    Digit(u8),
    /// `[N]`
    Index(u8),
    /// `[*]`
    Star,
    /// `.*`
    AnyKey,
    /// `["k"]`
    Bracket(Str),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Var(u8);

const VARS: &[&str] = &["$x", "$y", "$c", "$p"];

#[derive(Arbitrary, Debug)]
enum Key {
    Known(u8),
    Name(Vec<NameChar>),
}

const KEYS: &[&str] = &[
    "kind",
    "apiVersion",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "app",
    "tier",
    "spec",
    "template",
    "containers",
    "image",
    "ports",
    "containerPort",
    "replicas",
    "status",
    "phase",
    "schedule",
    "jobTemplate",
    "data",
    "key",
    "env",
    "value",
    "resources",
    "limits",
    "nodeSelector",
    "tolerations",
    "ownerReferences",
    "hostNetwork",
    "selector",
    "matchLabels",
    "0",
    "1",
    "args",
    "suspend",
    "ready",
    "conditions",
    "type",
];

#[derive(Arbitrary, Debug, Clone, Copy)]
struct NameChar(u8);

impl NameChar {
    fn char(self) -> char {
        const CHARS: &[u8] = b"abcxyz019_-ABZ";
        CHARS[usize::from(self.0) % CHARS.len()] as char
    }
}

#[derive(Arbitrary, Debug)]
enum Str {
    Known(u8),
    Any(String),
}

const STRINGS: &[&str] = &[
    "Pod",
    "Deployment",
    "CronJob",
    "ConfigMap",
    "Namespace",
    "v1",
    "apps/v1",
    "batch/v1",
    "batch/v1beta1",
    "default",
    "web",
    "nginx",
    "nginx:1.25",
    "tmp-cfg",
    "a.b",
    "",
    "0",
    "Running",
    "True",
    "node-role.kubernetes.io/master",
    "x.yaml",
];

#[derive(Arbitrary, Debug)]
enum Literal {
    Str(Str),
    Int(i64),
    SmallInt(u8),
    Float(f32),
    Bool(bool),
    Null,
    Duration(u16, Unit),
}

#[derive(Arbitrary, Debug)]
enum Operand {
    Lit(Literal),
    Array(Vec<Operand>),
    Object(Vec<(Key, Operand)>),
    Path(Path),
}

#[derive(Arbitrary, Debug)]
struct Manifest {
    api_version: Str,
    kind: Str,
    name: Str,
    extra: Vec<(Key, Operand)>,
}

/// Writes a script.
struct Out(String);

impl Out {
    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Delete(sel) => {
                self.0.push_str("delete(");
                self.selector(sel);
            }
            Stmt::Remove(sel, p) => {
                self.0.push_str("remove(");
                self.maybe_selector(sel);
                self.path(p);
            }
            Stmt::Modify(sel, p, v) => {
                self.0.push_str("modify(");
                self.maybe_selector(sel);
                self.path(p);
                self.0.push_str(" = ");
                self.operand(v, 0);
            }
            Stmt::Move(sel, from, to) | Stmt::Copy(sel, from, to) => {
                self.0.push_str(if matches!(s, Stmt::Move(..)) { "move(" } else { "copy(" });
                self.maybe_selector(sel);
                self.path(from);
                self.0.push_str(" -> ");
                self.path(to);
            }
            Stmt::Insert(cmp, t, m) => {
                self.0.push_str("insert(@t ");
                // Mostly `==` (the only one `insert` takes), sometimes another.
                self.0.push_str(if matches!(cmp, Cmp::Ne) { "!=" } else { "==" });
                self.0.push(' ');
                self.time(t);
                self.0.push_str(", {\"apiVersion\": ");
                self.string(&m.api_version);
                self.0.push_str(", \"kind\": ");
                self.string(&m.kind);
                self.0.push_str(", \"metadata\": {\"name\": ");
                self.string(&m.name);
                self.0.push('}');
                for (k, v) in &m.extra {
                    self.0.push_str(", ");
                    self.quoted_key(k);
                    self.0.push_str(": ");
                    self.operand(v, 1);
                }
                self.0.push('}');
            }
            Stmt::InsertFile(t, f) => {
                self.0.push_str("insert(@t == ");
                self.time(t);
                self.0.push_str(", file(");
                self.string(f);
                self.0.push(')');
            }
        }
        self.0.push_str(");\n");
    }

    fn maybe_selector(&mut self, sel: &Option<Selector>) {
        if let Some(sel) = sel {
            self.selector(sel);
            self.0.push_str(", ");
        }
    }

    fn selector(&mut self, sel: &Selector) {
        match sel {
            Selector::All => self.0.push('*'),
            Selector::Expr(e) => self.expr(e, 0),
        }
    }

    fn expr(&mut self, e: &Expr, depth: u32) {
        let deep = depth >= MAX_DEPTH;
        match e {
            Expr::Test(t) => self.test(t),
            Expr::Not(inner) if !deep => {
                self.0.push_str("!(");
                self.expr(inner, depth + 1);
                self.0.push(')');
            }
            Expr::Group(inner) if !deep => {
                self.0.push('(');
                self.expr(inner, depth + 1);
                self.0.push(')');
            }
            Expr::And(a, b) | Expr::Or(a, b) if !deep => {
                self.expr(a, depth + 1);
                self.0.push_str(if matches!(e, Expr::And(..)) { " && " } else { " || " });
                self.expr(b, depth + 1);
            }
            _ => self.0.push_str("exists(kind)"),
        }
    }

    fn test(&mut self, t: &Test) {
        match t {
            Test::Time(cmp, time) => {
                self.0.push_str("@t ");
                self.cmp(*cmp);
                self.time(time);
            }
            Test::Field(f) => self.field_test(f),
            Test::Bind(v, p, f) => {
                self.var(*v);
                self.0.push_str(" := ");
                self.path(p);
                self.0.push_str(" | ");
                self.field_test(f);
            }
        }
    }

    fn field_test(&mut self, f: &FieldTest) {
        match f {
            FieldTest::Exists(p) => {
                self.0.push_str("exists(");
                self.path(p);
                self.0.push(')');
            }
            FieldTest::NotExists(p) => {
                self.0.push_str("!exists(");
                self.path(p);
                self.0.push(')');
            }
            FieldTest::Compare(p, cmp, v) => {
                self.path(p);
                self.0.push(' ');
                self.cmp(*cmp);
                self.operand(v, 0);
            }
            FieldTest::Match(p, negated, re) => {
                self.path(p);
                self.0.push_str(if *negated { " !~ " } else { " =~ " });
                match re {
                    Regex::Known(i) => self.raw_string(REGEXES[usize::from(*i) % REGEXES.len()]),
                    Regex::Any(s) => self.string(s),
                }
            }
            FieldTest::In(p, items) => {
                self.path(p);
                self.0.push_str(" in [");
                for (i, l) in items.iter().enumerate() {
                    if i > 0 {
                        self.0.push_str(", ");
                    }
                    self.literal(l);
                }
                self.0.push(']');
            }
        }
    }

    fn cmp(&mut self, c: Cmp) {
        self.0.push_str(match c {
            Cmp::Eq => "== ",
            Cmp::Ne => "!= ",
            Cmp::Lt => "< ",
            Cmp::Le => "<= ",
            Cmp::Gt => "> ",
            Cmp::Ge => ">= ",
        });
    }

    fn time(&mut self, t: &Time) {
        match t {
            Time::Secs(n) => {
                let _ = write!(self.0, "{n}");
            }
            Time::Duration(n, u) => self.duration(*n, *u),
            Time::Raw(n) => {
                let _ = write!(self.0, "{n}");
            }
            Time::Path(p) => self.path(p),
        }
    }

    fn duration(&mut self, n: u16, u: Unit) {
        let unit = match u {
            Unit::S => "s",
            Unit::M => "m",
            Unit::H => "h",
            Unit::D => "d",
            Unit::Ms => "ms",
            Unit::Other => "x",
        };
        let _ = write!(self.0, "{n}{unit}");
    }

    fn var(&mut self, v: Var) {
        self.0.push_str(VARS[usize::from(v.0) % VARS.len()]);
    }

    fn path(&mut self, p: &Path) {
        match &p.root {
            Root::Key(k) => self.key(k),
            Root::Quoted(s) => self.string(s),
            Root::Var(v) => self.var(*v),
        }
        for s in p.segs.iter().take(12) {
            match s {
                Seg::Key(k) => {
                    self.0.push('.');
                    self.key(k);
                }
                Seg::Quoted(q) => {
                    self.0.push('.');
                    self.string(q);
                }
                Seg::Digit(n) => {
                    let _ = write!(self.0, ".{}", n % 4);
                }
                Seg::Index(n) => {
                    let _ = write!(self.0, "[{}]", n % 4);
                }
                Seg::Star => self.0.push_str("[*]"),
                Seg::AnyKey => self.0.push_str(".*"),
                Seg::Bracket(s) => {
                    self.0.push('[');
                    self.string(s);
                    self.0.push(']');
                }
            }
        }
    }

    fn key(&mut self, k: &Key) {
        match k {
            Key::Known(i) => self.0.push_str(KEYS[usize::from(*i) % KEYS.len()]),
            Key::Name(chars) if !chars.is_empty() => self.0.extend(chars.iter().take(8).map(|c| c.char())),
            Key::Name(_) => self.0.push_str("name"),
        }
    }

    fn quoted_key(&mut self, k: &Key) {
        self.0.push('"');
        self.key(k);
        self.0.push('"');
    }

    fn string(&mut self, s: &Str) {
        match s {
            Str::Known(i) => self.raw_string(STRINGS[usize::from(*i) % STRINGS.len()]),
            Str::Any(s) => {
                // Escaped as SKEL writes strings.
                self.0.push('"');
                for c in s.chars().take(16) {
                    match c {
                        '"' => self.0.push_str("\\\""),
                        '\\' => self.0.push_str("\\\\"),
                        '\n' => self.0.push_str("\\n"),
                        c if c.is_control() => {
                            let _ = write!(self.0, "\\u{{{:x}}}", c as u32);
                        }
                        c => self.0.push(c),
                    }
                }
                self.0.push('"');
            }
        }
    }

    /// A string of our own (no escaping needed but for `\`, `"`).
    fn raw_string(&mut self, s: &str) {
        self.0.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                self.0.push('\\');
            }
            self.0.push(c);
        }
        self.0.push('"');
    }

    fn literal(&mut self, l: &Literal) {
        match l {
            Literal::Str(s) => self.string(s),
            Literal::Int(n) => {
                let _ = write!(self.0, "{n}");
            }
            Literal::SmallInt(n) => {
                let _ = write!(self.0, "{n}");
            }
            Literal::Float(f) if f.is_finite() => {
                let _ = write!(self.0, "{:.3}", f);
            }
            Literal::Float(_) => self.0.push_str("0.5"),
            Literal::Bool(b) => self.0.push_str(if *b { "true" } else { "false" }),
            Literal::Null => self.0.push_str("null"),
            Literal::Duration(n, u) => self.duration(*n, *u),
        }
    }

    fn operand(&mut self, o: &Operand, depth: u32) {
        let deep = depth >= MAX_DEPTH;
        match o {
            Operand::Lit(l) => self.literal(l),
            Operand::Array(items) if !deep => {
                self.0.push('[');
                for (i, item) in items.iter().take(6).enumerate() {
                    if i > 0 {
                        self.0.push_str(", ");
                    }
                    self.operand(item, depth + 1);
                }
                self.0.push(']');
            }
            Operand::Object(members) if !deep => {
                self.0.push('{');
                for (i, (k, v)) in members.iter().take(6).enumerate() {
                    if i > 0 {
                        self.0.push_str(", ");
                    }
                    self.quoted_key(k);
                    self.0.push_str(": ");
                    self.operand(v, depth + 1);
                }
                self.0.push('}');
            }
            Operand::Path(p) => self.path(p),
            _ => self.0.push_str("null"),
        }
    }
}

fn render(script: &Script) -> String {
    let mut out = Out(String::new());
    for s in script.stmts.iter().take(8) {
        out.stmt(s);
    }
    out.0
}

fuzz_target!(|script: Script| {
    let text = render(&script);
    if std::env::var_os("SKEL_FUZZ_PRINT").is_some() {
        eprintln!("---- script:\n{text}----");
    }
    if let Err(e) = checks::compile_text(&text).and_then(|()| checks::format(&text)) {
        panic!("{e}\n---- script:\n{text}----");
    }
});
