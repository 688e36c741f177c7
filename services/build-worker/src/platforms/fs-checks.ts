import { access, lstat } from "node:fs/promises";

/** Whether anything is at `file` (links followed). */
export const exists = (file: string) => access(file).then(() => true, () => false);

/** Whether `file` is a regular file itself, not a link to one. */
export const isFile = (file: string) => lstat(file).then((info) => info.isFile(), () => false);
