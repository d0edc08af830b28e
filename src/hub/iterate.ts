import { HistoryGapError } from '../errors.js';
import { encodeCursor } from '../events/cursor.js';
import type { StoredEvent } from '../events/types.js';
import type { Hub, StreamSpec } from './hub.js';

/** What a stream iterator yields: an event, or the signal that retention removed some. */
export type StreamItem = StoredEvent | HistoryGapError;

/**
 * Opens a hub stream as an async iterator, for callers that pull (embedding code, and the tests'
 * graphql-js reference of a subscription). The stream engine does not use it: it takes pushes
 * directly, and registers its streams where presence and the limits see them.
 * Ending the iteration (`return()`, `break`) closes the stream. A replay that starts in purged
 * history yields a {@link HistoryGapError} (not thrown: the stream goes on) before the events.
 */
export function iterateStream(hub: Hub, spec: StreamSpec): AsyncIterableIterator<StreamItem> {
  const buffered: StreamItem[] = [];
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  const stream = hub.open(spec, {
    deliver(event) {
      buffered.push(event);
      notify();
    },
    gap({ afterSeq, purgedThrough }) {
      buffered.push(new HistoryGapError(encodeCursor(afterSeq), encodeCursor(purgedThrough)));
      notify();
    },
    end(error) {
      ended = true;
      failure = error;
      notify();
    },
  });
  const finish = async (): Promise<IteratorResult<StreamItem>> => {
    ended = true;
    buffered.length = 0;
    stream.close();
    notify();
    return { done: true, value: undefined };
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      for (;;) {
        const event = buffered.shift();
        if (event) return { done: false, value: event };
        if (failure) {
          const err = failure;
          failure = null;
          throw err;
        }
        if (ended) return { done: true, value: undefined };
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    return: finish,
    async throw(err?: unknown) {
      await finish();
      throw err;
    },
  };
}
