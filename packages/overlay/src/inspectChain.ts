/**
 * The backing chain of an existing image or overlay, as `overlay info` shows
 * it: the same level-by-level walk createOverlay does, without making anything.
 */
import { walkChain, type ChainEntry } from './chain.ts';
import { OverlayError } from './errors.ts';
import { resolveImage } from './imageTarget.ts';
import { BACKING_POLICIES, BackingPolicyCheck, isBackingPolicy, type BackingPolicyName as BackingPolicy } from '@guestlens/qcow2-js';
import { ensureQemuImg } from './qemuImg.ts';

export interface InspectChainOptions {
  /** The image's format; detected by magic when absent. */
  format?: string;
  /** Default 'allow': listing a chain opens each level's header only. */
  backing?: BackingPolicy;
}

export async function inspectChain(image: string, opts: InspectChainOptions = {}): Promise<ChainEntry[]> {
  const policyName = opts.backing ?? 'allow';
  if (!isBackingPolicy(policyName)) throw new OverlayError(`unknown backing policy "${String(policyName)}"; use one of ${BACKING_POLICIES.join(', ')}`);
  const target = await resolveImage(image, opts.format);
  await ensureQemuImg();
  return walkChain(target, await BackingPolicyCheck.for(policyName, target.path));
}
