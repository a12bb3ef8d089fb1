// README.md's examples run as written: every ```js and ```ts block is extracted and run against
// this package's dist/ (npm run build first). A block's first line picks its runtime:
//   `// deno`              Deno (node_modules/.bin/deno), `npm:focal-ghm` pointed at dist/;
//   `// Cloudflare Worker` workerd: bundled as wrangler bundles (test/support/workerd.ts), then
//                          served and sent one request;
//   anything else          Node: TypeScript stripped by esbuild, written to test/tmp/ (inside
//                          the repository, so `import … from 'focal-ghm'` resolves to dist/ by
//                          the package's self-reference through its "exports").
// A block fails on a non-zero exit, an uncaught error, or (Worker) a response other than 2xx.
// ```html and ```sh blocks are not run.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { transform } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { exec } from './support/exec';
import { bundleWorker, runWorker, workerdMissing } from './support/workerd';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TMP = join(ROOT, 'test', 'tmp');
const BIN = join(ROOT, 'node_modules', '.bin');
const DIST_INDEX = join(ROOT, 'dist', 'index.js');

type Runtime = 'node' | 'deno' | 'worker';
interface Block {
  lang: 'js' | 'ts';
  /** 1-based line of the block's first code line in README.md. */
  line: number;
  code: string;
  runtime: Runtime;
}

/** The ```js and ```ts blocks of a Markdown text, with the runtime their first line names. */
function codeBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(js|ts)\s*$/.exec(lines[i]!);
    if (!open) {
      if (/^```\S*\s*$/.test(lines[i]!)) {
        // Skip any other fenced block whole, so its closing fence is not taken for an opening.
        for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++);
      }
      continue;
    }
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    if (end === lines.length) throw new Error(`README.md:${i + 1}: code block never closed`);
    const code = lines.slice(start, end).join('\n') + '\n';
    const first = lines[start] ?? '';
    const runtime: Runtime = /^\/\/\s*deno\b/i.test(first) ? 'deno' : /^\/\/\s*cloudflare worker/i.test(first) ? 'worker' : 'node';
    out.push({ lang: open[1] as 'js' | 'ts', line: start + 1, code, runtime });
    i = end;
  }
  return out;
}

function scratchFile(b: Block, ext: string): string {
  mkdirSync(TMP, { recursive: true });
  return join(TMP, `readme-${b.line}-${process.pid}${ext}`);
}

async function runNode(b: Block): Promise<string> {
  const js = b.lang === 'ts' ? (await transform(b.code, { loader: 'ts', format: 'esm', target: 'es2022' })).code : b.code;
  const file = scratchFile(b, '.mjs');
  writeFileSync(file, js);
  try {
    return await exec(process.execPath, [file], 120_000, ROOT);
  } finally {
    rmSync(file, { force: true });
  }
}

async function runDeno(b: Block): Promise<string> {
  const entry = pathToFileURL(DIST_INDEX).href;
  const code = b.code.replace(/(['"])npm:focal-ghm\1/g, `'${entry}'`);
  const file = scratchFile(b, b.lang === 'ts' ? '.ts' : '.mjs');
  writeFileSync(file, code);
  try {
    return await exec(join(BIN, 'deno'), ['run', '--no-prompt', `--allow-read=${ROOT}`, file], 120_000, ROOT);
  } finally {
    rmSync(file, { force: true });
  }
}

/** A Worker block, bundled as wrangler bundles it, served in workerd for one request. */
async function runWorkerBlock(b: Block): Promise<string> {
  return runWorker(await bundleWorker({ stdin: { contents: b.code, resolveDir: ROOT, sourcefile: `README.md:${b.line}`, loader: b.lang } }, ROOT));
}

const blocks = codeBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
const distMissing = existsSync(DIST_INDEX) ? undefined : 'dist/ is not built (npm run build)';

describe('README.md code blocks', () => {
  it('has js/ts blocks to run', () => {
    expect(blocks.length).toBeGreaterThan(0);
  });

  for (const b of blocks) {
    const first = b.code.split('\n')[0]!.trim();
    const name = `README.md:${b.line} (${b.runtime}): ${first}`;
    const missing =
      distMissing ??
      (b.runtime === 'deno' && !existsSync(join(BIN, 'deno')) ? 'node_modules/.bin/deno not found (npm install)' : undefined) ??
      (b.runtime === 'worker' ? workerdMissing : undefined);
    if (missing) {
      it.skip(`${name} [skipped: ${missing}]`, () => {});
      continue;
    }
    it(name, async () => {
      if (b.runtime === 'node') await runNode(b);
      else if (b.runtime === 'deno') await runDeno(b);
      else await runWorkerBlock(b);
    }, 180_000);
  }
});

// The extractor itself, on a small text: only js/ts blocks, runtimes from the first line, and a
// closing fence of another language's block is not taken for an opening.
describe('README block extraction', () => {
  it('finds js/ts blocks and their runtimes', () => {
    const md = ['```sh', 'npm i', '```', '```js', "console.log('a');", '```', '```html', '<p>', '```', '```ts', '// deno', 'let x: number = 1;', '```', '```js', '// Cloudflare Worker', 'export default {};', '```'].join('\n');
    const got = codeBlocks(md).map((b) => [b.lang, b.line, b.runtime, b.code.split('\n')[0]]);
    expect(got).toEqual([
      ['js', 5, 'node', "console.log('a');"],
      ['ts', 11, 'deno', '// deno'],
      ['js', 15, 'worker', '// Cloudflare Worker'],
    ]);
  });
});
