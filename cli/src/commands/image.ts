/**
 * `guestlens image info|cat`: what an image is (like `qemu-img info
 * --backing-chain`) and its guest-visible bytes (like `qemu-img dd`), read by
 * the in-repo readers (qcow2, vmdk, vdi, vhdx, vpc, raw), and by QEMU through
 * NBD for the formats they don't read (or with --reader qemu). `image info`
 * says which read it. Images are opened read-only and never written.
 */
import type { Argv, CommandModule } from 'yargs';
import type { BackingPolicy, ImageLayer, OpenImageOptions } from '@guestlens/qcow2-js';
import type { OpenedImage } from '@guestlens/inspect';
import { GuestlensError } from '@guestlens/block';
import { UsageError } from '../errors.ts';
import { printJson } from '../output/print.ts';

const BACKING_POLICIES = ['allow', 'same-dir', 'none'] as const;
/** The formats guestlens reads itself (qemu-img's names). */
const FORMATS = ['qcow2', 'raw', 'vmdk', 'vdi', 'vhdx', 'vpc'] as const;

const UNTRUSTED_NOTE =
  'Without --format an image with a known magic (qcow2, vmdk, vdi, vhdx, vpc) is read in that format and anything else as raw; a guest can write a qcow2 header into its own raw disk ' +
  '(CVE-2010-3851), so give --format raw for untrusted raw images. Files an image names (backing files, an external data file, VMDK extents, VHD/VHDX parents) are opened as QEMU would; ' +
  '--backing same-dir or none restricts that for untrusted images.';

interface CommonArgs {
  _: (string | number)[];
  image?: string;
  format?: string;
  backing?: string | boolean;
  'allow-external-data-file': boolean;
  reader?: 'native' | 'qemu';
  'key-file'?: string;
}

interface InfoArgs extends CommonArgs {
  json: boolean;
}

interface CatArgs extends CommonArgs {
  offset?: string;
  length?: string;
}

function commonOptions<T>(y: Argv<T>) {
  return y
    .positional('image', { type: 'string', describe: 'qcow2, vmdk, vdi, vhdx, vpc or raw image (or block device); required (after -- if it starts with a dash)' })
    .option('format', { type: 'string', choices: FORMATS as unknown as string[], describe: 'Format of IMAGE (default: the one its magic says, else raw)' })
    .option('backing', {
      type: 'string',
      describe: `Which files the image may name (backing files, data file, VMDK extents): ${BACKING_POLICIES.join(', ')}. same-dir: only inside the image's directory; none: no other file (--no-backing). Default allow.`,
    })
    .option('allow-external-data-file', { type: 'boolean', default: false, describe: 'Read a qcow2 external data file named in the image (refused by default)' })
    .option('reader', {
      type: 'string',
      choices: ['native', 'qemu'],
      describe: "Who reads the format: by default guestlens where it has a reader, QEMU (qemu-storage-daemon over NBD) for the rest (qed, parallels, LUKS, ...); native: guestlens's only; qemu: QEMU's, to compare",
    })
    .option('key-file', { type: 'string', describe: 'A file whose first line is the passphrase of a LUKS-encrypted image (read by QEMU)' });
}

/**
 * The image through QEMU, when asked for or when guestlens has no reader for
 * a layer of it (`nativeReason`); undefined when guestlens reads it.
 */
async function qemuSource(image: string, argv: CommonArgs, layers: ImageLayer[]): Promise<OpenedImage | undefined> {
  const unreadable = layers.find((l) => !l.readable);
  if (argv.reader === 'native' || (argv.reader === undefined && !unreadable)) return undefined;
  const { openImageWithQemu, openInsteadWithQemu } = await import('@guestlens/inspect');
  const secret = argv['key-file'] === undefined ? undefined : await (await import('../guest/guestJobs.ts')).readKeyFile(argv['key-file']);
  const spec = { path: image, ...(argv.format ? { format: argv.format } : {}), ...(secret === undefined ? {} : { secret }) };
  const policy = openOptions(argv).backingPolicy;
  const options = { overlay: false, backing: typeof policy === 'string' ? policy : undefined };
  if (!unreadable) return openImageWithQemu(spec, options);
  return openInsteadWithQemu(spec, options, `${unreadable.unreadableReason ?? `in ${unreadable.format} format`}`);
}

/** The image operand: yargs leaves what follows `--` in argv._, so an image named "-x" can be given as `-- -x`. */
function operand(argv: CommonArgs): string {
  const afterDashes = argv._.slice(2).map(String);
  if (argv.image !== undefined && afterDashes.length === 0) return argv.image;
  if (argv.image === undefined && afterDashes.length === 1) return afterDashes[0];
  throw new UsageError(argv.image === undefined && afterDashes.length === 0 ? 'Name the image.' : 'Name exactly one image.');
}

function openOptions(argv: CommonArgs): OpenImageOptions {
  let backingPolicy: BackingPolicy | undefined;
  if (argv.backing === false) backingPolicy = 'none';
  else if (typeof argv.backing === 'string') {
    if (!(BACKING_POLICIES as readonly string[]).includes(argv.backing)) throw new UsageError(`--backing ${argv.backing}: use one of ${BACKING_POLICIES.join(', ')}`);
    backingPolicy = argv.backing as BackingPolicy;
  }
  return { format: argv.format as OpenImageOptions['format'], backingPolicy, allowExternalDataFile: argv['allow-external-data-file'] };
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** A byte count: digits with an optional binary suffix (k, M, G, T, P; "KiB" and "K" alike). */
export function parseByteCount(text: string, option: string): number {
  const m = /^([0-9]+)\s*([kmgtp]?)(?:i?b)?$/i.exec(text.trim());
  const value = m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : NaN;
  if (!Number.isSafeInteger(value)) throw new UsageError(`--${option} ${text}: give a byte count such as 4096, 64k or 2G`);
  return value;
}

const infoCommand: CommandModule<object, InfoArgs> = {
  command: 'info [image]',
  describe: 'Format, virtual size, cluster size, compression type, features and the whole backing chain of IMAGE',
  builder: (y) =>
    commonOptions(y)
      .option('json', { type: 'boolean', default: false, describe: "Print the chain as JSON, with qemu-img info's field names" })
      .epilog(UNTRUSTED_NOTE) as unknown as Argv<InfoArgs>,
  handler: async (argv) => {
    const image = operand(argv);
    if (argv['key-file'] !== undefined && argv.reader === 'native') throw new UsageError('--key-file: encrypted images are read by QEMU; leave out --reader native');
    const { describeImage, formatImageInfo, imageChain, openImage } = await import('@guestlens/qcow2-js');
    const top = await openImage(image, openOptions(argv));
    try {
      const chain = describeImage(top);
      // Who reads it, shown on the top layer: guestlens, QEMU (with the size QEMU sees), or nobody (and why).
      let qemu: OpenedImage | undefined;
      try {
        qemu = await qemuSource(image, argv, imageChain(top));
        if (qemu) {
          chain[0].reader = 'qemu';
          chain[0]['virtual-size'] ??= qemu.source.size;
        } else chain[0].reader = chain.every((l) => l.readable !== false) ? 'native' : 'none';
      } catch (err) {
        if (!(err instanceof GuestlensError)) throw err;
        chain[0].reader = 'none';
        chain[0]['reader-error'] = err.message;
      } finally {
        await qemu?.close();
      }
      if (argv.json) printJson(chain);
      else process.stdout.write(formatImageInfo(chain));
    } finally {
      await top.close();
    }
  },
};

const catCommand: CommandModule<object, CatArgs> = {
  command: 'cat [image]',
  describe: 'Write the guest-visible bytes of IMAGE (or of a range of it) to standard output',
  builder: (y) =>
    commonOptions(y)
      .option('offset', { type: 'string', describe: 'First byte of the guest disk to write (default 0); suffixes k, M, G, T' })
      .option('length', { type: 'string', describe: 'Number of bytes to write (default: to the end of the disk)' })
      .example('$0 image cat disk.qcow2 > disk.raw', 'the whole guest disk, as qemu-img convert -O raw would write it')
      .example('$0 image cat --offset 1M --length 512 disk.qcow2 | xxd', 'one sector of the guest disk')
      .epilog(`Streams with flat memory whatever the disk's size; holes are not read.\n\n${UNTRUSTED_NOTE}`) as unknown as Argv<CatArgs>,
  handler: async (argv) => {
    const image = operand(argv);
    if (process.stdout.isTTY) throw new UsageError('refusing to write raw disk bytes to a terminal: redirect standard output to a file or a pipe');
    const offset = argv.offset === undefined ? 0 : parseByteCount(argv.offset, 'offset');
    const requested = argv.length === undefined ? undefined : parseByteCount(argv.length, 'length');
    const { guestChunks, imageChain, openImage } = await import('@guestlens/qcow2-js');
    const top = await openImage(image, openOptions(argv));
    let qemu: OpenedImage | undefined;
    try {
      qemu = await qemuSource(image, argv, imageChain(top));
    } catch (err) {
      await top.close();
      throw err;
    }
    const source = qemu?.source ?? top;
    try {
      // A format recognised but not read: refuse before writing a byte (its size is unknown, its bytes are not the guest's).
      const unreadable = qemu ? undefined : imageChain(top).find((layer) => !layer.readable);
      if (unreadable) throw new GuestlensError('EOPNOTSUPP', `${unreadable.name}: is ${unreadable.unreadableReason ?? `in ${unreadable.format} format`}`);
      if (offset > source.size) throw new UsageError(`--offset ${offset} is past the end of the guest disk (${source.size} bytes)`);
      const length = requested ?? source.size - offset;
      if (offset + length > source.size) throw new UsageError(`--offset ${offset} --length ${length} runs past the end of the guest disk (${source.size} bytes)`);
      const write = stdoutWriter();
      for await (const chunk of guestChunks(source, { offset, length })) {
        // A reader that went away (`| head -c`) is not an error: stop quietly.
        if (!(await write(chunk))) break;
      }
    } finally {
      await qemu?.close();
      await top.close();
    }
  },
};

/**
 * Writes to standard output respecting its backpressure. Resolves false once
 * the reading end is gone (EPIPE); other write errors are thrown.
 */
function stdoutWriter(): (chunk: Buffer) => Promise<boolean> {
  const out = process.stdout;
  let closed = false;
  let failure: Error | undefined;
  out.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') closed = true;
    else failure = err;
  });
  return async (chunk) => {
    if (failure) throw failure;
    if (closed) return false;
    // Wait until the chunk is handed to the OS: guestChunks reuses its buffer for the next one.
    // That also keeps at most one chunk queued in the stream (backpressure).
    await new Promise<void>((resolve) => {
      const done = () => {
        out.off('error', done);
        out.off('close', done);
        resolve();
      };
      out.on('error', done);
      out.on('close', done);
      out.write(chunk, () => done());
    });
    if (failure) throw failure;
    return !closed;
  };
}

export const imageCommand: CommandModule = {
  command: 'image',
  describe: 'Look at an image file: qcow2 header and backing chain, or its guest bytes',
  builder: (y) =>
    y
      .command(infoCommand as unknown as CommandModule)
      .command(catCommand as unknown as CommandModule)
      .demandCommand(1, 'Name an image command: info or cat')
      .epilog(UNTRUSTED_NOTE),
  handler: () => {},
};
