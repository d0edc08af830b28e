/**
 * Benchmark server process: the ceiling. A plain `node:http` server with no GraphQL:
 *
 * - `GET /stream?inbox=<name>` opens an event stream (the headers Tidings sends) and registers the
 *   response in the set of its inbox (no `inbox`: every inbox);
 * - `POST /publish` with a JSON body `{ type, inbox, body }` builds ONE preformatted frame,
 *   `event: next\ndata: {"data":{"eventStream":<event>}}\n\n`, as a Buffer, writes it to every
 *   open response of that inbox in a loop, then answers 200;
 * - a WebSocket at `/stream` speaking just enough graphql-transport-ws (`connection_init` gets
 *   `connection_ack`, `subscribe` with `payload.inbox` registers the socket) gets the same event
 *   as ONE preformatted `{"id":"1","type":"next","payload":...}` message, sent to every socket of
 *   the inbox in the same loop.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { listenLocal, runChild } from './child.js';

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
  connection: 'keep-alive',
};

/** Open responses by inbox; the key `''` holds the streams that read every inbox. */
const streams = new Map<string, Set<ServerResponse>>();
/** Open graphql-ws sockets by inbox, likewise. */
const sockets = new Map<string, Set<WebSocket>>();
let seq = 0;

function openStream(req: IncomingMessage, res: ServerResponse, url: URL): void {
  const inbox = url.searchParams.get('inbox') ?? '';
  let set = streams.get(inbox);
  if (!set) streams.set(inbox, (set = new Set()));
  const members = set;
  req.socket.setNoDelay(true);
  res.writeHead(200, SSE_HEADERS);
  res.write('retry: 2000\n\n');
  members.add(res);
  res.on('close', () => members.delete(res));
}

function publish(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let input: { type?: unknown; inbox?: unknown; body?: unknown };
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof input;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad JSON"}');
      return;
    }
    const inbox = typeof input.inbox === 'string' ? input.inbox : 'global';
    seq += 1;
    const cursor = seq.toString(36).padStart(12, '0');
    const event = {
      cursor,
      type: String(input.type),
      inbox,
      body: input.body ?? null,
      timestamp: new Date().toISOString(),
    };
    const result = `{"data":{"eventStream":${JSON.stringify(event)}}}`;
    const frame = Buffer.from(`event: next\ndata: ${result}\n\n`);
    const message = Buffer.from(`{"id":"1","type":"next","payload":${result}}`);
    for (const key of [inbox, '']) {
      const set = streams.get(key);
      if (set) for (const stream of set) stream.write(frame);
      const wsSet = sockets.get(key);
      if (wsSet) for (const ws of wsSet) ws.send(message, { binary: false });
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(`{"cursor":"${cursor}"}`);
  });
}

runChild('raw', async () => {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/stream') openStream(req, res, url);
    else if (req.method === 'POST' && url.pathname === '/publish') publish(req, res);
    else res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data: Buffer) => {
        const msg = JSON.parse(data.toString('utf8')) as {
          type: string;
          payload?: { inbox?: string };
        };
        if (msg.type === 'connection_init') ws.send('{"type":"connection_ack"}');
        if (msg.type !== 'subscribe') return;
        const inbox = msg.payload?.inbox ?? '';
        let set = sockets.get(inbox);
        if (!set) sockets.set(inbox, (set = new Set()));
        const members = set;
        members.add(ws);
        ws.on('close', () => members.delete(ws));
      });
    }),
  );
  return listenLocal(server);
});
