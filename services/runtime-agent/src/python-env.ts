import os from "node:os";

/**
 * App Service's worker settings for gunicorn, as WEB_CONCURRENCY, the variable gunicorn (and
 * uvicorn) read for their default number of workers: PYTHON_GUNICORN_CUSTOM_WORKER_NUM, else
 * 2 × cores + 1 with PYTHON_ENABLE_GUNICORN_MULTIWORKERS=true. As a default it yields to the
 * app's own choice: its WEB_CONCURRENCY, `--workers` in GUNICORN_CMD_ARGS or a gunicorn.conf.py.
 */
export function serverWorkersEnvironment(appEnv: Record<string, string>, cores = os.availableParallelism()): Record<string, string> {
  if (appEnv.WEB_CONCURRENCY) return {};
  const custom = appEnv.PYTHON_GUNICORN_CUSTOM_WORKER_NUM?.trim();
  if (custom && /^[1-9]\d*$/.test(custom)) return { WEB_CONCURRENCY: custom };
  if (appEnv.PYTHON_ENABLE_GUNICORN_MULTIWORKERS?.trim().toLowerCase() === "true") return { WEB_CONCURRENCY: String(2 * cores + 1) };
  return {};
}
