#!/usr/bin/env node
// Bundles the CLI and the workspace packages (TypeScript sources) into one
// CommonJS file, which cli/bin/guestlens.mjs runs through a V8 code cache.
// Start-up is most of what a `guestlens df` costs, so:
//  - CommonJS, because only a classic script can be fed a V8 code cache on
//    Node 20 (ES modules are recompiled on every start: ~50 ms for this bundle);
//  - commands import their packages with import(), which esbuild turns into
//    lazy initialisers: `guestlens df` never evaluates what `guestlens lock` needs;
//  - Intl.Segmenter is created lazily: string-width (under yargs) makes one at
//    load time, and ICU's segmenter costs ~20 ms to build; we only need it
//    when help text is wrapped.
// koffi, lzo, lz4-napi (native modules), sql.js and xz-decompress (they load
// their WebAssembly from beside themselves) stay external.
//
// Each build goes to its own directory; `dist` is a symlink switched
// atomically to the newest one, so a concurrent run never sees half a build.
// Old builds are removed after an hour (a process may still be reading one).
import { build } from 'esbuild';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, lstatSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const cliRoot = dirname(fileURLToPath(import.meta.url));
export const distLink = join(cliRoot, 'dist');
export const outFile = join(distLink, 'guestlens.cjs');
const buildsDir = join(cliRoot, '.builds');

const lazySegmenter = `class __glLazySegmenter {
  constructor(...args) { this.args = args; }
  get real() { return (this.instance ??= new Intl.Segmenter(...this.args)); }
  segment(input) { return this.real.segment(input); }
  resolvedOptions() { return this.real.resolvedOptions(); }
}`;

export async function buildCli() {
  mkdirSync(buildsDir, { recursive: true });
  const name = `build-${Date.now()}-${process.pid}`;
  const outdir = join(buildsDir, name);
  await build({
    entryPoints: { guestlens: join(cliRoot, 'src', 'main.ts') },
    outdir,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    // Node 20 runs ES2024 (regexp v flag included); a lower target would turn regex
    // literals into eager new RegExp() calls at load time.
    target: 'es2024',
    // A linked map keeps the code small to load; node uses it with --enable-source-maps.
    sourcemap: 'linked',
    // Half the bytes to read and to map from the code cache (~30 ms of df's start).
    // keepNames: error classes name themselves from new.target.name.
    minify: true,
    keepNames: true,
    external: ['koffi', 'lz4-napi', 'lzo', 'sql.js', 'xz-decompress'],
    // import() of those externals becomes require(): the launcher runs the bundle
    // as a vm.Script, where import() has no loader on Node 20 (all are CommonJS).
    supported: { 'dynamic-import': false },
    logLevel: 'warning',
    define: { 'import.meta.url': '__glImportMetaUrl', 'Intl.Segmenter': '__glLazySegmenter' },
    banner: { js: `const __glImportMetaUrl = require('node:url').pathToFileURL(__filename).href;\n${lazySegmenter}` },
  });
  const tmpLink = join(cliRoot, `.dist-${process.pid}`);
  rmSync(tmpLink, { force: true });
  symlinkSync(join('.builds', name), tmpLink);
  // A plain directory from an earlier layout cannot be renamed over: remove it first.
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
