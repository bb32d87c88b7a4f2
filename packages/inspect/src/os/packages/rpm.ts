/**
 * RPM's database of installed packages. RHEL 9 and Fedora 33+ keep it in
 * SQLite (rpmdb.sqlite, in /var/lib/rpm or /usr/lib/sysimage/rpm), read here
 * from its bytes with sql.js (SQLite as WebAssembly, opened on a buffer:
 * nothing is written, no temporary file). Older systems keep a BerkeleyDB
 * "Packages" file and SUSE an "ndb" Packages.db: named as unsupported.
 * Changes still in the write-ahead log (rpmdb.sqlite-wal) are not seen;
 * that is said.
 */
import type { Application, ApplicationList } from './application.ts';
import { applicationOfHeader } from './rpmHeader.ts';

/** BerkeleyDB file magics (at byte 12): btree, hash. */
const BDB_MAGICS = new Set([0x053162, 0x061561]);

/** Read the package list from an rpmdb.sqlite's bytes (and the -wal file's size, when present). */
export async function rpmApplications(sqlite: Buffer, walBytes: number | undefined): Promise<ApplicationList> {
  const { default: initSqlJs } = await import('sql.js');
  const SQL = await initSqlJs();
  let db;
  try {
    db = new SQL.Database(new Uint8Array(sqlite.buffer, sqlite.byteOffset, sqlite.byteLength));
  } catch (err) {
    return { source: 'rpm', applications: [], problem: `rpmdb.sqlite cannot be opened: ${err instanceof Error ? err.message : String(err)}` };
  }
  try {
    const apps: Application[] = [];
    let damaged = 0;
    const stmt = db.prepare('SELECT blob FROM Packages');
    try {
      while (stmt.step()) {
        const [blob] = stmt.get();
        if (!(blob instanceof Uint8Array)) continue;
        try {
          const app = applicationOfHeader(blob);
          if (app) apps.push(app);
        } catch {
          damaged++;
        }
      }
    } finally {
      stmt.free();
    }
    apps.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const problems: string[] = [];
    if (damaged) problems.push(`${damaged} package header(s) in rpmdb.sqlite are damaged and were left out`);
    if (walBytes) problems.push('rpmdb.sqlite has a write-ahead log (rpmdb.sqlite-wal) whose recent changes are not read');
    return { source: 'rpm', applications: apps, ...(problems.length ? { problem: problems.join('; ') } : {}) };
  } catch (err) {
    return { source: 'rpm', applications: [], problem: `rpmdb.sqlite has no readable Packages table: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    db.close();
  }
}

/** Whether the bytes of a "Packages" file are a BerkeleyDB database (RHEL 8 and older). */
export function isBerkeleyDb(head: Buffer): boolean {
  return head.length >= 16 && (BDB_MAGICS.has(head.readUInt32LE(12)) || BDB_MAGICS.has(head.readUInt32BE(12)));
}
