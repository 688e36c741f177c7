import os from "node:os";

/**
 * App Service's worker settings for gunicorn, as WEB_CONCURRENCY, the variable gunicorn (and
 * uvicorn) read for their default number of workers: PYTHON_GUNICORN_CUSTOM_WORKER_NUM, else
 * 2 × cores + 1 with PYTHON_ENABLE_GUNICORN_MULTIWORKERS=true; and its threads per worker,
 * PYTHON_GUNICORN_CUSTOM_THREAD_NUM, as `--threads` at the head of GUNICORN_CMD_ARGS (gunicorn has
 * no variable of its own for them). As defaults they yield to the app's own choice: its
 * WEB_CONCURRENCY, `--workers` or `--threads` in GUNICORN_CMD_ARGS, or a gunicorn.conf.py.
 */
export function serverWorkersEnvironment(appEnv: Record<string, string>, cores = os.availableParallelism()): Record<string, string> {
  const env: Record<string, string> = {};
  const workers = appEnv.PYTHON_GUNICORN_CUSTOM_WORKER_NUM?.trim();
  if (appEnv.WEB_CONCURRENCY) {
    // The app's own count.
  } else if (workers && COUNT.test(workers)) env.WEB_CONCURRENCY = workers;
  else if (appEnv.PYTHON_ENABLE_GUNICORN_MULTIWORKERS?.trim().toLowerCase() === "true") env.WEB_CONCURRENCY = String(2 * cores + 1);
  const threads = appEnv.PYTHON_GUNICORN_CUSTOM_THREAD_NUM?.trim();
  const own = appEnv.GUNICORN_CMD_ARGS?.trim();
  if (threads && COUNT.test(threads) && !/(^|\s)--threads\b/.test(own ?? "")) env.GUNICORN_CMD_ARGS = own ? `--threads=${threads} ${own}` : `--threads=${threads}`;
  return env;
}

const COUNT = /^[1-9]\d*$/;
