/**
 * guestlens inspect: virt-inspector's job. The guest's operating systems
 * (distribution, version, product name, hostname, architecture), its mount
 * map, its filesystems and its applications, as JSON (the native form) or
 * as virt-inspector's XML document (the elements we fill, in its order).
 */
import type { Argv, CommandModule } from 'yargs';
import type { GuestInspection, OperatingSystem } from '@guestlens/inspect';
import { EXIT_PARTIAL, UsageError } from '../errors.ts';
import { backingPolicy, guestOptions, oneGuest, type GuestArgs } from '../guest/guestJobs.ts';
import { safeText } from '../output/names.ts';

interface InspectArgs extends GuestArgs {
  images: string[];
  json: boolean;
  xml: boolean;
  'no-applications': boolean;
}

export const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect [images..]',
  describe: 'The operating systems of a guest: distribution, version, hostname, mount map, applications (like virt-inspector)',
  builder: (y: Argv) =>
    guestOptions(y, { mount: false })
      .usage('guestlens inspect IMAGE [-a DISK]... [--json | --xml]')
      .positional('images', { type: 'string', array: true, default: [] })
      .option('json', { type: 'boolean', default: false, describe: 'JSON (the default is a text summary)' })
      .option('xml', { type: 'boolean', default: false, describe: "virt-inspector's XML document" })
      .option('no-applications', { type: 'boolean', default: false, describe: 'skip the package list' }) as unknown as Argv<InspectArgs>,
  handler: async (args) => {
    if (args.json && args.xml) throw new UsageError('inspect: choose one of --json and --xml');
    const { job } = await oneGuest('inspect', args, args.images);
    const { openGuest, inspectGuest } = await import('@guestlens/inspect');
    const guest = await openGuest(job.images, { backing: backingPolicy('inspect', args.backing) });
    try {
      const result = await inspectGuest(guest, { applications: !args['no-applications'] });
      const problems = [...job.unreadable, ...result.problems];
      for (const p of problems) process.stderr.write(`guestlens: inspect: ${job.name}: ${safeText(p)}\n`);
      if (args.json) process.stdout.write(`${JSON.stringify(toJson(result), null, 2)}\n`);
      else if (args.xml) process.stdout.write(toXml(result));
      else process.stdout.write(toText(result));
      if (result.operatingSystems.length === 0) {
        process.stderr.write(`guestlens: inspect: ${job.name}: no operating system was found\n`);
        process.exitCode = EXIT_PARTIAL;
      } else if (problems.length) process.exitCode = EXIT_PARTIAL;
    } finally {
      await guest.close();
    }
  },
};

function toJson(r: GuestInspection): object {
  return {
    operatingSystems: r.operatingSystems.map((os) => ({
      root: os.root,
      type: os.type,
      distro: os.distro,
      productName: os.productName ?? null,
      majorVersion: os.majorVersion,
      minorVersion: os.minorVersion,
      arch: os.arch ?? null,
      hostname: os.hostname ?? null,
      machineId: os.machineId ?? null,
      osinfo: os.osinfo ?? null,
      packageFormat: os.packageFormat ?? null,
      packageManagement: os.packageManagement ?? null,
      ...(os.windowsSystemroot ? { windowsSystemroot: os.windowsSystemroot, windowsCurrentControlSet: os.windowsCurrentControlSet ?? null, productVariant: os.productVariant ?? null, driveMappings: os.driveMappings ?? [] } : {}),
      mountpoints: os.mountpoints.map((m) => ({ device: m.device, mountpoint: m.mountpoint })),
      unmatchedFstab: os.unmatchedFstab.map((u) => ({ line: u.entry.line, spec: u.entry.spec, mountpoint: u.entry.mountpoint, reason: u.reason })),
      applications: os.applications,
      ...(os.applicationsProblem ? { applicationsProblem: os.applicationsProblem } : {}),
    })),
    filesystems: r.filesystems,
    problems: r.problems,
  };
}

function toText(r: GuestInspection): string {
  const lines: string[] = [];
  for (const os of r.operatingSystems) {
    lines.push(`root: ${os.root}`);
    lines.push(`  type: ${os.type}`, `  distro: ${os.distro}`);
    if (os.productName) lines.push(`  product name: ${safeText(os.productName)}`);
    lines.push(`  version: ${os.majorVersion}.${os.minorVersion}`);
    if (os.arch) lines.push(`  arch: ${os.arch}`);
    if (os.hostname) lines.push(`  hostname: ${safeText(os.hostname)}`);
    if (os.osinfo) lines.push(`  osinfo: ${os.osinfo}`);
    if (os.packageFormat) lines.push(`  packages: ${os.packageFormat} (${os.packageManagement ?? '?'}), ${os.applications.length} installed`);
    for (const m of os.mountpoints) lines.push(`  mount: ${m.device} on ${safeText(m.mountpoint)}`);
  }
  for (const f of r.filesystems) lines.push(`filesystem: ${f.device} ${f.type}${f.label ? ` label=${JSON.stringify(safeText(f.label))}` : ''}${f.uuid ? ` uuid=${f.uuid}` : ''} size=${f.size}`);
  return `${lines.join('\n')}\n`;
}

/** XML text escaping; characters XML 1.0 cannot carry at all (most C0 controls) become a visible escape. */
function x(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function el(indent: number, name: string, value: string | number | undefined): string[] {
  return value === undefined || value === '' ? [] : [`${' '.repeat(indent)}<${name}>${x(String(value))}</${name}>`];
}

/** virt-inspector's document: the elements we fill, in its order (guestfs-tools inspector/output.c). */
export function toXml(r: GuestInspection): string {
  const out = ['<?xml version="1.0"?>', '<operatingsystems>'];
  for (const os of r.operatingSystems) out.push(...osXml(os, r));
  out.push('</operatingsystems>');
  return `${out.join('\n')}\n`;
}

function osXml(os: OperatingSystem, r: GuestInspection): string[] {
  const o = ['  <operatingsystem>'];
  o.push(...el(4, 'root', os.root), ...el(4, 'name', os.type), ...el(4, 'arch', os.arch), ...el(4, 'distro', os.distro));
  o.push(...el(4, 'product_name', os.productName), ...el(4, 'product_variant', os.productVariant), ...el(4, 'major_version', os.majorVersion), ...el(4, 'minor_version', os.minorVersion));
  o.push(...el(4, 'windows_systemroot', os.windowsSystemroot), ...el(4, 'windows_current_control_set', os.windowsCurrentControlSet));
  o.push(...el(4, 'package_format', os.packageFormat), ...el(4, 'package_management', os.packageManagement), ...el(4, 'hostname', os.hostname), ...el(4, 'osinfo', os.osinfo));
  o.push('    <mountpoints>');
  for (const m of os.mountpoints) o.push(`      <mountpoint dev="${x(m.device)}">${x(m.mountpoint)}</mountpoint>`);
  o.push('    </mountpoints>');
  o.push('    <filesystems>');
  const mounted = new Set(os.mountpoints.map((m) => m.device));
  for (const f of r.filesystems.filter((fs) => mounted.has(fs.device))) {
    o.push(`      <filesystem dev="${x(f.device)}">`, ...el(8, 'type', f.type), ...el(8, 'label', f.label), ...el(8, 'uuid', f.uuid), '      </filesystem>');
  }
  o.push('    </filesystems>');
  if (os.driveMappings?.length) {
    o.push('    <drive_mappings>');
    for (const d of os.driveMappings) o.push(`      <drive_mapping name="${x(d.letter)}">${x(d.device)}</drive_mapping>`);
    o.push('    </drive_mappings>');
  }
  if (os.applications.length) {
    o.push('    <applications>');
    for (const a of os.applications) {
      o.push('      <application>');
      o.push(...el(8, 'name', a.name), ...el(8, 'display_name', a.displayName), ...el(8, 'epoch', a.epoch), ...el(8, 'version', a.version), ...el(8, 'release', a.release));
      o.push(...el(8, 'arch', a.arch), ...el(8, 'install_path', a.installPath), ...el(8, 'publisher', a.publisher), ...el(8, 'url', a.url));
      o.push(...el(8, 'source_package', a.sourcePackage), ...el(8, 'summary', a.summary), ...el(8, 'description', a.description));
      o.push('      </application>');
    }
    o.push('    </applications>');
  }
  o.push('  </operatingsystem>');
  return o;
}
