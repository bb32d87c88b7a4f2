#!/usr/bin/env node
// Bundles the CLI and the workspace packages (TypeScript sources) into one ESM
// file, so `guestlens` starts in tens of milliseconds instead of compiling
// TypeScript on every call. koffi stays external: it loads a native binary.
import { build } from 'esbuild';
import { renameSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const cliRoot = dirname(fileURLToPath(import.meta.url));
export const outFile = join(cliRoot, 'dist', 'guestlens.mjs');

export async function buildCli() {
  // Build into a private directory and rename into place: concurrent callers
  // never see half a file, and the source map keeps the bundle's own name.
  const tmpDir = join(dirname(outFile), `.build-${process.pid}`);
  const tmp = join(tmpDir, 'guestlens.mjs');
  mkdirSync(tmpDir, { recursive: true });
  await build({
    entryPoints: [join(cliRoot, 'src', 'main.ts')],
    outfile: tmp,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // A linked map keeps the bundle small to load; node uses it with --enable-source-maps.
    sourcemap: 'linked',
    external: ['koffi'],
    logLevel: 'warning',
    // Bundled CommonJS dependencies call require(); give ESM output one.
    banner: { js: "import { createRequire as __glCreateRequire } from 'node:module'; const require = __glCreateRequire(import.meta.url);" },
  });
  renameSync(`${tmp}.map`, `${outFile}.map`);
  renameSync(tmp, outFile);
  rmSync(tmpDir, { recursive: true, force: true });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildCli();
}
