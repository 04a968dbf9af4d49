// src/server.js: how the extension finds the skel binary and what it says when it cannot.
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { resolveCommand, initializationOptions } = require("../src/server");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "skel-vscode-"));
const bin = path.join(tmp, "bin");
fs.mkdirSync(bin);
const skel = path.join(bin, "skel");
fs.writeFileSync(skel, "#!/bin/sh\n");
fs.chmodSync(skel, 0o755);
const notExec = path.join(bin, "skel-data");
fs.writeFileSync(notExec, "");
fs.chmodSync(notExec, 0o644);
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const posix = { platform: "linux" };

test("a name is looked up on PATH", () => {
  const env = { PATH: ["/nonexistent", bin].join(path.delimiter) };
  assert.deepStrictEqual(resolveCommand("skel", { env, ...posix }), { command: skel });
  // An empty setting means the default, `skel`.
  assert.deepStrictEqual(resolveCommand("", { env, ...posix }), { command: skel });
  assert.deepStrictEqual(resolveCommand(undefined, { env, ...posix }), { command: skel });
});

test("a name missing from PATH gets a message that says how to install skel", () => {
  const r = resolveCommand("skel", { env: { PATH: "/nonexistent" }, ...posix });
  assert.strictEqual(r.command, undefined);
  assert.match(r.error, /^The skel binary `skel` \(the setting skel\.path\) was not found on PATH/);
  assert.match(r.error, /cargo install --path \. --locked/);
  assert.match(r.error, /set `skel\.path` to the binary's full path/);
});

test("a file that is not executable is not taken from PATH", () => {
  const r = resolveCommand("skel-data", { env: { PATH: bin }, ...posix });
  assert.match(r.error, /`skel-data` .* was not found on PATH/);
});

test("a path is taken as is, or from the workspace folder when relative", () => {
  assert.deepStrictEqual(resolveCommand(skel, { env: {}, ...posix }), { command: skel });
  assert.deepStrictEqual(resolveCommand("bin/skel", { folder: tmp, env: {}, ...posix }), { command: skel });
  assert.deepStrictEqual(resolveCommand("./bin/skel", { folder: tmp, env: {}, ...posix }), { command: skel });
  assert.deepStrictEqual(resolveCommand("~/bin/skel", { env: { HOME: tmp }, ...posix }), { command: skel });
});

test("a path to nothing, or to a file that cannot run, says which", () => {
  const missing = resolveCommand("bin/nope", { folder: tmp, env: {}, ...posix });
  assert.strictEqual(
    missing.error.split(". Install")[0],
    `The skel binary ${path.join(bin, "nope")} (the setting skel.path) does not exist`,
  );
  const data = resolveCommand(notExec, { env: {}, ...posix });
  assert.match(data.error, /skel-data \(the setting skel\.path\) is not an executable file\. Install skel/);
});

test("the trace setting becomes the initialization options the server reads", () => {
  assert.deepStrictEqual(initializationOptions("traces/t.json"), { skel: { trace: "traces/t.json" } });
  assert.deepStrictEqual(initializationOptions(undefined), { skel: { trace: "" } });
  assert.deepStrictEqual(initializationOptions(""), { skel: { trace: "" } });
});
