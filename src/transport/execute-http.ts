/**
 * The fast path of GraphQL over HTTP: a `POST /graphql` with a JSON body whose answer can be JSON
 * runs here, without graphql-yoga's request pipeline: parse and validate through a document cache,
 * execute with graphql-js, mask errors, and answer with the status and content type yoga would
 * have given (the listener has set the CORS headers). Whatever this path does not answer itself
 * (malformed JSON, unexpected parameters, documents that do not parse or validate, an operation
 * that cannot be resolved, variables that do not coerce) it hands back, body already read, so
 * yoga answers it exactly as before: error cases keep yoga's wording and status by construction,
 * and only the common case is reimplemented.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  execute,
  getOperationAST,
  GraphQLError,
  type ExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { TidingsContext } from '../context.js';
import { maskResult } from './errors.js';
import { createDocumentCache, type DocumentCache } from '../stream/operation.js';

/** The media types a JSON answer can take, as negotiated from `Accept`. */
export type JsonMediaType = 'application/json' | 'application/graphql-response+json';

/** Options of {@link createHttpExecutor}. */
export interface HttpExecutorOptions {
  schema: GraphQLSchema;
  /** Creates the context of one execution of `principal`. */
  createContext: (principal: Principal) => TidingsContext;
  logger: Logger;
  /** Parsed and validated documents; by default a cache of its own. */
  documents?: DocumentCache;
}

/**
 * Answers one `POST /graphql` whose body has been read. Resolves `true` once it answered, `false`
 * when the request must go to yoga instead (with the same body).
 */
export type HttpExecutor = (
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  mediaType: JsonMediaType,
  principal: Principal,
) => Promise<boolean>;

/** The parameters of a GraphQL-over-HTTP request body. */
const PARAMETERS = new Set(['query', 'variables', 'operationName', 'extensions']);

/** Queries longer than this are not kept in the fast path's document cache. */
const MAX_CACHED_QUERY_LENGTH = 16 * 1024;

/** The request media types of a JSON `POST`: what yoga parses as JSON, and the streams' own. */
const JSON_REQUEST_TYPES = new Set([
  'application/json',
  'application/graphql+json',
  'application/graphql-response+json',
]);

/**
 * The media type of a `Content-Type` header, lower-cased and trimmed (only the first of a
 * comma-separated list counts, like yoga); `''` when absent.
 */
export function mediaTypeOf(contentType: string | undefined): string {
  return (((contentType ?? '').split(',')[0] ?? '').split(';')[0] ?? '').trim().toLowerCase();
}

/**
 * Whether a request is a JSON `POST`: `Content-Type: application/json` (or
 * `application/graphql+json`, `application/graphql-response+json`), in any case, with parameters
 * or not. A page of another site cannot send one without a preflight.
 */
export function isJsonPost(req: IncomingMessage): boolean {
  return req.method === 'POST' && JSON_REQUEST_TYPES.has(mediaTypeOf(req.headers['content-type']));
}

/**
 * The JSON media type yoga would answer a query or mutation with, from `Accept` (absent means
 * `*\/*`): the first listed entry that matches `application/json` (preferred on wildcards) or
 * `application/graphql-response+json`; entries with a charset other than UTF-8 and `q` values are
 * ignored, as yoga does. `null` when no entry matches: yoga decides (multipart, or 406).
 */
export function negotiateJson(accept: string | undefined): JsonMediaType | null {
  const entries = (accept || '*/*').replace(/\s/g, '').toLowerCase().split(',');
  for (const entry of entries) {
    const [type = '', ...params] = entry.split(';');
    const charset = params.find((p) => p.includes('charset=')) ?? 'charset=utf-8';
    if (charset !== 'charset=utf-8') continue;
    const [pre, suf] = type.split('/');
    if (pre !== '*' && pre !== 'application') continue;
    if (suf === '*' || suf === 'json') return 'application/json';
    if (suf === 'graphql-response+json') return 'application/graphql-response+json';
  }
  return null;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** An error as yoga serialises it: without its internal `http` and `unexpected` extensions. */
function formatError(error: GraphQLError): GraphQLFormattedError {
  const formatted = error.toJSON();
  const extensions = formatted.extensions as Record<string, unknown> | undefined;
  if (!extensions || !('http' in extensions || 'unexpected' in extensions)) return formatted;
  const { http: _http, unexpected: _unexpected, ...rest } = extensions;
  const { extensions: _all, ...withoutExtensions } = formatted;
  return Object.keys(rest).length ? { ...withoutExtensions, extensions: rest } : withoutExtensions;
}

function serialise(result: ExecutionResult): string {
  if (!result.errors?.length) return JSON.stringify(result);
  return JSON.stringify({ ...result, errors: result.errors.map(formatError) });
}

/** Creates the fast path of one instance. */
export function createHttpExecutor(options: HttpExecutorOptions): HttpExecutor {
  const { schema, logger } = options;
  const documents =
    options.documents ?? createDocumentCache(schema, { maxCachedLength: MAX_CACHED_QUERY_LENGTH });

  function send(
    res: ServerResponse,
    status: number,
    mediaType: JsonMediaType,
    text: string,
    extra: Record<string, string> = {},
  ): void {
    res.writeHead(status, {
      'content-type': `${mediaType}; charset=utf-8`,
      'content-length': String(Buffer.byteLength(text)),
      ...extra,
    });
    res.end(text);
  }

  return async function executeHttp(req, res, body, mediaType, principal) {
    let params: unknown;
    try {
      params = JSON.parse(body.toString('utf8'));
    } catch {
      return false;
    }
    if (!isObject(params)) return false;
    for (const key in params) {
      if (params[key] != null && !PARAMETERS.has(key)) return false;
    }
    const { query, variables, operationName, extensions } = params;
    if (typeof query !== 'string') return false;
    if (variables != null && !isObject(variables)) return false;
    if (extensions != null && !isObject(extensions)) return false;
    if (operationName != null && typeof operationName !== 'string') return false;

    const document = documents.get(query);
    if (!('kind' in document)) return false;
    const operation = getOperationAST(document, operationName ?? undefined);
    if (!operation) return false;
    if (operation.operation === 'subscription') {
      const refusal: ExecutionResult = {
        errors: [
          new GraphQLError(
            'Subscriptions are streamed: send this request with Accept: text/event-stream ' +
              '(or to /graphql/stream with a graphql-sse client).',
            { extensions: { code: 'BAD_REQUEST' } },
          ),
        ],
      };
      send(res, 406, mediaType, serialise(refusal), { accept: 'text/event-stream' });
      return true;
    }

    const result = await execute({
      schema,
      document,
      variableValues: variables ?? undefined,
      operationName: operationName ?? undefined,
      contextValue: options.createContext(principal),
    });
    // No `data`: the request failed before execution started (variables that do not coerce).
    // Nothing ran; yoga gives those a status of its own, so let it answer.
    if (!('data' in result)) return false;
    // With `data`, GraphQL over HTTP answers 200 whatever the errors, for both media types.
    send(res, 200, mediaType, serialise(maskResult(result, logger)));
    return true;
  };
}
