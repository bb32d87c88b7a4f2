/**
 * The headers of an allocation group: the AGF (free space: its counters and
 * btree roots) in sector 1 and the AGI (inodes: counters, inode btree roots,
 * the unlinked lists) in sector 2. Checked as the kernel's buffer verifiers
 * check them (xfs_agf_verify, xfs_agi_verify), CRC and UUID on v5. The
 * reverse-mapping and reference-count btrees they also root are not read:
 * both features are read-only compatible and change nothing a reader sees.
 */
import { AGF, AGF_SECTOR, AGI, AGI_SECTOR, NULLAGINO, XFS_AGF_MAGIC, XFS_AGF_VERSION, XFS_AGI_MAGIC, XFS_AGI_UNLINKED_BUCKETS, XFS_AGI_VERSION } from './layout.ts';
import type { XfsVolume } from './volume.ts';

/** A generous bound on AG btree heights (the kernel computes a tighter one per geometry). */
export const MAX_AG_BTREE_LEVELS = 9;
/** Size of the AGFL header on v5 (magic, seqno, uuid, lsn, crc). */
const AGFL_HDR_V5 = 36;

export interface Agf {
  agno: number;
  agf_length: number;
  agf_bno_root: number;
  agf_cnt_root: number;
  agf_bno_level: number;
  agf_cnt_level: number;
  agf_flfirst: number;
  agf_fllast: number;
  agf_flcount: number;
  agf_freeblks: number;
  agf_longest: number;
  agf_btreeblks: number;
  agf_rmap_blocks: number;
  agf_refcount_blocks: number;
}

export interface Agi {
  agno: number;
  agi_length: number;
  agi_count: number;
  agi_root: number;
  agi_level: number;
  agi_freecount: number;
  agi_free_root: number;
  agi_free_level: number;
  /** Heads of the unlinked-inode lists (AG inode numbers; NULLAGINO when empty). */
  agi_unlinked: number[];
}

/** Entries of the AG free list (xfs_agfl_size). */
export function agflSize(vol: XfsVolume): number {
  return (vol.sb.sb_sectsize - (vol.sb.hasCrc ? AGFL_HDR_V5 : 0)) / 4;
}

export async function readAgf(vol: XfsVolume, agno: number): Promise<Agf> {
  const { buf, offset } = await vol.readAgSector(agno, AGF_SECTOR);
  const where = `AGF ${agno}`;
  const bad = (detail: string) => vol.corrupt(where, offset, detail);
  if (vol.sb.hasCrc) {
    vol.verifyCrc(buf, AGF.agf_crc, where, offset);
    if (!buf.subarray(AGF.agf_uuid, AGF.agf_uuid + 16).equals(vol.sb.metaUuid)) throw bad('its UUID is not the filesystem\'s');
  }
  const u32 = (o: number) => buf.readUInt32BE(o);
  if (u32(AGF.agf_magicnum) !== XFS_AGF_MAGIC) throw bad(`bad magic 0x${u32(AGF.agf_magicnum).toString(16)}`);
  if (u32(AGF.agf_versionnum) !== XFS_AGF_VERSION) throw bad(`unknown version ${u32(AGF.agf_versionnum)}`);
  checkSeqnoAndLength(vol, agno, u32(AGF.agf_seqno), u32(AGF.agf_length), bad);
  const agf: Agf = {
    agno,
    agf_length: u32(AGF.agf_length),
    agf_bno_root: u32(AGF.agf_bno_root),
    agf_cnt_root: u32(AGF.agf_cnt_root),
    agf_bno_level: u32(AGF.agf_bno_level),
    agf_cnt_level: u32(AGF.agf_cnt_level),
    agf_flfirst: u32(AGF.agf_flfirst),
    agf_fllast: u32(AGF.agf_fllast),
    agf_flcount: u32(AGF.agf_flcount),
    agf_freeblks: u32(AGF.agf_freeblks),
    agf_longest: u32(AGF.agf_longest),
    agf_btreeblks: u32(AGF.agf_btreeblks),
    agf_rmap_blocks: u32(AGF.agf_rmap_blocks),
    agf_refcount_blocks: u32(AGF.agf_refcount_blocks),
  };
  const fl = agflSize(vol);
  if (agf.agf_flfirst >= fl || agf.agf_fllast >= fl || agf.agf_flcount > fl) throw bad(`free list indexes ${agf.agf_flfirst}..${agf.agf_fllast} (${agf.agf_flcount}) do not fit a list of ${fl}`);
  if (agf.agf_freeblks < agf.agf_longest || agf.agf_freeblks > agf.agf_length) throw bad(`${agf.agf_freeblks} free blocks (longest run ${agf.agf_longest}) in an AG of ${agf.agf_length}`);
  for (const [name, level] of [['bnobt', agf.agf_bno_level], ['cntbt', agf.agf_cnt_level]] as const) {
    if (level < 1 || level > MAX_AG_BTREE_LEVELS) throw bad(`${name} height ${level} is invalid`);
  }
  if (vol.sb.hasLazySbCount && agf.agf_btreeblks > agf.agf_length) throw bad(`${agf.agf_btreeblks} btree blocks in an AG of ${agf.agf_length}`);
  if (vol.sb.hasRmapbt && agf.agf_rmap_blocks > agf.agf_length) throw bad(`${agf.agf_rmap_blocks} rmapbt blocks in an AG of ${agf.agf_length}`);
  return agf;
}

export async function readAgi(vol: XfsVolume, agno: number): Promise<Agi> {
  const { buf, offset } = await vol.readAgSector(agno, AGI_SECTOR);
  const where = `AGI ${agno}`;
  const bad = (detail: string) => vol.corrupt(where, offset, detail);
  if (vol.sb.hasCrc) {
    vol.verifyCrc(buf, AGI.agi_crc, where, offset);
    if (!buf.subarray(AGI.agi_uuid, AGI.agi_uuid + 16).equals(vol.sb.metaUuid)) throw bad('its UUID is not the filesystem\'s');
  }
  const u32 = (o: number) => buf.readUInt32BE(o);
  if (u32(AGI.agi_magicnum) !== XFS_AGI_MAGIC) throw bad(`bad magic 0x${u32(AGI.agi_magicnum).toString(16)}`);
  if (u32(AGI.agi_versionnum) !== XFS_AGI_VERSION) throw bad(`unknown version ${u32(AGI.agi_versionnum)}`);
  checkSeqnoAndLength(vol, agno, u32(AGI.agi_seqno), u32(AGI.agi_length), bad);
  const agi: Agi = {
    agno,
    agi_length: u32(AGI.agi_length),
    agi_count: u32(AGI.agi_count),
    agi_root: u32(AGI.agi_root),
    agi_level: u32(AGI.agi_level),
    agi_freecount: u32(AGI.agi_freecount),
    agi_free_root: vol.sb.hasFinobt ? u32(AGI.agi_free_root) : 0,
    agi_free_level: vol.sb.hasFinobt ? u32(AGI.agi_free_level) : 0,
    agi_unlinked: [],
  };
  if (agi.agi_level < 1 || agi.agi_level > MAX_AG_BTREE_LEVELS) throw bad(`inobt height ${agi.agi_level} is invalid`);
  if (vol.sb.hasFinobt && (agi.agi_free_level < 1 || agi.agi_free_level > MAX_AG_BTREE_LEVELS)) throw bad(`finobt height ${agi.agi_free_level} is invalid`);
  const maxInodes = agi.agi_length * vol.sb.sb_inopblock;
  // agi_count and agi_freecount are not checked here: the kernel's AGI verifier does not, and a clean
  // mount takes its counters from the superblock. Where they are summed (agCounters), the sum is checked as it is.
  for (let i = 0; i < XFS_AGI_UNLINKED_BUCKETS; i++) {
    const agino = u32(AGI.agi_unlinked + 4 * i);
    if (agino === NULLAGINO) continue;
    if (agino >= maxInodes) throw bad(`unlinked list ${i} starts at AG inode ${agino}, outside the AG`);
    agi.agi_unlinked.push(agino);
  }
  return agi;
}

function checkSeqnoAndLength(vol: XfsVolume, agno: number, seqno: number, length: number, bad: (detail: string) => Error): void {
  if (seqno !== agno) throw bad(`sequence number ${seqno} is not the AG's number`);
  if (length !== vol.agLength(agno)) throw bad(`length ${length} blocks, but the superblock makes the AG ${vol.agLength(agno)} blocks`);
}
