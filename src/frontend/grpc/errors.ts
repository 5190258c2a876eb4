/** Catalogue errors as gRPC statuses: code from the catalogue, details, and `sluice-code` metadata. */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { catalogue, toSluiceError } from '../../errors.js';
import { errorFields, log } from '../../log.js';

export function toGrpcError(e: unknown): Partial<ServiceError> {
  if (!(e instanceof Error && 'code' in e)) log.error('grpc: unexpected error', errorFields(e));
  const err = toSluiceError(e);
  const metadata = new Metadata();
  metadata.set('sluice-code', err.code);
  return { code: catalogue[err.code].grpc, details: err.message, metadata };
}
