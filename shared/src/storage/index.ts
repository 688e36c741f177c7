export { ObjectStore, ObjectNotFoundError, StorageStalledError, isTransientStorageError, DEFAULT_RETRY, type PutResult, type RetryPolicy } from "./object-store";
export { storageKeys } from "./keys";
