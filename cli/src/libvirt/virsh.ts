/** Reading a domain's XML (and its volumes) through virsh, read-only, when libvirt is installed. */
import { execa } from 'execa';
import { DomainXmlError, parseDomainXml, type Domain } from './domainXml.ts';
import type { VirshRunner } from './volumes.ts';

/** `virsh -r [-c URI] ARGS...` through execa, for resolveVolumes. */
export function virshRunner(uri: string | undefined): VirshRunner {
  return async (args) => {
    const r = await execa('virsh', ['-r', ...(uri ? ['-c', uri] : []), ...args], { reject: false, stdin: 'ignore' });
    return { exitCode: r.exitCode, code: r.code, message: r.shortMessage, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
}

export async function dumpDomain(domain: string, uri: string | undefined): Promise<Domain> {
  const args = ['-r', ...(uri ? ['-c', uri] : []), 'dumpxml', '--', domain];
  const r = await execa('virsh', args, { reject: false });
  if ((r as { code?: string }).code === 'ENOENT' || r.failed && /ENOENT/.test(String(r.message))) {
    throw new DomainXmlError(`-d ${domain}: virsh is not installed (Debian package libvirt-clients); use --domain-xml FILE with a saved "virsh dumpxml" instead`);
  }
  if (r.exitCode !== 0) {
    throw new DomainXmlError(`virsh ${args.join(' ')} failed: ${String(r.stderr).trim() || `exit ${r.exitCode}`}`);
  }
  return parseDomainXml(String(r.stdout), `domain ${domain}`);
}
