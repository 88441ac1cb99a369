#!/usr/bin/env node
/**
 * `npm run size`: the widget's weight as a browser downloads it. Reads dist/widget (run `npm run build:widget`
 * first): the first paint is the ES entry plus every chunk it imports statically (CSS lives in the JS), the lazy
 * chunks are what later steps load with `import()`. Prints raw, gzip and brotli bytes of each, and fails (exit 1)
 * when the first paint is above the budget.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

/** Brotli bytes allowed before the first step is usable (JS + CSS). */
export const BUDGET_BROTLI_BYTES = 20_000;
const DIR = path.resolve(process.argv[2] ?? 'dist/widget');
const ENTRY = 'kasu-checkout.js';

function sizes(file) {
  const bytes = readFileSync(path.join(DIR, file));
  return {
    file,
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

/** The chunks a module imports statically (`import … from "./x.js"` or `import "./x.js"`), not `import("./x.js")`. */
function staticImports(file) {
  const code = readFileSync(path.join(DIR, file), 'utf8');
  const found = new Set();
  for (const match of code.matchAll(/(?:^|[;}\s])import\s*(?:[\w$*{}\s,]+from\s*)?["']\.\/([\w.-]+\.js)["']/g)) found.add(match[1]);
  for (const match of code.matchAll(/(?:^|[;}\s])export\s*[\w$*{}\s,]*from\s*["']\.\/([\w.-]+\.js)["']/g)) found.add(match[1]);
  return [...found];
}

const firstPaint = new Set([ENTRY]);
for (const file of firstPaint) for (const dependency of staticImports(file)) firstPaint.add(dependency);
const lazy = readdirSync(DIR).filter((file) => file.endsWith('.js') && !file.includes('.iife.') && !firstPaint.has(file)).sort();

const print = (line) => process.stdout.write(`${line}\n`);
const pad = (value, width) => String(value).padStart(width);
const row = (entry) => `${entry.file.padEnd(36)} ${pad(entry.raw, 8)} ${pad(entry.gzip, 8)} ${pad(entry.brotli, 8)}`;
const total = (entries, file) => entries.reduce(
  (sum, entry) => ({ file, raw: sum.raw + entry.raw, gzip: sum.gzip + entry.gzip, brotli: sum.brotli + entry.brotli }),
  { file, raw: 0, gzip: 0, brotli: 0 },
);

const first = [...firstPaint].map(sizes);
const later = lazy.map(sizes);
print(`${'bytes'.padEnd(36)} ${pad('raw', 8)} ${pad('gzip', 8)} ${pad('brotli', 8)}`);
print('first paint (before the first step is usable)');
for (const entry of first) print(`  ${row(entry)}`);
const firstTotal = total(first, 'total');
print(`  ${row(firstTotal)}`);
print('loaded when reached');
for (const entry of later) print(`  ${row(entry)}`);
print(`  ${row(total(later, 'total'))}`);
print(`  ${row(sizes('kasu-checkout.iife.js'))}   (classic-script build, everything in one file)`);

const verdict = firstTotal.brotli <= BUDGET_BROTLI_BYTES ? 'within' : 'OVER';
print(`\nfirst paint: ${firstTotal.brotli} B brotli, ${verdict} the budget of ${BUDGET_BROTLI_BYTES} B`);
process.exit(firstTotal.brotli <= BUDGET_BROTLI_BYTES ? 0 : 1);
