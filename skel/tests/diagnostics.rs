//! Every compile-time diagnostic, rendered as a user sees it: one `.skel` file per case in
//! `tests/diagnostics/`, one insta snapshot holding the source and the report.

use miette::{GraphicalReportHandler, GraphicalTheme, NamedSource, Report};

fn render(name: &str, src: &str) -> String {
    let analysis = skel::analyze(src, &skel::Folder::current());
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
    let mut out = String::new();
    for d in analysis.diagnostics {
        let report = Report::new(d).with_source_code(NamedSource::new(name, src.to_string()));
        let _ = handler.render_report(&mut out, report.as_ref());
    }
    out
}

#[test]
fn diagnostics() {
    insta::glob!("diagnostics/*.skel", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let rendered = render(&name, &src);
        assert!(!rendered.is_empty(), "{name} produced no diagnostic");
        insta::assert_snapshot!(format!("{src}\n----\n{rendered}"));
    });
}
