/**
 * The error answers of the transports, where they used to live: masking is in `schema/mask.ts`,
 * `HttpError` in `errors.ts`, so that auth and the stream engine need no transport.
 */
export { errorResult, errorsBody, maskError, maskResult, MASKED_MESSAGE } from '../schema/mask.js';
export { HttpError } from '../errors.js';
