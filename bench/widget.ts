/**
 * Part 1: the widget's weight. Builds it as `npm run build:widget` does (`vite build --logLevel warn`), but into a
 * temporary directory so that dist/widget, which a running BFF or test may be serving, is left alone; then runs the
 * project's own measurement, scripts/size.mjs, on that directory (first paint = the ES entry and every chunk it
 * imports statically; gzip level 9, brotli quality 11) and reads its first-paint total and budget from its output.
 */
import { spawnNode, tempDir } from './lib.js';

export type WidgetSize = { raw: number; gzip: number; brotli: number; budgetBrotli: number; buildSeconds: number };

async function runNode(name: string, script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnNode(name, script, { args, tsx: false, env: { ...process.env } });
  const code = await child.exited;
  return { code, stdout: child.stdout(), stderr: child.stderrTail() };
}

export async function widgetSize(): Promise<WidgetSize> {
  const { dir, remove } = await tempDir('widget');
  try {
    const started = performance.now();
    const build = await runNode('vite', 'node_modules/vite/bin/vite.js', ['build', '--logLevel', 'warn', '--outDir', dir, '--emptyOutDir']);
    if (build.code !== 0) throw new Error(`vite build failed (${build.code}): ${build.stderr.slice(-600)}`);
    const buildSeconds = (performance.now() - started) / 1000;
    // size.mjs exits 1 when over budget: that is a figure, not a failure.
    const size = await runNode('size', 'scripts/size.mjs', [dir]);
    const total = /first paint[^\n]*\n(?:[^\n]*\n)*?\s+total\s+(\d+)\s+(\d+)\s+(\d+)/.exec(size.stdout);
    const budget = /budget of (\d+) B/.exec(size.stdout);
    if (!total || !budget) throw new Error(`could not read scripts/size.mjs's output (${size.code}): ${(size.stdout + size.stderr).slice(-600)}`);
    return { raw: Number(total[1]), gzip: Number(total[2]), brotli: Number(total[3]), budgetBrotli: Number(budget[1]), buildSeconds };
  } finally {
    await remove();
  }
}
