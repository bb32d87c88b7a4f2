#!/usr/bin/env node
// Bundles the CLI and the workspace packages (TypeScript sources) into one ESM
// file, so `guestlens` starts in tens of milliseconds instead of compiling
// TypeScript on every call. koffi stays external: it loads a native binary.
import { build } from 'esbuild';
import { renameSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const cliRoot = dirname(fileURLToPath(import.meta.url));
export const outFile = join(cliRoot, 'dist', 'guestlens.mjs');

export async function buildCli() {
  mkdirSync(dirname(outFile), { recursive: true });
  // Write beside the target and rename: concurrent callers never see half a file.
  const tmp = `${outFile}.${process.pid}.tmp`;
  await build({
    entryPoints: [join(cliRoot, 'src', 'main.ts')],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    external: ['koffi'],
    logLevel: 'warning',
    // Bundled CommonJS dependencies call require(); give ESM output one.
    banner: { js: "import { createRequire as __glCreateRequire } from 'node:module'; const require = __glCreateRequire(import.meta.url);" },
  });
  renameSync(tmp, outFile);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildCli();
}
