//! `skel check`: what a trace (or a set of manifests) holds that a target Kubernetes version
//! rejects, ignores or deprecates, and the SKEL that rewrites what a rewrite can. The knowledge
//! is `crate::kube` (removed APIs, upgrade hazards, pod-template places); a `Scanner` looks at
//! every object once, scanners of parts of a trace merge, and a `Report` renders as text, JSON,
//! SARIF or Markdown, or as the fix script.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use serde_json::{json, Value};

pub use crate::kube::apis::{migration_statement, removal_of, removals, served_replacement, Removal};
use crate::kube::hazards::{hazards, Hazard, Hit, Rules, TokenRef};
pub use crate::kube::hazards::{Family, Severity};
use crate::kube::podspec::PodPlaces;
pub use crate::kube::{api_version, KubeVersion};

/// What a finding is about: a removed API (an index into `removals()`) or another hazard (an
/// index into `hazards()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    Api(usize),
    Hazard(usize),
}

/// How many values (schedules, addresses) a finding keeps to show.
const MAX_VALUES: usize = 20;

/// One rule's findings in the whole input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub objects: u64,
    pub events: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    /// `namespace/name` (or `name`) of the first object seen.
    pub example: String,
    /// The statements that rewrite it where it was found, in the order first seen.
    pub fix: Vec<String>,
    /// Values worth showing (the schedules, the addresses), at most `MAX_VALUES`.
    pub values: Vec<String>,
    last_event: usize,
}

impl Finding {
    pub fn removal(&self) -> Option<&'static Removal> {
        match self.rule {
            Rule::Api(i) => removals().get(i),
            Rule::Hazard(_) => None,
        }
    }

    pub fn hazard(&self) -> Option<&'static Hazard> {
        match self.rule {
            Rule::Hazard(i) => hazards().get(i),
            Rule::Api(_) => None,
        }
    }

    /// The stable id a machine matches: `removed-api:batch/v1beta1/CronJob`,
    /// `label:node-role.kubernetes.io/master`, ...
    pub fn id(&self) -> String {
        match (self.removal(), self.hazard()) {
            (Some(r), _) => format!("removed-api:{}/{}", r.api_version(), r.kind),
            (_, Some(h)) => h.id.clone(),
            _ => String::new(),
        }
    }

    /// The rule family: the id's first part.
    pub fn family(&self) -> &'static str {
        match self.hazard() {
            Some(h) => match h.family {
                Family::Label => "label",
                Family::Taint => "taint",
                Family::Annotation => "annotation",
                Family::Field => "field",
                Family::Volume => "volume",
                Family::VolumeCsi => "volume-csi",
                Family::DeprecatedApi => "deprecated-api",
                Family::Validation => "validation",
                Family::Behaviour => "behaviour",
            },
            None => "removed-api",
        }
    }

    /// The version from which it has its severity.
    pub fn since(&self) -> String {
        match (self.removal(), self.hazard()) {
            (Some(r), _) => r.removed_in.clone(),
            (_, Some(h)) => {
                let v = if self.severity == Severity::Error { &h.error_from } else { &h.warn_from };
                v.clone().unwrap_or_default()
            }
            _ => String::new(),
        }
    }

    /// One line saying what it is.
    pub fn title(&self) -> String {
        match (self.removal(), self.hazard()) {
            (Some(r), _) => format!("{} {} was removed in Kubernetes {}", r.api_version(), r.kind, r.removed_in),
            (_, Some(h)) => match (self.severity, &h.error_from) {
                (Severity::Warning, Some(error)) => {
                    format!("{} (from {}; an error from {error})", h.title, self.since())
                }
                _ => format!("{} (from {})", h.title, self.since()),
            },
            _ => String::new(),
        }
    }

    /// What to use instead, for `target`.
    pub fn instead(&self, target: KubeVersion) -> String {
        match (self.removal(), self.hazard()) {
            (Some(r), _) => match (&r.replacement, served_replacement(r, target)) {
                (Some(to), Some(served)) if *to != served => {
                    format!("use {to}, then {served} (the target serves no earlier one)")
                }
                (Some(to), _) => format!("use {to}"),
                (None, _) => "no replacement API".to_string(),
            },
            (_, Some(h)) => h.instead.clone(),
            _ => String::new(),
        }
    }

    /// Whether `--fix` writes statements that rewrite it (for an API, to the version the target
    /// serves: following replacements that are themselves removed by then).
    pub fn fixable(&self, target: KubeVersion) -> bool {
        match (self.removal(), self.hazard()) {
            (Some(r), _) => served_replacement(r, target).is_some(),
            (_, Some(_)) => !self.fix.is_empty(),
            _ => false,
        }
    }

    /// What the user must do by hand, if the rewrite does not do it all.
    pub fn manual(&self) -> Option<String> {
        match (self.removal(), self.hazard()) {
            (Some(r), _) if !r.notes.is_empty() && r.notes != "no notable changes" => Some(r.notes.clone()),
            // A note on where the rewrite is wrong (`fix_from`) is moot where it is written.
            (_, Some(h)) if h.fix_from.is_some() && !self.fix.is_empty() => None,
            (_, Some(h)) => h.manual.clone(),
            _ => None,
        }
    }

    /// `3 objects in 2 events, e.g. ns/name`, or what names it when no object does.
    pub fn where_found(&self) -> String {
        if self.objects > 0 {
            format!("{} in {}, e.g. {}", count(self.objects, "object"), count(self.events, "event"), self.example)
        } else {
            format!("no object; named by {}", self.values.join(", "))
        }
    }

    pub fn sources(&self) -> &'static [String] {
        match (self.removal(), self.hazard()) {
            (Some(r), _) => &r.sources,
            (_, Some(h)) => &h.sources,
            _ => &[],
        }
    }

    fn add(&mut self, event: usize, ts: i64, fix: Vec<String>, values: Vec<String>) {
        self.objects += 1;
        if self.last_event != event {
            self.events += 1;
            self.last_event = event;
        }
        self.first_ts = self.first_ts.min(ts);
        self.last_ts = self.last_ts.max(ts);
        self.note(fix, values);
    }

    /// A finding with nothing counted yet; `ts` is that of its first object, `None` when the
    /// trace only names it (its config, its lifecycles).
    fn new(rule: Rule, severity: Severity, ts: Option<i64>, example: String) -> Finding {
        Finding {
            rule,
            severity,
            objects: 0,
            events: 0,
            first_ts: ts.unwrap_or(i64::MAX),
            last_ts: ts.unwrap_or(i64::MIN),
            example,
            fix: Vec::new(),
            values: Vec::new(),
            last_event: usize::MAX,
        }
    }

    /// Adds the statements and values not there yet (at most `MAX_VALUES` values).
    fn note(&mut self, fix: Vec<String>, values: Vec<String>) {
        for f in fix {
            if !self.fix.contains(&f) {
                self.fix.push(f);
            }
        }
        for v in values {
            if self.values.len() < MAX_VALUES && !self.values.contains(&v) {
                self.values.push(v);
            }
        }
    }
}

/// A token Secret reference seen, kept until the end says whether the input holds the Secret.
#[derive(Debug, Clone)]
struct TokenUse {
    token: TokenRef,
    /// The object that refers to it: its event, and its place among the scanner's objects.
    object: (usize, u64),
    event: usize,
    ts: i64,
    example: String,
}

/// Looks at every object of a trace (or of a set of manifests) for what `target` rejects,
/// ignores or deprecates.
pub struct Scanner {
    target: KubeVersion,
    rules: Rules,
    places: PodPlaces,
    found: HashMap<Rule, Finding>,
    tokens: Vec<TokenUse>,
    token_secrets: HashSet<(String, String)>,
    hits: Vec<Hit>,
    refs: Vec<TokenRef>,
    pub objects: u64,
    pub events: u64,
}

impl Scanner {
    pub fn new(target: KubeVersion) -> Scanner {
        Scanner {
            target,
            rules: Rules::at(target),
            places: PodPlaces::default(),
            found: HashMap::new(),
            tokens: Vec::new(),
            token_secrets: HashSet::new(),
            hits: Vec::new(),
            refs: Vec::new(),
            objects: 0,
            events: 0,
        }
    }

    /// A scanner for another part of the same input: the same target and pod-template places.
    pub fn fork(&self) -> Scanner {
        let mut s = Scanner::new(self.target);
        s.places = self.places.clone();
        s
    }

    /// Looks for pod templates where the trace's config says a tracked kind has them too
    /// (`group/version.Kind`, a JSON pointer such as `/spec/template`).
    pub fn pod_template_path(&mut self, gvk: &str, pointer: &str) {
        self.places.add_config_path(gvk, pointer);
    }

    /// Notes a kind the trace names outside its events (`apiVersion.Kind`: a `config.trackedObjects`
    /// key, the owners of `pod_lifecycles`; `place` says which): a removed one joins that API's
    /// finding, which `skel apply --follow-api-versions` of the fix script renames.
    pub fn trace_kind(&mut self, place: &str, gvk: &str) {
        let Some((api, kind)) = gvk.rsplit_once('.') else { return };
        let Some(&i) = crate::kube::apis::removal_index().get(&(api, kind)) else { return };
        let Some(r) = removals().get(i).filter(|r| r.removed() <= self.target) else { return };
        let fix = self.api_fix(r);
        let named = format!("{place} {gvk}");
        let rule = Rule::Api(i);
        let f = self.found.entry(rule).or_insert_with(|| Finding::new(rule, Severity::Error, None, named.clone()));
        f.note(fix, vec![named]);
    }

    /// Counts an event (call before its objects).
    pub fn event(&mut self) {
        self.events += 1;
    }

    /// How many events it has looked at.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Looks at one object of event `event` (0-based) at time `ts`.
    pub fn object(&mut self, event: usize, ts: i64, obj: &Value) {
        self.objects += 1;
        let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        if let Some(&i) = crate::kube::apis::removal_index().get(&(api, kind)) {
            if removals().get(i).is_some_and(|r| r.removed() <= self.target) {
                // The statements are the same for every object: written for the first.
                let seen = self.found.contains_key(&Rule::Api(i));
                let fix =
                    if seen { Vec::new() } else { removals().get(i).map(|r| self.api_fix(r)).unwrap_or_default() };
                self.record(Rule::Api(i), Severity::Error, event, ts, obj, fix, Vec::new());
            }
        }
        let mut hits = std::mem::take(&mut self.hits);
        let mut refs = std::mem::take(&mut self.refs);
        self.rules.scan(obj, &self.places, &mut hits, &mut refs);
        for hit in hits.drain(..) {
            let severity = hazards().get(hit.hazard).and_then(|h| h.severity_at(self.target));
            if let Some(severity) = severity {
                let right = hazards().get(hit.hazard).is_some_and(|h| h.fix_applies(self.target));
                let fix = if right { hit.fix } else { Vec::new() };
                self.record(Rule::Hazard(hit.hazard), severity, event, ts, obj, fix, hit.values);
            }
        }
        for token in refs.drain(..) {
            self.tokens.push(TokenUse { token, object: (event, self.objects), event, ts, example: describe(obj) });
        }
        if let Some(secret) = Rules::token_secret(obj) {
            self.token_secrets.insert(secret);
        }
        self.hits = hits;
        self.refs = refs;
    }

    /// The statements that migrate a removed API's objects: its fields, then its apiVersion.
    fn api_fix(&self, r: &Removal) -> Vec<String> {
        let mut fix = Vec::new();
        if served_replacement(r, self.target).is_some() {
            if let Some(fields) = r.fields_fix.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
                fix.push(fields.to_string());
            }
            fix.push(migration_statement(r, self.target));
        }
        fix
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        rule: Rule,
        severity: Severity,
        event: usize,
        ts: i64,
        obj: &Value,
        fix: Vec<String>,
        values: Vec<String>,
    ) {
        let f = self.found.entry(rule).or_insert_with(|| Finding::new(rule, severity, Some(ts), describe(obj)));
        if f.objects == 0 {
            // Named by the trace's config or lifecycles first: an object is the better example.
            f.example = describe(obj);
        }
        f.add(event, ts, fix, values);
    }

    /// Adds what `later` (a fork that scanned the events after this one's) found.
    pub fn merge(&mut self, later: Scanner) {
        self.objects += later.objects;
        self.events += later.events;
        for (rule, f) in later.found {
            match self.found.get_mut(&rule) {
                Some(mine) => {
                    if mine.objects == 0 && f.objects > 0 {
                        mine.example = f.example;
                    }
                    mine.objects += f.objects;
                    mine.events += f.events;
                    mine.first_ts = mine.first_ts.min(f.first_ts);
                    mine.last_ts = mine.last_ts.max(f.last_ts);
                    mine.last_event = f.last_event;
                    mine.note(f.fix, f.values);
                }
                None => {
                    self.found.insert(rule, f);
                }
            }
        }
        self.tokens.extend(later.tokens);
        self.token_secrets.extend(later.token_secrets);
    }

    pub fn report(mut self) -> Report {
        let sa_rule = self.rules.sa_token_rule();
        let severity = sa_rule.and_then(|i| hazards().get(i)).and_then(|h| h.severity_at(self.target));
        if let (Some(i), Some(severity)) = (sa_rule, severity) {
            let tokens = std::mem::take(&mut self.tokens);
            // An object's references are next to each other: it counts once, with all of them.
            let missing = tokens
                .iter()
                .filter(|t| !self.token_secrets.contains(&(t.token.namespace.clone(), t.token.secret.clone())));
            let mut by_object: Vec<(&TokenUse, Vec<String>, Vec<String>)> = Vec::new();
            for t in missing {
                let value = format!("{}/{}", t.token.namespace, t.token.secret).trim_start_matches('/').to_string();
                match by_object.last_mut() {
                    Some((first, fix, values)) if first.object == t.object => {
                        fix.push(t.token.insert_statement());
                        values.push(value);
                    }
                    _ => by_object.push((t, vec![t.token.insert_statement()], vec![value])),
                }
            }
            for (t, fix, values) in by_object {
                let rule = Rule::Hazard(i);
                let f = self
                    .found
                    .entry(rule)
                    .or_insert_with(|| Finding::new(rule, severity, Some(t.ts), t.example.clone()));
                f.add(t.event, t.ts, fix, values);
            }
        }
        let mut findings: Vec<Finding> = self.found.into_values().collect();
        findings.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.rule));
        Report { target: self.target, objects: self.objects, events: self.events, findings, hidden: 0 }
    }
}

/// `namespace/name`, or `name`, or `?`.
fn describe(obj: &Value) -> String {
    let meta = obj.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("?");
    match meta.and_then(|m| m.get("namespace")).and_then(Value::as_str) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// What an input holds that the target version rejects, ignores or deprecates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub target: KubeVersion,
    pub objects: u64,
    pub events: u64,
    /// Errors, then warnings; in each, removed APIs in the table's order, then the other
    /// hazards in the data's order.
    pub findings: Vec<Finding>,
    /// How many findings `at_least` left out.
    pub hidden: usize,
}

/// `1 object`, `2 objects`.
fn count(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

impl Report {
    pub fn has_findings(&self) -> bool {
        !self.findings.is_empty()
    }

    /// Keeps the findings of `min` severity or worse.
    pub fn at_least(mut self, min: Severity) -> Report {
        let before = self.findings.len();
        self.findings.retain(|f| f.severity >= min);
        self.hidden += before - self.findings.len();
        self
    }

    /// ` (2 warnings not shown: ...)` when `at_least` left some out.
    fn hidden_note(&self) -> String {
        match self.hidden {
            0 => String::new(),
            n => format!(" ({} not shown: `--min-severity error`)", count(n as u64, "warning")),
        }
    }

    /// How many findings have severity `s`.
    pub fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "skel check: {} in {}, target Kubernetes {}",
            count(self.objects, "object"),
            count(self.events, "event"),
            self.target
        );
        if self.findings.is_empty() {
            let _ = writeln!(out, "nothing found{}", self.hidden_note());
            return out;
        }
        for (severity, heading) in [(Severity::Error, "errors"), (Severity::Warning, "warnings")] {
            let n = self.count(severity);
            if n == 0 {
                continue;
            }
            let _ = writeln!(out, "\n{heading} ({n})");
            for f in self.findings.iter().filter(|f| f.severity == severity) {
                let _ = writeln!(out, "\n{}: {}", f.id(), f.title());
                let _ = writeln!(out, "  {}", f.instead(self.target));
                if f.objects > 0 {
                    let _ = writeln!(
                        out,
                        "  {} in {}, ts {}..{}, e.g. {}",
                        count(f.objects, "object"),
                        count(f.events, "event"),
                        f.first_ts,
                        f.last_ts,
                        f.example
                    );
                } else {
                    out.push_str("  no object in the events\n");
                }
                if !f.values.is_empty() {
                    let _ = writeln!(out, "  found: {}", f.values.join(", "));
                }
                if let Some(note) = f.manual() {
                    let _ = writeln!(out, "  note: {note}");
                }
                if !f.fixable(self.target) {
                    out.push_str("  no mechanical fix: `--fix` lists it as a comment\n");
                }
            }
        }
        let fixable = self.findings.iter().filter(|f| f.fixable(self.target)).count();
        let _ = writeln!(
            out,
            "\n{} ({}, {}), {fixable} with a mechanical fix (`--fix FILE.skel`){}",
            count(self.findings.len() as u64, "finding"),
            count(self.count(Severity::Error) as u64, "error"),
            count(self.count(Severity::Warning) as u64, "warning"),
            self.hidden_note(),
        );
        out
    }

    /// The stable JSON form (documented in docs/upgrade-check.md).
    pub fn json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let r = f.removal();
                let replacement = match (r, f.hazard()) {
                    (Some(r), _) => served_replacement(r, self.target),
                    (_, Some(h)) => h.replacement.clone(),
                    _ => None,
                };
                json!({
                    "id": f.id(),
                    "rule": f.family(),
                    "severity": f.severity.name(),
                    "since": f.since(),
                    "kind": r.map(|r| r.kind.clone()),
                    "apiVersion": r.map(Removal::api_version),
                    "replacement": replacement,
                    "message": f.title(),
                    "instead": f.instead(self.target),
                    "objects": f.objects,
                    "events": f.events,
                    "firstSeen": (f.objects > 0).then_some(f.first_ts),
                    "lastSeen": (f.objects > 0).then_some(f.last_ts),
                    "example": f.example,
                    "values": f.values,
                    "fixable": f.fixable(self.target),
                    "sources": f.sources(),
                })
            })
            .collect();
        json!({
            "target": self.target.to_string(),
            "objects": self.objects,
            "events": self.events,
            "errors": self.count(Severity::Error),
            "warnings": self.count(Severity::Warning),
            "hidden": self.hidden,
            "findings": findings,
        })
    }

    /// SARIF 2.1.0, for code scanning UIs; each finding a result on the input, its id the rule.
    pub fn sarif(&self, input: &str) -> Value {
        let rules: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let text = match (f.removal(), f.hazard()) {
                    (Some(r), _) => {
                        format!("{} {} is not served from Kubernetes {}", r.api_version(), r.kind, r.removed_in)
                    }
                    (_, Some(h)) => h.title.clone(),
                    _ => String::new(),
                };
                json!({
                    "id": f.id(),
                    "shortDescription": {"text": text},
                    "help": {"text": f.instead(self.target)},
                    "properties": {"sources": f.sources()},
                })
            })
            .collect();
        let results: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                json!({
                    "ruleId": f.id(),
                    "level": f.severity.name(),
                    "message": {"text": format!("{}; {}: {}", f.title(), f.instead(self.target), f.where_found())},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": input}}}],
                })
            })
            .collect();
        json!({
            "version": "2.1.0",
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "runs": [{
                "tool": {"driver": {
                    "name": "skel",
                    "informationUri": "https://github.com/acrlabs/simkube",
                    "rules": rules,
                }},
                "results": results,
            }],
        })
    }

    /// A Markdown summary for a pull-request comment.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### skel check: Kubernetes {}\n", self.target);
        let _ = write!(out, "{} in {}: ", count(self.objects, "object"), count(self.events, "event"));
        if self.findings.is_empty() {
            out.push_str("nothing found.\n");
            return out;
        }
        let _ = writeln!(
            out,
            "**{}**, {}.\n",
            count(self.count(Severity::Error) as u64, "error"),
            count(self.count(Severity::Warning) as u64, "warning")
        );
        out.push_str("| Severity | Finding | What to do | Objects | Example | Fix |\n|---|---|---|---:|---|---|\n");
        let cell = |s: &str| s.replace('|', "\\|");
        for f in &self.findings {
            let _ = writeln!(
                out,
                "| {} | `{}`: {} | {} | {} | `{}` | {} |",
                f.severity.name(),
                f.id(),
                cell(&f.title()),
                cell(&f.instead(self.target)),
                f.objects,
                cell(&f.example),
                if f.fixable(self.target) { "yes" } else { "no" }
            );
        }
        out
    }

    /// A SKEL script that rewrites what can be rewritten mechanically, a comment per finding
    /// saying what and why; what cannot is listed as comments. In `skel fmt`'s canonical style,
    /// or why the formatter cannot take it (a bug: `fix_source` is the script as made).
    pub fn fix_script(&self) -> Result<String, skel_grammar::FormatError> {
        skel_grammar::format(&self.fix_source())
    }

    /// `fix_script` as made, before the formatter lays it out.
    pub fn fix_source(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Written by `skel check --target-version {}`.", self.target);
        let _ =
            writeln!(out, "# Apply it with `skel apply THIS.skel TRACE -o OUT`; `skel check` on OUT should then find");
        let _ = writeln!(out, "# nothing with a mechanical fix.");
        if self
            .findings
            .iter()
            .any(|f| f.values.iter().any(|v| v.starts_with("config.") || v.starts_with("pod_lifecycles")))
        {
            let _ = writeln!(
                out,
                "# The trace's config and pod lifecycles name moved kinds too: add `--follow-api-versions`"
            );
            let _ = writeln!(out, "# to `skel apply` to rename them with the objects.");
        }
        for f in &self.findings {
            out.push('\n');
            let _ = writeln!(out, "# {} ({}): {}.", f.id(), count(f.objects, "object"), f.title());
            let _ = writeln!(out, "# {}.", capitalized(&f.instead(self.target)));
            if let (Some(r), false) = (f.removal(), f.fixable(self.target)) {
                let _ = writeln!(out, "# No mechanical fix (no API the target serves replaces it): {}", r.notes);
                let _ = writeln!(out, "# To drop these objects from the trace:");
                let _ = writeln!(out, "# {}", migration_statement(r, self.target));
                continue;
            }
            if let Some(note) = f.manual() {
                let by = if f.fixable(self.target) { "Check" } else { "No mechanical fix" };
                let _ = writeln!(out, "# {by}: {note}");
            } else if !f.fixable(self.target) {
                out.push_str("# No mechanical fix.\n");
            }
            if !f.values.is_empty() && !f.fixable(self.target) {
                let _ = writeln!(out, "# Found: {}", f.values.join(", "));
            }
            for statement in &f.fix {
                let _ = writeln!(out, "{statement}");
            }
        }
        out
    }
}

/// Every hazard rule as a Markdown table (what `skel check --list-rules` prints, and what
/// docs/upgrade-check.md holds): id, when it warns and when it is an error, whether `--fix`
/// rewrites it, what it is, what to do, and the sources.
pub fn rule_catalogue() -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = String::from("| id | warning from | error from | fix | what | instead | sources |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for h in hazards() {
        let fix = match (h.fixable(), &h.manual) {
            (true, Some(_)) => "partly",
            (true, None) => "yes",
            (false, _) => "no",
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {fix} | {} | {} | {} |",
            h.id,
            h.warn_from.as_deref().unwrap_or("–"),
            h.error_from.as_deref().unwrap_or("–"),
            cell(&h.title),
            cell(&h.instead),
            cell(&h.sources.join("; ")),
        );
    }
    out
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The manifests of a YAML text (several documents; JSON is YAML too), and a word on each
/// document or item that is not one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifests {
    pub objects: Vec<Value>,
    /// `document 2: ...`: what was not read as a manifest, and why.
    pub skipped: Vec<String>,
}

/// Reads the manifests of a YAML text. An array gives its elements; a `List` its `items`, and a
/// typed list (`PodDisruptionBudgetList`) gives its items the list's `apiVersion` and the kind
/// without `List` where they have none, as kubectl decodes them. Empty documents are nothing.
pub fn parse_manifests(text: &str) -> Result<Manifests, String> {
    fn what(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(m) if m.get("kind").is_some_and(Value::is_string) => "an object",
            Value::Object(_) => "an object without a `kind`",
        }
    }
    fn flatten(v: Value, place: &str, out: &mut Manifests) {
        match v {
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    flatten(item, &format!("{place}, item {}", i + 1), out);
                }
            }
            // A kind that ends in `List` without `items` (`AllowList`) is a manifest like any other.
            Value::Object(mut m)
                if m.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"))
                    && m.contains_key("items") =>
            {
                let kind = m.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
                let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty()).map(str::to_string);
                let api = m.get("apiVersion").and_then(Value::as_str).map(str::to_string);
                let items = match m.remove("items") {
                    Some(Value::Array(items)) => items,
                    Some(Value::Null) | None => Vec::new(),
                    Some(other) => {
                        out.skipped
                            .push(format!("{place}: the `items` of a {kind} are {}, not an array", what(&other)));
                        Vec::new()
                    }
                };
                for (i, mut item) in items.into_iter().enumerate() {
                    if let (Value::Object(obj), Some(k)) = (&mut item, &item_kind) {
                        if !obj.contains_key("kind") {
                            obj.insert("kind".into(), Value::from(k.as_str()));
                            if let (false, Some(api)) = (obj.contains_key("apiVersion"), &api) {
                                obj.insert("apiVersion".into(), Value::from(api.as_str()));
                            }
                        }
                    }
                    flatten(item, &format!("{place}, {kind} item {}", i + 1), out);
                }
            }
            // A manifest says what it is.
            v @ Value::Object(_) if v.get("kind").is_some_and(Value::is_string) => out.objects.push(v),
            Value::Null => {}
            other => out.skipped.push(format!("{place}: {}, not a manifest", what(&other))),
        }
    }
    let mut out = Manifests::default();
    for (i, doc) in serde_yaml::Deserializer::from_str(yaml_text(text)?).enumerate() {
        // As a trace's values are read: a key twice is an error, not the last value quietly.
        let v = skel_trace::value_from(doc)?;
        flatten(v, &format!("document {}", i + 1), &mut out);
    }
    Ok(out)
}

/// How deep a quick scan lets `[` and `{` nest before serde_yaml reads YAML text: far past
/// serde_yaml's own limit of 128 levels (which reports deeper nesting as it reads), and low
/// enough for libyaml, whose time grows with the square of the nesting (100,000 levels took
/// half a minute before their error).
const YAML_SCAN_DEPTH: usize = 1000;

/// YAML text (or JSON) as serde_yaml should read it: a byte-order mark at its start is skipped,
/// and flow collections nested past `YAML_SCAN_DEPTH` are refused before libyaml sees them.
/// The scan skips comments and quoted scalars; a bracket in a plain or block scalar counts,
/// which only matters for a thousand of them unclosed.
pub fn yaml_text(text: &str) -> Result<&str, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let (mut quote, mut escaped, mut comment) = (None, false, false);
    // The last character outside whitespace on this line (`\n` at its start): a quote after
    // an indicator starts a quoted scalar; one inside a word (`it's`) does not.
    let (mut prev, mut last) = ('\n', '\n');
    for c in text.chars() {
        column += 1;
        if c == '\n' {
            (line, column, comment, prev, last) = (line + 1, 0, false, c, c);
            continue;
        }
        match quote {
            _ if comment => {}
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '#' if prev.is_whitespace() => comment = true,
                '"' | '\'' if matches!(last, '\n' | ':' | '-' | '?' | '[' | '{' | ',') => quote = Some(c),
                '[' | '{' => {
                    depth += 1;
                    if depth > YAML_SCAN_DEPTH {
                        return Err(format!(
                            "nested too deep at line {line} column {column}: YAML is read at most 128 levels deep"
                        ));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        if !c.is_whitespace() {
            last = c;
        }
        prev = c;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "node-role.kubernetes.io/master";

    /// A byte-order mark starts a manifest file; flow nesting past what serde_yaml reads is
    /// refused at once (libyaml took half a minute on 100,000 levels), brackets in quoted
    /// scalars and comments aside.
    #[test]
    fn yaml_text_skips_a_mark_and_refuses_deep_flow_nesting() {
        let m = parse_manifests("\u{feff}kind: Pod\nmetadata: {name: a}\n").expect("a manifest");
        assert_eq!(m.objects.len(), 1);
        let deep = format!("kind: A\nx: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse_manifests(&deep).expect_err("too deep");
        assert!(e.contains("nested too deep at line 2 column 1004"), "{e}");
        let deep = format!("kind: A\nx: {}1{}\n", "{\"a\": ".repeat(100_000), "}".repeat(100_000));
        assert!(parse_manifests(&deep).is_err());
        let brackets = "[".repeat(2000);
        let quoted = format!("kind: A\nx: \"{brackets}\"\ny: '{brackets}'\nz: [\"]\", '['] # {brackets}\n");
        assert_eq!(yaml_text(&quoted), Ok(quoted.as_str()));
        assert_eq!(parse_manifests(&quoted).map(|m| m.objects.len()), Ok(1));
        // A quote inside a word is not a quoted scalar: what follows is still scanned.
        assert!(yaml_text(&format!("x: it's {brackets}")).is_err());
    }

    fn scan(minor: u32, objects: &[(usize, i64, Value)]) -> Report {
        let mut s = Scanner::new(KubeVersion::v1(minor));
        let mut last = usize::MAX;
        for (event, ts, obj) in objects {
            if *event != last {
                s.event();
                last = *event;
            }
            s.object(*event, *ts, obj);
        }
        s.report()
    }

    fn ids(r: &Report) -> Vec<String> {
        r.findings.iter().map(Finding::id).collect()
    }

    /// What each target version finds: removals at or before it; the label and taint warn from
    /// 1.20 and are errors from 1.24; counts per object and per event.
    #[test]
    fn findings_depend_on_the_target() {
        let cron =
            json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "n"}});
        let pod = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "nodeSelector": {MASTER: ""}, "tolerations": [{"key": MASTER, "effect": "NoSchedule"}]}}}});
        let objects = [(0, 10, cron.clone()), (0, 10, cron.clone()), (1, 20, pod), (1, 20, cron)];
        assert!(ids(&scan(19, &objects)).is_empty());
        let r = scan(20, &objects);
        assert_eq!(ids(&r), [format!("label:{MASTER}"), format!("taint:{MASTER}")]);
        assert!(r.findings.iter().all(|f| f.severity == Severity::Warning));
        let r = scan(25, &objects);
        assert_eq!(
            ids(&r),
            ["removed-api:batch/v1beta1/CronJob".to_string(), format!("label:{MASTER}"), format!("taint:{MASTER}")]
        );
        assert!(r.findings.iter().all(|f| f.severity == Severity::Error));
        let cron_finding = &r.findings[0];
        assert_eq!((cron_finding.objects, cron_finding.events), (3, 2));
        assert_eq!((cron_finding.first_ts, cron_finding.last_ts), (10, 20));
        assert_eq!(cron_finding.example, "n/c");
        assert_eq!((r.objects, r.events), (4, 2));
    }

    /// Scanning in two parts and merging gives the report of one scan.
    #[test]
    fn merged_scans_equal_one_scan() {
        let objects: Vec<(usize, i64, Value)> = (0..6)
            .map(|i| {
                let obj = json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": format!("c{i}")},
                    "spec": {"schedule": format!("TZ=UTC {i} * * * *")}});
                (i / 2, i as i64, obj)
            })
            .collect();
        let whole = scan(29, &objects);
        let mut first = Scanner::new(KubeVersion::v1(29));
        let mut second = first.fork();
        for (part, range) in [(&mut first, 0..4), (&mut second, 4..6)] {
            let mut last = usize::MAX;
            for (event, ts, obj) in &objects[range] {
                if *event != last {
                    part.event();
                    last = *event;
                }
                part.object(*event, *ts, obj);
            }
        }
        first.merge(second);
        assert_eq!(first.report(), whole);
    }

    #[test]
    fn token_secrets_in_the_input_are_not_findings() {
        let sa = json!({"kind": "ServiceAccount", "metadata": {"name": "web", "namespace": "ns"}, "secrets": [{"name": "web-token-abcde"}]});
        let secret = json!({"kind": "Secret", "type": "kubernetes.io/service-account-token", "metadata": {"name": "web-token-abcde", "namespace": "ns"}});
        assert_eq!(ids(&scan(24, &[(0, 0, sa.clone())])), ["behaviour:sa-token-secret-autogen"]);
        assert!(ids(&scan(24, &[(0, 0, sa.clone()), (1, 1, secret)])).is_empty());
        assert!(ids(&scan(23, &[(0, 0, sa)])).is_empty());
    }

    #[test]
    fn typed_lists_give_their_items_a_kind() {
        let text = "apiVersion: policy/v1beta1\nkind: PodDisruptionBudgetList\nitems:\n- metadata: {name: a}\n- kind: Other\n  apiVersion: v9\n---\nkind: List\nitems: [{kind: Pod}]\n---\n- 3\n---\n";
        let m = parse_manifests(text).unwrap();
        let kinds: Vec<_> = m.objects.iter().map(|o| (o["apiVersion"].as_str(), o["kind"].as_str())).collect();
        assert_eq!(
            kinds,
            [(Some("policy/v1beta1"), Some("PodDisruptionBudget")), (Some("v9"), Some("Other")), (None, Some("Pod"))]
        );
        assert_eq!(m.skipped, ["document 3, item 1: a number, not a manifest"]);
    }

    /// A key twice in a manifest is an error, YAML or JSON, not the last value quietly.
    #[test]
    fn a_key_twice_is_an_error() {
        let yaml = parse_manifests("kind: Ingress\napiVersion: extensions/v1beta1\napiVersion: networking.k8s.io/v1\n");
        assert_eq!(yaml.err().as_deref(), Some("an object has `apiVersion` twice"));
        let json = parse_manifests(r#"{"kind": "Ingress", "metadata": {"name": "a", "name": "b"}}"#);
        assert!(json.as_ref().is_err_and(|e| e.starts_with("an object has `name` twice")), "{json:?}");
    }

    /// Every statement a fix can write compiles, for every rule in every place.
    #[test]
    fn fixes_compile() {
        let mut s = Scanner::new(KubeVersion::v1(37));
        for r in removals() {
            s.object(0, 1, &json!({"apiVersion": r.api_version(), "kind": r.kind, "metadata": {"name": "x"}}));
        }
        for h in hazards() {
            for obj in crate::kube::samples::samples(h) {
                s.object(1, 2, &obj);
            }
        }
        s.object(2, 3, &json!({"kind": "CronJob", "spec": {"schedule": "CRON_TZ=Asia/Tokyo 0 1 * * *"}}));
        s.object(2, 3, &json!({"kind": "Service", "spec": {"clusterIP": "010.0.0.5", "clusterIPs": ["010.0.0.5"]}}));
        s.object(
            2,
            3,
            &json!({"kind": "NetworkPolicy", "spec": {"egress": [{"to": [{"ipBlock": {"cidr": "10.1.0.0/8"}}]}]}}),
        );
        let report = s.report();
        let script = report.fix_script().expect("the formatter takes the fix script");
        if let Err(rejected) = crate::compile(&script) {
            panic!("{rejected:?}\n{script}");
        }
        assert_eq!(skel_grammar::format(&script).as_deref(), Ok(script.as_str()), "not in the canonical style");
        let fixable: Vec<_> = hazards().iter().filter(|h| h.fixable()).map(|h| h.id.clone()).collect();
        for id in fixable {
            let f = report.findings.iter().find(|f| f.id() == id);
            assert!(f.is_some_and(|f| !f.fix.is_empty()), "{id}: found and fixed nowhere");
        }
    }
}
