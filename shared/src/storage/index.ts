export { ObjectStore, ObjectNotFoundError, type PutResult } from "./object-store";
export { storageKeys } from "./keys";
