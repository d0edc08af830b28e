/**
 * A deadline for a call to a service Tidings depends on (the store, the bus), where the service's
 * own library has no timeout covering the whole call.
 */

/**
 * Settles like `work`, or rejects with `onTimeout()` once `ms` passed first. `work` is not
 * cancelled: it must end by itself (its library's own timeouts see to that), and its outcome is
 * then ignored.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
