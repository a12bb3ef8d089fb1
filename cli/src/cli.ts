// The command run by bin/focal-ghm.js.
import { main } from './main.js';

const code = await main(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(`${t}\n`),
  stderr: (t) => process.stderr.write(`${t}\n`),
  stderrIsTTY: Boolean(process.stderr.isTTY),
});
process.exitCode = code;
