//! `skel check`: what a trace (or a set of manifests) uses that a target Kubernetes version no
//! longer serves, reported as text, JSON or SARIF, and optionally the SKEL that migrates it.
//! Exit codes as linters have them: 0 nothing found, 1 findings, 2 usage or input error.

use std::io::Write;
use std::path::Path;

use miette::Diagnostic;
use serde_json::Value;
use skel::stream::VisitOptions;
use skel::upgrade::{KubeVersion, Scanner, Severity};
use skel_trace::fsio;
use thiserror::Error;

use super::files::{self, FileError, Skipped, Walk};
use super::report::Reporter;
use super::{CheckArgs, CheckFormat, Exit, Failed};

#[derive(Debug, Error, Diagnostic)]
pub enum UpgradeCheckError {
    #[error("`{text}` is not a Kubernetes version")]
    #[diagnostic(code(skel::usage::target_version), help("write the minor version, e.g. `--target-version 1.25`"))]
    Version { text: String },
    #[error("`{path}` holds no Kubernetes manifest")]
    #[diagnostic(
        code(skel::upgrade::no_manifests),
        help("give a trace (JSON or .sktrace), a YAML or JSON file of manifests, or a folder of them")
    )]
    NoManifests { path: String },
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(code(skel::upgrade::bad_manifest), help("a manifest file holds YAML documents or JSON objects"))]
    BadManifest { path: String, reason: String },
    #[error("`{path}`: {what}; it is not checked")]
    #[diagnostic(
        code(skel::upgrade::not_a_manifest),
        severity(Warning),
        help("a manifest is an object with a `kind` (and an `apiVersion`); a list holds them in `items`")
    )]
    NotAManifest { path: String, what: String },
    #[error("`{path}` is {kind}, not a regular file; it is not read")]
    #[diagnostic(
        code(skel::upgrade::not_a_file),
        severity(Warning),
        help("only regular files of a folder are read (a FIFO waits for a writer, a device may never end); pass it by its own name to read it")
    )]
    NotAFile { path: String, kind: &'static str },
    #[error("`{path}` leads back to `{to}`, a folder already being read; it is not followed")]
    #[diagnostic(
        code(skel::upgrade::folder_loop),
        severity(Warning),
        help("a symbolic link to a folder above it makes a loop; each folder and file is read once")
    )]
    FolderLoop { path: String, to: String },
}

pub fn run(args: CheckArgs, reporter: &Reporter) -> Result<(), Failed> {
    if args.list_rules {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(skel::upgrade::rule_catalogue().as_bytes()).and_then(|()| stdout.flush());
        return Ok(());
    }
    let (Some(input), Some(version)) = (&args.input, &args.target_version) else {
        return Err(Failed::silent(Exit::Usage));
    };
    let Some(target) = KubeVersion::parse(version) else {
        return Err(Failed::usage(UpgradeCheckError::Version { text: version.clone() }));
    };
    let scanner = scan(input, target, args.jobs, reporter)?;
    let report = scanner.report().at_least(args.min_severity.into());
    let text = match args.format {
        CheckFormat::Text => report.text(),
        CheckFormat::Json => format!("{:#}\n", report.json()),
        CheckFormat::Sarif => format!("{:#}\n", report.sarif(&files::display(input))),
        CheckFormat::Markdown => report.markdown(),
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    if let Some(fix) = &args.fix {
        // Written as `skel fmt` would write it (its formatter, on the whole script), so that
        // `skel fmt --check` passes on it; one the formatter cannot take is not written.
        let script =
            super::fmt::formatted(&files::display(fix), &report.fix_source()).map_err(|f| f.exit_as(Exit::Usage))?;
        files::write_text(Some(fix), &script).map_err(|f| f.exit_as(Exit::Usage))?;
        if args.format == CheckFormat::Text {
            let _ = writeln!(stdout, "wrote {}", fix.display());
        }
    }
    let fail_on: Severity = args.fail_on.into();
    if report.findings.iter().any(|f| f.severity >= fail_on) {
        Err(Failed::silent(Exit::Error))
    } else {
        Ok(())
    }
}

/// Scans every object of the input: a folder's manifest files, a YAML file of manifests, or a
/// trace (a JSON file that is not a trace is read as manifests).
/// Every error is a usage or input error (exit 2).
fn scan(input: &Path, target: KubeVersion, jobs: Option<usize>, reporter: &Reporter) -> Result<Scanner, Failed> {
    if input.is_dir() {
        let files = Walk::files(input, &["yaml", "yml", "json"], |skip| {
            reporter.diagnostic(match skip {
                Skipped::Loop { path, to } => UpgradeCheckError::FolderLoop { path, to },
                Skipped::NotAFile { path, kind } => UpgradeCheckError::NotAFile { path, kind },
            })
        });
        let mut manifests = Vec::new();
        for f in &files {
            manifests.extend(read_manifests(f, Found::InFolder, reporter)?);
        }
        return one_event(input, manifests, Scanner::new(target));
    }
    let ext = input.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if matches!(ext.as_str(), "yaml" | "yml") {
        let manifests = read_manifests(input, Found::Named, reporter)?;
        return one_event(input, manifests, Scanner::new(target));
    }
    // A trace streams through the parallel reader, each manifest decoded only as far as the
    // rules read.
    let trace = files::open_trace(input, None).map_err(Failed::usage)?;
    let mut opts = VisitOptions::new(trace.format);
    if let Some(jobs) = jobs {
        opts.jobs = jobs;
    }
    match skel::stream::check(trace.reader, opts, target) {
        Ok(scanner) => Ok(scanner),
        // Not a trace, or a bad one. A file is read again by the sequential reader: it reads a
        // JSON file of manifests, and says where a bad trace goes wrong as precisely as it can.
        Err(_) if input != Path::new("-") && input.is_file() => scan_sequentially(input, &ext, target, reporter),
        Err(e) => Err(Failed::usage(e)),
    }
}

/// Reads a trace file with the sequential reader, every object decoded whole (a JSON file that
/// is not a trace is read as manifests).
fn scan_sequentially(input: &Path, ext: &str, target: KubeVersion, reporter: &Reporter) -> Result<Scanner, Failed> {
    let trace = files::open_trace(input, None).map_err(Failed::usage)?;
    let mut scanner = Scanner::new(target);
    match skel_trace::read_trace(trace.reader, trace.format, &mut scanner) {
        Ok(()) => Ok(scanner),
        Err(e) => {
            // Not a trace at all (no `events`): a JSON file of manifests.
            if scanner.events() == 0 && ext == "json" {
                let text = read_manifest_text(input, Found::Named)?;
                match serde_json::from_str::<Value>(&text) {
                    Ok(json) if json.get("events").is_none() => {
                        let manifests = skel::upgrade::parse_manifests(&text).map_err(|reason| {
                            Failed::usage(UpgradeCheckError::BadManifest { path: files::display(input), reason })
                        })?;
                        warn_skipped(input, &manifests.skipped, reporter);
                        return one_event(input, manifests.objects, scanner);
                    }
                    // JSON nested too deep to read as manifests: that is what is wrong with the
                    // file, not what the trace reader made of it (no `version`).
                    Err(json) => {
                        let at = skel_trace::Location {
                            line: Some(json.line()),
                            column: Some(json.column()),
                            ..Default::default()
                        };
                        let json = skel_trace::TraceError::from_json(json).locate(at);
                        if matches!(json, skel_trace::TraceError::TooDeep { .. }) {
                            return Err(Failed::usage(json));
                        }
                    }
                    Ok(_) => {}
                }
            }
            let skel_trace::ReadError::Trace(e) = e;
            Err(Failed::usage(e))
        }
    }
}

/// How a manifest file was found: named by the user (a FIFO is read), or in a folder (only
/// regular files are).
#[derive(Clone, Copy)]
enum Found {
    Named,
    InFolder,
}

/// A manifest file's text, read whole (at most `fsio::MANIFEST_LIMIT`).
fn read_manifest_text(path: &Path, found: Found) -> Result<String, Failed> {
    let name = files::display(path);
    let read = match found {
        Found::Named => files::read_named(path, fsio::MANIFEST_LIMIT),
        Found::InFolder => fsio::read_limited(path, fsio::MANIFEST_LIMIT, fsio::Special::Refuse),
    };
    let bytes = read.map_err(|e| Failed::usage(files::read_failed(&name, e, "a manifest file")))?;
    String::from_utf8(bytes).map_err(|_| {
        let help = "a manifest file holds YAML or JSON, which is UTF-8 text".to_string();
        Failed::usage(FileError::Read { path: name, reason: "it is not UTF-8 text".into(), help })
    })
}

/// The manifests of a YAML (several documents) or JSON file; a `List` or an array gives its
/// items.
fn read_manifests(path: &Path, found: Found, reporter: &Reporter) -> Result<Vec<Value>, Failed> {
    let name = files::display(path);
    let text = read_manifest_text(path, found)?;
    let manifests = skel::upgrade::parse_manifests(&text)
        .map_err(|reason| Failed::usage(UpgradeCheckError::BadManifest { path: name, reason }))?;
    warn_skipped(path, &manifests.skipped, reporter);
    Ok(manifests.objects)
}

/// A warning for each document of a manifest file that is not read as a manifest.
fn warn_skipped(path: &Path, skipped: &[String], reporter: &Reporter) {
    for what in skipped {
        reporter.diagnostic(UpgradeCheckError::NotAManifest { path: files::display(path), what: what.clone() });
    }
}

/// Manifests are a trace of one event, at time 0.
fn one_event(input: &Path, manifests: Vec<Value>, mut scanner: Scanner) -> Result<Scanner, Failed> {
    if manifests.is_empty() {
        return Err(Failed::usage(UpgradeCheckError::NoManifests { path: files::display(input) }));
    }
    scanner.event();
    for m in &manifests {
        scanner.object(0, 0, m);
    }
    Ok(scanner)
}
