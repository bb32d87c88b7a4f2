/** What a partition-table reader returns, whatever the scheme. */

export type PartitionScheme = 'mbr' | 'gpt';

export type PartitionKind =
  /** One of the four MBR slots. */
  | 'primary'
  /** An MBR slot holding the chain of logical partitions (type 0x05, 0x0f or 0x85); its bytes are EBRs, not a filesystem. */
  | 'extended'
  /** A partition inside the extended partition, numbered from 5. */
  | 'logical'
  /** A GPT entry. */
  | 'gpt';

export interface Partition {
  /** The number Linux gives it: /dev/sda<number>. */
  number: number;
  kind: PartitionKind;
  /** First sector, in units of the table's logical sector size. */
  startSector: number;
  /** Length in sectors (as the table says; truncated, with a warning, when it ran past the disk end). */
  sectorCount: number;
  /** Byte offset in the disk. */
  offset: number;
  /** Byte length. */
  size: number;
  /** MBR partition type byte (0x83 Linux, 0x8e LVM, 0x82 swap, ...). */
  mbrType?: number;
  /** MBR boot indicator 0x80. */
  bootable?: boolean;
  /** GPT partition type GUID, upper case as sgdisk prints it. */
  typeGuid?: string;
  /** GPT unique partition GUID (PARTUUID). */
  uuid?: string;
  /** GPT partition name (PARTLABEL). */
  name?: string;
  /** GPT attribute bits, 16 hex digits as sgdisk prints them. */
  attributes?: string;
}

export interface PartitionTable {
  /** 'none': no partition table; the whole device holds one filesystem (or nothing we know). */
  scheme: PartitionScheme | 'none';
  /** Logical sector size the table was read with (512 or 4096). */
  sectorSize: number;
  /** MBR disk signature as sfdisk prints it ("0x1a2b3c4d"), or the GPT disk GUID. */
  diskId?: string;
  /** In table order: primaries by slot, then logical partitions; GPT entries by index. */
  partitions: Partition[];
  /** Damage we worked around (backup GPT used, partition truncated, EBR chain loop...). */
  warnings: string[];
}

/** Linux gives a disk at most this many partition minors (DISK_MAX_PARTS). */
export const MAX_PARTITIONS = 256;
