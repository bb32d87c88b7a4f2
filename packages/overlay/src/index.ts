export { createOverlay, withOverlay, type Overlay, type OverlayOptions, type WithOverlayOptions } from './overlay.ts';
export { inspectChain, type InspectChainOptions } from './inspectChain.ts';
export { MAX_CHAIN_DEPTH, type ChainEntry } from './chain.ts';
export { BACKING_POLICIES, isBackingPolicy, type BackingPolicyName as BackingPolicy } from '@guestlens/qcow2-js';
export { OVERLAY_FORMATS, isOverlayFormat, type OverlayFormat } from './formats.ts';
export { backingJson, parseBackingReference, MAX_BACKING_NAME_BYTES, type BackingReference, type BackingTarget } from './backingReference.ts';
export { PRIVATE_DIR_PREFIX, livePrivateDirs } from './privateDir.ts';
export * from './errors.ts';
export { useCommandRunner, type CommandRunner } from './qemuImg.ts';
