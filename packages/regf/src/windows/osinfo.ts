/**
 * The libosinfo short id virt-inspector prints in <osinfo> for a Windows
 * guest, derived exactly as libguestfs derives it (lib/inspect-osinfo.c,
 * guestfs_impl_inspect_get_osinfo, libguestfs commit f10f2013b7c2 of
 * 2026-08-07), quirks included:
 *
 * | major.minor | InstallationType contains "Server" | otherwise |
 * |---|---|---|
 * | 5.1 | winxp | winxp |
 * | 5.2 | ProductName has "XP": winxp; "R2": win2k3r2; else win2k3 | (same) |
 * | 6.0 | win2k8 | winvista |
 * | 6.1 | win2k8r2 | win7 |
 * | 6.2 | win2k12 | win8 |
 * | 6.3 | win2k12r2 | win8.1 |
 * | 10.0 | ProductName has "2025": win2k25; "2022": win2k22; "2019": win2k19; else win2k16 | build >= 22000: win11; else win10 |
 *
 * Anything else is "unknown". The build is CurrentBuildNumber (libguestfs
 * reads that, not CurrentBuild, which meant something else on XP); with no
 * build a Windows 10/11 client is "unknown". Windows Vista and Server 2008
 * have no InstallationType, so libguestfs calls Server 2008 "winvista": so
 * do we, to print what virt-inspector prints.
 */

export interface OsinfoInput {
  majorVersion?: number;
  minorVersion?: number;
  productName?: string;
  installationType?: string;
  buildNumber?: number;
}

export function windowsOsinfo(f: OsinfoInput): string {
  const product = f.productName ?? '';
  const server = (f.installationType ?? '').includes('Server');
  switch (f.majorVersion) {
    case 5:
      if (f.minorVersion === 1) return 'winxp';
      if (f.minorVersion === 2) return product.includes('XP') ? 'winxp' : product.includes('R2') ? 'win2k3r2' : 'win2k3';
      break;
    case 6: {
      const ids: Record<number, [string, string]> = { 0: ['win2k8', 'winvista'], 1: ['win2k8r2', 'win7'], 2: ['win2k12', 'win8'], 3: ['win2k12r2', 'win8.1'] };
      const pair = f.minorVersion === undefined ? undefined : ids[f.minorVersion];
      if (pair) return server ? pair[0] : pair[1];
      break;
    }
    case 10:
      if (f.minorVersion !== 0) break;
      if (server) {
        if (product.includes('2025')) return 'win2k25';
        if (product.includes('2022')) return 'win2k22';
        if (product.includes('2019')) return 'win2k19';
        return 'win2k16';
      }
      if (f.buildNumber === undefined) break;
      return f.buildNumber >= 22000 ? 'win11' : 'win10';
  }
  return 'unknown';
}
