/**
 * statfs as this kernel's btrfs_statfs computes it for a fresh mount
 * (fs/btrfs/super.c, block-rsv.c; see README.md for the rule):
 * block-group usage per space (data, metadata, system) scaled by each
 * profile's copies, the data profile's factor, the global block reserve
 * counted as used, and for f_bavail the free room in data chunks plus what
 * the chunk allocator could still give data from unallocated device space.
 * By default the figures of the guest's own (read-write) mount, which are
 * also what libguestfs's appliance shows; `readOnlyMount` gives this
 * kernel's read-only mount, where data chunks' free room does not count.
 */
import type { StatFs } from '../filesystem.ts';
import type { Chunk } from './chunkMap.ts';
import { parseBlockGroupItem } from './items.ts';
import { BLOCK_GROUP, BLOCK_GROUP_TYPE_MASK, COMPAT_RO, KEY, NAME_LEN, OBJECTID, RAID_ATTRIBUTES, RAID_INDEX_ORDER, STRIPE_LEN, profileOf, type Profile } from './layout.ts';
import type { DevItem } from './superblock.ts';
import { decodeItem, findRoot, treeRootOf } from './roots.ts';
import { exactItem, type TreeRoot } from './tree.ts';
import type { BtrfsVolume } from './volume.ts';

const SZ_1M = 1024n * 1024n;
const SZ_512M = 512n * SZ_1M;
const BTRFS_UNLINK_METADATA_UNITS = 6n;

interface SpaceInfo {
  flags: number;
  diskTotal: bigint;
  diskUsed: bigint;
  profiles: Set<Profile>;
}

export interface StatfsInputs {
  vol: BtrfsVolume;
  rootTree: TreeRoot;
  devItems: Map<bigint, DevItem>;
  inexactReasons: string[];
  /** Model this kernel's read-only mount (see computeStatfs) instead of the guest's own read-write mount. */
  readOnlyMount?: boolean;
}

/** The figures behind statfs, for tests and diagnostics. */
export interface BtrfsSpace {
  spaces: SpaceInfo[];
  globalReserve: bigint;
  dataFactor: number;
  unallocatedForData: bigint;
}

export async function computeSpace(inputs: StatfsInputs): Promise<BtrfsSpace> {
  const { vol, rootTree, devItems } = inputs;
  const sb = vol.sb;
  const hasBgTree = (sb.compatRo & BigInt(COMPAT_RO.BLOCK_GROUP_TREE)) !== 0n;
  const hasFst = (sb.compatRo & BigInt(COMPAT_RO.FREE_SPACE_TREE)) !== 0n;
  const bgTreeId = hasBgTree ? OBJECTID.BLOCK_GROUP_TREE : OBJECTID.EXTENT_TREE;
  const bgRootItem = await findRoot(vol, rootTree, bgTreeId);
  if (!bgRootItem) throw vol.corrupt('root tree', undefined, `it has no root item for the ${hasBgTree ? 'block group' : 'extent'} tree`);
  const bgTree = treeRootOf(bgTreeId, bgRootItem);
  bgTree.name = hasBgTree ? 'block group tree' : 'extent tree';

  const spaces = new Map<number, SpaceInfo>();
  for (const chunk of vol.chunks.all) await addBlockGroup(vol, bgTree, chunk, spaces);

  // The global block reserve (btrfs_update_global_block_rsv): the size of the trees a transaction must always be able to change.
  let reserve = 0n; // the root tree's own root_item (in memory only) starts a mount with bytes_used 0
  let minItems = 1n;
  for (const id of [OBJECTID.EXTENT_TREE, OBJECTID.CSUM_TREE, ...(hasFst ? [OBJECTID.FREE_SPACE_TREE] : [])]) {
    const item = await findRoot(vol, rootTree, id);
    if (!item) continue;
    reserve += item.bytesUsed;
    minItems++;
  }
  if (hasBgTree) {
    reserve += bgRootItem.bytesUsed;
    minItems++;
  }
  minItems += BTRFS_UNLINK_METADATA_UNITS;
  const insertSize = (n: bigint) => BigInt(sb.nodesize) * 8n * 2n * n;
  const delayedRefBytes = (n: bigint) => insertSize(n) * (hasFst ? 2n : 1n);
  const floor = insertSize(minItems) + delayedRefBytes(BTRFS_UNLINK_METADATA_UNITS);
  if (reserve < floor) reserve = floor;
  if (reserve > SZ_512M) reserve = SZ_512M;

  let dataFactor = 1;
  const dataProfiles = new Set<Profile>();
  for (const s of spaces.values()) {
    if (!(s.flags & BLOCK_GROUP.DATA)) continue;
    for (const p of RAID_INDEX_ORDER) if (s.profiles.has(p)) dataFactor = RAID_ATTRIBUTES[p].ncopies;
    for (const p of s.profiles) dataProfiles.add(p);
  }
  return { spaces: [...spaces.values()], globalReserve: reserve, dataFactor, unallocatedForData: unallocatedForData(vol, devItems, reduceProfile(dataProfiles, vol.devices.size)) };
}

async function addBlockGroup(vol: BtrfsVolume, bgTree: TreeRoot, chunk: Chunk, spaces: Map<number, SpaceInfo>): Promise<void> {
  const found = await exactItem(vol, bgTree, { objectid: chunk.logical, type: KEY.BLOCK_GROUP_ITEM, offset: chunk.length });
  if (!found) throw vol.corrupt(`chunk at logical ${chunk.logical}`, undefined, `no block group item of length ${chunk.length} in the ${bgTree.name}`);
  const bg = decodeItem(vol, found, `block group ${chunk.logical}`, parseBlockGroupItem);
  const profile = profileOf(bg.flags);
  if (!profile) throw vol.corrupt(`block group ${chunk.logical}`, undefined, `flags 0x${bg.flags.toString(16)} name more than one profile`);
  if (bg.used > chunk.length) throw vol.corrupt(`block group ${chunk.logical}`, undefined, `${bg.used} bytes used of ${chunk.length}`);
  const type = Number(bg.flags & BigInt(BLOCK_GROUP_TYPE_MASK));
  const factor = BigInt(RAID_ATTRIBUTES[profile].ncopies);
  let space = spaces.get(type);
  if (!space) spaces.set(type, (space = { flags: type, diskTotal: 0n, diskUsed: 0n, profiles: new Set() }));
  space.diskTotal += chunk.length * factor;
  space.diskUsed += bg.used * factor;
  space.profiles.add(profile);
}

/** btrfs_reduce_alloc_profile: of the data profiles in use, the most redundant one the devices allow. */
function reduceProfile(profiles: Set<Profile>, devices: number): Profile {
  const allowed = [...profiles].filter((p) => RAID_ATTRIBUTES[p].devsMin <= devices);
  for (const p of ['raid1c4', 'raid6', 'raid1c3', 'raid5', 'raid10', 'raid1', 'dup', 'raid0'] as const) if (allowed.includes(p)) return p;
  return 'single';
}

/** btrfs_calc_avail_data_space: what the chunk allocator could still give data, simulated over the devices' unallocated space. */
function unallocatedForData(vol: BtrfsVolume, devItems: Map<bigint, DevItem>, profile: Profile): bigint {
  const attrs = RAID_ATTRIBUTES[profile];
  const present = [...devItems.values()].filter((d) => vol.devices.has(d.devid));
  let numStripes = 1;
  if (profile === 'raid0') numStripes = present.length;
  else if (profile === 'raid1' || profile === 'raid1c3' || profile === 'raid1c4') numStripes = attrs.ncopies;
  else if (profile === 'raid10') numStripes = 4;
  const minStripeSize = BigInt(attrs.devStripes) * BigInt(STRIPE_LEN);
  const avail: bigint[] = [];
  for (const d of present) {
    let space = d.totalBytes > d.bytesUsed ? d.totalBytes - d.bytesUsed : 0n;
    space -= space % BigInt(STRIPE_LEN);
    // The first megabyte of every device is never allocated.
    if (space <= SZ_1M + minStripeSize) continue;
    avail.push(space - SZ_1M);
  }
  avail.sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  let nr = avail.length;
  let i = nr - 1;
  let total = 0n;
  while (nr >= attrs.devsMin) {
    numStripes = Math.min(numStripes, nr);
    if (avail[i] >= minStripeSize) {
      const size = avail[i];
      total += size * BigInt(numStripes);
      for (let j = i + 1 - numStripes; j <= i; j++) avail[j] -= size;
    }
    i--;
    nr--;
  }
  return total;
}

export async function computeStatfs(inputs: StatfsInputs): Promise<StatFs> {
  const { vol } = inputs;
  const space = await computeSpace(inputs);
  const bits = BigInt(Math.log2(vol.sb.sectorsize));
  const factor = BigInt(space.dataFactor);
  let totalUsed = 0n;
  let freeData = 0n;
  for (const s of space.spaces) {
    if (s.flags & BLOCK_GROUP.DATA) freeData += s.diskTotal - s.diskUsed;
    totalUsed += s.diskUsed;
  }
  const blocks = (vol.sb.totalBytes / factor) >> bits;
  let bfree = blocks - ((totalUsed / factor) >> bits);
  const reserveBlocks = space.globalReserve >> bits;
  bfree = bfree >= reserveBlocks ? bfree - reserveBlocks : 0n;
  // This kernel's read-only mount makes every block group read-only (sysfs shows their free space as
  // bytes_readonly), and btrfs_statfs takes the free room of read-only data block groups back out. The
  // guest's own read-write mount (and older kernels' read-only mounts, libguestfs's appliance among them) count it.
  if (inputs.readOnlyMount) freeData = 0n;
  const bavail = (freeData / factor + space.unallocatedForData / factor) >> bits;
  const out: StatFs = {
    bsize: vol.sb.sectorsize,
    blocks: Number(blocks),
    bfree: Number(bfree < 0n ? 0n : bfree),
    bavail: Number(bavail),
    files: 0,
    ffree: 0,
    namelen: NAME_LEN,
    exact: inputs.inexactReasons.length === 0,
  };
  if (inputs.inexactReasons.length) out.reason = inputs.inexactReasons.join('; ');
  return out;
}
