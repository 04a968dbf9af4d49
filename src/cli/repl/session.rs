//! A REPL session: the trace in memory, the statements applied to it (undo and redo), and
//! every command's answer as text. No terminal here: `mod.rs` reads the input, this answers it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use miette::Diagnostic;
use serde_json::Value;
use skel::stream::{self, Look, Recording, StreamError, StreamOptions};
use skel::transform::{MatchedObject, Summary};
use skel::Program;
use skel_trace::fsio::TraceInput;
use skel_trace::{Format, TraceWriter};

use super::busy::{busy, Counted, Meter};
use super::diff;
use super::error::ReplError;
use super::store::Store;
use super::style::Style;
use crate::cli::apply::TraceInputError;
use crate::cli::files::{self, Output};
use crate::cli::{report, Failed};
use skel::explore::{self as query, Address, KeyIndex};

/// Meta-commands: name, arguments, what it does.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    (":match", "SELECTOR", "list the objects a selector matches"),
    (":show", "EVENT[.OBJECT]", "print an event, or one object, as YAML"),
    (":get", "PATH [where SELECTOR]", "print the values a SKEL path reaches"),
    (":jsonpath", "EXPR [where SELECTOR]", "print the values an RFC 9535 JSONPath reaches"),
    (":diff", "[N]", "the diffs of the first N objects the last statement changed (all without N)"),
    (":stats", "", "events, objects by kind and apiVersion, time span"),
    (":load", "TRACE", "load a trace (JSON, or msgpack `.sktrace`)"),
    (":write", "TRACE", "write the current trace, atomically (format from the extension)"),
    (":history", "", "the statements applied so far"),
    (":save", "SCRIPT", "write the statements applied so far as a SKEL script"),
    (":undo", "", "take back the last statement"),
    (":redo", "", "apply again what `:undo` took back"),
    (":help", "", "this list"),
    (":quit", "", "leave (Ctrl-D does too)"),
];

/// How many changed objects a statement's answer shows as diffs (`:diff` shows more).
const DIFFS_SHOWN: usize = 3;
/// How many bytes of events completion's index of field paths is made from (a terminal
/// session; the trace's first ones).
const KEYS_FROM: usize = 64 << 20;
/// How many lines `:match`, `:get` and `:jsonpath` list before saying how many more there are.
const LIST_LIMIT: usize = 100;

/// What the loop does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

struct Loaded {
    path: PathBuf,
    store: Store,
}

/// A statement applied: its source and the trace on the other side of it.
struct Step {
    source: String,
    store: Store,
    /// The objects the statement matched (what `:diff` shows while it is the last one);
    /// dropped (`None`) when the next statement comes, and made again by running the
    /// statement once more if `:undo` makes it the last one again.
    matched: Option<Vec<MatchedObject>>,
    /// When `on_loaded`: each object of `matched` as it was before the statement (under the
    /// script without it, not as loaded), in order. Otherwise empty: `store` holds them.
    befores: Vec<Value>,
    /// `matched` numbers objects as in the loaded trace, not the one the statement ran on.
    on_loaded: bool,
    /// The statement inserts objects (later statements are checked against a replay).
    inserts: bool,
}

/// A whole script's run over the loaded trace.
struct Replay {
    store: Store,
    matched: Vec<MatchedObject>,
    summary: Summary,
}

/// What the last statement of a script changed: the loaded trace's objects under the script
/// without it (`before`) against under the whole script (`after`). Only changed objects are
/// known to be matched.
fn changes_between(before: &Replay, after: &Replay, loaded: &Store) -> (Vec<MatchedObject>, Vec<Value>, Summary) {
    type Key<'a> = (usize, &'a str, usize);
    let earlier: HashMap<Key<'_>, &MatchedObject> =
        before.matched.iter().map(|m| ((m.event, m.list, m.index), m)).collect();
    let objects = std::cell::RefCell::new(Objects::new(loaded));
    let original = |m: &MatchedObject| {
        let at = loaded.address(m.event, m.list, m.index);
        objects.borrow_mut().get(at).map(|(_, v, _)| v.clone())
    };
    // An object's value after a run: `None` when deleted.
    let result = |m: Option<&MatchedObject>, fallback: &MatchedObject| match m {
        Some(m) if m.deleted => None,
        Some(m) if m.modified => m.after.as_deref().and_then(decoded),
        _ => original(fallback),
    };
    let (mut changed, mut befores) = (Vec::new(), Vec::new());
    for m in &after.matched {
        let was = result(earlier.get(&(m.event, m.list, m.index)).copied(), m);
        let now = result(Some(m), m);
        if let Some(was) = was.filter(|was| Some(was) != now.as_ref()) {
            changed.push(MatchedObject { modified: now.is_some(), deleted: now.is_none(), ..m.clone() });
            befores.push(was);
        }
    }
    let (a, b) = (&after.summary, &before.summary);
    let summary = Summary {
        objects_matched: changed.len() as u64,
        objects_modified: changed.iter().filter(|m| m.modified).count() as u64,
        objects_deleted: changed.iter().filter(|m| m.deleted).count() as u64,
        fields_set: a.fields_set.saturating_sub(b.fields_set),
        fields_removed: a.fields_removed.saturating_sub(b.fields_removed),
        objects_inserted: a.objects_inserted.saturating_sub(b.objects_inserted),
        events_pruned: a.events_pruned.saturating_sub(b.events_pruned),
        ..Summary::default()
    };
    (changed, befores, summary)
}

/// An object as `MatchedObject::after` holds it (msgpack), decoded.
fn decoded(bytes: &[u8]) -> Option<Value> {
    skel_trace::decode_manifest(bytes, Format::Msgpack).ok()
}

pub struct Session {
    loaded: Option<Loaded>,
    undo: Vec<Step>,
    redo: Vec<Step>,
    /// Keys by path in the current trace (for completion).
    pub keys: Rc<KeyIndex>,
    /// Whether `keys` is kept up to date (for a line editor's completion).
    pub index_keys: bool,
    /// Whether long commands show a spinner (a terminal session).
    pub spinners: bool,
    pub style: Style,
    /// Something failed (the exit code of a piped session).
    pub failed: bool,
    /// Stdin is not a terminal: the input is read as lines, and `:help` says so.
    pub piped: bool,
    /// The line of the whole input where the input being run starts (1-based): piped, where
    /// its diagnostics point (`input:LINE:COLUMN`); on a terminal each input is its own, line 1.
    pub input_line: usize,
    out: String,
}

impl Session {
    pub fn new(style: Style) -> Session {
        Session {
            loaded: None,
            undo: Vec::new(),
            redo: Vec::new(),
            keys: Rc::default(),
            index_keys: true,
            spinners: false,
            style,
            failed: false,
            piped: false,
            input_line: 1,
            out: String::new(),
        }
    }

    /// The answer so far, taken.
    pub fn take_output(&mut self) -> String {
        std::mem::take(&mut self.out)
    }

    fn say(&mut self, text: impl AsRef<str>) {
        self.out.push_str(text.as_ref());
        if !text.as_ref().ends_with('\n') {
            self.out.push('\n');
        }
    }

    /// Reports a diagnostic about what was typed.
    pub(super) fn error<D: Diagnostic + Send + Sync + 'static>(&mut self, d: D, input: &str) {
        self.failed |= d.severity().is_none_or(|s| s == miette::Severity::Error);
        // Spans may point just past the end (a missing `)`); the source must reach them.
        let src = format!("{}  ", input.trim_end());
        let text = report::render_with_source_at(d, "input", &src, self.input_line, self.style.color);
        self.say(text);
    }

    /// Reports a diagnostic that has no source (files, traces).
    pub(super) fn fail<D: Diagnostic + Send + Sync + 'static>(&mut self, d: D) {
        self.failed = true;
        let text = report::render(&d, self.style.color);
        self.say(text);
    }

    /// Reports a failure of the files' code (`Output`): this is its edge.
    fn fail_with(&mut self, failed: Failed) {
        self.failed = true;
        let color = self.style.color;
        for text in failed.report.iter().flat_map(|r| r.render(color)) {
            self.say(text.trim_end());
        }
    }

    /// Where the trace's time starts: its first event as loaded (what `@t` counts from, in
    /// statements and queries alike, however many events statements dropped since).
    fn origin(&self) -> i64 {
        let loaded = self.undo.first().map(|s| &s.store).or(self.loaded.as_ref().map(|l| &l.store));
        loaded.and_then(Store::first_ts).unwrap_or(0)
    }

    /// Runs one input: a meta-command line, or one or more complete SKEL statements.
    pub fn run(&mut self, input: &str) -> Flow {
        let trimmed = input.trim_start();
        if trimmed.starts_with(':') {
            let at = input.len() - trimmed.len();
            return self.meta(input, at);
        }
        if !is_blank(input) {
            self.statement(input);
        }
        Flow::Continue
    }

    // ------------------------------------------------------------------ statements

    fn statement(&mut self, src: &str) {
        let compiled = match skel::compile(src) {
            Ok(c) => c,
            Err(r) => return r.diagnostics.into_iter().for_each(|d| self.error(d, src)),
        };
        for d in compiled.warnings.iter().cloned() {
            self.error(d, src);
        }
        let Some(loaded) = &self.loaded else {
            self.fail(ReplError::NoTrace);
            return;
        };
        // The trace as loaded, and where its time starts: every statement counts `@t` from it.
        let original = self.undo.first().map_or(&loaded.store, |s| &s.store).clone();
        let start = original.first_ts().unwrap_or(0);
        let ran = busy(self.spinners, "running the statement", loaded.store.meter(), || {
            Session::replay(&loaded.store, &compiled.program, start, false)
        });
        let Replay { store, mut matched, mut summary } = match ran {
            Ok(Some(ran)) => ran,
            Ok(None) => return self.say("interrupted; the trace is unchanged"),
            Err(e) => return self.stream_failed(e, src),
        };
        let (mut on_loaded, mut befores) = (false, Vec::new());
        // What `:save` writes is one script, run in one pass by `skel apply`; the trace must be
        // what that gives. It differs from this statement's own pass (with times counted from
        // the loaded start) only when an earlier `insert` added objects: a script's statements
        // never see them. Then the whole script is replayed over the loaded trace.
        let store = match self.undo.iter().any(|s| s.inserts) {
            false => store,
            true => {
                let history = self.undo.iter().map(|s| s.source.as_str()).collect::<Vec<_>>().join("\n");
                let whole = format!("{history}\n{}", src.trim());
                let Some(truth) = self.replay_script(&whole, &original, start) else { return };
                let same = match truth.store.same_events(&store) {
                    Ok(same) => same,
                    Err(e) => return self.stream_failed(e.into(), src),
                };
                if same {
                    store
                } else {
                    let Some(before) = self.replay_script(&history, &original, start) else { return };
                    self.say(self.style.yellow(
                        "note: as one script (what `:save` writes), this statement does not see the objects an \
                         earlier `insert` added; the trace holds what the whole script gives, and the answer \
                         says what the statement changed there (objects numbered as loaded)",
                    ));
                    (matched, befores, summary) = changes_between(&before, &truth, &original);
                    on_loaded = true;
                    truth.store
                }
            }
        };
        let Some(loaded) = &mut self.loaded else { return };
        let before = std::mem::replace(&mut loaded.store, store);
        let inserts = !compiled.program.inserts.is_empty();
        let source = src.trim().to_string();
        // Only the last statement's changes are shown; the one before can run again for them.
        if let Some(previous) = self.undo.last_mut().filter(|s| !s.on_loaded) {
            previous.matched = None;
        }
        self.undo.push(Step { source, store: before, matched: Some(matched), befores, on_loaded, inserts });
        self.redo.clear();
        self.reindex();
        self.report_changes(&summary, src);
    }

    /// Runs a whole script over the loaded trace, recording what it matched; `None` after
    /// reporting why not.
    fn replay_script(&mut self, script: &str, original: &Store, start: i64) -> Option<Replay> {
        let compiled = match skel::compile(script) {
            Ok(c) => c,
            Err(r) => {
                // Each statement compiled alone; together they cannot fail. Say so if they do.
                r.diagnostics.into_iter().for_each(|d| self.error(d, script));
                return None;
            }
        };
        let ran = busy(self.spinners, "running the script", original.meter(), || {
            Session::replay(original, &compiled.program, start, true)
        });
        match ran {
            Ok(Some(ran)) => Some(ran),
            Ok(None) => {
                self.say("interrupted; the trace is unchanged");
                None
            }
            Err(e) => {
                self.stream_failed(e, script);
                None
            }
        }
    }

    /// Runs a program over a trace, with times counted from `start`, through the pipeline
    /// `skel apply` runs (`skel::stream`, in the trace's own format), recording what it
    /// matched: the next version of the trace, sharing every event the program left as it was;
    /// `None` when Ctrl-C stopped it.
    ///
    /// A changed object as it is now is kept (`MatchedObject::after`) when `after`, or when the
    /// program inserts objects: otherwise `:diff` finds it in the trace made (`Placed`).
    fn replay(store: &Store, program: &Program, start: i64, after: bool) -> Result<Option<Replay>, StreamError> {
        let format = store.format;
        // The events it writes go to the next version (`Next::add`); the writer's copy nowhere.
        let mut writer = TraceWriter::new(Nowhere, format);
        let opts = StreamOptions { start_ts: Some(start), ..StreamOptions::new(format, format) };
        super::clear_interrupt();
        let after = after || !program.inserts.is_empty();
        let mut next = store.next();
        let mut add = |bytes: &[u8], written: &[stream::WrittenEvent]| next.add(bytes, written);
        let (units, recording) = (store.units(), store.recording(after, &mut add));
        let ran = stream::transform_recording(program, units, &mut writer, opts, recording, &super::interrupted)?;
        let Some((summary, matched)) = ran else { return Ok(None) };
        Ok(Some(Replay { store: next.finish(), matched, summary }))
    }

    /// What a program matches over a trace (as `replay` records it), keeping no trace: a
    /// selector's objects, or a statement's changes made again; `look` reads each matched
    /// object. `None` when Ctrl-C stopped it.
    fn matched(
        store: &Store,
        program: &Program,
        start: i64,
        after: bool,
        look: Option<&Look<'_>>,
    ) -> Result<Option<Vec<MatchedObject>>, StreamError> {
        let mut nowhere = TraceWriter::new(Nowhere, store.format);
        let opts = StreamOptions { start_ts: Some(start), ..StreamOptions::new(store.format, store.format) };
        super::clear_interrupt();
        let mut ignore = |_: &[u8], _: &[stream::WrittenEvent]| Ok(());
        let (units, recording) = (store.units(), Recording { look, ..store.recording(after, &mut ignore) });
        let ran = stream::transform_recording(program, units, &mut nowhere, opts, recording, &super::interrupted)?;
        Ok(ran.map(|(_, matched)| matched))
    }

    /// Says why a statement's run failed: a run error (pointing into `src`), or a trace the
    /// pipeline could not read back (a bug).
    fn stream_failed(&mut self, e: StreamError, src: &str) {
        match e {
            StreamError::Run(e) => self.error(*e, src),
            StreamError::Trace(inner) => {
                let file = self.loaded.as_ref().map_or_else(String::new, |l| files::display(&l.path));
                self.fail(TraceInputError { file, inner });
            }
        }
    }

    /// The objects the last statement applied matched.
    fn last(&self) -> &[MatchedObject] {
        self.undo.last().and_then(|s| s.matched.as_deref()).unwrap_or(&[])
    }

    /// The last statement's changes, made again if they were dropped (by running it once more
    /// over the trace it ran on).
    fn recall(&mut self) {
        let start = self.origin();
        let Some(step) = self.undo.last().filter(|s| s.matched.is_none()) else { return };
        let Ok(compiled) = skel::compile(&step.source) else { return };
        let after = !compiled.program.inserts.is_empty();
        let ran = Session::matched(&step.store, &compiled.program, start, after, None);
        match (ran, self.undo.last_mut()) {
            (Ok(Some(matched)), Some(step)) => step.matched = Some(matched),
            (Ok(None), _) => self.say("interrupted"),
            (Err(e), _) => self.stream_failed(e, ""),
            _ => {}
        }
    }

    fn report_changes(&mut self, s: &Summary, source: &str) {
        let st = self.style;
        if self.last().is_empty() && s.objects_inserted == 0 {
            self.say(st.dim("no object matched; the trace is unchanged"));
            self.kind_hint(source);
            return;
        }
        let events: std::collections::BTreeSet<usize> = self.last().iter().map(|m| m.event).collect();
        let mut parts = Vec::new();
        let on_loaded = self.undo.last().is_some_and(|s| s.on_loaded);
        if s.objects_matched > 0 {
            parts.push(format!(
                "{} {} in {}: {} modified, {} deleted ({} set, {} removed)",
                plural(s.objects_matched, "object"),
                if on_loaded { "changed" } else { "matched" },
                plural(events.len() as u64, "event"),
                s.objects_modified,
                s.objects_deleted,
                plural(s.fields_set, "field"),
                s.fields_removed
            ));
        }
        if s.objects_inserted > 0 {
            parts.push(format!("{} inserted", plural(s.objects_inserted, "object")));
        }
        if s.events_pruned > 0 {
            parts.push(format!("{} now empty and dropped", plural(s.events_pruned, "event")));
        }
        let line = parts.join("; ");
        self.say(st.bold(&line));
        // Per kind: matched, modified, deleted.
        let mut kinds: BTreeMap<String, [u64; 3]> = BTreeMap::new();
        for m in self.last() {
            let c = kinds.entry(m.kind.clone()).or_default();
            c[0] += 1;
            c[1] += m.modified as u64;
            c[2] += m.deleted as u64;
        }
        if !kinds.is_empty() {
            let rows: Vec<Vec<String>> = kinds
                .iter()
                .map(|(k, c)| vec![k.clone(), c[0].to_string(), c[1].to_string(), c[2].to_string()])
                .collect();
            let table = table(&["kind", "matched", "modified", "deleted"], &rows, &[false, true, true, true]);
            self.say(table);
        }
        let changed = self.last().iter().filter(|m| m.modified || m.deleted).count();
        let text = self.diffs(DIFFS_SHOWN);
        self.out.push_str(&text);
        if changed > DIFFS_SHOWN {
            let more = changed - DIFFS_SHOWN;
            let s = if more == 1 { "" } else { "s" };
            self.say(st.dim(&format!("... and {more} more changed object{s}; `:diff {changed}` shows them all")));
        }
    }

    /// After nothing matched: a `kind == "X"` test whose kind is not in the trace, and the
    /// kind it likely meant.
    fn kind_hint(&mut self, source: &str) {
        // Every object's kind, each decoded only as far as its kind.
        let Ok(every) = skel::compile("delete(*);") else { return };
        let Some(all) = self.selected(&every.program, "", None) else { return };
        let mut kinds: Vec<&str> = all.iter().map(|m| m.kind.as_str()).filter(|k| *k != "object").collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut rest = source;
        while let Some(i) = rest.find("kind") {
            rest = &rest[i + "kind".len()..];
            let Some(lit) = rest.trim_start().strip_prefix("==").map(str::trim_start) else { continue };
            let Some(lit) = lit.strip_prefix('"') else { continue };
            let Some(end) = lit.find('"') else { continue };
            let kind = &lit[..end];
            if kinds.contains(&kind) {
                continue;
            }
            let best = kinds.iter().map(|k| (strsim::levenshtein(k, kind), *k)).min().filter(|(d, _)| *d <= 3);
            let text = match best {
                Some((_, k)) => format!("no object in the trace has kind \"{kind}\"; did you mean \"{k}\"?"),
                None => format!("no object in the trace has kind \"{kind}\" (`:stats` lists the kinds)"),
            };
            self.say(self.style.yellow(&text));
            return;
        }
    }

    /// The diffs of the first `n` objects the last statement changed.
    fn diffs(&self, n: usize) -> String {
        let st = self.style;
        let mut out = String::new();
        // Addresses (`EVENT.OBJECT`) are the objects' in the trace the statement ran on (or in
        // the loaded trace, when the answer comes from the whole script's replay).
        let step = if self.undo.last().is_some_and(|s| s.on_loaded) { self.undo.first() } else { self.undo.last() };
        let befores = self.undo.last().map_or(&[][..], |s| s.befores.as_slice());
        // The trace the last statement made is the current one (`:undo` and `:redo` keep it so).
        let placed = match (self.undo.last(), &self.loaded) {
            (Some(last), Some(loaded)) => Some((Placed::new(self.last(), &last.store), Objects::new(&loaded.store))),
            _ => None,
        };
        let mut placed = placed;
        let changed = self.last().iter().enumerate().filter(|(_, m)| m.modified || m.deleted);
        for (i, m) in changed.take(n) {
            let e = step.and_then(|s| s.store.event(m.event)).and_then(Result::ok);
            let list = e.as_ref().map(|e| if m.list == "deleted_objs" { &e.deleted_objs } else { &e.applied_objs });
            let Some(before) = befores.get(i).or_else(|| list?.get(m.index)) else { continue };
            let (kind, name) = query::describe(before);
            let applied = e.as_ref().map_or(0, |e| e.applied_objs.len());
            let object = if m.list == "deleted_objs" { applied + m.index } else { m.index };
            let head = format!("{}.{object} {kind} {name} (ts {})", m.event, m.ts);
            let after = match &m.after {
                Some(bytes) => decoded(bytes),
                None if m.modified => placed.as_mut().and_then(|(placed, now)| {
                    let at = placed.at(m, now.store);
                    now.get(at).map(|(_, v, _)| v.clone())
                }),
                None => None,
            };
            match after {
                Some(after) if !m.deleted => {
                    let _ = writeln!(out, "{}", st.bold(&format!("--- {head}")));
                    out.push_str(&diff::unified(before, &after, st));
                }
                _ => {
                    let _ = writeln!(out, "{} {}", st.bold(&format!("--- {head}")), st.red("deleted"));
                }
            }
        }
        out
    }

    /// Recomputes the completion index after the trace changed.
    fn reindex(&mut self) {
        if !self.index_keys || self.loaded.is_none() {
            return;
        }
        // One event decoded at a time, and at most `KEYS_FROM` bytes of them: completion needs
        // the paths, not every object of a production-size trace.
        let Some(loaded) = &self.loaded else { return };
        let mut keys = KeyIndex::default();
        let mut read = 0;
        for (i, event) in loaded.store.decoded() {
            if read > KEYS_FROM {
                break;
            }
            read += loaded.store.event_bytes(i);
            let Ok(event) = event else { continue };
            event.applied_objs.iter().chain(&event.deleted_objs).for_each(|o| keys.add(o));
        }
        self.keys = Rc::new(keys);
    }

    // ------------------------------------------------------------------ meta-commands

    fn meta(&mut self, line: &str, at: usize) -> Flow {
        let rest = &line[at..];
        let name_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let name = &rest[..name_len];
        let arg_raw = &rest[name_len..];
        let arg_at = at + name_len + (arg_raw.len() - arg_raw.trim_start().len());
        let arg = Arg { text: line[arg_at..].trim_end(), at: arg_at, line };
        let name_span = (at, name_len).into();
        match name {
            ":quit" | ":q" | ":exit" if arg.text.is_empty() => return Flow::Quit,
            ":quit" | ":q" | ":exit" => self.no_arg(":quit", arg, |_| {}),
            ":help" | ":h" | ":?" => self.help(arg),
            ":match" => self.match_(arg),
            ":show" => self.show(arg),
            ":get" => self.get(arg),
            ":jsonpath" => self.jsonpath(arg),
            ":diff" => self.diff(arg),
            ":stats" => self.no_arg(":stats", arg, Session::stats),
            ":load" => self.load_arg(arg),
            ":write" => self.write(arg),
            ":history" => self.no_arg(":history", arg, Session::history),
            ":save" => self.save(arg),
            ":undo" => self.no_arg(":undo", arg, Session::undo),
            ":redo" => self.no_arg(":redo", arg, Session::redo),
            _ => {
                let help = command_help(name);
                self.error(ReplError::UnknownCommand { name: name.to_string(), span: name_span, help }, line);
            }
        }
        Flow::Continue
    }

    fn no_arg(&mut self, command: &'static str, arg: Arg<'_>, f: fn(&mut Session)) {
        if arg.text.is_empty() {
            f(self);
        } else {
            self.error(ReplError::UnexpectedArgument { command, span: arg.span() }, arg.line);
        }
    }

    fn require(&mut self, command: &'static str, what: &'static str, arg: &Arg<'_>) -> bool {
        if arg.text.is_empty() {
            let usage = COMMANDS.iter().find(|c| c.0 == command).map_or("", |c| c.1);
            self.error(ReplError::MissingArgument { command, what, usage, span: (arg.at, 0).into() }, arg.line);
            return false;
        }
        true
    }

    fn help(&mut self, arg: Arg<'_>) {
        let st = self.style;
        if let Some(c) = skel_grammar::registry::by_name(arg.text) {
            // `:help modify`: the statement's signature and what it does.
            self.say(format!("{}  {}", st.cyan(c.signature), c.doc));
            return;
        }
        if !arg.text.is_empty() {
            // `:help :match` or `:help match`: that command's line.
            let name = match arg.text.trim_start_matches(':') {
                "q" | "exit" => ":quit".to_string(),
                "h" | "?" => ":help".to_string(),
                other => format!(":{other}"),
            };
            match COMMANDS.iter().find(|c| c.0 == name) {
                Some((name, args, what)) => {
                    self.say(format!("{}  {what}", st.cyan(format!("{name} {args}").trim_end())))
                }
                None => {
                    let help = command_help(&name);
                    self.error(ReplError::UnknownCommand { name, span: arg.span(), help }, arg.line);
                }
            }
            return;
        }
        let statements = skel_grammar::registry::COMMANDS;
        let usages: Vec<String> = COMMANDS
            .iter()
            .map(|(name, args, _)| if args.is_empty() { name.to_string() } else { format!("{name} {args}") })
            .collect();
        let width = usages
            .iter()
            .map(|u| u.chars().count())
            .chain(statements.iter().map(|c| c.signature.chars().count() + 1))
            .max()
            .unwrap_or(0);
        let line = |usage: &str, what: &str| {
            let pad = " ".repeat(width.saturating_sub(usage.chars().count()));
            format!("  {}{pad}  {what}", st.cyan(usage))
        };
        self.say("Type a SKEL statement, ending with `;` (it may span lines), to apply it to the trace:");
        for c in &statements {
            self.say(line(&format!("{};", c.signature), c.summary));
        }
        self.say(format!("  e.g. {}", st.cyan("modify(kind == \"CronJob\", apiVersion = \"batch/v1\");")));
        self.say("or a command:");
        for (usage, (_, _, what)) in usages.iter().zip(COMMANDS) {
            self.say(line(usage, what));
        }
        if self.piped {
            self.say("Piped: a statement runs at its `;`, a command at the end of its line; diagnostics give");
            self.say("the input's line; the exit code is 1 if an input failed.");
        } else {
            self.say("Tab completes commands and field paths from the trace; Ctrl-C cancels the input.");
        }
    }

    /// Compiles `delete(SELECTOR);` for a selector typed at `arg`, the selector at the same
    /// offsets as in the line so diagnostics point into it.
    fn selector(&mut self, arg: &Arg<'_>) -> Option<Program> {
        // Every caller's selector follows at least `:match ` (7 bytes, as `delete(`).
        let pad = arg.at.checked_sub("delete(".len())?;
        let src = format!("{}delete({});", " ".repeat(pad), arg.text);
        let (program, diagnostics) = match skel::compile(&src) {
            Ok(c) => (Some(c.program), c.warnings),
            Err(r) => (None, r.diagnostics),
        };
        let end = arg.at + arg.text.len();
        for mut d in diagnostics {
            // What the selector lacks is found in the wrapper (`);`): say the selector ended.
            if let skel::CompileError::Parse(skel::ParseError::Syntax { found, span, .. }) = &mut d {
                if span.start >= end {
                    *found = "end of the selector".into();
                }
            }
            self.error(d, arg.line);
        }
        program
    }

    /// The objects a selector argument matches (all of them without one); `None` after
    /// reporting why not.
    fn select(&mut self, arg: Option<&Arg<'_>>) -> Option<Vec<Address>> {
        if self.loaded.is_none() {
            self.fail(ReplError::NoTrace);
            return None;
        }
        let Some(arg) = arg else { return Some(self.loaded.as_ref()?.store.addresses().collect()) };
        let program = self.selector(arg)?;
        let matched = self.selected(&program, arg.line, None)?;
        let store = &self.loaded.as_ref()?.store;
        Some(matched.iter().map(|m| store.address(m.event, m.list, m.index)).collect())
    }

    /// What `look` reads of each object the selector matches (every object without one), with
    /// its address, read in the pipeline's workers where each object is decoded.
    fn look(&mut self, arg: Option<&Arg<'_>>, look: &Look<'_>) -> Option<Vec<(Address, Value)>> {
        if self.loaded.is_none() {
            self.fail(ReplError::NoTrace);
            return None;
        }
        // Without a selector, every object.
        let (program, line) = match arg {
            Some(arg) => (self.selector(arg)?, arg.line),
            None => (skel::compile("delete(*);").ok()?.program, ""),
        };
        let matched = self.selected(&program, line, Some(look))?;
        let store = &self.loaded.as_ref()?.store;
        Some(
            matched
                .into_iter()
                .map(|m| (store.address(m.event, m.list, m.index), m.looked.unwrap_or_default()))
                .collect(),
        )
    }

    /// The objects a selector's program (`delete(SELECTOR);`) matches, in order: run over the
    /// trace through `skel::stream`, which decodes an object only as far as the selector
    /// reads it. `None` after reporting why not (a run error points into `line`); Ctrl-C
    /// stops it.
    fn selected(&mut self, program: &Program, line: &str, look: Option<&Look<'_>>) -> Option<Vec<MatchedObject>> {
        let start = self.origin();
        let store = &self.loaded.as_ref()?.store;
        let run = || Session::matched(store, program, start, false, look);
        match busy(self.spinners, "selecting", store.meter(), run) {
            Ok(Some(matched)) => Some(matched),
            Ok(None) => {
                self.say("interrupted");
                None
            }
            Err(e) => {
                self.stream_failed(e, line);
                None
            }
        }
    }

    fn match_(&mut self, arg: Arg<'_>) {
        if !self.require(":match", "a selector", &arg) {
            return;
        }
        let Some(found) = self.select(Some(&arg)) else { return };
        let start = self.origin();
        let Some(loaded) = &self.loaded else { return };
        let mut lookup = Objects::new(&loaded.store);
        let mut rows = Vec::new();
        for at in found.iter().take(LIST_LIMIT) {
            let Some((slot, v, ts)) = lookup.get(*at) else { continue };
            let (kind, name) = query::describe(v);
            let deleted = if slot.starts_with("deleted") { "deleted" } else { "" };
            rows.push(vec![at.to_string(), ts.to_string(), query::offset(start, ts), kind, name, deleted.to_string()]);
        }
        let n_events = found.iter().map(|a| a.event).collect::<std::collections::BTreeSet<_>>().len();
        if found.is_empty() {
            self.say(self.style.dim("no object matches"));
            self.kind_hint(arg.text);
            return;
        }
        let t = table(&["at", "ts", "offset", "kind", "name", ""], &rows, &[false, true, true, false, false, false]);
        self.say(t);
        self.more(found.len());
        let line = format!("{} in {} match", plural(found.len() as u64, "object"), plural(n_events as u64, "event"));
        self.say(self.style.bold(&line));
    }

    fn more(&mut self, n: usize) {
        if n > LIST_LIMIT {
            self.say(self.style.dim(&format!("... and {} more", n - LIST_LIMIT)));
        }
    }

    fn address(&mut self, arg: &Arg<'_>) -> Option<(usize, Option<usize>)> {
        let bad = |s: &mut Session| {
            s.error(ReplError::BadAddress { text: arg.text.to_string(), span: arg.span() }, arg.line);
        };
        let (e, o) = match arg.text.split_once('.') {
            Some((e, o)) => (e, Some(o)),
            None => (arg.text, None),
        };
        let Ok(event) = e.parse::<usize>() else {
            bad(self);
            return None;
        };
        let object = match o.map(str::parse::<usize>) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(_)) => {
                bad(self);
                return None;
            }
        };
        Some((event, object))
    }

    fn show(&mut self, arg: Arg<'_>) {
        if !self.require(":show", "an address", &arg) {
            return;
        }
        let Some((event, object)) = self.address(&arg) else { return };
        let Some(loaded) = &self.loaded else {
            self.fail(ReplError::NoTrace);
            return;
        };
        let count = loaded.store.len();
        let e = match loaded.store.event(event) {
            Some(Ok(e)) => e,
            Some(Err(inner)) => {
                let file = files::display(&loaded.path);
                return self.fail(TraceInputError { file, inner });
            }
            None => {
                self.error(ReplError::NoSuchEvent { event, count, span: arg.span() }, arg.line);
                return;
            }
        };
        let start = self.origin();
        let head = format!("# event {event}: ts {} ({})", e.ts, query::offset(start, e.ts));
        match object {
            None => {
                let text = diff::yaml(&e.to_json_value());
                let head = self.style.dim(&head);
                self.say(format!("{head}\n{text}"));
            }
            Some(object) => {
                let count = e.applied_objs.len() + e.deleted_objs.len();
                match query::object_at(std::slice::from_ref(&e), Address { event: 0, object }) {
                    Some((slot, v)) => {
                        let head = self.style.dim(&format!("{head}, {slot}"));
                        let text = diff::yaml(v);
                        self.say(format!("{head}\n{text}"));
                    }
                    None => {
                        let span = arg.span();
                        self.error(ReplError::NoSuchObject { event, object, count, span }, arg.line);
                    }
                }
            }
        }
    }

    /// Splits `X where SELECTOR`: the part before and the selector's argument.
    fn split_where<'a>(arg: &Arg<'a>) -> (Arg<'a>, Option<Arg<'a>>) {
        match find_where(arg.text) {
            Some(i) => {
                let head = Arg { text: arg.text[..i].trim_end(), at: arg.at, line: arg.line };
                let sel = &arg.text[i + " where ".len()..];
                let trimmed = sel.trim_start();
                let at = arg.at + i + " where ".len() + (sel.len() - trimmed.len());
                (head, Some(Arg { text: trimmed, at, line: arg.line }))
            }
            None => (Arg { ..*arg }, None),
        }
    }

    fn get(&mut self, arg: Arg<'_>) {
        if !self.require(":get", "a path", &arg) {
            return;
        }
        let (path_arg, sel) = Session::split_where(&arg);
        let path = match skel_grammar::parse_path(path_arg.text, path_arg.at) {
            Ok(p) => p,
            Err(e) => {
                self.error(e, arg.line);
                return;
            }
        };
        if let Some(var) = &path.var {
            self.error(ReplError::PathVariable { span: var.span.into() }, arg.line);
            return;
        }
        let look = |v: &Value| {
            let mut reached = Vec::new();
            query::reach(v, &path.segments, &mut reached);
            looked(v, reached.into_iter().map(compact).collect())
        };
        let Some(found) = self.look(sel.as_ref(), &look) else { return };
        self.list_values(&found);
    }

    /// Lists the values found in each object (`looked`: its kind, name and the values as
    /// compact JSON), with how many there are.
    fn list_values(&mut self, found: &[(Address, Value)]) {
        let mut rows = Vec::new();
        let (mut values, mut objects) = (0, 0);
        let mut distinct = std::collections::HashSet::new();
        for (at, looked) in found {
            let text = |k: &str| looked.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let reached = looked.get("values").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            objects += !reached.is_empty() as usize;
            for value in reached.iter().filter_map(Value::as_str) {
                values += 1;
                if rows.len() < LIST_LIMIT {
                    rows.push(vec![at.to_string(), text("kind"), text("name"), value.to_string()]);
                }
                distinct.insert(value);
            }
        }
        self.values_answer(rows, values, objects, distinct.len());
    }

    fn values_answer(&mut self, rows: Vec<Vec<String>>, values: usize, objects: usize, distinct: usize) {
        if values == 0 {
            self.say(self.style.dim("the path reaches no value"));
            return;
        }
        let t = table(&["at", "kind", "name", "value"], &rows, &[false, false, false, false]);
        self.say(t);
        self.more(values);
        let line =
            format!("{} in {} ({distinct} distinct)", plural(values as u64, "value"), plural(objects as u64, "object"));
        self.say(self.style.bold(&line));
    }

    fn jsonpath(&mut self, arg: Arg<'_>) {
        if !self.require(":jsonpath", "a JSONPath expression", &arg) {
            return;
        }
        let (expr, sel) = Session::split_where(&arg);
        let query = match jsonpath_rust::parser::parse_json_path(expr.text) {
            Ok(q) => q,
            Err(e) => {
                let (message, offset) = jsonpath_error(&e);
                let span = (expr.at + offset.min(expr.text.len()), 1).into();
                self.error(ReplError::JsonPath { message, span }, arg.line);
                return;
            }
        };
        let look = |v: &Value| {
            let reached = jsonpath_rust::query::js_path_process(&query, v).unwrap_or_default();
            looked(v, reached.into_iter().map(|r| compact(r.val())).collect())
        };
        let Some(found) = self.look(sel.as_ref(), &look) else { return };
        self.list_values(&found);
    }

    fn diff(&mut self, arg: Arg<'_>) {
        let n = if arg.text.is_empty() {
            usize::MAX
        } else {
            match arg.text.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    self.error(ReplError::BadCount { text: arg.text.to_string(), span: arg.span() }, arg.line);
                    return;
                }
            }
        };
        if self.undo.is_empty() {
            self.say(self.style.dim("no statement applied yet"));
            return;
        }
        self.recall();
        if !self.last().iter().any(|m| m.modified || m.deleted) {
            self.say(self.style.dim("the last statement changed nothing"));
            return;
        }
        let text = self.diffs(n);
        self.out.push_str(&text);
    }

    fn stats(&mut self) {
        let Some(loaded) = &self.loaded else {
            self.fail(ReplError::NoTrace);
            return;
        };
        let store = &loaded.store;
        let by = match busy(self.spinners, "counting", store.meter(), || store.stats()) {
            Ok(stats) => &stats.by,
            Err(inner) => {
                let file = files::display(&loaded.path);
                return self.fail(TraceInputError { file, inner });
            }
        };
        let applied: u64 = by.values().map(|n| n[0]).sum();
        let deleted: u64 = by.values().map(|n| n[1]).sum();
        let mut lines = vec![format!(
            "{} ({}): {}, {} ({applied} applied, {deleted} deleted)",
            loaded.path.display(),
            format_name(loaded.store.format),
            plural(store.len() as u64, "event"),
            plural(applied + deleted, "object"),
        )];
        if let (Some(first), Some(last)) = (store.first_ts(), store.last_ts()) {
            lines.push(format!("time: ts {first} to {last} ({})", query::offset(first, last)));
        }
        let rows: Vec<Vec<String>> =
            by.iter().map(|((k, a), n)| vec![k.clone(), a.clone(), n[0].to_string(), n[1].to_string()]).collect();
        let text = lines.join("\n");
        self.say(text);
        if !rows.is_empty() {
            let t = table(&["kind", "apiVersion", "applied", "deleted"], &rows, &[false, false, true, true]);
            self.say(t);
        }
    }

    fn history(&mut self) {
        if self.undo.is_empty() {
            self.say(self.style.dim("no statement applied yet"));
            return;
        }
        let lines: Vec<String> = self
            .undo
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{:>3}  {}", i + 1, s.source.replace('\n', "\n     ")))
            .collect();
        self.say(lines.join("\n"));
    }

    fn undo(&mut self) {
        self.travel(true);
    }

    fn redo(&mut self) {
        self.travel(false);
    }

    /// Takes the last statement back (`undo`) or applies it again: the trace and the step's
    /// events change places, and the step moves to the other stack.
    fn travel(&mut self, back: bool) {
        let (from, word, done) =
            if back { (&mut self.undo, "undo", "undid") } else { (&mut self.redo, "redo", "redid") };
        let (Some(step), Some(loaded)) = (from.pop(), self.loaded.as_mut()) else {
            self.say(self.style.dim(&format!("nothing to {word}")));
            return;
        };
        let other = std::mem::replace(&mut loaded.store, step.store);
        let msg = format!("{done} `{}`", first_line(&step.source));
        let to = if back { &mut self.redo } else { &mut self.undo };
        to.push(Step { store: other, ..step });
        self.reindex();
        self.say(msg);
    }

    fn load_arg(&mut self, arg: Arg<'_>) {
        if self.require(":load", "a trace file", &arg) {
            self.load(Path::new(arg.text));
        }
    }

    /// Loads a trace, replacing the current one (and forgetting its history).
    pub fn load(&mut self, path: &Path) {
        let name = files::display(path);
        // Streamed, not read whole first: `/dev/zero` fails at its first byte, and a FIFO's wait
        // for a writer is announced.
        let input = match files::open_trace_file(path, None) {
            Ok(input) => input,
            Err(e) => return self.fail(e),
        };
        // Progress: how much of the file was read (a pipe's size is not known).
        let counter = Arc::new(AtomicU64::new(0));
        let meter = Meter::new(Arc::clone(&counter), input.len);
        let input = TraceInput { reader: Box::new(Counted::new(input.reader, counter)), ..input };
        let (store, objects) = match busy(self.spinners, &format!("reading {name}"), meter, || Store::read(input)) {
            Ok(read) => read,
            Err(e) => {
                self.fail(TraceInputError { file: name, inner: e });
                return;
            }
        };
        if !self.undo.is_empty() {
            let n = plural(self.undo.len() as u64, "applied statement");
            self.say(
                self.style
                    .yellow(&format!("note: forgot {n} of the previous trace (`:save` before `:load` keeps them)")),
            );
        }
        let msg =
            format!("loaded {name}: {}, {}", plural(store.len() as u64, "event"), plural(objects as u64, "object"));
        self.loaded = Some(Loaded { path: path.to_path_buf(), store });
        self.undo.clear();
        self.redo.clear();
        self.reindex();
        self.say(msg);
    }

    fn write(&mut self, arg: Arg<'_>) {
        if !self.require(":write", "a file to write", &arg) {
            return;
        }
        let Some(loaded) = &self.loaded else {
            self.fail(ReplError::NoTrace);
            return;
        };
        if arg.text == "-" {
            return self.error(ReplError::StdoutTarget { command: ":write", span: arg.span() }, arg.line);
        }
        if crate::cli::remote::is_url(Path::new(arg.text)) {
            let (command, extension, span) = (":write", ".json", arg.span());
            return self.error(ReplError::UrlTarget { command, extension, span }, arg.line);
        }
        let path = Path::new(arg.text);
        let format = Format::from_extension(path).unwrap_or(loaded.store.format);
        let file = files::display(&loaded.path);
        let failed = |inner| Failed::error(TraceInputError { file: file.clone(), inner });
        let write = || Output::write(Some(path), |f| loaded.store.write(f, format).map(|_| ()).map_err(failed));
        let written = busy(self.spinners, &format!("writing {}", path.display()), loaded.store.meter(), write);
        match written {
            Ok(()) => {
                let msg = format!("wrote {} ({})", path.display(), format_name(format));
                self.say(msg);
            }
            Err(failed) => self.fail_with(failed),
        }
    }

    fn save(&mut self, arg: Arg<'_>) {
        if !self.require(":save", "a script file to write", &arg) {
            return;
        }
        if arg.text == "-" {
            return self.error(ReplError::StdoutTarget { command: ":save", span: arg.span() }, arg.line);
        }
        if crate::cli::remote::is_url(Path::new(arg.text)) {
            let (command, extension, span) = (":save", ".skel", arg.span());
            return self.error(ReplError::UrlTarget { command, extension, span }, arg.line);
        }
        let mut script = String::from("# Written by `skel repl`");
        if let Some(l) = &self.loaded {
            let _ = write!(script, " over {}", l.path.display());
        }
        script.push('\n');
        for step in &self.undo {
            script.push_str(&step.source);
            script.push('\n');
        }
        let path = Path::new(arg.text);
        let written = files::write_text(Some(path), &script);
        match written {
            Ok(()) => {
                let msg = format!("wrote {} ({})", path.display(), plural(self.undo.len() as u64, "statement"));
                self.say(msg);
                // `file("x")` is read relative to the script's folder by `skel apply`, and was
                // read relative to the current folder here.
                let folder = files::script_folder(path).unwrap_or(Path::new("."));
                let elsewhere = std::fs::canonicalize(folder).ok() != std::fs::canonicalize(".").ok();
                if elsewhere && self.undo.iter().any(|s| s.source.contains("file(")) {
                    self.say(self.style.yellow(
                        "note: `skel apply` reads `file(\"...\")` relative to the script's folder; \
                         the paths were read relative to the current folder here",
                    ));
                }
            }
            Err(failed) => self.fail_with(failed),
        }
    }
}

/// Where the objects a statement kept are in the trace it made, for a statement that inserts
/// nothing: an event all of whose objects it deleted is gone, and an object it deleted leaves no
/// place in its list.
struct Placed {
    /// The events it emptied, in order.
    emptied: Vec<usize>,
    /// The objects it deleted, by event and list: their indices, in order.
    deleted: HashMap<(usize, &'static str), Vec<usize>>,
}

impl Placed {
    fn new(matched: &[MatchedObject], ran_on: &Store) -> Placed {
        let mut deleted: HashMap<(usize, &'static str), Vec<usize>> = HashMap::new();
        let mut per_event: BTreeMap<usize, usize> = BTreeMap::new();
        for m in matched.iter().filter(|m| m.deleted) {
            deleted.entry((m.event, m.list)).or_default().push(m.index);
            *per_event.entry(m.event).or_default() += 1;
        }
        let emptied = per_event.into_iter().filter(|(e, n)| ran_on.objects_in(*e) == *n).map(|(e, _)| e).collect();
        Placed { emptied, deleted }
    }

    /// Where a kept object of the trace the statement ran on is in `made`.
    fn at(&self, m: &MatchedObject, made: &Store) -> Address {
        let event = m.event - self.emptied.partition_point(|e| *e < m.event);
        let gone = self.deleted.get(&(m.event, m.list)).map_or(0, |d| d.partition_point(|i| *i < m.index));
        made.address(event, m.list, m.index - gone)
    }
}

/// The objects of a trace by address, each event decoded once while its objects are asked for
/// in order.
struct Objects<'s> {
    pub store: &'s Store,
    /// The last event read: its index and bytes.
    event: Option<(usize, Vec<u8>)>,
    /// The last object decoded: its address, slot, value and event's `ts`.
    object: Option<(Address, String, Value, i64)>,
}

impl<'s> Objects<'s> {
    fn new(store: &'s Store) -> Self {
        Objects { store, event: None, object: None }
    }

    /// The object at an address: its slot (`applied_objs[2]`), its value and its event's `ts`.
    /// Only that object is decoded; its event is read once for all its objects.
    fn get(&mut self, at: Address) -> Option<(String, &Value, i64)> {
        if self.object.as_ref().map(|o| o.0) != Some(at) {
            if self.event.as_ref().map(|(i, _)| *i) != Some(at.event) {
                self.event = Some((at.event, self.store.bytes(at.event)?.ok()?));
            }
            let (_, bytes) = self.event.as_ref()?;
            let (slot, value, ts) = self.store.object(bytes, at)?.ok()?;
            self.object = Some((at, slot, value, ts));
        }
        let (_, slot, value, ts) = self.object.as_ref()?;
        Some((slot.clone(), value, *ts))
    }
}

/// What `:get` and `:jsonpath` keep of an object: its kind and name, and the values found.
fn looked(v: &Value, values: Vec<String>) -> Value {
    let (kind, name) = query::describe(v);
    serde_json::json!({"kind": kind, "name": name, "values": values})
}

/// Where a run whose output nobody reads writes it (a selector's, which keeps the objects it
/// does not match).
struct Nowhere;

impl std::io::Write for Nowhere {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for Nowhere {
    fn seek(&mut self, _: std::io::SeekFrom) -> std::io::Result<u64> {
        Ok(0)
    }
}

/// A meta-command's argument: its text (trimmed) and where it starts in the line.
struct Arg<'a> {
    text: &'a str,
    at: usize,
    line: &'a str,
}

impl Arg<'_> {
    fn span(&self) -> miette::SourceSpan {
        (self.at, self.text.len().max(1)).into()
    }
}

/// A JSONPath parse error's message and the offset it points at.
fn jsonpath_error(e: &jsonpath_rust::parser::errors::JsonPathError) -> (String, usize) {
    use jsonpath_rust::parser::errors::JsonPathError;
    match e {
        JsonPathError::PestError(p) => {
            let at = match p.location {
                pest::error::InputLocation::Pos(at) | pest::error::InputLocation::Span((at, _)) => at,
            };
            (p.variant.message().to_string(), at)
        }
        other => (other.to_string(), 0),
    }
}

/// The help for an unknown command: the likely one, and where the list is.
fn command_help(name: &str) -> String {
    let best = COMMANDS.iter().map(|c| (strsim::levenshtein(c.0, name), c.0)).min().filter(|(d, _)| *d <= 2);
    match best {
        Some((_, n)) => format!("did you mean `{n}`? `:help` lists every command"),
        None => "`:help` lists every command".into(),
    }
}

/// The offset of ` where ` outside quotes and brackets.
fn find_where(s: &str) -> Option<usize> {
    let (mut depth, mut quote) = (0i32, None::<char>);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '(' | '{') => depth += 1,
            (None, ']' | ')' | '}') => depth -= 1,
            (None, ' ') if depth == 0 && s[i..].starts_with(" where ") => return Some(i),
            _ => {}
        }
    }
    None
}

/// The input is only whitespace and comments.
pub fn is_blank(s: &str) -> bool {
    s.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

/// Whether an input is ready to run: a meta-command line, or statements whose last one ends
/// with `;` (outside strings and comments). Otherwise the REPL reads another line.
pub fn is_complete(buf: &str) -> bool {
    if buf.trim_start().starts_with(':') {
        return true;
    }
    let mut last = None;
    let open = skel::explore::code_chars(buf, |_, c| {
        if !c.is_whitespace() {
            last = Some(c);
        }
    });
    !open && matches!(last, None | Some(';'))
}

fn first_line(s: &str) -> String {
    let mut lines = s.lines();
    let first = lines.next().unwrap_or("").to_string();
    if lines.next().is_some() {
        first + " ..."
    } else {
        first
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Json => "JSON",
        Format::Msgpack => "msgpack",
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A plain text table, two spaces between columns; `right` aligns numeric columns.
fn table(head: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::from(" ");
        for (i, cell) in cells.enumerate() {
            let pad = " ".repeat(widths[i].saturating_sub(cell.chars().count()));
            out.push(' ');
            if right.get(i).copied().unwrap_or(false) {
                out.push_str(&pad);
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&pad);
            }
            out.push(' ');
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(&mut head.iter().copied())];
    for row in rows {
        out.push(line(&mut row.iter().map(String::as_str)));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use skel_trace::Event;

    #[test]
    fn statements_are_complete_at_a_semicolon() {
        assert!(is_complete("delete(kind == \"Pod\");"));
        assert!(is_complete("delete(kind == \"Pod\");  # done\n"));
        assert!(!is_complete("modify(kind == \"Pod\","));
        assert!(!is_complete("delete(kind == \";\""));
        assert!(!is_complete("delete(*); # ;\nremove(status"));
        assert!(is_complete(":match kind == \"Pod\""));
        assert!(is_complete("   \n# just a comment\n"));
        assert!(is_complete("delete(name == \"a\\\"b\");"));
    }

    #[test]
    fn where_splits_outside_quotes_and_brackets() {
        assert_eq!(find_where("spec.x where kind == \"Pod\""), Some(6));
        assert_eq!(find_where("$..[?@.a == ' where '] where kind == \"A\""), Some(22));
        assert_eq!(find_where("metadata.labels[\"a where b\"]"), None);
    }

    /// Any input, however broken, gets an answer and never a panic; the trace stays valid.
    #[test]
    fn never_panics_on_any_input() {
        use proptest::prelude::*;
        const TOKENS: &[&str] = &[
            ":match ",
            ":get ",
            ":show ",
            ":jsonpath ",
            ":diff ",
            ":undo",
            ":redo",
            ":history",
            ":stats",
            ":x",
            "kind",
            "==",
            "\"Pod\"",
            "\"CronJob\"",
            " where ",
            "(",
            ")",
            ";",
            "$x",
            ":=",
            "|",
            "spec",
            ".",
            "[*]",
            "[0]",
            "metadata.name",
            "modify(",
            "delete(",
            "remove(",
            "insert(",
            ",",
            "=",
            "1",
            "-",
            "\n",
            " ",
            "é",
            "\u{3000}",
            "$",
            "@t",
            ">",
            "2m",
            "[?@.a]",
            "\"",
            "#",
            "1.0",
            "*",
            "{",
            "}",
            ":",
        ];
        let trace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trace.json");
        let mut base = Session::new(Style::plain());
        base.load(&trace);
        let config = proptest::test_runner::Config { cases: 200, ..Default::default() };
        proptest!(config, |(inputs in proptest::collection::vec(proptest::collection::vec(0..TOKENS.len(), 0..8), 1..4))| {
            let mut session = Session::new(Style::plain());
            session.loaded = base.loaded.as_ref().map(|l| Loaded { path: l.path.clone(), store: l.store.clone() });
            for input in inputs {
                let text: String = input.iter().map(|&i| TOKENS[i]).collect();
                session.run(&text);
                let _ = session.take_output();
            }
            let store = &session.loaded.as_ref().unwrap().store;
            let events: Vec<Event> = store.decoded().map(|(_, e)| e.unwrap()).collect();
            prop_assert!(events.iter().all(|e| !e.applied_objs.is_empty() || !e.deleted_objs.is_empty()));
        });
    }

    /// Where `:diff` finds a changed object in the trace a statement made is where the object
    /// the run kept was, with events emptied and objects deleted before it in the same events.
    #[test]
    fn changed_objects_are_found_in_the_trace_made() {
        let trace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/trace.json");
        let mut session = Session::new(Style::plain());
        session.load(&trace);
        let src = r#"delete(kind != "Deployment" && kind != "CronJob"); modify(metadata.labels.x = "y");"#;
        let program = skel::compile(src).expect("compiles").program;
        let (start, before) = (session.origin(), session.loaded.as_ref().unwrap().store.clone());
        let kept = Session::replay(&before, &program, start, true).unwrap().unwrap();
        let found = Session::replay(&before, &program, start, false).unwrap().unwrap();
        let placed = Placed::new(&found.matched, &before);
        assert!(!placed.emptied.is_empty() && found.matched.iter().any(|m| m.deleted), "the test deletes nothing");
        let mut made = Objects::new(&found.store);
        let mut checked = 0;
        for (k, f) in kept.matched.iter().zip(&found.matched).filter(|(k, _)| k.modified) {
            let at = placed.at(f, &found.store);
            assert_eq!(made.get(at).map(|(_, v, _)| v.clone()), k.after.as_deref().and_then(decoded), "{at}");
            checked += 1;
        }
        assert!(checked > 5, "{checked}");
    }

    #[test]
    fn tables_align() {
        let rows = vec![vec!["Pod".to_string(), "12".to_string()], vec!["CronJob".to_string(), "3".to_string()]];
        assert_eq!(table(&["kind", "n"], &rows, &[false, true]), "  kind      n\n  Pod      12\n  CronJob   3");
    }
}
