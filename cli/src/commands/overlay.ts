/**
 * `guestlens overlay create|info`: throw-away qcow2 overlays over guest images,
 * for reading a disk with QEMU's own tools while a VM writes it.
 */
import type { Argv, CommandModule } from 'yargs';
// createOverlay and friends load when the command runs (see cli/build.mjs).
import { BACKING_POLICIES, isBackingPolicy, type BackingPolicyName as BackingPolicy } from '@guestlens/qcow2-js/policy';
import type { ChainEntry } from '@guestlens/overlay';
import { UsageError } from '../errors.ts';
import { printJson, println } from '../output/print.ts';

const UNTRUSTED_NOTE =
  'Untrusted raw images: give --format raw. Without --format the format is read from the header magic (qcow2, vmdk, vdi, vhdx, vpc; anything else is raw), ' +
  'and a guest can write such a header into its own raw disk (CVE-2010-3851).';

interface CreateArgs {
  _: (string | number)[];
  image?: string;
  format?: string;
  dir?: string;
  keep: boolean;
  json: boolean;
  backing?: string | boolean;
}

interface InfoArgs {
  _: (string | number)[];
  overlay?: string;
  format?: string;
  json: boolean;
  backing?: string | boolean;
}

function backingOption<T>(y: Argv<T>) {
  return y.option('backing', {
    type: 'string',
    describe: `Which files the image may name besides itself (backing files, data files, VMDK extents): ${BACKING_POLICIES.join(', ')}. ` +
      'same-dir: only inside the image\'s directory; none: no other file (--no-backing). Default allow.',
  });
}

/**
 * The image operand: yargs leaves whatever follows `--` in argv._, so a file
 * named "-f raw" can be given as `-- '-f raw'`.
 */
function operand(argv: { _: (string | number)[] }, given: string | undefined, what: string): string {
  const afterDashes = argv._.slice(2).map(String);
  if (given !== undefined && afterDashes.length === 0) return given;
  if (given === undefined && afterDashes.length === 1) return afterDashes[0];
  throw new UsageError(given === undefined && afterDashes.length === 0 ? `Name the ${what}.` : `Name exactly one ${what}.`);
}

/** --backing POLICY, or --no-backing (yargs turns it into backing=false). */
function backingPolicy(value: string | boolean | undefined): BackingPolicy | undefined {
  if (value === undefined || value === true) return undefined;
  if (value === false) return 'none';
  if (!isBackingPolicy(value)) throw new UsageError(`--backing ${value}: use one of ${BACKING_POLICIES.join(', ')}`);
  return value;
}

const createCommand: CommandModule<object, CreateArgs> = {
  command: 'create [image]',
  describe: 'Make a qcow2 overlay over IMAGE and print its path',
  builder: (y) =>
    backingOption(
      y
        .positional('image', { type: 'string', describe: 'Guest disk image (qcow2, raw, vmdk, vdi, vhdx, vpc) or block device; required (after -- if it starts with a dash)' })
        .option('format', { type: 'string', describe: 'Format of IMAGE (default: from its header magic, else raw)' })
        .option('dir', { type: 'string', describe: 'Make the overlay\'s private directory here (default: $TMPDIR or /tmp)' })
        .option('keep', { type: 'boolean', default: false, describe: 'Leave the overlay in place when guestlens exits (remove its directory yourself)' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the overlay and the chain found as JSON' }),
    ).epilog(
      'The overlay\'s backing file is IMAGE opened with locking off, so QEMU tools (qemu-io -r, qemu-img, qemu-nbd -r) can read it while a VM writes IMAGE; ' +
        'IMAGE itself is never written.\n\n' +
        'Without --keep the overlay lives as long as this command: it prints the path, then waits until you press Ctrl-C or Ctrl-D, ' +
        'its standard input closes, or it gets SIGTERM, and removes the overlay. Use it from another shell meanwhile. ' +
        'With --keep it prints the path and exits at once; remove the directory around the overlay when done.\n\n' +
        UNTRUSTED_NOTE,
    ) as unknown as Argv<CreateArgs>,
  handler: async (argv) => {
    const image = operand(argv, argv.image, 'image to overlay');
    const backing = backingPolicy(argv.backing);
    const { createOverlay } = await import('@guestlens/overlay');
    const overlay = await createOverlay(image, { format: argv.format, dir: argv.dir, backing });
    if (argv.keep) overlay.keep();
    if (argv.json) {
      printJson({ path: overlay.path, dir: overlay.dir, image: overlay.image, format: overlay.format, backing: overlay.backing, kept: argv.keep, chain: overlay.chain });
    } else {
      println(overlay.path);
    }
    if (argv.keep) return;
    if (process.stdin.isTTY) process.stderr.write('guestlens: the overlay is removed when you press Ctrl-C or Ctrl-D (--keep leaves it in place)\n');
    try {
      await untilInputEnds();
    } finally {
      await overlay.close();
    }
  },
};

/** Resolves when standard input ends (Ctrl-D, the writing end closed, /dev/null). Signals are the overlay package's business. */
async function untilInputEnds(): Promise<void> {
  const stdin = process.stdin;
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    stdin.once('end', done);
    stdin.once('close', done);
    stdin.once('error', done);
    stdin.on('data', () => { /* input is only a keep-alive; discard it */ });
    stdin.resume();
  });
  stdin.destroy();
}

const infoCommand: CommandModule<object, InfoArgs> = {
  command: 'info [overlay]',
  describe: 'Show the backing chain of an overlay (or of any image)',
  builder: (y) =>
    backingOption(
      y
        .positional('overlay', { type: 'string', describe: 'Overlay made by "overlay create", or any image; required' })
        .option('format', { type: 'string', describe: 'Format of OVERLAY (default: from its header magic, else raw)' })
        .option('json', { type: 'boolean', default: false, describe: 'Print the chain as JSON' }),
    ).epilog(UNTRUSTED_NOTE) as unknown as Argv<InfoArgs>,
  handler: async (argv) => {
    const image = operand(argv, argv.overlay, 'overlay (or image) to show');
    const { inspectChain } = await import('@guestlens/overlay');
    const chain = await inspectChain(image, { format: argv.format, backing: backingPolicy(argv.backing) });
    if (argv.json) printJson({ image, chain });
    else printChain(chain, (await import('@guestlens/qcow2-js')).sizeToString);
  },
};

/** The chain as a table; sizes as qemu-img prints them (image info uses the same). */
function printChain(chain: ChainEntry[], sizeToString: (bytes: number) => string): void {
  const rows = chain.map((e) => [String(e.depth), e.format, sizeToString(e.virtualSize), e.filename + notes(e)]);
  const header = ['depth', 'format', 'size', 'file'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  println(line(header));
  for (const r of rows) println(line(r));
}

function notes(e: ChainEntry): string {
  const n: string[] = [];
  if (e.lockingOff) n.push('locking off');
  if (e.formatFrom === 'probed' && e.depth > 0) n.push('no recorded format: probed');
  if (e.dataFile) n.push(`data file ${JSON.stringify(e.dataFile)}${e.dataFileRaw ? ' (raw)' : ''}`);
  if (e.extents?.length) n.push(`extents ${e.extents.map((x) => JSON.stringify(x)).join(', ')}`);
  if (e.blockDevice) n.push('block device');
  return n.length ? `  (${n.join('; ')})` : '';
}


export const overlayCommand: CommandModule = {
  command: 'overlay',
  describe: 'Throw-away qcow2 overlays QEMU tools can read while a VM writes the image',
  builder: (y) =>
    y
      .command(createCommand as unknown as CommandModule)
      .command(infoCommand as unknown as CommandModule)
      .demandCommand(1, 'Name an overlay command: create or info')
      .epilog(UNTRUSTED_NOTE),
  handler: () => {},
};
