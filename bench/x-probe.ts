import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { rm } from "node:fs/promises";
import { Writable, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ObjectStore } from "@slipway/shared";
import { startS3Server } from "@slipway/shared/embedded";

const file = "/dev/shm/m.tar.zst";
async function main() {
  await rm("/dev/shm/xs3", { recursive: true, force: true });
  const s3 = await startS3Server({ dir: "/dev/shm/xs3", engine: "minio" });
  const store = new ObjectStore({ S3_ENDPOINT: s3.url, S3_ACCESS_KEY: s3.accessKey, S3_SECRET_KEY: s3.secretKey, S3_BUCKET: "xprobe", S3_REGION: "us-east-1" });
  await store.ensureBucket();
  await store.putStream("a", createReadStream(file));
  const t = async (name: string, f: () => Promise<unknown>) => {
    const s = performance.now();
    const c = process.cpuUsage();
    await f();
    const u = process.cpuUsage(c);
    console.log(name.padEnd(28), ((performance.now() - s) / 1000).toFixed(3), "node cpu", ((u.user + u.system) / 1e6).toFixed(3));
  };
  const toCat = async (source: Readable) => {
    const cat = spawn("sh", ["-c", "cat > /dev/null"], { stdio: ["pipe", "inherit", "inherit"] });
    await pipeline(source, cat.stdin);
    await new Promise((r) => cat.on("close", r));
  };
  for (let i = 0; i < 3; i++) {
    await t("http -> null", async () => pipeline(await store.getStream("a"), new Writable({ write(_c, _e, cb) { cb(); } })));
    await t("file -> cat", async () => toCat(createReadStream(file)));
    await t("file(4MiB reads) -> cat", async () => toCat(createReadStream(file, { highWaterMark: 4 << 20 })));
    await t("http -> cat", async () => toCat(await store.getStream("a")));
  }
  await s3.stop();
}
main();
