/**
 * What clients see of errors: Tidings errors that are safe to show keep their message and get
 * `extensions.code`; anything unexpected is masked and logged once, with its cause, for operators.
 * Every transport and yoga answer with these, so they live with the schema, not a transport.
 */
import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Logger } from 'pino';
import { TidingsError } from '../errors.js';

/** The message clients see for an unexpected error. */
export const MASKED_MESSAGE = 'Unexpected error: the server logged the details.';

/** The JSON body of an HTTP error answer: one error, with its `extensions.code`. */
export function errorsBody(
  message: string,
  code: string,
): { errors: { message: string; extensions: { code: string } }[] } {
  return { errors: [{ message, extensions: { code } }] };
}

/** Finds the error a GraphQLError wraps, through any nesting. */
function rootCause(error: GraphQLError): unknown {
  let current: unknown = error;
  while (current instanceof GraphQLError && current.originalError) current = current.originalError;
  return current;
}

/**
 * Maps one error to what the client may see. GraphQL validation and syntax errors pass unchanged;
 * exposed Tidings errors keep their message with `extensions.code`; the rest are masked.
 */
export function maskError(error: unknown, logger: Logger): GraphQLError {
  if (!(error instanceof GraphQLError)) {
    logger.error({ err: error }, 'unexpected error');
    return new GraphQLError(MASKED_MESSAGE, { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  }
  const cause = rootCause(error);
  if (cause === error || cause instanceof GraphQLError) return error;
  if (cause instanceof TidingsError && cause.expose) {
    return new GraphQLError(cause.message, {
      nodes: error.nodes,
      path: error.path,
      extensions: { ...error.extensions, ...cause.details, code: cause.code },
    });
  }
  logger.error({ err: cause, path: error.path?.join('.') }, 'unexpected error in a resolver');
  return new GraphQLError(MASKED_MESSAGE, {
    nodes: error.nodes,
    path: error.path,
    extensions: { code: cause instanceof TidingsError ? cause.code : 'INTERNAL_SERVER_ERROR' },
  });
}

/** Applies {@link maskError} to every error of a result. */
export function maskResult(result: ExecutionResult, logger: Logger): ExecutionResult {
  if (!result.errors?.length) return result;
  return { ...result, errors: result.errors.map((e) => maskError(e, logger)) };
}

/** A result carrying one error, for failures outside execution (bad cursor, shutdown). */
export function errorResult(error: unknown, logger: Logger): ExecutionResult {
  const wrapped =
    error instanceof GraphQLError
      ? error
      : new GraphQLError(error instanceof Error ? error.message : String(error), {
          originalError: error instanceof Error ? error : undefined,
        });
  return { errors: [maskError(wrapped, logger)] };
}
