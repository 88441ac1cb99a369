import { defineConfig } from 'vitest/config';

/**
 * One file for the widget build (Vite library mode: an ES module and an IIFE for plain script tags)
 * and for the Node test projects (unit, server, e2e). Browser tests of the widget run in @web/test-runner.
 */
export default defineConfig({
  build: {
    outDir: 'dist/widget',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // Browsers load this bundle as it is (no bundler downstream), so the ES build is minified too.
    // One entry chunk for what the first step needs (lazy parts import from it instead of splitting it up).
    rolldownOptions: { output: { minify: true }, preserveEntrySignatures: 'allow-extension' },
    lib: {
      entry: 'widget/index.ts',
      name: 'KasuCheckout',
      formats: ['es', 'iife'],
      fileName: (format) => (format === 'es' ? 'kasu-checkout.js' : 'kasu-checkout.iife.js'),
    },
  },
  test: {
    projects: [
      {
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], environment: 'node' },
      },
      {
        test: {
          name: 'server',
          include: ['test/server/**/*.test.ts'],
          environment: 'node',
          testTimeout: 20_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 90_000,
          hookTimeout: 90_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
