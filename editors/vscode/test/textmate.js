// Tokenizes SKEL with the extension's grammar, as VS Code does (vscode-textmate and the
// Oniguruma WebAssembly build, the libraries VS Code itself uses).
"use strict";
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const GRAMMAR = path.join(__dirname, "..", "syntaxes", "skel.tmLanguage.json");

let registry;
function grammar() {
  if (!registry) {
    const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
    const lib = oniguruma.loadWASM(wasm).then(() => ({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }));
    registry = new vsctm.Registry({
      onigLib: lib,
      loadGrammar: async (scope) =>
        scope === "source.skel"
          ? vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR, "utf8"), GRAMMAR)
          : null,
    });
  }
  return registry.loadGrammar("source.skel");
}

/// The tokens of each line: [{ start, end, text, scopes }], columns in UTF-16 units.
async function tokenize(text) {
  const g = await grammar();
  let state = vsctm.INITIAL;
  return text.split("\n").map((line) => {
    const r = g.tokenizeLine(line, state);
    state = r.ruleStack;
    return r.tokens.map((t) => ({
      start: t.startIndex,
      end: Math.min(t.endIndex, line.length),
      text: line.slice(t.startIndex, t.endIndex),
      scopes: t.scopes,
    }));
  });
}

module.exports = { tokenize };

// `node test/textmate.js FILE` prints each token with its innermost scope.
if (require.main === module) {
  tokenize(fs.readFileSync(process.argv[2], "utf8")).then((lines) => {
    lines.forEach((tokens, i) => {
      for (const t of tokens) {
        if (t.text.trim()) console.log(`${i + 1}:${t.start} ${JSON.stringify(t.text)} ${t.scopes.slice(1).join(" ")}`);
      }
    });
  });
}
