/**
 * How the kernel shows XFS attributes as Linux extended attributes
 * (xfs_xattr.c): the namespace flags become the "trusted." (ROOT),
 * "security." (SECURE) and "user." prefixes; parent pointers (PARENT) are
 * private and never shown. POSIX ACLs are stored as SGI_ACL_FILE and
 * SGI_ACL_DEFAULT in the trusted namespace, in XFS's own big-endian format;
 * the kernel lists them both under those names and as
 * "system.posix_acl_access"/"system.posix_acl_default", whose value is the
 * ACL in the generic little-endian xattr format.
 */
import { decodeName } from '../names.ts';
import { ATTR_FLAG, SGI_ACL_DEFAULT, SGI_ACL_FILE } from './layout.ts';
import type { RawAttr } from './attr.ts';

export const POSIX_ACL_ACCESS = 'system.posix_acl_access';
export const POSIX_ACL_DEFAULT = 'system.posix_acl_default';

/** The names a listxattr(2) by root shows for one attribute (none for parent pointers). */
export function visibleNames(attr: RawAttr): string[] {
  if (attr.flags & ATTR_FLAG.PARENT) return [];
  const name = decodeName(attr.name);
  if (attr.flags & ATTR_FLAG.ROOT) {
    const out: string[] = [];
    if (name === SGI_ACL_FILE) out.push(POSIX_ACL_ACCESS);
    else if (name === SGI_ACL_DEFAULT) out.push(POSIX_ACL_DEFAULT);
    out.push(`trusted.${name}`);
    return out;
  }
  if (attr.flags & ATTR_FLAG.SECURE) return [`security.${name}`];
  return [`user.${name}`];
}

/** The namespace flags and stored name a Linux attribute name refers to, or undefined for a name XFS cannot hold. */
export function storedName(name: string): { flags: number; name: Buffer; acl?: boolean } | undefined {
  if (name === POSIX_ACL_ACCESS) return { flags: ATTR_FLAG.ROOT, name: Buffer.from(SGI_ACL_FILE), acl: true };
  if (name === POSIX_ACL_DEFAULT) return { flags: ATTR_FLAG.ROOT, name: Buffer.from(SGI_ACL_DEFAULT), acl: true };
  for (const [prefix, flags] of [['user.', 0], ['trusted.', ATTR_FLAG.ROOT], ['security.', ATTR_FLAG.SECURE]] as const) {
    if (name.startsWith(prefix) && name.length > prefix.length) return { flags, name: Buffer.from(name.slice(prefix.length), 'utf8') };
  }
  return undefined;
}

const ACL_USER = 0x02;
const ACL_GROUP = 0x08;
const ACL_UNDEFINED_ID = 0xffffffff;
const POSIX_ACL_XATTR_VERSION = 2;

/**
 * An XFS ACL (count, then tag, id, permissions, pad per entry, big-endian)
 * as the generic POSIX ACL xattr (version 2; tag, permissions, id per entry,
 * little-endian; ids only for named users and groups), as
 * posix_acl_to_xattr writes it. Undefined when the XFS ACL is malformed.
 */
export function xfsAclToPosixXattr(value: Buffer): Buffer | undefined {
  if (value.length < 4) return undefined;
  const count = value.readUInt32BE(0);
  if (value.length !== 4 + count * 12) return undefined;
  const out = Buffer.alloc(4 + count * 8);
  out.writeUInt32LE(POSIX_ACL_XATTR_VERSION, 0);
  for (let i = 0; i < count; i++) {
    const e = 4 + i * 12;
    const tag = value.readUInt32BE(e);
    const id = value.readUInt32BE(e + 4);
    const perm = value.readUInt16BE(e + 8);
    const o = 4 + i * 8;
    out.writeUInt16LE(tag & 0xffff, o);
    out.writeUInt16LE(perm, o + 2);
    out.writeUInt32LE(tag === ACL_USER || tag === ACL_GROUP ? id : ACL_UNDEFINED_ID, o + 4);
  }
  return out;
}
