//! The time per keystroke (a `didChange` to its diagnostics, ready to publish), the server's
//! way (`skel::analyze`, insert files through the cache) and the old way (the whole compiler,
//! `skel::compile_with`, optimizer, emitter and verifier included, insert files read again),
//! on the largest example script and on synthetic scripts of 2,000 statements.
//!
//! `cargo run -p skel-lsp --release --example keystroke`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lsp_types::Uri;
use skel_lsp::engine::Document;
use skel_lsp::files::InsertFiles;
use skel_lsp::text::Encoding;

/// Runs `keystroke` for about a second (at least 5 times): microseconds per run.
fn per_keystroke(mut keystroke: impl FnMut() -> usize) -> f64 {
    let (start, mut runs, mut diagnostics) = (Instant::now(), 0u32, 0);
    while runs < 5 || start.elapsed() < Duration::from_secs(1) {
        diagnostics += keystroke();
        runs += 1;
    }
    std::hint::black_box(diagnostics);
    start.elapsed().as_secs_f64() * 1e6 / f64::from(runs)
}

fn measure(name: &str, text: &str, folder: &Path) {
    let uri: Uri = match format!("file://{}/script.skel", folder.display()).parse() {
        Ok(uri) => uri,
        Err(e) => return eprintln!("{name}: {e}"),
    };
    let files = InsertFiles::default();
    let new = per_keystroke(|| {
        let analysis = skel::analyze(text, &files.of(Some(folder)));
        Document::new(uri.clone(), text.to_string(), Encoding::Utf16, analysis).diagnostics().len()
    });
    let old = per_keystroke(|| {
        let analysis = match skel::compile_with(text, skel::OptLevel::Full, &skel::Folder::new(Some(folder))) {
            Ok(c) => skel::Analysis { ast: c.ast, ir: c.ir, diagnostics: c.warnings },
            Err(r) => skel::Analysis { ast: r.ast, ir: Default::default(), diagnostics: r.diagnostics },
        };
        Document::new(uri.clone(), text.to_string(), Encoding::Utf16, analysis).diagnostics().len()
    });
    // Of which the parser alone (the rest is the type checker and the diagnostics).
    let parse = per_keystroke(|| skel::parse(text).errors.len());
    let statements = skel::parse(text).script.statements.len();
    println!(
        "{name:<44} {:>6} bytes {statements:>5} statements   compile {old:>9.0} µs   analyze {new:>9.0} µs \
         ({:.1}x; parse alone {parse:.0} µs)",
        text.len(),
        old / new
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let examples = root.join("examples");
    match std::fs::read_to_string(examples.join("ingress-v1.skel")) {
        Ok(text) => measure("examples/ingress-v1.skel (the largest)", &text, &examples),
        Err(e) => eprintln!("examples/ingress-v1.skel: {e}"),
    }
    let scratch: PathBuf = std::env::temp_dir().join(format!("skel-lsp-keystroke-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        return eprintln!("{}: {e}", scratch.display());
    }
    let mut pod = String::from("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n");
    for i in 0..20 {
        pod.push_str(&format!(
            "  - name: c{i}\n    image: nginx:1.{i}\n    env:\n    - name: E\n      value: \"{i}\"\n"
        ));
    }
    if let Err(e) = std::fs::write(scratch.join("pod.yaml"), pod) {
        return eprintln!("{}: {e}", scratch.display());
    }
    let mixed: String = (0..2000)
        .map(|i| match i % 4 {
            0 => format!("modify(kind == \"Pod\" && metadata.name == \"p{i}\", metadata.labels.n = \"{i}\");\n"),
            1 => format!("remove($c := spec.containers[*] | $c.name == \"c{i}\", $c.env);\n"),
            2 => format!("move(kind == \"Deployment\", metadata.labels.a{i} -> metadata.annotations.a{i});\n"),
            _ => format!("delete(kind == \"Job\" && @t > {i}s);\n"),
        })
        .collect();
    measure("synthetic: 2,000 statements", &mixed, &scratch);
    let inserts: String = (0..2000).map(|i| format!("insert(@t == {i}s, file(\"pod.yaml\"));\n")).collect();
    measure("synthetic: 2,000 inserts of one 1.3 KB file", &inserts, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
}
