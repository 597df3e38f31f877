// Compiles contracts/TestToken.sol with solc from npm (its compiler ships
// in the package: nothing is downloaded) and prints {"bytecode": "0x..."}.
import fs from "node:fs";
import { createRequire } from "node:module";
const solc = createRequire(import.meta.url)("solc");
const dir = new URL(".", import.meta.url).pathname;
const input = {
  language: "Solidity",
  sources: { "TestToken.sol": { content: fs.readFileSync(dir + "contracts/TestToken.sol", "utf8") } },
  settings: { optimizer: { enabled: true, runs: 200 }, outputSelection: { "*": { "*": ["evm.bytecode.object"] } } },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  console.error(errors.map((e) => e.formattedMessage).join("\n"));
  process.exit(1);
}
const bytecode = out.contracts["TestToken.sol"].TestToken.evm.bytecode.object;
process.stdout.write(JSON.stringify({ bytecode: "0x" + bytecode }) + "\n");
