//! What `skel check` reads of a manifest: the paths the rules look at (the removed APIs by
//! `apiVersion` and `kind`, `hazards::Rules::scan`, and `upgrade::Scanner`'s examples), as a
//! `Shape`, so a manifest is decoded only that far (the rest is skipped, as the lazy decoder
//! skips what a program cannot see); and the texts one of which a manifest's bytes hold whenever
//! a rule can find something in it (a label or annotation key, a volume plugin, a removed
//! apiVersion's `beta`, `TZ=`, `-token`, ...), so a manifest without any is counted and not
//! decoded at all.
//!
//! Both come from the rules' data (`skel/data/hazards.yaml`: the keys, paths, volumes,
//! provisioners and kinds of the rules the target has; the versions of `apis::removals()` it
//! removed), from the pod-template places (`podspec`, and those the trace's config names) and,
//! for what the rules' code reads by itself, from the tables below (`CODE`, `POD_SPEC`,
//! `CODE_RULES`), which mirror `hazards::Rules::scan`: a change there that reads another field
//! or looks for another value must change them too. The tests compare this path's reports with
//! full decoding on every fixture and rule, and fail when they differ; a kind the code names,
//! or a rule found by code, that these tables do not know fails a test too.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use skel_trace::{Format, KeySeed, KindProbe, MsgpackReader, TraceError};

use super::apis::removals;
use super::hazards::{hazards, Family};
use super::podspec::PodPlaces;
use super::KubeVersion;
use crate::bytecode::{PathStep, Shape};

/// Groups of what the rules read: a manifest is decoded for the groups whose texts it holds
/// (see `Reads::groups`), each rule's finding needs one of its own group's texts.
pub type Groups = u16;
/// Every manifest's `apiVersion`, `kind` and name (the removed APIs, a finding's example).
const BASE: Groups = 1;
/// Node labels: in pod specs, a PersistentVolume's node affinity, a StorageClass's topologies.
const LABEL: Groups = 1 << 1;
/// Tolerations, in pod specs.
const TAINT: Groups = 1 << 2;
/// Annotations, of pod templates and of the object.
const ANNOTATION: Groups = 1 << 3;
/// The field rules' paths.
const FIELD: Groups = 1 << 4;
/// Volume plugins: pod volumes, a PersistentVolume's plugin, a StorageClass's provisioner.
const VOLUME: Groups = 1 << 5;
/// A CronJob's schedule.
const SCHEDULE: Groups = 1 << 6;
/// Addresses and CIDRs.
const ADDRESS: Groups = 1 << 7;
/// ServiceAccount token Secrets: named by pod specs and ServiceAccounts, and the Secrets.
const TOKEN: Groups = 1 << 8;
/// PodSecurityPolicy use: RBAC rules, the pod annotation.
const PSP: Groups = 1 << 9;
/// The Docker socket, mounted by pod volumes.
const DOCKER: Groups = 1 << 10;
/// Everything the rules read.
pub const ALL: Groups = (1 << 11) - 1;

/// What the rules' code reads of an object, beyond the data's paths, by kind (SKEL paths;
/// `[*]`: each element), and for which group.
const CODE: &[(&str, Groups, &str)] = &[
    ("PersistentVolume", LABEL, "spec.nodeAffinity"),
    ("StorageClass", LABEL, "allowedTopologies"),
    ("StorageClass", VOLUME, "provisioner"),
    ("CronJob", SCHEDULE, "spec.schedule"),
    ("ServiceAccount", TOKEN, "secrets"),
    ("Secret", TOKEN, "type"),
    ("ClusterRole", PSP, "rules"),
    ("Role", PSP, "rules"),
    // `hazards.rs`'s `IP_FIELDS`.
    ("Service", ADDRESS, "spec.clusterIP"),
    ("Service", ADDRESS, "spec.clusterIPs"),
    ("Service", ADDRESS, "spec.loadBalancerIP"),
    ("Service", ADDRESS, "spec.externalIPs"),
    ("Service", ADDRESS, "spec.loadBalancerSourceRanges"),
    ("NetworkPolicy", ADDRESS, "spec.ingress"),
    ("NetworkPolicy", ADDRESS, "spec.egress"),
    ("Endpoints", ADDRESS, "subsets"),
    ("EndpointSlice", ADDRESS, "endpoints"),
    ("Node", ADDRESS, "spec.podCIDR"),
    ("Node", ADDRESS, "spec.podCIDRs"),
];

/// What every object is read for: which API it is, and its name (a finding's example).
const EVERY: &[&str] = &["apiVersion", "kind", "metadata.name", "metadata.namespace"];

/// What the rules read of a pod template (the object holding `metadata` and `spec`), and for
/// which group.
const POD: &[(Groups, &str)] = &[
    (ANNOTATION | PSP, "metadata.annotations"),
    (LABEL, "spec.nodeSelector"),
    (LABEL, "spec.affinity"),
    (LABEL, "spec.topologySpreadConstraints"),
    (TAINT, "spec.tolerations"),
    (VOLUME | TOKEN | DOCKER, "spec.volumes"),
    (ADDRESS, "spec.hostAliases"),
    (TOKEN, "spec.containers[*].env[*].valueFrom.secretKeyRef.name"),
    (TOKEN, "spec.containers[*].envFrom[*].secretRef.name"),
    (TOKEN, "spec.initContainers[*].env[*].valueFrom.secretKeyRef.name"),
    (TOKEN, "spec.initContainers[*].envFrom[*].secretRef.name"),
];

/// One step of a path to read.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Elem,
}

/// A SKEL path of the tables above as steps.
fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        match seg.strip_suffix("[*]") {
            Some(key) => {
                out.push(Step::Key(key.to_string()));
                out.push(Step::Elem);
            }
            None => out.push(Step::Key(seg.to_string())),
        }
    }
    out
}

/// What the rules found by code (validation and behaviour rules, by id) look for: their group,
/// texts one of which a manifest holds when the rule finds something in it, and kinds it reads
/// whatever they hold.
const CODE_RULES: &[(&str, Groups, &[&str], &[&str])] = &[
    // `TZ=ZONE ...` or `CRON_TZ=ZONE ...` in a CronJob's schedule.
    ("validation:CronJob.spec.schedule-timezone", SCHEDULE, &["TZ="], &[]),
    // Any address can be one strict validation rejects: the kinds of `IP_FIELDS`, and a pod's
    // host aliases.
    (
        "validation:ip-cidr-strict",
        ADDRESS,
        &["hostAliases"],
        &["Service", "NetworkPolicy", "Endpoints", "EndpointSlice", "Node"],
    ),
    // Token Secrets named anywhere (`SA-token-xxxxx`), and the Secrets that are one
    // (`kubernetes.io/service-account-token`).
    ("behaviour:sa-token-secret-autogen", TOKEN, &["-token"], &[]),
    // RBAC rules on `podsecuritypolicies`, the `kubernetes.io/psp` pod annotation.
    ("behaviour:psp-admission", PSP, &["policies", "/psp"], &[]),
    // `/var/run/docker.sock`, `/run/dockershim.sock`, ...
    ("behaviour:dockershim-socket", DOCKER, &["docker"], &[]),
];

/// A part of a text the rules look for (so every manifest that holds the text holds it too),
/// chosen to be found fast: the pattern search slows down with each place in a manifest that
/// starts like a needle, and with the number of needles. `alpha` or `beta` for a text that
/// has it (the apiVersions removed, the keys of the `alpha.` and `beta.` domains); the `/NAME`
/// of a `kubernetes.io/NAME` key; a camel-case word from the letter before its first capital
/// (`fLink`, `gSource`, `eIO`); else the text.
fn rarer(text: &str) -> &str {
    for word in ["alpha", "beta"] {
        if text.contains(word) {
            return word;
        }
    }
    if let Some(at) = text.rfind("kubernetes.io/") {
        return &text[at + "kubernetes.io".len()..];
    }
    let bytes = text.as_bytes();
    match bytes.windows(2).position(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase()) {
        Some(at) => &text[at..],
        None => text,
    }
}

/// What `skel check` at one target version reads of a trace's manifests (see the module docs).
#[derive(Debug, Clone)]
pub struct Reads {
    target: KubeVersion,
    /// Kinds whose manifests are read whole (for everything the rules read), whatever they
    /// hold.
    always: HashSet<String>,
    /// The texts one of which a manifest holds whenever a rule can find something in it (a
    /// part of each, see `rarer`; none holds another), as one pattern, with the groups each is
    /// for; `None`: every manifest is read whole (a rule whose texts are not known here, or a
    /// pattern that cannot be built).
    needles: Option<(regex::bytes::Regex, BTreeMap<String, Groups>)>,
    /// The JSON escapes that can stand for a needle's characters (`\u`, `\/`).
    escapes: Option<regex::bytes::Regex>,
    /// The pod-template places: the built-in ones and those the trace's config names.
    places: PodPlaces,
    /// The shape of each combination of groups, made when first needed ...
    shapes: Vec<OnceLock<Shape>>,
    /// ... and of them all.
    all: Shape,
}

impl Reads {
    /// What the rules `target` has read, with the built-in pod-template places.
    pub fn new(target: KubeVersion) -> Reads {
        let mut always: HashSet<String> = HashSet::new();
        let mut needles: BTreeMap<String, Groups> = BTreeMap::new();
        let mut known = true;
        let mut add = |text: &str, groups: Groups| *needles.entry(rarer(text).to_string()).or_default() |= groups;
        for r in removals().iter().filter(|r| r.removed() <= target) {
            // The apiVersion's `alpha` or `beta`; a kind of another removed version (`v1`, which
            // every object of a group names) is read whatever it holds.
            match rarer(&r.version) {
                word if word != r.version => add(word, BASE),
                _ => {
                    always.insert(r.kind.clone());
                }
            }
        }
        for h in hazards().iter().filter(|h| h.severity_at(target).is_some()) {
            match h.family {
                // A key, or a key prefix (`PREFIX/*`).
                Family::Label => h.key.iter().for_each(|k| add(k, LABEL)),
                Family::Taint => h.key.iter().for_each(|k| add(k, TAINT)),
                Family::Annotation => h.key.iter().for_each(|k| add(k.trim_end_matches('*'), ANNOTATION)),
                Family::Field => h.path.iter().filter_map(|p| p.rsplit('.').next()).for_each(|k| add(k, FIELD)),
                Family::Volume | Family::VolumeCsi => {
                    h.volume.iter().chain(&h.provisioners).for_each(|v| add(v, VOLUME))
                }
                Family::DeprecatedApi => always.extend(h.kind.iter().cloned()),
                Family::Validation | Family::Behaviour => match CODE_RULES.iter().find(|(id, ..)| *id == h.id) {
                    Some((_, group, texts, kinds)) => {
                        texts.iter().for_each(|t| add(t, *group));
                        always.extend(kinds.iter().map(|k| (*k).to_string()));
                    }
                    None => known = false,
                },
            }
        }
        // A needle that holds another is found whenever it is: that one reads for both.
        needles.remove("");
        let mut by_length: Vec<(String, Groups)> = std::mem::take(&mut needles).into_iter().collect();
        by_length.sort_by_key(|(n, _)| n.len());
        for (n, g) in by_length {
            match needles.iter_mut().find(|(m, _)| n.contains(m.as_str())) {
                Some((_, groups)) => *groups |= g,
                None => {
                    needles.insert(n, g);
                }
            }
        }
        let words: Vec<String> = needles.keys().map(|n| regex::escape(n)).collect();
        let pattern = regex::bytes::Regex::new(&words.join("|")).ok().filter(|_| known);
        let needles = pattern.map(|pattern| (pattern, needles));
        let escapes = regex::bytes::Regex::new(r"\\[u/]").ok();
        let mut reads = Reads {
            target,
            always,
            needles,
            escapes,
            places: PodPlaces::default(),
            shapes: fresh_shapes(),
            all: Shape::default(),
        };
        reads.all = reads.derive_shape(ALL);
        reads
    }

    /// Reads pod templates where the trace's config says a tracked kind has them too (a JSON
    /// pointer such as `/spec/template`), as `upgrade::Scanner::pod_template_path` looks for
    /// them. (Whatever the kind: what the pod rules look for is a needle in any manifest.)
    pub fn pod_template_path(&mut self, gvk: &str, pointer: &str) {
        self.places.add_config_path(gvk, pointer);
        self.shapes = fresh_shapes();
        self.all = self.derive_shape(ALL);
    }

    /// What to read of a manifest still encoded (`bytes`, its `kind` probed): the groups whose
    /// texts its bytes hold, or every group for a kind read whole (or when that cannot be told:
    /// a kind not probed, JSON escapes that can hide a text). `0`: the rules can find nothing
    /// in it.
    pub fn groups(&self, kind: &KindProbe<'_>, bytes: &[u8], format: Format) -> Groups {
        let (KindProbe::Known(kind), Some((pattern, needles)), Some(escapes)) = (kind, &self.needles, &self.escapes)
        else {
            return ALL;
        };
        if self.always.contains(kind.as_deref().unwrap_or("")) || (format == Format::Json && escapes.is_match(bytes)) {
            return ALL;
        }
        // Every place a needle starts: at most one starts at a place, as none holds another.
        let mut found = 0;
        let mut at = 0;
        while let Some(m) = pattern.find_at(bytes, at) {
            let text = std::str::from_utf8(m.as_bytes()).unwrap_or_default();
            found |= needles.get(text).copied().unwrap_or(ALL);
            at = m.start() + 1;
        }
        found
    }

    /// The parts of a manifest the rules of `groups` read.
    pub fn shape(&self, groups: Groups) -> &Shape {
        match self.shapes.get(usize::from(groups)) {
            Some(cell) if groups != ALL => cell.get_or_init(|| self.derive_shape(groups)),
            _ => &self.all,
        }
    }

    fn derive_shape(&self, groups: Groups) -> Shape {
        let mut paths: Vec<Vec<Step>> = EVERY.iter().map(|p| steps(p)).collect();
        paths.extend(CODE.iter().filter(|(_, g, _)| g & groups != 0).map(|(_, _, p)| steps(p)));
        for h in hazards().iter().filter(|h| h.severity_at(self.target).is_some()) {
            match h.family {
                Family::Field if groups & FIELD != 0 => paths.extend(h.path.iter().map(|p| steps(p))),
                Family::Annotation if groups & ANNOTATION != 0 => paths.push(steps("metadata.annotations")),
                // A PersistentVolume's plugin key (a pod's volumes are read whole).
                Family::Volume | Family::VolumeCsi if groups & VOLUME != 0 => {
                    paths.extend(h.volume.iter().map(|v| vec![Step::Key("spec".into()), Step::Key(v.clone())]));
                }
                _ => {}
            }
        }
        // Each pod-template place: a key that is an index may be one in an array.
        let mut places: Vec<Vec<Step>> = Vec::new();
        for keys in self.places.keys() {
            let mut variants: Vec<Vec<Step>> = vec![Vec::new()];
            for key in keys {
                let index = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
                let mut next = Vec::new();
                for v in variants {
                    let mut by_key = v.clone();
                    by_key.push(Step::Key(key.clone()));
                    next.push(by_key);
                    if index {
                        let mut by_elem = v;
                        by_elem.push(Step::Elem);
                        next.push(by_elem);
                    }
                }
                variants = next;
            }
            places.extend(variants);
        }
        let pod: Vec<&str> = POD.iter().filter(|(g, _)| g & groups != 0).map(|(_, read)| *read).collect();
        // A template is one where it has a `spec` object, which the rules look for first.
        let mut walks = Vec::new();
        for place in places.iter().filter(|_| !pod.is_empty()) {
            let mut spec = place.clone();
            spec.push(Step::Key("spec".into()));
            walks.push(spec);
            for read in &pod {
                let mut path = place.clone();
                path.extend(steps(read));
                paths.push(path);
            }
        }
        let mut shape = Shape::default();
        for (path, full) in paths.iter().map(|p| (p, true)).chain(walks.iter().map(|p| (p, false))) {
            let segs = path.iter().map(|s| match s {
                Step::Key(k) => PathStep::Key(k),
                Step::Elem => PathStep::Elem,
            });
            shape.insert(segs, full);
        }
        shape
    }

    /// The parts of a manifest (`bytes`, a map) that the rules of `groups` read, as a value:
    /// decoded as far as their shape reaches, the rest skipped. The manifest was checked by the
    /// event's decoder (`decode_raw_event`): a walk that only finds where the parts it skips
    /// end takes it, and anything it does not expect goes to serde's decoder, which checks
    /// every byte (and says what is wrong).
    pub fn value(&self, bytes: &[u8], format: Format, groups: Groups) -> Result<Value, TraceError> {
        let shape = self.shape(groups);
        let walked = match format {
            Format::Json => {
                let mut walk = JsonWalk { b: bytes, i: 0 };
                walk.ws();
                walk.value(shape).filter(|_| {
                    walk.ws();
                    walk.i == bytes.len()
                })
            }
            Format::Msgpack => {
                let mut r = MsgpackReader::new(bytes);
                msgpack_value(&mut r, shape).filter(|_| r.pos() == bytes.len())
            }
        };
        match walked {
            Some(value) => Ok(value),
            // Something the walk does not expect: the careful decoder names what is wrong (a
            // key twice, say), or serde's decodes what is odd but right.
            None => match skel_trace::decode_manifest(bytes, format) {
                Err(careful) => Err(careful),
                Ok(_) => Self::decode(bytes, format, shape),
            },
        }
    }

    /// `value`, by serde's decoders.
    fn decode(bytes: &[u8], format: Format, shape: &Shape) -> Result<Value, TraceError> {
        let syntax = |message: String| TraceError::Syntax { format, message, location: Box::default() };
        match format {
            Format::Json => {
                let mut de = serde_json::Deserializer::from_slice(bytes);
                let value = Shaped(shape).deserialize(&mut de).map_err(|e| syntax(e.to_string()))?;
                de.end().map_err(|e| syntax(e.to_string()))?;
                Ok(value)
            }
            Format::Msgpack => {
                let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
                Shaped(shape).deserialize(&mut de).map_err(|e| syntax(e.to_string()))
            }
        }
    }
}

/// A msgpack value decoded as far as `shape` reaches (see `Shaped`): what it skips is walked
/// for its structure only, what it keeps is decoded by rmp-serde.
fn msgpack_value(r: &mut MsgpackReader<'_>, shape: &Shape) -> Option<Value> {
    let start = r.pos();
    if !shape.full && r.at_map() {
        let mut out = Map::new();
        for _ in 0..r.map_len()? {
            let key = r.str_bytes()?;
            match shape.key_bytes(key) {
                // A key twice is for the careful decoder to name.
                Some(child) => {
                    let key = std::str::from_utf8(key).ok()?.to_string();
                    let value = msgpack_value(r, child)?;
                    if out.insert(key, value).is_some() {
                        return None;
                    }
                }
                None => {
                    skel_trace::utf8(key).then_some(())?;
                    r.skip()?;
                }
            }
        }
        return Some(Value::Object(out));
    }
    if let (false, Some(elems), true) = (shape.full, &shape.elems, r.at_array()) {
        let n = r.array_len()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(msgpack_value(r, elems)?);
        }
        return Some(Value::Array(out));
    }
    r.skip()?;
    skel_trace::decode_manifest(r.since(start), Format::Msgpack).ok()
}

/// A walk through JSON text that is known to be valid, decoding values as far as a shape
/// reaches (see `Shaped`): what it keeps is decoded by serde_json, what it skips is only
/// scanned for where it ends. `None` for anything it does not expect.
struct JsonWalk<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonWalk<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn next_is(&mut self, byte: u8) -> bool {
        self.ws();
        let found = self.b.get(self.i) == Some(&byte);
        if found {
            self.i += 1;
        }
        found
    }

    fn value(&mut self, shape: &Shape) -> Option<Value> {
        let start = self.i;
        match (*self.b.get(self.i)?, &shape.elems) {
            (b'{', _) if !shape.full => self.object(shape),
            (b'[', Some(elems)) if !shape.full => self.array(elems),
            _ => {
                self.skip()?;
                skel_trace::decode_manifest(self.b.get(start..self.i)?, Format::Json).ok()
            }
        }
    }

    fn object(&mut self, shape: &Shape) -> Option<Value> {
        self.i += 1;
        let mut out = Map::new();
        if self.next_is(b'}') {
            return Some(Value::Object(out));
        }
        loop {
            self.ws();
            let start = self.i;
            let escaped = self.string()?;
            let text = self.b.get(start..self.i)?;
            let key: std::borrow::Cow<'_, str> = match escaped {
                false => std::str::from_utf8(text.get(1..text.len() - 1)?).ok()?.into(),
                true => serde_json::from_slice::<String>(text).ok()?.into(),
            };
            if !self.next_is(b':') {
                return None;
            }
            self.ws();
            match shape.key(&key) {
                // A key twice is for the careful decoder to name.
                Some(child) => {
                    let value = self.value(child)?;
                    if out.insert(key.into_owned(), value).is_some() {
                        return None;
                    }
                }
                None => self.skip()?,
            }
            if self.next_is(b'}') {
                return Some(Value::Object(out));
            }
            if !self.next_is(b',') {
                return None;
            }
        }
    }

    fn array(&mut self, elems: &Shape) -> Option<Value> {
        self.i += 1;
        let mut out = Vec::new();
        if self.next_is(b']') {
            return Some(Value::Array(out));
        }
        loop {
            self.ws();
            out.push(self.value(elems)?);
            if self.next_is(b']') {
                return Some(Value::Array(out));
            }
            if !self.next_is(b',') {
                return None;
            }
        }
    }

    /// Moves past the string that starts here; whether it has escapes.
    fn string(&mut self) -> Option<bool> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let mut escaped = false;
        let mut at = self.i + 1;
        loop {
            at += self.b.get(at..)?.iter().position(|&c| c == b'"' || c == b'\\')?;
            if self.b.get(at) == Some(&b'"') {
                self.i = at + 1;
                return Some(escaped);
            }
            escaped = true;
            at += 2;
        }
    }

    /// Moves past the value that starts here.
    fn skip(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.i += 1;
                }
                // A number, `true`, `false` or `null`, up to what follows it.
                _ if depth == 0 => {
                    let rest = self.b.get(self.i..)?;
                    let n = rest
                        .iter()
                        .position(|&c| matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                        .unwrap_or(rest.len());
                    self.i += n;
                    return (n > 0).then_some(());
                }
                // Inside an array or object: on to the next string or bracket.
                _ => {
                    let rest = self.b.get(self.i..)?;
                    self.i += rest.iter().position(|&c| matches!(c, b'"' | b'{' | b'[' | b'}' | b']'))?;
                }
            }
            if depth == 0 {
                return Some(());
            }
        }
    }
}

/// An empty cache of shapes, one for each combination of groups.
fn fresh_shapes() -> Vec<OnceLock<Shape>> {
    (0..ALL).map(|_| OnceLock::new()).collect()
}

/// A value decoded as far as a shape reaches: a map keeps the keys the shape has, an array's
/// elements are decoded along the shape's `elems` (whole without), a `full` part whole.
struct Shaped<'s>(&'s Shape);

impl<'de> DeserializeSeed<'de> for Shaped<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.0.full {
            Value::deserialize(d)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Shaped<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a manifest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.0.key(&key) {
                Some(child) => {
                    let value = map.next_value_seed(Shaped(child))?;
                    if out.insert(key.into_owned(), value).is_some() {
                        return Err(de::Error::custom("a key twice"));
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        match &self.0.elems {
            Some(elems) => {
                while let Some(v) = seq.next_element_seed(Shaped(elems))? {
                    out.push(v);
                }
            }
            None => {
                while let Some(v) = seq.next_element::<Value>()? {
                    out.push(v);
                }
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::json;
    use skel_trace::{
        read_trace, Config, Event, PodLifecycle, PodLifecycleEntry, PodLifecycles, Section, TraceVisitor, TraceWriter,
    };

    use super::*;
    use crate::stream::{check, check_section, VisitOptions};
    use crate::upgrade::{parse_manifests, Report, Scanner};

    /// The target versions every comparison runs at.
    const TARGETS: [u32; 5] = [16, 22, 25, 29, 37];

    /// The report of the plain scan: every object decoded whole by the sequential reader, and
    /// given to `Scanner::object` in order.
    fn plain(trace: &[u8], format: Format, target: KubeVersion) -> Report {
        struct Plain(Scanner);
        impl TraceVisitor for Plain {
            type Error = std::convert::Infallible;
            fn section(&mut self, section: Section) -> Result<(), Self::Error> {
                check_section(&mut self.0, &section);
                Ok(())
            }
            fn event(&mut self, index: usize, event: Event) -> Result<(), Self::Error> {
                self.0.event();
                for obj in event.applied_objs.iter().chain(&event.deleted_objs) {
                    self.0.object(index, event.ts, obj);
                }
                Ok(())
            }
        }
        let mut scan = Plain(Scanner::new(target));
        if let Err(e) = read_trace(trace, format, &mut scan) {
            panic!("not a trace: {e:?}");
        }
        scan.0.report()
    }

    /// The fast path's report is the plain one at every target, on one thread and on several,
    /// with batches of one event and of several.
    fn assert_same(name: &str, trace: &[u8], format: Format) -> Vec<Report> {
        let mut reports = Vec::new();
        for minor in TARGETS {
            let target = KubeVersion::v1(minor);
            let want = plain(trace, format, target);
            for (jobs, batch_bytes) in [(1, 1 << 20), (1, 1), (2, 4096), (3, 1)] {
                let opts = VisitOptions { jobs, format, batch_bytes };
                let got = match check(trace, opts, target) {
                    Ok(scanner) => scanner.report(),
                    Err(e) => panic!("{name}: {e}"),
                };
                assert_eq!(got, want, "{name} ({format}) at {target}, {jobs} jobs, batches of {batch_bytes} bytes");
            }
            reports.push(want);
        }
        reports
    }

    /// A trace of these events (lists of manifests; the last third of each deleted), with a
    /// config that names pod-template places of its own and removed kinds, and pod lifecycles
    /// of a removed kind.
    fn trace_of(events: &[Vec<Value>], format: Format) -> Vec<u8> {
        let config = json!({"trackedObjects": {
            "apps/v1.Deployment": {"podSpecTemplatePaths": ["/spec/template"]},
            "batch/v1beta1.CronJob": {"podSpecTemplatePaths": ["/spec/jobTemplate/spec/template"]},
            "example.com/v1.Runner": {"podSpecTemplatePaths": ["/spec/pod-template"]},
            "example.com/v1.Fleet": {"podSpecTemplatePaths": ["/spec/groups/0/template", "/spec/a~1b"]},
        }});
        let owner = PodLifecycleEntry {
            gvk: "extensions/v1beta1.ReplicaSet".into(),
            ns_name: "ns/rs".into(),
            pods: vec![(1, vec![PodLifecycle::Finished(1, 2)])],
        };
        let written = (|| {
            let mut w = TraceWriter::new(std::io::Cursor::new(Vec::new()), format);
            w.section(&Section::Version(2))?;
            w.section(&Section::Config(Config::from_json_value(&config)?))?;
            w.begin_events()?;
            for (i, objs) in events.iter().enumerate() {
                let (applied, deleted) = objs.split_at(objs.len() - objs.len() / 3);
                let ts = 100 + i as i64;
                w.event(&Event { ts, applied_objs: applied.to_vec(), deleted_objs: deleted.to_vec() })?;
            }
            w.section(&Section::Index(json!({})))?;
            w.section(&Section::PodLifecycles(PodLifecycles::new(vec![owner])))?;
            w.finish()
        })();
        match written {
            Ok(out) => out.into_inner(),
            Err(e) => panic!("{e}"),
        }
    }

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// The upgrade-hazard fixtures of `tests/data/check/hazards` (manifests as people ship them,
    /// one theme a file, with near misses), one event a file.
    #[test]
    fn hazard_fixtures_report_the_same() {
        let dir = repo().join("tests/data/check/hazards");
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("expected.yaml"));
        files.sort();
        assert!(files.len() > 20, "the fixtures in {}", dir.display());
        let events: Vec<Vec<Value>> = files
            .iter()
            .map(|f| parse_manifests(&std::fs::read_to_string(f).unwrap_or_default()).unwrap_or_default().objects)
            .filter(|objs| !objs.is_empty())
            .collect();
        for format in [Format::Json, Format::Msgpack] {
            let reports = assert_same("hazard fixtures", &trace_of(&events, format), format);
            // Not vacuous: most rules are found at the last target.
            let last = reports.last().map_or(0, |r| r.findings.len());
            assert!(last > 30, "{last} findings");
        }
    }

    /// Every rule in every place (as `upgrade`'s `fixes_compile` makes them), and manifests
    /// that the shape, the prefilter and the decoding walks must not misread.
    #[test]
    fn every_rule_and_odd_manifests_report_the_same() {
        let mut events = Vec::new();
        for h in hazards() {
            let objs = super::super::samples::samples(h);
            events.push(objs);
        }
        events.push(vec![
            json!({"kind": "ServiceAccount", "metadata": {"name": "web", "namespace": "ns"}, "secrets": [{"name": "web-token-abcde"}, {"name": "x"}]}),
            json!({"kind": "Secret", "type": "kubernetes.io/service-account-token", "metadata": {"name": "b-token-fghij", "namespace": "ns"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"},
                "rules": [{"resources": ["podsecuritypolicies"], "verbs": ["use"]}]}),
            json!({"kind": "Role", "rules": [{"resources": ["*"], "verbs": ["*"]}]}),
            json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c", "selfLink": "/s"},
                "spec": {"schedule": "TZ=Europe/Paris 0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {"tolerations": [{"key": "node-role.kubernetes.io/master"}]}}}}}}),
            json!({"kind": "Service", "metadata": {"name": "s", "annotations": {"service.alpha.kubernetes.io/tolerate-unready-endpoints": "true"}},
                "spec": {"clusterIP": "010.0.0.1", "clusterIPs": ["10.0.0.01"], "loadBalancerIP": "1.2.3.04", "externalIPs": ["5.6.7.08"],
                    "loadBalancerSourceRanges": ["192.168.0.5/24"], "topologyKeys": ["*"], "ipFamily": "IPv4"}}),
            json!({"kind": "NetworkPolicy", "spec": {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.1/8", "except": ["10.1.0.1/16"]}}]}],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/08"}}]}]}}),
            json!({"apiVersion": "v1", "kind": "Endpoints", "subsets": [{"addresses": [{"ip": "010.0.0.2"}], "notReadyAddresses": [{"ip": "10.0.0.03"}]}]}),
            json!({"kind": "EndpointSlice", "endpoints": [{"addresses": ["010.0.0.4"]}]}),
            json!({"kind": "Node", "metadata": {"name": "n"}, "spec": {"podCIDR": "10.244.1.0/16", "podCIDRs": ["10.244.1.0/16"], "configSource": {}}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "plain", "selfLink": "/api/v1/x"}, "data": {"template": "spec"}}),
            json!({"kind": "Widget", "spec": {"template": {"spec": "not an object"}}}),
            json!({"kind": "Widget", "spec": {"template": {"metadata": {"annotations": {"kubernetes.io/psp": "p"}}, "spec": {}}}}),
            json!({"kind": "Widget", "template": {"spec": {"tolerations": [{"key": "node-role.kubernetes.io/master"}]}}}),
            json!({"kind": "Widget", "spec": {"nodeSelector": {"node-role.kubernetes.io/master": ""}}}),
            json!({"kind": "Fleet", "spec": {"groups": {"0": {"template": {"spec": {"volumes": [{"name": "g", "gitRepo": {}}]}}}}}}),
            json!({"kind": "Service", "spec": [1, 2], "metadata": "m"}),
            json!({"kind": "Pod", "spec": {"volumes": {"not": "a list"}, "containers": {"c": 1}, "nodeSelector": [1]}}),
            json!({"metadata": {"name": "no kind"}, "spec": {"template": {"spec": {"nodeSelector": {"beta.kubernetes.io/os": "linux"}}}}}),
            json!({"kind": 3, "spec": {"template": {"spec": {"tolerations": [{"key": "node-role.kubernetes.io/master"}]}}}}),
            json!({"kind": "ConfigMap"}),
        ]);
        for format in [Format::Json, Format::Msgpack] {
            assert_same("every rule", &trace_of(&events, format), format);
        }
        // JSON the writers above never write: escaped keys and values, spaces. (A repeated key
        // is an error of the careful reader.)
        let odd = r#"{"version": 2, "config": {"trackedObjects": {}}, "events": [
            {"ts": 1, "applied_objs": [
                {"kind": "ConfigMap", "metadata": {"name": "a", "sel\u0066Link": "/api/v1/x"}},
                {"kind": "Po\u0064", "metadata": {"name": "p"}, "spec": {"nodeSelector": {"node-role.kubernetes.io/master": ""}}},
                {"kind": "W", "sp\u0065c": {"templat\u0065": {"spec": {"tolerations": [{"key": "node-role.kubernetes.io/master"}]}}}},
                {"kind": "Service", "metadata": {"name": "dup"}, "spec": {"clusterIP": "10.0.0.1", "topologyKeys": ["x"]}},
                {"kind": "Deployment", "x\u0041": 1, "spec": {"template": {"spec": {"nodeSelector": {"beta.kubernetes.io/arch": "amd64"}}}}}
            ], "deleted_objs": [ { "apiVersion" : "extensions/v1beta1" , "kind" : "Ingress" , "metadata" : { "name" : "i" } } ]},
            {"ts": 2, "deleted_objs": [], "applied_objs": [{"kind": "CronJob", "spec": {"schedule": "CRON_TZ=UTC 0 * * * *"}}], "extra": [1]}
        ], "index": {}, "pod_lifecycles": {}}"#;
        assert_same("odd JSON", odd.as_bytes(), Format::Json);
    }

    /// Synthetic SimKube traces (`skel_trace::synth`), in both formats.
    #[test]
    fn generated_traces_report_the_same() {
        for seed in 1..=3 {
            for format in [Format::Json, Format::Msgpack] {
                let mut out = std::io::Cursor::new(Vec::new());
                if let Err(e) = skel_trace::synth::write_trace(&mut out, format, seed, 300_000) {
                    panic!("{e}");
                }
                let reports = assert_same(&format!("synth seed {seed}"), out.get_ref(), format);
                assert!(reports.iter().any(Report::has_findings));
            }
        }
    }

    /// The SimKube traces of `../shared/traces` (skipped, with a message, when it is missing).
    #[test]
    fn shared_traces_report_the_same() {
        let dir = repo().join("../shared/traces");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("skipped: {} does not exist", dir.display());
            return;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        let mut seen = 0;
        for path in files {
            let format = match path.extension().and_then(|e| e.to_str()) {
                Some("json") => Format::Json,
                Some("sktrace") => Format::Msgpack,
                _ => continue,
            };
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert_same(&path.display().to_string(), &bytes, format);
            seen += 1;
        }
        assert!(seen > 0, "no traces in {}", dir.display());
    }

    /// The kinds the rules' code names (`match kind` arms and comparisons in `hazards.rs`) are
    /// all in `CODE`: a kind read there and not here would be skipped.
    #[test]
    fn code_kinds_mirror_the_rules() {
        let source = include_str!("hazards.rs");
        let code = source.split("\nmod tests").next().unwrap_or(source);
        let not_kinds = ["Exists"];
        let mut missing = Vec::new();
        for literal in code.split('"').skip(1).step_by(2) {
            let kind_like = literal.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && literal.chars().all(|c| c.is_ascii_alphanumeric());
            if kind_like && !not_kinds.contains(&literal) && !CODE.iter().any(|(k, ..)| *k == literal) {
                missing.push(literal);
            }
        }
        assert!(missing.is_empty(), "kinds hazards.rs reads that shape.rs does not: {missing:?}");
    }

    /// The walks that skip what they do not keep give what serde's decoders give, and take
    /// every manifest of the fixtures and of a generated trace (none falls back to serde).
    #[test]
    fn walks_agree_with_serde() {
        let mut objects = Vec::new();
        let dir = repo().join("tests/data/check/hazards");
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            objects.extend(parse_manifests(&text).unwrap_or_default().objects);
        }
        let mut out = std::io::Cursor::new(Vec::new());
        if let Err(e) = skel_trace::synth::write_trace(&mut out, Format::Json, 7, 200_000) {
            panic!("{e}");
        }
        let trace: Value = serde_json::from_slice(out.get_ref()).unwrap_or_default();
        for event in trace["events"].as_array().into_iter().flatten() {
            objects.extend(event["applied_objs"].as_array().into_iter().flatten().cloned());
        }
        assert!(objects.len() > 100, "{}", objects.len());
        let mut reads = Reads::new(KubeVersion::v1(37));
        reads.pod_template_path("example.com/v1.Fleet", "/spec/groups/0/template");
        for obj in &objects {
            let pretty = serde_json::to_vec_pretty(obj).unwrap_or_default();
            for (bytes, format) in [
                (serde_json::to_vec(obj).unwrap_or_default(), Format::Json),
                (pretty, Format::Json),
                (rmp_serde::to_vec_named(obj).unwrap_or_default(), Format::Msgpack),
            ] {
                let walked = match format {
                    Format::Json => {
                        let mut walk = JsonWalk { b: &bytes, i: 0 };
                        walk.value(reads.shape(ALL))
                    }
                    Format::Msgpack => msgpack_value(&mut MsgpackReader::new(&bytes), reads.shape(ALL)),
                };
                let decoded = Reads::decode(&bytes, format, reads.shape(ALL)).ok();
                assert!(walked.is_some(), "{format}: {obj}");
                assert_eq!(walked, decoded, "{format}: {obj}");
            }
        }
    }

    /// Every rule found by code has its texts and kinds here: one unknown would make every
    /// manifest be read (correct, and slow).
    #[test]
    fn code_rules_are_known() {
        for h in hazards().iter().filter(|h| matches!(h.family, Family::Validation | Family::Behaviour)) {
            assert!(CODE_RULES.iter().any(|(id, ..)| *id == h.id), "{}: add it to CODE_RULES", h.id);
        }
        assert!(Reads::new(KubeVersion::v1(37)).needles.is_some());
    }

    /// A manifest is read for the groups whose texts its bytes hold, and skipped when it holds
    /// none (unless that cannot be told).
    #[test]
    fn groups_by_bytes() {
        let reads = Reads::new(KubeVersion::v1(25));
        let kind = |k: &'static str| KindProbe::Known(Some(k.into()));
        let json = |k: &'static str, text: &str| reads.groups(&kind(k), text.as_bytes(), Format::Json);
        assert_eq!(json("ConfigMap", r#"{"kind": "ConfigMap", "data": {"a": "b\"\n"}}"#), 0);
        assert_eq!(json("Deployment", r#"{"spec": {"template": {"spec": {"nodeSelector": {"a": "b"}}}}}"#), 0);
        let selector = r#"{"spec": {"template": {"spec": {"nodeSelector": {"beta.kubernetes.io/os": "linux"}}}}}"#;
        assert_ne!(json("Deployment", selector) & LABEL, 0);
        assert_eq!(json("ConfigMap", r#"{"kind": "ConfigMap", "metadata": {"selfLink": "x"}}"#), FIELD);
        let toleration = r#"{"spec": {"tolerations": [{"key": "node-role.kubernetes.io/master"}]}}"#;
        assert_eq!(json("Pod", toleration), LABEL | TAINT);
        assert_eq!(json("CronJob", r#"{"spec": {"schedule": "CRON_TZ=UTC 0 * * * *"}}"#), SCHEDULE);
        assert_ne!(json("CronJob", r#"{"apiVersion": "batch/v1beta1"}"#) & BASE, 0);
        // An escape can hide a needle's letters or slashes.
        assert_eq!(json("ConfigMap", r#"{"kind": "ConfigMap", "metadata": {"sel\u0066Link": "x"}}"#), ALL);
        assert_eq!(json("Pod", r#"{"metadata": {"annotations": {"kubernetes.io\/psp": "p"}}}"#), ALL);
        assert_eq!(reads.groups(&KindProbe::Unknown, b"{}", Format::Msgpack), ALL);
        // Addresses are read from 1.27, whatever they are.
        assert_eq!(json("Service", r#"{"spec": {"clusterIP": "10.0.0.1"}}"#), 0);
        let later = Reads::new(KubeVersion::v1(27));
        assert_eq!(later.groups(&kind("Service"), br#"{"spec": {"clusterIP": "10.0.0.1"}}"#, Format::Msgpack), ALL);
        // Before 1.20 no rule reads `metadata.selfLink`.
        let old = Reads::new(KubeVersion::v1(19));
        assert_eq!(old.groups(&kind("ConfigMap"), br#"{"metadata": {"selfLink": "x"}}"#, Format::Msgpack), 0);
    }

    /// A group's shape reads what its rules read, and no more.
    #[test]
    fn shapes_by_group() {
        let reads = Reads::new(KubeVersion::v1(25));
        let taint = reads.shape(TAINT).describe();
        assert!(taint.contains(&"spec.template.spec.tolerations!".to_string()), "{taint:?}");
        assert!(!taint.iter().any(|p| p.contains("volumes") || p.contains("annotations")), "{taint:?}");
        assert!(reads.shape(ALL).describe().iter().any(|p| p.contains("volumes")));
    }
}
