/**
 * Which files an image may make us (and QEMU) open besides itself: backing
 * files, qcow2 external data files, VMDK extent files. An untrusted image can
 * name any path — `/etc/shadow` as a raw backing file would then show up as
 * guest data — so every named file passes this one check before anything
 * opens it: the reader here, the overlay package before it runs qemu-img, and
 * every guest command through them.
 *
 *  allow     any local file (the default: QEMU's behaviour, for trusted chains)
 *  same-dir  only files inside the top image's directory (or below it), judged
 *            after resolving symbolic links
 *  none      the image may name no other file at all
 *  function  called with every file before it is opened; throw to refuse it
 *
 * A named file that does not exist gets one answer whoever asks: it is judged
 * by where it would be (its directory, symbolic links resolved, plus its
 * name). Outside the directory under same-dir, or under none, it is refused;
 * otherwise opening it fails with `missingFileError`.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { Qcow2Error } from '../errors.ts';

export type BackingPolicyName = 'allow' | 'same-dir' | 'none';
export type BackingPolicy = BackingPolicyName | ((file: ReferencedFile) => void | Promise<void>);

export const BACKING_POLICIES: readonly BackingPolicyName[] = ['allow', 'same-dir', 'none'];

export function isBackingPolicy(v: unknown): v is BackingPolicyName {
  return typeof v === 'string' && (BACKING_POLICIES as readonly string[]).includes(v);
}

/** A file an image names. */
export interface ReferencedFile {
  kind: 'backing' | 'data-file' | 'extent';
  /** The image that names it. */
  image: string;
  /** The name as stored in the image. */
  name: string;
  /** The path it resolves to (absolute, or relative to the working directory). */
  path: string;
  /** The format asked for, when one is. */
  format?: string;
}

const ROLE: Record<ReferencedFile['kind'], string> = { backing: 'backing file', 'data-file': 'external data file', extent: 'VMDK extent file' };

export function roleOf(kind: ReferencedFile['kind']): string {
  return ROLE[kind];
}

/** The policy forbids a file an image (or one of its backing files) names. */
export class BackingRefusedError extends Qcow2Error {
  constructor(
    /** The image that names the file. */
    image: string,
    readonly named: string,
    readonly role: string,
    readonly reason: string,
  ) {
    super('chain', image, `names ${role} ${JSON.stringify(named)}, which guestlens refuses: ${reason}`, undefined, {
      message: `${image} names ${role} ${JSON.stringify(named)}, which guestlens refuses: ${reason}`,
    });
  }
}

/** A named file that cannot be opened: the same message from the reader and from the overlay's chain walk. */
export function missingFileError(ref: ReferencedFile, code: string): Qcow2Error {
  return new Qcow2Error(
    'chain',
    ref.image,
    `cannot open its ${roleOf(ref.kind)} ${JSON.stringify(ref.name)} (${ref.path}): ${code}`,
    undefined,
    { hint: code === 'ENOENT' ? 'was the chain moved? qemu-img rebase -u can repoint it' : undefined },
  );
}

/** The policy bound to one top image. */
export class BackingPolicyCheck {
  private constructor(
    readonly policy: BackingPolicy,
    private readonly topImage: string,
    private readonly topDirReal: string,
  ) {}

  static async for(policy: BackingPolicy | undefined, topImage: string): Promise<BackingPolicyCheck> {
    const p = policy ?? 'allow';
    if (typeof p !== 'function' && !isBackingPolicy(p)) {
      throw new Qcow2Error('chain', topImage, `unknown backing policy ${JSON.stringify(p)}; use one of ${BACKING_POLICIES.join(', ')}`);
    }
    // Only same-dir compares directories; the others need no system call.
    return new BackingPolicyCheck(p, topImage, p === 'same-dir' ? await realpath(dirname(topImage)) : dirname(topImage));
  }

  get name(): string {
    return typeof this.policy === 'function' ? 'custom' : this.policy;
  }

  /** Throws BackingRefusedError when `ref` may not be opened. */
  async check(ref: ReferencedFile): Promise<void> {
    const policy = this.policy;
    if (policy === 'allow') return;
    if (typeof policy === 'function') {
      await policy(ref);
      return;
    }
    const role = roleOf(ref.kind);
    if (policy === 'none') {
      throw new BackingRefusedError(ref.image, ref.path, role, 'the backing policy is "none" (the image may name no other file); use --backing same-dir or --backing allow if you trust it');
    }
    const real = await realpathOfMaybeMissing(ref.path);
    const dir = this.topDirReal;
    const inside = real === dir || real.startsWith(dir.endsWith(sep) ? dir : dir + sep);
    if (!inside) {
      const where = real === ref.path ? 'it lies' : `it resolves to ${JSON.stringify(real)}, which lies`;
      throw new BackingRefusedError(
        ref.image,
        ref.path,
        role,
        `${where} outside the image's directory ${JSON.stringify(dir)} (of ${this.topImage}), and the backing policy is "same-dir"; use --backing allow if you trust this image`,
      );
    }
  }
}

/** Where a possibly missing file would be: its directory's real path plus its name. */
async function realpathOfMaybeMissing(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    try {
      return join(await realpath(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}
