//! Table-driven VM tests: (name, script, object before, object after or error) rows run
//! through the real pipeline (compile, verify, run) against one manifest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use skel::VmErrorKind;

/// Runs `script` on `obj` at time `ts` with the trace starting at 1000.
fn run(script: &str, mut obj: Value, ts: i64) -> Result<(Value, skel::ObjectOutcome), VmErrorKind> {
    let compiled = skel::compile(script).expect("compiles");
    let mut vm = skel::Vm::new(&compiled.program, 1000);
    let out = vm.run_value(&mut obj, ts).map_err(|e| e.kind)?;
    Ok((obj, out))
}

fn after(script: &str, obj: Value) -> Value {
    match run(script, obj, 1000) {
        Ok((v, out)) if out.deleted => json!({"deleted": v}),
        Ok((v, _)) => v,
        Err(e) => panic!("{script}: {e:?}"),
    }
}

#[test]
fn modify_rows() {
    let rows: &[(&str, &str, Value, Value)] = &[
        ("replace keeps key order", "modify(b = 9);", json!({"a": 1, "b": 2, "c": 3}), json!({"a": 1, "b": 9, "c": 3})),
        (
            "creates missing parents",
            "modify(spec.template.spec.nodeSelector.\"simkube.dev/foo\" = \"bar\");",
            json!({"kind": "X"}),
            json!({"kind": "X", "spec": {"template": {"spec": {"nodeSelector": {"simkube.dev/foo": "bar"}}}}}),
        ),
        (
            "creates a missing chain, arrays included",
            "modify(spec.template.spec.containers[0].image = \"x\");",
            json!({}),
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        ),
        (
            "index at length appends a new element",
            "modify(a[1].b = 2);",
            json!({"a": [{"b": 1}]}),
            json!({"a": [{"b": 1}, {"b": 2}]}),
        ),
        ("index replaces", "modify(a[1] = 0);", json!({"a": [1, 2, 3]}), json!({"a": [1, 0, 3]})),
        ("index at length appends", "modify(a[3] = 4);", json!({"a": [1, 2, 3]}), json!({"a": [1, 2, 3, 4]})),
        ("value from a path", "modify(b = a.x);", json!({"a": {"x": [1]}}), json!({"a": {"x": [1]}, "b": [1]})),
        (
            "through a variable",
            "modify($c := cs[*] | $c.image == \"old\", $c.image = \"new\");",
            json!({"cs": [{"image": "old"}, {"image": "keep"}, {"image": "old"}]}),
            json!({"cs": [{"image": "new"}, {"image": "keep"}, {"image": "new"}]}),
        ),
        (
            "value through a variable",
            "modify($x := metadata.labels.app | exists($x), spec.app = $x);",
            json!({"metadata": {"labels": {"app": "web"}}}),
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"app": "web"}}),
        ),
        (
            "selector false does nothing",
            "modify(kind == \"Pod\", x = 1);",
            json!({"kind": "Service"}),
            json!({"kind": "Service"}),
        ),
        (
            "bools are case-insensitive",
            "modify(a == TRUE, b = False);",
            json!({"a": true}),
            json!({"a": true, "b": false}),
        ),
        ("3 is not \"3\"", "modify(a == \"3\", b = 1);", json!({"a": 3}), json!({"a": 3})),
        (
            "u64 literals",
            "modify(a == 18446744073709551615, b = 1);",
            json!({"a": 18446744073709551615u64}),
            json!({"a": 18446744073709551615u64, "b": 1}),
        ),
    ];
    for (name, script, before, want) in rows {
        assert_eq!(&after(script, before.clone()), want, "{name}");
    }
}

#[test]
fn remove_rows() {
    let rows: &[(&str, &str, Value, Value)] = &[
        ("missing is a no-op", "remove(status);", json!({"a": 1}), json!({"a": 1})),
        ("keeps key order", "remove(b);", json!({"a": 1, "b": 2, "c": 3}), json!({"a": 1, "c": 3})),
        ("[*] leaves an empty array", "remove(a[*]);", json!({"a": [1, 2, 3]}), json!({"a": []})),
        (
            "elements removed as if at once",
            "remove($x := a[*] | $x.rm == true, $x);",
            json!({"a": [{"rm": true, "i": 0}, {"rm": true, "i": 1}, {"i": 2}, {"rm": true, "i": 3}]}),
            json!({"a": [{"i": 2}]}),
        ),
        (
            "more than ten elements",
            "remove($x := a[*] | $x > 4, $x);",
            json!({"a": [0, 9, 1, 8, 2, 7, 3, 6, 4, 5, 10, 11]}),
            json!({"a": [0, 1, 2, 3, 4]}),
        ),
        (
            "nested wildcards",
            "remove(cs[*].env[*].secret);",
            json!({"cs": [{"env": [{"secret": 1, "n": 1}, {"n": 2}]}, {"env": [{"secret": 2}]}]}),
            json!({"cs": [{"env": [{"n": 1}, {"n": 2}]}, {"env": [{}]}]}),
        ),
        (
            "second variable compares with the first",
            "remove($v := vols[*] | exists($v.secret) && $m := mounts[*] | $m.name == $v.name, $m);",
            json!({"vols": [{"name": "s", "secret": {}}, {"name": "e"}], "mounts": [{"name": "s"}, {"name": "e"}, {"name": "s"}]}),
            json!({"vols": [{"name": "s", "secret": {}}, {"name": "e"}], "mounts": [{"name": "e"}]}),
        ),
        (
            "!exists binds nothing",
            "remove($x := a[*] | !exists($x.b), $x);",
            json!({"a": [{"c": 1}]}),
            json!({"a": [{"c": 1}]}),
        ),
        (
            "the defined variable on the right is the candidate",
            "remove($x := a[*] | $x.b == $x.c, $x);",
            json!({"a": [{"b": 1, "c": 1}, {"b": 1, "c": 2}]}),
            json!({"a": [{"b": 1, "c": 2}]}),
        ),
        (
            "a variable bound over another",
            "remove($c := cs[*] | exists($c.env) && $e := $c.env[*] | exists($e.secret), $e);",
            json!({"cs": [{"env": [{"secret": 1}, {"v": 1}]}]}),
            json!({"cs": [{"env": [{"v": 1}]}]}),
        ),
    ];
    for (name, script, before, want) in rows {
        assert_eq!(&after(script, before.clone()), want, "{name}");
    }
}

#[test]
fn selector_rows() {
    // (name, selector, object, holds)
    let rows: &[(&str, &str, Value, bool)] = &[
        ("!= ignores missing locations", "cs[*].name != \"a\"", json!({"cs": [{"name": "a"}, {"image": "b"}]}), false),
        ("!= holds for another value", "cs[*].name != \"a\"", json!({"cs": [{"name": "a"}, {"name": "b"}]}), true),
        ("!= on a missing path", "x != 1", json!({}), false),
        ("exists reaches null", "exists(a)", json!({"a": null}), true),
        ("!exists", "!exists(a.b)", json!({"a": {}}), true),
        ("numbers order", "a < 10", json!({"a": 9}), true),
        ("floats order with ints", "a >= 2", json!({"a": 2.5}), true),
        ("negative orders below u64", "a < 18446744073709551615", json!({"a": -1}), true),
        ("strings order", "a > \"abc\"", json!({"a": "abd"}), true),
        ("mixed types are unordered", "a < 10", json!({"a": "5"}), false),
        ("== with a path", "a == b", json!({"a": 1, "b": 1}), true),
        ("objects compare structurally", "a == b", json!({"a": {"x": [1, {"y": 2}]}, "b": {"x": [1, {"y": 2}]}}), true),
        ("== any of a path's values", "a == b[*]", json!({"a": 2, "b": [1, 2]}), true),
        ("index past the end reaches nothing", "exists(a[5])", json!({"a": [1]}), false),
        ("indexing a non-array reaches nothing", "exists(a[0])", json!({"a": {"0": 1}}), false),
        (
            "a key with dots",
            "metadata.labels.\"app.kubernetes.io/name\" == \"x\"",
            json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}}),
            true,
        ),
        ("a key with a space", "\"has space\" == 1", json!({"has space": 1}), true),
        ("all tests must hold", "a == 1 && b == 2", json!({"a": 1, "b": 3}), false),
    ];
    for (name, sel, obj, holds) in rows {
        let script = format!("modify({sel}, matched = true);");
        let (got, _) = run(&script, obj.clone(), 1000).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got.get("matched").is_some(), *holds, "{name}: {script}");
    }
}

#[test]
fn time_rows() {
    // the trace starts at 1000
    let rows: &[(&str, i64, bool)] = &[
        ("@t == 0s", 1000, true),
        ("@t == 0s", 1001, false),
        ("@t >= 10m", 1599, false),
        ("@t >= 10m", 1600, true),
        ("@t < 90s", 1089, true),
        ("@t > 1h", 4601, true),
        ("@t >= 1500 && @t < 2000", 1700, true),
        ("@t != 1000", 1000, false),
        ("@t <= 1000", 1000, true),
    ];
    for (sel, ts, holds) in rows {
        let script = format!("delete({sel});");
        let (_, out) = run(&script, json!({}), *ts).unwrap();
        assert_eq!(out.deleted, *holds, "{sel} at {ts}");
    }
}

#[test]
fn delete_stops_later_statements() {
    let (_, out) = run("delete(*); modify(a = 1);", json!({}), 1000).unwrap();
    assert!(out.deleted);
}

#[test]
fn outcome_counts() {
    let (_, out) =
        run("remove(a[*]); modify(b = 1); modify(kind == \"nope\", c = 1);", json!({"a": [1, 2]}), 1000).unwrap();
    assert_eq!((out.matched, out.modified, out.fields_removed, out.fields_set), (true, true, 2, 1));
}

/// The language extensions: literals, templates, wildcards in targets, any-key paths.
#[test]
fn extension_rows() {
    let rows: &[(&str, &str, Value, Value)] = &[
        (
            "negative, float and null",
            "modify(a = -3); modify(b = 0.25); modify(c = null);",
            json!({}),
            json!({"a": -3, "b": 0.25, "c": null}),
        ),
        ("compare a negative number", "modify(n == -1, hit = true);", json!({"n": -1}), json!({"n": -1, "hit": true})),
        ("compare a float", "modify(n < 1.5, hit = true);", json!({"n": 1}), json!({"n": 1, "hit": true})),
        ("escapes", r#"modify(s = "a\"b\\c\n\u{e9}\d");"#, json!({}), json!({"s": "a\"b\\c\né\\d"})),
        ("array literal", r#"modify(a = [1, "x", [true], {}]);"#, json!({}), json!({"a": [1, "x", [true], {}]})),
        (
            "object literal",
            r#"modify(a = {"k": {"n": 1}, "l": []});"#,
            json!({}),
            json!({"a": {"k": {"n": 1}, "l": []}}),
        ),
        (
            "template from a variable",
            r#"modify($b := backends[*] | exists($b.serviceName), $b.service = {"name": $b.serviceName, "port": {"number": $b.servicePort}});"#,
            json!({"backends": [{"serviceName": "web", "servicePort": 80}, {"other": 1}]}),
            json!({"backends": [{"serviceName": "web", "servicePort": 80, "service": {"name": "web", "port": {"number": 80}}}, {"other": 1}]}),
        ),
        (
            "compare with a template",
            r#"modify(pair == [a, b], hit = true);"#,
            json!({"a": 1, "b": 2, "pair": [1, 2]}),
            json!({"a": 1, "b": 2, "pair": [1, 2], "hit": true}),
        ),
        (
            "[*] in a target sets every element",
            r#"modify(cs[*].policy = "Never");"#,
            json!({"cs": [{"policy": "Always"}, {}], "other": 1}),
            json!({"cs": [{"policy": "Never"}, {"policy": "Never"}], "other": 1}),
        ),
        (
            "[*] in a target with no array sets nothing",
            r#"modify(cs[*].policy = "Never");"#,
            json!({"cs": {}}),
            json!({"cs": {}}),
        ),
        (
            "nested [*] in a target",
            "modify(a[*].b[*] = 0);",
            json!({"a": [{"b": [1, 2]}, {"b": [3]}, {}]}),
            json!({"a": [{"b": [0, 0]}, {"b": [0]}, {}]}),
        ),
        (
            "any key in a target",
            "modify(labels.* = \"x\");",
            json!({"labels": {"a": "1", "b": "2"}}),
            json!({"labels": {"a": "x", "b": "x"}}),
        ),
        (
            "any key in a test",
            "delete(labels.* == \"gone\");",
            json!({"labels": {"a": "1", "b": "gone"}}),
            json!({"deleted": {"labels": {"a": "1", "b": "gone"}}}),
        ),
        (
            "remove any key",
            "remove(labels.*);",
            json!({"labels": {"a": "1", "b": "2"}, "x": 1}),
            json!({"labels": {}, "x": 1}),
        ),
        (
            "regex match",
            r#"delete(image =~ "^gcr\.io/");"#,
            json!({"image": "gcr.io/x"}),
            json!({"deleted": {"image": "gcr.io/x"}}),
        ),
        (
            "regex no match",
            r#"delete(image =~ "^gcr\.io/");"#,
            json!({"image": "quay.io/x"}),
            json!({"image": "quay.io/x"}),
        ),
        ("regex on a number never matches", r#"delete(image =~ ".*");"#, json!({"image": 5}), json!({"image": 5})),
        (
            "!~ through a variable",
            r#"modify($c := cs[*] | $c.image !~ "^registry\.local/", $c.pull = "Always");"#,
            json!({"cs": [{"image": "registry.local/a"}, {"image": "docker.io/b"}]}),
            json!({"cs": [{"image": "registry.local/a"}, {"image": "docker.io/b", "pull": "Always"}]}),
        ),
        (
            "in a list",
            r#"delete(kind in ["PodSecurityPolicy", "PodPreset"]);"#,
            json!({"kind": "PodPreset"}),
            json!({"deleted": {"kind": "PodPreset"}}),
        ),
        (
            "not in a list",
            r#"delete(kind in ["PodSecurityPolicy", "PodPreset"]);"#,
            json!({"kind": "Pod"}),
            json!({"kind": "Pod"}),
        ),
        (
            "in a template list",
            "modify(x in [a, b], hit = true);",
            json!({"a": 1, "b": 2, "x": 2}),
            json!({"a": 1, "b": 2, "x": 2, "hit": true}),
        ),
        (
            "move a label",
            r#"move(metadata.labels."node-role.kubernetes.io/master" -> metadata.labels."node-role.kubernetes.io/control-plane");"#,
            json!({"metadata": {"labels": {"a": "1", "node-role.kubernetes.io/master": ""}}}),
            json!({"metadata": {"labels": {"a": "1", "node-role.kubernetes.io/control-plane": ""}}}),
        ),
        ("move keeps the value whole", "move(a -> b.c);", json!({"a": {"x": [1]}}), json!({"b": {"c": {"x": [1]}}})),
        ("move of nothing does nothing", "move(a -> b);", json!({"z": 1}), json!({"z": 1})),
        ("copy keeps the source", "copy(a -> b);", json!({"a": 1}), json!({"a": 1, "b": 1})),
        (
            "move through a variable, per binding",
            "move($b := bs[*] | exists($b.serviceName), $b.serviceName -> $b.service.name);",
            json!({"bs": [{"serviceName": "web", "servicePort": 80}, {"x": 1}, {"serviceName": "api"}]}),
            json!({"bs": [{"servicePort": 80, "service": {"name": "web"}}, {"x": 1}, {"service": {"name": "api"}}]}),
        ),
        (
            "or: first branch",
            r#"delete(kind == "A" || kind == "B");"#,
            json!({"kind": "A"}),
            json!({"deleted": {"kind": "A"}}),
        ),
        (
            "or: second branch",
            r#"delete(kind == "A" || kind == "B");"#,
            json!({"kind": "B"}),
            json!({"deleted": {"kind": "B"}}),
        ),
        ("or: neither", r#"delete(kind == "A" || kind == "B");"#, json!({"kind": "C"}), json!({"kind": "C"})),
        (
            "and binds tighter",
            r#"delete(kind == "A" && x == 1 || kind == "B");"#,
            json!({"kind": "A", "x": 2}),
            json!({"kind": "A", "x": 2}),
        ),
        (
            "parentheses",
            r#"delete(kind == "A" && (x == 1 || x == 2));"#,
            json!({"kind": "A", "x": 2}),
            json!({"deleted": {"kind": "A", "x": 2}}),
        ),
        ("not a test", r#"delete(!(kind == "A"));"#, json!({"kind": "B"}), json!({"deleted": {"kind": "B"}})),
        ("not a group", r#"delete(!(kind == "A" || kind == "B"));"#, json!({"kind": "B"}), json!({"kind": "B"})),
        ("!exists keeps its meaning", "delete(!exists(a));", json!({"b": 1}), json!({"deleted": {"b": 1}})),
        (
            "a variable bound on every branch",
            r#"modify($c := cs[*] | $c.a == 1 || $c := ds[*] | $c.a == 2, $c.hit = true);"#,
            json!({"cs": [{"a": 5}], "ds": [{"a": 2}]}),
            json!({"cs": [{"a": 5}], "ds": [{"a": 2, "hit": true}]}),
        ),
        (
            "the first branch that holds binds",
            r#"modify($c := cs[*] | $c.a == 1 || $c := ds[*] | $c.a == 2, $c.hit = true);"#,
            json!({"cs": [{"a": 1}], "ds": [{"a": 2}]}),
            json!({"cs": [{"a": 1, "hit": true}], "ds": [{"a": 2}]}),
        ),
        (
            "a template is built for each binding of the target's variable",
            r#"modify($b := bs[*] | exists($b.serviceName), $b.service = {"name": $b.serviceName});"#,
            json!({"bs": [{"serviceName": "web"}, {"serviceName": "api"}]}),
            json!({"bs": [{"serviceName": "web", "service": {"name": "web"}}, {"serviceName": "api", "service": {"name": "api"}}]}),
        ),
        (
            "per-binding templates are all built before any is set",
            r#"modify($x := a[*] | exists($x.v), $x.v = {"first": a[0].v});"#,
            json!({"a": [{"v": 1}, {"v": 2}]}),
            json!({"a": [{"v": {"first": 1}}, {"v": {"first": 1}}]}),
        ),
        (
            "move through [*]: each element moves its own value",
            "move(cs[*].image -> cs[*].spec.image);",
            json!({"cs": [{"image": "a"}, {"name": "no-image"}, {"image": "c"}]}),
            json!({"cs": [{"spec": {"image": "a"}}, {"name": "no-image"}, {"spec": {"image": "c"}}]}),
        ),
        (
            "copy through .*",
            "copy(ports.*.number -> ports.*.target);",
            json!({"ports": {"http": {"number": 80}, "grpc": {"number": 9090}}}),
            json!({"ports": {"http": {"number": 80, "target": 80}, "grpc": {"number": 9090, "target": 9090}}}),
        ),
        ("bracket key", r#"modify(a["b.c~d"] = 1);"#, json!({"a": {}}), json!({"a": {"b.c~d": 1}})),
        (
            "bracket key with a quote",
            r#"remove(a["say \"hi\""]);"#,
            json!({"a": {"say \"hi\"": 1, "k": 2}}),
            json!({"a": {"k": 2}}),
        ),
    ];
    for (name, script, before, want) in rows {
        assert_eq!(&after(script, before.clone()), want, "{name}: {script}");
    }
}

/// `{"a": {"a": ... 1}}`, an object of `levels` levels (its own braces count one).
fn deep(levels: usize) -> Value {
    (0..levels).fold(json!(1), |v, _| json!({ "a": v }))
}

#[test]
fn values_as_deep_as_a_trace_holds_can_be_set() {
    run(&format!("modify(a = {}1{});", "{\"a\": ".repeat(125), "}".repeat(125)), json!({}), 1000).unwrap();
    run("move(a -> a.b);", deep(125), 1000).unwrap();
}

#[test]
fn run_time_errors() {
    let rows: &[(&str, Value, &str)] = &[
        ("modify(x == y, z = 1);", json!({"x": 1}), "Unresolved"),
        ("modify(z = y);", json!({}), "Unresolved"),
        ("modify(a = {\"x\": b});", json!({}), "Unresolved"),
        ("modify($c := cs[*] | exists($c), a = [$c.n]);", json!({"cs": [{"n": 1}, {"n": 2}]}), "NotSingleValue"),
        ("modify(a[5] = 1);", json!({"a": [1]}), "IndexOutOfRange"),
        ("modify(a.b = 1);", json!({"a": "text"}), "NotAnObject"),
        ("modify(a[0] = 1);", json!({"a": {}}), "NotAnObject"),
        ("modify(a[1].b = 1);", json!({}), "IndexOutOfRange"),
        ("modify($x := a[*] | exists($x), b = $x);", json!({"a": [1, 2]}), "NotSingleValue"),
        ("modify(metadata.labels.app = 5);", json!({"metadata": {}}), "InvalidTypedField"),
        ("modify(apiVersion = 1);", json!({}), "InvalidTypedField"),
        // Deeper than a trace can hold (126 levels of an object), by a value or by a path.
        (&format!("modify(a = {}1{});", "{\"a\": ".repeat(126), "}".repeat(126)), json!({}), "TooDeep"),
        (&format!("modify({} = {{}});", vec!["a"; 126].join(".")), json!({}), "TooDeep"),
        ("modify(a.b = a);", deep(126), "TooDeep"),
        ("move(a -> a.b);", deep(126), "TooDeep"),
        ("copy(a -> b.c);", deep(126), "TooDeep"),
        // A key of digits that is no index, below an array.
        ("modify(a.x = 1);", json!({"a": [1]}), "NotAnObject"),
        ("modify(a.01 = 1);", json!({"a": [1]}), "NotAnObject"),
        ("modify(a.2 = 1);", json!({"a": [1]}), "IndexOutOfRange"),
    ];
    for (script, obj, want) in rows {
        let e = run(script, obj.clone(), 1000).expect_err(script);
        assert!(format!("{e:?}").starts_with(want), "{script}: {e:?}");
    }
}

#[test]
fn unresolved_right_side_is_only_an_error_when_reached() {
    // x is missing, so the right side is never needed
    let (_, out) = run("modify(x == y, z = 1);", json!({}), 1000).unwrap();
    assert!(!out.matched);
    // a variable path that does not resolve just has no candidates
    let (v, _) = run("modify($x := a[*] | $x.b == $x.c, m = true);", json!({"a": [{"b": 1}]}), 1000).unwrap();
    assert!(v.get("m").is_none());
}

#[test]
fn metadata_round_trip_drops_nulls_and_unknown_fields_after_a_change() {
    let v = after("modify(metadata.labels.app = \"x\");", json!({"metadata": {"name": "n", "bogus": 1, "uid": null}}));
    assert_eq!(v, json!({"metadata": {"name": "n", "labels": {"app": "x"}}}));
}
