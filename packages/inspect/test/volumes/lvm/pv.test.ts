/**
 * PV labels and metadata areas as pvcreate and vgcreate write them, with
 * the tools' own reports as the oracle: the label in each of the four
 * sectors it may be in (pvcreate --labelsector), one, two and no metadata
 * areas (--metadatacopies), pe_start and the metadata area's place and
 * size, and a metadata ring small enough that real updates wrap the text
 * past its end (the copy read must be the newest, seqno and tags as vgs
 * reports them).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readPvLabel } from '../../../src/volumes/lvm/label.ts';
import { readMetadataText } from '../../../src/volumes/lvm/metadataArea.ts';
import { parseConfigText } from '../../../src/volumes/lvm/configText.ts';
import { readVolumeGroup } from '../../../src/volumes/lvm/vgMetadata.ts';
import { probeFilesystem } from '../../../src/index.ts';
import { LvmFixture, lvmUnavailable } from '../../../../../test/support/lvm.ts';
import { guardImages } from '../../../../../test/support/imageGuard.ts';
import { scratchDir } from '../../../../../test/support/scratch.ts';
import { sh } from '../../../../../test/support/run.ts';
import { withRawSource } from '../../../../../test/support/rawSource.ts';

const MiB = 1024 * 1024;

async function pvImage(dir: string, name: string, size = 32 * MiB): Promise<string> {
  const file = join(dir, name);
  await sh('truncate', ['-s', String(size), file]);
  return file;
}

interface PvReport {
  pv_uuid: string;
  pe_start: string;
  pv_mda_count: string;
  pv_mda_size: string;
  vg_seqno?: string;
}

async function pvReport(f: LvmFixture): Promise<PvReport> {
  const out = await f.lvm('pvs', ['--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'pv_uuid,pe_start,pv_mda_count,pv_mda_size', ...f.devices]);
  return (JSON.parse(out) as { report: { pv: PvReport[] }[] }).report[0].pv[0];
}


describe('lvm: PV label and metadata areas (against pvcreate/pvs)', function () {
  this.timeout(180000);
  let dir: string;

  before(async function () {
    const why = await lvmUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    dir = scratchDir('lvm-pv');
  });

  for (const sector of [0, 1, 2, 3]) {
    it(`finds the label in sector ${sector} and reads the PV header as pvs reports it`, async () => {
      const file = await pvImage(dir, `label${sector}.img`);
      const f = await LvmFixture.create(`label${sector}vg`, [{ file, offset: 0, size: 32 * MiB }], { pvcreate: ['--labelsector', String(sector)] });
      let report: PvReport;
      try {
        report = await pvReport(f);
      } finally {
        await f.detach();
      }
      await guardImages([file], () =>
        withRawSource(file, async (s) => {
          const label = await readPvLabel(s);
          assert.ok(label);
          assert.equal(label.sector, sector);
          assert.equal(label.pvUuid, report.pv_uuid);
          assert.equal(label.deviceSize, 32 * MiB);
          assert.equal(label.dataAreas[0].offset, Number(report.pe_start));
          assert.equal(label.metadataAreas.length, Number(report.pv_mda_count));
          assert.equal(label.metadataAreas[0].size, Number(report.pv_mda_size));
          assert.equal((await probeFilesystem(s)).uuid, report.pv_uuid);
        }),
      );
    });
  }

  it('reads both metadata areas of --metadatacopies 2 (the second at the end of the PV) and finds none with --metadatacopies 0', async () => {
    const two = await pvImage(dir, 'two.img');
    const none = await pvImage(dir, 'none.img');
    const f = await LvmFixture.create('copiesvg', [
      { file: two, offset: 0, size: 32 * MiB, pvcreate: ['--metadatacopies', '2'] },
      { file: none, offset: 0, size: 32 * MiB, pvcreate: ['--metadatacopies', '0'] },
    ]);
    try {
      await f.lvcreate(['-n', 'lv', '-L', '4m', 'copiesvg']);
    } finally {
      await f.detach();
    }
    await withRawSource(two, async (s) => {
      const label = (await readPvLabel(s))!;
      assert.equal(label.metadataAreas.length, 2);
      assert.ok(label.metadataAreas[1].offset > 30 * MiB, 'the second area is at the end of the PV');
      const texts = await Promise.all(label.metadataAreas.map((a) => readMetadataText(s, a)));
      assert.ok(texts[0] && texts[1]);
      assert.ok(texts[0].text.equals(texts[1].text), 'both areas hold the same text');
      const vg = readVolumeGroup(parseConfigText(texts[0].text.toString('latin1')), 'test');
      assert.equal(vg.name, 'copiesvg');
      assert.equal(vg.pvs.size, 2);
    });
    await withRawSource(none, async (s) => assert.deepEqual((await readPvLabel(s))!.metadataAreas, []));
  });

  it('finds no copy in an area LVM was told to ignore (pvchange --metadataignore y)', async () => {
    const a = await pvImage(dir, 'kept.img');
    const b = await pvImage(dir, 'ignored.img');
    const f = await LvmFixture.create('ignorevg', [
      { file: a, offset: 0, size: 32 * MiB },
      { file: b, offset: 0, size: 32 * MiB },
    ]);
    try {
      await f.lvm('pvchange', ['-y', '--metadataignore', 'y', f.devices[1]]);
    } finally {
      await f.detach();
    }
    await withRawSource(b, async (s) => {
      const label = (await readPvLabel(s))!;
      assert.equal(label.metadataAreas.length, 1);
      assert.equal(await readMetadataText(s, label.metadataAreas[0]), undefined);
    });
    await withRawSource(a, async (s) => assert.ok(await readMetadataText(s, (await readPvLabel(s))!.metadataAreas[0])));
  });

  it('reads the newest copy of a ring that wrapped past the end of its area, as vgs reports it', async () => {
    const file = await pvImage(dir, 'wrap.img');
    // A 40 KiB area: a few dozen updates of a VG with a few LVs go round the ring.
    const f = await LvmFixture.create('wrapvg', [{ file, offset: 0, size: 32 * MiB }], { pvcreate: ['--metadatasize', '40k', '--dataalignment', '4k'] });
    let wrapped = false;
    let report: { vg_seqno: string; vg_tags: string };
    try {
      for (let i = 0; i < 4; i++) await f.lvcreate(['-n', `lv${i}`, '-L', '4m', 'wrapvg']);
      for (let i = 0; i < 80 && !wrapped; i++) {
        await f.lvm('vgchange', ['--addtag', `tag${i}`, 'wrapvg']);
        wrapped = await withRawSource(file, async (s) => (await readMetadataText(s, (await readPvLabel(s))!.metadataAreas[0]))!.wrapped);
      }
      const out = await f.lvm('vgs', ['--reportformat', 'json', '-o', 'vg_seqno,vg_tags', 'wrapvg']);
      report = (JSON.parse(out) as { report: { vg: { vg_seqno: string; vg_tags: string }[] }[] }).report[0].vg[0];
    } finally {
      await f.detach();
    }
    assert.ok(wrapped, 'the metadata text wrapped within 80 updates');
    await guardImages([file], () =>
      withRawSource(file, async (s) => {
        const label = (await readPvLabel(s))!;
        assert.ok(label.metadataAreas[0].size <= 64 * 1024);
        const copy = (await readMetadataText(s, label.metadataAreas[0]))!;
        assert.ok(copy.wrapped);
        const vg = readVolumeGroup(parseConfigText(copy.text.toString('latin1')), 'test');
        assert.equal(vg.seqno, Number(report.vg_seqno));
        assert.deepEqual([...vg.lvs.keys()].sort(), ['lv0', 'lv1', 'lv2', 'lv3']);
        const tags = parseConfigText(copy.text.toString('latin1')).children.get('wrapvg');
        assert.ok(tags?.kind === 'section');
        const list = tags.children.get('tags');
        assert.ok(list?.kind === 'value' && list.value.kind === 'array');
        assert.deepEqual(list.value.items.map((i) => (i.kind === 'string' ? i.value : '')).sort(), report.vg_tags.split(',').sort());
      }),
    );
  });
});
