/**
 * Preparing a GraphQL request that arrived on an event stream: parse and validate (cached per
 * document), then either run it once (queries, mutations) or turn an `eventStream` subscription
 * into a hub stream whose events are executed against the operation's selection.
 */
import {
  execute,
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  Kind,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import type { Principal } from '../auth/principal.js';
import type { TidingsContext } from '../context.js';
import type { StoredEvent } from '../events/types.js';
import { canonicalJson } from '../events/validate.js';
import type { StreamSpec } from '../hub/hub.js';
import { checkNesting } from '../schema/limits.js';
import { authorizeStream, toStreamSpec, type EventStreamArgs } from '../schema/index.js';

/** The GraphQL-over-HTTP request parameters. */
export interface GraphQLParams {
  query: string;
  variables: Record<string, unknown> | null;
  operationName: string | null;
  extensions: Record<string, unknown> | null;
}

/** A request that cannot run; `errors` go to the client as the result. */
export interface InvalidOperation {
  kind: 'invalid';
  errors: readonly GraphQLError[];
}

/**
 * A query or mutation: one result. Also a subscription whose arguments the stream refuses (a bad
 * cursor): like a subscribe resolver that throws, it yields one result with the error, which goes
 * on the stream (`202` in single connection mode) rather than failing the request.
 */
export interface OnceOperation {
  kind: 'once';
  /** Runs it with a fresh context. */
  run(): Promise<ExecutionResult>;
  /** For a subscription whose arguments the stream refuses: the error its one result carries. */
  refusal?: GraphQLError;
}

/** An `eventStream` subscription. */
export interface StreamOperation {
  kind: 'stream';
  /** What the hub should deliver. */
  spec: StreamSpec;
  /**
   * Streams with the same key get the same result for every event: the document, the operation,
   * the variables (less the one that only carries `after`) and the caller's visibility.
   */
  groupKey: string;
  /**
   * Executes the operation's selection for one event, with a fresh context; synchronous unless a
   * resolver is asynchronous (e.g. `parent`, `children`).
   */
  execute(event: StoredEvent): ExecutionResult | Promise<ExecutionResult>;
}

/** What {@link OperationPreparer.prepare} returns. */
export type PreparedOperation = InvalidOperation | OnceOperation | StreamOperation;

/** Options of {@link createOperationPreparer}. */
export interface OperationPreparerOptions {
  schema: GraphQLSchema;
  /** Creates the context of one execution of `principal`. */
  createContext: (principal: Principal) => TidingsContext;
  /** Parsed and validated documents; by default a cache of its own. */
  documents?: DocumentCache;
  /**
   * Parsed and validated documents kept.
   * @default 1000
   */
  cacheSize?: number;
}

/** Prepares operations arriving on the stream endpoints. */
export interface OperationPreparer {
  /**
   * @param method HTTP method; mutations are refused over GET.
   * @param resumeAfter a cursor from `Last-Event-ID`, used when the subscription has no `after`.
   * @param principal the caller, whose permissions a subscription is checked against at once.
   */
  prepare(
    params: GraphQLParams,
    method: string,
    resumeAfter: string | null,
    principal: Principal,
  ): PreparedOperation;
}

const badRequest = (message: string): InvalidOperation => ({
  kind: 'invalid',
  errors: [new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } })],
});

/** Finds the single root field of a subscription, through inline fragments and spreads. */
function rootField(selectionSet: SelectionSetNode, document: DocumentNode): FieldNode | null {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) return selection;
    const nested =
      selection.kind === Kind.INLINE_FRAGMENT
        ? selection.selectionSet
        : document.definitions.find(
            (d): d is FragmentDefinitionNode =>
              d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value,
          )?.selectionSet;
    const found = nested ? rootField(nested, document) : null;
    if (found) return found;
  }
  return null;
}

/** Parsed and validated documents by query text, shared by the requests of one instance. */
export interface DocumentCache {
  /** The document of `query`, parsed and validated; or the errors that make it unusable. */
  get(query: string): DocumentNode | readonly GraphQLError[];
}

/** Options of {@link createDocumentCache}. */
export interface DocumentCacheOptions {
  /**
   * Documents (or their errors) kept; the oldest entry goes first.
   * @default 1000
   */
  cacheSize?: number;
  /**
   * Longest query text kept in the cache: longer ones (typically one-off inline batches) are
   * parsed and validated every time, so they cannot fill memory.
   * @default Infinity
   */
  maxCachedLength?: number;
  /** Validation rules on top of the specified ones (limits such as depth and aliases). */
  rules?: readonly ValidationRule[];
}

/**
 * Creates a cache of parsed and validated documents. Parsing stops at 10,000 tokens; a query that
 * does not parse or validate gets its errors (cached too).
 */
export function createDocumentCache(
  schema: GraphQLSchema,
  options: DocumentCacheOptions = {},
): DocumentCache {
  const cacheSize = options.cacheSize ?? 1000;
  const maxCachedLength = options.maxCachedLength ?? Infinity;
  const rules = [...specifiedRules, ...(options.rules ?? [])];
  const documents = new Map<string, DocumentNode | readonly GraphQLError[]>();
  return {
    get(query) {
      const cached = documents.get(query);
      if (cached) return cached;
      let result: DocumentNode | readonly GraphQLError[];
      try {
        checkNesting(query);
        const document = parse(query, { maxTokens: 10_000 });
        const errors = validate(schema, document, rules);
        result = errors.length ? errors : document;
      } catch (err) {
        result = [err instanceof GraphQLError ? err : new GraphQLError(String(err))];
      }
      if (query.length > maxCachedLength) return result;
      if (documents.size >= cacheSize) documents.delete(documents.keys().next().value as string);
      documents.set(query, result);
      return result;
    },
  };
}

/** Creates the preparer, with its document cache. */
export function createOperationPreparer(options: OperationPreparerOptions): OperationPreparer {
  const { schema } = options;
  const documents =
    options.documents ?? createDocumentCache(schema, { cacheSize: options.cacheSize });
  const documentFor = (query: string) => documents.get(query);

  return {
    prepare(params, method, resumeAfter, principal) {
      const document = documentFor(params.query);
      if (!('kind' in document)) return { kind: 'invalid', errors: document };
      const operation: OperationDefinitionNode | null | undefined = getOperationAST(
        document,
        params.operationName ?? undefined,
      );
      if (!operation) {
        return badRequest(
          params.operationName
            ? `Unknown operation named "${params.operationName}".`
            : 'Could not determine the operation: name it with operationName.',
        );
      }
      if (operation.operation === 'mutation' && method === 'GET') {
        return badRequest('Mutations cannot be sent with GET: use POST.');
      }
      const variableValues = params.variables ?? {};
      const base = {
        schema,
        document,
        variableValues,
        operationName: params.operationName,
      };
      if (operation.operation !== 'subscription') {
        return {
          kind: 'once',
          run: async () => execute({ ...base, contextValue: options.createContext(principal) }),
        };
      }
      const field = rootField(operation.selectionSet, document);
      const fieldDef = field && schema.getSubscriptionType()?.getFields()[field.name.value];
      if (!field || !fieldDef) return badRequest('The subscription has no root field.');
      const coerced = getVariableValues(
        schema,
        operation.variableDefinitions ?? [],
        variableValues,
      );
      if (coerced.errors) return { kind: 'invalid', errors: coerced.errors };
      let spec: StreamSpec;
      const context = options.createContext(principal);
      try {
        const args = getArgumentValues(fieldDef, field, coerced.coerced) as EventStreamArgs;
        authorizeStream(args, context);
        spec = toStreamSpec(args, context.visibility, resumeAfter);
      } catch (err) {
        const error =
          err instanceof GraphQLError
            ? err
            : new GraphQLError(err instanceof Error ? err.message : String(err), {
                nodes: [field],
                originalError: err instanceof Error ? err : undefined,
              });
        return { kind: 'once', run: async () => ({ errors: [error] }), refusal: error };
      }
      // `after` only decides where the replay starts, never what an event renders to, so streams
      // resuming from different cursors still share their results. Variables and visibility are
      // keyed by value, whatever the order of their keys.
      const afterArg = field.arguments?.find((a) => a.name.value === 'after')?.value;
      const shared = { ...variableValues };
      if (afterArg?.kind === Kind.VARIABLE) delete shared[afterArg.name.value];
      const groupKey = JSON.stringify([
        params.query,
        params.operationName,
        canonicalJson(shared),
        canonicalJson(context.visibility),
      ]);
      return {
        kind: 'stream',
        spec,
        groupKey,
        execute: (event) =>
          execute({ ...base, rootValue: event, contextValue: options.createContext(principal) }),
      };
    },
  };
}
