#!/usr/bin/env node
// The one test command: typecheck, lint, unit and server tests (vitest), widget build, browser tests
// (@web/test-runner in Chromium) and the end-to-end purchase (Playwright driving Chromium against the real BFF).
// Every stage runs even when an earlier one fails; the last line counts every test of every stage.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';

const results = 'test-results';
rmSync(results, { recursive: true, force: true });
mkdirSync(results, { recursive: true });

const bin = (name) => `node_modules/.bin/${name}`;
const vitestJson = (file) => ['--reporter=default', '--reporter=json', `--outputFile.json=${results}/${file}`];

/** Each stage: a command, and how to count what it ran (default: the whole stage is one check). */
const stages = [
  { name: 'typecheck', cmd: [bin('tsc'), '--noEmit', '-p', 'tsconfig.json'] },
  { name: 'typecheck bench', cmd: [bin('tsc'), '--noEmit', '-p', 'bench/tsconfig.json'] },
  { name: 'lint', cmd: [bin('eslint'), '--config', '.config/eslint.config.js', '--max-warnings', '0', '.'] },
  {
    name: 'unit + server',
    cmd: [bin('vitest'), 'run', '--project', 'unit', '--project', 'server', ...vitestJson('vitest.json')],
    count: () => countVitest(`${results}/vitest.json`),
  },
  { name: 'widget build', cmd: [bin('vite'), 'build', '--logLevel', 'warn'] },
  // The first paint's weight against its budget (fails above 20,000 B brotli).
  { name: 'size', cmd: [process.execPath, 'scripts/size.mjs'] },
  // The shipped TypeScript declarations, checked from a consumer's side; the manifest and README tables current.
  { name: 'types', cmd: [process.execPath, 'scripts/build-types.mjs', '--verify'] },
  { name: 'manifest', cmd: [process.execPath, 'scripts/custom-elements.mjs', '--check', '--docs', 'README.md'] },
  {
    name: 'browser',
    cmd: [bin('web-test-runner'), '--config', '.config/web-test-runner.config.mjs'],
    count: () => JSON.parse(readFileSync(`${results}/browser.json`, 'utf8')),
  },
  {
    name: 'end-to-end',
    cmd: [bin('vitest'), 'run', '--project', 'e2e', ...vitestJson('e2e.json')],
    count: () => countVitest(`${results}/e2e.json`),
  },
];

function countVitest(file) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  // A file that fails to load has no tests but counts as a failure.
  const brokenFiles = report.testResults.filter((r) => r.status === 'failed' && r.assertionResults.length === 0).length;
  return { passed: report.numPassedTests, failed: report.numFailedTests + brokenFiles };
}

function run([command, ...args]) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: process.env.CI ? '0' : '1' } });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.on('error', () => resolve(1));
  });
}

const only = process.argv.slice(2);
let passed = 0;
let failed = 0;
const lines = [];
for (const stage of stages) {
  if (only.length && !only.includes(stage.name)) continue;
  console.log(`\n=== ${stage.name} ===`);
  const started = Date.now();
  const code = await run(stage.cmd);
  let counts;
  try {
    counts = stage.count ? stage.count() : code === 0 ? { passed: 1, failed: 0 } : { passed: 0, failed: 1 };
  } catch {
    counts = { passed: 0, failed: 1 }; // no report: the stage crashed
  }
  if (code !== 0 && counts.failed === 0) counts = { ...counts, failed: 1 }; // exited non-zero with nothing failed
  passed += counts.passed;
  failed += counts.failed;
  lines.push(`${stage.name.padEnd(14)} ${String(counts.passed).padStart(4)} passed ${String(counts.failed).padStart(3)} failed  ${((Date.now() - started) / 1000).toFixed(1)}s`);
}
console.log(`\n${lines.join('\n')}\n`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
