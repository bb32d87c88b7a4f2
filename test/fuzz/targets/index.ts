/** Every fuzz target by name, as modules (each runs in its own worker, loaded after coverage starts). */
export const TARGETS: Record<string, string> = Object.fromEntries(
  ['qcow2', 'vmdk', 'vhdx', 'vpc', 'vdi', 'partitions', 'lvm', 'lvm-text', 'ext', 'xfs', 'fat', 'ntfs', 'btrfs', 'journal', 'regf'].map((name) => [name, new URL(`./${name === 'lvm-text' ? 'lvmText' : name}.ts`, import.meta.url).href]),
);
