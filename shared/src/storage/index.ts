export { ObjectStore, ObjectNotFoundError, StorageStalledError, isTransientStorageError, DEFAULT_RETRY, STORE_UNAVAILABLE, type PutResult, type RetryPolicy } from "./object-store";
export { storageKeys } from "./keys";
