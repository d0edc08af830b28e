/**
 * Embedding: a service runs Tidings in its own process, publishes with `emit` or the fluent
 * builder, and checks in its own tests what it emitted with `tidings/testing`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createTidingsClient } from '../src/client/index.js';
import { createTidings, type Tidings } from '../src/embed.js';
import { ValidationError } from '../src/errors.js';
import { createTestTidings } from '../src/testing.js';

const open: Tidings[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

describe('createTidings', () => {
  it('should publish with the fluent builder, and serve the events to clients over HTTP', async () => {
    const tidings = await createTidings({
      port: 0,
      store: 'sqlite::memory:',
      logLevel: 'silent',
    });
    open.push(tidings);
    expect(tidings.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = createTidingsClient({ url: tidings.url as string });
    const sub = client.subscribe({ inboxes: ['pdfm'], clientId: 'host-7' });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of sub) {
        seen.push(`${e.type}/${e.severity}/${e.clientId}`);
        if (seen.length === 2) break;
      }
    })();
    await new Promise<void>((resolve) => {
      const check = () => (tidings.app.hub.size === 1 ? resolve() : setTimeout(check, 10));
      check();
    });

    const parent = await tidings.emit({ type: 'vm.stop_requested', inbox: 'pdfm' });
    const child = await tidings
      .event('vm.state_changed')
      .inbox('pdfm')
      .toClient('host-7')
      .severity('WARNING')
      .message('VM 42 stopped')
      .body({ vm: 42, state: 'stopped' })
      .resource('vm', '42')
      .parent(parent)
      .correlationId('job-1')
      .publish();
    await reading;
    expect(seen).toEqual(['vm.stop_requested/INFO/null', 'vm.state_changed/WARNING/host-7']);
    expect(child).toMatchObject({
      parentId: parent.id,
      resource: { type: 'vm', id: '42' },
      correlationId: 'job-1',
      body: { vm: 42, state: 'stopped' },
    });
  });

  it('should run without listening, and refuse an invalid event with a clear error', async () => {
    const tidings = await createTidings({
      listen: false,
      store: 'sqlite::memory:',
      logLevel: 'silent',
    });
    open.push(tidings);
    expect(tidings.url).toBeNull();
    const builder = tidings.event('x').severity('LOUD' as never);
    expect(builder.toInput()).toEqual({ type: 'x', severity: 'LOUD' });
    await expect(builder.publish()).rejects.toBeInstanceOf(ValidationError);
    await expect(builder.publish()).rejects.toThrow(/severity/);
  });
});

describe('tidings/testing', () => {
  it('should record what the code under test emitted, with parent links', async () => {
    const tidings = await createTestTidings();
    open.push(tidings);
    // The code under test:
    const job = await tidings.event('job.started').resource('job', 'j1').publish();
    await tidings.event('vm.stopped').resource('vm', '1').parent(job).publish();
    await tidings.event('vm.stopped').resource('vm', '2').parent(job).publish();
    await tidings.emit({ type: 'job.finished', parentId: job.id, severity: 'SUCCESS' });

    expect(tidings.emitted().map((e) => e.type)).toEqual([
      'job.started',
      'vm.stopped',
      'vm.stopped',
      'job.finished',
    ]);
    expect(tidings.emitted({ types: ['vm.*'] }).map((e) => e.resource)).toEqual([
      { type: 'vm', id: '1' },
      { type: 'vm', id: '2' },
    ]);
    expect(tidings.childrenOf(job)).toHaveLength(3);
    expect(tidings.last('job.*')).toMatchObject({ type: 'job.finished', severity: 'SUCCESS' });
    tidings.clear();
    expect(tidings.emitted()).toEqual([]);
  });
});
