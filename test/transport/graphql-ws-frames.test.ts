/**
 * The WebSocket frames graphql-ws's `next` messages are written as without ws's `Sender`: a real
 * `ws` client must read them as the very text messages, whatever header form their length takes
 * (RFC 6455 §5.2), in order with the messages ws writes itself, and backpressure must see them.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket as NetSocket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { adaptWebSocket, textFrameStart } from '../../src/transport/graphql-ws-node.js';
import type { WsSocket } from '../../src/transport/graphql-ws.js';
import { waitFor } from './helpers.js';

/** A server socket (adapted) and the real client at the other end. */
interface TPair {
  server: WsSocket;
  client: WebSocket;
  /** Every message the client received: its text, and whether it came as binary. */
  received: { text: string; binary: boolean }[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** Opens one WebSocket between a `ws` server (noServer, as Tidings runs it) and a `ws` client. */
async function tpair(perMessageDeflate: boolean): Promise<TPair> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate });
  const httpServer = http.createServer();
  const adapted = new Promise<WsSocket>((resolve) => {
    httpServer.on('upgrade', (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, (ws) =>
        resolve(adaptWebSocket(ws, socket as NetSocket)),
      );
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as AddressInfo;
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate });
  const received: TPair['received'] = [];
  client.on('message', (data: Buffer, binary) => received.push({ text: data.toString(), binary }));
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  const server = await adapted;
  cleanups.push(async () => {
    client.terminate();
    server.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
  });
  return { server, client, received };
}

const PREFIX = Buffer.from('{"id":"op-1","type":"next","payload":');

/** A body that makes a message of exactly `total` bytes after {@link PREFIX}. */
const tbody = (total: number, fill: string) =>
  Buffer.from(`"${fill.repeat(total - PREFIX.length - 3)}"}`);

/** Message lengths on both sides of each header form's bound. */
const LENGTHS = [125, 126, 127, 65_535, 65_536, 65_537];

describe('graphql-ws next frames', () => {
  it('should start a frame with the 2-, 4- or 10-byte header its length needs', () => {
    const prefix = Buffer.from('ab');
    expect([...textFrameStart(125, prefix)]).toEqual([0x81, 125, 0x61, 0x62]);
    expect([...textFrameStart(126, prefix)]).toEqual([0x81, 126, 0, 126, 0x61, 0x62]);
    expect([...textFrameStart(65_535, prefix)]).toEqual([0x81, 126, 0xff, 0xff, 0x61, 0x62]);
    expect([...textFrameStart(65_536, prefix)]).toEqual([
      0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0, 0x61, 0x62,
    ]);
    expect([...textFrameStart(2 ** 32 + 5, prefix)]).toEqual([
      0x81, 127, 0, 0, 0, 1, 0, 0, 0, 5, 0x61, 0x62,
    ]);
  });

  for (const deflate of [false, true]) {
    it(`should deliver messages of ${LENGTHS.join(', ')} bytes as that text, in order with ws's own, ${deflate ? 'through ws.send when permessage-deflate is on' : 'framed by the server'}`, async () => {
      const { server, received } = await tpair(deflate);
      const send = server.prefixed(PREFIX);
      const expected: string[] = [];
      LENGTHS.forEach((total, i) => {
        const body = tbody(total, String.fromCharCode(0x61 + i));
        const copy = Buffer.from(body);
        send(body);
        // Twice: the second reuses the cached frame start.
        send(body);
        server.send(`{"type":"ping","n":${i}}`);
        // The body is shared with other sockets: it must come back untouched.
        expect(body.equals(copy)).toBe(true);
        const text = Buffer.concat([PREFIX, body]).toString();
        expect(Buffer.byteLength(text)).toBe(total);
        expected.push(text, text, `{"type":"ping","n":${i}}`);
      });
      await waitFor(() => received.length >= expected.length, 'every message');
      expect(received.map((m) => m.text)).toEqual(expected);
      expect(received.every((m) => !m.binary)).toBe(true);
      expect(expected.map((t) => JSON.parse(t) as unknown)).toHaveLength(expected.length);
    });
  }

  it('should count unsent frames as queued bytes, report full, and resolve drained once the client reads', async () => {
    const { server, client, received } = await tpair(false);
    const send = server.prefixed(PREFIX);
    const body = tbody(65_536, 'x');
    client.pause();
    // Until the kernel's buffers are full too, and bytes still wait in the process once the
    // frames held for the tick were written.
    let sent = 0;
    while (sent < 10_000) {
      send(body);
      sent++;
      await new Promise((resolve) => setImmediate(resolve));
      if (server.queuedBytes() > 0) break;
    }
    expect(server.queuedBytes()).toBeGreaterThan(0);
    expect(server.full()).toBe(true);
    const drained = server.drained();
    expect(drained).not.toBeNull();
    client.resume();
    await drained;
    expect(server.full()).toBe(false);
    await waitFor(() => received.length === sent, 'every queued message');
    expect(received.every((m) => m.text.length === 65_536)).toBe(true);
  });

  it('should send the frames written in one tick together, in their order', async () => {
    const { server, received } = await tpair(false);
    const send = server.prefixed(PREFIX);
    const expected: string[] = [];
    for (let i = 0; i < 20; i++) {
      const body = tbody(300, String.fromCharCode(0x61 + i));
      send(body);
      expected.push(Buffer.concat([PREFIX, body]).toString());
    }
    server.send('{"type":"complete","id":"op-1"}');
    expected.push('{"type":"complete","id":"op-1"}');
    // Held in the process until the tick ends, then written at once.
    expect(server.queuedBytes()).toBeGreaterThan(20 * 300);
    await waitFor(() => received.length === expected.length, 'every message');
    expect(received.map((m) => m.text)).toEqual(expected);
  });

  it('should write nothing once the closing handshake started', async () => {
    const { server, client, received } = await tpair(false);
    const send = server.prefixed(PREFIX);
    send(tbody(200, 'a'));
    server.close(1000, 'bye');
    send(tbody(200, 'b'));
    const code = await new Promise<number>((resolve) => client.once('close', resolve));
    expect(code).toBe(1000);
    expect(received.map((m) => m.text.at(-3))).toEqual(['a']);
  });
});
