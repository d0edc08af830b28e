/**
 * graphql-yoga never runs a subscription: every stream goes through the graphql-sse handler,
 * which registers it where presence lists it and the limits count it. A subscription that reaches
 * yoga (`GET /graphql` without `Accept: text/event-stream`, or a `POST` asking for
 * `multipart/mixed`) is refused before its `subscribe` resolver runs, so it leaves nothing behind.
 */
import { GraphQLError } from 'graphql';
import { isAsyncIterable, processRegularResult, type Plugin } from 'graphql-yoga';
import { SUBSCRIPTION_REFUSAL } from '../schema/subscription.js';

export { SUBSCRIPTION_REFUSAL };

/**
 * The yoga plugin that refuses subscriptions: `406` with `Accept: text/event-stream`, and one error
 * whose `extensions.code` is `BAD_REQUEST`, like the JSON fast path answers them. The error is
 * JSON whatever the request accepts: yoga writes single results only as JSON (or SSE), and would
 * answer a bare `multipart/mixed` with an empty `406`.
 */
export function refuseSubscriptions(): Plugin {
  return {
    onSubscribe({ setResultAndStopExecution }) {
      setResultAndStopExecution({
        errors: [
          new GraphQLError(SUBSCRIPTION_REFUSAL, {
            extensions: {
              code: 'BAD_REQUEST',
              http: { status: 406, headers: { accept: 'text/event-stream' } },
            },
          }),
        ],
      });
    },
    onResultProcess({ result, resultProcessor, setResultProcessor }) {
      if (resultProcessor || Array.isArray(result) || isAsyncIterable(result)) return;
      if (result.errors?.some((e) => e.message === SUBSCRIPTION_REFUSAL)) {
        setResultProcessor(processRegularResult, 'application/json');
      }
    },
  };
}
