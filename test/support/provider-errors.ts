import { expect } from 'vitest';
import { ProviderError } from '../../server/errors.js';

/** The ProviderError a provider call fails with (the test fails if the call succeeds or fails otherwise). */
export async function failure(promise: Promise<unknown>): Promise<ProviderError> {
  const error: unknown = await promise.then(
    () => new Error('expected the call to fail'),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}
