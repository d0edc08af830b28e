/**
 * GraphQL over HTTP: the one engine that answers queries and mutations sent to `/graphql` with
 * `GET` or `POST` (subscriptions are streams: `graphql-sse.ts`). It takes a small request shape of
 * its own and returns what to send; the `/graphql` route reads the body and writes the answer.
 *
 * Documents are parsed and validated through the instance's shared document cache (with the depth,
 * alias and nesting limits), executed with graphql-js, and their errors masked. Statuses follow
 * the GraphQL-over-HTTP specification: a request that is not well-formed (invalid JSON, parameters
 * of the wrong type) gets `400`; a well-formed one whose document does not parse or validate, whose
 * operation cannot be determined or whose variables do not coerce gets `200` when answered as
 * `application/json` and `400` as `application/graphql-response+json`; once execution started,
 * `200` whatever the errors. A mutation sent with `GET` gets `405` and runs nothing.
 */
import {
  execute,
  getOperationAST,
  GraphQLError,
  type ExecutionResult,
  type GraphQLSchema,
} from 'graphql';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { TidingsContext } from '../context.js';
import type { DocumentCache } from '../stream/operation.js';
import { errorsBody, maskResult } from '../schema/mask.js';
import { SUBSCRIPTION_REFUSAL } from '../schema/subscription.js';

/** The media types a JSON answer can take, as negotiated from `Accept`. */
export type JsonMediaType = 'application/json' | 'application/graphql-response+json';

/** What the engine needs of one request to `/graphql`. */
export interface GraphQLHttpRequest {
  /** The HTTP method, upper case. */
  method: string;
  /** The query string: the parameters of a `GET`. */
  search: URLSearchParams;
  /** The `Accept` header, if any. */
  accept: string | undefined;
  /** The body of a `POST`, read already (`''` for other methods). */
  body: string;
}

/** What to answer: the body is always JSON. */
export interface GraphQLHttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Answers one request to `/graphql` on behalf of `principal`; rejects only on an unexpected
 * failure (the route answers `500`).
 */
export type HttpExecutor = (
  request: GraphQLHttpRequest,
  principal: Principal,
) => Promise<GraphQLHttpAnswer>;

/** Options of {@link createHttpExecutor}. */
export interface HttpExecutorOptions {
  schema: GraphQLSchema;
  /** Creates the context of one execution of `principal`. */
  createContext: (principal: Principal) => TidingsContext;
  logger: Logger;
  /** The instance's parsed and validated documents, shared with the stream endpoints. */
  documents: DocumentCache;
}

/** The parameters of a GraphQL-over-HTTP request. */
const PARAMETERS = new Set(['query', 'variables', 'operationName', 'extensions']);

/** The request media types of a JSON `POST`: what GraphQL over HTTP names, in any case. */
const JSON_REQUEST_TYPES = new Set([
  'application/json',
  'application/graphql+json',
  'application/graphql-response+json',
]);

/**
 * The media type of a `Content-Type` header, lower-cased and trimmed (only the first of a
 * comma-separated list counts); `''` when absent.
 */
export function mediaTypeOf(contentType: string | undefined): string {
  return (((contentType ?? '').split(',')[0] ?? '').split(';')[0] ?? '').trim().toLowerCase();
}

/**
 * Whether a `Content-Type` is JSON: `application/json` (or `application/graphql+json`,
 * `application/graphql-response+json`), in any case, with parameters or not. A page of another
 * site cannot send one without a preflight.
 */
export function isJsonContentType(contentType: string | undefined): boolean {
  return JSON_REQUEST_TYPES.has(mediaTypeOf(contentType));
}

/**
 * The JSON media type to answer with, from `Accept` (absent means `*\/*`), in any case: the first
 * listed entry that matches `application/json` (preferred on wildcards) or
 * `application/graphql-response+json`; entries with a charset other than UTF-8 are skipped and
 * `q` values ignored. `null` when no entry matches (the answer is then `406`).
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

/** The request parameters, checked. */
interface Params {
  query: string;
  variables: Record<string, unknown> | undefined;
  operationName: string | undefined;
}

/** A request that cannot run, with its status and the error the client sees. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const kindOf = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;

/** A map parameter (`variables`, `extensions`): an object, or absent. */
function mapParam(name: string, value: unknown): Record<string, unknown> | undefined {
  if (value == null) return undefined;
  if (isObject(value)) return value;
  throw new RequestError(
    400,
    `The "${name}" parameter must be an object (or null), but it is ${kindOf(value)}.`,
  );
}

/** Checks the parameters of a request, whichever way they came. */
function checkParams(params: Record<string, unknown>): Params {
  const { query, operationName } = params;
  if (query == null) {
    throw new RequestError(
      400,
      'The request has no "query" parameter: send the GraphQL document in it.',
    );
  }
  if (typeof query !== 'string') {
    throw new RequestError(
      400,
      `The "query" parameter must be a string holding the GraphQL document, but it is ${kindOf(query)}.`,
    );
  }
  if (operationName != null && typeof operationName !== 'string') {
    throw new RequestError(
      400,
      `The "operationName" parameter must be a string (or null), but it is ${kindOf(operationName)}.`,
    );
  }
  mapParam('extensions', params.extensions);
  return {
    query,
    variables: mapParam('variables', params.variables),
    operationName: operationName ?? undefined,
  };
}

/** The parameters of a `POST`: a JSON object with nothing but the four parameters. */
function paramsOfBody(body: string): Params {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new RequestError(
      400,
      `The body is not valid JSON (${err instanceof Error ? err.message : String(err)}): send ` +
        '{"query": "..."} with Content-Type: application/json.',
      {},
      { cause: err },
    );
  }
  if (Array.isArray(parsed)) {
    throw new RequestError(400, 'Batching is not supported: send one operation per request.');
  }
  if (!isObject(parsed)) {
    throw new RequestError(
      400,
      `The body must be a JSON object such as {"query": "..."}, but it is ${kindOf(parsed)}.`,
    );
  }
  for (const key in parsed) {
    if (parsed[key] != null && !PARAMETERS.has(key)) {
      throw new RequestError(
        400,
        `Unexpected parameter "${key}" in the body: send only query, variables, operationName ` +
          'and extensions.',
      );
    }
  }
  return checkParams(parsed);
}

/** A JSON-encoded map parameter of a `GET`. */
function jsonParam(search: URLSearchParams, name: string): unknown {
  const text = search.get(name);
  if (text === null || text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new RequestError(
      400,
      `The "${name}" parameter is not valid JSON (${err instanceof Error ? err.message : String(err)}): ` +
        'URL-encode a JSON object.',
      {},
      { cause: err },
    );
  }
}

/**
 * The parameters of a `GET`, from its query string (other names, such as cache busters, are
 * ignored).
 */
function paramsOfSearch(search: URLSearchParams): Params {
  return checkParams({
    query: search.get('query') ?? undefined,
    operationName: search.get('operationName') || undefined,
    variables: jsonParam(search, 'variables'),
    extensions: jsonParam(search, 'extensions'),
  });
}

/**
 * Gives each error of a document that cannot run the code clients look for: the nesting check
 * sets its own; graphql-js prefixes every error of its parser with "Syntax Error".
 */
function withCodes(errors: readonly GraphQLError[]): readonly GraphQLError[] {
  if (errors.every((e) => e.extensions.code)) return errors;
  return errors.map((e) =>
    e.extensions.code
      ? e
      : new GraphQLError(e.message, {
          nodes: e.nodes,
          source: e.source,
          positions: e.positions,
          originalError: e.originalError,
          extensions: {
            ...e.extensions,
            code: e.message.startsWith('Syntax Error')
              ? 'GRAPHQL_PARSE_FAILED'
              : 'GRAPHQL_VALIDATION_FAILED',
          },
        }),
  );
}

/** Why a document has no operation to run under `name`. */
function unresolved(name: string | undefined): GraphQLError {
  const message =
    name !== undefined
      ? `The document has no operation named "${name}": name one of its operations in operationName.`
      : 'The document has several operations: name the one to run in operationName.';
  return new GraphQLError(message, { extensions: { code: 'OPERATION_RESOLUTION_FAILURE' } });
}

/** Creates the engine of one instance. */
export function createHttpExecutor(options: HttpExecutorOptions): HttpExecutor {
  const { schema, logger, documents } = options;

  function answer(
    status: number,
    mediaType: JsonMediaType,
    body: string,
    headers: Record<string, string> = {},
  ): GraphQLHttpAnswer {
    return { status, body, headers: { 'content-type': `${mediaType}; charset=utf-8`, ...headers } };
  }

  /**
   * A well-formed request that did not start executing: `200` as `application/json`, `400` as
   * `application/graphql-response+json`, and never a `data` entry.
   */
  function requestErrors(
    mediaType: JsonMediaType,
    errors: readonly GraphQLError[],
  ): GraphQLHttpAnswer {
    const status = mediaType === 'application/json' ? 200 : 400;
    return answer(status, mediaType, JSON.stringify({ errors }));
  }

  async function run(
    request: GraphQLHttpRequest,
    principal: Principal,
    mediaType: JsonMediaType,
  ): Promise<GraphQLHttpAnswer> {
    const params =
      request.method === 'GET' ? paramsOfSearch(request.search) : paramsOfBody(request.body);
    const document = documents.get(params.query);
    if (!('kind' in document)) return requestErrors(mediaType, withCodes(document));
    const operation = getOperationAST(document, params.operationName);
    if (!operation) return requestErrors(mediaType, [unresolved(params.operationName)]);
    if (operation.operation === 'mutation' && request.method === 'GET') {
      throw new RequestError(405, 'Mutations cannot be sent with GET: send them with POST.', {
        allow: 'POST',
      });
    }
    if (operation.operation === 'subscription') {
      throw new RequestError(406, SUBSCRIPTION_REFUSAL, { accept: 'text/event-stream' });
    }
    const result: ExecutionResult = await execute({
      schema,
      document,
      variableValues: params.variables,
      operationName: params.operationName,
      contextValue: options.createContext(principal),
    });
    // No `data`: the variables did not coerce, and nothing ran.
    if (!('data' in result)) return requestErrors(mediaType, result.errors ?? []);
    return answer(200, mediaType, JSON.stringify(maskResult(result, logger)));
  }

  return async function executeHttp(request, principal) {
    if (request.method !== 'GET' && request.method !== 'POST') {
      return answer(
        405,
        'application/json',
        JSON.stringify(errorsBody('GraphQL is served with GET and POST only.', 'BAD_REQUEST')),
        { allow: 'GET, POST' },
      );
    }
    const mediaType = negotiateJson(request.accept);
    if (!mediaType) {
      return answer(
        406,
        'application/json',
        JSON.stringify(
          errorsBody(
            'Ask for application/graphql-response+json or application/json in Accept ' +
              '(text/event-stream for a subscription).',
            'BAD_REQUEST',
          ),
        ),
        { accept: 'application/graphql-response+json, application/json, text/event-stream' },
      );
    }
    try {
      return await run(request, principal, mediaType);
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      const body = JSON.stringify(errorsBody(err.message, 'BAD_REQUEST'));
      return answer(err.status, mediaType, body, err.headers);
    }
  };
}
