/**
 * `guestlens locks IMAGE... [--json]`: who holds each image by QEMU's locking
 * protocol — pid, command, which permissions each holder uses and refuses to
 * share — and a one-line verdict.
 */
import type { Argv, CommandModule } from 'yargs';
// Packages load when the command runs, not when the CLI starts (see cli/build.mjs).
import type { ImageHolder, ProbeResult } from '@guestlens/locking';
import { EXIT_ERROR, EXIT_PARTIAL, describeError, isUserError } from '../errors.ts';
import { printJson, println } from '../output/print.ts';

interface LocksArgs {
  images: string[];
  json: boolean;
}

function holderLine(h: ImageHolder, holderLabel: (h: ImageHolder) => string): string {
  const via = [h.fd === null ? undefined : `fd ${h.fd}`, h.kind].filter(Boolean).join(', ');
  const label = h.pid === null ? holderLabel(h) : `${h.command ?? 'unknown command'} (pid ${h.pid}, ${via})`;
  const parts = [
    h.uses.length ? `uses ${h.uses.join(', ')}` : 'uses nothing',
    h.refusesToShare.length ? `refuses to share ${h.refusesToShare.join(', ')}` : 'shares everything',
  ];
  return `  ${label}: ${parts.join('; ')} [bytes ${h.bytes.join(',')}]`;
}

function printText(result: ProbeResult, holderLabel: (h: ImageHolder) => string): void {
  println(`${result.path}: ${result.verdict}`);
  for (const h of result.holders) println(holderLine(h, holderLabel));
}

export const locksCommand: CommandModule<object, LocksArgs> = {
  command: 'locks <images..>',
  describe: 'Show who holds each image by QEMU\'s locking protocol',
  builder: (y) =>
    y
      .positional('images', { type: 'string', array: true, demandOption: true, describe: 'Disk images (files or block devices); only read access is needed' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one object per image: every lock byte, the holders, the verdict' })
      .epilog(
        'QEMU locks bytes 100-103 of an image for the permissions it uses (consistent read, write, write unchanged, resize) ' +
          'and bytes 200-203 for those it refuses to share; QEMU 6.1 and older may also hold 104/204 (change children). ' +
          'Holders are named from /proc (run as root to see other users\' processes).',
      ) as unknown as Argv<LocksArgs>,
  handler: async (argv) => {
    const { holderLabel, probe } = await import('@guestlens/locking');
    const results: Array<ProbeResult | { path: string; error: string }> = [];
    let failures = 0;
    for (const path of argv.images.map(String)) {
      try {
        results.push(await probe(path));
      } catch (err) {
        if (!isUserError(err)) throw err;
        // With a single image the error is the whole answer: let main print it.
        if (argv.images.length === 1) throw err;
        failures++;
        process.stderr.write(`guestlens: ${describeError(err)}\n`);
        results.push({ path, error: describeError(err) });
      }
    }
    if (argv.json) printJson(results);
    else for (const r of results) if ('verdict' in r) printText(r, holderLabel);
    if (failures > 0) process.exitCode = failures === results.length ? EXIT_ERROR : EXIT_PARTIAL;
  },
};
