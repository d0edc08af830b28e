/**
 * Cutting people off: ending the open streams of a subject, a client or a token, on every
 * instance. The instance that receives the admin mutation ends its own streams at once and sends
 * the cut-off over the bus, so the other instances end theirs too.
 */
import { StreamEndedError } from '../errors.js';
import type { StreamOwner } from '../stream/types.js';

/** Which streams to end, and why. */
export interface CutOff {
  /** `end`: an admin ended the streams (STREAM_ENDED); `revoke`: their token was revoked. */
  reason: 'end' | 'revoke';
  subject?: string;
  /** The client a stream asks for, or the caller's own client id. */
  clientId?: string;
  /** The token's `jti`. */
  tokenId?: string;
}

/** Whether the stream of `owner` is one `cut` ends. */
export function cutOffMatches(cut: CutOff, owner: StreamOwner): boolean {
  const { principal } = owner;
  if (cut.tokenId !== undefined) return principal.tokenId === cut.tokenId;
  if (cut.subject !== undefined) return principal.subject === cut.subject;
  if (cut.clientId !== undefined) {
    return owner.clientId === cut.clientId || principal.clientId === cut.clientId;
  }
  return false;
}

/** The error the streams of `cut` end with. */
export function cutOffError(cut: CutOff): StreamEndedError {
  return cut.reason === 'revoke'
    ? new StreamEndedError('TOKEN_REVOKED', '[auth] the token of this stream was revoked')
    : new StreamEndedError('STREAM_ENDED', '[auth] an administrator ended this stream');
}

/** Reads a cut-off from a bus message; null when it is not one. */
export function parseCutOff(message: unknown): CutOff | null {
  if (typeof message !== 'object' || message === null) return null;
  const m = message as Record<string, unknown>;
  if (m.reason !== 'end' && m.reason !== 'revoke') return null;
  const field = (name: string) => (typeof m[name] === 'string' ? (m[name] as string) : undefined);
  const cut: CutOff = { reason: m.reason };
  const subject = field('subject');
  const clientId = field('clientId');
  const tokenId = field('tokenId');
  if (subject !== undefined) cut.subject = subject;
  if (clientId !== undefined) cut.clientId = clientId;
  if (tokenId !== undefined) cut.tokenId = tokenId;
  return (subject ?? clientId ?? tokenId) ? cut : null;
}
