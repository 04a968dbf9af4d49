// How the extension starts `skel lsp`, without VS Code's API, so that the tests run it as is:
// finding the binary the `skel.path` setting names, the message when it is missing, and the
// initialization options that carry the `skel.trace` setting (docs/lsp.md, "The trace").
"use strict";
const fs = require("fs");
const path = require("path");

const INSTALL =
  "Install skel with `cargo install --path . --locked` in a clone of the skel repository " +
  "(it puts `skel` in ~/.cargo/bin), or set `skel.path` to the binary's full path.";

/// A file that can be run (on Windows: one that exists).
function isExecutable(file) {
  try {
    if (!fs.statSync(file).isFile()) return false;
    if (process.platform === "win32") return true;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/// The binary `setting` names: a name looked up on PATH (with PATHEXT's extensions on
/// Windows), or a path, absolute or relative to `folder` (the first workspace folder, or the
/// current folder). `{ command }` when it is found, else `{ error }`: a message that says what
/// was looked for, where, and how to install skel.
function resolveCommand(setting, { folder, env = process.env, platform = process.platform } = {}) {
  let name = (setting || "").trim() || "skel";
  if (name === "~" || name.startsWith("~/")) name = path.join(env.HOME || env.USERPROFILE || "~", name.slice(1));
  const exts = platform === "win32" ? ["", ...(env.PATHEXT || ".EXE;.CMD;.BAT").split(";").filter(Boolean)] : [""];
  const hasSeparator = name.includes("/") || (platform === "win32" && name.includes("\\"));
  if (path.isAbsolute(name) || hasSeparator) {
    const file = path.resolve(folder || process.cwd(), name);
    for (const ext of exts) if (isExecutable(file + ext)) return { command: file + ext };
    const why = fs.existsSync(file) ? "is not an executable file" : "does not exist";
    return { error: `The skel binary ${file} (the setting skel.path) ${why}. ${INSTALL}` };
  }
  const dirs = (env.PATH || env.Path || "").split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    for (const ext of exts) {
      const file = path.join(dir, name + ext);
      if (isExecutable(file)) return { command: file };
    }
  }
  return {
    error: `The skel binary \`${name}\` (the setting skel.path) was not found on PATH, so SKEL files ` +
      `get highlighting but no diagnostics, hover or completion. ${INSTALL}`,
  };
}

/// What the server reads as its initialization options and, under `settings`, in each
/// `workspace/didChangeConfiguration`: `{"skel": {"trace": FILE}}` ("" for none).
function initializationOptions(trace) {
  return { skel: { trace: typeof trace === "string" ? trace : "" } };
}

/// The server's command line, after the binary.
const ARGS = ["lsp"];

module.exports = { resolveCommand, initializationOptions, ARGS, INSTALL };
