/**
 * guestlens exporter, check and df --prometheus, with real parts: a real
 * Prometheus server (Debian's) scrapes the exporter every second, with the
 * shipped alerting rules loaded; its HTTP API is the oracle for what a
 * user's Prometheus would store, and `guestlens df --json` for the figures.
 * The fleet holds ordinary guests beside hostile ones: a FIFO, a corrupt
 * qcow2, an image that stops answering (a FUSE export whose
 * qemu-storage-daemon is stopped with SIGSTOP), one deleted and one
 * replaced while watched, and a running guest (qemu-storage-daemon + kernel
 * loop mount) written to while Prometheus watches. libvirt discovery goes
 * through libvirt's test:/// driver. promtool checks the rules (and their
 * unit tests), the exposition and the dashboard's queries.
 */
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { freePort } from './support/net.ts';
import { join } from 'node:path';
import { buildDisk, haveTool, toQcow2 } from './support/guestDisk.ts';
import { snapshotImage, assertImageUnchanged, type ImageSnapshot } from './support/imageGuard.ts';
import { loopMountUnavailable } from './support/kernel.ts';
import { startLiveGuest, type LiveGuest } from './support/liveGuest.ts';
import { startTracked, stop, waitFor, type Tracked } from './support/processes.ts';
import { guestlens, repoRoot, sh } from './support/run.ts';
import { scratchDir } from './support/scratch.ts';

const GUESTLENS = join(repoRoot, 'cli', 'bin', 'guestlens');
const DEPLOY = join(repoRoot, 'deploy');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


async function get(url: string): Promise<{ status: number; body: string; ms: number }> {
  const started = performance.now();
  const r = await fetch(url, { signal: AbortSignal.timeout(20000) });
  return { status: r.status, body: await r.text(), ms: performance.now() - started };
}

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of one metric in an exposition text (our own tiny parser: the oracle for values is Prometheus below). */
function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || !/^[a-z_]+(\{| )/.test(line)) continue;
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

function one(text: string, name: string, match: Record<string, string>): number | undefined {
  return samples(text, name).find((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))?.value;
}

async function dfJson(image: string): Promise<{ guest: string; device: string; bsize: number; blocks: number; bavail: number; bfree: number; files: number; ffree: number; uuid: string | null }[]> {
  const r = await guestlens(['df', '--json', image]);
  assert.equal(r.exitCode, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function promtool(args: string[], input?: string): Promise<{ exitCode: number; out: string }> {
  const r = await execa('promtool', args, { reject: false, input, cwd: join(DEPLOY, 'prometheus') });
  return { exitCode: r.exitCode ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

describe('guestlens exporter with a real Prometheus', function () {
  this.timeout(240000);
  const dir = scratchDir('exporter');
  const fleet = join(dir, 'fleet');
  const extra = join(dir, 'extra');
  let web: string;
  let db: string;
  let spare: string;
  let doomed: string;
  let swapped: string;
  let hungExport: string;
  let hungDaemon: Tracked | undefined;
  let live: LiveGuest | undefined;
  let exporter: Tracked | undefined;
  let prometheus: Tracked | undefined;
  let port: number;
  let promPort: number;
  let logs = '';
  const guarded: ImageSnapshot[] = [];

  const metrics = async () => (await get(`http://127.0.0.1:${port}/metrics`)).body;
  const promQuery = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const r = await get(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
    const j = JSON.parse(r.body) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    assert.equal(j.status, 'success', `${q}: ${j.error}`);
    return j.data.result;
  };

  before(async function () {
    for (const tool of ['prometheus', 'promtool']) {
      if (!(await haveTool(tool))) {
        console.log(`      ${tool} is not installed (Debian package prometheus): cannot test the exporter against Prometheus`);
        this.skip();
      }
    }
    mkdirSync(fleet);
    mkdirSync(extra);
    const a = await buildDisk('web', 'gpt', [
      { sizeMiB: 24, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'root', '-U', '11111111-2222-3333-4444-555555555555'], files: { 'etc/fstab': 'LABEL=root / ext4 defaults 0 1\nUUID=ABCD-1234 /boot/efi vfat umask=0077 0 2\n', 'etc/os-release': 'ID=debian\nVERSION_ID=12\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n', 'var/big': Buffer.alloc(6 << 20, 7) } } },
      { sizeMiB: 16, type: 'uefi', content: { mkfs: 'mkfs.vfat', args: ['-i', 'ABCD1234'] } },
    ]);
    web = await toQcow2(a.raw, join(fleet, 'web.qcow2'));
    const b = await buildDisk('db', 'dos', [{ sizeMiB: 20, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'data'] } }]);
    db = join(fleet, 'db.raw');
    copyFileSync(b.raw, db);
    // A guest with a volume it cannot read: its device_error.
    const v = await buildDisk('vault', 'gpt', [
      { sizeMiB: 8, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F'] } },
      { sizeMiB: 32, content: { mkfs: 'cryptsetup', args: ['luksFormat', '-q', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', '/dev/zero', '--keyfile-size', '32'] } },
    ]);
    copyFileSync(v.raw, join(fleet, 'vault.raw'));
    // Hostile members of the fleet.
    await sh('mkfifo', [join(fleet, 'pipe.img')]);
    const corrupt = join(fleet, 'corrupt.qcow2');
    copyFileSync(web, corrupt);
    const fd = openSync(corrupt, 'r+');
    writeSync(fd, Buffer.from('0000ffffffff0000', 'hex'), 0, 8, 40); // l1_table_offset far past the end
    closeSync(fd);
    const c = await buildDisk('spare', 'gpt', [{ sizeMiB: 12, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'spare', '-U', '99999999-8888-7777-6666-555555555555'] } }]);
    spare = await toQcow2(c.raw, join(extra, 'spare.qcow2'));
    // Watched by exact path: one to delete, one to replace by another guest.
    doomed = join(dir, 'doomed.qcow2');
    copyFileSync(spare, doomed);
    swapped = join(dir, 'swapped.qcow2');
    copyFileSync(web, swapped);
    // An image behind a FUSE export whose daemon the test stops.
    const hungSource = join(dir, 'hung-source.raw');
    copyFileSync(b.raw, hungSource);
    hungExport = join(dir, 'hung.raw');
    writeFileSync(hungExport, '');
    hungDaemon = startTracked('qemu-storage-daemon', [
      '--blockdev', `driver=file,node-name=f,filename=${hungSource},read-only=on`,
      '--export', `type=fuse,id=e,node-name=f,mountpoint=${hungExport},writable=off`,
    ], { suite: true });
    await waitFor('the FUSE export', async () => (await execa('stat', ['-c', '%s', hungExport])).stdout.trim() !== '0');
    for (const p of [web, db, spare, hungSource]) guarded.push(await snapshotImage(p));

    const noLoop = await loopMountUnavailable();
    if (noLoop) console.log(`      ${noLoop}: the running-guest case is left out`);
    else live = await startLiveGuest(scratchDir('exporter-live'), { sizeMiB: 64, suite: true });

    port = await freePort();
    promPort = await freePort();
    exporter = startTracked(GUESTLENS, [
      'exporter', '--listen', `127.0.0.1:${port}`,
      '--image', `${fleet}/*`, '--image', doomed, '--image', swapped, '--image', hungExport,
      ...(live ? ['--image', live.image] : []),
      '--interval', '1', '--timeout', '3', '--concurrency', '3',
      '--probe-allow', `${extra}/*.qcow2`,
    ], { suite: true, env: { GUESTLENS_DEBUG: '1' } });
    void exporter.stderr?.on('data', (d: Buffer) => { logs += d.toString(); });
    await waitFor('the exporter\'s first cycle', async () => {
      try {
        return one(await metrics(), 'guestlens_guest_up', { guest: 'web.qcow2' }) === 1;
      } catch {
        return false;
      }
    }, 60000, 200);

    const promDir = join(dir, 'prometheus');
    mkdirSync(promDir);
    writeFileSync(join(promDir, 'prometheus.yml'), [
      'global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}',
      `rule_files: ['${join(DEPLOY, 'prometheus', 'guestlens-alerts.yml')}']`,
      'scrape_configs:',
      '  - job_name: guestlens',
      `    static_configs: [{targets: ['127.0.0.1:${port}']}]`,
      '  - job_name: guestlens-probe',
      '    metrics_path: /probe',
      '    params: {target: [db.raw]}',
      '    scrape_interval: 2s',
      '    scrape_timeout: 1900ms',
      `    static_configs: [{targets: ['127.0.0.1:${port}']}]`,
      '',
    ].join('\n'));
    prometheus = startTracked('prometheus', [
      `--config.file=${join(promDir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(promDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ], { suite: true });
    await waitFor('Prometheus to store the first scrape', async () => {
      try {
        return (await promQuery('guestlens_filesystem_size_bytes{job="guestlens"}')).length > 0;
      } catch {
        return false;
      }
    }, 60000, 250);
  });

  after(async () => {
    if (hungDaemon) {
      try { process.kill(hungDaemon.pid, 'SIGCONT'); } catch { /* gone */ }
    }
    if (prometheus) await stop(prometheus);
    if (exporter) await stop(exporter, 10000);
    if (hungDaemon) await stop(hungDaemon);
    if (live) await live.stop();
    for (const s of guarded) await assertImageUnchanged(s);
  });

  it('Prometheus stores every readable guest\'s filesystems with the sizes df --json reads', async () => {
    for (const [image, guest] of [[web, 'web.qcow2'], [db, 'db.raw']] as const) {
      const expected = await dfJson(image);
      const stored = await promQuery(`guestlens_filesystem_size_bytes{job="guestlens",guest="${guest}"}`);
      const avail = await promQuery(`guestlens_filesystem_avail_bytes{job="guestlens",guest="${guest}"}`);
      const files = await promQuery(`guestlens_filesystem_files_free{job="guestlens",guest="${guest}"}`);
      assert.deepEqual(stored.map((s) => s.metric.device).sort(), expected.map((e) => e.device).sort(), guest);
      for (const e of expected) {
        const pick = (r: typeof stored) => Number(r.find((s) => s.metric.device === e.device)?.value[1]);
        assert.equal(pick(stored), e.blocks * e.bsize, `${guest} ${e.device} size`);
        assert.equal(pick(avail), e.bavail * e.bsize, `${guest} ${e.device} avail`);
        assert.equal(pick(files), e.ffree, `${guest} ${e.device} files free`);
      }
    }
    // Labels as node_exporter's: the fstab's mount points, fstype, label and UUID.
    const root = (await promQuery('guestlens_filesystem_size_bytes{guest="web.qcow2",mountpoint="/"}'))[0];
    assert.ok(root, 'the root is labelled mountpoint="/" from the fstab');
    assert.equal(root.metric.fstype, 'ext4');
    assert.equal(root.metric.label, 'root');
    assert.equal(root.metric.uuid, '11111111-2222-3333-4444-555555555555');
    const efi = (await promQuery('guestlens_filesystem_size_bytes{guest="web.qcow2",fstype="vfat"}'))[0];
    assert.equal(efi?.metric.mountpoint, '/boot/efi');
    assert.equal(Number((await promQuery('guestlens_guests{job="guestlens"}'))[0].value[1]), 8 + (live ? 1 : 0));
    // A volume it cannot read: device_error with the reason, the guest still up.
    const vault = await promQuery('guestlens_filesystem_device_error{guest="vault.raw"} == 1');
    assert.equal(vault.length, 1);
    assert.equal(vault[0].metric.device, '/dev/sda2');
    assert.match(vault[0].metric.device_error, /LUKS/);
    assert.equal((await promQuery('guestlens_guest_up{guest="vault.raw"}'))[0]?.value[1], '1');
    assert.equal((await promQuery('guestlens_build_info{job="guestlens"}'))[0]?.metric.version, JSON.parse(readFileSync(join(repoRoot, 'cli', 'package.json'), 'utf8')).version);
  });

  it('the multi-target /probe job reads its guest, and Prometheus stores it', async () => {
    const probed = await waitFor('a probe scrape', async () => (await promQuery('guestlens_probe_success{job="guestlens-probe"}'))[0], 20000, 250);
    assert.equal(probed.value[1], '1');
    const expected = await dfJson(db);
    const stored = await promQuery('guestlens_filesystem_size_bytes{job="guestlens-probe"}');
    assert.deepEqual(stored.map((s) => Number(s.value[1])), expected.map((e) => e.blocks * e.bsize));
  });

  it('/probe reads a path --probe-allow permits, refuses any other, and names the problem', async () => {
    const ok = await get(`http://127.0.0.1:${port}/probe?target=${encodeURIComponent(spare)}`);
    assert.equal(ok.status, 200);
    assert.equal(one(ok.body, 'guestlens_probe_success', {}), 1);
    assert.equal(one(ok.body, 'guestlens_filesystem_size_bytes', { label: 'spare' }), (await dfJson(spare))[0].blocks * 1024);
    const refused = await get(`http://127.0.0.1:${port}/probe?target=${encodeURIComponent('/etc/passwd')}`);
    assert.equal(refused.status, 403);
    assert.match(refused.body, /\/etc\/passwd: not a guest this exporter watches, nor a path --probe-allow permits/);
    const none = await get(`http://127.0.0.1:${port}/probe`);
    assert.equal(none.status, 400);
    const broken = await get(`http://127.0.0.1:${port}/probe?target=corrupt.qcow2`);
    assert.equal(broken.status, 200);
    assert.equal(one(broken.body, 'guestlens_probe_success', {}), 0);
    assert.equal((await get(`http://127.0.0.1:${port}/nosuch`)).status, 404);
    assert.equal((await get(`http://127.0.0.1:${port}/-/healthy`)).status, 200);
  });

  it('the exposition passes promtool check metrics', async () => {
    const r = await promtool(['check', 'metrics'], await metrics());
    assert.equal(r.exitCode, 0, r.out);
  });

  it('a FIFO and a corrupt image are down with their errors counted, and the rest of the fleet is read', async () => {
    const text = await metrics();
    for (const guest of ['pipe.img', 'corrupt.qcow2']) {
      assert.equal(one(text, 'guestlens_guest_up', { guest }), 0, guest);
      assert.ok((one(text, 'guestlens_scrape_errors_total', { guest, reason: 'open' }) ?? 0) >= 1, `${guest}: errors counted\n${text}`);
    }
    assert.match(logs, /pipe\.img: .*pipe\.img: is not a regular file or block device/);
    assert.match(logs, /corrupt\.qcow2: .*L1 table/i);
    assert.equal((await promQuery('guestlens_guest_up{job="guestlens"} == 1')).length, 6 + (live ? 1 : 0));
    assert.ok((one(text, 'guestlens_scrape_errors_total', { guest: 'vault.raw', reason: 'partial' }) ?? 0) >= 1, 'an unreadable volume counts as a partial read');
  });

  it('an image that stops answering: scrapes answer at once, the other guests stay fresh, timeouts counted; it recovers', async function () {
    const before = await metrics();
    assert.equal(one(before, 'guestlens_guest_up', { guest: 'hung.raw' }), 1, 'read before it hangs');
    process.kill(hungDaemon!.pid, 'SIGSTOP');
    try {
      // The kernel caches the export's pages and attributes: drop them, so reads reach the stopped daemon and hang.
      writeFileSync('/proc/sys/vm/drop_caches', '3');
      const stoppedAt = Date.now() / 1000;
      await waitFor('the timeout to be counted', async () => (one(await metrics(), 'guestlens_scrape_errors_total', { guest: 'hung.raw', reason: 'timeout' }) ?? 0) >= 1, 20000, 200);
      // While it hangs: every scrape answers, and the others are read again after the hang began.
      for (let i = 0; i < 5; i++) {
        const r = await get(`http://127.0.0.1:${port}/metrics`);
        assert.equal(r.status, 200);
        assert.ok(r.ms < 2000, `a scrape took ${r.ms} ms while an image hung`);
        await sleep(300);
      }
      const text = await metrics();
      assert.equal(one(text, 'guestlens_guest_up', { guest: 'hung.raw' }), 0);
      assert.ok(one(text, 'guestlens_guest_last_success_timestamp_seconds', { guest: 'hung.raw' })! < stoppedAt, 'its last good read is kept, with its age');
      assert.ok(one(text, 'guestlens_filesystem_size_bytes', { guest: 'hung.raw' })! > 0, 'its last good figures are kept');
      for (const guest of ['web.qcow2', 'db.raw']) assert.ok(one(text, 'guestlens_guest_last_success_timestamp_seconds', { guest })! > stoppedAt, `${guest} is read while hung.raw hangs`);
      // Prometheus saw no failed scrape of the exporter meanwhile.
      assert.equal((await promQuery('min_over_time(up{job="guestlens"}[10s])'))[0]?.value[1], '1');
    } finally {
      process.kill(hungDaemon!.pid, 'SIGCONT');
    }
    await waitFor('hung.raw to be read again', async () => one(await metrics(), 'guestlens_guest_up', { guest: 'hung.raw' }) === 1, 30000, 200);
    assert.ok((one(await metrics(), 'guestlens_scrape_errors_total', { guest: 'hung.raw', reason: 'busy' }) ?? 0) >= 1, 'cycles during the hang did not pile up reads');
  });

  it('an image deleted while watched is down and counted; one replaced by another guest shows the other guest', async () => {
    rmSync(doomed);
    await waitFor('the deletion to be seen', async () => (one(await metrics(), 'guestlens_scrape_errors_total', { guest: 'doomed.qcow2', reason: 'deleted' }) ?? 0) >= 1, 20000, 200);
    assert.equal(one(await metrics(), 'guestlens_guest_up', { guest: 'doomed.qcow2' }), 0);
    assert.match(logs, /doomed\.qcow2: .*the image is gone \(deleted or moved\)/);
    const next = join(dir, 'next.qcow2');
    copyFileSync(spare, next);
    renameSync(next, swapped);
    await waitFor('the replacement to be read', async () => one(await metrics(), 'guestlens_filesystem_size_bytes', { guest: 'swapped.qcow2', label: 'spare' }) !== undefined, 20000, 200);
    const text = await metrics();
    assert.ok((one(text, 'guestlens_scrape_errors_total', { guest: 'swapped.qcow2', reason: 'replaced' }) ?? 0) >= 1);
    assert.equal(one(text, 'guestlens_filesystem_size_bytes', { guest: 'swapped.qcow2', label: 'root' }), undefined, 'the old guest\'s filesystems are gone');
  });

  it('the glob is expanded again: a new image appears, a removed one disappears', async () => {
    copyFileSync(spare, join(fleet, 'new.qcow2'));
    await waitFor('the new image', async () => one(await metrics(), 'guestlens_guest_up', { guest: 'new.qcow2' }) === 1, 20000, 200);
    rmSync(join(fleet, 'new.qcow2'));
    await waitFor('the removed image to disappear', async () => one(await metrics(), 'guestlens_guest_up', { guest: 'new.qcow2' }) === undefined, 20000, 200);
  });

  it('a running guest written meanwhile shows its new usage in Prometheus after the next refresh', async function () {
    if (!live) this.skip();
    const guest = 'live.qcow2';
    const q = `guestlens_filesystem_avail_bytes{job="guestlens",guest="${guest}"}`;
    const first = Number((await waitFor('the live guest in Prometheus', async () => (await promQuery(q))[0], 20000, 250)).value[1]);
    const holders = await promQuery(`guestlens_image_in_use{guest="${guest}",access="read-write"}`);
    assert.match(holders[0]?.metric.holder ?? '', /qemu-storage-daemon/, `qemu-storage-daemon holds the live image read-write: ${samples(await metrics(), 'guestlens_image_in_use').map((s) => JSON.stringify(s.labels)).join(' ')}\n${(await guestlens(['locks', live.image])).stdout}`);
    writeFileSync(join(live.mnt, 'grown.bin'), Buffer.alloc(16 << 20, 1));
    await live.sync();
    const expected = (await dfJson(live.image))[0];
    assert.ok(expected.bavail * expected.bsize <= first - (16 << 20), 'df sees the 16 MiB written');
    await waitFor('Prometheus to store the new usage', async () => Number((await promQuery(q))[0]?.value[1]) === expected.bavail * expected.bsize, 30000, 250);
  });

  it('the shipped alerting rules load into Prometheus and evaluate without errors', async () => {
    const r = await get(`http://127.0.0.1:${promPort}/api/v1/rules`);
    const groups = (JSON.parse(r.body) as { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } }).data.groups;
    const rules = groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 5);
    await waitFor('every rule evaluated', async () => {
      const now = (JSON.parse((await get(`http://127.0.0.1:${promPort}/api/v1/rules`)).body) as typeof r extends never ? never : { data: { groups: { rules: { health: string }[] }[] } }).data.groups.flatMap((g) => g.rules);
      return now.every((x) => x.health === 'ok');
    }, 15000, 500);
    // The corrupt guest has been down since the start: GuestUnreadable is pending (it holds 10 minutes).
    const alerts = JSON.parse((await get(`http://127.0.0.1:${promPort}/api/v1/alerts`)).body) as { data: { alerts: { labels: Record<string, string>; state: string }[] } };
    assert.ok(alerts.data.alerts.some((a) => a.labels.alertname === 'GuestUnreadable' && a.labels.guest === 'corrupt.qcow2' && a.state === 'pending'), JSON.stringify(alerts.data.alerts));
  });

  it('every query of the shipped Grafana dashboard is valid PromQL that finds series', async () => {
    const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'guestlens-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    assert.ok(dashboard.panels.length >= 6);
    for (const p of dashboard.panels) {
      for (const t of p.targets) {
        const expr = t.expr.replace(/\$guest/g, '.*').replace(/\$__rate_interval/g, '1m');
        const result = await promQuery(expr);
        if (p.title !== 'Read errors by reason') assert.ok(result.length > 0, `${p.title}: ${expr} finds nothing`);
      }
    }
  });
});

describe('guestlens exporter: libvirt discovery (test:/// driver)', function () {
  this.timeout(120000);
  let exporter: Tracked | undefined;

  after(async () => {
    if (exporter) await stop(exporter, 10000);
  });

  it('watches the domains virsh -r lists, follows a rename by UUID and drops a removed domain', async function () {
    if (!(await haveTool('virsh'))) {
      console.log('      virsh is not installed (Debian package libvirt-clients): cannot test --libvirt');
      return this.skip();
    }
    const d = await buildDisk('lvx', 'gpt', [{ sizeMiB: 10, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'vmroot'] } }]);
    const image = await toQcow2(d.raw);
    const node = join(scratchDir('exporter-libvirt'), 'node.xml');
    const domain = (name: string, uuid: string) => `<domain type='test'><name>${name}</name><uuid>${uuid}</uuid><memory>1048576</memory><os><type>hvm</type></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${image}'/><target dev='vda'/></disk></devices></domain>`;
    writeFileSync(node, `<node>${domain('app01', 'aaaaaaaa-0000-0000-0000-000000000001')}${domain('app02', 'aaaaaaaa-0000-0000-0000-000000000002')}</node>`);
    const port = await freePort();
    exporter = startTracked(GUESTLENS, ['exporter', '--listen', `127.0.0.1:${port}`, '--libvirt', `test://${node}`, '--interval', '1'], { suite: true });
    const m = async () => {
      try {
        return (await get(`http://127.0.0.1:${port}/metrics`)).body;
      } catch {
        return '';
      }
    };
    await waitFor('both domains', async () => one(await m(), 'guestlens_guest_up', { guest: 'app01' }) === 1 && one(await m(), 'guestlens_guest_up', { guest: 'app02' }) === 1, 60000, 200);
    assert.equal(one(await m(), 'guestlens_filesystem_size_bytes', { guest: 'app01', label: 'vmroot' }), (await dfJson(image))[0].blocks * 1024);
    writeFileSync(node, `<node>${domain('app01-renamed', 'aaaaaaaa-0000-0000-0000-000000000001')}</node>`);
    await waitFor('the rename and the removal', async () => {
      const t = await m();
      return one(t, 'guestlens_guest_up', { guest: 'app01-renamed' }) === 1 && one(t, 'guestlens_guest_up', { guest: 'app01' }) === undefined && one(t, 'guestlens_guest_up', { guest: 'app02' }) === undefined;
    }, 20000, 200);
    assert.equal(one(await m(), 'guestlens_guests', {}), 1);
  });
});

describe('guestlens df --prometheus, check, and the shipped deploy files', function () {
  this.timeout(120000);
  let image: string;
  let full: string;

  before(async () => {
    const a = await buildDisk('chk', 'gpt', [
      { sizeMiB: 16, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'root', '-m', '0'], files: { 'etc/fstab': 'LABEL=root / ext4 defaults 0 1\nLABEL=data /srv ext4 defaults 0 2\n', 'etc/os-release': 'ID=debian\n' } } },
      { sizeMiB: 16, content: { mkfs: 'mkfs.ext4', args: ['-q', '-F', '-L', 'data', '-m', '0'], files: { 'fill.bin': Buffer.alloc(11 << 20, 3) } } },
    ]);
    image = await toQcow2(a.raw);
    full = a.raw;
  });

  it('df --prometheus prints what the exporter serves, passes promtool, and equals df --json', async () => {
    const r = await guestlens(['df', '--prometheus', image]);
    assert.equal(r.exitCode, 0, r.stderr);
    const lint = await promtool(['check', 'metrics'], r.stdout);
    assert.equal(lint.exitCode, 0, lint.out);
    const guest = image.split('/').pop()!;
    for (const e of await dfJson(image)) {
      assert.equal(one(r.stdout, 'guestlens_filesystem_size_bytes', { guest, device: e.device }), e.blocks * e.bsize);
      assert.equal(one(r.stdout, 'guestlens_filesystem_free_bytes', { guest, device: e.device }), e.bfree * e.bsize);
      assert.equal(one(r.stdout, 'guestlens_filesystem_files', { guest, device: e.device }), e.files);
    }
    assert.equal(one(r.stdout, 'guestlens_filesystem_size_bytes', { guest, label: 'data' }) !== undefined, true);
    assert.equal(samples(r.stdout, 'guestlens_filesystem_size_bytes').find((s) => s.labels.label === 'data')?.labels.mountpoint, '/srv');
    assert.doesNotMatch(r.stdout, /Cached/, 'values read now say nothing of a cache');
  });

  it('df --prometheus: an unreadable guest among readable ones is down in the metrics, exit 3', async () => {
    const fifo = join(scratchDir('fifo'), 'p.img');
    await sh('mkfifo', [fifo]);
    const r = await guestlens(['df', '--prometheus', image, fifo]);
    assert.equal(r.exitCode, 3, r.stderr);
    assert.equal(one(r.stdout, 'guestlens_guest_up', { guest: 'p.img' }), 0);
    assert.match(r.stderr, /p\.img: .*is not a regular file or block device/);
    const usage = await guestlens(['df', '--prometheus', '--csv', image]);
    assert.equal(usage.exitCode, 2);
  });

  it('check: OK, WARNING and CRITICAL by percent used or free size, with perfdata', async () => {
    const ok = await guestlens(['check', image, '--warning', '98%', '--critical', '99%']);
    assert.equal(ok.exitCode, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^GUESTLENS OK - chk\.qcow2: \/ \d+% used, \/srv \d+% used \| '\/'=\d+B;\d+;\d+;0;\d+ '\/srv'=\d+B;\d+;\d+;0;\d+\n$/);
    const warn = await guestlens(['check', image, '-w', '80%', '--critical', '95%']);
    assert.equal(warn.exitCode, 1, warn.stdout);
    assert.match(warn.stdout, /^GUESTLENS WARNING - .*\/srv \d+% used \(WARNING\)/);
    const crit = await guestlens(['check', image, '-w', '50%', '--critical', '70%', '-p', '/srv']);
    assert.equal(crit.exitCode, 2, crit.stdout);
    assert.match(crit.stdout, /^GUESTLENS CRITICAL - chk\.qcow2: \/srv \d+% used \(CRITICAL\) \| '\/srv'=/);
    assert.doesNotMatch(crit.stdout, /'\/'=/, '-p selects the mount point');
    // Sizes are free space left: the data disk has about 2 MiB free.
    const bySize = await guestlens(['check', image, '-w', '8M', '--critical', '4M', '-p', '/srv']);
    assert.equal(bySize.exitCode, 2, bySize.stdout);
    const bySizeOk = await guestlens(['check', image, '-w', '1M', '--critical', '512K', '-p', '/srv']);
    assert.equal(bySizeOk.exitCode, 0, bySizeOk.stdout);
    // The perfdata thresholds are in the value's unit: used bytes at which WARNING and CRITICAL begin.
    const e = (await dfJson(image)).find((x) => x.device === '/dev/sda2')!;
    const total = e.blocks * e.bsize;
    const perf = /'\/srv'=(\d+)B;(\d+);(\d+);0;(\d+)/.exec(crit.stdout)!;
    assert.equal(Number(perf[1]), (e.blocks - e.bfree) * e.bsize);
    assert.equal(Number(perf[2]), Math.round(total * 0.5));
    assert.equal(Number(perf[3]), Math.round(total * 0.7));
    assert.equal(Number(perf[4]), total);
  });

  it('check --inodes counts inodes; perfdata has no unit', async () => {
    const r = await guestlens(['check', image, '--inodes', '-w', '90%', '--critical', '95%']);
    assert.equal(r.exitCode, 0, r.stdout);
    const e = (await dfJson(image)).find((x) => x.device === '/dev/sda1')!;
    assert.ok(r.stdout.includes(`'/'=${e.files - e.ffree};`), r.stdout);
  });

  it('check: UNKNOWN (3) for an unreadable guest, a missing mount point and bad thresholds', async () => {
    const missing = await guestlens(['check', join(scratchDir('none'), 'nosuch.qcow2')]);
    assert.equal(missing.exitCode, 3);
    assert.match(missing.stdout, /^GUESTLENS UNKNOWN - .*nosuch\.qcow2/);
    const mp = await guestlens(['check', image, '-p', '/home']);
    assert.equal(mp.exitCode, 3);
    assert.match(mp.stdout, /no filesystem mounted at \/home \(it has \/, \/srv\)/);
    const bad = await guestlens(['check', image, '-w', '120%']);
    assert.equal(bad.exitCode, 3);
    assert.match(bad.stdout, /--warning 120%: a percentage is at most 100%/);
    const mixed = await guestlens(['check', image, '-w', '80%', '--critical', '1G']);
    assert.equal(mixed.exitCode, 3);
    const raw = await guestlens(['check', full, '-w', '1%', '--critical', '99%']);
    assert.equal(raw.exitCode, 1, 'a raw disk reads the same as its qcow2');
  });

  it('the textfile timer\'s command publishes atomically, and nothing when the guest cannot be read', async () => {
    const unit = readFileSync(join(DEPLOY, 'systemd', 'guestlens-textfile.service'), 'utf8');
    const exec = /^ExecStart=\/bin\/sh -c '(.*)'$/m.exec(unit)?.[1];
    assert.ok(exec, 'ExecStart is /bin/sh -c \'...\'');
    const textDir = scratchDir('textfile');
    const script = exec.replace(/\$\$/g, '$').replace('/usr/local/bin/guestlens', GUESTLENS);
    const run = (images: string) => execa('/bin/sh', ['-c', script.replace('/var/lib/libvirt/images/*.qcow2', images)], { reject: false, env: { TEXTFILE_DIR: textDir } });
    const r = await run(image);
    assert.equal(r.exitCode, 0, String(r.stderr));
    assert.deepEqual(readdirSync(textDir), ['guestlens.prom']);
    assert.equal((await promtool(['check', 'metrics'], readFileSync(join(textDir, 'guestlens.prom'), 'utf8'))).exitCode, 0);
    rmSync(join(textDir, 'guestlens.prom'));
    const failed = await run(join(textDir, 'nosuch.qcow2'));
    assert.equal(failed.exitCode, 1);
    assert.deepEqual(readdirSync(textDir), [], 'no file published, no temporary file left');
  });

  it('the systemd units pass systemd-analyze verify', async function () {
    if (!(await haveTool('systemd-analyze'))) {
      console.log('      systemd-analyze is not installed: cannot verify the units');
      return this.skip();
    }
    const dir = scratchDir('units');
    for (const f of readdirSync(join(DEPLOY, 'systemd'))) {
      writeFileSync(join(dir, f), readFileSync(join(DEPLOY, 'systemd', f), 'utf8').replaceAll('/usr/local/bin/guestlens', GUESTLENS));
    }
    const r = await execa('systemd-analyze', ['verify', ...readdirSync(dir).map((f) => join(dir, f))], { reject: false });
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(String(r.stderr), /guestlens/, String(r.stderr));
  });

  it('promtool: the alerting rules are valid and their unit tests pass', async () => {
    const check = await promtool(['check', 'rules', 'guestlens-alerts.yml']);
    assert.equal(check.exitCode, 0, check.out);
    assert.match(check.out, /SUCCESS: 5 rules found/);
    const test = await promtool(['test', 'rules', 'guestlens-alerts.test.yml']);
    assert.equal(test.exitCode, 0, test.out);
  });

  it('the exporter refuses bad options as usage errors (exit 2)', async () => {
    for (const args of [['exporter'], ['exporter', '--image', 'x', '--listen', 'nonsense'], ['exporter', '--image', 'x', '--interval', '0']]) {
      const r = await guestlens(args, { timeoutMs: 20000 });
      assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
    }
  });

  it('VERSION in cli/src/version.ts is cli/package.json\'s version', async () => {
    const { VERSION } = await import('../cli/src/version.ts');
    assert.equal(VERSION, JSON.parse(readFileSync(join(repoRoot, 'cli', 'package.json'), 'utf8')).version);
    assert.ok(existsSync(join(DEPLOY, 'grafana', 'guestlens-dashboard.json')));
  });
});
