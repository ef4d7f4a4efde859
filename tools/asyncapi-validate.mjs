// Validate AsyncAPI documents with the official parser (@asyncapi/parser, the engine of
// @asyncapi/cli's `validate`). Prints one line per diagnostic and exits 1 on any error or
// warning (information and hints are printed but pass).
//   node tools/asyncapi-validate.mjs docs/asyncapi.json [more.json ...]
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { Parser, fromFile } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "information", "hint"];
const parser = new Parser();
let failed = false;
for (const file of process.argv.slice(2)) {
  const path = resolve(file);
  await readFile(path); // a missing file fails loudly here, not as a parser diagnostic
  const { document, diagnostics } = await fromFile(parser, path).parse();
  for (const d of diagnostics) {
    const where = d.path.join("/") || "<root>";
    console.log(`${file}: ${SEVERITY[d.severity]} ${d.code} at ${where}: ${d.message}`);
    if (d.severity <= 1) failed = true;
  }
  if (document === undefined) failed = true;
  console.log(`${file}: ${diagnostics.length} diagnostics, ${document === undefined ? "not parsed" : "parsed"}`);
}
process.exit(failed ? 1 : 0);
