// language-configuration.json: its patterns on SKEL lines, and its pairs match the grammar's.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const config = require("../language-configuration.json");
const pkg = require("../package.json");

test("comments are `#` lines, and every bracket and quote closes", () => {
  assert.deepStrictEqual(config.comments, { lineComment: "#" });
  assert.deepStrictEqual(config.brackets, [["(", ")"], ["[", "]"], ["{", "}"]]);
  assert.deepStrictEqual(config.autoClosingPairs.map((p) => p.open + p.close), ["()", "[]", "{}", '""']);
  assert.deepStrictEqual(config.surroundingPairs.map((p) => p.join("")), ["()", "[]", "{}", '""']);
});

test("a line that leaves a bracket open indents the next; a closing bracket outdents", () => {
  const inc = new RegExp(config.indentationRules.increaseIndentPattern);
  const dec = new RegExp(config.indentationRules.decreaseIndentPattern);
  for (const line of ["insert(@t == 0s, {", "modify(", "delete(kind in [", "delete(  # why"]) assert.ok(inc.test(line), line);
  for (const line of ['delete(kind == "Pod");', "remove(status); # (", 'modify(x == "a(");', 'modify(x == "[', "# delete("])
    assert.ok(!inc.test(line), line);
  for (const line of ["});", "  ], x);", ")"]) assert.ok(dec.test(line), line);
  for (const line of ["    && $b := spec.rules[*] | exists($b.x),", 'delete(kind == "Pod");']) assert.ok(!dec.test(line), line);
});

test("a word is a name with `-`, a `$variable`, `@t`, a number or a duration", () => {
  const words = (s) => s.match(new RegExp(config.wordPattern, "g"));
  assert.deepStrictEqual(words("modify($x := spec.node-role @t >= 10m, -1.5)"), ["modify", "$x", "spec", "node-role", "@t", "10m", "-1.5"]);
});

test("the manifest contributes the language, its grammar, the settings and the command", () => {
  const c = pkg.contributes;
  assert.deepStrictEqual(c.languages.map((l) => [l.id, l.extensions, l.configuration]), [["skel", [".skel"], "./language-configuration.json"]]);
  assert.deepStrictEqual(c.grammars, [{ language: "skel", scopeName: "source.skel", path: "./syntaxes/skel.tmLanguage.json" }]);
  assert.deepStrictEqual(Object.keys(c.configuration.properties), ["skel.path", "skel.trace"]);
  assert.strictEqual(c.configuration.properties["skel.path"].default, "skel");
  assert.deepStrictEqual(c.commands, [{ command: "skel.restartServer", title: "Restart language server", category: "SKEL" }]);
  assert.deepStrictEqual(pkg.activationEvents, ["onLanguage:skel"]);
});

test("the install instructions name the .vsix this version builds", () => {
  const fs = require("fs");
  const path = require("path");
  const vsix = `dist/skel-${pkg.version}.vsix`;
  for (const doc of ["../README.md", "../../../docs/lsp.md"]) {
    const text = fs.readFileSync(path.join(__dirname, doc), "utf8");
    const named = text.match(/skel-[0-9.]+\.vsix/g) || [];
    assert.ok(named.length > 0, `${doc} names no .vsix`);
    assert.deepStrictEqual([...new Set(named)], [path.basename(vsix)], doc);
    assert.ok(text.includes(`--install-extension `) && text.includes(vsix), `${doc}: code --install-extension ...${vsix}`);
  }
});
