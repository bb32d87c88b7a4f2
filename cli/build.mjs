#!/usr/bin/env node
// Bundles the CLI and the workspace packages (TypeScript sources) into ESM
// chunks, so `guestlens` starts in tens of milliseconds instead of compiling
// TypeScript on every call. Commands import their packages lazily, so with
// code splitting `guestlens df` never loads what `guestlens lock` needs
// (koffi, a native module, stays external altogether).
//
// Each build goes to its own directory; `dist` is a symlink switched
// atomically to the newest one, so a concurrent run never sees half a build.
// Old builds are removed after an hour (a running process may still load a
// chunk from its own build).
import { build } from 'esbuild';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, lstatSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const cliRoot = dirname(fileURLToPath(import.meta.url));
export const distLink = join(cliRoot, 'dist');
export const outFile = join(distLink, 'guestlens.mjs');
const buildsDir = join(cliRoot, '.builds');

export async function buildCli() {
  mkdirSync(buildsDir, { recursive: true });
  const name = `build-${Date.now()}-${process.pid}`;
  const outdir = join(buildsDir, name);
  await build({
    entryPoints: { guestlens: join(cliRoot, 'src', 'main.ts') },
    outdir,
    bundle: true,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    outExtension: { '.js': '.mjs' },
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // A linked map keeps the code small to load; node uses it with --enable-source-maps.
    sourcemap: 'linked',
    external: ['koffi'],
    logLevel: 'warning',
    // Bundled CommonJS dependencies call require(); give ESM output one.
    banner: { js: "import { createRequire as __glCreateRequire } from 'node:module'; const require = __glCreateRequire(import.meta.url);" },
  });
  const tmpLink = join(cliRoot, `.dist-${process.pid}`);
  rmSync(tmpLink, { force: true });
  symlinkSync(join('.builds', name), tmpLink);
  // An old plain directory from earlier layouts cannot be renamed over: remove it first.
  try {
    if (lstatSync(distLink).isDirectory()) rmSync(distLink, { recursive: true, force: true });
  } catch { /* no dist yet */ }
  renameSync(tmpLink, distLink);
  for (const old of readdirSync(buildsDir)) {
    if (old === name) continue;
    const p = join(buildsDir, old);
    if (Date.now() - statSync(p).mtimeMs > 3600_000) rmSync(p, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildCli();
}
