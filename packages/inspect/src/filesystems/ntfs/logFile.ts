/**
 * $LogFile's restart pages: whether Windows left its journal clean. ntfs-3g
 * looks at them before a read-write mount and refuses when the newest
 * restart area has clients in use without the "volume is clean" flag (an
 * unclean shutdown), or is version 2.0 (Windows 8 and later write that when
 * they keep metadata cached for Fast Startup or hibernation). A $LogFile of
 * 0xff bytes is empty (mkntfs and ntfs-3g leave it so) and counts as clean.
 * Restart pages sit at offset 0 and at one page size; ntfs-3g probes 0, 512,
 * 1024, ... for them, and so do we.
 */
import { applyFixups } from './fixups.ts';
import { MAGIC_CHKD, MAGIC_RSTR, NTFS_BLOCK_SIZE } from './layout.ts';

export type LogFileState =
  | { state: 'empty' }
  | { state: 'clean'; majorVersion: number; minorVersion: number }
  /** Clients in use and not marked clean: Windows did not shut down cleanly. */
  | { state: 'unclean'; majorVersion: number; minorVersion: number; clientInUseList: number; flags: number }
  /** Version 2.0: Fast Startup or hibernation keeps metadata in Windows' cache. */
  | { state: 'cached'; majorVersion: number; minorVersion: number }
  | { state: 'unreadable'; reason: string };

const RESTART_VOLUME_IS_CLEAN = 0x0002;
const LOGFILE_NO_CLIENT = 0xffff;
const DEFAULT_LOG_PAGE_SIZE = 4096;
const MAX_LOG_FILE_SIZE = 0x100000000;

interface RestartPage {
  lsn: bigint;
  majorVersion: number;
  minorVersion: number;
  clientInUseList: number;
  flags: number;
}

/** Read through `read` (bytes of $LogFile's data, `size` of them). */
export async function logFileState(read: (offset: number, length: number) => Promise<Buffer>, size: number): Promise<LogFileState> {
  const limit = Math.min(size, MAX_LOG_FILE_SIZE) & ~(DEFAULT_LOG_PAGE_SIZE - 1);
  if (limit < 2 * DEFAULT_LOG_PAGE_SIZE) return { state: 'unreadable', reason: `$LogFile is too small (${size} bytes)` };
  let empty = true;
  const pages: RestartPage[] = [];
  for (let pos = 0; pos < limit; pos = pos === 0 ? NTFS_BLOCK_SIZE : pos * 2) {
    const head = await read(pos, NTFS_BLOCK_SIZE);
    const magic = head.toString('latin1', 0, 4);
    if (head.readUInt32LE(0) !== 0xffffffff) empty = false;
    else if (!empty) break;
    if (magic === 'RCRD') break;
    if (magic !== MAGIC_RSTR && magic !== MAGIC_CHKD) continue;
    const pageSize = head.readUInt32LE(0x10);
    if (pageSize < NTFS_BLOCK_SIZE || pageSize > 65536 || pageSize & (pageSize - 1) || pos + pageSize > limit) continue;
    const page = parseRestartPage(await read(pos, pageSize));
    if (page) pages.push(page);
    if (pages.length === 2) break;
  }
  if (empty) return { state: 'empty' };
  if (!pages.length) return { state: 'unreadable', reason: 'no valid restart page in a $LogFile that is not empty' };
  const rp = pages.length === 2 && pages[1].lsn > pages[0].lsn ? pages[1] : pages[0];
  const v = { majorVersion: rp.majorVersion, minorVersion: rp.minorVersion };
  if (rp.majorVersion === 2 && rp.minorVersion === 0) return { state: 'cached', ...v };
  if (rp.clientInUseList !== LOGFILE_NO_CLIENT && !(rp.flags & RESTART_VOLUME_IS_CLEAN)) return { state: 'unclean', ...v, clientInUseList: rp.clientInUseList, flags: rp.flags };
  return { state: 'clean', ...v };
}

/** A restart page's restart area, or undefined when the page is not valid (ntfs-3g goes on looking then). */
function parseRestartPage(raw: Buffer): RestartPage | undefined {
  const minor = raw.readInt16LE(0x1a);
  const major = raw.readInt16LE(0x1c);
  if (!((major === 1 && minor === 1) || (major === 2 && minor === 0))) return undefined;
  const logPageSize = raw.readUInt32LE(0x14);
  if (logPageSize < NTFS_BLOCK_SIZE || logPageSize & (logPageSize - 1)) return undefined;
  const fixed = applyFixups(raw);
  if (!fixed.ok) return undefined;
  const p = fixed.record;
  const raOffset = p.readUInt16LE(0x18);
  if (raOffset & 7 || raOffset + 0x30 > p.length) return undefined;
  return {
    lsn: p.readBigUInt64LE(raOffset),
    clientInUseList: p.readUInt16LE(raOffset + 0x0c),
    flags: p.readUInt16LE(raOffset + 0x0e),
    majorVersion: major,
    minorVersion: minor,
  };
}
