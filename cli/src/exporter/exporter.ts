/**
 * The exporter's work, apart from HTTP: every interval, find the guests
 * again, read each (at most `concurrency` at a time, each within `timeoutMs`,
 * a guest kept open across cycles), and render the metrics once; /metrics
 * then serves that text as it is, so a scrape never waits for a guest and
 * answers in microseconds while the next cycle runs. /probe reads one guest
 * now, within the timeout.
 */
import client from 'prom-client';
import { discover, type DiscoveryOptions } from './discovery.ts';
import { renderMetrics } from './metrics.ts';
import { WatchedGuest } from './watchedGuest.ts';
import { Spawner } from '../spawner.ts';
import { useCommandRunner } from '@guestlens/overlay';
import type { BackingPolicyName } from '@guestlens/qcow2-js/policy';
import type { GuestJob } from '../guest/guestJobs.ts';

export interface ExporterOptions extends DiscoveryOptions {
  intervalS: number;
  concurrency: number;
  timeoutS: number;
  backing?: BackingPolicyName;
  version: string;
  log(message: string): void;
}

export class Exporter {
  private readonly watched = new Map<string, WatchedGuest>();
  /** The last error logged per guest. */
  private readonly said = new WeakMap<WatchedGuest, string>();
  private text = '';
  private timer: NodeJS.Timeout | undefined;
  private cycle: Promise<void> | undefined;
  private stopped = false;
  readonly processRegistry = new client.Registry();
  /** Cycles completed, and how long the last took (for tests and the log). */
  cycles = 0;
  lastCycleS = 0;

  private readonly spawner = new Spawner();

  constructor(readonly o: ExporterOptions) {
    // Before any image is opened (see spawner.ts).
    useCommandRunner(this.spawner.run);
    client.collectDefaultMetrics({ register: this.processRegistry, prefix: 'guestlens_exporter_' });
    // prom-client names these gauges *_total, which the exposition's conventions (promtool check metrics) keep for counters.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.processRegistry.removeSingleMetric(`guestlens_exporter_${name}`);
  }

  /** Start refreshing: the first cycle now, then one every interval (a slow cycle delays the next, never overlaps it). */
  start(): void {
    const run = async () => {
      if (this.stopped) return;
      const started = performance.now();
      this.cycle = this.refreshAll();
      await this.cycle;
      if (!this.stopped) this.timer = setTimeout(run, Math.max(0, this.o.intervalS * 1000 - (performance.now() - started)));
    };
    void run();
  }

  /** The metrics of the last finished cycle. */
  async metrics(): Promise<string> {
    if (!this.text) this.text = await this.render();
    return this.text;
  }

  /** Names and keys of the guests watched (for /probe and the landing page). */
  guests(): { key: string; job: GuestJob }[] {
    return [...this.watched].map(([key, w]) => ({ key, job: w.job }));
  }

  /**
   * Read one guest now (the multi-target pattern): a watched one by its name,
   * image path or domain, or an image path the options allow. Undefined: not a
   * target this exporter may read.
   */
  async probe(target: string, allowed: (path: string) => boolean): Promise<string | undefined> {
    let w = [...this.watched.values()].find((g) => g.job.name === target || g.job.images.some((i) => i.path === target));
    let temporary = false;
    if (!w) {
      if (!allowed(target)) return undefined;
      w = new WatchedGuest({ name: target, images: [{ path: target, format: this.o.format }], unreadable: [] }, this.o.backing);
      temporary = true;
    }
    const started = performance.now();
    try {
      await w.refresh(this.o.timeoutS * 1000);
      const body = await renderMetrics([{ facts: w.facts, errors: w.errors }], { version: this.o.version });
      const seconds = (performance.now() - started) / 1000;
      return `${body}# HELP guestlens_probe_success Whether the guest was read.\n# TYPE guestlens_probe_success gauge\nguestlens_probe_success ${w.facts.up ? 1 : 0}\n# HELP guestlens_probe_duration_seconds How long the probe took.\n# TYPE guestlens_probe_duration_seconds gauge\nguestlens_probe_duration_seconds ${seconds}\n`;
    } finally {
      if (temporary) await w.close();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.cycle?.catch(() => undefined);
    await Promise.allSettled([...this.watched.values()].map((w) => w.close()));
    useCommandRunner(undefined);
    this.spawner.close();
  }

  private async refreshAll(): Promise<void> {
    const started = performance.now();
    let found;
    try {
      found = await discover({ ...this.o, run: this.spawner.run });
    } catch (err) {
      this.o.log(`finding guests failed: ${(err as Error).message}; keeping the guests known`);
      found = undefined;
    }
    if (found) {
      for (const p of found.problems) this.o.log(p);
      for (const [key, w] of this.watched) {
        if (found.jobs.has(key)) continue;
        this.watched.delete(key);
        await w.close();
      }
      for (const [key, job] of found.jobs) {
        const w = this.watched.get(key);
        if (!w) this.watched.set(key, new WatchedGuest(job, this.o.backing));
        else if (JSON.stringify(w.job.images) !== JSON.stringify(job.images)) {
          // The domain's disks changed: start over on the new ones.
          await w.close();
          this.watched.set(key, new WatchedGuest(job, this.o.backing));
        } else w.job = job; // renamed: same guest, new name
      }
    }
    const queue = [...this.watched.values()];
    const worker = async () => {
      for (let w = queue.shift(); w && !this.stopped; w = queue.shift()) {
        await w.refresh(this.o.timeoutS * 1000);
        // Said when it changes, not every cycle: a guest down for a day would fill the journal.
        const said = this.said.get(w);
        if (!w.facts.up && w.facts.error && w.facts.error !== said) {
          this.o.log(`${w.job.name}: ${w.facts.error}`);
          this.said.set(w, w.facts.error);
        } else if (w.facts.up && said !== undefined) {
          this.o.log(`${w.job.name}: read again`);
          this.said.delete(w);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.o.concurrency) }, worker));
    this.cycles++;
    this.lastCycleS = (performance.now() - started) / 1000;
    this.text = await this.render();
  }

  private render(): Promise<string> {
    return renderMetrics([...this.watched.values()].map((w) => ({ facts: w.facts, errors: w.errors })), {
      cachedEverySeconds: this.o.intervalS,
      refreshes: { count: this.cycles, lastSeconds: this.lastCycleS },
      processMetrics: this.processRegistry,
      version: this.o.version,
    });
  }
}
