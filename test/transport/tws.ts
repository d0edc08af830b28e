/**
 * Helpers of the graphql-ws tests: a raw `ws` client that speaks the protocol message by message
 * (to send what a well-behaved client never would, or to stop reading), and the HTTP answer to an
 * upgrade the server refuses.
 */
import WebSocket from 'ws';

/** A message of the server, parsed. */
export interface TWsMessage {
  type: string;
  id?: string;
  payload?: unknown;
}

/** How a socket closed. */
export interface TWsClose {
  code: number;
  reason: string;
}

/** A raw graphql-transport-ws socket; see {@link twsRaw}. */
export interface TWsRaw {
  ws: WebSocket;
  /** Every message received, in order. */
  messages: TWsMessage[];
  /** Resolves once the socket closed. */
  closed: Promise<TWsClose>;
  /** Sends `message` as JSON (or a string as it is). */
  send(message: unknown): void;
  /** Resolves with the first message matching `predicate` (among those received so far too). */
  waitFor(predicate: (m: TWsMessage) => boolean, what: string, ms?: number): Promise<TWsMessage>;
  /** Sends `connection_init` (with `payload`) and resolves once `connection_ack` arrived. */
  init(payload?: Record<string, unknown>): Promise<void>;
}

/**
 * Opens `url` (ws://…) with the subprotocol `graphql-transport-ws` (or `protocols`) and
 * resolves once it is open; rejects when the upgrade is refused. It answers the server's pings
 * as graphql-ws's client does, unless `silent`.
 */
export async function twsRaw(
  url: string,
  options: { protocols?: string[]; headers?: Record<string, string>; silent?: boolean } = {},
): Promise<TWsRaw> {
  const ws = new WebSocket(url, options.protocols ?? ['graphql-transport-ws'], {
    headers: options.headers,
  });
  const messages: TWsMessage[] = [];
  let waiters: (() => void)[] = [];
  const wake = () => {
    const current = waiters;
    waiters = [];
    for (const w of current) w();
  };
  ws.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString('utf8')) as TWsMessage;
    messages.push(message);
    if (message.type === 'ping' && !options.silent) ws.send('{"type":"pong"}');
    wake();
  });
  const closed = new Promise<TWsClose>((resolve) =>
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString('utf8') });
      wake();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)),
    );
  });
  // A reset after the socket opened shows in `closed`.
  ws.on('error', () => undefined);
  const raw: TWsRaw = {
    ws,
    messages,
    closed,
    send(message) {
      ws.send(typeof message === 'string' ? message : JSON.stringify(message));
    },
    async waitFor(predicate, what, ms = 5_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = messages.find(predicate);
        if (found) return found;
        if (ws.readyState === WebSocket.CLOSED) {
          const { code, reason } = await closed;
          throw new Error(`socket closed (${code} ${reason}) before ${what}`);
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    async init(payload) {
      raw.send(
        payload === undefined ? { type: 'connection_init' } : { type: 'connection_init', payload },
      );
      await raw.waitFor((m) => m.type === 'connection_ack', 'connection_ack');
    },
  };
  return raw;
}

/** The HTTP answer to a refused upgrade. */
export interface TRefusal {
  status: number;
  body: { errors?: { message: string; extensions?: { code?: string } }[] } | null;
}

/**
 * Tries to open `url` and resolves with the HTTP answer when the upgrade is refused; rejects
 * when the socket opens.
 */
export function twsRefusal(
  url: string,
  options: { protocols?: string[]; headers?: Record<string, string> } = {},
): Promise<TRefusal> {
  const ws = new WebSocket(url, options.protocols ?? ['graphql-transport-ws'], {
    headers: options.headers,
  });
  return new Promise<TRefusal>((resolve, reject) => {
    ws.once('open', () => {
      ws.close();
      reject(new Error('the socket opened'));
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let body: TRefusal['body'] = null;
        try {
          body = JSON.parse(text) as TRefusal['body'];
        } catch {
          // not JSON: left null
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
  });
}

/** The `ws://` URL of `path` on the server at `httpUrl`. */
export const twsUrl = (httpUrl: string, path = '/graphql') =>
  `${httpUrl.replace(/^http/, 'ws')}${path}`;
