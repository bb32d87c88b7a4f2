/**
 * Security descriptors and their owners. NTFS 3.x keeps one copy of each
 * distinct descriptor in $Secure (MFT record 9): its $SII index maps the
 * security id a file's $STANDARD_INFORMATION names to an entry of the $SDS
 * stream; NTFS 1.x (and ntfs-3g without a user mapping) keep a
 * $SECURITY_DESCRIPTOR attribute in the file instead. ntfs-3g picks the
 * same way (getsecurityattr), and shows the descriptor as
 * system.ntfs_acl, cut to the size its parts span (ntfs_attr_size).
 *
 * Owners are SIDs. ntfs-3g maps them to Linux ids only through a user
 * mapping file (.NTFS-3G/UserMapping on the volume, lines "uid:gid:SID");
 * here the explicit lines of that file are honoured and every other SID is
 * reported as unmapped (ntfs-3g would show it as root).
 */

export interface Sid {
  /** "S-1-5-21-...". */
  text: string;
  bytes: Buffer;
}

export interface SecurityDescriptor {
  /** The descriptor's bytes as system.ntfs_acl shows them. */
  raw: Buffer;
  /** The file has none: this is the one ntfs-3g makes up in its place. */
  synthesized?: boolean;
  owner: Sid;
  group: Sid;
  control: number;
}

/**
 * What ntfs-3g shows for a file without any descriptor (most metadata files
 * on a fresh volume): one it builds for mode 0 owned by Administrators
 * (S-1-5-32-544), a DACL of five ACEs. Taken from its system.ntfs_acl output;
 * the tests compare it with ntfs-3g's again.
 */
export const NTFS3G_DEFAULT_DESCRIPTOR = Buffer.from(
  '010004908c0000009c000000000000001400000002007800050000000004180098011f0001020000000000052000000020020000000418008800120001020000000000052000000020020000000414008800120001010000000000010000000000041800bf011f000102000000000005200000002002000000041400bf011f000101000000000005120000000102000000000005200000002002000001020000000000052000000020020000',
  'hex',
);

/** $SII entry data: hash, security id, offset in $SDS, length (header included). */
export const SDS_HEADER_SIZE = 20;

/** A SID at `at`: revision 1, up to 15 sub-authorities. */
export function parseSid(buf: Buffer, at: number): Sid | undefined {
  if (at + 8 > buf.length || buf[at] !== 1) return undefined;
  const count = buf[at + 1];
  if (count > 15 || at + 8 + count * 4 > buf.length) return undefined;
  const authority = buf.readUIntBE(at + 2, 6);
  let text = `S-1-${authority >= 2 ** 32 ? `0x${authority.toString(16).toUpperCase().padStart(12, '0')}` : authority}`;
  for (let i = 0; i < count; i++) text += `-${buf.readUInt32LE(at + 8 + i * 4)}`;
  return { text, bytes: Buffer.from(buf.subarray(at, at + 8 + count * 4)) };
}

function sidSize(buf: Buffer, at: number): number {
  return at + 1 < buf.length ? 8 + buf[at + 1] * 4 : 8;
}

/** ntfs_attr_size: the span of the parts, each counted only when it lies past those before it. */
function spannedSize(sd: Buffer): number {
  let size = 20;
  const group = sd.readUInt32LE(8);
  if (group >= size) size = Math.max(size, group + sidSize(sd, group));
  const owner = sd.readUInt32LE(4);
  if (owner >= size) size = owner + sidSize(sd, owner);
  const sacl = sd.readUInt32LE(12);
  if (sacl >= size && sacl + 4 <= sd.length) size = Math.max(size, sacl + sd.readUInt16LE(sacl + 2));
  const dacl = sd.readUInt32LE(16);
  if (dacl >= size && dacl + 4 <= sd.length) size = Math.max(size, dacl + sd.readUInt16LE(dacl + 2));
  return size;
}

/** A self-relative security descriptor, checked as ntfs-3g checks it (ntfs_valid_descr, in part); a string says why not. */
export function parseSecurityDescriptor(sd: Buffer): SecurityDescriptor | string {
  if (sd.length < 20) return `security descriptor of ${sd.length} bytes is shorter than its header`;
  if (sd[0] !== 1) return `security descriptor revision ${sd[0]}`;
  const control = sd.readUInt16LE(2);
  const offOwner = sd.readUInt32LE(4);
  const offGroup = sd.readUInt32LE(8);
  for (const [what, off] of [['owner', offOwner], ['group', offGroup], ['SACL', sd.readUInt32LE(12)], ['DACL', sd.readUInt32LE(16)]] as const) {
    if (off & 3) return `security descriptor: ${what} offset ${off} is not aligned`;
  }
  if (offOwner < 20 || offOwner + 2 >= sd.length || offGroup < 20 || offGroup + 2 >= sd.length) return 'security descriptor: owner or group outside the descriptor';
  const owner = parseSid(sd, offOwner);
  const group = parseSid(sd, offGroup);
  if (!owner || !group) return 'security descriptor: invalid owner or group SID';
  const size = spannedSize(sd);
  if (size > sd.length) return `security descriptor: its parts span ${size} bytes of ${sd.length}`;
  return { raw: Buffer.from(sd.subarray(0, size)), owner, group, control };
}

/** The explicit lines of an ntfs-3g user mapping file: SID -> uid, SID -> gid. */
export interface UserMapping {
  users: Map<string, number>;
  groups: Map<string, number>;
}

export function parseUserMapping(text: string): UserMapping {
  const users = new Map<string, number>();
  const groups = new Map<string, number>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(':');
    if (parts.length !== 3 || !/^S-1-/.test(parts[2])) continue;
    const [uid, gid, sid] = parts;
    // Names (resolved by ntfs-3g on the host that mounts) mean nothing here; numeric ids only.
    if (/^\d+$/.test(uid) && !users.has(sid)) users.set(sid, Number(uid));
    if (/^\d+$/.test(gid) && !groups.has(sid)) groups.set(sid, Number(gid));
  }
  return { users, groups };
}

export interface Ownership {
  owner: string;
  group: string;
  /** Linux ids from the volume's user mapping; undefined when the SID is not mapped there. */
  uid?: number;
  gid?: number;
}
