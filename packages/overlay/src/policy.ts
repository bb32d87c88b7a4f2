/**
 * Which files an image may make us (and QEMU) open besides itself: backing
 * files, qcow2 external data files, VMDK extent files. An untrusted image can
 * name any path — `/etc/shadow` as a raw backing file would then show up as
 * guest data — so every named file passes this check before anything opens it.
 *
 *  allow     any local file (the default: guestlens's own images, trusted chains)
 *  same-dir  only files inside the top image's directory (or below it), judged
 *            after resolving symbolic links
 *  none      the image may name no other file at all
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { BackingRefusedError } from './errors.ts';

export type BackingPolicy = 'allow' | 'same-dir' | 'none';

export const BACKING_POLICIES: readonly BackingPolicy[] = ['allow', 'same-dir', 'none'];

export function isBackingPolicy(v: string): v is BackingPolicy {
  return (BACKING_POLICIES as readonly string[]).includes(v);
}

/** The policy bound to one top image. */
export class PolicyCheck {
  private constructor(
    readonly policy: BackingPolicy,
    private readonly topImage: string,
    private readonly topDirReal: string,
  ) {}

  static async for(policy: BackingPolicy, topImage: string): Promise<PolicyCheck> {
    // Only same-dir compares directories; the others need no system call.
    return new PolicyCheck(policy, topImage, policy === 'same-dir' ? await realpath(dirname(topImage)) : dirname(topImage));
  }

  /**
   * Throws BackingRefusedError when `named` (an absolute path, named by `by`
   * as its `role`) may not be opened.
   */
  async check(by: string, role: string, named: string): Promise<void> {
    if (this.policy === 'allow') return;
    if (this.policy === 'none') {
      throw new BackingRefusedError(by, named, role, 'the backing policy is "none" (the image may name no other file); use --backing same-dir or --backing allow if you trust it');
    }
    const real = await realpathOfMaybeMissing(named);
    const inside = real === this.topDirReal || real.startsWith(this.topDirReal.endsWith(sep) ? this.topDirReal : this.topDirReal + sep);
    if (!inside) {
      throw new BackingRefusedError(
        by,
        named,
        role,
        `it ${real === named ? 'lies' : `resolves to ${JSON.stringify(real)}, which lies`} outside ${JSON.stringify(this.topDirReal)}, the directory of ${this.topImage}, and the backing policy is "same-dir"; use --backing allow if you trust this image`,
      );
    }
  }
}

/** A missing file is reported by the chain walk; its directory still has to be judged through its symbolic links. */
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
