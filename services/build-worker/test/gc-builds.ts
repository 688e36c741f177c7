import path from "node:path";
import { expect } from "vitest";
import { logTail, uploadDir, waitForBuild, writeTree, type BuildView } from "../../../test/harness/stack";

/** `count` builds of a tiny app, released as v1..v`count`. */
export async function buildVersions(baseUrl: string, work: string, app: string, count: number): Promise<BuildView[]> {
  const builds: BuildView[] = [];
  for (let n = 1; n <= count; n++) {
    const dir = await writeTree(path.join(work, `${app}-${n}`), { "app.py": `print(${n})\n` });
    const build = await waitForBuild(baseUrl, (await uploadDir(baseUrl, app, dir)).id);
    if (build.status !== "succeeded") throw new Error(`build ${n} of ${app} ${build.status}: ${build.error}${await logTail(baseUrl, build.id)}`);
    builds.push(build);
  }
  expect(builds.map((b) => b.release)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  return builds;
}
