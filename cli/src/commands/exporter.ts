/**
 * guestlens exporter: guest filesystem usage for Prometheus, without an agent
 * in any guest. Guests by --image glob and/or --libvirt; /metrics serves the
 * last background refresh, /probe?target= reads one guest now (see
 * exporter/). Listens on loopback unless told otherwise: the metrics name
 * guests, devices, labels and UUIDs, facts about what is inside the VMs.
 * SIGINT/SIGTERM: stops, closes every guest (their overlays removed), exit 0.
 */
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.ts';
import { backingPolicy } from '../guest/guestJobs.ts';
import { VERSION } from '../version.ts';

/** Our default port. Prometheus's allocation list (9100-9999) has been full since 2023; see the README. */
export const DEFAULT_PORT = 10113;

interface ExporterArgs {
  listen: string;
  image: string[];
  libvirt?: string;
  interval: number;
  concurrency: number;
  timeout: number;
  format?: string;
  backing?: string;
  'probe-allow': string[];
}

export const exporterCommand: CommandModule<object, ExporterArgs> = {
  command: 'exporter',
  describe: 'Serve guest filesystem metrics to Prometheus (/metrics, /probe?target=)',
  builder: (y: Argv) =>
    y
      .usage('guestlens exporter [--image GLOB]... [--libvirt [URI]] [options]')
      .option('listen', { type: 'string', default: `127.0.0.1:${DEFAULT_PORT}`, describe: 'ADDRESS:PORT to listen on (anything but loopback exposes guest filesystem facts to the network)' })
      .option('image', { type: 'string', array: true, nargs: 1, default: [], describe: 'images to watch, a path or a glob (repeatable; expanded again every refresh)' })
      .option('libvirt', { type: 'string', describe: 'watch libvirt\'s domains (running and defined), through virsh -r; optionally the URI' })
      .option('interval', { type: 'number', default: 60, describe: 'seconds between background refreshes of every guest' })
      .option('concurrency', { type: 'number', default: 4, describe: 'guests read at a time' })
      .option('timeout', { type: 'number', default: 30, describe: 'seconds one guest may take before it counts as failed' })
      .option('format', { type: 'string', describe: 'format of every image (give raw for untrusted raw images)' })
      .option('backing', { type: 'string', describe: 'which files an image may name: allow (default), same-dir, none' })
      .option('probe-allow', { type: 'string', array: true, nargs: 1, default: [], describe: 'globs of image paths /probe may read besides the guests watched (default: the --image globs)' }) as unknown as Argv<ExporterArgs>,
  handler: async (args) => {
    const m = /^(.*):(\d+)$/.exec(args.listen);
    if (!m || Number(m[2]) > 65535) throw new UsageError(`exporter: --listen ${args.listen}: give ADDRESS:PORT, for example 127.0.0.1:${DEFAULT_PORT}`);
    const host = m[1].replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
    for (const [name, v, min] of [['--interval', args.interval, 0.1], ['--timeout', args.timeout, 0.1], ['--concurrency', args.concurrency, 1]] as const) {
      if (!Number.isFinite(v) || v < min) throw new UsageError(`exporter: ${name} ${v}: give a number of at least ${min}`);
    }
    if (args.image.length === 0 && args.libvirt === undefined) throw new UsageError('exporter: name the guests to watch: --image GLOB (repeatable) and/or --libvirt [URI]');
    const backing = backingPolicy('exporter', args.backing);
    const { default: picomatch } = await import('picomatch');
    const allow = (args['probe-allow'].length ? args['probe-allow'] : args.image).map((p) => picomatch(p));
    const { Exporter } = await import('../exporter/exporter.ts');
    const { serve } = await import('../exporter/server.ts');
    const log = (s: string) => process.stderr.write(`guestlens: exporter: ${s}\n`);
    const exporter = new Exporter({
      images: args.image,
      libvirt: args.libvirt === undefined ? undefined : { uri: args.libvirt || undefined },
      format: args.format,
      intervalS: args.interval,
      concurrency: Math.floor(args.concurrency),
      timeoutS: args.timeout,
      backing,
      version: VERSION,
      log,
    });
    const server = await serve(exporter, { host, port: Number(m[2]), probeAllowed: (p) => allow.some((match) => match(p)) });
    const address = server.address();
    log(`listening on ${typeof address === 'object' && address ? `${address.address}:${address.port}` : args.listen}${isLoopback(host) ? '' : ' (not loopback: anyone who can reach it reads guest filesystem facts)'}`);
    exporter.start();
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    server.close();
    server.closeAllConnections();
    await exporter.stop();
  },
};

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
