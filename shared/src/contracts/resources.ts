import { z } from "zod";

/**
 * One file a partial upload left out because the server holds it (the CLI's changed-files-only
 * deploy): where it goes, its content address and its mode. Paths are checked by whoever
 * restores them; here only the shape.
 */
export const resourceEntrySchema = z.object({
  path: z.string().min(1),
  sha256: z.string(),
  size: z.number().int().nonnegative(),
  mode: z.number().int(),
});
export type ResourceEntry = z.infer<typeof resourceEntrySchema>;
/** What an upload's list must hold: the server has no use for the size. */
export const resourceListSchema = z.array(resourceEntrySchema.partial({ size: true }));
export type ListedResource = z.infer<typeof resourceListSchema>[number];
