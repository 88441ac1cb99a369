// Browser tests of the widget: @web/test-runner in the system's Chromium (no browser downloads here).
// Besides the default reporter, writes test-results/browser.json = {passed, failed} for test/run-all.mjs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { esbuildPlugin } from '@web/dev-server-esbuild';
import { defaultReporter } from '@web/test-runner';
import { playwrightLauncher } from '@web/test-runner-playwright';

const rootDir = fileURLToPath(new URL('..', import.meta.url));

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-gpu',
  '--disable-component-update',
  '--no-first-run',
];

/** Counts every test of every session (a file that fails to load, with no tests, counts as one failure). */
function countingReporter(file) {
  return {
    onTestRunFinished({ sessions }) {
      let passed = 0;
      let failed = 0;
      const walk = (suite) => {
        for (const test of suite.tests) {
          if (test.skipped) continue;
          if (test.passed) passed += 1;
          else failed += 1;
        }
        for (const child of suite.suites) walk(child);
      };
      for (const session of sessions) {
        const before = passed + failed;
        if (session.testResults) walk(session.testResults);
        if (passed + failed === before && (session.errors.length > 0 || session.passed === false)) failed += 1;
      }
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `${JSON.stringify({ passed, failed })}\n`);
    },
  };
}

export default {
  rootDir,
  files: ['test/widget/**/*.test.ts'],
  nodeResolve: true,
  concurrency: 1,
  testFramework: { config: { timeout: 10_000 } },
  plugins: [esbuildPlugin({ ts: true, target: 'es2022', tsconfig: join(rootDir, 'tsconfig.json') })],
  browsers: [
    playwrightLauncher({
      product: 'chromium',
      launchOptions: { executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS },
    }),
  ],
  reporters: [defaultReporter(), countingReporter(join(rootDir, 'test-results', 'browser.json'))],
};
