/**
 * Shared execution: streams whose results must be identical for every event — same document,
 * same variables, same visibility — form a group, and the group executes the selection and
 * serialises the result once per event. Streams whose frames are the same bytes (a shared
 * encoding) get the very same Buffer, encoded once per event. Execution stays synchronous when no
 * resolver is asynchronous, so the common case costs no promise per subscriber.
 */
import type { StoredEvent } from '../events/types.js';

/** A value, or a promise of it when a resolver was asynchronous. */
export type MaybePromise<T> = T | Promise<T>;

/** How a group turns an event into a result. */
export interface GroupRenderer {
  /** Executes the group's selection for an event and returns the result as JSON text. */
  render(event: StoredEvent): MaybePromise<string>;
}

/**
 * How one stream wraps a result into its frame (the stream engine's `FrameEncoder`, seen from
 * here): encoders with the same non-null `shareKey` make the same bytes of the same result.
 */
export interface GroupEncoder {
  readonly shareKey: string | null;
  next(payload: string, cursor: string | null): string | Buffer;
}

/** One group of streams sharing their results. */
export interface ResultGroup {
  /** The grouping key: document, variables and visibility. */
  readonly key: string;
  /** Streams in the group. */
  readonly size: number;
  /**
   * The frame for `event`: the result is rendered once per event for the whole group, and
   * encoders sharing a key get the very same Buffer.
   */
  frameFor(event: StoredEvent, encoder: GroupEncoder): MaybePromise<Buffer>;
}

/** The registry of groups of one instance. */
export interface ResultGroups {
  /** Joins the group `key`, creating it with `renderer` if it is new. */
  join(key: string, renderer: () => GroupRenderer): ResultGroup;
  /** Leaves a group; the last stream to leave removes it. */
  leave(group: ResultGroup): void;
  /** Number of groups. */
  readonly size: number;
}

/** How many recent events a group keeps rendered, for streams a few events behind. */
const RECENT = 8;

interface Group extends ResultGroup {
  size: number;
}

const toBuffer = (frame: string | Buffer): Buffer =>
  typeof frame === 'string' ? Buffer.from(frame) : frame;

/** Creates the group registry. */
export function createResultGroups(): ResultGroups {
  const groups = new Map<string, Group>();
  return {
    join(key, makeRenderer) {
      const existing = groups.get(key);
      if (existing) {
        existing.size++;
        return existing;
      }
      const renderer = makeRenderer();
      // Recent payloads, and shared frames by encoding, by sequence; a small ring keeps memory
      // flat.
      const payloads = new Map<number, MaybePromise<string>>();
      const frames = new Map<number, Map<string, MaybePromise<Buffer>>>();
      const remember = <T>(cache: Map<number, T>, seq: number, value: T): T => {
        cache.set(seq, value);
        if (cache.size > RECENT) cache.delete(cache.keys().next().value as number);
        return value;
      };
      const payloadFor = (event: StoredEvent): MaybePromise<string> =>
        payloads.get(event.seq) ?? remember(payloads, event.seq, renderer.render(event));
      const group: Group = {
        key,
        size: 1,
        frameFor(event, encoder) {
          const encode = (payload: string) => toBuffer(encoder.next(payload, event.cursor));
          const shareKey = encoder.shareKey;
          if (shareKey === null) {
            const payload = payloadFor(event);
            return typeof payload === 'string' ? encode(payload) : payload.then(encode);
          }
          const shared = frames.get(event.seq) ?? remember(frames, event.seq, new Map());
          const cached = shared.get(shareKey);
          if (cached) return cached;
          const payload = payloadFor(event);
          const frame = typeof payload === 'string' ? encode(payload) : payload.then(encode);
          shared.set(shareKey, frame);
          return frame;
        },
      };
      groups.set(key, group);
      return group;
    },
    leave(group) {
      const g = groups.get(group.key);
      if (g !== group) return;
      g.size--;
      if (g.size <= 0) groups.delete(g.key);
    },
    get size() {
      return groups.size;
    },
  };
}
