// The extension's way of starting `skel lsp`, against the real binary (SKEL_BIN, else `skel`
// on PATH): the initialization options and the `didChangeConfiguration` that
// vscode-languageclient sends for the `skel.trace` setting reach hover; and the TextMate
// grammar colours every SKEL example of the docs and of examples/ as skel's own lexer (the
// server's semantic tokens) does.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const fs = require("fs");
const path = require("path");
const { spawn } = require("child_process");
const { pathToFileURL } = require("url");
const rpc = require("vscode-languageserver-protocol/node");
const { resolveCommand, initializationOptions, ARGS } = require("../src/server");
const { tokenize } = require("./textmate");

const ROOT = path.resolve(__dirname, "..", "..", "..");

/// The SKEL scripts of the repository: examples/*.skel, every ```skel and ```skel-error block
/// of README.md and docs/*.md, and the grammar tests' fixtures (which show errors too), each
/// with where it comes from.
function scripts() {
  const out = [];
  const fixtures = path.join(__dirname, "grammar");
  for (const f of fs.readdirSync(fixtures).filter((f) => f.endsWith(".skel")).sort()) {
    out.push({ name: `test/grammar/${f}`, text: fs.readFileSync(path.join(fixtures, f), "utf8"), error: true });
  }
  const examples = path.join(ROOT, "examples");
  for (const f of fs.readdirSync(examples).filter((f) => f.endsWith(".skel")).sort()) {
    out.push({ name: `examples/${f}`, text: fs.readFileSync(path.join(examples, f), "utf8") });
  }
  const docs = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)];
  for (const doc of docs) {
    const lines = fs.readFileSync(path.join(ROOT, doc), "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      const open = lines[i].match(/^(\s*)```skel(-error)?\s*$/);
      if (!open) continue;
      const indent = open[1].length;
      const body = [];
      let j = i + 1;
      for (; j < lines.length && lines[j].trim() !== "```"; j++) body.push(lines[j].slice(indent));
      out.push({ name: `${doc}:${i + 2}`, text: body.join("\n") + "\n", error: !!open[2] });
      i = j;
    }
  }
  return out;
}

/// What each of the server's token types (its legend, from skel-grammar's lexer) may be in
/// the grammar.
const EXPECTED = {
  function: /^support\.function\.command\.skel$/,
  keyword: /^(keyword\.other\.|keyword\.operator\.word\.|constant\.language\.|invalid\.illegal\.time\.)/,
  variable: /^(variable\.other\.skel|invalid\.illegal\.variable\.skel)$/,
  property: /^(variable\.other\.property|variable\.language\.wildcard)/,
  string: /^string\./,
  number: /^(constant\.numeric\.|invalid\.illegal\.duration\.)/,
  operator: /^keyword\.operator\./,
  comment: /^comment\./,
};
const CATEGORY = new RegExp(Object.values(EXPECTED).map((r) => r.source).join("|"));

/// Where the grammar knowingly differs from the lexer, which is coarser in three places:
/// docs/language.md takes `TRUE` and `False` as booleans (the lexer's keywords are lower case);
/// after `[` the lexer takes digits for an index, also as an array's first item (`[1, 2]`); and
/// its run of digits goes on through `.` (for decimals), so `containers.0.image` is one path
/// token for it, with the `.` that the grammar calls punctuation. And an object's `:` is
/// punctuation in the grammar, an operator for the lexer.
function knownDifference(type, text, scopes, before) {
  if (type === "property" && scopes.includes("constant.language.boolean.skel")) return /^(true|false)$/i.test(text);
  if (type === "property" && before === "[" && /^[0-9]+$/.test(text)) return scopes.includes("constant.numeric.integer.skel");
  if (type === "property" && /^[0-9]+\./.test(text)) return scopes.includes("punctuation.accessor.skel");
  if (type === "operator" && text === ":") return scopes.includes("punctuation.separator.key-value.skel");
  return false;
}

class Server {
  constructor(command) {
    this.proc = spawn(command, ARGS, { stdio: ["pipe", "pipe", "inherit"] });
    this.conn = rpc.createProtocolConnection(
      new rpc.StreamMessageReader(this.proc.stdout),
      new rpc.StreamMessageWriter(this.proc.stdin),
    );
    this.conn.listen();
    this.version = 0;
  }
  async initialize(trace) {
    const result = await this.conn.sendRequest("initialize", {
      processId: process.pid,
      rootUri: pathToFileURL(ROOT).href,
      capabilities: { textDocument: { hover: { contentFormat: ["markdown"] } } },
      initializationOptions: initializationOptions(trace),
      workspaceFolders: [{ uri: pathToFileURL(ROOT).href, name: "skel" }],
    });
    await this.conn.sendNotification("initialized", {});
    return result;
  }
  open(name, text) {
    const uri = pathToFileURL(path.join(ROOT, "target", "vscode-test", name.replace(/[:/]/g, "_") + ".skel")).href;
    this.conn.sendNotification("textDocument/didOpen", {
      textDocument: { uri, languageId: "skel", version: ++this.version, text },
    });
    return uri;
  }
  async close() {
    await this.conn.sendRequest("shutdown");
    await this.conn.sendNotification("exit");
    const code = await new Promise((resolve) => this.proc.on("exit", resolve));
    this.conn.dispose();
    return code;
  }
}

function skelCommand() {
  if (process.env.SKEL_BIN) return path.resolve(process.env.SKEL_BIN);
  const found = resolveCommand("skel");
  if (found.error) throw new Error(`${found.error} (or set SKEL_BIN)`);
  return found.command;
}

test("the skel.trace setting reaches hover, at start and when it changes", async () => {
  const server = new Server(skelCommand());
  const init = await server.initialize("examples/trace.json");
  assert.strictEqual(init.serverInfo.name, "skel");
  const line = 'remove(kind == "CronJob", spec.schedule);';
  const uri = server.open("hover", line + "\n");
  const at = { textDocument: { uri }, position: { line: 0, character: line.indexOf("schedule") } };
  const withTrace = await server.conn.sendRequest("textDocument/hover", at);
  assert.match(withTrace.contents.value, /\*\*In trace\.json\*\*: 5 of 40 objects have it/);
  // What vscode-languageclient sends for `synchronize: { configurationSection: "skel" }`.
  await server.conn.sendNotification("workspace/didChangeConfiguration", {
    settings: { skel: { path: "skel", trace: "" } },
  });
  const without = await server.conn.sendRequest("textDocument/hover", at);
  assert.match(without.contents.value, /The schedule in Cron format/);
  assert.doesNotMatch(without.contents.value, /In trace\.json/);
  assert.strictEqual(await server.close(), 0);
});

test("the grammar colours every example as skel's lexer does", async () => {
  const all = scripts();
  assert.ok(all.length >= 100, `only ${all.length} SKEL examples found in the docs and examples/`);
  const server = new Server(skelCommand());
  const init = await server.initialize("");
  const legend = init.capabilities.semanticTokensProvider.legend.tokenTypes;
  assert.deepStrictEqual(legend.filter((t) => !EXPECTED[t]), [], "a token type the grammar test does not know");
  const problems = [];
  for (const { name, text, error } of all) {
    const uri = server.open(name, text);
    const { data } = await server.conn.sendRequest("textDocument/semanticTokens/full", { textDocument: { uri } });
    const lines = await tokenize(text);
    const srcLines = text.split("\n");
    const scopesAt = (l, c) => (lines[l].find((t) => t.start <= c && c < t.end) || { scopes: [] }).scopes;
    const covered = srcLines.map((s) => new Array(s.length).fill(false));
    let line = 0;
    let char = 0;
    for (let i = 0; i < data.length; i += 5) {
      line += data[i];
      char = data[i] === 0 ? char + data[i + 1] : data[i + 1];
      const type = legend[data[i + 3]];
      const word = srcLines[line].slice(char, char + data[i + 2]);
      for (let c = char; c < char + data[i + 2]; c++) covered[line][c] = true;
      for (let c = char; c < char + data[i + 2]; c++) {
        const scopes = scopesAt(line, c);
        if (!scopes.some((s) => EXPECTED[type].test(s)) && !knownDifference(type, word, scopes, srcLines[line][char - 1])) {
          problems.push(`${name} line ${line + 1}: \`${word}\` is ${type} for skel, ${scopes.slice(1).join(" ") || "unscoped"} for the grammar`);
          break;
        }
      }
    }
    // And nothing the lexer leaves out (spaces, brackets, `.`, `,`, `;`) is coloured.
    lines.forEach((tokens, l) => {
      for (const t of tokens) {
        const cat = t.scopes.find((s) => CATEGORY.test(s));
        if (!cat || /^\s*$/.test(t.text)) continue;
        for (let c = t.start; c < t.end; c++) {
          if (!covered[l][c] && !/\s/.test(srcLines[l][c])) {
            problems.push(`${name} line ${l + 1}: \`${t.text}\` is ${cat} for the grammar, not a token for skel`);
            break;
          }
        }
      }
    });
    // No example is marked invalid by the grammar, but for those that show an error.
    if (!error) lines.forEach((tokens, l) => {
      for (const t of tokens) {
        if (t.scopes.some((s) => s.startsWith("invalid."))) problems.push(`${name} line ${l + 1}: \`${t.text}\` is invalid for the grammar`);
      }
    });
  }
  assert.strictEqual(await server.close(), 0);
  assert.deepStrictEqual([...new Set(problems)], []);
});
