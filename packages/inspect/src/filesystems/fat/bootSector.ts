/**
 * The boot sector as the kernel reads it when it mounts (fat_fill_super):
 * the BPB must pass the kernel's checks (layout.ts kernelGeometry), the
 * FSInfo sector of FAT32 must be readable (its free count is read but, as in
 * the kernel, never used: statfs counts free FAT entries itself), and a bad
 * FSInfo signature is only a warning.
 *
 * FAT32 keeps a backup copy of the boot sector (BPB_BkBootSec, normally
 * sector 6). The kernel never reads it; we do, to say more when something
 * is wrong: a backup whose BPB differs from the primary's is a warning (the
 * primary is what counts), and when the primary is unusable the error says
 * whether the backup would be (fsck.fat offers to copy it back), and
 * `useBackupBootSector` opens the volume from it, read-only as always.
 */
import type { BlockSource } from '@guestlens/block';
import { FatCorruptError, FatError } from './errors.ts';
import {
  BOOT_SECTOR_SIZE,
  BPB,
  EBPB32,
  FAT_STATE_DIRTY,
  FSINFO,
  isPowerOfTwo,
  kernelGeometry,
  parseBpb,
  type BiosParameterBlock,
  type KernelGeometry,
} from './layout.ts';

/** Where FAT32 formatters put the backup boot sector when BPB_BkBootSec cannot be trusted. */
export const DEFAULT_BACKUP_BOOT_SECTOR = 6;

export interface BootSector {
  bpb: BiosParameterBlock;
  geometry: KernelGeometry;
  /** The sector the BPB was read from: 0, or the backup's. */
  sector: number;
  /** FAT32: FSI_Free_Count when the FSInfo signatures are valid (informative only; 0xFFFFFFFF means unknown). */
  fsinfoFreeCount?: number;
  /** Linux's dirty bit: the volume was not cleanly unmounted by a Linux that set it. */
  dirty: boolean;
  /** What the kernel would warn about at mount, and differences with the backup boot sector. */
  warnings: string[];
}

export interface BootSectorOptions {
  retryable: boolean;
  /** Read the BPB from FAT32's backup boot sector instead of sector 0. */
  useBackup?: boolean;
}

/** The BPB bytes a backup must repeat (jump, OEM name and the two BPB blocks; the boot code may differ). */
const BPB_END = EBPB32.BS_FilSysType + 8;

function corrupt(source: BlockSource, options: BootSectorOptions, structure: string, offset: number | undefined, reason: string, fsck?: string): FatCorruptError {
  return new FatCorruptError(source.name, structure, offset, reason, { retryable: options.retryable, fsck });
}

async function readSector0(source: BlockSource, sector: number, sectorSize = BOOT_SECTOR_SIZE): Promise<Buffer | undefined> {
  const offset = sector * sectorSize;
  if (offset + BOOT_SECTOR_SIZE > source.size) return undefined;
  return source.read(offset, BOOT_SECTOR_SIZE);
}

/** Whether a sector's BPB would mount, and why not. */
function judge(bs: Buffer): { bpb: BiosParameterBlock; result: ReturnType<typeof kernelGeometry> } {
  const bpb = parseBpb(bs);
  return { bpb, result: kernelGeometry(bpb) };
}

export async function readBootSector(source: BlockSource, options: BootSectorOptions): Promise<BootSector> {
  if (source.size < BOOT_SECTOR_SIZE) {
    throw new FatError('EINVAL', source.name, `too small (${source.size} bytes) to hold a FAT boot sector`);
  }
  const primary = (await readSector0(source, 0))!;
  const first = judge(primary);
  // Where the backup is, when sector 0 cannot say: the usual sector, in the primary's sector size if that is sane.
  const size = first.bpb.BPB_BytsPerSec;
  const sectorSize = isPowerOfTwo(size) && size >= 512 && size <= 4096 ? size : BOOT_SECTOR_SIZE;
  let chosen = first;
  let sector = 0;

  if (options.useBackup) {
    const at = first.bpb.fat32 && first.bpb.BPB_BkBootSec && first.bpb.BPB_BkBootSec !== 0xffff ? first.bpb.BPB_BkBootSec : DEFAULT_BACKUP_BOOT_SECTOR;
    const backup = await readSector0(source, at, sectorSize);
    if (!backup) throw corrupt(source, options, `backup boot sector (sector ${at})`, at * sectorSize, 'lies beyond the end of the device');
    chosen = judge(backup);
    sector = at;
    if (!chosen.bpb.fat32) throw corrupt(source, options, `backup boot sector (sector ${at})`, at * sectorSize, 'does not hold a FAT32 BPB');
  }

  if (!chosen.result.ok) {
    const where = sector === 0 ? 'boot sector' : `backup boot sector (sector ${sector})`;
    const field = chosen.result.field;
    const fieldOffset = sector * sectorSize + ((BPB as Record<string, number>)[field] ?? (EBPB32 as Record<string, number>)[field] ?? 0);
    let hint: string | undefined;
    if (sector === 0) {
      const backupAt = DEFAULT_BACKUP_BOOT_SECTOR;
      const backup = await readSector0(source, backupAt, sectorSize);
      const judged = backup && judge(backup);
      if (judged && judged.result.ok && judged.bpb.fat32) {
        hint = `The FAT32 backup boot sector (sector ${backupAt}) looks valid: fsck.fat can copy it back (on a copy of the image), or guestlens can read the volume from it (useBackupBootSector)`;
      }
    }
    throw corrupt(source, options, `${where} ${field}`, fieldOffset, `the kernel would refuse to mount: ${chosen.result.reason}`, hint);
  }

  const bpb = chosen.bpb;
  const geometry = chosen.result.geometry;
  const warnings: string[] = [];
  if (sector !== 0) warnings.push(`read from the backup boot sector (sector ${sector}), not sector 0 as the kernel would`);
  if (bpb.fat32 && sector === 0) await compareBackup(source, primary, bpb, warnings);

  const boot: BootSector = { bpb, geometry, sector, dirty: (bpb.state & FAT_STATE_DIRTY) !== 0, warnings };
  if (bpb.fat32) {
    const off = geometry.fsinfoSector * geometry.sectorSize;
    if (off + BOOT_SECTOR_SIZE > source.size) {
      throw corrupt(source, options, `FSInfo sector ${geometry.fsinfoSector}`, off, `lies beyond the end of the device (${source.size} bytes); the kernel fails to mount`);
    }
    const fsinfo = await source.read(off, BOOT_SECTOR_SIZE);
    const lead = fsinfo.readUInt32LE(FSINFO.FSI_LeadSig);
    const struc = fsinfo.readUInt32LE(FSINFO.FSI_StrucSig);
    if (lead !== FSINFO.LEAD_SIG || struc !== FSINFO.STRUC_SIG) {
      warnings.push(`invalid FSInfo signature 0x${lead.toString(16).padStart(8, '0')}, 0x${struc.toString(16).padStart(8, '0')} (sector ${geometry.fsinfoSector}); the kernel warns and mounts`);
    } else {
      boot.fsinfoFreeCount = fsinfo.readUInt32LE(FSINFO.FSI_Free_Count);
    }
  }
  return boot;
}

/** A FAT32 backup boot sector whose BPB differs from the primary's is worth a warning (fsck.fat reports it too). */
async function compareBackup(source: BlockSource, primary: Buffer, bpb: BiosParameterBlock, warnings: string[]): Promise<void> {
  const at = bpb.BPB_BkBootSec;
  if (at === 0 || at === 0xffff) return;
  if (at >= bpb.BPB_RsvdSecCnt) {
    warnings.push(`the backup boot sector (BPB_BkBootSec ${at}) lies outside the ${bpb.BPB_RsvdSecCnt} reserved sectors`);
    return;
  }
  const backup = await readSector0(source, at, bpb.BPB_BytsPerSec);
  if (!backup) return;
  if (!backup.subarray(0, BPB_END).equals(primary.subarray(0, BPB_END))) {
    let first = 0;
    while (first < BPB_END && backup[first] === primary[first]) first++;
    warnings.push(`the backup boot sector (sector ${at}) differs from sector 0 from byte ${first} on; the kernel uses sector 0`);
  }
}
