#!/usr/bin/env node
// Entry point. Rebuilds the bundle when a TypeScript source is newer than it
// (so a checkout never runs stale code), then runs it through a V8 code cache
// kept beside it: compiling the bundle afresh costs more than everything df
// does after start-up. The cache is written after the first run of a build
// and whenever V8 rejects it (another Node version).
import { existsSync, statSync, readdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Module, { createRequire } from 'node:module';
import vm from 'node:vm';

const cliRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = join(cliRoot, '..');
const bundleLink = join(cliRoot, 'dist', 'guestlens.cjs');

// Run at every start over every source file: paths are joined by hand, since
// path.join's normalising cost more than the stat calls (23 ms -> 9 ms here).
function newestSource(dir, newest = 0) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${entry.name}`;
    if (entry.isDirectory()) newest = newestSource(p, newest);
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function stale() {
  if (!existsSync(bundleLink)) return true;
  const built = statSync(bundleLink).mtimeMs;
  const roots = [join(cliRoot, 'src'), ...readdirSync(join(repoRoot, 'packages')).map((p) => join(repoRoot, 'packages', p, 'src'))];
  return roots.some((r) => existsSync(r) && newestSource(r) > built);
}

if (stale()) {
  const { buildCli } = await import(pathToFileURL(join(cliRoot, 'build.mjs')).href);
  await buildCli();
}

// Resolve the dist symlink once: this run reads one build, even if another process switches dist meanwhile.
const { realpathSync } = await import('node:fs');
const bundle = realpathSync(bundleLink);
const cacheFile = `${bundle}.v8cache`;
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  cachedData = undefined;
}
const script = new vm.Script(Module.wrap(readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
const module = { exports: {} };
script.runInThisContext().call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
await module.exports.main(process.argv.slice(2));

if (cachedData === undefined || script.cachedDataRejected) {
  try {
    const tmp = `${cacheFile}.${process.pid}`;
    writeFileSync(tmp, script.createCachedData());
    renameSync(tmp, cacheFile);
  } catch {
    // A read-only install: run without a cache.
  }
}
