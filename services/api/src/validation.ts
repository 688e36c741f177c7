import type { ZodType } from "zod";
import { APP_NAME_PATTERN } from "@slipway/shared";
import { badRequest } from "./errors";

export function appNameParam(value: string | undefined): string {
  if (!value || !APP_NAME_PATTERN.test(value)) {
    throw badRequest("invalid_app_name", `app names match ${APP_NAME_PATTERN.source}: lowercase letters, digits and dashes, 2-63 long`);
  }
  return value;
}

export function parseBody<T>(schema: ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.length ? issue.path.join(".") : "body";
    throw badRequest("invalid_body", `${where}: ${issue.message}`);
  }
  return result.data;
}
