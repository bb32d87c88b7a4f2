/**
 * Guest facts as Prometheus metrics (text exposition through prom-client),
 * named after node_exporter's filesystem collector so its dashboards and
 * alerts translate by swapping the prefix: guestlens_filesystem_size_bytes,
 * _free_bytes, _avail_bytes, _files, _files_free, _readonly, _device_error
 * with {guest, device, fstype, mountpoint, label, uuid}; device_error
 * carries the error text in a `device_error` label, as node_exporter ≥ 1.8
 * does. Per guest: up, read duration, last success, errors by reason, QEMU
 * holders of its images. One renderer for the exporter's /metrics and
 * /probe and for `df --prometheus`.
 */
import client from 'prom-client';
import type { ErrorReason, GuestFacts } from './watchedGuest.ts';

export interface GuestSample {
  facts: GuestFacts;
  errors: ReadonlyMap<ErrorReason, number>;
}

export interface RenderOptions {
  /** The values come from a background refresh (the exporter's /metrics): HELP says how old they can be. */
  cachedEverySeconds?: number;
  /** Also the exporter process's own metrics (memory, CPU, event loop). */
  processMetrics?: client.Registry;
  version: string;
  /** The exporter's refresh cycles: how many finished, and how long the last took. */
  refreshes?: { count: number; lastSeconds: number };
}

const FS_LABELS = ['guest', 'device', 'fstype', 'mountpoint', 'label', 'uuid'] as const;

export async function renderMetrics(samples: GuestSample[], o: RenderOptions): Promise<string> {
  const registry = new client.Registry();
  const cached = o.cachedEverySeconds === undefined ? '' : ` Cached: read by a background refresh every ${o.cachedEverySeconds} s; guestlens_guest_last_success_timestamp_seconds tells each guest's age.`;
  const gauge = (name: string, help: string, labelNames: readonly string[]) => new client.Gauge({ name, help: help + cached, labelNames: [...labelNames], registers: [registry] });
  const size = gauge('guestlens_filesystem_size_bytes', 'Filesystem size in bytes, as the guest kernel\'s statfs (f_blocks * f_bsize).', FS_LABELS);
  const free = gauge('guestlens_filesystem_free_bytes', 'Filesystem free space in bytes (f_bfree * f_bsize).', FS_LABELS);
  const avail = gauge('guestlens_filesystem_avail_bytes', 'Filesystem space available to non-root users in bytes (f_bavail * f_bsize).', FS_LABELS);
  const files = gauge('guestlens_filesystem_files', 'Filesystem total file nodes (f_files).', FS_LABELS);
  const filesFree = gauge('guestlens_filesystem_files_free', 'Filesystem free file nodes (f_ffree).', FS_LABELS);
  const readonly = gauge('guestlens_filesystem_readonly', 'Filesystem mounted read-only by the guest (its fstab says ro).', FS_LABELS);
  const inexact = gauge('guestlens_filesystem_inexact', 'The figures may differ from what the guest shows (1), with the reason.', [...FS_LABELS, 'reason']);
  const deviceError = gauge('guestlens_filesystem_device_error', 'Whether the filesystem (or the device under it) could not be read, with the error text.', ['guest', 'device', 'device_error']);
  const up = gauge('guestlens_guest_up', 'Whether the last read of the guest succeeded.', ['guest']);
  const duration = gauge('guestlens_guest_read_duration_seconds', 'How long the last read of the guest took.', ['guest']);
  const lastSuccess = gauge('guestlens_guest_last_success_timestamp_seconds', 'When the guest was last read successfully (Unix time).', ['guest']);
  const inUse = gauge('guestlens_image_in_use', 'A process holds the guest\'s image with QEMU\'s locks (a running VM holds it read-write).', ['guest', 'image', 'holder', 'access']);
  const errors = new client.Counter({ name: 'guestlens_scrape_errors_total', help: 'Reads of a guest that failed or were incomplete, by reason (open, read, timeout, busy, deleted, replaced, partial).', labelNames: ['guest', 'reason'], registers: [registry] });
  const guests = gauge('guestlens_guests', 'Guests watched.', []);
  const build = gauge('guestlens_build_info', 'guestlens build: the version and the Node.js it runs on.', ['version', 'nodejs']);

  guests.set(samples.length);
  if (o.refreshes) {
    const count = new client.Counter({ name: 'guestlens_exporter_refreshes_total', help: 'Background refresh cycles of every guest finished.', registers: [registry] });
    count.inc(o.refreshes.count);
    gauge('guestlens_exporter_refresh_duration_seconds', 'How long the last refresh of every guest took (if near --interval, raise --concurrency).', []).set(o.refreshes.lastSeconds);
  }
  build.set({ version: o.version, nodejs: process.version }, 1);
  for (const { facts: f, errors: counted } of samples) {
    up.set({ guest: f.guest }, f.up ? 1 : 0);
    duration.set({ guest: f.guest }, f.readDurationS);
    if (f.lastSuccessS !== undefined) lastSuccess.set({ guest: f.guest }, f.lastSuccessS);
    for (const [reason, n] of counted) errors.inc({ guest: f.guest, reason }, n);
    for (const h of f.holders) inUse.set({ guest: f.guest, image: h.image, holder: h.holder, access: h.access }, 1);
    for (const fs of f.filesystems) {
      const l = { guest: f.guest, device: fs.device, fstype: fs.fstype, mountpoint: fs.mountpoint, label: fs.label, uuid: fs.uuid };
      size.set(l, fs.sizeBytes);
      free.set(l, fs.freeBytes);
      avail.set(l, fs.availBytes);
      files.set(l, fs.files);
      filesFree.set(l, fs.filesFree);
      readonly.set(l, fs.readonly ? 1 : 0);
      if (fs.inexact) inexact.set({ ...l, reason: fs.inexact }, 1);
      deviceError.set({ guest: f.guest, device: fs.device, device_error: '' }, 0);
    }
    for (const e of f.deviceErrors) deviceError.set({ guest: f.guest, device: e.device, device_error: e.error }, 1);
  }
  const ours = await registry.metrics();
  return o.processMetrics ? `${ours}\n${await o.processMetrics.metrics()}` : ours;
}

export const CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;
