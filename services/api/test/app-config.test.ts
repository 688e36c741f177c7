import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppResponse } from "@slipway/shared";
import { uniqueApp } from "../../../test/harness/env";
import { json } from "../../../test/harness/http";
import { startInProcessStack, type InProcessStack } from "../../../test/harness/stack";
import { MASK } from "../src/app-config";

let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack({}, { worker: false });
});
afterAll(async () => stack.close());

const call = (url: string, method: string, body?: unknown, contentType = "application/json") =>
  fetch(`${stack.baseUrl}${url}`, { method, headers: { "Content-Type": contentType }, ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }) });
const patch = (app: string, body: unknown) => call(`/v1/apps/${app}/config`, "PATCH", body);
const expectError = async (response: Response, status: number, code: string, message?: RegExp) => {
  expect(response.status).toBe(status);
  const { error } = await json<{ error: { code: string; message: string } }>(response);
  expect(error.code).toBe(code);
  if (message) expect(error.message).toMatch(message);
};

describe("PATCH /v1/apps/:app/config", () => {
  it("sets and unsets env variables, leaving the others; an app without a release gets no release", async () => {
    const app = uniqueApp("patch");
    await call(`/v1/apps/${app}`, "PUT", { env: { A: "1", B: "2" }, startupCommand: "python app.py" });
    const response = await patch(app, { set: { C: "3", B: "two" }, unset: ["A"] });
    expect(response.status).toBe(200);
    expect(await json<AppResponse>(response)).toMatchObject({ name: app, env: { B: "two", C: "3" }, startupCommand: "python app.py" });
    expect((await json<AppResponse>(await patch(app, { unset: ["B", "C", "NEVER_SET"] }))).env).toEqual({});
    expect((await json<AppResponse>(await call(`/v1/apps/${app}`, "GET"))).env).toEqual({});
    expect(await stack.api.releases.count(app)).toBe(0);
  });

  it("concurrent patches of different variables all survive, and so does a concurrent PUT of another field", async () => {
    const app = uniqueApp("atomic");
    await call(`/v1/apps/${app}`, "PUT", {});
    const names = Array.from({ length: 30 }, (_, i) => `VAR_${i}`);
    const answers = await Promise.all([...names.map((name) => patch(app, { set: { [name]: name.toLowerCase() } })), call(`/v1/apps/${app}`, "PUT", { startupCommand: "python app.py" })]);
    expect(answers.map((r) => r.status)).toEqual([...names.map(() => 200), 200]);
    const stored = await stack.api.apps.get(app);
    expect(stored?.env).toEqual(Object.fromEntries(names.map((name) => [name, name.toLowerCase()])));
    expect(stored?.startupCommand).toBe("python app.py");
  });

  it("masks secret-looking values in every answer unless ?reveal=1", async () => {
    const app = uniqueApp("mask");
    const secrets = { API_KEY: "k-123", DB_PASSWORD: "pw", DATABASE_URL: "postgres://u:pw@db/x" };
    const put = await json<AppResponse>(await call(`/v1/apps/${app}`, "PUT", { env: { GREETING: "hi", ...secrets }, buildEnv: { NPM_TOKEN: "t" } }));
    expect(put.env).toEqual({ GREETING: "hi", API_KEY: MASK, DB_PASSWORD: MASK, DATABASE_URL: MASK });
    expect(put.buildEnv).toEqual({ NPM_TOKEN: MASK });
    expect((await json<AppResponse>(await patch(app, { set: { SESSION_SECRET: "s" } }))).env.SESSION_SECRET).toBe(MASK);
    expect((await json<AppResponse>(await call(`/v1/apps/${app}`, "GET"))).env.API_KEY).toBe(MASK);
    const listed = await json<AppResponse[]>(await call(`/v1/apps?limit=100`, "GET"));
    expect(listed.find((a) => a.name === app)?.env.DB_PASSWORD).toBe(MASK);
    expect((await json<AppResponse>(await call(`/v1/apps/${app}?reveal=1`, "GET"))).env).toEqual({ GREETING: "hi", ...secrets, SESSION_SECRET: "s" });
    expect((await json<AppResponse>(await call(`/v1/apps/${app}/config?reveal=1`, "PATCH", { set: { X: "1" } }))).env.API_KEY).toBe("k-123");
    // What is stored stays the real value.
    expect((await stack.api.apps.get(app))?.env.API_KEY).toBe("k-123");
  });

  it("answers bad input with the catalogue's errors", async () => {
    const app = uniqueApp("bad");
    await call(`/v1/apps/${app}`, "PUT", {});
    await expectError(await patch(app, {}), 400, "invalid_body", /give set, unset or both/);
    await expectError(await patch(app, { set: { "1X": "y" } }), 400, "invalid_body", /environment variable name/);
    await expectError(await patch(app, { set: { A: 1 } }), 400, "invalid_body");
    await expectError(await patch(app, { unset: "A" }), 400, "invalid_body");
    await expectError(await patch(app, { set: { A: "1" }, unset: ["A"] }), 400, "invalid_body", /both set and unset/);
    await expectError(await patch(app, { env: { A: "1" } }), 400, "invalid_body");
    await expectError(await call(`/v1/apps/${app}/config`, "PATCH", "{broken"), 400, "invalid_json");
    await expectError(await call(`/v1/apps/${app}/config`, "PATCH", "A=1", "application/x-www-form-urlencoded"), 415, "unsupported_media_type");
    await expectError(await patch(uniqueApp("missing"), { set: { A: "1" } }), 404, "not_found");
    await expectError(await call(`/v1/apps/${app}?reveal=maybe`, "GET"), 400, "invalid_query");
  });

  it("PUT validates healthCheck", async () => {
    const app = uniqueApp("health");
    await expectError(await call(`/v1/apps/${app}`, "PUT", { healthCheck: { path: "ready", timeoutS: 5 } }), 400, "invalid_body", /healthCheck\.path/);
    await expectError(await call(`/v1/apps/${app}`, "PUT", { healthCheck: { path: "/ready", timeoutS: 0 } }), 400, "invalid_body", /healthCheck\.timeoutS/);
    await expectError(await call(`/v1/apps/${app}`, "PUT", { healthCheck: { path: "/ready" } }), 400, "invalid_body", /healthCheck\.timeoutS/);
    await expectError(await call(`/v1/apps/${app}`, "PUT", { healthCheck: { path: "/", timeoutS: 5, other: 1 } }), 400, "invalid_body");
    const ok = await call(`/v1/apps/${app}`, "PUT", { healthCheck: { path: "/ready", timeoutS: 5, expectText: "ok" } });
    expect(ok.status).toBe(201);
    expect((await json<AppResponse>(await call(`/v1/apps/${app}`, "GET"))).healthCheck).toEqual({ path: "/ready", timeoutS: 5, expectText: "ok" });
  });
});
