/**
 * POSIX ACLs as ext4 stores them (ext4_acl_header version 1, short entries
 * without an id for the owner/group/mask/other tags) turned into what
 * getxattr(2) returns (posix_acl_xattr_header version 2, every entry with an
 * id, 0xffffffff where there is none), as fs/ext4/acl.c does for the kernel.
 */
const EXT4_ACL_VERSION = 1;
const POSIX_ACL_XATTR_VERSION = 2;
const ACL_USER = 0x02;
const ACL_GROUP = 0x08;
const ACL_UNDEFINED_ID = 0xffffffff;

/** The xattr form of an on-disk ACL, or undefined when the bytes are not one. */
export function aclToXattr(disk: Buffer): Buffer | undefined {
  if (disk.length < 4 || disk.readUInt32LE(0) !== EXT4_ACL_VERSION) return undefined;
  const entries: Buffer[] = [];
  let pos = 4;
  while (pos < disk.length) {
    if (pos + 4 > disk.length) return undefined;
    const tag = disk.readUInt16LE(pos);
    const perm = disk.readUInt16LE(pos + 2);
    let id = ACL_UNDEFINED_ID;
    if (tag === ACL_USER || tag === ACL_GROUP) {
      if (pos + 8 > disk.length) return undefined;
      id = disk.readUInt32LE(pos + 4);
      pos += 8;
    } else {
      pos += 4;
    }
    const e = Buffer.alloc(8);
    e.writeUInt16LE(tag, 0);
    e.writeUInt16LE(perm, 2);
    e.writeUInt32LE(id, 4);
    entries.push(e);
  }
  const header = Buffer.alloc(4);
  header.writeUInt32LE(POSIX_ACL_XATTR_VERSION);
  return Buffer.concat([header, ...entries]);
}
